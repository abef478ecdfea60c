package ratelimit

import (
	"bytes"
	"encoding/binary"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

// keySpec turns an exchange into the bytes that identify its bucket.
type keySpec struct {
	parts      []part
	ipv4Prefix int
	ipv6Prefix int
}

// Markers written before each component's value, so that an absent header
// and an empty one, or two components whose values shift bytes between
// them, never produce the same key.
const (
	markAbsent  = 0
	markPresent = 1
)

// appendKey appends the key material of x to dst. Each component is
// written as a marker and, when present, a length-prefixed value.
func (k *keySpec) appendKey(dst []byte, x *filter.Exchange) []byte {
	for _, p := range k.parts {
		switch p.kind {
		case partClientIP:
			dst = k.appendIP(dst, x)
		case partRoute:
			dst = appendValue(dst, x.Route)
		case partHeader:
			v := x.Req.Header.Get(p.name)
			if v == nil && !x.Req.Header.Has(p.name) {
				dst = append(dst, markAbsent)
			} else {
				dst = appendValue(dst, exchange.TrimOWS(v))
			}
		case partQuery:
			dst = appendQuery(dst, x.Req.Query, p.name)
		}
	}
	return dst
}

// appendIP writes the client's address masked to the configured prefix:
// one IPv6 client usually owns a whole /64, so by default a /64 is one key.
func (k *keySpec) appendIP(dst []byte, x *filter.Exchange) []byte {
	ip := x.ClientIP
	if !ip.IsValid() {
		return append(dst, markAbsent)
	}
	bits := k.ipv6Prefix
	if ip.Is4() {
		bits = k.ipv4Prefix
	}
	pfx, err := ip.WithZone("").Prefix(bits)
	if err != nil {
		return append(dst, markAbsent)
	}
	a := pfx.Addr().As16()
	dst = append(dst, markPresent, byte(ip.BitLen()))
	return append(dst, a[:]...)
}

func appendValue[T string | []byte](dst []byte, v T) []byte {
	dst = append(dst, markPresent)
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// appendQuery writes the first value of parameter name in the raw query,
// percent-decoded ('+' as space, as forms send it) so that a client cannot
// get a fresh bucket by spelling the same value another way.
func appendQuery(dst []byte, query []byte, name string) []byte {
	for len(query) > 0 {
		var pair []byte
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			pair, query = query, nil
		}
		k, v := pair, []byte(nil)
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		if !decodedEqual(k, name) {
			continue
		}
		dst = append(dst, markPresent)
		// The decoded length is not known before decoding: write the value,
		// then its length after it (still unambiguous, read from the end).
		start := len(dst)
		dst = appendDecoded(dst, v)
		return binary.AppendUvarint(dst, uint64(len(dst)-start))
	}
	return append(dst, markAbsent)
}

// decodedEqual reports whether the percent-encoded k decodes to name.
func decodedEqual(k []byte, name string) bool {
	j := 0
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '+' {
			c = ' '
		} else if c == '%' && i+2 < len(k) && isHex(k[i+1]) && isHex(k[i+2]) {
			c = unhex(k[i+1])<<4 | unhex(k[i+2])
			i += 2
		}
		if j >= len(name) || name[j] != c {
			return false
		}
		j++
	}
	return j == len(name)
}

func appendDecoded(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '+' {
			c = ' '
		} else if c == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
			c = unhex(v[i+1])<<4 | unhex(v[i+2])
			i += 2
		}
		dst = append(dst, c)
	}
	return dst
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
