package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(15 * time.Second):
		}
		io.WriteString(w, "slow but complete\n")
	}))
	t.Cleanup(be.Close)
	rel := onceCloser(release)
	t.Cleanup(rel)
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
shutdown_timeout: 10s
upstreams:
  app: {targets: ["%s"]}
sites:
  - routes:
      - {match: {path_prefix: /}, upstream: app}
`, be.URL))

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 20 * time.Second}
		resp, err := c.Get(gh.URL("/slow"))
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(b), err}
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow request did not reach the backend")
	}

	gh.signal(syscall.SIGTERM)
	if !waitFor(3*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", gh.Addr(), 500*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	}) {
		t.Error("new connections still accepted 3s after SIGTERM")
	}
	select {
	case <-gh.done:
		t.Fatalf("gatehouse exited (code %d) before the in-flight request finished", gh.exit)
	default:
	}

	rel()
	select {
	case r := <-done:
		if r.err != nil || r.status != 200 || r.body != "slow but complete\n" {
			t.Errorf("in-flight request: status %d body %q err %v; want 200 complete", r.status, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request did not finish")
	}
	code, exited := gh.waitExit(10 * time.Second)
	if !exited {
		t.Fatal("gatehouse did not exit within 10s after SIGTERM once idle")
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestParkedKeepAliveConnections(t *testing.T) {
	// Keep-alive connections idle for over a second are parked without a
	// goroutine (internal/h1/park_linux.go). Through the real binary: they
	// still serve their next request, still count as open, and SIGTERM
	// closes them at once.
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
shutdown_timeout: 20s
upstreams:
  app: {targets: ["%s"]}
sites:
  - routes:
      - {match: {path_prefix: /}, upstream: app}
`, be.URL))
	get := func(c net.Conn, br *bufio.Reader, path string) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != path {
			return fmt.Errorf("GET %s: %d %q %v", path, resp.StatusCode, b, err)
		}
		return nil
	}
	gauge := func(name string) string {
		_, body := do(t, newClient(t), "GET", "http://"+gh.Admin()+"/metrics", "", nil)
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, name+"{") {
				return line[strings.LastIndexByte(line, ' ')+1:]
			}
		}
		return "(none)"
	}
	const conns = 20
	open := make([]net.Conn, conns)
	brs := make([]*bufio.Reader, conns)
	for i := range open {
		c, err := net.Dial("tcp", gh.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		open[i], brs[i] = c, bufio.NewReader(c)
		if err := get(c, brs[i], "/first"); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		time.Sleep(2500 * time.Millisecond) // parked after 1 s idle
		if n := gauge("gatehouse_listener_connections"); n != "20" {
			t.Errorf("round %d: %s client connections open while parked, want 20", round, n)
		}
		if n := gauge("gatehouse_listener_connections_parked"); n != "20" {
			t.Errorf("round %d: %s connections parked, want 20", round, n)
		}
		for i, c := range open {
			if err := get(c, brs[i], fmt.Sprintf("/again-%d-%d", round, i)); err != nil {
				t.Fatalf("round %d: connection %d after parking: %v", round, i, err)
			}
		}
	}
	time.Sleep(2500 * time.Millisecond)
	start := time.Now()
	gh.signal(syscall.SIGTERM)
	code, exited := gh.waitExit(10 * time.Second)
	if !exited || code != 0 {
		t.Fatalf("exit %v code %d", exited, code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("exit took %v with only parked idle connections open (shutdown_timeout 20s)", d)
	}
	for i, c := range open {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := brs[i].ReadByte(); err != io.EOF {
			t.Errorf("connection %d after shutdown: %v, want EOF", i, err)
		}
	}
}
