// Package route compiles the sites and routes of a configuration into a
// router that finds the route of a request without allocating: hosts by map
// lookup, conditions pre-parsed, regular expressions compiled once.
package route

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"regexp"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// Route is one compiled route: its conditions and its action.
type Route struct {
	Name string // "sites[0].routes[1]", for logs and metrics
	// Site and Index place the route in the configuration (sites[Site].routes[Index]).
	Site, Index int

	path       []byte
	pathPrefix []byte
	pathRegex  *regexp.Regexp
	methods    [][]byte
	headers    []valueMatch
	query      []valueMatch
	clientIP   []netip.Prefix

	StripPrefix     []byte
	RequestHeaders  HeaderOps
	ResponseHeaders HeaderOps

	// Exactly one of these is set.
	Upstream *upstream.Pool
	Split    []SplitEntry
	Respond  *Respond
	Redirect *Redirect
}

// SplitEntry is one weighted branch of a split, with its cumulative weight.
type SplitEntry struct {
	Pool       *upstream.Pool
	cumulative uint64
}

// Respond is a fixed answer.
type Respond struct {
	Status  int
	Body    []byte
	Headers exchange.Headers
}

// valueMatch is a header or query condition: exact, "~regex" or "*" (present).
type valueMatch struct {
	name    []byte
	exact   []byte
	re      *regexp.Regexp
	present bool
}

func (m *valueMatch) matches(v []byte, found bool) bool {
	switch {
	case !found:
		return false
	case m.present:
		return true
	case m.re != nil:
		return m.re.Match(v)
	default:
		return bytes.Equal(v, m.exact)
	}
}

// Pool returns the pool the route forwards this request to (split routes
// draw by weight), or nil for respond/redirect routes.
func (r *Route) Pool() *upstream.Pool {
	if r.Upstream != nil || len(r.Split) == 0 {
		return r.Upstream
	}
	n := rand.Uint64N(r.Split[len(r.Split)-1].cumulative)
	for i := range r.Split {
		if n < r.Split[i].cumulative {
			return r.Split[i].Pool
		}
	}
	return r.Split[len(r.Split)-1].Pool
}

func (r *Route) match(req *exchange.Request, path []byte) bool {
	if r.path != nil && !bytes.Equal(path, r.path) {
		return false
	}
	if r.pathPrefix != nil && !bytes.HasPrefix(path, r.pathPrefix) {
		return false
	}
	if r.pathRegex != nil && !r.pathRegex.Match(path) {
		return false
	}
	if len(r.methods) > 0 {
		ok := false
		for _, m := range r.methods {
			if bytes.Equal(m, req.Method) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range r.headers {
		m := &r.headers[i]
		v := req.Header.Get(string(m.name))
		if !m.matches(v, v != nil) {
			return false
		}
	}
	for i := range r.query {
		m := &r.query[i]
		v, found := queryValue(req.Query, m.name)
		if !m.matches(v, found) {
			return false
		}
	}
	if len(r.clientIP) > 0 {
		ip := req.RemoteAddr.Addr().Unmap()
		ok := false
		for _, p := range r.clientIP {
			if p.Contains(ip) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// queryValue finds key in a raw query string. Keys and values with percent
// escapes are compared decoded.
func queryValue(q, key []byte) ([]byte, bool) {
	for len(q) > 0 {
		var pair []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, nil
		}
		k, v := pair, []byte(nil)
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		if bytes.IndexByte(k, '%') >= 0 || bytes.IndexByte(k, '+') >= 0 {
			k = unescapeQuery(k)
		}
		if bytes.Equal(k, key) {
			if bytes.IndexByte(v, '%') >= 0 || bytes.IndexByte(v, '+') >= 0 {
				v = unescapeQuery(v)
			}
			if v == nil {
				v = []byte{}
			}
			return v, true
		}
	}
	return nil, false
}

func unescapeQuery(s []byte) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			out = append(out, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
