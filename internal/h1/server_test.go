package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

type handlerFunc func(*exchange.Request, exchange.ResponseWriter)

func (f handlerFunc) ServeExchange(r *exchange.Request, w exchange.ResponseWriter) { f(r, w) }

// lockedBuffer collects the server's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testServer struct {
	addr   string
	srv    *Server
	log    *lockedBuffer
	served chan struct{} // one value each time ServeConn returns
}

func defaultLimits() Limits {
	return Limits{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, MaxHeaderBytes: 8 << 10, MaxBodyBytes: 1 << 20}
}

// startServer serves h on a loopback listener until the test ends.
func startServer(t *testing.T, h Handler, lim Limits, configure ...func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), log: new(lockedBuffer), served: make(chan struct{}, 100)}
	ts.srv = &Server{
		Handler: h,
		Limits:  func() *Limits { return &lim },
		Log:     slog.New(slog.NewTextHandler(ts.log, nil)),
	}
	for _, f := range configure {
		f(ts.srv)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				ts.srv.ServeConn(c, new(ConnState))
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				select {
				case ts.served <- struct{}{}:
				default:
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ts
}

func (ts *testServer) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// readResponse reads one response (to a request with method) and its body.
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v (after %q)", err, body)
	}
	return resp, string(body)
}

// readResponseRaw is readResponse that also returns the head as sent
// (net/http drops "Connection: close" from the parsed fields).
func readResponseRaw(t *testing.T, br *bufio.Reader, method string) (string, *http.Response, string) {
	t.Helper()
	head := readRawHead(t, br)
	resp, body := readResponse(t, bufio.NewReader(io.MultiReader(strings.NewReader(head), br)), method)
	return head, resp, body
}

// expectClosed checks that the server closes the connection with nothing more.
func expectClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Errorf("connection not closed: %v", err)
	}
	if len(rest) > 0 {
		t.Errorf("unexpected bytes before close: %q", rest)
	}
}

// rawHead reads a response head as bytes (for checking exact fields).
func readRawHead(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			t.Fatalf("reading head: %v after %q", err, b.String())
		}
		if line == "\r\n" {
			return b.String()
		}
	}
}

var testTrailers = exchange.Headers{{Name: []byte("X-Trailer"), Value: []byte("done")}}

// testHandler answers by path:
//
//	/hello     "hello" with a Content-Length (body unread)
//	/info      the parsed request, as "key=value" lines
//	/echo      the request body, with its trailers in X-Got-Trailers
//	/stream    "part1,part2" of unknown length, with a trailer
//	/head      "hello world" with a Content-Length (for HEAD)
//	/panic     panics before answering
//	/panic-mid panics after part of a body of unknown length
//	/noreply   returns without answering
//	/short     promises 10 bytes, sends 5
//	/continue  sends 100 Continue when asked, then echoes the body
func testHandler() Handler {
	return handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
		switch string(r.Path) {
		case "/hello":
			w.WriteHead(200, nil, exchange.Headers{{Name: []byte("Content-Type"), Value: []byte("text/plain")}}, 5)
			w.Write([]byte("hello"))
		case "/info":
			body := fmt.Sprintf("method=%s\npath=%s\nquery=%s\nhost=%s\nminor=%d\nclose=%v\ncl=%d\nchunked=%v\n",
				r.Method, r.Path, r.Query, r.Host, r.ProtoMinor, r.Close, r.ContentLength, r.Chunked)
			w.WriteHead(200, nil, nil, int64(len(body)))
			io.WriteString(w, body)
		case "/echo", "/continue":
			if r.Expect100 && string(r.Path) == "/continue" {
				w.Write1xx(100, nil)
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				status := 400
				if e, ok := IsHeadError(err); ok {
					status = e.Status
				}
				w.WriteHead(status, nil, nil, 0)
				return
			}
			var tr []string
			for _, h := range *r.Trailers {
				tr = append(tr, string(h.Name)+"="+string(h.Value))
			}
			w.WriteHead(200, nil, exchange.Headers{{Name: []byte("X-Got-Trailers"), Value: []byte(strings.Join(tr, ","))}}, int64(len(body)))
			w.Write(body)
		case "/stream":
			w.WriteHead(200, nil, nil, -1)
			io.WriteString(w, "part1,")
			w.Flush()
			io.WriteString(w, "part2")
			w.Finish(testTrailers)
		case "/head":
			w.WriteHead(200, nil, nil, 11)
			io.WriteString(w, "hello world")
		case "/panic":
			panic("test panic")
		case "/panic-mid":
			w.WriteHead(200, nil, nil, -1)
			io.WriteString(w, "partial")
			w.Flush()
			panic("test panic mid-body")
		case "/slow":
			time.Sleep(1500 * time.Millisecond)
			w.WriteHead(200, nil, nil, 4)
			io.WriteString(w, "slow")
		case "/noreply":
		case "/short":
			w.WriteHead(200, nil, nil, 10)
			io.WriteString(w, "short")
		default:
			w.WriteHead(404, nil, nil, 0)
		}
	})
}

func newTestServer(t *testing.T, lim Limits, configure ...func(*Server)) *testServer {
	return startServer(t, testHandler(), lim, configure...)
}

func TestServerKeepAlive(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	for i := 0; i < 5; i++ {
		send(t, c, "GET /info?i="+strconv.Itoa(i)+" HTTP/1.1\r\nHost: example.com\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("request %d: status %d, close %v", i, resp.StatusCode, resp.Close)
		}
		if !strings.Contains(body, "query=i="+strconv.Itoa(i)+"\n") || !strings.Contains(body, "host=example.com\n") {
			t.Errorf("request %d: handler saw %q", i, body)
		}
		if resp.Header.Get("Server") != "gatehouse" {
			t.Errorf("Server field %q", resp.Header.Get("Server"))
		}
		if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
			t.Errorf("Date field %q: %v", resp.Header.Get("Date"), err)
		}
	}
}

func TestServerPipelined(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	send(t, c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd"+
		"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz"+ // body not read by the handler
		"GET /info HTTP/1.1\r\nHost: last\r\n\r\n")
	want := []string{"hello", "abcd", "part1,part2", "hello", ""}
	for i, w := range want {
		resp, body := readResponse(t, br, "GET")
		if resp.StatusCode != 200 {
			t.Fatalf("response %d: status %d", i, resp.StatusCode)
		}
		if w != "" && body != w {
			t.Errorf("response %d: body %q, want %q", i, body, w)
		}
		if i == len(want)-1 && !strings.Contains(body, "host=last") {
			t.Errorf("last response: %q", body)
		}
	}
}

func TestServerPipelinedPartialNextRequest(t *testing.T) {
	// The client sends a request and the start of the next one; the first
	// response must not wait for the rest of the second request.
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	send(t, c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /hel")
	c.SetReadDeadline(time.Now().Add(1 * time.Second))
	_, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("bug pipelined-response-held: no response within 1s while the next request is incomplete: %v", err)
	}
}

func TestServerPipelinedSlowSecondRequest(t *testing.T) {
	// The first response is complete; it must not wait for the second
	// request's handler (a slow backend) to finish.
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	send(t, c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	start := time.Now()
	readResponse(t, br, "GET")
	if d := time.Since(start); d > time.Second {
		t.Logf("first response took %v", d)
		t.Errorf("bug pipelined-response-held: the first response waited %v for the second handler", d)
	}
	if _, body := readResponse(t, br, "GET"); body != "slow" {
		t.Errorf("second response %q", body)
	}
}

func TestServerHTTP10(t *testing.T) {
	ts := newTestServer(t, defaultLimits())

	t.Run("close by default", func(t *testing.T) {
		c, br := ts.dial(t)
		send(t, c, "GET /hello HTTP/1.0\r\n\r\n")
		head, resp, body := readResponseRaw(t, br, "GET")
		if resp.StatusCode != 200 || body != "hello" || !resp.Close {
			t.Errorf("status %d, body %q, close %v", resp.StatusCode, body, resp.Close)
		}
		if !strings.Contains(head, "\r\nConnection: close\r\n") {
			t.Errorf("no Connection: close in\n%s", head)
		}
		expectClosed(t, c, br)
	})

	t.Run("keep-alive", func(t *testing.T) {
		c, br := ts.dial(t)
		for i := 0; i < 2; i++ {
			send(t, c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
			resp, body := readResponse(t, br, "GET")
			if resp.StatusCode != 200 || body != "hello" {
				t.Fatalf("status %d, body %q", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Connection"); !strings.EqualFold(got, "keep-alive") {
				t.Errorf("Connection %q, want keep-alive", got)
			}
		}
	})

	t.Run("unknown length is close-delimited", func(t *testing.T) {
		c, br := ts.dial(t)
		send(t, c, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		head := readRawHead(t, br)
		if strings.Contains(strings.ToLower(head), "transfer-encoding") || strings.Contains(strings.ToLower(head), "content-length") {
			t.Errorf("HTTP/1.0 response with framing fields:\n%s", head)
		}
		if !strings.Contains(head, "Connection: close\r\n") {
			t.Errorf("no Connection: close:\n%s", head)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		body, err := io.ReadAll(br)
		if err != nil || string(body) != "part1,part2" {
			t.Errorf("body %q, %v", body, err)
		}
	})

	t.Run("keep-alive and close", func(t *testing.T) {
		c, br := ts.dial(t)
		send(t, c, "GET /hello HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")
		resp, _ := readResponse(t, br, "GET")
		if !resp.Close {
			t.Errorf("bug http10-close-and-keepalive: connection kept alive")
		}
	})
}

func TestServerConnectionClose(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	// The second request must not be served.
	send(t, c, "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
	head, resp, body := readResponseRaw(t, br, "GET")
	if resp.StatusCode != 200 || body != "hello" || !strings.Contains(head, "\r\nConnection: close\r\n") {
		t.Errorf("status %d, body %q, head\n%s", resp.StatusCode, body, head)
	}
	expectClosed(t, c, br)
}

func TestServerChunkedRequestBody(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	send(t, c, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\nHost: evil\r\n\r\n")
	resp, body := readResponse(t, br, "POST")
	if resp.StatusCode != 200 || body != "hello world" {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Got-Trailers"); got != "X-Sum=42" {
		t.Errorf("trailers seen by the handler: %q", got)
	}
	// Same connection, next request.
	send(t, c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readResponse(t, br, "GET"); body != "hello" {
		t.Errorf("next request: %q", body)
	}
}

func TestServerUnknownLengthChunked(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	send(t, c, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := readResponse(t, br, "GET")
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || resp.ContentLength != -1 {
		t.Errorf("framing: TE %v, CL %d", resp.TransferEncoding, resp.ContentLength)
	}
	if body != "part1,part2" || resp.Trailer.Get("X-Trailer") != "done" {
		t.Errorf("body %q, trailers %v", body, resp.Trailer)
	}
	if resp.Close {
		t.Error("connection not kept alive")
	}
}

func TestServerHead(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	send(t, c, "HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n")
	head := readRawHead(t, br)
	if !strings.Contains(head, "Content-Length: 11\r\n") {
		t.Errorf("HEAD response without the Content-Length of the GET:\n%s", head)
	}
	// If any body byte had been sent, this response would not parse.
	send(t, c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 200 || body != "hello" {
		t.Errorf("request after HEAD: %d %q", resp.StatusCode, body)
	}
}

func TestServerPanic(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	other, otherBR := ts.dial(t)
	send(t, other, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponse(t, otherBR, "GET")

	c, br := ts.dial(t)
	send(t, c, "GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, _ := readResponse(t, br, "GET")
	if resp.StatusCode != 500 || !resp.Close {
		t.Errorf("status %d, close %v; want 500 and close", resp.StatusCode, resp.Close)
	}
	expectClosed(t, c, br)
	if !strings.Contains(ts.log.String(), "test panic") {
		t.Errorf("panic not logged: %q", ts.log.String())
	}

	// The server and other connections carry on.
	send(t, other, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readResponse(t, otherBR, "GET"); body != "hello" {
		t.Errorf("other connection after the panic: %q", body)
	}
	c2, br2 := ts.dial(t)
	send(t, c2, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readResponse(t, br2, "GET"); body != "hello" {
		t.Errorf("new connection after the panic: %q", body)
	}
}

func TestServerPanicMidBody(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	send(t, c, "GET /panic-mid HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if string(body) != "partial" {
		t.Errorf("body %q", body)
	}
	if err == nil {
		t.Errorf("bug panic-mid-body-completes: body %q read as complete after a panic mid-body", body)
	}
}

func TestServerHandlerWithoutAnswer(t *testing.T) {
	ts := newTestServer(t, defaultLimits())

	c, br := ts.dial(t)
	send(t, c, "GET /noreply HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 500 || !resp.Close {
		t.Errorf("handler without answer: %d, close %v", resp.StatusCode, resp.Close)
	}
	expectClosed(t, c, br)
}

func TestServerShortBody(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	send(t, c, "GET /short HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("bug short-body-not-flushed: no response at all: %v", err)
	}
	if body, err := io.ReadAll(resp.Body); err != io.ErrUnexpectedEOF || string(body) != "short" {
		t.Errorf("short body: %q, %v; want \"short\" and the connection closed early", body, err)
	}
}

func TestServerUnreadBodyIsSkipped(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	send(t, c, "POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nGET /evil ")
	send(t, c, "POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	send(t, c, "GET /info HTTP/1.1\r\nHost: a\r\n\r\n")
	for i := 0; i < 2; i++ {
		if _, body := readResponse(t, br, "POST"); body != "hello" {
			t.Fatalf("response %d: %q", i, body)
		}
	}
	if _, body := readResponse(t, br, "GET"); !strings.Contains(body, "path=/info") {
		t.Errorf("third request not served as /info: %q", body)
	}
}

func TestServerExpectContinue(t *testing.T) {
	ts := newTestServer(t, defaultLimits())

	t.Run("handler asks for the body", func(t *testing.T) {
		c, br := ts.dial(t)
		send(t, c, "POST /continue HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("interim response %q, %v", line, err)
		}
		if rest := readRawHead(t, br); rest != "\r\n" {
			t.Errorf("100 Continue with fields %q", rest)
		}
		send(t, c, "hello")
		if resp, body := readResponse(t, br, "POST"); resp.StatusCode != 200 || body != "hello" {
			t.Errorf("%d %q", resp.StatusCode, body)
		}
	})

	t.Run("handler does not read", func(t *testing.T) {
		// No 100 Continue was sent, so the client may never send the body:
		// the connection must close rather than wait for it.
		c, br := ts.dial(t)
		send(t, c, "POST /hello HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		if resp, body := readResponse(t, br, "POST"); resp.StatusCode != 200 || body != "hello" {
			t.Errorf("%d %q", resp.StatusCode, body)
		}
		expectClosed(t, c, br)
	})
}

func TestServerReadHeaderTimeout(t *testing.T) {
	lim := defaultLimits()
	lim.ReadHeaderTimeout = 300 * time.Millisecond
	ts := newTestServer(t, lim)

	t.Run("incomplete head", func(t *testing.T) {
		c, br := ts.dial(t)
		start := time.Now()
		send(t, c, "GET / HTTP/1.1\r\nHost: a\r\n")
		resp, _ := readResponse(t, br, "GET")
		if resp.StatusCode != 408 || !resp.Close {
			t.Errorf("status %d close %v, want 408 and close", resp.StatusCode, resp.Close)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("cut after %v", d)
		}
		expectClosed(t, c, br)
	})

	t.Run("slow drip", func(t *testing.T) {
		// One byte every 50ms: each byte resets no timer; the head as a whole
		// must arrive within ReadHeaderTimeout.
		c, br := ts.dial(t)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, b := range []byte("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + strings.Repeat("x", 100)) {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		start := time.Now()
		resp, _ := readResponse(t, br, "GET")
		if resp.StatusCode != 408 {
			t.Errorf("status %d, want 408", resp.StatusCode)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("cut after %v", d)
		}
		c.Close()
		<-done
	})
}

func TestServerIdleTimeout(t *testing.T) {
	lim := defaultLimits()
	lim.IdleTimeout = 200 * time.Millisecond
	ts := newTestServer(t, lim)
	c, br := ts.dial(t)
	send(t, c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponse(t, br, "GET")
	start := time.Now()
	expectClosed(t, c, br) // closed quietly, no 408
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle connection closed after %v", d)
	}
}

func TestServerMaxBody(t *testing.T) {
	lim := defaultLimits()
	lim.MaxBodyBytes = 1000
	var calls sync.Map
	ts := startServer(t, handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
		calls.Store(string(r.Path), true)
		testHandler().ServeExchange(r, w)
	}), lim)

	t.Run("declared length", func(t *testing.T) {
		c, br := ts.dial(t)
		send(t, c, "POST /echo-big HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n")
		resp, _ := readResponse(t, br, "POST")
		if resp.StatusCode != 413 || !resp.Close {
			t.Errorf("status %d close %v, want 413 and close", resp.StatusCode, resp.Close)
		}
		if _, ok := calls.Load("/echo-big"); ok {
			t.Error("handler called for a body over the limit")
		}
		expectClosed(t, c, br)
	})

	t.Run("at the limit", func(t *testing.T) {
		c, br := ts.dial(t)
		send(t, c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("b", 1000))
		if resp, body := readResponse(t, br, "POST"); resp.StatusCode != 200 || len(body) != 1000 {
			t.Errorf("status %d, %d bytes", resp.StatusCode, len(body))
		}
	})

	t.Run("chunked", func(t *testing.T) {
		c, br := ts.dial(t)
		send(t, c, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"200\r\n"+strings.Repeat("a", 0x200)+"\r\n200\r\n"+strings.Repeat("a", 0x200)+"\r\n0\r\n\r\n")
		resp, _ := readResponse(t, br, "POST")
		if resp.StatusCode != 413 {
			t.Errorf("status %d, want 413 (the handler's answer to ErrBodyTooLarge)", resp.StatusCode)
		}
		expectClosed(t, c, br) // the rest of the body cannot be skipped safely
	})
}

func TestServerRefusesBadHeads(t *testing.T) {
	lim := defaultLimits()
	lim.MaxHeaderBytes = 1024
	ts := newTestServer(t, lim)
	tests := []struct {
		name, raw string
		status    int
	}{
		{"CL+TE", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"bare LF", "GET /hello HTTP/1.1\nHost: a\n\n", 400},
		{"no Host", "GET /hello HTTP/1.1\r\n\r\n", 400},
		{"obs-fold", "GET /hello HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400},
		{"HTTP/2.0", "GET /hello HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"long request line", "GET /" + strings.Repeat("a", 2000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"long head", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Pad: 0123456789\r\n", 100) + "\r\n", 431},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, br := ts.dial(t)
			send(t, c, tc.raw)
			resp, body := readResponse(t, br, "GET")
			if resp.StatusCode != tc.status || !resp.Close {
				t.Errorf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tc.status)
			}
			if want := strconv.Itoa(tc.status) + " " + http.StatusText(tc.status) + "\n"; body != want {
				t.Errorf("body %q, want %q", body, want)
			}
			expectClosed(t, c, br)
		})
	}
}

func TestServerSwitchingProtocols(t *testing.T) {
	ts := startServer(t, handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
		if string(r.Upgrade) != "echo" {
			w.WriteHead(400, nil, nil, 0)
			return
		}
		echoTunnel(t, w, exchange.Headers{
			{Name: []byte("Connection"), Value: []byte("Upgrade")},
			{Name: []byte("Upgrade"), Value: []byte("echo")},
		})
	}), defaultLimits())

	c, br := ts.dial(t)
	// The first tunnel bytes come with the request, so the engine has them buffered.
	send(t, c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nping\n")
	head := readRawHead(t, br)
	if !strings.HasPrefix(head, "HTTP/1.1 101 ") {
		t.Fatalf("head %q", head)
	}
	if !strings.Contains(head, "\r\nUpgrade: echo\r\n") {
		t.Errorf("101 without Upgrade:\n%s", head)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Errorf("tunnel echo %q, %v", line, err)
	}
	if !strings.Contains(strings.ToLower(head), "\r\nconnection: upgrade\r\n") {
		// RFC 9110 §7.8; RFC 6455 §4.1 clients fail without it.
		t.Errorf("101 response without Connection: Upgrade:\n%s", head)
	}
}

// echoTunnel answers 101 with fields, echoes one line of the tunnel, then
// hands the connection back by closing it.
func echoTunnel(t *testing.T, w exchange.ResponseWriter, fields exchange.Headers) {
	w.WriteHead(101, nil, fields, -1)
	nc, rd, err := w.Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	line, _ := bufio.NewReader(rd).ReadString('\n')
	io.WriteString(nc, line)
	nc.Close()
}

func TestServerHijackedReaderOutlivesHandler(t *testing.T) {
	// A tunnel may still read the hijacked reader after the handler returned
	// (proxy.tunnel does after its 5 s grace period); that reader must then
	// still hold the bytes the client sent, not be reset and pooled.
	got := make(chan string, 1)
	served := make(chan chan struct{}, 1)
	ts := startServer(t, handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
		w.WriteHead(101, nil, exchange.Headers{{Name: []byte("Upgrade"), Value: []byte("x")}}, -1)
		nc, rd, err := w.Hijack()
		if err != nil {
			got <- err.Error()
			return
		}
		go func() {
			defer nc.Close()
			defer func() {
				if p := recover(); p != nil {
					got <- fmt.Sprint("panic: ", p)
				}
			}()
			<-<-served // ServeConn has returned
			p := make([]byte, 5)
			n, err := io.ReadFull(rd, p)
			got <- fmt.Sprintf("%q %v", p[:n], err)
		}()
	}), defaultLimits())
	served <- ts.served
	c, br := ts.dial(t)
	send(t, c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nEXTRA")
	readRawHead(t, br)
	select {
	case res := <-got:
		if res != `"EXTRA" <nil>` {
			t.Logf("reading the hijacked reader after ServeConn returned: %s", res)
			t.Errorf("bug hijack-reader-recycled: reading the hijacked reader after the handler returned: %s", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no result")
	}
}

func TestServerH2CHandOver(t *testing.T) {
	got := make(chan string, 1)
	ts := newTestServer(t, defaultLimits(), func(s *Server) {
		s.H2C = func(c net.Conn, buffered io.Reader) {
			p := make([]byte, len(h2Preface)+5)
			n, err := io.ReadFull(buffered, p)
			got <- fmt.Sprintf("%q %v", p[:n], err)
			c.Close()
		}
	})
	c, _ := ts.dial(t)
	send(t, c, string(h2Preface)+"after")
	select {
	case res := <-got:
		if want := fmt.Sprintf("%q <nil>", string(h2Preface)+"after"); res != want {
			t.Errorf("H2C got %s, want %s", res, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("H2C not called")
	}
}

func TestServerH2CShortHTTP1Request(t *testing.T) {
	// With h2c on, a complete HTTP/1.0 request shorter than the 24-byte
	// preface must still be answered at once.
	lim := defaultLimits()
	lim.IdleTimeout = 3 * time.Second
	ts := newTestServer(t, lim, func(s *Server) { s.H2C = func(c net.Conn, _ io.Reader) { c.Close() } })
	c, br := ts.dial(t)
	send(t, c, "GET /hello HTTP/1.0\r\n\r\n") // 23 bytes
	c.SetReadDeadline(time.Now().Add(1 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("bug h2c-peek-blocks-short-request: no answer within 1s: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestServerDrain(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	st := new(ConnState)
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		ts.srv.ServeConn(server, st)
		close(done)
	}()
	client.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(client)
	send(t, client, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponse(t, br, "GET")
	// Idle now (the loop waits for the next request).
	deadline := time.Now().Add(2 * time.Second)
	for !st.Drain() {
		if time.Now().After(deadline) {
			t.Fatal("connection never reported idle")
		}
		time.Sleep(10 * time.Millisecond)
	}
	client.Close() // as the owner would, since Drain said idle
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn did not return")
	}
}

func TestServerDrainDuringRequestCloses(t *testing.T) {
	st := new(ConnState)
	ts := startServer(t, handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
		if st.Drain() {
			t.Error("Drain reported idle during a request")
		}
		w.WriteHead(200, nil, nil, 2)
		io.WriteString(w, "ok")
	}), defaultLimits())
	client, server := net.Pipe()
	go ts.srv.ServeConn(server, st)
	defer client.Close()
	client.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(client)
	send(t, client, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := readResponse(t, br, "GET")
	if body != "ok" {
		t.Errorf("body %q", body)
	}
	if !resp.Close {
		t.Logf("note: the response does not announce the close (Drain came after the head was parsed)")
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("connection not closed after draining: %v", err)
	}
}

// An answer given with more of the body unread than the server skips says
// Connection: close, so that the client does not reuse a connection that
// is about to be reset.
func TestServerEarlyAnswerToLargeBodySaysClose(t *testing.T) {
	ts := newTestServer(t, defaultLimits())
	c, br := ts.dial(t)
	send(t, c, fmt.Sprintf("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\npartial", 1<<20))
	resp, body := readResponse(t, br, "POST")
	if body != "hello" || !resp.Close {
		t.Fatalf("early answer to a 1 MiB body: %q, close %v; want Connection: close", body, resp.Close)
	}
	c2, br2 := ts.dial(t)
	send(t, c2, "POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("s", 1000))
	if resp, _ := readResponse(t, br2, "POST"); resp.Close {
		t.Error("early answer to a small body closed the connection: it is skipped and kept")
	}
}
