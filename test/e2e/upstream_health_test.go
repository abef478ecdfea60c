package e2e

// End-to-end tests of upstream health: active checks (fall/rise, expected
// body, stopped by a reload), backups, passive outlier ejection, and the admin
// view of target states (GET /api/v1/upstreams).

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hcBackend is a controllable backend: every request but GET /healthz is
// answered with status (200 by default) and the body "NAME\n"; /healthz with
// healthStatus and healthBody. A path ending in /block waits until the test
// releases it. kill closes the listener and every open connection abruptly.
type hcBackend struct {
	name string
	addr string

	hits         atomic.Int64 // requests other than /healthz
	healthHits   atomic.Int64
	inFlight     atomic.Int64 // requests other than /healthz being handled
	lateHits     atomic.Int64 // requests that reached the handler after kill
	status       atomic.Int32
	healthStatus atomic.Int32
	healthBody   atomic.Value // string
	delay        time.Duration

	mu      sync.Mutex
	methods map[string]int

	release func()
	block   chan struct{}

	ln     *hcListener
	srv    *http.Server
	killed atomic.Bool
}

// hcListener records every accepted connection so kill can cut them all.
type hcListener struct {
	net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func (l *hcListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		hcAbort(c)
		return nil, net.ErrClosed
	}
	l.conns = append(l.conns, c)
	return c, nil
}

// killAll closes the listener and resets every connection it accepted.
func (l *hcListener) killAll() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	l.Listener.Close()
	for _, c := range conns {
		hcAbort(c)
	}
}

// hcAbort closes c with a RST (no FIN, no graceful drain): a crashed server.
func hcAbort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func newHCBackend(t testing.TB, name string) *hcBackend {
	return newHCBackendDelay(t, name, 0)
}

func newHCBackendDelay(t testing.TB, name string, delay time.Duration) *hcBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &hcBackend{name: name, addr: l.Addr().String(), delay: delay, methods: map[string]int{},
		block: make(chan struct{}), ln: &hcListener{Listener: l}}
	b.release = onceCloser(b.block)
	b.status.Store(200)
	b.healthStatus.Store(200)
	b.healthBody.Store("ok\n")
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(b.ln)
	t.Cleanup(func() {
		b.release()
		b.ln.killAll()
		b.srv.Close()
	})
	return b
}

func (b *hcBackend) serve(w http.ResponseWriter, r *http.Request) {
	if b.killed.Load() {
		b.lateHits.Add(1)
	}
	if r.URL.Path == "/healthz" {
		b.healthHits.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(int(b.healthStatus.Load()))
		io.WriteString(w, b.healthBody.Load().(string))
		return
	}
	b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	b.hits.Add(1)
	b.mu.Lock()
	b.methods[r.Method]++
	b.mu.Unlock()
	io.Copy(io.Discard, r.Body)
	if strings.HasSuffix(r.URL.Path, "/block") {
		select {
		case <-b.block:
		case <-time.After(30 * time.Second):
		}
	}
	if b.delay > 0 {
		time.Sleep(b.delay)
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(int(b.status.Load()))
	io.WriteString(w, b.name+"\n")
}

func (b *hcBackend) url() string { return "http://" + b.addr }

func (b *hcBackend) methodHits(m string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.methods[m]
}

// kill makes the backend vanish as a crashed process would.
func (b *hcBackend) kill() {
	b.ln.killAll()
	b.killed.Store(true)
}

// poolConfig is a gatehouse config with an admin listener and one pool "app"
// (its YAML body given indented by four spaces) that serves every path.
func poolConfig(pool string) string {
	return `listeners:
  - addr: {{LISTEN}}
admin:
  addr: {{ADMIN}}
shutdown_timeout: 2s
upstreams:
  app:
` + pool + `
sites:
  - routes:
      - match: {path_prefix: /}
        upstream: app
`
}

// tally sends n sequential GETs and counts the answers by body ("a", "b"...)
// or, for anything else, by "status N" / "error".
func tally(c *http.Client, url string, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i < n; i++ {
		resp, err := c.Get(url)
		if err != nil {
			out["error"]++
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			out["error"]++
		case resp.StatusCode != 200:
			out[fmt.Sprintf("status %d", resp.StatusCode)]++
		default:
			out[strings.TrimSpace(string(body))]++
		}
	}
	return out
}

// waitTally polls batches of n requests until cond holds for one, for at most d;
// it returns the time it took and the last batch.
func waitTally(c *http.Client, url string, n int, d time.Duration, cond func(map[string]int) bool) (time.Duration, map[string]int, bool) {
	start := time.Now()
	var last map[string]int
	ok := waitFor(d, func() bool {
		last = tally(c, url, n)
		return cond(last)
	})
	return time.Since(start), last, ok
}

func only(name string, n int) func(map[string]int) bool {
	return func(m map[string]int) bool { return m[name] == n }
}

func includes(name string) func(map[string]int) bool {
	return func(m map[string]int) bool { return m[name] > 0 }
}

// healthBound is how long a 200 ms check with fall 2 / rise 2 may take to
// flip a target: about 0.5 s unloaded; the bound leaves room for a loaded
// machine and is still far below "never".
const healthBound = 3 * time.Second

const activeCheck200ms = `    health: {active: {path: /healthz, interval: 200ms, timeout: 100ms, fall: 2, rise: 2}}`

func TestHealthActiveFallAndRise(t *testing.T) {
	t.Parallel()
	a, b := newHCBackend(t, "a"), newHCBackend(t, "b")
	gh := startGatehouse(t, poolConfig(fmt.Sprintf(`    targets: [%s, %s]
%s`, a.url(), b.url(), activeCheck200ms)))
	c := newClient(t)
	url := gh.URL("/x")

	if got := tally(c, url, 10); got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("both targets up: 10 requests went %v, want 5 to a and 5 to b", got)
	}
	waitFor(2*time.Second, func() bool { return b.healthHits.Load() >= 2 })
	if b.healthHits.Load() == 0 {
		t.Fatal("no health check reached target b in 2s")
	}

	b.healthStatus.Store(503)
	took, last, ok := waitTally(c, url, 6, healthBound, only("a", 6))
	if !ok {
		t.Fatalf("b answers 503 on /healthz: after %v traffic still goes %v, want all to a", took, last)
	}
	t.Logf("b marked down after %v", took)
	before := b.hits.Load()
	if got := tally(c, url, 20); got["a"] != 20 {
		t.Errorf("b down: 20 requests went %v, want all to a", got)
	}
	if n := b.hits.Load() - before; n != 0 {
		t.Errorf("b down: it still got %d requests", n)
	}

	b.healthStatus.Store(200)
	took, last, ok = waitTally(c, url, 6, healthBound, includes("b"))
	if !ok {
		t.Fatalf("b healthy again: after %v traffic still goes %v, want some to b", took, last)
	}
	t.Logf("b back up after %v", took)
	if got := tally(c, url, 10); got["a"] != 5 || got["b"] != 5 {
		t.Errorf("b back up: 10 requests went %v, want 5 and 5", got)
	}
}

func TestHealthActiveExpectBody(t *testing.T) {
	t.Parallel()
	a, b := newHCBackend(t, "a"), newHCBackend(t, "b")
	a.healthBody.Store(`{"status":"ALIVE"}`)
	b.healthBody.Store(`{"status":"ALIVE"}`)
	gh := startGatehouse(t, poolConfig(fmt.Sprintf(`    targets: [%s, %s]
    health: {active: {path: /healthz, interval: 200ms, timeout: 100ms, fall: 2, rise: 2, expect_body: ALIVE}}`,
		a.url(), b.url())))
	c := newClient(t)
	url := gh.URL("/x")
	if got := tally(c, url, 10); got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("both up: 10 requests went %v, want 5 and 5", got)
	}
	// Still 200, but the body lacks the expected text: a failed check.
	b.healthBody.Store(`{"status":"DRAINING"}`)
	took, last, ok := waitTally(c, url, 6, healthBound, only("a", 6))
	if !ok {
		t.Fatalf("b's /healthz body lacks expect_body: after %v traffic still goes %v, want all to a", took, last)
	}
	t.Logf("b marked down (body mismatch) after %v", took)
	b.healthBody.Store(`{"status":"ALIVE"}`)
	if took, last, ok = waitTally(c, url, 6, healthBound, includes("b")); !ok {
		t.Fatalf("b's body matches again: after %v traffic still goes %v, want some to b", took, last)
	}
}

func TestHealthChecksStopWhenPoolRemovedByReload(t *testing.T) {
	t.Parallel()
	a := newHCBackend(t, "a")
	gh := startGatehouse(t, poolConfig(fmt.Sprintf(`    targets: [%s]
%s`, a.url(), activeCheck200ms)))
	if !waitFor(3*time.Second, func() bool { return a.healthHits.Load() >= 3 }) {
		t.Fatalf("only %d health checks in 3s at a 200ms interval", a.healthHits.Load())
	}
	gh.writeConfig(respondConfig("no pools"))
	if status, body := adminReload(t, gh); status != 200 {
		t.Fatalf("reload: %d %q", status, body)
	}
	c := newClient(t)
	if got := bodyOf(t, c, gh.URL("/")); got != "no pools\n" {
		t.Fatalf("after the reload / answers %q, want the new config's", got)
	}
	// A check already under way may still land; after 1 s none may.
	time.Sleep(time.Second)
	h1 := a.healthHits.Load()
	time.Sleep(1200 * time.Millisecond) // six intervals
	if h2 := a.healthHits.Load(); h2 != h1 {
		t.Errorf("pool removed by a reload: its target still got %d health checks 1-2.2 s after the reload", h2-h1)
	}
}

func TestBackupServesWhenAllTargetsDown(t *testing.T) {
	t.Parallel()
	a, b, bk := newHCBackend(t, "a"), newHCBackend(t, "b"), newHCBackend(t, "backup")
	gh := startGatehouse(t, poolConfig(fmt.Sprintf(`    targets: [%s, %s]
    backup: [%s]
%s`, a.url(), b.url(), bk.url(), activeCheck200ms)))
	c := newClient(t)
	url := gh.URL("/x")
	if got := tally(c, url, 10); got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("all up: 10 requests went %v, want 5 to a and 5 to b (none to the backup)", got)
	}
	a.healthStatus.Store(503)
	if took, last, ok := waitTally(c, url, 6, healthBound, only("b", 6)); !ok {
		t.Fatalf("a down: after %v traffic goes %v, want all to b (the backup only when every target is down)", took, last)
	}
	b.healthStatus.Store(503)
	took, last, ok := waitTally(c, url, 6, healthBound, only("backup", 6))
	if !ok {
		t.Fatalf("every target down: after %v traffic goes %v, want all to the backup", took, last)
	}
	t.Logf("backup took over after %v", took)
	a.healthStatus.Store(200)
	if took, last, ok := waitTally(c, url, 6, healthBound, only("a", 6)); !ok {
		t.Fatalf("a up again: after %v traffic goes %v, want all to a (backup out again)", took, last)
	}
}

func TestBackupAbsentAllDownGives503(t *testing.T) {
	t.Parallel()
	a := newHCBackend(t, "a")
	gh := startGatehouse(t, poolConfig(fmt.Sprintf(`    targets: [%s]
%s`, a.url(), activeCheck200ms)))
	c := newClient(t)
	if got := tally(c, gh.URL("/x"), 3); got["a"] != 3 {
		t.Fatalf("target up: got %v, want 3 from a", got)
	}
	a.healthStatus.Store(503)
	took, last, ok := waitTally(c, gh.URL("/x"), 1, healthBound, func(m map[string]int) bool { return m["status 503"] == 1 })
	if !ok {
		t.Fatalf("only target down, no backup: after %v the answer is %v, want 503 from gatehouse", took, last)
	}
	before := a.hits.Load()
	resp, body := do(t, c, "GET", gh.URL("/x"), "", nil)
	assertErrorPage(t, resp, body, 503)
	if n := a.hits.Load() - before; n != 0 {
		t.Errorf("the target marked down still got %d requests", n)
	}
}

func TestPassiveEjectionAndReturn(t *testing.T) {
	t.Parallel()
	a, b := newHCBackend(t, "a"), newHCBackend(t, "b")
	a.status.Store(502)
	gh := startGatehouse(t, poolConfig(fmt.Sprintf(`    targets: [%s, %s]
    health: {passive: {max_fails: 2, window: 5s, eject: 1s}}`, a.url(), b.url())))
	c := newClient(t)
	url := gh.URL("/x")

	// Round robin: a gets every other request until its second failure.
	for i := 0; i < 20 && a.hits.Load() < 2; i++ {
		tally(c, url, 1)
	}
	if a.hits.Load() != 2 {
		t.Fatalf("a got %d requests, want 2 (round robin over two targets)", a.hits.Load())
	}
	ejected := time.Now()
	// Requests every 20 ms: none may reach a for about eject (1 s), then it
	// must get requests again.
	var back time.Duration
	var during map[string]int = map[string]int{}
	for time.Since(ejected) < 4*time.Second {
		m := tally(c, url, 1)
		if a.hits.Load() > 2 {
			back = time.Since(ejected)
			break
		}
		for k, v := range m {
			during[k] += v
		}
		time.Sleep(20 * time.Millisecond)
	}
	if back == 0 {
		t.Fatalf("a ejected for 1s never got traffic again within 4s (answers meanwhile: %v)", during)
	}
	t.Logf("a came back %v after its second failure; answers while ejected: %v", back, during)
	if back < 800*time.Millisecond {
		t.Errorf("a got a request %v after being ejected for 1s (max_fails 2 reached)", back)
	}
	if during["b"] == 0 || len(during) != 1 {
		t.Errorf("while a was ejected answers were %v, want only b", during)
	}
}

// adminUpstreams returns the targets of GET /api/v1/upstreams by pool name.
// It accepts the pools as a list of objects with "name" or as a mapping.
func adminUpstreams(t testing.TB, c *http.Client, admin string) map[string][]map[string]any {
	t.Helper()
	resp, body := do(t, c, "GET", "http://"+admin+"/api/v1/upstreams", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/upstreams: %d %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /api/v1/upstreams: Content-Type %q, want application/json", ct)
	}
	var top map[string]any
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatalf("GET /api/v1/upstreams: not a JSON object: %v: %q", err, body)
	}
	pools := map[string][]map[string]any{}
	add := func(name string, p any) {
		pm, _ := p.(map[string]any)
		list, _ := pm["targets"].([]any)
		for _, x := range list {
			if tm, ok := x.(map[string]any); ok {
				pools[name] = append(pools[name], tm)
			}
		}
	}
	switch ups := top["upstreams"].(type) {
	case []any:
		for _, p := range ups {
			pm, _ := p.(map[string]any)
			name, _ := pm["name"].(string)
			add(name, p)
		}
	case map[string]any:
		for name, p := range ups {
			add(name, p)
		}
	default:
		t.Fatalf("GET /api/v1/upstreams: no \"upstreams\" list or mapping in %q", body)
	}
	return pools
}

// adminTarget finds the target of pool whose address or URL is addr.
func adminTarget(pools map[string][]map[string]any, pool, addr string) map[string]any {
	for _, tm := range pools[pool] {
		a, _ := tm["address"].(string)
		u, _ := tm["url"].(string)
		if a == addr || strings.Contains(u, "//"+addr) {
			return tm
		}
	}
	return nil
}

func TestUpstreamsAdminStates(t *testing.T) {
	t.Parallel()
	a, b := newHCBackend(t, "a"), newHCBackend(t, "b")
	p, q := newHCBackend(t, "p"), newHCBackend(t, "q")
	p.status.Store(502)
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
admin:
  addr: {{ADMIN}}
shutdown_timeout: 2s
upstreams:
  web:
    targets: [%s, %s]
%s
  flaky:
    targets: [%s, %s]
    health: {passive: {max_fails: 2, window: 10s, eject: 30s}}
sites:
  - routes:
      - {match: {path_prefix: /flaky/}, upstream: flaky}
      - {match: {path_prefix: /}, upstream: web}
`, a.url(), b.url(), activeCheck200ms, p.url(), q.url()))
	c := newClient(t)

	pools := adminUpstreams(t, c, gh.Admin())
	for _, want := range []struct{ pool, addr string }{{"web", a.addr}, {"web", b.addr}, {"flaky", p.addr}, {"flaky", q.addr}} {
		tm := adminTarget(pools, want.pool, want.addr)
		if tm == nil {
			t.Fatalf("GET /api/v1/upstreams: no target %s in pool %s: %v", want.addr, want.pool, pools)
		}
		if tm["state"] != "up" {
			t.Errorf("pool %s target %s: state %v at start, want \"up\"", want.pool, want.addr, tm["state"])
		}
		if n, ok := tm["in_flight"].(float64); !ok || n != 0 {
			t.Errorf("pool %s target %s: in_flight %v (%T) when idle, want the number 0", want.pool, want.addr, tm["in_flight"], tm["in_flight"])
		}
	}

	// Active: b fails its checks -> "down", a stays "up".
	b.healthStatus.Store(503)
	var tb map[string]any
	if !waitFor(healthBound, func() bool {
		pools = adminUpstreams(t, c, gh.Admin())
		tb = adminTarget(pools, "web", b.addr)
		return tb != nil && tb["state"] == "down"
	}) {
		t.Fatalf("b fails its health checks: admin still shows %v after %v, want state \"down\"", tb, healthBound)
	}
	if ta := adminTarget(pools, "web", a.addr); ta == nil || ta["state"] != "up" {
		t.Errorf("a passes its checks: admin shows %v, want state \"up\"", ta)
	}
	if lc, ok := tb["last_check"].(map[string]any); ok {
		if lc["ok"] != false {
			t.Errorf("b down: last_check %v, want ok false", lc)
		}
	} else {
		t.Logf("no last_check object on a checked target: %v", tb)
	}

	// in_flight: one request held by a backend of web shows as 1, then 0.
	done := make(chan error, 1)
	go func() {
		resp, err := c.Get(gh.URL("/hold/block"))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	sum := func() float64 {
		pools = adminUpstreams(t, c, gh.Admin())
		var s float64
		for _, tm := range pools["web"] {
			n, _ := tm["in_flight"].(float64)
			s += n
		}
		return s
	}
	if !waitFor(5*time.Second, func() bool { return a.inFlight.Load() == 1 }) {
		t.Fatal("the held request did not reach a")
	}
	if n := sum(); n != 1 {
		t.Errorf("one request in flight on pool web: in_flight sums to %v, want 1 (%v)", n, pools["web"])
	}
	a.release()
	if err := <-done; err != nil {
		t.Fatalf("held request: %v", err)
	}
	if !waitFor(2*time.Second, func() bool { return sum() == 0 }) {
		t.Errorf("request done: in_flight sums to %v, want 0 (%v)", sum(), pools["web"])
	}

	// Passive: one 502 from p is one failure ("failures": the count toward
	// ejection in the current window), a second ejects it.
	for i := 0; i < 20 && p.hits.Load() < 1; i++ {
		tally(c, gh.URL("/flaky/x"), 1)
	}
	pools = adminUpstreams(t, c, gh.Admin())
	if tp := adminTarget(pools, "flaky", p.addr); tp == nil || tp["state"] != "up" || tp["failures"] != 1.0 {
		t.Errorf("p failed once (max_fails 2): admin shows %v, want state \"up\" and failures 1", tp)
	}
	for i := 0; i < 20 && p.hits.Load() < 2; i++ {
		tally(c, gh.URL("/flaky/x"), 1)
	}
	pools = adminUpstreams(t, c, gh.Admin())
	if tp := adminTarget(pools, "flaky", p.addr); tp == nil || tp["state"] != "ejected" {
		t.Errorf("p failed max_fails times: admin shows %v, want state \"ejected\"", tp)
	}
	if tq := adminTarget(pools, "flaky", q.addr); tq == nil || tq["state"] != "up" {
		t.Errorf("q healthy: admin shows %v, want state \"up\"", tq)
	}
}
