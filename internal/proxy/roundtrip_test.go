package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/route"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// recorder is an exchange.ResponseWriter that keeps what it is given.
type recorder struct {
	status   int
	head     exchange.Headers
	cl       int64
	body     bytes.Buffer
	trailers exchange.Headers
	flushes  int
	finished bool
	aborted  bool
	headSent bool
}

func (w *recorder) Write1xx(int, exchange.Headers) error { return nil }
func (w *recorder) WriteHead(status int, _ []byte, h exchange.Headers, cl int64) error {
	w.status, w.cl, w.headSent = status, cl, true
	for _, f := range h {
		w.head = append(w.head, exchange.Header{Name: bytes.Clone(f.Name), Value: bytes.Clone(f.Value)})
	}
	return nil
}
func (w *recorder) Write(p []byte) (int, error) { return w.body.Write(p) }
func (w *recorder) Flush() error                { w.flushes++; return nil }
func (w *recorder) Finish(tr exchange.Headers) error {
	w.finished, w.trailers = true, tr
	return nil
}
func (w *recorder) Hijack() (net.Conn, io.Reader, error) { return nil, nil, http.ErrNotSupported }
func (w *recorder) StopBody()                            {}
func (w *recorder) Abort()                               { w.aborted = true }
func (w *recorder) Written() (bool, int64)               { return w.headSent, int64(w.body.Len()) }

func h2cBackend(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h2c.NewHandler(h, &http2.Server{}))
	t.Cleanup(s.Close)
	return s
}

func h2cTarget(t *testing.T, rawURL string, index int) *upstream.Target {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	rt := NewH2Transport(u.Host, nil, time.Second, time.Minute, 64<<10)
	t.Cleanup(rt.(*http2.Transport).CloseIdleConnections)
	tg := &upstream.Target{Backend: &upstream.Backend{Addr: u.Host, RoundTripper: rt}, URL: u, Host: []byte(u.Host), Index: index}
	if p := strings.TrimSuffix(u.EscapedPath(), "/"); p != "" {
		tg.Prefix = []byte(p)
	}
	return tg
}

func newExchange(method, target string, header exchange.Headers, body []byte) *exchange.Request {
	path, query, hasQuery := strings.Cut(target, "?")
	req := &exchange.Request{
		Method: []byte(method), Path: []byte(path), Query: []byte(query), HasQuery: hasQuery,
		Host: []byte("front.example"), ProtoMinor: 1, Header: header,
		Body:       bytes.NewReader(body),
		RemoteAddr: netip.MustParseAddrPort("192.0.2.7:5555"),
	}
	req.ContentLength = int64(len(body))
	return req
}

func TestRoundTripHeadAndPath(t *testing.T) {
	seen := make(chan *http.Request, 1)
	be := h2cBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.Header().Set("Connection", "close") // not allowed in HTTP/2: never arrives
		w.Header().Set("X-Drop", "1")
		w.Header().Set("Server", "backend")
		w.Header().Set("Trailer", "Grpc-Status")
		w.Write([]byte("ok"))
		w.Header().Set("Grpc-Status", "0")
	})
	tg := h2cTarget(t, be.URL+"/base/", 0)
	pool := &upstream.Pool{Name: "p", Targets: []*upstream.Target{tg}, Policy: &upstream.RoundRobin{}, ResponseHeaderTimeout: 5 * time.Second}
	r := &route.Route{StripPrefix: []byte("/api")}
	r.RequestHeaders.Set = exchange.Headers{{Name: []byte("X-Set"), Value: []byte("s")}}
	r.ResponseHeaders.Remove = [][]byte{[]byte("X-Drop")}
	f := &Forwarder{Log: slog.New(slog.DiscardHandler)}
	req := newExchange("GET", "/api/v1/items?a=1&b", exchange.Headers{
		{Name: []byte("Connection"), Value: []byte("X-Hop")},
		{Name: []byte("X-Hop"), Value: []byte("h")},
		{Name: []byte("Keep-Alive"), Value: []byte("timeout=5")},
		{Name: []byte("TE"), Value: []byte("trailers")},
		{Name: []byte("X_Under"), Value: []byte("u")},
		{Name: []byte("X-Forwarded-For"), Value: []byte("6.6.6.6")},
		{Name: []byte("X-Keep"), Value: []byte("k")},
	}, nil)
	w := &recorder{}
	var res Result
	f.Forward(context.Background(), req, w, r, pool, &res)
	if w.status != 200 || w.body.String() != "ok" || !w.finished {
		t.Fatalf("status %d body %q finished %v", w.status, w.body.String(), w.finished)
	}
	got := <-seen
	if got.URL.RequestURI() != "/base/v1/items?a=1&b" {
		t.Errorf("path %q", got.URL.RequestURI())
	}
	if got.Host != tg.URL.Host {
		t.Errorf("authority %q, want %q", got.Host, tg.URL.Host)
	}
	for _, name := range []string{"X-Hop", "Keep-Alive", "X_under", "X-Under"} {
		if v := got.Header.Get(name); v != "" {
			t.Errorf("%s reached the backend: %q", name, v)
		}
	}
	if got.Header.Get("X-Keep") != "k" || got.Header.Get("X-Set") != "s" || got.Header.Get("Te") != "trailers" {
		t.Errorf("header %v", got.Header)
	}
	if v := got.Header.Get("X-Forwarded-For"); v != "192.0.2.7" {
		t.Errorf("X-Forwarded-For %q (an untrusted client's value must go)", v)
	}
	if v := got.Header.Get("Forwarded"); v != "for=192.0.2.7;host=front.example;proto=http" {
		t.Errorf("Forwarded %q", v)
	}
	if v := got.Header.Get("X-Forwarded-Host"); v != "front.example" {
		t.Errorf("X-Forwarded-Host %q", v)
	}
	if w.head.Has("X-Drop") || w.head.Has("Server") || w.head.Has("Connection") {
		t.Errorf("response head %q", w.head)
	}
	if string(w.head.Get("Trailer")) != "Grpc-Status" || w.cl != -1 {
		t.Errorf("Trailer %q, length %d", w.head.Get("Trailer"), w.cl)
	}
	if len(w.trailers) != 1 || string(w.trailers[0].Name) != "Grpc-Status" || string(w.trailers[0].Value) != "0" {
		t.Errorf("trailers %q", w.trailers)
	}
}

func TestRoundTripBodyTrailersAndStreaming(t *testing.T) {
	be := h2cBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "%d %s", len(b), r.Trailer.Get("X-Client-Sum"))
	})
	tg := h2cTarget(t, be.URL, 0)
	pool := &upstream.Pool{Name: "p", Targets: []*upstream.Target{tg}, Policy: &upstream.RoundRobin{}, ResponseHeaderTimeout: 5 * time.Second}
	f := &Forwarder{Log: slog.New(slog.DiscardHandler)}
	body := bytes.Repeat([]byte("b"), 100<<10)
	req := newExchange("POST", "/up", exchange.Headers{{Name: []byte("Trailer"), Value: []byte("X-Client-Sum")}}, body)
	req.ContentLength = -1
	tr := exchange.Headers{{Name: []byte("X-Client-Sum"), Value: []byte("abc")}}
	req.Trailers = &tr
	w := &recorder{}
	var res Result
	f.Forward(context.Background(), req, w, &route.Route{}, pool, &res)
	if want := fmt.Sprintf("part0;part1;part2;%d abc", len(body)); w.status != 200 || w.body.String() != want {
		t.Fatalf("status %d body %q, want %q", w.status, w.body.String(), want)
	}
	if w.flushes == 0 {
		t.Error("a streamed response was never flushed")
	}
}

func TestRoundTripRetryAndErrors(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	be := h2cBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		io.WriteString(w, "alive")
	})
	f := &Forwarder{Log: slog.New(slog.DiscardHandler)}

	t.Run("connect failure goes to the next target", func(t *testing.T) {
		pool := &upstream.Pool{Name: "p", Targets: []*upstream.Target{h2cTarget(t, deadURL, 0), h2cTarget(t, be.URL, 1)},
			Policy: &upstream.RoundRobin{}, ResponseHeaderTimeout: 5 * time.Second, Retry: upstream.Retry{Attempts: 1, OnConnect: true}}
		for i := 0; i < 4; i++ {
			w := &recorder{}
			var res Result
			// A POST with a body too: the body was never read, so it may go again.
			f.Forward(context.Background(), newExchange("POST", "/", nil, []byte("payload")), w, &route.Route{}, pool, &res)
			if w.status != 200 || w.body.String() != "alive" {
				t.Fatalf("request %d: status %d body %q", i, w.status, w.body.String())
			}
		}
	})

	t.Run("connect failure without retry is 502", func(t *testing.T) {
		pool := &upstream.Pool{Name: "p", Targets: []*upstream.Target{h2cTarget(t, deadURL, 0)}, Policy: &upstream.RoundRobin{}, ResponseHeaderTimeout: time.Second}
		w := &recorder{}
		var res Result
		f.Forward(context.Background(), newExchange("GET", "/", nil, nil), w, &route.Route{}, pool, &res)
		if w.status != 502 || res.Status != 502 {
			t.Fatalf("status %d", w.status)
		}
	})

	t.Run("response head timeout is 504", func(t *testing.T) {
		pool := &upstream.Pool{Name: "p", Targets: []*upstream.Target{h2cTarget(t, be.URL, 0)}, Policy: &upstream.RoundRobin{}, ResponseHeaderTimeout: 200 * time.Millisecond}
		w := &recorder{}
		var res Result
		start := time.Now()
		f.Forward(context.Background(), newExchange("GET", "/slow", nil, nil), w, &route.Route{}, pool, &res)
		if w.status != 504 {
			t.Fatalf("status %d", w.status)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
}
