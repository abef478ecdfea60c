package proxyproto

import (
	"errors"
	"testing"
)

// FuzzParse checks that no input crashes the parser or makes it read past
// what it was given, that Need and Parse agree on a header's length, and
// that every prefix of a valid header is reported as incomplete.
func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 ::1 1 65535\r\nGET / HTTP/1.1\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(cmdProxy, famInet<<4|protoTCP, inet4("192.0.2.1", "198.51.100.2", 1000, 80), nil))
	f.Add(v2(cmdProxy, famInet6<<4|protoTCP, inet6("2001:db8::7", "::1", 5, 6), []byte{4, 0, 1, 0}))
	f.Add(v2(cmdLocal, 0, nil, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err != nil {
			if need, ok, nerr := Need(b); errors.Is(err, ErrShort) && ok && nerr == nil && need <= len(b) {
				t.Fatalf("Parse says short, Need says a %d-byte header is complete in %d bytes", need, len(b))
			}
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("length %d of %d bytes", n, len(b))
		}
		if need, ok, nerr := Need(b[:n]); !ok || nerr != nil || need != n {
			t.Fatalf("Need = %d %v %v, Parse length %d", need, ok, nerr, n)
		}
		if !h.Local && (!h.Source.IsValid() || !h.Dest.IsValid()) {
			t.Fatalf("non-local header without addresses: %+v", h)
		}
		for i := 0; i < n; i++ {
			if _, _, err := Parse(b[:i]); !errors.Is(err, ErrShort) {
				t.Fatalf("prefix of %d bytes of a %d-byte header: %v, want ErrShort", i, n, err)
			}
		}
	})
}
