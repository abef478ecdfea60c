package server

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

// startAdminTest runs a server for the config text (its admin on 127.0.0.1:0)
// and returns it with its proxy and admin addresses.
func startAdminTest(t *testing.T, text string, known map[string]filter.Factory) (*Server, string, string) {
	t.Helper()
	cfg, err := config.Parse("c.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(cfg, slog.New(slog.DiscardHandler), known)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	var addr string
	for _, a := range srv.Addrs() {
		addr = a.String()
	}
	return srv, addr, srv.admin.ln.Addr().String()
}

// adminCall sends one request and returns the status, headers and body.
func adminCall(t *testing.T, method, url string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestAdminToken(t *testing.T) {
	const token = "0123456789abcdef-token"
	tf := filepath.Join(t.TempDir(), "admin.token")
	os.WriteFile(tf, []byte(token+"\n"), 0o600)
	_, _, admin := startAdminTest(t, fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
admin: {addr: "127.0.0.1:0", token_file: %q}
access_log: {enabled: false}
sites: [{routes: [{respond: {body: hi}}]}]
`, tf), factories)
	base := "http://" + admin
	for _, path := range []string{"/api/v1/status", "/api/v1/upstreams", "/api/v1/config", "/api/v1/stats", "/metrics"} {
		st, h, _ := adminCall(t, "GET", base+path)
		if st != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET %s without the token: %d %q, want 401 with a Bearer challenge", path, st, h.Get("WWW-Authenticate"))
		}
		if st, _, _ := adminCall(t, "GET", base+path, "Authorization", "Bearer wrong-token-of-some-length"); st != 401 {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, st)
		}
		if st, _, _ := adminCall(t, "GET", base+path, "Authorization", "Bearer "+token); st != 200 {
			t.Errorf("GET %s with the token: %d, want 200", path, st)
		}
	}
	if st, _, _ := adminCall(t, "POST", base+"/api/v1/reload"); st != 401 {
		t.Errorf("POST reload without the token: %d, want 401", st)
	}
	for _, path := range []string{"/healthz", "/", "/dashboard/app.js"} {
		if st, _, _ := adminCall(t, "GET", base+path); st != 200 {
			t.Errorf("GET %s without the token: %d, want 200 (no data there)", path, st)
		}
	}
	// With a token the Host header does not matter (the listener may be
	// reached by any name), but a cross-origin write is refused.
	if st, _, _ := adminCall(t, "GET", base+"/api/v1/status", "Authorization", "Bearer "+token, "Host", "admin.example"); st != 200 {
		t.Errorf("GET with the token and another Host: %d, want 200", st)
	}
	if st, _, _ := adminCall(t, "POST", base+"/api/v1/reload", "Authorization", "Bearer "+token, "Origin", "http://evil.example"); st != 403 {
		t.Errorf("cross-origin POST: %d, want 403", st)
	}
}

func TestAdminWithoutTokenAnswersLoopbackNamesOnly(t *testing.T) {
	_, _, admin := startAdminTest(t, `listeners: [{addr: "127.0.0.1:0"}]
admin: {addr: "127.0.0.1:0"}
access_log: {enabled: false}
sites: [{routes: [{respond: {body: hi}}]}]
`, factories)
	base := "http://" + admin
	if st, _, body := adminCall(t, "GET", base+"/api/v1/status", "Host", "rebound.evil.example:9901"); st != 421 || !strings.Contains(body, "localhost") {
		t.Errorf("DNS-rebound Host: %d %q, want 421", st, body)
	}
	for _, host := range []string{"localhost", "127.0.0.1:9901", "[::1]:9901"} {
		if st, _, _ := adminCall(t, "GET", base+"/api/v1/status", "Host", host); st != 200 {
			t.Errorf("Host %s: %d, want 200", host, st)
		}
	}
	if st, _, _ := adminCall(t, "POST", base+"/api/v1/reload", "Sec-Fetch-Site", "cross-site"); st != 403 {
		t.Errorf("cross-site POST: %d, want 403", st)
	}
	if st, _, _ := adminCall(t, "POST", base+"/api/v1/reload", "Origin", "http://"+admin); st == 403 {
		t.Errorf("same-origin POST refused")
	}
	st, h, body := adminCall(t, "GET", base+"/")
	if st != 200 || !strings.Contains(body, "<canvas") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("dashboard: %d %q CSP %q", st, body[:min(len(body), 80)], h.Get("Content-Security-Policy"))
	}
	var status map[string]any
	_, _, body = adminCall(t, "GET", base+"/api/v1/status")
	if json.Unmarshal([]byte(body), &status) != nil || status["version"] != Version || status["config_hash"] == "" || status["metrics_enabled"] != true {
		t.Errorf("status: %s", body)
	}
}

// adminSecretive is a test filter whose settings hold secrets.
type adminSecretive struct{}

func (adminSecretive) Serve(x *filter.Exchange, next filter.Handler) { next.Serve(x) }

func TestAdminConfigRedactsSecrets(t *testing.T) {
	known := map[string]filter.Factory{"adminSecretive": func(b *filter.Build) (filter.Filter, error) {
		var s struct {
			Realm  string            `yaml:"realm"`
			APIKey string            `yaml:"api_key"`
			Users  map[string]string `yaml:"users"`
			Nested struct {
				ClientSecret string `yaml:"client_secret"`
				KeyFile      string `yaml:"key_file"`
			} `yaml:"nested"`
		}
		if _, err := b.Decode(&s); err != nil {
			return nil, err
		}
		return adminSecretive{}, nil
	}}
	pw := filepath.Join(t.TempDir(), "redis.pw")
	os.WriteFile(pw, []byte("redis-password-SECRET1"), 0o600)
	_, _, admin := startAdminTest(t, fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
admin: {addr: "127.0.0.1:0"}
access_log: {enabled: false}
cluster: {redis: {addr: "127.0.0.1:1", password_file: %q}}
sites:
  - routes:
      - request_headers: {set: {Authorization: "Bearer SECRET2", X-Plain: visible}}
        respond: {body: hi}
        middleware:
          - adminSecretive:
              realm: staff
              api_key: SECRET3
              users: {alice: "$2y$10$SECRET4"}
              nested: {client_secret: SECRET5, key_file: /etc/k.pem}
`, pw), known)
	_, _, body := adminCall(t, "GET", "http://"+admin+"/api/v1/config")
	for _, s := range []string{"SECRET", "alice"} {
		if strings.Contains(body, s) {
			t.Errorf("config shows %q:\n%s", s, body)
		}
	}
	for _, s := range []string{`"realm": "staff"`, `"X-Plain": "visible"`, `"key_file": "/etc/k.pem"`, `"password_file": "` + pw, `"Authorization": "[redacted]"`, `"api_key": "[redacted]"`, `"listeners"`} {
		if !strings.Contains(body, s) {
			t.Errorf("config lacks %s:\n%s", s, body)
		}
	}
}

// adminCountingBackend answers "NAME"; /slow waits for release.
func adminCountingBackend(t *testing.T, name string, hits *atomic.Int64, release chan struct{}) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDrainAndEnable(t *testing.T) {
	var hitsA, hitsB atomic.Int64
	release := make(chan struct{})
	a := adminCountingBackend(t, "a", &hitsA, release)
	b := adminCountingBackend(t, "b", &hitsB, release)
	addrA := strings.TrimPrefix(a.URL, "http://")
	tmpl := `listeners: [{addr: "127.0.0.1:0"}]
admin: {addr: "127.0.0.1:0"}
access_log: {enabled: false}
upstreams: {app: {targets: [%q, %q], balance: first, timeouts: {connect: %s}}}
sites: [{routes: [{upstream: app}]}]
`
	srv, proxyAddr, admin := startAdminTest(t, fmt.Sprintf(tmpl, a.URL, b.URL, "5s"), factories)
	srv.Loader = func() (*config.Config, error) {
		// Changed connect timeout: the targets get new backends.
		return config.Parse("c.yaml", []byte(fmt.Sprintf(tmpl, a.URL, b.URL, "4s")))
	}
	base := "http://" + admin + "/api/v1/upstreams/app/targets/"
	get := func() string {
		_, _, body := adminCall(t, "GET", "http://"+proxyAddr+"/")
		return body
	}
	if got := get(); got != "a" {
		t.Fatalf("before the drain: %q, want a (balance: first)", got)
	}
	slow := make(chan string, 1)
	go func() {
		_, _, body := adminCall(t, "GET", "http://"+proxyAddr+"/slow")
		slow <- body
	}()
	for hitsA.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	st, _, body := adminCall(t, "POST", base+addrA+"/drain")
	if st != 200 || !strings.Contains(body, `"in_flight": 1`) || !strings.Contains(body, `"status": "drained"`) {
		t.Fatalf("drain: %d %s", st, body)
	}
	for range 5 {
		if got := get(); got != "b" {
			t.Fatalf("after the drain: %q, want b", got)
		}
	}
	close(release)
	if got := <-slow; got != "a" {
		t.Errorf("the request in flight on the drained target: %q, want it to finish with a", got)
	}
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "b" {
		t.Errorf("after a reload keeping the target: %q, want b (still drained)", got)
	}
	_, _, ups := adminCall(t, "GET", "http://"+admin+"/api/v1/upstreams")
	if !strings.Contains(ups, `"state": "drained"`) || !strings.Contains(ups, `"drained": true`) {
		t.Errorf("upstreams after the reload:\n%s", ups)
	}
	if st, _, body := adminCall(t, "POST", base+addrA+"/enable"); st != 200 || !strings.Contains(body, `"enabled"`) {
		t.Fatalf("enable: %d %s", st, body)
	}
	if got := get(); got != "a" {
		t.Errorf("after enable: %q, want a", got)
	}
	if st, _, _ := adminCall(t, "POST", base+"127.0.0.1:1/drain"); st != 404 {
		t.Errorf("unknown target: %d, want 404", st)
	}
	if st, _, _ := adminCall(t, "POST", "http://"+admin+"/api/v1/upstreams/nope/targets/"+addrA+"/drain"); st != 404 {
		t.Errorf("unknown pool: %d, want 404", st)
	}
	if st, _, _ := adminCall(t, "GET", base+addrA+"/drain"); st != 405 {
		t.Errorf("GET drain: %d, want 405", st)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	var hits atomic.Int64
	be := adminCountingBackend(t, "x", &hits, nil)
	logFile := filepath.Join(t.TempDir(), "access.log")
	tmpl := `listeners: [{addr: "127.0.0.1:0"}]
admin: {addr: "127.0.0.1:0"}
access_log: {output: %q}
metrics: {enabled: %v}
upstreams: {app: {targets: [%q]}}
sites: [{hosts: [shop.example], routes: [{upstream: app}]}]
`
	srv, proxyAddr, admin := startAdminTest(t, fmt.Sprintf(tmpl, logFile, true, be.URL), factories)
	for range 3 {
		adminCall(t, "GET", "http://"+proxyAddr+"/some/path?q=1", "Host", "shop.example")
	}
	adminCall(t, "DELETE", "http://"+proxyAddr+"/", "Host", "other.example") // no route: 404
	_, _, body := adminCall(t, "GET", "http://"+admin+"/metrics")
	addr := strings.TrimPrefix(be.URL, "http://")
	for _, want := range []string{
		`gatehouse_requests_total{code="2xx",method="GET",route="sites[0].routes[0]",site="shop.example",upstream="app"} 3`,
		`gatehouse_requests_total{code="4xx",method="DELETE",route="",site="",upstream=""} 1`,
		`gatehouse_request_duration_seconds_count{route="sites[0].routes[0]",site="shop.example"} 3`,
		`gatehouse_response_body_bytes_total{route="sites[0].routes[0]",site="shop.example"} 3`,
		`gatehouse_upstream_response_seconds_count{target="` + addr + `",upstream="app"} 3`,
		`gatehouse_upstream_target_up{target="` + addr + `",upstream="app"} 1`,
		`gatehouse_upstream_target_in_flight{target="` + addr + `",upstream="app"} 0`,
		`gatehouse_listener_connections{listener="127.0.0.1:0"}`,
		`gatehouse_config_reloads_total{result="success"} 0`,
		`gatehouse_config_last_reload_successful 1`,
		`gatehouse_access_log_dropped_total 0`,
		`go_goroutines`, `process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "/some/path") || strings.Contains(body, "q=1") {
		t.Error("/metrics shows a request path")
	}
	// Off: requests are not counted; the scrape-time metrics remain.
	srv.Loader = func() (*config.Config, error) {
		return config.Parse("c.yaml", []byte(fmt.Sprintf(tmpl, logFile, false, be.URL)))
	}
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	adminCall(t, "GET", "http://"+proxyAddr+"/", "Host", "shop.example")
	_, _, body = adminCall(t, "GET", "http://"+admin+"/metrics")
	if !strings.Contains(body, `upstream="app"} 3`) || strings.Contains(body, `upstream="app"} 4`) {
		t.Error("a request was counted with metrics off")
	}
	if !strings.Contains(body, `gatehouse_config_reloads_total{result="success"} 1`) || !strings.Contains(body, "gatehouse_upstream_target_up") {
		t.Error("scrape-time metrics missing with metrics off")
	}
}
