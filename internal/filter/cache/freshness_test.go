package cache_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// RFC 9111 §4.2.1: max-age makes a response fresh; a fresh hit does not
// reach the backend and carries Age (§5.1) and Cache-Status (RFC 9211).
func TestRFC9111_4_2_1_MaxAgeFreshHit(t *testing.T) {
	e := newEnv(t, "", serve(200, "hello", "Cache-Control", "max-age=60"))
	r1 := e.get("/a")
	if r1.body != "hello" || !strings.Contains(r1.cacheStatus(), "fwd=uri-miss; stored") {
		t.Fatalf("first: %q %q", r1.body, r1.cacheStatus())
	}
	r2 := e.get("/a")
	if r2.body != "hello" || !isHit(r2) || r2.h.Get("Age") == "" {
		t.Fatalf("second: %q status %q age %q", r2.body, r2.cacheStatus(), r2.h.Get("Age"))
	}
	if !strings.Contains(r2.cacheStatus(), "ttl=") {
		t.Errorf("Cache-Status %q lacks ttl", r2.cacheStatus())
	}
	// Another query string is another URL.
	e.get("/a?x=1")
	e.expectHits(2, "fresh hit, then another URL")
}

// RFC 9111 §4.2.1, §5.2.2.10: s-maxage wins over max-age in a shared cache.
func TestRFC9111_5_2_2_10_SMaxAgeOverridesMaxAge(t *testing.T) {
	e := newEnv(t, "", serve(200, "x", "Cache-Control", "max-age=0, s-maxage=60"))
	e.get("/s")
	if r := e.get("/s"); !isHit(r) {
		t.Fatalf("s-maxage=60 with max-age=0: %q, want a hit", r.cacheStatus())
	}
	e.expectHits(1, "s-maxage")
}

// RFC 9111 §5.3: Expires against Date gives the lifetime; an invalid
// Expires means already expired.
func TestRFC9111_5_3_Expires(t *testing.T) {
	now := time.Now().UTC()
	e := newEnv(t, "", serve(200, "x", "Date", now.Format(http.TimeFormat), "Expires", now.Add(time.Hour).Format(http.TimeFormat)))
	e.get("/e")
	if r := e.get("/e"); !isHit(r) {
		t.Fatalf("Expires in an hour: %q, want a hit", r.cacheStatus())
	}
	e.setHandler(serve(200, "x", "Expires", "garbage", "Last-Modified", now.Add(-100*time.Hour).Format(http.TimeFormat)))
	e.get("/bad")
	if r := e.get("/bad"); isHit(r) {
		t.Fatalf("invalid Expires: %q, must not be fresh (and no heuristic either)", r.cacheStatus())
	}
}

// RFC 9111 §4.2.3: the Age a response arrives with counts; a response
// older than its max-age is stale at once.
func TestRFC9111_4_2_3_AgeCalculation(t *testing.T) {
	e := newEnv(t, "", serve(200, "x", "Cache-Control", "max-age=60", "Age", "50"))
	e.get("/young")
	r := e.get("/young")
	if !isHit(r) {
		t.Fatalf("Age 50 of 60: %q, want a hit", r.cacheStatus())
	}
	if r.h.Get("Age") != "50" && r.h.Get("Age") != "51" {
		t.Errorf("Age on hit = %q, want 50 (the age it arrived with, plus time resident)", r.h.Get("Age"))
	}
	e.setHandler(serve(200, "x", "Cache-Control", "max-age=60", "Age", "100"))
	e.get("/old")
	if r := e.get("/old"); isHit(r) {
		t.Fatalf("Age 100 of 60: %q, must be stale", r.cacheStatus())
	}
}

// RFC 9111 §4.2.2: heuristic freshness only for heuristically cacheable
// statuses without explicit expiration; default_ttl is the heuristic.
func TestRFC9111_4_2_2_HeuristicFreshness(t *testing.T) {
	lm := time.Now().Add(-240 * time.Hour).UTC().Format(http.TimeFormat)
	e := newEnv(t, "", serve(200, "x", "Last-Modified", lm))
	e.get("/h")
	if r := e.get("/h"); !isHit(r) {
		t.Fatalf("200 with Last-Modified 10 days ago: %q, want a heuristic hit", r.cacheStatus())
	}
	e.setHandler(serve(302, "", "Location", "/x", "Last-Modified", lm))
	e.get("/redir")
	if r := e.get("/redir"); isHit(r) {
		t.Fatalf("302 without explicit freshness: %q, must not be stored", r.cacheStatus())
	}
	e.setHandler(serve(200, "plain"))
	e.get("/plain")
	if r := e.get("/plain"); isHit(r) {
		t.Fatalf("no validator, no freshness, default_ttl 0: %q, must not be a hit", r.cacheStatus())
	}

	d := newEnv(t, "{default_ttl: 1m}", serve(404, "nope"))
	d.get("/missing")
	if r := d.get("/missing"); !isHit(r) || r.status != 404 {
		t.Fatalf("404 with default_ttl: %d %q, want a cached 404", r.status, r.cacheStatus())
	}
	d.setHandler(serve(200, "x", "Cache-Control", "max-age=0"))
	d.get("/explicit")
	if r := d.get("/explicit"); isHit(r) {
		t.Fatalf("explicit max-age=0 with default_ttl: %q, default_ttl must not override it", r.cacheStatus())
	}
}

// RFC 9111 §3, §5.2.2.5, §5.2.2.7: no-store and private responses are
// never stored by a shared cache.
func TestRFC9111_5_2_2_5_NoStoreAndPrivate(t *testing.T) {
	for _, cc := range []string{"no-store, max-age=60", "private, max-age=60", "max-age=60, private"} {
		e := newEnv(t, "", serve(200, "x", "Cache-Control", cc))
		e.get("/p")
		if r := e.get("/p"); isHit(r) {
			t.Errorf("%s: %q, must not be stored", cc, r.cacheStatus())
		}
		e.expectHits(2, cc)
	}
}

// RFC 9111 §5.2.1.5: a request's no-store keeps its response out.
func TestRFC9111_5_2_1_5_RequestNoStore(t *testing.T) {
	e := newEnv(t, "", serve(200, "x", "Cache-Control", "max-age=60"))
	e.get("/r", "Cache-Control", "no-store")
	if r := e.get("/r"); isHit(r) {
		t.Fatalf("after a no-store request: %q, must not be stored", r.cacheStatus())
	}
}

// RFC 9111 §5.2.1.4, §5.4: request no-cache (or Pragma: no-cache) goes to
// the backend even with a fresh entry.
func TestRFC9111_5_2_1_4_RequestNoCache(t *testing.T) {
	e := newEnv(t, "", serve(200, "x", "Cache-Control", "max-age=60"))
	e.get("/n")
	e.get("/n", "Cache-Control", "no-cache")
	e.get("/n", "Pragma", "no-cache")
	e.expectHits(3, "request no-cache")
	if r := e.get("/n", "Cache-Control", "max-age=0"); isHit(r) {
		t.Errorf("request max-age=0 (§5.2.1.1): %q, want forwarded", r.cacheStatus())
	}
	if r := e.get("/n", "Cache-Control", "min-fresh=3600"); isHit(r) {
		t.Errorf("request min-fresh beyond ttl (§5.2.1.3): %q, want forwarded", r.cacheStatus())
	}
}

// RFC 9111 §5.2.1.7: only-if-cached answers 504 when nothing is stored.
func TestRFC9111_5_2_1_7_OnlyIfCached(t *testing.T) {
	e := newEnv(t, "", serve(200, "x", "Cache-Control", "max-age=60"))
	if r := e.get("/o", "Cache-Control", "only-if-cached"); r.status != 504 {
		t.Fatalf("only-if-cached miss: %d, want 504", r.status)
	}
	e.expectHits(0, "only-if-cached")
	e.get("/o")
	if r := e.get("/o", "Cache-Control", "only-if-cached"); r.status != 200 || !isHit(r) {
		t.Fatalf("only-if-cached hit: %d %q", r.status, r.cacheStatus())
	}
}

// RFC 9111 §5.2.1.2: max-stale lets a client take a stale response, unless
// the response says must-revalidate (§5.2.2.2).
func TestRFC9111_5_2_1_2_MaxStale(t *testing.T) {
	e := newEnv(t, "", serve(200, "x", "Cache-Control", "max-age=10", "Age", "20"))
	e.get("/m")
	if r := e.get("/m", "Cache-Control", "max-stale=60"); !isHit(r) || !strings.Contains(r.cacheStatus(), "max-stale") {
		t.Fatalf("max-stale=60 on a 10s stale entry: %q, want a stale hit", r.cacheStatus())
	}
	if r := e.get("/m", "Cache-Control", "max-stale=5"); isHit(r) {
		t.Fatalf("max-stale=5 on a 10s stale entry: %q, want forwarded", r.cacheStatus())
	}
	e.setHandler(serve(200, "x", "Cache-Control", "max-age=10, must-revalidate", "Age", "20"))
	e.get("/mr")
	if r := e.get("/mr", "Cache-Control", "max-stale"); isHit(r) {
		t.Fatalf("must-revalidate with max-stale: %q, must not serve stale", r.cacheStatus())
	}
}

// RFC 9111 §5.2.2.8: proxy-revalidate binds a shared cache like
// must-revalidate: no stale answer, even when the client would take one.
func TestRFC9111_5_2_2_8_ProxyRevalidate(t *testing.T) {
	e := newEnv(t, "", serve(200, "x", "Cache-Control", "max-age=10, proxy-revalidate, stale-while-revalidate=600", "Age", "20"))
	e.get("/pr")
	if r := e.get("/pr", "Cache-Control", "max-stale"); isHit(r) {
		t.Fatalf("proxy-revalidate with max-stale: %q, must not serve stale", r.cacheStatus())
	}
	if r := e.get("/pr"); isHit(r) {
		t.Fatalf("proxy-revalidate with stale-while-revalidate: %q, must not serve stale", r.cacheStatus())
	}
	e.expectHits(3, "proxy-revalidate")
}
