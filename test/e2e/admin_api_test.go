package e2e

// The admin API of the real binary behind a bearer token: metrics, status,
// the redacted configuration, and draining a target across a SIGHUP reload.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAdminAPIWithToken(t *testing.T) {
	const token = "e2e-admin-token-0123456789"
	dir := t.TempDir()
	tf := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tf, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, b := newHCBackend(t, "a"), newHCBackend(t, "b")
	tmpl := `listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}", token_file: %q}
access_log: {enabled: false}
shutdown_timeout: 2s
upstreams:
  app:
    targets: [%s, %s]
    balance: first
    timeouts: {connect: %s}
sites:
  - routes:
      - request_headers: {set: {X-Api-Key: hunter2-secret}}
        upstream: app
`
	p := startGatehouse(t, fmt.Sprintf(tmpl, tf, a.url(), b.url(), "5s"))
	defer p.stop()
	c := newClient(t)
	admin := func(method, path, tok string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+p.Admin()+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	get := func() string {
		_, body := do(t, c, "GET", p.URL("/"), "", nil)
		return strings.TrimSpace(string(body))
	}

	if st, _ := admin("GET", "/metrics", ""); st != 401 {
		t.Errorf("/metrics without the token: %d, want 401", st)
	}
	if st, _ := admin("POST", "/api/v1/upstreams/app/targets/"+a.addr+"/drain", "not-the-token"); st != 401 {
		t.Errorf("drain with a wrong token: %d, want 401", st)
	}
	if got := get(); got != "a" {
		t.Fatalf("GET /: %q, want a", got)
	}
	st, body := admin("GET", "/metrics", token)
	if st != 200 || !strings.Contains(body, `gatehouse_requests_total{code="2xx",method="GET",route="sites[0].routes[0]",site="*",upstream="app"} 1`) {
		t.Errorf("/metrics: %d\n%s", st, tail(body, 2000))
	}
	if _, body := admin("GET", "/api/v1/config", token); strings.Contains(body, "hunter2") || strings.Contains(body, token) || !strings.Contains(body, `"X-Api-Key": "[redacted]"`) {
		t.Errorf("config not redacted:\n%s", body)
	}

	st, body = admin("POST", "/api/v1/upstreams/app/targets/"+a.addr+"/drain", token)
	if st != 200 {
		t.Fatalf("drain: %d %s", st, body)
	}
	if got := get(); got != "b" {
		t.Errorf("after draining a: %q, want b", got)
	}
	// A reload that gives the targets new connection settings keeps a drained.
	p.writeConfig(fmt.Sprintf(tmpl, tf, a.url(), b.url(), "4s"))
	p.signal(syscall.SIGHUP)
	var status struct {
		Reloads    int    `json:"reloads"`
		ConfigHash string `json:"config_hash"`
	}
	if !waitFor(5*time.Second, func() bool {
		_, body := admin("GET", "/api/v1/status", token)
		return json.Unmarshal([]byte(body), &status) == nil && status.Reloads == 1
	}) {
		t.Fatalf("no reload seen in /api/v1/status: %+v", status)
	}
	if got := get(); got != "b" {
		t.Errorf("after the reload: %q, want b (a still drained)", got)
	}
	if st, _ := admin("POST", "/api/v1/upstreams/app/targets/"+a.addr+"/enable", token); st != 200 {
		t.Fatalf("enable: %d", st)
	}
	if got := get(); got != "a" {
		t.Errorf("after enable: %q, want a", got)
	}
	if _, body := admin("GET", "/metrics", token); !strings.Contains(body, `gatehouse_config_reloads_total{result="success"} 1`) {
		t.Errorf("/metrics does not count the reload")
	}
}
