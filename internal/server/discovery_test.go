package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
)

// Service discovery on real sockets: a DNS server started in the test
// (github.com/miekg/dns on 127.0.0.1 UDP) whose records the test changes,
// backends on loopback addresses, and gatehouse in-process with its
// resolver pointed at that server. resolve_interval is 200ms; each change
// must show within the deadline below, without a reload.

const (
	discoveryInterval = 200 * time.Millisecond
	// followWithin is how long a change may take to be followed: two
	// intervals plus slack for a loaded (-race) machine.
	followWithin = 2*discoveryInterval + 2*time.Second
)

// testDNS answers A and SRV queries from records the test sets; AAAA and
// unknown names get an empty answer / NXDOMAIN; fail makes it SERVFAIL.
type testDNS struct {
	mu   sync.Mutex
	a    map[string][]string // fqdn → IPv4 addresses
	srv  map[string][]*dns.SRV
	fail bool
	addr string
}

func startDNS(t *testing.T) *testDNS {
	t.Helper()
	d := &testDNS{a: map[string][]string{}, srv: map[string][]*dns.SRV{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = pc.LocalAddr().String()
	s := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve)}
	go s.ActivateAndServe()
	t.Cleanup(func() { s.Shutdown() })
	return d
}

func (d *testDNS) serve(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail {
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	for _, qq := range q.Question {
		name := strings.ToLower(qq.Name)
		_, hasA := d.a[name]
		_, hasSRV := d.srv[name]
		if !hasA && !hasSRV {
			m.Rcode = dns.RcodeNameError
			continue
		}
		switch qq.Qtype {
		case dns.TypeA:
			for _, ip := range d.a[name] {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0}, A: net.ParseIP(ip)})
			}
		case dns.TypeSRV:
			for _, r := range d.srv[name] {
				rr := *r
				rr.Hdr = dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 0}
				m.Answer = append(m.Answer, &rr)
			}
		}
	}
	w.WriteMsg(m)
}

func (d *testDNS) setA(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.a[dns.Fqdn(name)] = ips
}

func (d *testDNS) setSRV(name string, rs ...*dns.SRV) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srv[dns.Fqdn(name)] = rs
}

func (d *testDNS) setFail(fail bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = fail
}

// resolver is a Go resolver that asks only d.
func (d *testDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", d.addr)
	}}
}

// nameServer serves its name on ln.
func nameServer(t *testing.T, ln net.Listener, name string) {
	t.Helper()
	nameServerCounting(t, ln, name, nil)
}

// nameServerCounting serves its name on ln and counts health checks
// (GET /healthz) in checks.
func nameServerCounting(t *testing.T, ln net.Listener, name string, checks *atomic.Int64) {
	t.Helper()
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && checks != nil {
			checks.Add(1)
		}
		io.WriteString(w, name)
	})}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
}

// samePortListeners listens on 127.0.0.2, .3 and .4 on one port.
func samePortListeners(t *testing.T) ([]net.Listener, int) {
	t.Helper()
	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	for try := 0; try < 50; try++ {
		first, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Skipf("no loopback alias %s: %v", ips[0], err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for _, ip := range ips[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) == len(ips) {
			return lns, port
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	t.Fatal("no port free on all loopback aliases")
	return nil, 0
}

func discoveryConfig(t *testing.T, pool string) *config.Config {
	t.Helper()
	interval := ""
	if strings.Contains(pool, "dns+") || strings.Contains(pool, "srv+") {
		interval = "resolve_interval: 200ms,"
	}
	text := fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
access_log: {enabled: false}
upstreams:
  app: {%s, %s retries: {attempts: 0}}
sites:
  - routes:
      - match: {path_prefix: /}
        upstream: app
`, pool, interval)
	cfg, err := config.Parse("discovery_test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startDiscovery(t *testing.T, d *testDNS, pool string) (*Server, string) {
	t.Helper()
	srv, err := New(discoveryConfig(t, pool), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.Resolver = d.resolver()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	for _, a := range srv.Addrs() {
		return srv, "http://" + a.String() + "/"
	}
	t.Fatal("no listener")
	return nil, ""
}

// tally sends n requests and counts the answers by body (status other than
// 200 counts as "503" etc.).
func tally(t *testing.T, c *http.Client, u string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			got[strconv.Itoa(resp.StatusCode)]++
			continue
		}
		got[string(b)]++
	}
	return got
}

// waitFor polls until a tally of 30 requests satisfies ok.
func waitFor(t *testing.T, c *http.Client, u, what string, ok func(map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(followWithin)
	var last map[string]int
	for time.Now().Before(deadline) {
		if last = tally(t, c, u, 30); ok(last) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v; last 30 requests: %v", what, followWithin, last)
}

func onlyFrom(names ...string) func(map[string]int) bool {
	return func(m map[string]int) bool {
		for k := range m {
			if !contains(names, k) {
				return false
			}
		}
		for _, n := range names {
			if m[n] == 0 {
				return false
			}
		}
		return true
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func TestDiscoveryDNS(t *testing.T) {
	d := startDNS(t)
	lns, port := samePortListeners(t)
	for i, ln := range lns {
		nameServer(t, ln, fmt.Sprintf("b%d", i))
	}
	d.setA("app.test", "127.0.0.2", "127.0.0.3")
	srv, u := startDiscovery(t, d, fmt.Sprintf("targets: [dns+http://app.test:%d]", port))
	c := &http.Client{Timeout: 5 * time.Second}
	reloads := srv.reloads.Load()

	// Resolved at start: round robin over both addresses, exactly.
	if got := tally(t, c, u, 40); got["b0"] != 20 || got["b1"] != 20 {
		t.Fatalf("at start: want b0 and b1 20 each, got %v", got)
	}

	// A third address appears, then the first goes away.
	d.setA("app.test", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	waitFor(t, c, u, "new address gets traffic", onlyFrom("b0", "b1", "b2"))
	d.setA("app.test", "127.0.0.3", "127.0.0.4")
	waitFor(t, c, u, "removed address gets none", onlyFrom("b1", "b2"))
	if got := tally(t, c, u, 40); got["b1"] != 20 || got["b2"] != 20 {
		t.Fatalf("after the change: want b1 and b2 20 each, got %v", got)
	}

	// DNS fails: the last addresses stay for many intervals.
	d.setFail(true)
	time.Sleep(3 * discoveryInterval)
	for range 3 {
		if got := tally(t, c, u, 40); got["b1"] != 20 || got["b2"] != 20 {
			t.Fatalf("while DNS fails: want the last set (b1, b2: 20 each), got %v", got)
		}
		time.Sleep(discoveryInterval)
	}
	// And it answers again.
	d.setA("app.test", "127.0.0.2")
	d.setFail(false)
	waitFor(t, c, u, "after DNS recovers", onlyFrom("b0"))

	if srv.reloads.Load() != reloads {
		t.Fatal("a reload happened")
	}
}

func TestDiscoverySRV(t *testing.T) {
	d := startDNS(t)
	var ports []uint16
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		nameServer(t, ln, fmt.Sprintf("s%d", i))
		ports = append(ports, uint16(ln.Addr().(*net.TCPAddr).Port))
	}
	srvRec := func(i int) *dns.SRV {
		return &dns.SRV{Priority: 10, Weight: 1, Port: ports[i], Target: "node.test."}
	}
	d.setA("node.test", "127.0.0.1")
	d.setSRV("_http._tcp.app.test", srvRec(0), srvRec(1))
	_, u := startDiscovery(t, d, "targets: [srv+http://_http._tcp.app.test]")
	c := &http.Client{Timeout: 5 * time.Second}

	if got := tally(t, c, u, 40); got["s0"] != 20 || got["s1"] != 20 {
		t.Fatalf("at start: want s0 and s1 20 each, got %v", got)
	}
	d.setSRV("_http._tcp.app.test", srvRec(1), srvRec(2))
	waitFor(t, c, u, "SRV change followed", onlyFrom("s1", "s2"))
}

// A name that does not resolve at load leaves the pool empty (503) and is
// tried again until it does.
func TestDiscoveryFirstLookupFails(t *testing.T) {
	d := startDNS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nameServer(t, ln, "late")
	port := ln.Addr().(*net.TCPAddr).Port
	d.setFail(true)
	_, u := startDiscovery(t, d, fmt.Sprintf("targets: [dns+http://late.test:%d], balance: hash, hash_key: uri", port))
	c := &http.Client{Timeout: 5 * time.Second}
	if got := tally(t, c, u, 5); got["503"] != 5 {
		t.Fatalf("unresolved pool: want 5 × 503, got %v", got)
	}
	d.setA("late.test", "127.0.0.1")
	d.setFail(false)
	waitFor(t, c, u, "resolved later", onlyFrom("late"))
}

// A reload keeps the discovered backends (same Backend, so connections,
// in-flight counts and health survive) and stops the old resolver; a reload
// while DNS fails keeps the last addresses; a reload that drops the dns+
// target stops following the name.
func TestDiscoveryReload(t *testing.T) {
	d := startDNS(t)
	lns, port := samePortListeners(t)
	for i, ln := range lns {
		nameServer(t, ln, fmt.Sprintf("b%d", i))
	}
	d.setA("app.test", "127.0.0.2")
	pool := fmt.Sprintf("targets: [dns+http://app.test:%d]", port)
	srv, u := startDiscovery(t, d, pool)
	c := &http.Client{Timeout: 5 * time.Second}
	waitFor(t, c, u, "at start", onlyFrom("b0"))
	before, _ := srv.Snapshot().Pools["app"].Current()

	if err := srv.Apply(discoveryConfig(t, pool)); err != nil {
		t.Fatal(err)
	}
	after, _ := srv.Snapshot().Pools["app"].Current()
	if len(after) != 1 || len(before) != 1 || after[0].Backend != before[0].Backend {
		t.Fatalf("reload did not keep the discovered backend: before %v, after %v", before, after)
	}
	if len(srv.resolvers) != 1 {
		t.Fatalf("want one resolver after the reload, got %d", len(srv.resolvers))
	}
	d.setA("app.test", "127.0.0.3")
	waitFor(t, c, u, "after the reload", onlyFrom("b1"))

	// A reload while DNS fails keeps what the name last resolved to.
	d.setFail(true)
	if err := srv.Apply(discoveryConfig(t, pool)); err != nil {
		t.Fatal(err)
	}
	if got := tally(t, c, u, 10); got["b1"] != 10 {
		t.Fatalf("reload while DNS fails: want b1 only, got %v", got)
	}
	d.setFail(false)

	// Now a plain target: the name is no longer followed.
	if err := srv.Apply(discoveryConfig(t, fmt.Sprintf("targets: [http://127.0.0.4:%d]", port))); err != nil {
		t.Fatal(err)
	}
	if len(srv.resolvers) != 0 {
		t.Fatalf("want no resolver, got %d", len(srv.resolvers))
	}
	d.setA("app.test", "127.0.0.2")
	time.Sleep(3 * discoveryInterval)
	if got := tally(t, c, u, 10); got["b2"] != 10 {
		t.Fatalf("after dropping the dns+ target: want b2 only, got %v", got)
	}
}

// Active health checks follow the addresses: a new address is checked, a
// removed one no longer is.
func TestDiscoveryHealthChecks(t *testing.T) {
	d := startDNS(t)
	lns, port := samePortListeners(t)
	checks := make([]atomic.Int64, len(lns))
	for i, ln := range lns {
		nameServerCounting(t, ln, fmt.Sprintf("b%d", i), &checks[i])
	}
	d.setA("app.test", "127.0.0.2", "127.0.0.3")
	startDiscovery(t, d, fmt.Sprintf("targets: [dns+http://app.test:%d], health: {active: {path: /healthz, interval: 100ms, timeout: 80ms}}", port))
	waitCheck := func(i int, what string) {
		t.Helper()
		from := checks[i].Load()
		deadline := time.Now().Add(followWithin)
		for checks[i].Load() < from+2 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: b%d not checked", what, i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCheck(0, "at start")
	waitCheck(1, "at start")
	if n := checks[2].Load(); n != 0 {
		t.Fatalf("b2 is not in DNS yet but was checked %d times", n)
	}
	d.setA("app.test", "127.0.0.3", "127.0.0.4")
	waitCheck(2, "new address")
	// The removal was seen when b2 was added (same lookup); give a stopped
	// checker's last probe time to land, then b0 must get none.
	time.Sleep(300 * time.Millisecond)
	n := checks[0].Load()
	time.Sleep(500 * time.Millisecond)
	if m := checks[0].Load(); m != n {
		t.Fatalf("removed address still checked: %d checks in 500ms", m-n)
	}
	waitCheck(1, "address that stayed")
}
