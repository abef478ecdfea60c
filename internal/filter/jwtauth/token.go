package jwtauth

import (
	"bytes"
	"net/url"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// maxToken bounds a token: real ones are well under 8 KiB, and the parser
// should not be handed megabytes of base64 to decode.
const maxToken = 16 << 10

// found says what the request carried.
type found int

const (
	none      found = iota // no token: a plain challenge (RFC 6750 §3.1)
	malformed              // something that cannot be a token
	present
)

// token finds the request's token where `from` says.
func (f *Filter) token(req *exchange.Request) ([]byte, found) {
	var v []byte
	switch f.from.kind {
	case fromHeader:
		n := 0
		for i := range req.Header {
			if exchange.EqualFold(req.Header[i].Name, "Authorization") {
				if n == 0 {
					v = req.Header[i].Value
				}
				n++
			}
		}
		if n == 0 {
			return nil, none
		}
		if n > 1 {
			return nil, malformed
		}
		t, ok := bearer(v)
		if !ok {
			return nil, none // another scheme (Basic, ...): not ours
		}
		v = t
	case fromNamedHeader:
		v = req.Header.Get(f.from.name)
		if t, ok := bearer(v); ok {
			v = t
		}
	case fromCookie:
		v = req.Header.Cookie(f.from.name)
	case fromQuery:
		v = queryValue(req.Query, f.from.name)
	}
	v = exchange.TrimOWS(v)
	if len(v) == 0 {
		return nil, none
	}
	if !jwsCompact(v) {
		return nil, malformed
	}
	return v, present
}

// bearer returns the credentials of `Bearer TOKEN` (RFC 6750 §2.1: the
// scheme is case-insensitive, followed by one or more spaces).
func bearer(v []byte) ([]byte, bool) {
	if len(v) < 7 || !exchange.EqualFold(v[:6], "Bearer") || v[6] != ' ' {
		return nil, false
	}
	return bytes.TrimLeft(v[7:], " "), true
}

// jwsCompact reports whether v looks like a compact JWS: three base64url
// parts separated by dots, of a sane length.
func jwsCompact(v []byte) bool {
	if len(v) > maxToken {
		return false
	}
	dots := 0
	for _, c := range v {
		switch {
		case c == '.':
			dots++
		case c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		default:
			return false
		}
	}
	return dots == 2
}

// queryValue is the value of the first query parameter called name,
// percent-decoded when it needs to be (tokens seldom do).
func queryValue(q []byte, name string) []byte {
	for len(q) > 0 {
		var pair []byte
		if j := bytes.IndexByte(q, '&'); j >= 0 {
			pair, q = q[:j], q[j+1:]
		} else {
			pair, q = q, nil
		}
		k, val, _ := bytes.Cut(pair, []byte{'='})
		if string(k) != name {
			continue
		}
		if bytes.ContainsAny(val, "%+") {
			s, err := url.QueryUnescape(string(val))
			if err != nil {
				return nil
			}
			return []byte(s)
		}
		return val
	}
	return nil
}
