package proxyproto

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// pair returns the two ends of a real loopback TCP connection.
func pair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestReadLeavesTheRest checks, over real sockets and over a pipe, that
// Read takes the header and not one byte more, also when the header
// arrives in pieces.
func TestReadLeavesTheRest(t *testing.T) {
	bigTLVs := make([]byte, 600)
	bigTLVs[0], bigTLVs[1], bigTLVs[2] = 0x04, 0x02, 0x55 // one NOOP TLV of 597 bytes
	headers := map[string][]byte{
		"v1":          []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"),
		"v1 unknown":  []byte("PROXY UNKNOWN\r\n"),
		"v2":          v2(cmdProxy, famInet6<<4|protoTCP, inet6("2001:db8::7", "::1", 5, 6), nil),
		"v2 big TLVs": v2(cmdProxy, famInet<<4|protoTCP, inet4("192.0.2.9", "10.0.0.1", 7, 8), bigTLVs),
		"v2 local":    v2(cmdLocal, 0, nil, nil),
	}
	const rest = "GET / HTTP/1.1\r\n"
	for name, hdr := range headers {
		for _, kind := range []string{"tcp", "pipe"} {
			t.Run(name+" "+kind, func(t *testing.T) {
				var c, s net.Conn
				if kind == "tcp" {
					c, s = pair(t)
				} else {
					c, s = net.Pipe()
					defer c.Close()
					defer s.Close()
				}
				go func() {
					// In three pieces, the last with the data after it.
					c.Write(hdr[:5])
					time.Sleep(10 * time.Millisecond)
					c.Write(hdr[5:9])
					time.Sleep(10 * time.Millisecond)
					c.Write(append(append([]byte(nil), hdr[9:]...), rest...))
				}()
				s.SetReadDeadline(time.Now().Add(5 * time.Second))
				h, err := Read(s)
				if err != nil {
					t.Fatal(err)
				}
				want, _, _ := Parse(hdr)
				if h != want {
					t.Fatalf("got %+v, want %+v", h, want)
				}
				got := make([]byte, len(rest))
				if _, err := io.ReadFull(s, got); err != nil || string(got) != rest {
					t.Fatalf("after the header: %q %v, want %q", got, err, rest)
				}
			})
		}
	}
}

// TestReadRefuses checks that what is not a header, a malformed one and a
// silent client end in an error without consuming the stream's bytes
// beyond the header's signature.
func TestReadRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"http":      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"malformed": "PROXY TCP4 1.2.3.4 nope 1 2\r\n",
		"v1 no end": "PROXY UNKNOWN " + string(make([]byte, 200)),
	} {
		t.Run(name, func(t *testing.T) {
			c, s := pair(t)
			c.Write([]byte(in))
			s.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := Read(s); err == nil {
				t.Fatal("no error")
			}
		})
	}
	t.Run("silent", func(t *testing.T) {
		_, s := pair(t)
		s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		start := time.Now()
		_, err := Read(s)
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("the deadline was not honoured")
		}
	})
	t.Run("closed", func(t *testing.T) {
		c, s := pair(t)
		c.Write([]byte("PROXY TCP4"))
		c.Close()
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := Read(s); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestConnAddrs(t *testing.T) {
	_, s := pair(t)
	h := Header{Source: netip.MustParseAddrPort("[2001:db8::1]:4242"), Dest: netip.MustParseAddrPort("192.0.2.1:443")}
	pc := NewConn(s, h)
	if got := pc.RemoteAddr().String(); got != "[2001:db8::1]:4242" {
		t.Errorf("RemoteAddr = %s", got)
	}
	if got := pc.LocalAddr().String(); got != "192.0.2.1:443" {
		t.Errorf("LocalAddr = %s", got)
	}
	if pc.TCP() != s {
		t.Error("TCP() is not the socket underneath")
	}
}
