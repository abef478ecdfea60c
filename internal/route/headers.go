package route

import (
	"bytes"
	"net/http"
	"sort"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// HeaderOps are a route's header edits, prepared once per config.
type HeaderOps struct {
	Set    exchange.Headers
	Add    exchange.Headers
	Remove [][]byte // canonical names
}

func compileHeaderOps(set, add map[string]string, remove []string) HeaderOps {
	var o HeaderOps
	for _, k := range sortedKeys(set) {
		o.Set = append(o.Set, exchange.Header{Name: []byte(http.CanonicalHeaderKey(k)), Value: []byte(set[k])})
	}
	for _, k := range sortedKeys(add) {
		o.Add = append(o.Add, exchange.Header{Name: []byte(http.CanonicalHeaderKey(k)), Value: []byte(add[k])})
	}
	for _, k := range remove {
		o.Remove = append(o.Remove, []byte(http.CanonicalHeaderKey(k)))
	}
	return o
}

// Drops reports whether an incoming field called name is removed or replaced.
func (o *HeaderOps) Drops(name []byte) bool {
	for _, r := range o.Remove {
		if bytes.EqualFold(r, name) {
			return true
		}
	}
	for i := range o.Set {
		if bytes.EqualFold(o.Set[i].Name, name) {
			return true
		}
	}
	return false
}

// Empty reports whether there is nothing to do.
func (o *HeaderOps) Empty() bool { return len(o.Set)+len(o.Add)+len(o.Remove) == 0 }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Redirect is a compiled `redirect` action.
type Redirect struct {
	Status int
	parts  []part
}

type part struct {
	lit         string
	placeholder string // host | path | uri | query | scheme
}

func compileRedirect(to string, status int) *Redirect {
	r := &Redirect{Status: status}
	for len(to) > 0 {
		open := indexPlaceholder(to)
		if open < 0 {
			r.parts = append(r.parts, part{lit: to})
			break
		}
		if open > 0 {
			r.parts = append(r.parts, part{lit: to[:open]})
		}
		close := open + bytes.IndexByte([]byte(to[open:]), '}')
		r.parts = append(r.parts, part{placeholder: to[open+1 : close]})
		to = to[close+1:]
	}
	return r
}

// Placeholders are the names a redirect target may use.
var Placeholders = []string{"host", "path", "uri", "query", "scheme"}

func indexPlaceholder(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		for _, p := range Placeholders {
			if len(s) >= i+len(p)+2 && s[i+1:i+1+len(p)] == p && s[i+1+len(p)] == '}' {
				return i
			}
		}
	}
	return -1
}

// Location builds the redirect target for req.
func (r *Redirect) Location(req *exchange.Request) []byte {
	var b []byte
	for _, p := range r.parts {
		switch p.placeholder {
		case "":
			b = append(b, p.lit...)
		case "host":
			b = append(b, req.Host...)
		case "path":
			b = append(b, req.Path...)
		case "query":
			b = append(b, req.Query...)
		case "uri":
			b = append(b, req.Path...)
			if req.HasQuery {
				b = append(b, '?')
				b = append(b, req.Query...)
			}
		case "scheme":
			if req.TLS {
				b = append(b, "https"...)
			} else {
				b = append(b, "http"...)
			}
		}
	}
	return b
}

// RespondHeaders are a respond action's fields with Content-Type defaulted.
func respondHeaders(h map[string]string, body string) exchange.Headers {
	var out exchange.Headers
	hasType := false
	for _, k := range sortedKeys(h) {
		ck := http.CanonicalHeaderKey(k)
		hasType = hasType || ck == "Content-Type"
		out = append(out, exchange.Header{Name: []byte(ck), Value: []byte(h[k])})
	}
	if !hasType && body != "" {
		out = append(out, exchange.Header{Name: []byte("Content-Type"), Value: []byte("text/plain; charset=utf-8")})
	}
	return out
}
