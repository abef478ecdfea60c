package exchange

import (
	"crypto/tls"
	"strconv"
)

// TLSInfo is what a request knows of the TLS connection it came over.
type TLSInfo struct {
	State tls.ConnectionState
	// ClientSubject is the subject of the client certificate, in RFC 2253
	// form, when one was presented and verified; nil otherwise.
	ClientSubject []byte
	// SubjectHeader is the request header the listener passes ClientSubject
	// to backends in; nil for none. Client copies of it are removed.
	SubjectHeader []byte
}

// NewTLSInfo describes a finished handshake.
func NewTLSInfo(cs tls.ConnectionState) *TLSInfo {
	t := &TLSInfo{State: cs}
	if len(cs.VerifiedChains) > 0 && len(cs.PeerCertificates) > 0 {
		t.ClientSubject = headerSafe(cs.PeerCertificates[0].Subject.String())
	}
	return t
}

// headerSafe escapes the bytes a header value may not carry (controls,
// DEL, and non-ASCII, which some backends mangle) as \XX, in the hex
// escape style of RFC 4514.
func headerSafe(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			out = append(out, '\\')
			if c < 0x10 {
				out = append(out, '0')
			}
			out = strconv.AppendUint(out, uint64(c), 16)
			continue
		}
		out = append(out, c)
	}
	return out
}
