package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

func TestUnknownMiddlewareIsAPositionedError(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`listeners: [{addr: "127.0.0.1:0"}]
sites:
  - routes:
      - respond: {body: hi}
        middleware:
          - no_such_filter: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = Check(cfg)
	if err == nil || !strings.Contains(err.Error(), "c.yaml:6:13: sites[0].routes[0].middleware[0]") || !strings.Contains(err.Error(), `unknown middleware "no_such_filter"`) {
		t.Fatalf("Check = %v, want a positioned unknown-middleware error", err)
	}
}

// stamp is a test filter: it refuses requests carrying X-Deny and otherwise
// adds a request header and a response header around the next handler.
type stamp struct{ name string }

func (s *stamp) Serve(x *filter.Exchange, next filter.Handler) {
	if x.Req.Header.Has("X-Deny") {
		x.Log.Blocked = s.name
		filter.Reply(x, 403, filter.StatusText(403))
		return
	}
	x.Req.Header.Add([]byte("X-Stamp"), []byte(s.name+" "+x.ClientIP.String()))
	inner := x.W
	x.W = &stampWriter{ResponseWriter: inner, name: s.name}
	next.Serve(x)
	x.W = inner
}

type stampWriter struct {
	exchange.ResponseWriter
	name string
}

func (w *stampWriter) WriteHead(status int, reason []byte, h exchange.Headers, n int64) error {
	h = append(h, exchange.Header{Name: []byte("X-Filtered"), Value: []byte(w.name)})
	return w.ResponseWriter.WriteHead(status, reason, h, n)
}

func TestFilterChainsWrapTheRoutesAction(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Join(r.Header.Values("X-Stamp"), ","))
	}))
	defer backend.Close()
	built := 0
	known := map[string]filter.Factory{"stamp": func(b *filter.Build) (filter.Filter, error) {
		var s struct {
			Name string `yaml:"name"`
		}
		if _, err := b.Decode(&s); err != nil {
			return nil, err
		}
		built++
		return &stamp{name: s.Name}, nil
	}}
	cfg, err := config.Parse("c.yaml", []byte(fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
access_log: {enabled: false}
upstreams: {app: {targets: [%q]}}
sites:
  - middleware: [{stamp: {name: site}}]
    routes:
      - match: {path: /plain}
        upstream: app
      - match: {path: /more}
        upstream: app
        middleware: [{stamp: {name: route}}]
      - respond: {body: fixed}
`, backend.URL)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), known)
	if err != nil {
		t.Fatal(err)
	}
	if built != 2 {
		t.Fatalf("built %d filters, want 2 (the site's once, shared by its routes)", built)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	var addr string
	for _, a := range srv.Addrs() {
		addr = a.String()
	}
	get := func(path string, deny bool) (int, string, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if deny {
			req.Header.Set("X-Deny", "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.Join(resp.Header.Values("X-Filtered"), ","), string(b)
	}
	if st, f, body := get("/plain", false); st != 200 || f != "site" || body != "site 127.0.0.1" {
		t.Errorf("/plain: %d %q %q, want 200 site \"site 127.0.0.1\"", st, f, body)
	}
	if st, f, body := get("/more", false); st != 200 || f != "route,site" || body != "site 127.0.0.1,route 127.0.0.1" {
		t.Errorf("/more: %d %q %q, want the site filter outside the route's", st, f, body)
	}
	if st, _, body := get("/other", false); st != 200 || body != "fixed" {
		t.Errorf("respond route: %d %q: filters must wrap every action", st, body)
	}
	if st, f, _ := get("/more", true); st != 403 || f != "" {
		t.Errorf("refused request: %d X-Filtered=%q, want 403 and no later filter run", st, f)
	}
}

func TestClientIPWalksTrustedHops(t *testing.T) {
	trusted := func(a netip.Addr) bool { return netip.MustParsePrefix("10.0.0.0/8").Contains(a) }
	for _, c := range []struct{ peer, xff, want string }{
		{"192.0.2.1:1", "203.0.113.9", "192.0.2.1"},                     // untrusted peer: XFF ignored
		{"10.0.0.1:1", "203.0.113.9", "203.0.113.9"},                    // trusted peer: its word
		{"10.0.0.1:1", "1.1.1.1, 203.0.113.9, 10.2.2.2", "203.0.113.9"}, // nearest untrusted
		{"10.0.0.1:1", "10.3.3.3", "10.3.3.3"},                          // all trusted: the farthest
		{"10.0.0.1:1", "garbage, 203.0.113.9", "203.0.113.9"},
		{"10.0.0.1:1", "203.0.113.9, garbage", "10.0.0.1"}, // garbled nearest hop: trust the peer only
		{"10.0.0.1:1", "", "10.0.0.1"},
	} {
		req := &exchange.Request{RemoteAddr: netip.MustParseAddrPort(c.peer)}
		if c.xff != "" {
			req.Header.Add([]byte("X-Forwarded-For"), []byte(c.xff))
		}
		if got := clientIP(req, trusted); got.String() != c.want {
			t.Errorf("peer %s XFF %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}
