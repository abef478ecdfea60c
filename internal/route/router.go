package route

import (
	"bytes"
	"sort"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Site is the routes of one set of hosts.
type Site struct {
	Name   string
	Routes []*Route
}

type wildcard struct {
	suffix []byte // ".example.test"
	site   *Site
}

// Router finds the site by host (exact, then longest wildcard, then "*") and
// the first route of it that matches.
type Router struct {
	all       []*Route // every route, in configuration order
	exact     map[string]*Site
	wildcards []wildcard // longest suffix first
	fallback  *Site
}

// Routes returns every route in configuration order.
func (rt *Router) Routes() []*Route { return rt.all }

// Match returns the route for req, or nil (404).
func (rt *Router) Match(req *exchange.Request) *Route {
	site := rt.site(req.Host)
	if site == nil {
		return nil
	}
	path := req.Path
	if needsNormalizing(path) {
		path = normalizePath(path)
	}
	for _, r := range site.Routes {
		if r.match(req, path) {
			return r
		}
	}
	return nil
}

func (rt *Router) site(host []byte) *Site {
	var buf [256]byte
	h := lowerHost(buf[:0], host)
	if s, ok := rt.exact[string(h)]; ok {
		return s
	}
	for _, w := range rt.wildcards {
		if len(h) > len(w.suffix) && bytes.HasSuffix(h, w.suffix) {
			return w.site
		}
	}
	return rt.fallback
}

// lowerHost lower-cases host and drops its port and any trailing dot.
func lowerHost(dst, host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		if i := bytes.IndexByte(host, ']'); i > 0 {
			host = host[:i+1]
		}
	} else if i := bytes.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = bytes.TrimSuffix(host, []byte("."))
	if len(host) > cap(dst) {
		dst = make([]byte, 0, len(host))
	}
	for _, c := range host {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func (rt *Router) sortWildcards() {
	sort.SliceStable(rt.wildcards, func(i, j int) bool {
		return len(rt.wildcards[i].suffix) > len(rt.wildcards[j].suffix)
	})
}

// needsNormalizing reports whether a path has escapes, dot segments or
// doubled slashes: matching must see "/admin" in "/%61dmin" and "/x/../admin",
// or a path condition would be trivially bypassed.
func needsNormalizing(p []byte) bool {
	return bytes.IndexByte(p, '%') >= 0 || bytes.Contains(p, []byte("/.")) || bytes.Contains(p, []byte("//"))
}

// normalizePath decodes percent escapes (except %2F, which stays a literal
// character of a segment), merges slashes and resolves dot segments
// (RFC 3986 §5.2.4), as nginx does before matching locations.
func normalizePath(p []byte) []byte {
	dec := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if d != '/' && d != 0 {
				dec = append(dec, d)
				i += 2
				continue
			}
		}
		dec = append(dec, c)
	}
	out := make([]byte, 0, len(dec)+1)
	segs := bytes.Split(dec, []byte("/"))
	stack := make([][]byte, 0, len(segs))
	for i, s := range segs {
		switch string(s) {
		case "", ".":
			if i == len(segs)-1 {
				stack = append(stack, nil) // keep a trailing slash
			}
		case "..":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			if i == len(segs)-1 {
				stack = append(stack, nil)
			}
		default:
			stack = append(stack, s)
		}
	}
	for _, s := range stack {
		out = append(out, '/')
		out = append(out, s...)
	}
	if len(out) == 0 {
		out = append(out, '/')
	}
	return out
}
