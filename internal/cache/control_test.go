package cache

import (
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

func cc(v ...string) exchange.Headers {
	var h exchange.Headers
	for _, s := range v {
		h.Add([]byte("Cache-Control"), []byte(s))
	}
	return h
}

// RFC 9111 §5.2: directives, arguments, quoted strings, several fields.
func TestRFC9111_5_2_ParseControl(t *testing.T) {
	c := ParseControl(cc(`public, max-age=60, s-maxage="120"`, `no-cache="Set-Cookie, X-A", private=X-B`, "stale-while-revalidate=5,stale-if-error=7, must-revalidate , bogus=\"a,b\""))
	if !c.Public || c.MaxAge != time.Minute || c.SMaxAge != 2*time.Minute || c.NoCache || c.Private ||
		len(c.NoCacheFields) != 2 || c.NoCacheFields[1] != "X-A" || len(c.PrivateFields) != 1 ||
		c.StaleWhileRevalidate != 5*time.Second || c.StaleIfError != 7*time.Second || !c.MustRevalidate {
		t.Fatalf("parsed %+v", c)
	}
	// §4.2.1: an invalid max-age is stale at once; an invalid min-fresh is ignored.
	c = ParseControl(cc("max-age=abc, min-fresh=x, max-stale"))
	if c.MaxAge != 0 || c.MinFresh != -1 || !c.MaxStaleAny {
		t.Fatalf("invalid values: %+v", c)
	}
	// §1.2.2: delta-seconds beyond 2^31 saturate.
	if c := ParseControl(cc("max-age=99999999999999999999")); c.MaxAge != maxDelta*time.Second {
		t.Fatalf("huge max-age: %v", c.MaxAge)
	}
	if c := ParseControl(nil); c.MaxAge != -1 || c.NoStore {
		t.Fatalf("absent: %+v", c)
	}
}

func FuzzParseControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `no-cache="a, b"`, `private="`, "s-maxage=1,,=,", `a="\"`, "max-stale=-1", "max-age=" + "9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseControl(cc(s))
		for _, d := range []time.Duration{c.MaxAge, c.SMaxAge, c.MaxStale, c.MinFresh, c.StaleIfError, c.StaleWhileRevalidate} {
			if d < -1 || d > maxDelta*time.Second {
				t.Fatalf("%q: duration %v out of range", s, d)
			}
		}
		for _, n := range append(c.NoCacheFields, c.PrivateFields...) {
			if n == "" {
				t.Fatalf("%q: empty field name", s)
			}
		}
	})
}
