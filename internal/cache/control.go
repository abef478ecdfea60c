// Package cache is gatehouse's HTTP cache (RFC 9111, as a shared cache):
// the rules that decide what may be stored and for how long, the stored
// entries, and the stores that keep them (memory bounded by bytes with a
// scan-resistant admission policy, or disk). The middleware that puts it on
// a route is internal/filter/cache.
package cache

import (
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Control is what the Cache-Control fields of a message say (RFC 9111
// §5.2). Durations are -1 when the directive is absent.
type Control struct {
	MaxAge, SMaxAge, MaxStale, MinFresh time.Duration
	StaleWhileRevalidate, StaleIfError  time.Duration

	NoStore, NoCache, Private, Public bool
	MustRevalidate, ProxyRevalidate   bool
	OnlyIfCached                      bool
	// MaxStaleAny is max-stale without a value: any staleness will do.
	MaxStaleAny bool
	// NoCacheFields and PrivateFields are the field names of the qualified
	// forms no-cache="Set-Cookie" and private="Set-Cookie" (§5.2.2.4,
	// §5.2.2.7): the response may be stored without those fields.
	NoCacheFields, PrivateFields []string
}

// maxDelta caps delta-seconds (RFC 9111 §1.2.2: 2^31 is "infinity").
const maxDelta = 1 << 31

// ParseControl reads every Cache-Control field of h. Unknown directives are
// ignored and a malformed value makes its directive absent, as the RFC asks
// (§5.2: "a cache MUST ignore unrecognized directives"), except that a
// malformed max-age on a response is taken as 0 — stale at once — which is
// what §4.2.1 asks of invalid freshness information.
func ParseControl(h exchange.Headers) Control {
	c := Control{MaxAge: -1, SMaxAge: -1, MaxStale: -1, MinFresh: -1, StaleWhileRevalidate: -1, StaleIfError: -1}
	for i := range h {
		if exchange.EqualFold(h[i].Name, "Cache-Control") {
			c.parse(h[i].Value)
		}
	}
	return c
}

func (c *Control) parse(v []byte) {
	for len(v) > 0 {
		var name, arg []byte
		var hasArg bool
		name, arg, hasArg, v = nextDirective(v)
		if len(name) == 0 {
			continue
		}
		switch {
		case eq(name, "max-age"):
			c.MaxAge = seconds(arg, hasArg, 0)
		case eq(name, "s-maxage"):
			c.SMaxAge = seconds(arg, hasArg, 0)
		case eq(name, "max-stale"):
			if !hasArg {
				c.MaxStaleAny = true
			} else {
				c.MaxStale = seconds(arg, hasArg, -1)
			}
		case eq(name, "min-fresh"):
			c.MinFresh = seconds(arg, hasArg, -1)
		case eq(name, "stale-while-revalidate"):
			c.StaleWhileRevalidate = seconds(arg, hasArg, -1)
		case eq(name, "stale-if-error"):
			c.StaleIfError = seconds(arg, hasArg, -1)
		case eq(name, "no-store"):
			c.NoStore = true
		case eq(name, "no-cache"):
			if hasArg {
				c.NoCacheFields = appendFields(c.NoCacheFields, arg)
			} else {
				c.NoCache = true
			}
		case eq(name, "private"):
			if hasArg {
				c.PrivateFields = appendFields(c.PrivateFields, arg)
			} else {
				c.Private = true
			}
		case eq(name, "public"):
			c.Public = true
		case eq(name, "must-revalidate"):
			c.MustRevalidate = true
		case eq(name, "proxy-revalidate"):
			c.ProxyRevalidate = true
		case eq(name, "only-if-cached"):
			c.OnlyIfCached = true
		}
	}
}

// nextDirective splits the first directive off a Cache-Control list:
// token [ "=" ( token / quoted-string ) ], separated by commas.
func nextDirective(v []byte) (name, arg []byte, hasArg bool, rest []byte) {
	i := 0
	for i < len(v) && v[i] != ',' && v[i] != '=' {
		i++
	}
	name = exchange.TrimOWS(v[:i])
	if i == len(v) {
		return name, nil, false, nil
	}
	if v[i] == ',' {
		return name, nil, false, v[i+1:]
	}
	v = v[i+1:]
	// Argument: a quoted string (commas inside belong to it) or a token.
	j := 0
	for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
		j++
	}
	if j < len(v) && v[j] == '"' {
		k := j + 1
		for k < len(v) && v[k] != '"' {
			if v[k] == '\\' && k+1 < len(v) {
				k++
			}
			k++
		}
		arg = v[j+1 : min(k, len(v))]
		rest = v[min(k+1, len(v)):]
		if c := indexComma(rest); c >= 0 {
			rest = rest[c+1:]
		} else {
			rest = nil
		}
		return name, arg, true, rest
	}
	c := indexComma(v)
	if c < 0 {
		return name, exchange.TrimOWS(v), true, nil
	}
	return name, exchange.TrimOWS(v[:c]), true, v[c+1:]
}

func indexComma(b []byte) int {
	for i, c := range b {
		if c == ',' {
			return i
		}
	}
	return -1
}

// seconds parses delta-seconds. bad is what a malformed value gives: -1
// (directive ignored) or 0 (stale at once, for max-age and s-maxage).
// A quoted number is tolerated (§5.2: senders must not, recipients may):
// the quotes were already taken off.
func seconds(arg []byte, hasArg bool, bad time.Duration) time.Duration {
	if !hasArg || len(arg) == 0 {
		return bad
	}
	n := int64(0)
	for _, c := range arg {
		if c < '0' || c > '9' {
			return bad
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	if n > maxDelta {
		n = maxDelta
	}
	return time.Duration(n) * time.Second
}

// appendFields adds the field names of a qualified no-cache/private list.
func appendFields(dst []string, arg []byte) []string {
	for len(arg) > 0 {
		c := indexComma(arg)
		var f []byte
		if c < 0 {
			f, arg = arg, nil
		} else {
			f, arg = arg[:c], arg[c+1:]
		}
		if f = exchange.TrimOWS(f); len(f) > 0 {
			dst = append(dst, string(f))
		}
	}
	return dst
}

func eq(b []byte, s string) bool { return exchange.EqualFold(b, s) }
