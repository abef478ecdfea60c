package e2e

// Regression tests for the review findings fixed in "Fix review findings in
// the forwarding path". Each one fails against the code before that fix.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// patternBytes is n deterministic pseudo-random bytes (see patternReader): no
// two 8 KiB stretches are alike, so any reordering changes the bytes.
func patternBytes(n int) []byte {
	b := make([]byte, n)
	io.ReadFull(&patternReader{n: int64(n)}, b)
	return b
}

// readRespWithin reads one response, body included, within d; it returns the
// error instead of failing so that callers can say what was missing.
func readRespWithin(c net.Conn, br *bufio.Reader, method string, d time.Duration) (*http.Response, []byte, error) {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b, err
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// describeMismatch says where got first differs from want, and where in want
// the bytes found there come from (to tell reordering from corruption).
func describeMismatch(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	s := fmt.Sprintf("got %d bytes, want %d; first difference at offset %d", len(got), len(want), i)
	if i < len(got) {
		probe := got[i:min(i+64, len(got))]
		if j := bytes.Index(want, probe); j >= 0 {
			s += fmt.Sprintf("; the backend's bytes from offset %d are the client's bytes from offset %d", i, j)
		} else {
			s += fmt.Sprintf("; the backend's bytes there (% x) are nowhere in what the client sent", probe[:min(16, len(probe))])
		}
	}
	return s
}

// 1. A Content-Length body over the splice threshold, written together with
// the head, must reach the backend in order (the bytes already buffered with
// the head used to be sent after the spliced rest).
func TestRegressionLargeBodyInOneWrite(t *testing.T) {
	t.Parallel()
	bodies := make(chan []byte, 4)
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			m, err := readRawRequest(br)
			if err != nil {
				return
			}
			bodies <- m.Body
			sum := sha256Hex(m.Body)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(sum), sum)
		}
	})
	gh := startGatehouse(t, oneUpstream("", "http://"+be))

	for _, size := range []int{200 << 10, 5 << 20} {
		t.Run(fmt.Sprintf("%dKiB", size>>10), func(t *testing.T) {
			body := patternBytes(size)
			want := sha256Hex(body)
			c, br := dialRaw(t, gh.Addr())
			msg := append([]byte(fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", size)), body...)
			c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(msg); err != nil { // head and body in one write
				t.Fatalf("write: %v", err)
			}
			resp, b, err := readRespWithin(c, br, "POST", 30*time.Second)
			if err != nil {
				t.Fatalf("reading response: %v", err)
			}
			var got []byte
			select {
			case got = <-bodies:
			default:
				t.Fatalf("backend got no complete request; client got %d %q", resp.StatusCode, b)
			}
			if !bytes.Equal(got, body) {
				t.Errorf("backend body sha256 %s, want %s: %s", sha256Hex(got), want, describeMismatch(got, body))
			}
			if resp.StatusCode != 200 || string(b) != want {
				t.Errorf("client got %d %q, want 200 %q", resp.StatusCode, b, want)
			}
		})
	}
}

// 2. A pooled connection the backend closed while idle must not be used for
// a request with a body (which cannot be resent): the POST gets 200, not 502.
func TestRegressionBackendIdleCloseThenPost(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	nextID := 0
	closed := map[int]chan struct{}{} // closed when the backend has closed that connection
	var posts []string
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		mu.Lock()
		nextID++
		id := nextID
		ch := make(chan struct{})
		closed[id] = ch
		mu.Unlock()
		defer func() { c.Close(); close(ch) }()
		for i := 0; ; i++ {
			if i > 0 { // an idle keep-alive connection is closed after 300 ms
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			}
			m, err := readRawRequest(br)
			if err != nil {
				return
			}
			if strings.HasPrefix(m.First, "POST ") {
				mu.Lock()
				posts = append(posts, string(m.Body))
				mu.Unlock()
			}
			reply := fmt.Sprintf("%s %q", m.First, m.Body)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Conn: %d\r\nContent-Length: %d\r\n\r\n%s", id, len(reply), reply)
		}
	})
	gh := startGatehouse(t, oneUpstream("", "http://"+be))
	c, br := dialRaw(t, gh.Addr())

	for i := 1; i <= 3; i++ {
		send(t, c, "GET /warm HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, b, err := readRespWithin(c, br, "GET", 5*time.Second)
		if err != nil && i > 1 {
			t.Fatalf("round %d: GET: %v: gatehouse closed the client connection after the previous POST's 200, which did not say Connection: close (see TestRegressionKeepAliveAfterQuickUpload)", i, err)
		}
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("round %d: GET: %v %v %q", i, err, resp, b)
		}
		start := time.Now()
		id, _ := strconv.Atoi(resp.Header.Get("X-Conn"))
		mu.Lock()
		ch := closed[id]
		mu.Unlock()
		if ch == nil {
			t.Fatalf("round %d: response names no backend connection (X-Conn %q)", i, resp.Header.Get("X-Conn"))
		}
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the backend did not close its idle connection", i)
		}
		if d := 600*time.Millisecond - time.Since(start); d > 0 {
			time.Sleep(d) // the scenario: the client comes back 600 ms later
		}
		send(t, c, "POST /charge HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
		resp, b = readResp(t, c, br, "POST")
		if want := `POST /charge HTTP/1.1 "hello"`; resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("round %d: POST after the backend closed its idle connection: %d %q, want 200 %q", i, resp.StatusCode, b, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(posts, []string{"hello", "hello", "hello"}) {
		t.Errorf("backend got POST bodies %q, want exactly three \"hello\"", posts)
	}
}

// 3. A backend that answers before it has read the upload: the answer reaches
// the client at once, in full, and gatehouse then closes the connection
// (it used to wait for the rest of the upload, holding the answer back).
func TestRegressionEarlyResponseDuringUpload(t *testing.T) {
	t.Parallel()
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndenied\r\n0\r\n\r\n")
		io.Copy(io.Discard, br) // the rest is never read for the request; wait for gatehouse to close
	})
	gh := startGatehouse(t, oneUpstream("", "http://"+be))
	c, br := dialRaw(t, gh.Addr())
	send(t, c, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	// The body is never finished.
	resp, b, err := readRespWithin(c, br, "POST", 3*time.Second)
	if err != nil {
		got := ""
		if resp != nil {
			got = fmt.Sprintf(" (status %d, body so far %q)", resp.StatusCode, b)
		}
		t.Fatalf("no complete response within 3s while the upload is unfinished: %v%s", err, got)
	}
	if resp.StatusCode != 403 || string(b) != "denied" {
		t.Fatalf("got %d %q, want 403 \"denied\"", resp.StatusCode, b)
	}
	expectClosed(t, c, br, 3*time.Second)
}

// 4. Expect: 100-continue refused by the backend: its final response is
// relayed in full even when its body comes in a later write (the backend
// connection used to be closed at once, cutting the body off).
func TestRegressionExpectContinueRefusedFullBody(t *testing.T) {
	t.Parallel()
	body := patternBytes(3000)
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 3000\r\n\r\n")
		time.Sleep(50 * time.Millisecond) // the scenario: the body comes in a second write
		c.Write(body)
		io.Copy(io.Discard, br)
	})
	gh := startGatehouse(t, oneUpstream("", "http://"+be))
	c, br := dialRaw(t, gh.Addr())
	send(t, c, "PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
	for i := 0; ; i++ { // the body is never sent
		resp, b, err := readRespWithin(c, br, "PUT", 5*time.Second)
		if err != nil {
			got := ""
			if resp != nil {
				got = fmt.Sprintf(" (status %d, %d body bytes)", resp.StatusCode, len(b))
			}
			t.Fatalf("reading the refusal: %v%s", err, got)
		}
		if resp.StatusCode == 100 && i < 2 {
			t.Logf("proxy sent 100 Continue although the backend refused")
			continue
		}
		if resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
		if !bytes.Equal(b, body) {
			t.Fatalf("401 body: %s", describeMismatch(b, body))
		}
		return
	}
}

// 5. A request that may have had its effect is never sent twice: a bodyless
// POST whose backend connection closes unanswered, and a request that timed
// out (not retried on the same target).
func TestRegressionNoDoubleSend(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	count := map[string]int{}
	seenCount := func(first string) int { mu.Lock(); defer mu.Unlock(); return count[first] }
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			m, err := readRawRequest(br)
			if err != nil {
				return
			}
			mu.Lock()
			count[m.First]++
			mu.Unlock()
			switch {
			case strings.HasPrefix(m.First, "GET "):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwarm")
			case strings.HasPrefix(m.First, "POST /charge "):
				return // close without answering
			default:
				io.Copy(io.Discard, br) // never answer
				return
			}
		}
	})
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
upstreams:
  charge: {targets: ["http://%[1]s"]}
  slow: {targets: ["http://%[1]s"], timeouts: {response_header: 1s}}
sites:
  - routes:
      - {match: {path: /slow}, upstream: slow}
      - {match: {path: /warm-slow}, upstream: slow}
      - {match: {path_prefix: /}, upstream: charge}
`, be))

	t.Run("POST closed unanswered", func(t *testing.T) {
		c, br := dialRaw(t, gh.Addr())
		send(t, c, "GET /warm HTTP/1.1\r\nHost: x\r\n\r\n") // leaves a pooled backend connection
		if resp, b := readResp(t, c, br, "GET"); resp.StatusCode != 200 {
			t.Fatalf("warm-up: %d %q", resp.StatusCode, b)
		}
		send(t, c, "POST /charge HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, b, err := readRespWithin(c, br, "POST", 10*time.Second)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		if n := seenCount("POST /charge HTTP/1.1"); n != 1 {
			t.Errorf("backend received the POST %d times, want exactly once", n)
		}
		if resp.StatusCode != 502 {
			t.Errorf("POST: %d %q, want 502", resp.StatusCode, b)
		}
	})

	t.Run("DELETE timed out", func(t *testing.T) {
		c, br := dialRaw(t, gh.Addr())
		send(t, c, "GET /warm-slow HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, b := readResp(t, c, br, "GET"); resp.StatusCode != 200 {
			t.Fatalf("warm-up: %d %q", resp.StatusCode, b)
		}
		start := time.Now()
		send(t, c, "DELETE /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, b, err := readRespWithin(c, br, "DELETE", 10*time.Second)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("DELETE: %v after %v", err, elapsed)
		}
		if n := seenCount("DELETE /slow HTTP/1.1"); n != 1 {
			t.Errorf("backend received the DELETE %d times, want exactly once (a timeout is not retried on the same target)", n)
		}
		if resp.StatusCode != 504 {
			t.Errorf("DELETE: %d %q, want 504", resp.StatusCode, b)
		}
		t.Logf("504 after %v (response_header timeout 1s)", elapsed)
		if elapsed < 900*time.Millisecond || elapsed >= 1900*time.Millisecond {
			t.Errorf("504 after %v, want about 1s (one response_header timeout, not two)", elapsed)
		}
	})
}

// 6. Pipelined requests: every response is sent as soon as it is complete.
func TestRegressionPipelining(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rel := onceCloser(release)
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			m, err := readRawRequest(br)
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(m.First, "GET /fast "):
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			case strings.HasPrefix(m.First, "DELETE "):
				// No body: nothing on the relay path flushes the response
				// on the way (a body is flushed as it streams).
				fmt.Fprintf(c, "HTTP/1.1 204 No Content\r\nX-Deleted: %s\r\n\r\n", strings.Fields(m.First)[1])
			case strings.HasPrefix(m.First, "GET /slow "):
				select { // answers once the client has had the 204 (10 s at most)
				case <-release:
				case <-time.After(10 * time.Second):
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
			default:
				reply := "ok " + m.First
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(reply), reply)
			}
		}
	})
	t.Cleanup(rel) // registered after rawBackend's, so it runs first and frees a waiting handler
	gh := startGatehouse(t, oneUpstream("", "http://"+be))

	t.Run("response before a half-closed incomplete request", func(t *testing.T) {
		c, br := dialRaw(t, gh.Addr())
		send(t, c, "DELETE /item/7 HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n")
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		resp, b, err := readRespWithin(c, br, "DELETE", 5*time.Second)
		if err != nil {
			t.Fatalf("the DELETE's response never came: %v", err)
		}
		if resp.StatusCode != 204 || resp.Header.Get("X-Deleted") != "/item/7" {
			t.Fatalf("got %d %q (X-Deleted %q), want the backend's 204 for /item/7", resp.StatusCode, b, resp.Header.Get("X-Deleted"))
		}
	})

	t.Run("fast response not held behind a slow one", func(t *testing.T) {
		c, br := dialRaw(t, gh.Addr())
		t.Cleanup(rel) // on failure, free the slow handler before gatehouse is stopped
		start := time.Now()
		send(t, c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		// The slow backend answers only after the 204 has arrived (or after
		// 10 s): a 204 held back until the next response shows as a timeout.
		resp, b, err := readRespWithin(c, br, "GET", 4*time.Second)
		if err != nil {
			t.Fatalf("no response to GET /fast within 4s while GET /slow is pending: %v", err)
		}
		t.Logf("204 after %v", time.Since(start))
		if resp.StatusCode != 204 {
			t.Fatalf("first response %d %q, want 204", resp.StatusCode, b)
		}
		rel()
		resp, b, err = readRespWithin(c, br, "GET", 5*time.Second)
		if err != nil || resp.StatusCode != 200 || string(b) != "slow" {
			t.Fatalf("second response: %v %v %q, want 200 \"slow\"", err, resp, b)
		}
	})
}

// 7. On an h2c listener, an HTTP/1 request shorter than the HTTP/2 preface is
// answered at once (it used to wait for 24 bytes, until the idle timeout).
func TestRegressionH2CShortHTTP1Request(t *testing.T) {
	t.Parallel()
	gh := startGatehouse(t, `listeners: [{addr: "{{LISTEN}}", h2c: true}]
admin: {addr: "{{ADMIN}}"}
sites:
  - routes:
      - respond: {body: "ok\n"}
`)
	c, br := dialRaw(t, gh.Addr())
	req := "GET / HTTP/1.0\r\n\r\n"
	if len(req) != 18 {
		t.Fatalf("request is %d bytes", len(req))
	}
	start := time.Now()
	send(t, c, req)
	// Allowed 2 s on a loaded machine; the old code waited for the idle timeout (120 s).
	resp, b, err := readRespWithin(c, br, "GET", 2*time.Second)
	if err != nil {
		t.Fatalf("no answer to an 18-byte HTTP/1.0 request within 2s: %v", err)
	}
	t.Logf("answered after %v", time.Since(start))
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Fatalf("got %d %q, want 200 \"ok\\n\"", resp.StatusCode, b)
	}
}

// 8. Header names with '_' are not forwarded (X_Forwarded_For would pass for
// X-Forwarded-For at backends that fold '_' and '-').
func TestRegressionUnderscoreHeadersDropped(t *testing.T) {
	t.Parallel()
	reqs := make(chan *rawMsg, 1)
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		m, err := readRawRequest(br)
		if err != nil {
			return
		}
		reqs <- m
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	gh := startGatehouse(t, oneUpstream("", "http://"+be))
	c, br := dialRaw(t, gh.Addr())
	send(t, c, "GET /u HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 7.7.7.7\r\nX_Custom: a\r\nX-Dash: b\r\n\r\n")
	if resp, b := readResp(t, c, br, "GET"); resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	var m *rawMsg
	select {
	case m = <-reqs:
	default:
		t.Fatal("backend got no request")
	}
	for _, line := range strings.Split(m.Head, "\r\n")[1:] {
		if name, _, ok := strings.Cut(line, ":"); ok && strings.Contains(name, "_") {
			t.Errorf("backend got header %q", line)
		}
	}
	if strings.Contains(m.Head, "7.7.7.7") {
		t.Errorf("backend head carries the client's 7.7.7.7:\n%s", m.Head)
	}
	if v := m.Header.Values("X-Forwarded-For"); !slices.Equal(v, []string{"127.0.0.1"}) {
		t.Errorf("X-Forwarded-For %q, want just the client IP [127.0.0.1]", v)
	}
	if v := m.Header.Get("X-Dash"); v != "b" {
		t.Errorf("X-Dash %q, want b (ordinary headers must still be forwarded); head:\n%s", v, m.Head)
	}
}

// 9. 103 Early Hints from the backend reach an HTTP/1.1 client before the
// final response, and while the backend is still working on it.
func TestRegressionEarlyHintsRelayed(t *testing.T) {
	t.Parallel()
	got103 := make(chan struct{})
	sig := onceCloser(got103)
	finalWithout103 := make(chan bool, 1)
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRawRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
		select { // the final answer comes once the client has the hints (3 s at most)
		case <-got103:
			finalWithout103 <- false
		case <-time.After(3 * time.Second):
			finalWithout103 <- true
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	gh := startGatehouse(t, oneUpstream("", "http://"+be))
	c, br := dialRaw(t, gh.Addr())
	t.Cleanup(sig) // runs first: frees the handler before gatehouse and the backend are stopped
	send(t, c, "GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, b, err := readRespWithin(c, br, "GET", 6*time.Second)
	if err != nil {
		t.Fatalf("reading the first response: %v", err)
	}
	if resp.StatusCode != 103 {
		t.Fatalf("first response %d %q, want 103 Early Hints", resp.StatusCode, b)
	}
	sig()
	if v := resp.Header.Values("Link"); !slices.Equal(v, []string{"</style.css>; rel=preload"}) {
		t.Errorf("103 Link %q, want [</style.css>; rel=preload]", v)
	}
	resp, b, err = readRespWithin(c, br, "GET", 6*time.Second)
	if err != nil || resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("final response: %v %v %q, want 200 \"ok\"", err, resp, b)
	}
	if <-finalWithout103 {
		t.Errorf("the 103 reached the client only after the backend had sent its 200 (not relayed when it came)")
	}
}

// 10. An Upgrade request with a body is forwarded as a plain request.
func TestRegressionUpgradeWithBodyIsPlain(t *testing.T) {
	t.Parallel()
	reqs := make(chan *rawMsg, 1)
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		m, err := readRawRequest(br)
		if err != nil {
			return
		}
		reqs <- m
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	gh := startGatehouse(t, oneUpstream("", "http://"+be))
	c, br := dialRaw(t, gh.Addr())
	send(t, c, "POST /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 10\r\n\r\n0123456789")
	resp, b, err := readRespWithin(c, br, "POST", 5*time.Second)
	if err != nil || resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("response: %v %v %q, want 200 \"ok\"", err, resp, b)
	}
	var m *rawMsg
	select {
	case m = <-reqs:
	default:
		t.Fatal("backend got no request")
	}
	if v := m.Header.Values("Upgrade"); len(v) > 0 {
		t.Errorf("backend got Upgrade %q; head:\n%s", v, m.Head)
	}
	if slices.Contains(headerTokens(m.Header, "Connection"), "upgrade") {
		t.Errorf("backend got Connection %q; head:\n%s", m.Header.Values("Connection"), m.Head)
	}
	if string(m.Body) != "0123456789" {
		t.Errorf("backend body %q, want 0123456789", m.Body)
	}
}

// 11. An idle h2c connection is closed after limits.idle_timeout.
func TestRegressionH2CIdleTimeout(t *testing.T) {
	t.Parallel()
	gh := startGatehouse(t, `listeners: [{addr: "{{LISTEN}}", h2c: true}]
admin: {addr: "{{ADMIN}}"}
limits: {idle_timeout: 1s}
sites:
  - routes:
      - respond: {body: "ok\n"}
`)
	c, _ := dialRaw(t, gh.Addr())
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}

	// handle answers connection-level frames; it fails on a premature end.
	handle := func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				fr.WritePing(true, f.Data)
			}
		}
	}
	status, body := "", ""
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				status = f.PseudoValue("status")
				done = f.StreamEnded()
			}
		case *http2.DataFrame:
			if f.StreamID == 1 {
				body += string(f.Data())
				done = f.StreamEnded()
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset: %v", f.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY before the response: %v", f.ErrCode)
		default:
			handle(f)
		}
	}
	if status != "200" || body != "ok\n" {
		t.Fatalf("h2c response %s %q, want 200 \"ok\\n\"", status, body)
	}

	idleStart := time.Now()
	c.SetReadDeadline(idleStart.Add(4 * time.Second))
	var goaway time.Duration = -1
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if isTimeoutErr(err) {
				t.Fatalf("h2c connection still open %v after its last response (idle_timeout 1s)", time.Since(idleStart).Round(time.Millisecond))
			}
			break // EOF or reset: closed
		}
		if g, ok := f.(*http2.GoAwayFrame); ok && goaway < 0 {
			goaway = time.Since(idleStart)
			t.Logf("GOAWAY %v after %v", g.ErrCode, goaway)
		}
		handle(f)
	}
	closedAfter := time.Since(idleStart)
	t.Logf("connection closed %v after the response", closedAfter)
	end := closedAfter
	if goaway >= 0 {
		end = goaway
	}
	if end < 700*time.Millisecond {
		t.Errorf("connection ended %v after the response, before the 1s idle timeout", end)
	}
}

// Not one of the review findings: a regression of their fix. A backend that
// reads the whole (small) body and answers at once may get its answer relayed
// before the body goroutine has marked the upload finished; finishAttempt then
// takes it for an early answer (StopBody) and closes a client connection whose
// response carried no Connection: close. Seen in about 2% of 5-byte POSTs.
func TestRegressionKeepAliveAfterQuickUpload(t *testing.T) {
	t.Parallel()
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			m, err := readRawRequest(br)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(m.Body), m.Body)
		}
	})
	gh := startGatehouse(t, oneUpstream("access_log: {enabled: false}", "http://"+be))
	c, br := dialRaw(t, gh.Addr())
	const n = 300
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf("%05d", i)
		send(t, c, "POST /quick HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"+body)
		resp, b, err := readRespWithin(c, br, "POST", 5*time.Second)
		if err != nil {
			t.Fatalf("POST %d of %d on one keep-alive connection: %v (gatehouse closed the connection after the previous complete 200, which did not say Connection: close)", i, n, err)
		}
		if resp.StatusCode != 200 || string(b) != body {
			t.Fatalf("POST %d: %d %q, want 200 %q", i, resp.StatusCode, b, body)
		}
		if resp.Close {
			t.Fatalf("POST %d: Connection: close after a complete 5-byte upload", i)
		}
	}
}
