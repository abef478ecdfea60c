package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// v2 builds a version 2 header: command, family<<4|transport, address
// block and TLV bytes.
func v2(cmd, famProto byte, addr, tlvs []byte) []byte {
	b := append([]byte(nil), v2Sig...)
	b = append(b, 0x20|cmd, famProto)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addr)+len(tlvs)))
	b = append(b, addr...)
	return append(b, tlvs...)
}

func inet4(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func inet6(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func TestParse(t *testing.T) {
	ap := netip.MustParseAddrPort
	tlv := []byte{0x04, 0x00, 0x03, 'a', 'b', 'c', 0x20, 0x00, 0x01, 0x00} // NOOP and SSL TLVs
	cases := []struct {
		name string
		in   []byte
		want Header
		n    int
		err  error
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /"), Header{Version: 1, Source: ap("192.0.2.1:56324"), Dest: ap("198.51.100.2:443")}, 45, nil},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n"), Header{Version: 1, Source: ap("[2001:db8::1]:1"), Dest: ap("[::1]:65535")}, 36, nil},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Local: true}, 15, nil},
		{"v1 unknown with addresses", []byte("PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 65535 65535\r\n"), Header{Version: 1, Local: true}, 51, nil},
		{"v1 incomplete", []byte("PROXY TCP4 192.0.2.1 19"), Header{}, 0, ErrShort},
		{"v1 prefix only", []byte("PRO"), Header{}, 0, ErrShort},
		{"v1 bare LF", []byte("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n"), Header{}, 0, errBad},
		{"v1 v6 address in tcp4", []byte("PROXY TCP4 ::1 1.2.3.4 1 2\r\n"), Header{}, 0, errBad},
		{"v1 v4 address in tcp6", []byte("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), Header{}, 0, errBad},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), Header{}, 0, errBad},
		{"v1 leading zero port", []byte("PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n"), Header{}, 0, errBad},
		{"v1 port too big", []byte("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n"), Header{}, 0, errBad},
		{"v1 extra field", []byte("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n"), Header{}, 0, errBad},
		{"v1 double space", []byte("PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n"), Header{}, 0, errBad},
		{"v1 udp", []byte("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"), Header{}, 0, errBad},
		{"v1 too long", append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("x"), 120)...), Header{}, 0, errBad},
		{"not proxy", []byte("GET / HTTP/1.1\r\n"), Header{}, 0, ErrNotProxy},
		{"v2 tcp4", v2(cmdProxy, famInet<<4|protoTCP, inet4("192.0.2.1", "198.51.100.2", 1000, 80), nil), Header{Version: 2, Source: ap("192.0.2.1:1000"), Dest: ap("198.51.100.2:80")}, 28, nil},
		{"v2 tcp6 with TLVs", v2(cmdProxy, famInet6<<4|protoTCP, inet6("2001:db8::7", "::1", 5, 6), tlv), Header{Version: 2, Source: ap("[2001:db8::7]:5"), Dest: ap("[::1]:6")}, 16 + 36 + len(tlv), nil},
		{"v2 local", v2(cmdLocal, 0, nil, nil), Header{Version: 2, Local: true}, 16, nil},
		{"v2 local with block", v2(cmdLocal, famInet<<4|protoTCP, inet4("1.1.1.1", "2.2.2.2", 1, 2), nil), Header{Version: 2, Local: true}, 28, nil},
		{"v2 unix", v2(cmdProxy, famUnix<<4|protoTCP, make([]byte, 216), nil), Header{Version: 2, Local: true}, 16 + 216, nil},
		{"v2 unspec", v2(cmdProxy, 0, nil, nil), Header{Version: 2, Local: true}, 16, nil},
		{"v2 udp", v2(cmdProxy, famInet<<4|2, inet4("1.1.1.1", "2.2.2.2", 1, 2), nil), Header{}, 0, errBad},
		{"v2 short block", v2(cmdProxy, famInet6<<4|protoTCP, make([]byte, 12), nil), Header{}, 0, errBad},
		{"v2 bad command", v2(0x2, famInet<<4|protoTCP, inet4("1.1.1.1", "2.2.2.2", 1, 2), nil), Header{}, 0, errBad},
		{"v2 bad family", v2(cmdProxy, 0x4<<4|protoTCP, nil, nil), Header{}, 0, errBad},
		{"v2 version 1", append(append([]byte(nil), v2Sig...), 0x11, 0x11, 0, 0), Header{}, 0, errBad},
		{"v2 incomplete", v2(cmdProxy, famInet<<4|protoTCP, inet4("1.1.1.1", "2.2.2.2", 1, 2), nil)[:20], Header{}, 0, ErrShort},
		{"v2 signature only", v2Sig[:7], Header{}, 0, ErrShort},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := Parse(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && (h != tc.want || n != tc.n) {
				t.Fatalf("got %+v n=%d, want %+v n=%d", h, n, tc.want, tc.n)
			}
			if err == nil {
				// Need agrees with Parse on where the header ends.
				if need, ok, nerr := Need(tc.in); !ok || nerr != nil || need != n {
					t.Fatalf("Need = %d %v %v, want %d", need, ok, nerr, n)
				}
			}
		})
	}
}
