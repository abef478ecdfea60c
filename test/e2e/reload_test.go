package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// respondConfig serves body on every path of {{LISTEN}}; extraListeners are added as further listeners.
func respondConfig(body string, extraListeners ...string) string {
	ls := "  - addr: {{LISTEN}}\n"
	for _, l := range extraListeners {
		ls += "  - addr: {{" + l + "}}\n"
	}
	return fmt.Sprintf(`listeners:
%sadmin:
  addr: {{ADMIN}}
shutdown_timeout: 5s
sites:
  - routes:
      - match: {path_prefix: /}
        respond: {status: 200, body: "%s\n"}
`, ls, body)
}

// invalidConfig has an unknown field at line 2, column 1.
const invalidConfig = `listeners: [{addr: "{{LISTEN}}"}]
bogus_field: 1
admin: {addr: "{{ADMIN}}"}
sites:
  - routes:
      - {match: {path_prefix: /}, respond: {body: "broken\n"}}
`

func bodyOf(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitBody(t *testing.T, c *http.Client, url, want string, d time.Duration) {
	t.Helper()
	var got string
	if !waitFor(d, func() bool { got = bodyOf(t, c, url); return got == want }) {
		t.Fatalf("after %v %s still answers %q, want %q", d, url, got, want)
	}
}

func adminReload(t *testing.T, gh *proc) (int, []byte) {
	t.Helper()
	resp, body := do(t, newClient(t), "POST", "http://"+gh.Admin()+"/api/v1/reload", "", nil)
	return resp.StatusCode, body
}

func TestReloadBySIGHUP(t *testing.T) {
	t.Parallel()
	gh := startGatehouse(t, respondConfig("v1"))
	c := newClient(t)
	if got := bodyOf(t, c, gh.URL("/")); got != "v1\n" {
		t.Fatalf("got %q", got)
	}
	gh.writeConfig(respondConfig("v2"))
	gh.signal(syscall.SIGHUP)
	waitBody(t, c, gh.URL("/"), "v2\n", 5*time.Second)

	// An invalid file is rejected on SIGHUP: logged with FILE:LINE:COL, v2 keeps serving.
	gh.writeConfig(invalidConfig)
	gh.signal(syscall.SIGHUP)
	where := fmt.Sprintf("%s:2:1", gh.cfgPath)
	if !waitFor(5*time.Second, func() bool { return strings.Contains(gh.stderr.String(), where) }) {
		t.Errorf("no log line naming %s after reloading an invalid config", where)
	}
	if got := bodyOf(t, c, gh.URL("/")); got != "v2\n" {
		t.Errorf("after a rejected reload the proxy answers %q, want the old %q", got, "v2\n")
	}
	select {
	case <-gh.done:
		t.Fatal("gatehouse exited after a rejected reload")
	default:
	}
}

func TestReloadByAdminAPI(t *testing.T) {
	t.Parallel()
	gh := startGatehouse(t, respondConfig("v1"))
	c := newClient(t)
	gh.writeConfig(respondConfig("v2"))
	status, body := adminReload(t, gh)
	var r struct{ Status string }
	if status != 200 || json.Unmarshal(body, &r) != nil || r.Status != "reloaded" {
		t.Fatalf("reload: %d %q, want 200 {\"status\":\"reloaded\"}", status, body)
	}
	if got := bodyOf(t, c, gh.URL("/")); got != "v2\n" {
		t.Errorf("right after a successful reload the proxy answers %q, want v2", got)
	}

	gh.writeConfig(invalidConfig)
	status, body = adminReload(t, gh)
	if status != 400 && status != 422 {
		t.Errorf("reload of an invalid config: status %d, want 400 or 422", status)
	}
	if !json.Valid(body) || !strings.Contains(string(body), "bogus_field") {
		t.Errorf("reload error body %q: want JSON listing the error (unknown field bogus_field)", body)
	}
	if got := bodyOf(t, c, gh.URL("/")); got != "v2\n" {
		t.Errorf("after a rejected reload the proxy answers %q, want the old v2", got)
	}
}

func TestReloadByWatch(t *testing.T) {
	t.Parallel()
	gh := startGatehouse(t, respondConfig("v1"), "--watch")
	c := newClient(t)
	// In place (like `echo > file`), then replaced by rename (like most editors), then in place again.
	if err := os.WriteFile(gh.cfgPath, []byte(gh.expand(respondConfig("v2"))), 0o644); err != nil {
		t.Fatal(err)
	}
	waitBody(t, c, gh.URL("/"), "v2\n", 10*time.Second)
	gh.writeConfig(respondConfig("v3"))
	waitBody(t, c, gh.URL("/"), "v3\n", 10*time.Second)
	if err := os.WriteFile(gh.cfgPath, []byte(gh.expand(respondConfig("v4"))), 0o644); err != nil {
		t.Fatal(err)
	}
	waitBody(t, c, gh.URL("/"), "v4\n", 10*time.Second)
}

func TestReloadKeepsInFlightStream(t *testing.T) {
	t.Parallel()
	const parts = 20
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < parts; i++ {
			fmt.Fprintf(w, "part %02d\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-time.After(100 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(be.Close)
	cfg := func(v string) string {
		return fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
upstreams:
  app: {targets: ["%s"]}
sites:
  - routes:
      - {match: {path: /version}, respond: {body: "%s\n"}}
      - {match: {path_prefix: /}, upstream: app}
`, be.URL, v)
	}
	gh := startGatehouse(t, cfg("v1"))
	c := newClient(t)
	resp, err := c.Get(gh.URL("/stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("part 00\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first part: %v", err)
	}
	gh.writeConfig(cfg("v2"))
	if status, body := adminReload(t, gh); status != 200 {
		t.Fatalf("reload: %d %q", status, body)
	}
	if got := bodyOf(t, c, gh.URL("/version")); got != "v2\n" {
		t.Errorf("new requests during the stream answer %q, want v2", got)
	}
	rest, err := io.ReadAll(resp.Body)
	var want strings.Builder
	for i := 0; i < parts; i++ {
		fmt.Fprintf(&want, "part %02d\n", i)
	}
	if got := string(first) + string(rest); err != nil || got != want.String() {
		t.Errorf("stream across the reload: err %v, got %q, want %q", err, got, want.String())
	}
}

func TestReloadAddsAndRemovesListeners(t *testing.T) {
	t.Parallel()
	gh := startGatehouse(t, respondConfig("v1"))
	c := newClient(t)
	gh.writeConfig(respondConfig("v2", "EXTRA"))
	if status, body := adminReload(t, gh); status != 200 {
		t.Fatalf("reload: %d %q", status, body)
	}
	extra := "http://" + gh.Port("EXTRA") + "/"
	waitBody(t, c, extra, "v2\n", 5*time.Second)

	gh.writeConfig(respondConfig("v3"))
	if status, body := adminReload(t, gh); status != 200 {
		t.Fatalf("reload: %d %q", status, body)
	}
	c.CloseIdleConnections()
	if !waitFor(5*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", gh.Port("EXTRA"), time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	}) {
		t.Errorf("listener %s removed by reload still accepts connections", gh.Port("EXTRA"))
	}
	waitBody(t, c, gh.URL("/"), "v3\n", 5*time.Second)
}
