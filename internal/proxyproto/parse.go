// Package proxyproto reads the PROXY protocol header (versions 1 and 2, as
// specified by HAProxy's proxy-protocol.txt) that load balancers such as
// HAProxy and AWS NLB put before a connection's first byte to name the
// client they accepted it from.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
)

// Header is what a PROXY header says.
type Header struct {
	Version int // 1 or 2
	// Local is true when the header names no client to use: a v2 LOCAL
	// command (the balancer's own health check), a v1 UNKNOWN, or a v2
	// address family gatehouse does not serve (unspecified, unix). The
	// connection's own addresses stand then.
	Local bool
	// Source is the client, Dest the address it connected to (when !Local).
	Source, Dest netip.AddrPort
}

// ErrShort means b holds the start of a header but not all of it.
var ErrShort = errors.New("proxyproto: incomplete header")

// ErrNotProxy means the bytes are not a PROXY header at all.
var ErrNotProxy = errors.New("proxyproto: no PROXY header")

var errBad = errors.New("proxyproto: malformed header")

// v2Sig opens every version 2 header.
var v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

var v1Prefix = []byte("PROXY ")

// v1Max is the longest version 1 header, CRLF included.
const v1Max = 107

// v2Fixed is the length of a version 2 header before its address block.
const v2Fixed = 16

// Parse reads the header at the start of b and returns it with its length
// in bytes. It returns ErrShort when b is a proper prefix of a header (more
// bytes are needed) and ErrNotProxy when b cannot begin one.
func Parse(b []byte) (Header, int, error) {
	switch {
	case len(b) == 0:
		return Header{}, 0, ErrShort
	case hasPrefixOf(b, v2Sig):
		return parseV2(b)
	case hasPrefixOf(b, v1Prefix):
		return parseV1(b)
	}
	return Header{}, 0, ErrNotProxy
}

// hasPrefixOf tells whether b and sig agree on their common length (and b
// is not empty): b may still grow into sig, or already starts with it.
func hasPrefixOf(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return n > 0 && bytes.Equal(b[:n], sig[:n])
}

// Need returns the length of the header that starts b, once b holds enough
// to tell it (ok); a header that cannot be one is reported with ok and an
// error so that the caller stops reading.
func Need(b []byte) (n int, ok bool, err error) {
	switch {
	case len(b) == 0:
		return 0, false, nil
	case hasPrefixOf(b, v2Sig):
		if len(b) > len(v2Sig) && b[12]>>4 != 2 {
			return 0, true, errBad
		}
		if len(b) < v2Fixed {
			return 0, false, nil
		}
		return v2Fixed + int(binary.BigEndian.Uint16(b[14:16])), true, nil
	case hasPrefixOf(b, v1Prefix):
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return i + 1, true, nil
		}
		if len(b) >= v1Max {
			return 0, true, errBad
		}
		return 0, false, nil
	}
	return 0, true, ErrNotProxy
}

// parseV1 reads "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n".
func parseV1(b []byte) (Header, int, error) {
	end := bytes.IndexByte(b[:min(len(b), v1Max)], '\n')
	if end < 0 {
		if len(b) >= v1Max {
			return Header{}, 0, errBad
		}
		return Header{}, 0, ErrShort
	}
	n := end + 1
	if end < 1 || b[end-1] != '\r' {
		return Header{}, 0, errBad
	}
	line := b[len(v1Prefix) : end-1]
	h := Header{Version: 1}
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	switch string(proto) {
	case "UNKNOWN":
		// The receiver ignores whatever follows (the spec allows anything).
		h.Local = true
		return h, n, nil
	case "TCP4", "TCP6":
	default:
		return Header{}, 0, errBad
	}
	f := bytes.Split(rest, []byte(" "))
	if len(f) != 4 {
		return Header{}, 0, errBad
	}
	src, ok1 := parseV1Addr(f[0], proto[3] == '6')
	dst, ok2 := parseV1Addr(f[1], proto[3] == '6')
	sp, ok3 := parsePort(f[2])
	dp, ok4 := parsePort(f[3])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return Header{}, 0, errBad
	}
	h.Source, h.Dest = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, n, nil
}

func parseV1Addr(b []byte, v6 bool) (netip.Addr, bool) {
	a, err := netip.ParseAddr(string(b))
	if err != nil || a.Zone() != "" || a.Is6() != v6 {
		return netip.Addr{}, false
	}
	return a, true
}

// parsePort reads a decimal port without sign or leading zeros.
func parsePort(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// Version 2 command, family and transport values.
const (
	cmdLocal   = 0x0
	cmdProxy   = 0x1
	famUnspec  = 0x0
	famInet    = 0x1
	famInet6   = 0x2
	famUnix    = 0x3
	protoSpec  = 0x0
	protoTCP   = 0x1
	v2AddrLen4 = 12
	v2AddrLen6 = 36
)

// parseV2 reads the binary header: signature, version and command, family
// and transport, length, then the address block and TLVs (skipped).
func parseV2(b []byte) (Header, int, error) {
	if len(b) > len(v2Sig) && b[12]>>4 != 2 {
		return Header{}, 0, errBad
	}
	if len(b) < v2Fixed {
		return Header{}, 0, ErrShort
	}
	n := v2Fixed + int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) < n {
		return Header{}, 0, ErrShort
	}
	h := Header{Version: 2}
	cmd, fam, proto := b[12]&0xf, b[13]>>4, b[13]&0xf
	addr := b[v2Fixed:n]
	switch cmd {
	case cmdLocal:
		// The balancer speaking for itself: the block, if any, is ignored.
		h.Local = true
		return h, n, nil
	case cmdProxy:
	default:
		return Header{}, 0, errBad
	}
	switch fam {
	case famUnspec, famUnix:
		h.Local = true
		return h, n, nil
	case famInet, famInet6:
	default:
		return Header{}, 0, errBad
	}
	if proto != protoTCP {
		// A datagram flow's addresses cannot describe a TCP connection;
		// an unspecified one carries none to use.
		if proto == protoSpec {
			h.Local = true
			return h, n, nil
		}
		return Header{}, 0, errBad
	}
	if fam == famInet {
		if len(addr) < v2AddrLen4 {
			return Header{}, 0, errBad
		}
		src := netip.AddrFrom4([4]byte(addr[0:4]))
		dst := netip.AddrFrom4([4]byte(addr[4:8]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(addr[8:10]))
		h.Dest = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(addr[10:12]))
		return h, n, nil
	}
	if len(addr) < v2AddrLen6 {
		return Header{}, 0, errBad
	}
	src := netip.AddrFrom16([16]byte(addr[0:16]))
	dst := netip.AddrFrom16([16]byte(addr[16:32]))
	h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(addr[32:34]))
	h.Dest = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(addr[34:36]))
	return h, n, nil
}
