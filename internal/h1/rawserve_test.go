package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// The tests here are about serveRaw: keep-alive requests served inside
// RawConn.Read, where a missed readiness notice would leave a request
// unanswered until the idle timeout.

func TestServerRawNextRequestArrivesDuringHandler(t *testing.T) {
	// The next request reaches the socket while the handler of the one
	// before runs (no goroutine waits on the socket then): it must be
	// served at once, not after the idle timeout.
	entered, release := make(chan struct{}, 1), make(chan struct{})
	lim := defaultLimits()
	lim.IdleTimeout = 20 * time.Second
	ts := startServer(t, handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
		if string(r.Path) == "/wait" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHead(200, nil, nil, int64(len(r.Path)))
		w.Write(r.Path)
	}), lim)
	c, br := ts.dial(t)
	for i := 0; i < 2; i++ {
		send(t, c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
		readResponse(t, br, "GET")
	}
	send(t, c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	send(t, c, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the bytes are in the server's socket
	close(release)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, body := readResponse(t, br, "GET"); body != "/wait" {
		t.Fatalf("first body %q", body)
	}
	if _, body := readResponse(t, br, "GET"); body != "/next" {
		t.Fatalf("second body %q", body)
	}
}

func TestServerRawIdleDeadlineAfterSlowRequest(t *testing.T) {
	// The idle deadline set before a request that outlasts it must not cut
	// the connection once that request is answered.
	lim := defaultLimits()
	lim.IdleTimeout = 200 * time.Millisecond
	ts := startServer(t, handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
		if string(r.Path) == "/slow" {
			time.Sleep(400 * time.Millisecond)
		}
		w.WriteHead(200, nil, nil, 2)
		io.WriteString(w, "ok")
	}), lim)
	c, br := ts.dial(t)
	for _, p := range []string{"/a", "/slow", "/b"} {
		send(t, c, "GET "+p+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%s: %d %q", p, resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	expectClosed(t, c, br)
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("idle connection closed after %v, want about 200ms", d)
	}
}

func TestServerRawThenBlockingRequests(t *testing.T) {
	// Requests the raw loop hands to the blocking one (a body, a head in
	// pieces, an upgrade) between plain ones on one connection.
	ts := startServer(t, handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
		if r.Upgrade != nil {
			echoTunnel(t, w, exchange.Headers{{Name: []byte("Upgrade"), Value: []byte("echo")}})
			return
		}
		testHandler().ServeExchange(r, w)
	}), defaultLimits())
	c, br := ts.dial(t)
	get := func(path string) {
		t.Helper()
		send(t, c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "hello" {
			t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
		}
	}
	get("/hello")
	send(t, c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n")
	time.Sleep(30 * time.Millisecond)
	send(t, c, "abcd")
	if _, body := readResponse(t, br, "POST"); body != "abcd" {
		t.Fatalf("echo %q", body)
	}
	get("/hello")
	send(t, c, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n")
	if _, body := readResponse(t, br, "POST"); body != "xyz" {
		t.Fatalf("chunked echo %q", body)
	}
	send(t, c, "GET /hello HTTP/1.1\r\nHo")
	time.Sleep(30 * time.Millisecond)
	send(t, c, "st: a\r\n\r\n")
	if _, body := readResponse(t, br, "GET"); body != "hello" {
		t.Fatalf("split head: %q", body)
	}
	send(t, c, "\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n") // an empty line first
	if _, body := readResponse(t, br, "GET"); body != "hello" {
		t.Fatalf("after an empty line: %q", body)
	}
	send(t, c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if head := readRawHead(t, br); !strings.HasPrefix(head, "HTTP/1.1 101 ") {
		t.Fatalf("upgrade answer %q", head)
	}
	send(t, c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("tunnel echo %q, %v", line, err)
	}
}

func TestServerRawBadHeadAfterGoodOnes(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	for _, bad := range []string{
		"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",                                     // bare LF
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", // smuggling
		"GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("x", 9<<10) + "\r\n\r\n",  // over MaxHeaderBytes
	} {
		c, br := ts.dial(t)
		send(t, c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
		readResponse(t, br, "GET")
		send(t, c, bad)
		resp, _ := readResponse(t, br, "GET")
		if resp.StatusCode != 400 && resp.StatusCode != 431 || !resp.Close {
			t.Errorf("%.40q: status %d, close %v", bad, resp.StatusCode, resp.Close)
		}
		// (The unread rest of the oversized head may turn the close into a
		// reset, as on the blocking path: only the answer is checked.)
	}
}

func TestServerRawClientGoneWhileIdle(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	for i := 0; i < 3; i++ {
		send(t, c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
		readResponse(t, br, "GET")
	}
	c.Close()
	select {
	case <-ts.served:
	case <-time.After(3 * time.Second):
		t.Fatal("ServeConn still running after the client closed an idle connection")
	}
}

func TestServerRawDrainIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lim := defaultLimits()
	srv := &Server{Handler: testHandler(), Limits: func() *Limits { return &lim }}
	st := new(ConnState)
	done := make(chan struct{})
	conns := make(chan net.Conn, 1)
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		conns <- nc
		srv.ServeConn(nc, st)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ {
		send(t, c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
		readResponse(t, br, "GET")
	}
	nc := <-conns
	deadline := time.Now().Add(2 * time.Second)
	for !st.Drain() {
		if time.Now().After(deadline) {
			t.Fatal("connection never reported idle")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !st.KeepAliveIdle() {
		t.Error("an idle connection that answered requests is not KeepAliveIdle")
	}
	nc.Close() // as the owner does when Drain says idle
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("ServeConn did not return after its idle connection was closed")
	}
}

// readSyscalls is this process's count of read system calls so far.
func readSyscalls(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatalf("no read counter: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("no syscr in /proc/self/io")
	return 0
}

// blockingConn is a TCP connection outside Go's poller, so that each of its
// reads is exactly one read(2) and the test's own count is known.
func blockingConn(t *testing.T, fd int) *os.File {
	t.Helper()
	f := os.NewFile(uintptr(fd), "blocking")
	t.Cleanup(func() { f.Close() })
	return f
}

func dialBlocking(t *testing.T, addr string) *os.File {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		t.Fatal(err)
	}
	return blockingConn(t, fd)
}

// oneRead reads one answer of want bytes with a single read(2).
func oneRead(t *testing.T, f *os.File, buf []byte, want string) {
	t.Helper()
	n, err := syscall.Read(int(f.Fd()), buf)
	if err != nil || !bytes.HasSuffix(buf[:n], []byte(want)) {
		t.Fatalf("read %q, %v; want it to end in %q", buf[:n], err, want)
	}
}

func TestServerRawReadsOncePerRequest(t *testing.T) {
	// The point of serveRaw: on a keep-alive connection, a request costs the
	// server one read(2), not a read that finds nothing and then another.
	ts := newTestServer(t, defaultLimits())
	f := dialBlocking(t, ts.addr)
	buf := make([]byte, 4096)
	req := []byte("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
	f.Write(req)
	oneRead(t, f, buf, "hello")
	const n = 200
	pause := func() {
		// The server waits for each request, as it does for a client that
		// thinks or a network that takes its time.
		// A spin, not a sleep: a timer would make the runtime read its
		// poller's wake-up event, which this test would count.
		for end := time.Now().Add(300 * time.Microsecond); time.Now().Before(end); {
		}
	}
	// Whatever else reads in the meantime is counted first, with the same
	// pauses and no requests.
	before := readSyscalls(t)
	for i := 0; i < n; i++ {
		pause()
	}
	noise := readSyscalls(t) - before
	before = readSyscalls(t)
	for i := 0; i < n; i++ {
		pause()
		syscall.Write(int(f.Fd()), req)
		oneRead(t, f, buf, "hello")
	}
	// n reads are the test's own.
	perRequest := float64(readSyscalls(t)-before-n-noise) / n
	t.Logf("server read calls a request: %.2f (runtime's own in the same time: %d)", perRequest, noise)
	if perRequest > 1.5 {
		t.Errorf("the server made %.2f read calls a request, want 1", perRequest)
	}
}

func TestServerRawIdleTimeoutOfARecycledConn(t *testing.T) {
	// A connection served by the pooled state of one that just ended must
	// still get its idle deadline: armIdle skips setting one that was set
	// less than an eighth of the timeout ago, and that was the old
	// connection's.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one P: one pool cache
	lim := defaultLimits()
	lim.IdleTimeout = 400 * time.Millisecond
	ts := newTestServer(t, lim)
	for i := range 4 {
		a, abr := ts.dial(t)
		send(t, a, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		readResponse(t, abr, "GET")
		a.Close()
		<-ts.served
		b, bbr := ts.dial(t)
		send(t, b, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		readResponse(t, bbr, "GET")
		start := time.Now()
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		expectClosed(t, b, bbr)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("pair %d: idle connection closed after %v, want about 400ms", i, d)
		}
	}
}
