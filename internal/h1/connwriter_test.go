package h1

import (
	"net"
	"testing"
	"time"
)

func tcpPair(tb testing.TB) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestConnWriterCutsAStalledReader: writes to a peer that reads nothing
// fail once the write timeout has passed, not before 7/8 of it.
func TestConnWriterCutsAStalledReader(t *testing.T) {
	a, _ := tcpPair(t)
	c := &conn{nc: a}
	w := &connWriter{c: c, timeout: 400 * time.Millisecond}
	buf := make([]byte, 64<<10)
	start := time.Now()
	for {
		if _, err := w.Write(buf); err != nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("writes to a peer that never reads did not fail")
		}
	}
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Fatalf("cut after %v, before 7/8 of the 400ms timeout", d)
	}
}

// BenchmarkConnWriterArm is what a write timeout adds to each write: the
// clock read, and now and then the deadline moved.
func BenchmarkConnWriterArm(b *testing.B) {
	a, _ := tcpPair(b)
	w := &connWriter{c: &conn{nc: a}, timeout: time.Minute}
	for b.Loop() {
		w.arm()
	}
}

// BenchmarkSetWriteDeadline is the cost arm saves on most writes.
func BenchmarkSetWriteDeadline(b *testing.B) {
	a, _ := tcpPair(b)
	for b.Loop() {
		a.SetWriteDeadline(time.Now().Add(time.Minute))
	}
}
