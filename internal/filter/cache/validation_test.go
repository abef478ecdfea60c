package cache_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// RFC 9111 §4.3.1, §4.3.3, §4.3.4: a stale entry with an ETag is
// revalidated with If-None-Match; the backend's 304 refreshes it (its
// fields replace the stored ones) and the client gets the stored body.
func TestRFC9111_4_3_4_RevalidationWithETag(t *testing.T) {
	var refreshed atomic.Bool
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("X-Refreshed", "yes")
			refreshed.Store(true)
			w.WriteHeader(304)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("X-Refreshed", "no")
		io.WriteString(w, "body-v1")
	})
	e.get("/r")
	r := e.get("/r")
	if !refreshed.Load() || r.status != 200 || r.body != "body-v1" {
		t.Fatalf("revalidation: 304 seen %v, client got %d %q", refreshed.Load(), r.status, r.body)
	}
	if !strings.Contains(r.cacheStatus(), "fwd=stale; fwd-status=304") || r.h.Get("X-Refreshed") != "yes" {
		t.Fatalf("after 304: Cache-Status %q X-Refreshed %q", r.cacheStatus(), r.h.Get("X-Refreshed"))
	}
	// The 304's max-age=60 made the entry fresh again.
	if r := e.get("/r"); !isHit(r) || r.body != "body-v1" {
		t.Fatalf("after refresh: %q %q, want a hit", r.cacheStatus(), r.body)
	}
	e.expectHits(2, "miss, revalidation, hit")
}

// RFC 9111 §4.3.1: Last-Modified gives If-Modified-Since; a changed
// resource (200) replaces the entry.
func TestRFC9111_4_3_1_RevalidationWithLastModified(t *testing.T) {
	lm := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	var version atomic.Int32
	version.Store(1)
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("Last-Modified", lm)
		if r.Header.Get("If-Modified-Since") == lm && version.Load() == 1 {
			w.WriteHeader(304)
			return
		}
		io.WriteString(w, map[int32]string{1: "one", 2: "two"}[version.Load()])
	})
	e.get("/lm")
	if r := e.get("/lm"); r.body != "one" || !strings.Contains(r.cacheStatus(), "fwd-status=304") {
		t.Fatalf("IMS revalidation: %q %q", r.body, r.cacheStatus())
	}
	if got := e.lastRequest().Header.Get("If-Modified-Since"); got != lm {
		t.Fatalf("backend saw If-Modified-Since %q, want %q", got, lm)
	}
	version.Store(2)
	if r := e.get("/lm"); r.body != "two" {
		t.Fatalf("changed resource: %q, want the new body", r.body)
	}
	version.Store(1) // a 304 now refreshes the "two" entry
	if r := e.get("/lm"); r.body != "two" {
		t.Fatalf("after replacement: %q, want the stored new body", r.body)
	}
}

// RFC 9111 §5.2.2.4: no-cache responses are stored but validated before
// every use.
func TestRFC9111_5_2_2_4_ResponseNoCacheRevalidatesEachTime(t *testing.T) {
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e"`)
		w.Header().Set("Cache-Control", "no-cache, max-age=600")
		if r.Header.Get("If-None-Match") == `"e"` {
			w.WriteHeader(304)
			return
		}
		io.WriteString(w, "x")
	})
	for i := 0; i < 3; i++ {
		if r := e.get("/nc"); r.body != "x" || isHit(r) {
			t.Fatalf("request %d: %q %q", i, r.body, r.cacheStatus())
		}
	}
	e.expectHits(3, "no-cache: each use validated")
}

// RFC 9111 §4.3.2: a client's conditional request is answered 304 from a
// fresh entry; a non-matching one gets the full response.
func TestRFC9111_4_3_2_ClientConditionalsFromCache(t *testing.T) {
	lm := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	e := newEnv(t, "", serve(200, "abc", "Cache-Control", "max-age=60", "ETag", `"t1"`, "Last-Modified", lm, "Content-Type", "text/plain"))
	e.get("/c")
	for _, c := range []struct {
		hdr  []string
		want int
	}{
		{[]string{"If-None-Match", `"t1"`}, 304},
		{[]string{"If-None-Match", `W/"t1"`}, 304}, // weak comparison
		{[]string{"If-None-Match", `"zz", "t1"`}, 304},
		{[]string{"If-None-Match", `*`}, 304},
		{[]string{"If-None-Match", `"other"`}, 200},
		{[]string{"If-Modified-Since", lm}, 304},
		{[]string{"If-Modified-Since", time.Now().Add(-2 * time.Hour).UTC().Format(http.TimeFormat)}, 200},
		{[]string{"If-None-Match", `"other"`, "If-Modified-Since", lm}, 200}, // INM wins
	} {
		r := e.get("/c", c.hdr...)
		if r.status != c.want || !isHit(r) {
			t.Errorf("%v: %d %q, want %d from cache", c.hdr, r.status, r.cacheStatus(), c.want)
		}
		if c.want == 304 && (r.body != "" || r.h.Get("ETag") != `"t1"`) {
			t.Errorf("%v: 304 with body %q ETag %q", c.hdr, r.body, r.h.Get("ETag"))
		}
	}
	e.expectHits(1, "conditionals from cache")
}

// RFC 9110 §14 with RFC 9111 §3.4: a range request is served from a
// stored full response.
func TestRFC9111_3_4_RangeFromCachedResponse(t *testing.T) {
	e := newEnv(t, "", serve(200, "0123456789", "Cache-Control", "max-age=60", "ETag", `"r"`))
	e.get("/rg")
	for _, c := range []struct {
		rng, ifRange string
		status       int
		body, cr     string
	}{
		{"bytes=2-4", "", 206, "234", "bytes 2-4/10"},
		{"bytes=7-", "", 206, "789", "bytes 7-9/10"},
		{"bytes=-3", "", 206, "789", "bytes 7-9/10"},
		{"bytes=5-100", "", 206, "56789", "bytes 5-9/10"},
		{"bytes=20-", "", 416, "", "bytes */10"},
		{"bytes=0-1,4-5", "", 200, "0123456789", ""}, // several ranges: the whole
		{"items=0-1", "", 200, "0123456789", ""},
		{"bytes=2-4", `"r"`, 206, "234", "bytes 2-4/10"},
		{"bytes=2-4", `"changed"`, 200, "0123456789", ""},
	} {
		hdr := []string{"Range", c.rng}
		if c.ifRange != "" {
			hdr = append(hdr, "If-Range", c.ifRange)
		}
		r := e.get("/rg", hdr...)
		if r.status != c.status || r.body != c.body || r.h.Get("Content-Range") != c.cr || !isHit(r) {
			t.Errorf("Range %q If-Range %q: %d %q CR %q (%s), want %d %q %q", c.rng, c.ifRange, r.status, r.body, r.h.Get("Content-Range"), r.cacheStatus(), c.status, c.body, c.cr)
		}
	}
	e.expectHits(1, "ranges from cache")
}
