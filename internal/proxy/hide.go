package proxy

import (
	"bytes"
	"net"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// Hide says what of a backend's response never reaches a client: fields
// that name its software (hide_response_headers), and its Via, which names
// hosts inside (RFC 9110 §7.6.3 lets an intermediary at a network's edge
// replace those with a pseudonym: gatehouse's own Via when SendVia is on).
// Server is always replaced by the engines.
type Hide struct {
	byLen [32][][]byte // names to drop, by length, for a cheap first test
	long  [][]byte     // names of 32 bytes or more
	via   bool
}

// NewHide builds the rules from the configuration's lists.
func NewHide(names []string, sendVia bool) *Hide {
	h := &Hide{via: sendVia}
	for _, n := range names {
		b := []byte(n)
		if len(b) < len(h.byLen) {
			h.byLen[len(b)] = append(h.byLen[len(b)], b)
		} else {
			h.long = append(h.long, b)
		}
	}
	return h
}

// drops reports whether the backend field named n is withheld.
func (h *Hide) drops(n []byte) bool {
	if len(n) == 3 && exchange.EqualFold(n, "via") {
		return true
	}
	list := h.long
	if len(n) < len(h.byLen) {
		list = h.byLen[len(n)]
	}
	for _, x := range list {
		if bytes.EqualFold(n, x) {
			return true
		}
	}
	return false
}

var (
	viaName  = []byte("Via")
	viaValue = []byte("1.1 gatehouse")
)

// Location-bearing fields a backend may fill with its own address
// (redirects, the created resource, a refresh).
func isLocationField(n []byte) (refresh bool, ok bool) {
	switch len(n) {
	case 7:
		return true, exchange.EqualFold(n, "refresh")
	case 8:
		return false, exchange.EqualFold(n, "location")
	case 16:
		return false, exchange.EqualFold(n, "content-location")
	}
	return false, false
}

// rewriteLocation turns a URL that points at a target of pool into one
// that points where the client came in: the client's scheme and Host, and
// the path as the client sees it (the target's base path taken off, the
// route's strip_prefix put back), as nginx's proxy_redirect default does.
// It returns nil when v does not point at a target.
func rewriteLocation(v []byte, req *exchange.Request, stripPrefix []byte, pool *upstream.Pool) []byte {
	rest, ok := cutScheme(v)
	if !ok {
		return nil
	}
	end := bytes.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, path := rest[:end], rest[end:]
	t := targetAt(authority, schemeOf(v), pool)
	if t == nil {
		return nil
	}
	if p := t.Prefix; len(p) > 0 && bytes.HasPrefix(path, p) && (len(path) == len(p) || strings.IndexByte("/?#", path[len(p)]) >= 0) {
		path = path[len(p):]
	}
	out := make([]byte, 0, len(v)+len(req.Host)+len(stripPrefix)+8)
	if len(req.Host) > 0 {
		if req.TLS {
			out = append(out, "https://"...)
		} else {
			out = append(out, "http://"...)
		}
		out = append(out, req.Host...)
	}
	out = append(out, stripPrefix...)
	if len(path) == 0 || path[0] != '/' {
		out = append(out, '/')
	}
	return append(out, path...)
}

// cutScheme takes "http://", "https://" or "//" off v.
func cutScheme(v []byte) ([]byte, bool) {
	for _, p := range []string{"http://", "https://", "//"} {
		if len(v) >= len(p) && exchange.EqualFold(v[:len(p)], p) {
			return v[len(p):], true
		}
	}
	return nil, false
}

func schemeOf(v []byte) string {
	if len(v) >= 6 && exchange.EqualFold(v[:6], "https:") {
		return "https"
	}
	return "http"
}

// targetAt finds the target of pool (or its backups) that authority names,
// with or without the scheme's default port, by name as configured or by
// the address dialled.
func targetAt(authority []byte, scheme string, pool *upstream.Pool) *upstream.Target {
	a := string(authority)
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		a = a[i+1:]
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		port := "80"
		if scheme == "https" {
			port = "443"
		}
		a = net.JoinHostPort(strings.Trim(a, "[]"), port)
	}
	ts, _ := pool.Current()
	for _, list := range [][]*upstream.Target{ts, pool.Backup} {
		for _, t := range list {
			if strings.EqualFold(a, t.Addr) || t.URL != nil && strings.EqualFold(a, withPort(t.URL.Host, t.URL.Scheme)) {
				return t
			}
		}
	}
	return nil
}

func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if strings.HasSuffix(scheme, "https") {
		return net.JoinHostPort(strings.Trim(host, "[]"), "443")
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), "80")
}

// rewriteRefresh rewrites the URL of a Refresh field ("5; url=...").
func rewriteRefresh(v []byte, req *exchange.Request, stripPrefix []byte, pool *upstream.Pool) []byte {
	i := indexURLParam(v)
	if i < 0 {
		return nil
	}
	u := v[i+4:]
	quote := byte(0)
	if len(u) > 0 && (u[0] == '\'' || u[0] == '"') {
		quote = u[0]
		u = u[1:]
		if j := bytes.IndexByte(u, quote); j >= 0 {
			u = u[:j]
		}
	}
	nu := rewriteLocation(u, req, stripPrefix, pool)
	if nu == nil {
		return nil
	}
	out := append([]byte(nil), v[:i+4]...)
	if quote != 0 {
		out = append(out, quote)
	}
	out = append(out, nu...)
	if quote != 0 {
		out = append(out, quote)
	}
	return out
}

// indexURLParam finds "url=" in any ASCII case (bytes.ToLower would change
// the length of invalid UTF-8, and the index with it).
func indexURLParam(v []byte) int {
	for i := 0; i+4 <= len(v); i++ {
		if exchange.EqualFold(v[i:i+4], "url=") {
			return i
		}
	}
	return -1
}
