package cache_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// RFC 5861 §3: within stale-while-revalidate the stale entry is served at
// once and refreshed in the background, once.
func TestRFC5861_3_StaleWhileRevalidate(t *testing.T) {
	var n atomic.Int32
	release := make(chan struct{})
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			// Already 100s old: stale at once, but within the window.
			w.Header().Set("Age", "100")
			w.Header().Set("Cache-Control", "max-age=60, stale-while-revalidate=600")
			io.WriteString(w, "old")
		default:
			<-release // the refresh takes a while; clients must not wait for it
			w.Header().Set("Cache-Control", "max-age=60")
			io.WriteString(w, "new")
		}
	})
	e.get("/swr")
	for i := 0; i < 5; i++ {
		r := e.get("/swr")
		if r.body != "old" || !strings.Contains(r.cacheStatus(), "detail=stale-while-revalidate") {
			t.Fatalf("stale request %d: %q %q, want the stale body at once", i, r.body, r.cacheStatus())
		}
	}
	close(release)
	e.store().Wait()
	if r := e.get("/swr"); r.body != "new" || !isHit(r) {
		t.Fatalf("after the refresh: %q %q, want the refreshed entry", r.body, r.cacheStatus())
	}
	e.expectHits(2, "one background refresh for five stale requests")
}

// RFC 5861 §4: stale-if-error serves the stale entry when the backend
// answers 5xx or cannot be reached; must-revalidate forbids it (§4.2.4).
func TestRFC5861_4_StaleIfError(t *testing.T) {
	var failing atomic.Bool
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(503)
			io.WriteString(w, "down")
			return
		}
		w.Header().Set("Age", "100")
		if r.URL.Path == "/strict" {
			w.Header().Set("Cache-Control", "max-age=60, stale-if-error=600, must-revalidate")
		} else {
			w.Header().Set("Cache-Control", "max-age=60, stale-if-error=600")
		}
		io.WriteString(w, "good")
	})
	e.get("/sie")
	e.get("/strict")
	failing.Store(true)
	r := e.get("/sie")
	if r.status != 200 || r.body != "good" || !strings.Contains(r.cacheStatus(), "fwd-status=503") || !strings.Contains(r.cacheStatus(), "stale-if-error") {
		t.Fatalf("backend 503: %d %q %q, want the stale entry", r.status, r.body, r.cacheStatus())
	}
	if r := e.get("/strict"); r.status != 503 {
		t.Fatalf("must-revalidate: %d %q, must not serve stale", r.status, r.body)
	}
	// Backend gone: the proxy's 502 is replaced by the stale entry too.
	e.backend.Close()
	r = e.get("/sie")
	if r.status != 200 || r.body != "good" {
		t.Fatalf("backend down: %d %q, want the stale entry", r.status, r.body)
	}
	// Without any stale entry a failure passes through.
	if r := e.get("/never-stored"); r.status < 500 {
		t.Fatalf("miss with backend down: %d", r.status)
	}
	_ = time.Second
}
