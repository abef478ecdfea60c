package ratelimit

import (
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/prometheus/client_golang/prometheus"
)

// redisServer runs a real redis-server on a free loopback port.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(t testing.TB, addr string) *redisServer {
	t.Helper()
	if addr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr().String()
		l.Close()
	}
	_, port, _ := net.SplitHostPort(addr)
	r := &redisServer{addr: addr, done: make(chan struct{})}
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		t.Fatal("redis-server (make deps installs it): ", err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.stop)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not accept within 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisServer) stop() {
	select {
	case <-r.done:
	default:
		r.cmd.Process.Kill()
		<-r.done
	}
}

func redisCfg(addr, mw string) string {
	return fmt.Sprintf("listeners: [{addr: \"127.0.0.1:0\"}]\ncluster: {redis: {addr: %q, dial_timeout: 200ms, timeout: 200ms, prefix: \"unit:\"}}\nsites:\n  - routes:\n      - respond: {body: hi}\n        middleware:\n          - rate_limit: %s\n", addr, mw)
}

func TestRedisStoreSharesAndFailsOver(t *testing.T) {
	rs := startRedis(t, "")
	// Two builds with their own state are two gatehouse instances.
	var fs [2]*Filter
	var m *metrics
	for i := range fs {
		st := filter.NewState(nil)
		defer st.Close()
		f, err := build(t, redisCfg(rs.addr, `{rate: 3/m, burst: 3, store: redis}`), st, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		fs[i] = f
		if i == 0 {
			m, _ = filter.Keep(st, "ratelimit.metrics", func() (*metrics, error) { return nil, fmt.Errorf("not kept") })
		}
	}
	for i := range 3 {
		if rec := serve(fs[i%2], exch("GET", "192.0.2.1", "r", "")); rec.status != 200 || rec.get("RateLimit") != fmt.Sprintf(`"default";r=%d;t=%d`, 2-i, 20*(i+1)) {
			t.Fatalf("request %d: %d RateLimit=%q", i, rec.status, rec.get("RateLimit"))
		}
	}
	for _, f := range fs {
		if rec := serve(f, exch("GET", "192.0.2.1", "r", "")); rec.status != 429 || rec.get("Retry-After") != "20" {
			t.Fatalf("over the shared limit: %d Retry-After=%q", rec.status, rec.get("Retry-After"))
		}
	}

	rs.stop()
	start := time.Now()
	for range 50 {
		if rec := serve(fs[0], exch("GET", "192.0.2.1", "r", "")); rec.status != 200 {
			t.Fatalf("without Redis, on_store_error allow: %d", rec.status)
		}
	}
	// One request waits for the failure; the others skip Redis until the next probe.
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("50 requests took %v without Redis: they should not each wait for it", d)
	}
	path := "sites[0].routes[0].middleware[0].rate_limit"
	if n := counterValue(m.storeErrors.WithLabelValues(path)); n != 50 {
		t.Fatalf("store errors counted: %v, want 50", n)
	}

	startRedis(t, rs.addr)
	deadline := time.Now().Add(5 * time.Second)
	for serve(fs[0], exch("GET", "192.0.2.1", "r", "")).get("RateLimit") == "" {
		if time.Now().After(deadline) {
			t.Fatal("the store did not recover within 5s of Redis returning")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRedisFailClosed(t *testing.T) {
	// Nothing listens there: every request fails at once.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	st := filter.NewState(nil)
	defer st.Close()
	f, err := build(t, redisCfg(addr, `{rate: 3/m, store: redis, on_store_error: deny}`), st, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	x := exch("GET", "192.0.2.1", "r", "")
	if rec := serve(f, x); rec.status != 503 || rec.get("Retry-After") != "1" || x.Log.Blocked != "rate_limit:store_error" {
		t.Fatalf("fail closed: %d Retry-After=%q blocked=%q", rec.status, rec.get("Retry-After"), x.Log.Blocked)
	}
}
