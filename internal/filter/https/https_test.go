package https

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

// capture is a ResponseWriter that keeps the head.
type capture struct {
	status int
	h      exchange.Headers
}

func (c *capture) Write1xx(int, exchange.Headers) error { return nil }
func (c *capture) WriteHead(status int, _ []byte, h exchange.Headers, _ int64) error {
	c.status, c.h = status, append(exchange.Headers(nil), h...)
	return nil
}
func (c *capture) Write(p []byte) (int, error)          { return len(p), nil }
func (c *capture) Flush() error                         { return nil }
func (c *capture) Finish(exchange.Headers) error        { return nil }
func (c *capture) Hijack() (net.Conn, io.Reader, error) { return nil, nil, nil }
func (c *capture) StopBody()                            {}
func (c *capture) Abort()                               {}
func (c *capture) Written() (bool, int64)               { return c.status != 0, 0 }

func (c *capture) get(name string) string {
	for _, f := range c.h {
		if exchange.EqualFold(f.Name, name) {
			return string(f.Value)
		}
	}
	return ""
}

type passed struct{ n int }

func (p *passed) Serve(*filter.Exchange) { p.n++ }

func serve(f filter.Filter, req *exchange.Request) (*capture, bool) {
	c := &capture{}
	next := &passed{}
	x := &filter.Exchange{Req: req, W: c}
	f.Serve(x, next)
	if x.W != c {
		panic("filter did not restore W")
	}
	return c, next.n == 1
}

func TestRedirect(t *testing.T) {
	for _, tc := range []struct {
		port                  int
		host, path, query, to string
		hasQuery              bool
	}{
		{443, "example.com", "/a/b", "x=1", "https://example.com/a/b?x=1", true},
		{443, "example.com:80", "/", "", "https://example.com/?", true},
		{8443, "example.com:8080", "/p", "", "https://example.com:8443/p", false},
		{443, "[::1]:80", "/", "", "https://[::1]/", false},
	} {
		c, next := serve(&Redirect{Port: tc.port}, &exchange.Request{Method: []byte("POST"), Host: []byte(tc.host),
			Path: []byte(tc.path), Query: []byte(tc.query), HasQuery: tc.hasQuery})
		if next || c.status != 308 || c.get("Location") != tc.to {
			t.Errorf("%s%s: %d %q, want 308 %q", tc.host, tc.path, c.status, c.get("Location"), tc.to)
		}
	}
	for _, req := range []*exchange.Request{
		{Host: []byte("example.com"), Path: []byte("/x"), TLS: true},
		{Host: []byte("example.com"), Path: []byte("/.well-known/acme-challenge/abc")},
	} {
		if _, next := serve(&Redirect{Port: 443}, req); !next {
			t.Errorf("%s (tls %v) redirected", req.Path, req.TLS)
		}
	}
	if c, _ := serve(&Redirect{Port: 443}, &exchange.Request{Method: []byte("GET"), Path: []byte("/")}); c.status != 400 {
		t.Errorf("no Host: %d", c.status)
	}
}

func TestHSTS(t *testing.T) {
	f := NewHSTS(365*24*time.Hour, true, true)
	c, next := serve(f, &exchange.Request{TLS: true})
	if !next {
		t.Fatal("not passed on")
	}
	c.WriteHead(200, nil, nil, 0) // what the route's action does, through the wrapper, is not seen here
	if _, next := serve(f, &exchange.Request{}); !next {
		t.Fatal("plain request not passed on")
	}
	w := &hstsWriter{ResponseWriter: c, value: f.value}
	w.WriteHead(200, nil, exchange.Headers{{Name: []byte("strict-transport-security"), Value: []byte("max-age=1")}, {Name: []byte("X"), Value: []byte("y")}}, 0)
	if got := c.get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains; preload" || len(c.h) != 2 {
		t.Errorf("headers %q", c.h)
	}
}

func FuzzRedirect(f *testing.F) {
	f.Add([]byte("example.com:80"), []byte("/a"), []byte("q=1"), true)
	f.Add([]byte("[::1"), []byte("/.well-known/acme-challenge/x"), []byte(""), false)
	f.Add([]byte(":"), []byte(""), []byte("?"), true)
	f.Fuzz(func(t *testing.T, host, path, query []byte, hasQuery bool) {
		c, next := serve(&Redirect{Port: 8443}, &exchange.Request{Method: []byte("GET"), Host: host, Path: path, Query: query, HasQuery: hasQuery})
		if next {
			if !bytes.HasPrefix(path, acmeChallengePath) {
				t.Fatal("passed on a plain request")
			}
			return
		}
		if c.status == 400 {
			return
		}
		loc := c.get("Location")
		if c.status != 308 || len(loc) < len("https://") || loc[:8] != "https://" {
			t.Fatalf("%d %q", c.status, loc)
		}
		if h := hostOnly(host); !bytes.HasPrefix(host, h) {
			t.Fatalf("hostOnly(%q) = %q", host, h)
		}
	})
}
