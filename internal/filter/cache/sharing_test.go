package cache_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// RFC 9111 §3.5: a response to a request with Authorization is stored
// only when public, must-revalidate or s-maxage allow it, and the cache
// never serves one user's private or authorized answer to another.
func TestRFC9111_3_5_AuthorizationNeverShared(t *testing.T) {
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/me": // max-age but no consent to share
			w.Header().Set("Cache-Control", "max-age=60")
		case "/private":
			w.Header().Set("Cache-Control", "private, max-age=60")
		case "/cookie":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Set-Cookie", "session="+strings.ReplaceAll(user, " ", "_"))
		case "/public":
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		fmt.Fprintf(w, "for %q", user)
	})
	for _, path := range []string{"/me", "/private", "/cookie"} {
		a := e.get(path, "Authorization", "Bearer alice")
		if a.body != `for "Bearer alice"` {
			t.Fatalf("%s alice: %q", path, a.body)
		}
		b := e.get(path, "Authorization", "Bearer bob")
		anon := e.get(path)
		if strings.Contains(b.body, "alice") || strings.Contains(anon.body, "alice") || isHit(b) || isHit(anon) {
			t.Errorf("%s: bob got %q (%s), anonymous got %q (%s): alice's answer leaked", path, b.body, b.cacheStatus(), anon.body, anon.cacheStatus())
		}
		if strings.Contains(anon.h.Get("Set-Cookie"), "alice") || strings.Contains(b.h.Get("Set-Cookie"), "alice") {
			t.Errorf("%s: alice's cookie was served to someone else", path)
		}
		// And the reverse: an anonymous answer stored by a later request
		// is not served to alice unless it allows authorized use.
		e.get(path)
		if r := e.get(path, "Authorization", "Bearer alice"); isHit(r) {
			t.Errorf("%s: a stored answer without public/s-maxage/must-revalidate served to an authorized request", path)
		}
	}
	e.get("/public", "Authorization", "Bearer alice")
	if r := e.get("/public", "Authorization", "Bearer bob"); !isHit(r) {
		t.Errorf("public response to an authorized request: %q, §3.5 allows storing it", r.cacheStatus())
	}
}

// RFC 9111 §3 with RFC 6265: a Set-Cookie response is passed through, not
// stored; no-cache="Set-Cookie" (§5.2.2.4) stores it without the cookie.
func TestRFC9111_5_2_2_4_SetCookieHandledSafely(t *testing.T) {
	n := 0
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Set-Cookie", fmt.Sprintf("id=%d", n))
		if r.URL.Path == "/qualified" {
			w.Header().Set("Cache-Control", `max-age=60, no-cache="Set-Cookie"`)
		} else {
			w.Header().Set("Cache-Control", "max-age=60")
		}
		io.WriteString(w, "page")
	})
	e.get("/plain")
	if r := e.get("/plain"); isHit(r) || r.h.Get("Set-Cookie") != "id=2" {
		t.Fatalf("Set-Cookie response: %q cookie %q, want each its own", r.cacheStatus(), r.h.Get("Set-Cookie"))
	}
	e.get("/qualified")
	r := e.get("/qualified")
	if !isHit(r) || r.h.Get("Set-Cookie") != "" || r.body != "page" {
		t.Fatalf("no-cache=\"Set-Cookie\": %q cookie %q, want a hit without the cookie", r.cacheStatus(), r.h.Get("Set-Cookie"))
	}
}

// RFC 9111 §4.1: Vary selects among several stored variants of a URL;
// Vary: * is never matched (so never stored).
func TestRFC9111_4_1_Vary(t *testing.T) {
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/star" {
			w.Header().Set("Vary", "*")
		} else {
			w.Header().Set("Vary", "Accept-Language")
		}
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
	})
	for i := 0; i < 2; i++ {
		for _, lang := range []string{"en", "fr", ""} {
			var r resp
			if lang == "" {
				r = e.get("/v")
			} else {
				r = e.get("/v", "Accept-Language", lang)
			}
			if r.body != "lang="+lang {
				t.Fatalf("Accept-Language %q: got %q", lang, r.body)
			}
			if i == 1 && !isHit(r) {
				t.Errorf("variant %q: %q, want a hit the second time", lang, r.cacheStatus())
			}
			if i == 0 && isHit(r) {
				t.Errorf("variant %q: a hit before it was stored", lang)
			}
		}
	}
	e.expectHits(3, "three variants")
	e.get("/star")
	if r := e.get("/star"); isHit(r) {
		t.Errorf("Vary: *: %q, must never be served from cache", r.cacheStatus())
	}
}

// RFC 9111 §3: only responses to cacheable methods are stored, and only
// final statuses the cache understands; partial content is not stored.
func TestRFC9111_3_CacheableMethodsAndStatuses(t *testing.T) {
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		switch r.URL.Path {
		case "/partial":
			w.Header().Set("Content-Range", "bytes 0-1/10")
			w.WriteHeader(206)
			io.WriteString(w, "ab")
		case "/error":
			w.Header().Del("Cache-Control")
			w.WriteHeader(500)
		default:
			io.WriteString(w, r.Method)
		}
	})
	e.do("POST", "/m")
	if r := e.get("/m"); r.body != "GET" || isHit(r) {
		t.Fatalf("GET after POST: %q %q, the POST answer must not be stored", r.body, r.cacheStatus())
	}
	e.do("PUT", "/put")
	e.do("PUT", "/put")
	e.expectHits(4, "POST and PUT are never answered from cache")
	e.get("/partial", "Range", "bytes=0-1")
	if r := e.get("/partial"); isHit(r) {
		t.Errorf("206 stored (§3.3 would need combining): %q", r.cacheStatus())
	}
	e.get("/error")
	if r := e.get("/error"); isHit(r) {
		t.Errorf("500 without explicit freshness stored: %q", r.cacheStatus())
	}
}

// RFC 9110 §9.3.2 with RFC 9111 §4: a HEAD is answered from a stored GET
// response, with the same fields and no body.
func TestRFC9111_4_HeadFromCachedGet(t *testing.T) {
	e := newEnv(t, "", serve(200, "0123456789", "Cache-Control", "max-age=60", "Content-Type", "text/plain"))
	e.get("/h")
	r := e.do("HEAD", "/h")
	if r.status != 200 || !isHit(r) || r.body != "" || r.h.Get("Content-Length") != "10" || r.h.Get("Content-Type") != "text/plain" {
		t.Fatalf("HEAD: %d %q body %q CL %q", r.status, r.cacheStatus(), r.body, r.h.Get("Content-Length"))
	}
	e.expectHits(1, "HEAD from GET")
	// A HEAD miss goes through and stores nothing.
	e.do("HEAD", "/other")
	if r := e.get("/other"); isHit(r) {
		t.Errorf("GET after a HEAD miss: %q, a HEAD answer has no body to store", r.cacheStatus())
	}
}

// RFC 9111 §4.4: a successful unsafe request invalidates its URL and the
// URLs in its Location and Content-Location (same host only).
func TestRFC9111_4_4_InvalidationAfterUnsafeMethods(t *testing.T) {
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "GET":
			w.Header().Set("Cache-Control", "max-age=60")
		case "POST":
			w.Header().Set("Location", "/loc")
			w.Header().Set("Content-Location", "http://"+r.Header.Get("X-Forwarded-Host")+"/cloc")
			w.WriteHeader(201)
			return
		case "PATCH":
			w.Header().Set("Location", "http://elsewhere.test/other")
			w.WriteHeader(500)
			return
		}
	})
	paths := []string{"/item", "/loc", "/cloc", "/other"}
	for _, p := range paths {
		e.get(p)
	}
	e.do("PATCH", "/item") // fails: nothing invalidated
	if r := e.get("/item"); !isHit(r) {
		t.Fatalf("after a failed PATCH: %q, want still a hit", r.cacheStatus())
	}
	e.do("POST", "/item")
	for _, p := range []string{"/item", "/loc", "/cloc"} {
		if r := e.get(p); isHit(r) {
			t.Errorf("%s after POST: %q, want invalidated", p, r.cacheStatus())
		}
	}
	if r := e.get("/other"); !isHit(r) {
		t.Errorf("/other: %q, not named by the POST, must stay", r.cacheStatus())
	}
	for _, m := range []string{"PUT", "DELETE"} {
		e.get("/item")
		e.do(m, "/item")
		if r := e.get("/item"); isHit(r) {
			t.Errorf("after %s: %q, want invalidated", m, r.cacheStatus())
		}
	}
}
