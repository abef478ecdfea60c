package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a backend that remembers which paths it was asked for (entered)
// and which requests it received completely, body included (completed).
type recorder struct {
	mu                 sync.Mutex
	entered, completed map[string]bool
}

func newRecorder(t *testing.T) (*recorder, string) {
	rec := &recorder{entered: map[string]bool{}, completed: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.entered[r.URL.Path] = true
		rec.mu.Unlock()
		if _, err := io.ReadAll(r.Body); err != nil {
			return
		}
		rec.mu.Lock()
		rec.completed[r.URL.Path] = true
		rec.mu.Unlock()
		io.WriteString(w, "backend ok\n")
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

// saw reports whether any request whose path starts with prefix reached the backend
// (completely, if complete is set).
func (r *recorder) saw(prefix string, complete bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.entered
	if complete {
		m = r.completed
	}
	for p := range m {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func startBadInputProxy(t *testing.T) (*proc, *recorder, string) {
	rec, okURL := newRecorder(t)
	hang := rawBackend(t, func(c net.Conn, br *bufio.Reader) { io.Copy(io.Discard, br) }) // never answers
	dead := freeAddr(t)                                                                   // nothing listens here
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
shutdown_timeout: 3s
limits:
  read_header_timeout: 1s
  max_header_bytes: 8KiB
  max_body_bytes: 1KiB
upstreams:
  ok: {targets: ["%s"]}
  dead: {targets: ["http://%s"], timeouts: {connect: 1s}}
  hang: {targets: ["http://%s"], timeouts: {response_header: 500ms}}
sites:
  - routes:
      - {match: {path_prefix: /ok/}, upstream: ok}
      - {match: {path_prefix: /dead/}, upstream: dead}
      - {match: {path_prefix: /hang/}, upstream: hang}
`, okURL, dead, hang))
	return gh, rec, dead
}

func TestBadInputRejected(t *testing.T) {
	t.Parallel()
	gh, rec, _ := startBadInputProxy(t)
	const h = "Host: site.test\r\n"
	cases := []struct {
		name, req string
		chunk     bool // the error is in the body: the head may have gone upstream, the body must not complete
	}{
		{"cl-te", "POST /ok/cl-te HTTP/1.1\r\n" + h + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /ok/cl-te-inner HTTP/1.1\r\n" + h + "\r\n", false},
		{"te-cl", "POST /ok/te-cl HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /ok/te-cl-inner HTTP/1.1\r\n" + h + "\r\n", false},
		{"two-cl", "POST /ok/two-cl HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: 40\r\n\r\nhello", false},
		{"cl-list", "POST /ok/cl-list HTTP/1.1\r\n" + h + "Content-Length: 5, 40\r\n\r\nhello", false},
		{"te-chunked-identity", "POST /ok/te-chunked-identity HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", false},
		{"te-xchunked", "POST /ok/te-xchunked HTTP/1.1\r\n" + h + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", false},
		{"te-vtab", "POST /ok/te-vtab HTTP/1.1\r\n" + h + "Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", false},
		{"te-quoted", "POST /ok/te-quoted HTTP/1.1\r\n" + h + "Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", false},
		{"te-twice", "POST /ok/te-twice HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"te-obs-fold", "POST /ok/te-obs-fold HTTP/1.1\r\n" + h + "Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n", false},
		{"te-http10", "POST /ok/te-http10 HTTP/1.0\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false},
		{"bare-lf", "GET /ok/bare-lf HTTP/1.1\nHost: site.test\n\n", false},
		{"bare-lf-mid", "POST /ok/bare-lf-mid HTTP/1.1\r\n" + h + "X-A: 1\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", false},
		{"bare-cr", "POST /ok/bare-cr HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\rX-A: 1\r\n\r\n0\r\n\r\n", false},
		{"space-before-colon", "POST /ok/space-before-colon HTTP/1.1\r\n" + h + "Content-Length : 5\r\n\r\nhello", false},
		{"absolute-form-other-host", "GET http://other.test/ok/absolute-form-other-host HTTP/1.1\r\n" + h + "\r\n", false},
		{"no-host", "GET /ok/no-host HTTP/1.1\r\n\r\n", false},
		{"two-hosts", "GET /ok/two-hosts HTTP/1.1\r\n" + h + "Host: other.test\r\n\r\n", false},
		{"bad-method", "G(T /ok/bad-method HTTP/1.1\r\n" + h + "\r\n", false},
		{"bad-header-name", "GET /ok/bad-header-name HTTP/1.1\r\n" + h + "X@Bad: 1\r\n\r\n", false},
		{"space-in-header-name", "GET /ok/space-in-header-name HTTP/1.1\r\n" + h + "X Bad: 1\r\n\r\n", false},
		{"nul-in-value", "GET /ok/nul-in-value HTTP/1.1\r\n" + h + "X-A: a\x00b\r\n\r\n", false},
		{"chunk-size-zz", "POST /ok/chunk-size-zz HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", true},
		{"chunk-size-negative", "POST /ok/chunk-size-negative HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", true},
		{"chunk-size-overflow", "POST /ok/chunk-size-overflow HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff5\r\nhello\r\n0\r\n\r\n", true},
		{"chunk-size-0x", "POST /ok/chunk-size-0x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", true},
		{"chunk-data-too-long", "POST /ok/chunk-data-too-long HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, br := dialRaw(t, gh.Addr())
			send(t, c, tc.req)
			resp, body := readResp(t, c, br, "POST")
			assertErrorPage(t, resp, body, 400)
			expectClosed(t, c, br, 3*time.Second)
			if rec.saw("/ok/"+tc.name, tc.chunk) {
				t.Errorf("the backend received the request (path /ok/%s…)", tc.name)
			}
		})
	}
}

func TestLimitsAndErrorStatuses(t *testing.T) {
	t.Parallel()
	gh, rec, dead := startBadInputProxy(t)
	_, deadPort, _ := net.SplitHostPort(dead)
	const h = "Host: site.test\r\n"

	t.Run("header block over max_header_bytes is 431", func(t *testing.T) {
		t.Parallel()
		c, br := dialRaw(t, gh.Addr())
		send(t, c, "GET /ok/big-head HTTP/1.1\r\n"+h+"X-Big: "+strings.Repeat("a", 20000)+"\r\n\r\n")
		resp, body := readResp(t, c, br, "GET")
		assertErrorPage(t, resp, body, 431)
		if rec.saw("/ok/big-head", false) {
			t.Error("the backend received the request")
		}
	})
	t.Run("request line over the limit is 414 or 431", func(t *testing.T) {
		t.Parallel()
		c, br := dialRaw(t, gh.Addr())
		send(t, c, "GET /ok/long-line-"+strings.Repeat("a", 20000)+" HTTP/1.1\r\n"+h+"\r\n")
		resp, body := readResp(t, c, br, "GET")
		if resp.StatusCode != 414 && resp.StatusCode != 431 {
			t.Errorf("status %d (%q), want 414 or 431", resp.StatusCode, body)
		}
		if rec.saw("/ok/long-line", false) {
			t.Error("the backend received the request")
		}
	})
	t.Run("body over max_body_bytes is 413 (Content-Length)", func(t *testing.T) {
		t.Parallel()
		c, br := dialRaw(t, gh.Addr())
		send(t, c, "POST /ok/big-cl HTTP/1.1\r\n"+h+"Content-Length: 5000\r\n\r\n"+strings.Repeat("b", 5000))
		resp, body := readResp(t, c, br, "POST")
		assertErrorPage(t, resp, body, 413)
		if rec.saw("/ok/big-cl", true) {
			t.Error("the backend received the whole body")
		}
	})
	t.Run("body over max_body_bytes is 413 (chunked)", func(t *testing.T) {
		t.Parallel()
		c, br := dialRaw(t, gh.Addr())
		chunk := fmt.Sprintf("%x\r\n%s\r\n", 1000, strings.Repeat("c", 1000))
		send(t, c, "POST /ok/big-chunked HTTP/1.1\r\n"+h+"Transfer-Encoding: chunked\r\n\r\n"+chunk+chunk+chunk+"0\r\n\r\n")
		resp, body := readResp(t, c, br, "POST")
		assertErrorPage(t, resp, body, 413)
		if rec.saw("/ok/big-chunked", true) {
			t.Error("the backend received the whole body")
		}
	})
	t.Run("slow header client cut at read_header_timeout", func(t *testing.T) {
		t.Parallel()
		c, br := dialRaw(t, gh.Addr())
		start := time.Now()
		send(t, c, "GET /ok/slow HTTP/1.1\r\nHost: sit")
		c.SetReadDeadline(time.Now().Add(4 * time.Second))
		_, err := io.Copy(io.Discard, br) // a 408 before closing is fine
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection with an unfinished head still open after %v (read_header_timeout 1s)", time.Since(start).Round(time.Millisecond))
		}
		if d := time.Since(start); d > 3*time.Second || d < 500*time.Millisecond {
			t.Errorf("connection closed after %v, want about 1s", d.Round(time.Millisecond))
		}
	})
	t.Run("unreachable backend is 502", func(t *testing.T) {
		t.Parallel()
		resp, body := do(t, newClient(t), "GET", gh.URL("/dead/x"), "", nil)
		assertErrorPage(t, resp, body, 502, deadPort)
	})
	t.Run("backend that never answers is 504", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		resp, body := do(t, newClient(t), "GET", gh.URL("/hang/x"), "", nil)
		assertErrorPage(t, resp, body, 504)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("504 after %v, want about 500ms (timeouts.response_header)", d.Round(time.Millisecond))
		}
	})
	t.Run("no matching route is 404", func(t *testing.T) {
		t.Parallel()
		resp, body := do(t, newClient(t), "GET", gh.URL("/nowhere"), "", nil)
		assertErrorPage(t, resp, body, 404)
	})
}
