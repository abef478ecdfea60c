package h1

import (
	"context"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// blockingBackend answers every request read on one accepted connection,
// after a pause, with a 5-byte body. Its socket is outside Go's poller, so
// it reads exactly once a request. It returns the listener's address.
func blockingBackend(t *testing.T, pause time.Duration) string {
	t.Helper()
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ln := blockingConn(t, lfd)
	if err := syscall.Bind(lfd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(lfd)
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	go func() {
		fd, _, err := syscall.Accept(int(ln.Fd()))
		if err != nil {
			return
		}
		defer syscall.Close(fd)
		buf := make([]byte, 4096)
		resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
		for {
			if n, err := syscall.Read(fd, buf); n <= 0 || err != nil {
				return
			}
			for end := time.Now().Add(pause); time.Now().Before(end); {
			}
			if _, err := syscall.Write(fd, resp); err != nil {
				return
			}
		}
	}()
	return addr
}

// sendGET sends a bodyless GET and waits up to timeout for its answer.
func sendGET(cc *ClientConn, timeout time.Duration) error {
	cc.WriteRequestLine([]byte("GET"), nil, []byte("/"), nil, false)
	cc.WriteField([]byte("Host"), []byte("a"))
	cc.EndHead(0)
	cc.SetReadDeadline(time.Now().Add(timeout))
	return cc.Send()
}

// getOver sends a GET over tr and reads the answer to its end.
func getOver(t *testing.T, tr *Transport) error {
	t.Helper()
	cc, err := tr.Get(context.Background())
	if err != nil {
		return err
	}
	if err := sendGET(cc, 5*time.Second); err != nil {
		cc.Close()
		return err
	}
	if _, err := cc.ReadResponse(false); err != nil {
		cc.Close()
		return err
	}
	if b, err := io.ReadAll(cc.Body()); err != nil || string(b) != "hello" {
		t.Fatalf("body %q, %v", b, err)
	}
	cc.Release()
	return nil
}

func TestClientSendReadsOncePerResponse(t *testing.T) {
	// Send waits for the answer without a read that finds nothing first.
	tr := &Transport{Addr: blockingBackend(t, 300*time.Microsecond), DialTimeout: time.Second, MaxIdle: 2, MaxHeader: 8 << 10}
	defer tr.CloseIdle(true)
	if err := getOver(t, tr); err != nil {
		t.Fatal(err)
	}
	const n = 200
	before := readSyscalls(t)
	for i := 0; i < n; i++ {
		if err := getOver(t, tr); err != nil {
			t.Fatal(err)
		}
	}
	// n reads are the backend's.
	perResponse := float64(readSyscalls(t)-before-n) / n
	t.Logf("client read calls a response: %.2f", perResponse)
	if perResponse > 1.5 {
		t.Errorf("the client made %.2f read calls a response, want 1", perResponse)
	}
}

// dialBackend is a connection to a loopback backend that hands each
// accepted connection to serve (which owns it).
func dialBackend(t *testing.T, serve func(net.Conn)) *ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		if c, err := ln.Accept(); err == nil {
			serve(c)
		}
	}()
	tr := &Transport{Addr: ln.Addr().String(), DialTimeout: time.Second, MaxIdle: 2, MaxHeader: 8 << 10}
	cc, err := tr.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Close)
	return cc
}

func TestClientSendErrors(t *testing.T) {
	t.Run("backend closed the idle connection", func(t *testing.T) {
		cc := dialBackend(t, func(c net.Conn) { c.Close() })
		time.Sleep(50 * time.Millisecond)
		if err := sendGET(cc, 5*time.Second); !IsIdleClose(err) {
			t.Errorf("Send on a connection the backend closed: %v, want an idle close (EOF or reset)", err)
		}
	})
	t.Run("no answer before the deadline", func(t *testing.T) {
		silent := make(chan net.Conn, 1)
		cc := dialBackend(t, func(c net.Conn) { silent <- c })
		defer func() { (<-silent).Close() }()
		start := time.Now()
		err := sendGET(cc, 100*time.Millisecond)
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Errorf("Send with a silent backend: %v, want a timeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("timed out after %v", d)
		}
	})
}
