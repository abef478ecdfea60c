package exchange

import "bytes"

// Header is one header field as it came on the wire.
type Header struct {
	Name, Value []byte
}

// Headers keeps fields in order with duplicates, as HTTP/1.1 sends them: a
// proxy must forward them that way, and a slice reuses its memory per request.
type Headers []Header

// Get returns the first value of name (case-insensitive), or nil.
func (h Headers) Get(name string) []byte {
	for i := range h {
		if equalFoldString(h[i].Name, name) {
			return h[i].Value
		}
	}
	return nil
}

// Has reports whether name is present.
func (h Headers) Has(name string) bool {
	for i := range h {
		if equalFoldString(h[i].Name, name) {
			return true
		}
	}
	return false
}

// Add appends a field.
func (h *Headers) Add(name, value []byte) {
	*h = append(*h, Header{Name: name, Value: value})
}

// Del removes every field called name.
func (h *Headers) Del(name string) {
	s := *h
	j := 0
	for i := range s {
		if !equalFoldString(s[i].Name, name) {
			s[j] = s[i]
			j++
		}
	}
	*h = s[:j]
}

// Set replaces every field called name with one.
func (h *Headers) Set(name, value []byte) {
	h.Del(string(name))
	h.Add(name, value)
}

// EqualFold compares ASCII case-insensitively without allocating.
func EqualFold(a []byte, b string) bool { return equalFoldString(a, b) }

func equalFoldString(a []byte, b string) bool { return equalFold(a, b) }

func equalFold[T string | []byte](a []byte, b T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || (x|0x20) < 'a' || (x|0x20) > 'z' {
			return false
		}
	}
	return true
}

// HasToken reports whether a comma-separated header value lists token
// (case-insensitive), as in Connection: keep-alive, Upgrade.
func HasToken(v []byte, token string) bool { return hasToken(v, token) }

// HasTokenBytes is HasToken for a token held in bytes.
func HasTokenBytes(v, token []byte) bool { return hasToken(v, token) }

func hasToken[T string | []byte](v []byte, token T) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if equalFold(TrimOWS(item), token) {
			return true
		}
	}
	return false
}

// TrimOWS trims SP and HTAB only: fields and list elements are surrounded by
// OWS (RFC 9110 §5.6.1, §5.5), and a wider notion of space lets "close\u0085" pass.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// Cookie returns the value of the first cookie called name (case-sensitive,
// as RFC 6265 §5.4 says) in the Cookie fields — "a=1; b=2", one field or
// several (HTTP/2 splits them) — without allocating, or nil. Surrounding
// double quotes are removed.
func (h Headers) Cookie(name string) []byte {
	for i := range h {
		if !equalFoldString(h[i].Name, "Cookie") {
			continue
		}
		v := h[i].Value
		for len(v) > 0 {
			var pair []byte
			if j := bytes.IndexByte(v, ';'); j >= 0 {
				pair, v = v[:j], v[j+1:]
			} else {
				pair, v = v, nil
			}
			eq := bytes.IndexByte(pair, '=')
			if eq < 0 || string(TrimOWS(pair[:eq])) != name {
				continue
			}
			val := TrimOWS(pair[eq+1:])
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			return val
		}
	}
	return nil
}
