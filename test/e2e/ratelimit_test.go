package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// redisServer is a real redis-server on a loopback port, without
// persistence, stopped at the end of the test.
type redisServer struct {
	t    testing.TB
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	out  *logBuf
}

func startRedis(t testing.TB) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (make deps installs it): ", err)
	}
	r := &redisServer{t: t, out: &logBuf{}}
	for attempt := 1; ; attempt++ {
		r.addr = freeAddr(t)
		err := r.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("redis-server did not start: %v\n%s", err, r.out.String())
		}
	}
	t.Cleanup(r.stop)
	return r
}

// start runs redis-server on r.addr and waits until it answers PING.
func (r *redisServer) start() error {
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no")
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(r.cmd, r.done)
	if !waitFor(10*time.Second, func() bool { return redisPing(r.addr) }) {
		r.stop()
		return fmt.Errorf("no PONG from %s within 10s", r.addr)
	}
	return nil
}

func (r *redisServer) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// redisPing speaks just enough RESP to know the server is up.
func redisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

// getFrom sends GET path to gh with X-Forwarded-For: xff (when not empty).
func getFrom(t *testing.T, c *http.Client, gh *proc, path, xff string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", gh.URL(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp
}

func TestRateLimitLocal(t *testing.T) {
	cfg := `listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
trusted_proxies: [127.0.0.1]
sites:
  - routes:
      - match: {path: /ip}
        respond: {body: "ok\n"}
        middleware:
          - rate_limit: {rate: 2/m, burst: 2}
      - match: {path: /key}
        respond: {body: "ok\n"}
        middleware:
          - rate_limit: {key: [client_ip, header:X-Api-Key], rate: 1/m, burst: 1, headers: false}
`
	gh := startGatehouse(t, cfg)
	c := newClient(t)

	// Two requests pass with the draft's fields, the third gets 429.
	for i := range 2 {
		resp := getFrom(t, c, gh, "/ip", "2001:db8:1:2::1")
		if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Policy") != `"default";q=2;w=60` || resp.Header.Get("RateLimit") != fmt.Sprintf(`"default";r=%d;t=%d`, 1-i, 30*(i+1)) {
			t.Fatalf("request %d: %d RateLimit-Policy=%q RateLimit=%q", i, resp.StatusCode, resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
		}
	}
	// Same /64: same bucket.
	resp := getFrom(t, c, gh, "/ip", "2001:db8:1:2:ffff::9")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "30" || resp.Header.Get("RateLimit") != `"default";r=0;t=60` {
		t.Fatalf("third request from the /64: %d Retry-After=%q RateLimit=%q, want 429 after 30s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit"))
	}
	// Another /64 and an IPv4 client have buckets of their own.
	if resp := getFrom(t, c, gh, "/ip", "2001:db8:1:3::1"); resp.StatusCode != 200 {
		t.Fatalf("another /64: %d", resp.StatusCode)
	}
	if resp := getFrom(t, c, gh, "/ip", "192.0.2.1"); resp.StatusCode != 200 {
		t.Fatalf("an IPv4 client: %d", resp.StatusCode)
	}

	// Combined key: a second API key from the same address is another bucket.
	if resp := getFrom(t, c, gh, "/key", "192.0.2.9", "X-Api-Key", "a"); resp.StatusCode != 200 || resp.Header.Get("RateLimit") != "" {
		t.Fatalf("key a: %d RateLimit=%q (headers: false)", resp.StatusCode, resp.Header.Get("RateLimit"))
	}
	if resp := getFrom(t, c, gh, "/key", "192.0.2.9", "X-Api-Key", "a"); resp.StatusCode != 429 || resp.Header.Get("RateLimit") == "" {
		t.Fatalf("key a again: %d RateLimit=%q, want 429 with the fields", resp.StatusCode, resp.Header.Get("RateLimit"))
	}
	if resp := getFrom(t, c, gh, "/key", "192.0.2.9", "X-Api-Key", "b"); resp.StatusCode != 200 {
		t.Fatalf("key b: %d", resp.StatusCode)
	}
	if resp := getFrom(t, c, gh, "/key", "192.0.2.10", "X-Api-Key", "a"); resp.StatusCode != 200 {
		t.Fatalf("key a from another address: %d", resp.StatusCode)
	}

	// A reload that keeps the settings keeps the buckets.
	gh.signal(syscall.SIGHUP)
	if !waitFor(5*time.Second, func() bool { return strings.Contains(gh.stderr.String(), "configuration reloaded") }) {
		t.Fatalf("no reload logged:\n%s", gh.stderr.String())
	}
	if resp := getFrom(t, c, gh, "/ip", "2001:db8:1:2::1"); resp.StatusCode != 429 {
		t.Fatalf("after a reload: %d, want the bucket kept (429)", resp.StatusCode)
	}

	// The counters are on the admin listener's /metrics.
	const ipEntry = `{middleware="sites[0].routes[0].middleware[0].rate_limit"`
	if a, l := metricLine(t, gh, `gatehouse_ratelimit_requests_total`+ipEntry+`,outcome="allowed"}`), metricLine(t, gh, `gatehouse_ratelimit_requests_total`+ipEntry+`,outcome="limited"}`); a != 4 || l != 2 {
		t.Errorf("/metrics: allowed %v limited %v, want 4 and 2", a, l)
	}

	// The refusals are in the access log, naming the filter.
	if !waitFor(5*time.Second, func() bool {
		for _, l := range accessLines(gh.stderr.String()) {
			if l["blocked"] == "rate_limit" && l["status"] == float64(429) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no access line with blocked=rate_limit:\n%s", tail(gh.stderr.String(), 4000))
	}
}

func redisConfig(redisAddr, onErr string) string {
	return fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
trusted_proxies: [127.0.0.1]
cluster:
  redis: {addr: "%s", timeout: 200ms, dial_timeout: 200ms, prefix: "e2e:"}
sites:
  - routes:
      - respond: {body: "ok\n"}
        middleware:
          - rate_limit: {rate: 4/m, burst: 4, store: redis, on_store_error: %s}
`, redisAddr, onErr)
}

// Two gatehouse instances share one limit through one redis-server, and
// each fails open or closed as configured while Redis is away.
func TestRateLimitRedisSharedAcrossInstances(t *testing.T) {
	rs := startRedis(t)
	open := startGatehouse(t, redisConfig(rs.addr, "allow"))
	closed := startGatehouse(t, redisConfig(rs.addr, "deny"))
	c := newClient(t)

	// Four requests in all pass, alternating between the instances.
	for i := range 4 {
		gh := []*proc{open, closed}[i%2]
		if resp := getFrom(t, c, gh, "/", "198.51.100.1"); resp.StatusCode != 200 || resp.Header.Get("RateLimit") != fmt.Sprintf(`"default";r=%d;t=%d`, 3-i, 15*(i+1)) {
			t.Fatalf("request %d: %d RateLimit=%q", i, resp.StatusCode, resp.Header.Get("RateLimit"))
		}
	}
	for _, gh := range []*proc{open, closed} {
		if resp := getFrom(t, c, gh, "/", "198.51.100.1"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("fifth request: %d Retry-After=%q, want 429 on both instances", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if resp := getFrom(t, c, closed, "/", "198.51.100.2"); resp.StatusCode != 200 {
		t.Fatalf("another client: %d", resp.StatusCode)
	}

	// Redis goes away: the open instance lets requests through, the closed one answers 503.
	rs.stop()
	for range 3 {
		if resp := getFrom(t, c, open, "/", "198.51.100.1"); resp.StatusCode != 200 {
			t.Fatalf("open instance without Redis: %d, want 200", resp.StatusCode)
		}
		if resp := getFrom(t, c, closed, "/", "198.51.100.1"); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("closed instance without Redis: %d, want 503 with Retry-After", resp.StatusCode)
		}
	}
	for _, gh := range []*proc{open, closed} {
		if !waitFor(5*time.Second, func() bool { return strings.Contains(gh.stderr.String(), "redis store failed") }) {
			t.Fatalf("the Redis failure was not logged:\n%s", tail(gh.stderr.String(), 4000))
		}
		if n := strings.Count(gh.stderr.String(), "redis store failed"); n > 1 {
			t.Errorf("the failure was logged %d times in a few requests: want one line per 10s", n)
		}
		if strings.Contains(gh.stderr.String(), "blocked\":\"rate_limit:store_error") != (gh == closed) {
			t.Errorf("blocked=rate_limit:store_error in the access log: want it on the closed instance only")
		}
	}

	if n := metricLine(t, closed, `gatehouse_ratelimit_store_errors_total{middleware="sites[0].routes[0].middleware[0].rate_limit"}`); n < 3 {
		t.Errorf("/metrics: %v store errors on the closed instance, want at least 3", n)
	}

	// Redis comes back (empty): limiting resumes on both within a few seconds.
	if err := rs.start(); err != nil {
		t.Fatalf("restarting redis-server: %v", err)
	}
	if !waitFor(10*time.Second, func() bool {
		return getFrom(t, c, closed, "/", "198.51.100.3").StatusCode == 200
	}) {
		t.Fatal("the closed instance did not recover within 10s of Redis returning")
	}
	limited := false
	for i := 0; i < 12 && !limited; i++ {
		gh := []*proc{open, closed}[i%2]
		limited = getFrom(t, c, gh, "/", "198.51.100.4").StatusCode == 429
	}
	if !limited {
		t.Fatal("after Redis returned, 12 requests from one client were never limited")
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(closed.stderr.String(), "redis store answers again") }) {
		t.Fatalf("the recovery was not logged:\n%s", tail(closed.stderr.String(), 4000))
	}
}

func TestRateLimitConfigErrors(t *testing.T) {
	for _, c := range []struct{ mw, want string }{
		{`{rate: 100/x}`, `:6:32: sites[0].routes[0].middleware[0].rate_limit.rate: period "x"`},
		{`{rate: 10/s, store: redis}`, `rate_limit.store: needs cluster.redis`},
		{`{rate: 10/s, key: [client_ip, "header:bad name"]}`, `rate_limit.key: header name "bad name" is not an HTTP token`},
	} {
		p := writeFile(t, "rl.yaml", fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
sites:
  - routes:
      - respond: {body: "ok\n"}
        middleware:
          - rate_limit: %s
`, c.mw))
		code, _, stderr := runCLI(t, "validate", "-c", p)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: validate exit %d, said:\n%s\nwant %s", c.mw, code, stderr, c.want)
		}
	}
}

// Over HTTP/2 (h2c) and in front of a real backend, allowed answers carry the
// fields with the backend's body intact, and refusals are 429.
func TestRateLimitH2CAndProxied(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "yes")
		fmt.Fprint(w, strings.Repeat("b", 100000))
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    h2c: true
admin: {addr: "{{ADMIN}}"}
upstreams:
  app: {targets: ["%s"]}
sites:
  - routes:
      - upstream: app
        middleware:
          - rate_limit: {rate: 2/m, key: route}
`, be.URL))
	for _, c := range []*http.Client{h2cClient(t), newClient(t)} {
		resp, body := do(t, c, "GET", gh.URL("/"), "", nil)
		if resp.StatusCode != 200 || len(body) != 100000 || resp.Header.Get("X-Backend") != "yes" || resp.Header.Get("RateLimit-Policy") != `"default";q=2;w=60` {
			t.Fatalf("%s: %d, %d body bytes, X-Backend=%q RateLimit-Policy=%q", resp.Proto, resp.StatusCode, len(body), resp.Header.Get("X-Backend"), resp.Header.Get("RateLimit-Policy"))
		}
	}
	for _, c := range []*http.Client{h2cClient(t), newClient(t)} {
		resp, body := do(t, c, "GET", gh.URL("/"), "", nil)
		if resp.StatusCode != 429 || string(body) != "429 Too Many Requests\n" || resp.Header.Get("X-Backend") != "" {
			t.Fatalf("%s over the limit: %d %q", resp.Proto, resp.StatusCode, body)
		}
	}
}

// metricLine returns the value of the first /metrics sample of gh whose line
// starts with prefix (a metric name and its labels), or -1 when there is none.
func metricLine(t *testing.T, gh *proc, prefix string) float64 {
	t.Helper()
	resp, body := do(t, newClient(t), "GET", "http://"+gh.Admin()+"/metrics", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}
