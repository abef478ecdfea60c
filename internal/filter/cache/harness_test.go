package cache_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/cache"
	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/server"
)

// env is a real gatehouse server with a cache on its only route, in front
// of a real HTTP backend whose answers each test scripts.
type env struct {
	t       *testing.T
	srv     *server.Server
	base    string
	backend *httptest.Server
	hits    atomic.Int64 // requests the backend got
	mu      sync.Mutex
	handler http.HandlerFunc
	last    *http.Request // the backend's last request
	client  *http.Client
}

func newEnv(t *testing.T, cacheSettings string, h http.HandlerFunc) *env {
	t.Helper()
	e := &env{t: t, handler: h}
	e.backend = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		e.mu.Lock()
		e.last = r.Clone(r.Context())
		h := e.handler
		e.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(e.backend.Close)
	if cacheSettings == "" {
		cacheSettings = "{max_bytes: 1MiB, max_object_bytes: 64KiB}"
	}
	cfg, err := config.Parse("c.yaml", []byte(fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
access_log: {enabled: false}
upstreams: {app: {targets: [%q]}}
sites:
  - routes:
      - upstream: app
        middleware: [{cache: %s}]
`, e.backend.URL, cacheSettings)))
	if err != nil {
		t.Fatal(err)
	}
	e.srv, err = server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.srv.Shutdown(t.Context()) })
	for _, a := range e.srv.Addrs() {
		e.base = "http://" + a.String()
	}
	e.client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Transport: &http.Transport{MaxIdleConnsPerHost: 200, DisableCompression: true}}
	t.Cleanup(e.client.CloseIdleConnections)
	return e
}

func (e *env) setHandler(h http.HandlerFunc) {
	e.mu.Lock()
	e.handler = h
	e.mu.Unlock()
}

func (e *env) lastRequest() *http.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// store is the cache store of the running configuration.
func (e *env) store() *cache.Store {
	var st *cache.Store
	e.srv.Snapshot().Filters.Each(func(_ string, v any) {
		if s, ok := v.(*cache.Store); ok {
			st = s
		}
	})
	if st == nil {
		e.t.Fatal("no cache store")
	}
	return st
}

type resp struct {
	status int
	h      http.Header
	body   string
}

func (r resp) cacheStatus() string { return r.h.Get("Cache-Status") }

// do sends a request with header pairs.
func (e *env) do(method, path string, hdr ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, string(b)}
}

func (e *env) get(path string, hdr ...string) resp { e.t.Helper(); return e.do("GET", path, hdr...) }

// expect checks that the backend was asked n times in all.
func (e *env) expectHits(n int64, why string) {
	e.t.Helper()
	if got := e.hits.Load(); got != n {
		e.t.Errorf("%s: backend asked %d times, want %d", why, got, n)
	}
}

func isHit(r resp) bool { return strings.HasPrefix(r.cacheStatus(), "gatehouse; hit") }

// serve answers with fixed headers and a body naming the request count.
func serve(status int, body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}
