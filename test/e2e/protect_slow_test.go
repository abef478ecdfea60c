package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSlowlorisHeadCutAtTotalTimeout: a request head trickled one byte at a
// time, each byte well inside any per-read timeout, is cut when
// read_header_timeout has passed since the head began, with 408.
func TestSlowlorisHeadCutAtTotalTimeout(t *testing.T) {
	t.Parallel()
	be := echoBackend(t, "be")
	gh := startGatehouse(t, oneUpstream("limits: {read_header_timeout: 1s}", be.URL))
	c, br := dialRaw(t, gh.Addr())
	start := time.Now()
	send(t, c, "GET / HTTP/1.1\r\nHost: x\r\n")
	cut := make(chan time.Duration, 1)
	go func() {
		for i := 0; ; i++ {
			if _, err := c.Write([]byte{"X-Slow: abcdefghijklmnopqrstuvwxyz\r\n"[i%35]}); err != nil {
				return
			}
			if time.Since(start) > 8*time.Second {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	go func() {
		c.SetReadDeadline(time.Now().Add(8 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err == nil && resp.StatusCode == 408 {
			io.Copy(io.Discard, br)
			cut <- time.Since(start)
			return
		}
		cut <- -1
	}()
	d := <-cut
	if d < 0 {
		t.Fatal("no 408 for a trickled head")
	}
	if d < 900*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("trickled head cut after %v, want about read_header_timeout (1s) in total", d)
	}
}

// TestSlowBodyCutByMinimumRate: an upload slower than min_body_rate is cut
// with 408 and the connection closed, even though every byte arrives well
// within body_read_timeout; an upload at a rate above the minimum, taking
// longer than the window in total, passes.
func TestSlowBodyCutByMinimumRate(t *testing.T) {
	t.Parallel()
	be := echoBackend(t, "be")
	gh := startGatehouse(t, oneUpstream("limits: {min_body_rate: 2KiB, body_rate_window: 1s, body_read_timeout: 30s}", be.URL))

	// Too slow: 200 bytes every 200 ms (1 KB/s).
	c, br := dialRaw(t, gh.Addr())
	start := time.Now()
	send(t, c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	go func() {
		chunk := strings.Repeat("a", 200)
		for time.Since(start) < 8*time.Second {
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	resp, _ := readResp(t, c, br, "POST")
	if resp.StatusCode != 408 {
		t.Fatalf("slow upload: %d, want 408", resp.StatusCode)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("slow upload cut after %v, want about one window (1s)", d)
	}
	expectClosed(t, c, br, 3*time.Second)

	// Fast enough: 1 KiB every 200 ms (5 KiB/s) for 2.4 s.
	c2, br2 := dialRaw(t, gh.Addr())
	const total = 12 << 10
	send(t, c2, fmt.Sprintf("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", total))
	for sent := 0; sent < total; sent += 1 << 10 {
		send(t, c2, strings.Repeat("b", 1<<10))
		time.Sleep(200 * time.Millisecond)
	}
	resp, body := readResp(t, c2, br2, "POST")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"body_len":12288`) {
		t.Fatalf("upload above the minimum rate: %d %s", resp.StatusCode, body)
	}
}

// TestSlowReaderCut: a client that stops reading a large response is cut
// after write_timeout, and the backend's connection is released (its
// writes fail) rather than held for as long as the client likes. Both the
// spliced (fixed length) and the copied (chunked) paths are covered.
func TestSlowReaderCut(t *testing.T) {
	t.Parallel()
	released := make(chan string, 4)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const size = 1 << 30
		if r.URL.Path == "/fixed" {
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		buf := make([]byte, 64<<10)
		start := time.Now()
		for n := 0; n < size; n += len(buf) {
			if _, err := w.Write(buf); err != nil {
				released <- r.URL.Path
				return
			}
			if time.Since(start) > 20*time.Second {
				return
			}
		}
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, oneUpstream("limits: {write_timeout: 1s}", be.URL))
	for _, path := range []string{"/fixed", "/chunked"} {
		t.Run(path, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", gh.Addr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			send(t, c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			// Never read: the proxy's writes block once the buffers fill.
			select {
			case p := <-released:
				if p != path {
					t.Fatalf("released %s, want %s", p, path)
				}
				if d := time.Since(start); d < time.Second {
					t.Errorf("released after %v, before write_timeout", d)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the backend connection was not released 15s after the client stopped reading")
			}
			// The client connection is closed too: draining it ends.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
				t.Fatalf("client connection after the cut: %v after %d bytes, want it closed", err, n)
			}
		})
	}
}
