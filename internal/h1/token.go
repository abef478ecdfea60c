// Package h1 is gatehouse's own HTTP/1.1 engine for both sides of the proxy:
// a strict message parser (RFC 9112; stricter than net/http where leniency
// enables request smuggling), a server loop and a backend connection pool.
// It parses heads in place into reused structures so that a proxied request
// costs no allocations.
package h1

// tchar per RFC 9110 §5.6.2.
var isToken = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-32] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

// field-vchar / obs-text, SP and HTAB (RFC 9110 §5.5); everything else, CR, LF
// and NUL above all, makes a field value invalid.
var isValueByte = func() (t [256]bool) {
	for c := 0x21; c <= 0xff; c++ {
		t[c] = c != 0x7f
	}
	t[' '] = true
	t['\t'] = true
	return
}()

// Request-target bytes: visible ASCII and, like nginx and net/http, raw
// non-ASCII; no controls, no space.
var isTargetByte = func() (t [256]bool) {
	for c := 0x21; c <= 0xff; c++ {
		t[c] = c != 0x7f
	}
	return
}()

// IsToken reports whether b is a non-empty RFC 9110 token.
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isToken[c] {
			return false
		}
	}
	return true
}

func validValue(b []byte) bool {
	for _, c := range b {
		if !isValueByte[c] {
			return false
		}
	}
	return true
}

// parseDecimal parses a Content-Length: digits only, no sign, no overflow.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validHost checks a Host value: reg-name / IPv4 / [IPv6] with optional port.
// Percent-encoding and userinfo are refused: no legitimate client sends them.
func validHost(h []byte) bool {
	if len(h) == 0 || len(h) > 255 {
		return false
	}
	i := 0
	if h[0] == '[' {
		j := 1
		for j < len(h) && h[j] != ']' {
			c := h[j]
			if !(c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f' || c == ':' || c == '.') {
				return false
			}
			j++
		}
		if j == len(h) {
			return false
		}
		i = j + 1
	} else {
		for i < len(h) && h[i] != ':' {
			c := h[i]
			if !(c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z' || c == '-' || c == '.' || c == '_') {
				return false
			}
			i++
		}
	}
	if i == len(h) {
		return true
	}
	if h[i] != ':' {
		return false
	}
	port := h[i+1:]
	if len(port) > 5 {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
