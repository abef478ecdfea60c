package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
