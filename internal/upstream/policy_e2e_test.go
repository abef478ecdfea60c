package upstream_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/server"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// Distribution on real sockets: three httptest backends that answer with
// their name ("b0", "b1", "b2") after an adjustable delay, and gatehouse
// started in-process in front of them with the policy under test. Each
// bound is explained where it is checked: deterministic policies are
// checked exactly; random ones with bounds at least 5σ from the mean; the
// latency-aware ones against what a latency-blind policy would give.

type backends struct {
	srv   []*httptest.Server
	delay []atomic.Int64 // nanoseconds
	hits  []atomic.Int64
}

func startBackends(t *testing.T, n int) *backends {
	t.Helper()
	b := &backends{delay: make([]atomic.Int64, n), hits: make([]atomic.Int64, n)}
	for i := range n {
		name := fmt.Sprintf("b%d", i)
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d := b.delay[i].Load(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			b.hits[i].Add(1)
			io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		b.srv = append(b.srv, s)
	}
	return b
}

// startGatehouse runs gatehouse with one upstream "app" of the backends
// (weights[i] when given) and extra upstream settings (YAML flow fields).
func startGatehouse(t *testing.T, b *backends, weights []int, extra string) (*server.Server, string) {
	t.Helper()
	var targets []string
	for i, s := range b.srv {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		targets = append(targets, fmt.Sprintf("{url: %q, weight: %d}", s.URL, w))
	}
	text := fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
access_log: {enabled: false}
upstreams:
  app: {targets: [%s], %s}
sites:
  - routes:
      - match: {path_prefix: /}
        upstream: app
`, strings.Join(targets, ", "), extra)
	cfg, err := config.Parse("policy_test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	for _, a := range srv.Addrs() {
		return srv, "http://" + a.String()
	}
	t.Fatal("no listener")
	return nil, ""
}

func newClient(local string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 32,
			DisableCompression:  true,
		},
	}
}

// fetch sends one request and returns the name of the backend that served it.
func fetch(c *http.Client, u string, hdr map[string]string) (string, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return "", err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || len(body) != 2 {
		return "", fmt.Errorf("status %d, body %q, err %v", resp.StatusCode, body, err)
	}
	return string(body), nil
}

func get(t *testing.T, c *http.Client, u string, hdr map[string]string) string {
	t.Helper()
	name, err := fetch(c, u, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// sequential sends n requests one after the other; it returns the serving
// backends in order ("b0b1b2...") shortened to one letter each ("abc...").
func sequential(t *testing.T, c *http.Client, u string, n int) string {
	var sb strings.Builder
	for range n {
		sb.WriteByte('a' + get(t, c, u, nil)[1] - '0')
	}
	return sb.String()
}

func isRotation(s, cycle string) bool {
	if len(s)%len(cycle) != 0 {
		return false
	}
	for i := range cycle {
		if s == strings.Repeat(cycle[i:]+cycle[:i], len(s)/len(cycle)) {
			return true
		}
	}
	return false
}

func TestRealRoundRobin(t *testing.T) {
	b := startBackends(t, 3)
	_, u := startGatehouse(t, b, nil, "balance: round_robin")
	// Exact: each in turn.
	if got := sequential(t, newClient(""), u, 30); !isRotation(got, "abc") {
		t.Fatalf("served by %s", got)
	}
}

func TestRealWeightedRoundRobin(t *testing.T) {
	b := startBackends(t, 3)
	srv, u := startGatehouse(t, b, []int{5, 1, 1}, "balance: weighted_round_robin")
	c := newClient("")
	// Exact: nginx's smooth sequence for 5:1:1, not aaaaabc.
	if got := sequential(t, c, u, 21); !isRotation(got, "aabacaa") {
		t.Fatalf("served by %s, want aabacaa repeated", got)
	}
	// b down: within one period the pool runs on a and c smoothly (5:1).
	srv.Snapshot().Pools["app"].Targets[1].SetDown(true)
	sequential(t, c, u, 7)
	if got := sequential(t, c, u, 24); !isRotation(got, "aaacaa") {
		t.Fatalf("with b down: %s, want aaacaa repeated", got)
	}
}

func TestRealFirst(t *testing.T) {
	b := startBackends(t, 3)
	srv, u := startGatehouse(t, b, nil, "balance: first")
	c := newClient("")
	if got := sequential(t, c, u, 10); got != strings.Repeat("a", 10) {
		t.Fatalf("served by %s", got)
	}
	ts := srv.Snapshot().Pools["app"].Targets
	ts[0].SetDown(true)
	if got := sequential(t, c, u, 10); got != strings.Repeat("b", 10) {
		t.Fatalf("primary down: served by %s", got)
	}
	ts[0].SetDown(false)
	if got := sequential(t, c, u, 10); got != strings.Repeat("a", 10) {
		t.Fatalf("primary back: served by %s", got)
	}
}

func TestRealRandom(t *testing.T) {
	b := startBackends(t, 3)
	_, u := startGatehouse(t, b, []int{2, 1, 1}, "balance: random")
	const n = 1200
	got := sequential(t, newClient(""), u, n)
	// Weights 2:1:1 over 1200: a mean 600 (σ=17.3), b and c 300 (σ=15);
	// bounds ±100 and ±90 (about 6σ). Ignoring weights would give a 400.
	check := func(name byte, lo, hi int) {
		if c := strings.Count(got, string(name)); c < lo || c > hi {
			t.Errorf("%c served %d of %d, want %d..%d", name, c, n, lo, hi)
		}
	}
	check('a', 500, 700)
	check('b', 210, 390)
	check('c', 210, 390)
}

// concurrent runs workers clients, each sending requests one after the
// other, for d and until they have sent at least min requests (at most 15s),
// and counts the serving backends. All clients run for the whole time, so
// the concurrency stays the same (a fixed number of requests per client
// would end with a few clients alone, where every policy that breaks ties at
// random sends a third of them to the slow backend).
func concurrent(t *testing.T, u string, workers int, d time.Duration, min int64) [3]int {
	var mu sync.Mutex
	var counts [3]int
	var wg sync.WaitGroup
	var total atomic.Int64
	c := newClient("")
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				if el := time.Since(start); el > 15*time.Second || el >= d && total.Load() >= min {
					return
				}
				name, err := fetch(c, u, nil)
				if err != nil {
					t.Error(err)
					return
				}
				total.Add(1)
				mu.Lock()
				counts[name[1]-'0']++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts
}

// least_conn and p2c with one slow backend (200ms) and 8 concurrent clients
// for 1.5s and at least 300 requests: the slow one holds requests in flight,
// so it is picked only while its count is no higher than the fast ones'. By
// count, round robin and random would give it 1/3 however slow it is (σ at
// most 2.7% for 300 requests, so under 15% is a 6.7σ miss for them).
// Expected here a few percent; the bound, 15%, is reached only if the fast
// backends held about as many requests in flight as one that takes 200ms,
// i.e. were nearly as slow.
func TestRealInFlightAware(t *testing.T) {
	for _, balance := range []string{"least_conn", "p2c"} {
		t.Run(balance, func(t *testing.T) {
			b := startBackends(t, 3)
			b.delay[2].Store(int64(200 * time.Millisecond))
			_, u := startGatehouse(t, b, nil, "balance: "+balance)
			counts := concurrent(t, u, 8, 1500*time.Millisecond, 300)
			total := counts[0] + counts[1] + counts[2]
			t.Logf("%s: served %v", balance, counts)
			if total < 300 {
				t.Fatalf("only %d requests in 15s: too few to judge", total)
			}
			if counts[2]*100 > total*15 {
				t.Errorf("slow backend served %d of %d", counts[2], total)
			}
			for i := range 2 {
				if counts[i]*100 < total*35 {
					t.Errorf("fast backend %d served %d of %d, want at least 35%%", i, counts[i], total)
				}
			}
		})
	}
}

func TestRealHash(t *testing.T) {
	b := startBackends(t, 3)
	t.Run("header", func(t *testing.T) {
		srv, u := startGatehouse(t, b, nil, "balance: hash, hash_key: \"header:X-User\"")
		hashStickiness(t, srv, u, func(i int) (string, map[string]string) {
			return "", map[string]string{"X-User": fmt.Sprintf("user-%d", i)}
		})
	})
	t.Run("cookie", func(t *testing.T) {
		srv, u := startGatehouse(t, b, nil, "balance: hash, hash_key: \"cookie:sid\"")
		hashStickiness(t, srv, u, func(i int) (string, map[string]string) {
			return "", map[string]string{"Cookie": fmt.Sprintf("theme=dark; sid=s%d; x=1", i)}
		})
	})
	t.Run("uri", func(t *testing.T) {
		srv, u := startGatehouse(t, b, nil, "balance: hash, hash_key: uri")
		hashStickiness(t, srv, u, func(i int) (string, map[string]string) {
			return fmt.Sprintf("/item?id=%d", i), nil
		})
	})
	t.Run("client_ip", func(t *testing.T) {
		// Clients come from 127.0.0.2, .3, ... (all loopback on Linux).
		srv, u := startGatehouse(t, b, nil, "balance: hash, hash_key: client_ip")
		hashStickiness(t, srv, u, func(i int) (string, map[string]string) {
			return "", map[string]string{"local": fmt.Sprintf("127.0.0.%d", 2+i)}
		})
	})
}

// hashStickiness sends 4 requests for each of 40 keys: all of a key's go to
// one backend; the keys use at least 2 of the 3 backends (all 40 keys on
// one backend has probability about 3·(1/3)^40). Then the backend of key 0
// goes down: its keys move, and no other key does.
func hashStickiness(t *testing.T, srv *server.Server, u string, key func(i int) (path string, hdr map[string]string)) {
	const keys = 40
	clients := map[string]*http.Client{}
	send := func(i int) string {
		path, hdr := key(i)
		local := hdr["local"]
		c := clients[local]
		if c == nil {
			c = newClient(local)
			clients[local] = c
		}
		h := map[string]string{}
		for k, v := range hdr {
			if k != "local" {
				h[k] = v
			}
		}
		return get(t, c, u+path, h)
	}
	owner := make([]string, keys)
	used := map[string]bool{}
	for i := range keys {
		for r := range 4 {
			got := send(i)
			if r == 0 {
				owner[i] = got
			} else if got != owner[i] {
				t.Fatalf("key %d served by %s then %s", i, owner[i], got)
			}
		}
		used[owner[i]] = true
	}
	if len(used) < 2 {
		t.Fatalf("40 keys all on %v", used)
	}
	down := owner[0]
	ts := srv.Snapshot().Pools["app"].Targets
	ts[down[1]-'0'].SetDown(true)
	defer ts[down[1]-'0'].SetDown(false)
	for i := range keys {
		got := send(i)
		switch {
		case got == down:
			t.Fatalf("key %d still on %s, which is down", i, down)
		case owner[i] != down && got != owner[i]:
			t.Fatalf("key %d moved from %s to %s though %s is up", i, owner[i], got, owner[i])
		}
	}
}

// EWMA learns from the exchanges, which the proxy reports through Observer.
// This test drives real sockets with a minimal forwarder of its own that
// does what the proxy does: Select, count in flight, exchange over the
// target's h1.Transport, Observe when the response head is read.
func forward(ctx context.Context, p *upstream.Pool, obs upstream.Observer, req *exchange.Request) (int, error) {
	t := p.Select(req)
	if t == nil {
		return -1, fmt.Errorf("no target")
	}
	t.InFlight.Add(1)
	defer t.InFlight.Add(-1)
	start := time.Now()
	cc, err := t.Transport.Get(ctx)
	if err != nil {
		obs.Observe(t, time.Since(start), false)
		return t.Index, err
	}
	cc.WriteRequestLine([]byte("GET"), nil, []byte("/"), nil, false)
	cc.WriteField([]byte("Host"), []byte("backend.test"))
	cc.EndHead(0)
	if err := cc.Writer().Flush(); err != nil {
		cc.Close()
		obs.Observe(t, time.Since(start), false)
		return t.Index, err
	}
	_, err = cc.ReadResponse(false)
	obs.Observe(t, time.Since(start), err == nil)
	if err != nil {
		cc.Close()
		return t.Index, err
	}
	if _, err := io.Copy(io.Discard, cc.Body()); err != nil {
		cc.Close()
		return t.Index, err
	}
	cc.Release()
	return t.Index, nil
}

// A backend that turns slow loses its traffic within seconds. Three
// backends answer in 10ms; 8 clients loop for 1.5s; then backend 2 answers
// in 500ms, and the clients loop 2.5s more (longer if needed to judge at
// least 300 requests after the grace; at most 15s).
//
//   - Before: backend 2 serves at least 5% of the requests (expected 1/3;
//     peak-EWMA starves a backend only if its estimate is several times the
//     others' for the whole phase).
//   - From 0.5s after the change to the end: at most 15%. On a quiet
//     machine it gets next to nothing: its estimate is 500ms against
//     10ms × (in flight + 1) ≤ 90ms for the others. A loaded machine adds
//     scheduling delays to every sample, and peak-EWMA keeps the peaks: with
//     the fast backends' estimates pushed to several hundred ms (seen at
//     load 13 on 2 cores under -race), the slow one still got at most 8.5%.
//     Round robin or random would give it 1/3 by count (σ at most 2.7% for
//     300 requests, so 15% is a 6.7σ miss for them).
func TestRealEWMA(t *testing.T) {
	b := startBackends(t, 3)
	var ts []*upstream.Target
	for i, s := range b.srv {
		b.delay[i].Store(int64(10 * time.Millisecond))
		u, _ := url.Parse(s.URL)
		tr := &h1.Transport{Addr: u.Host, DialTimeout: time.Second, MaxIdle: 8, MaxHeader: 65536}
		t.Cleanup(func() { tr.CloseIdle(true) })
		ts = append(ts, &upstream.Target{
			Backend: &upstream.Backend{Addr: u.Host, Transport: tr},
			URL:     u, Host: []byte(u.Host), Weight: 1, Index: i,
		})
	}
	pol, err := upstream.NewPolicy("ewma", "", ts)
	if err != nil {
		t.Fatal(err)
	}
	obs := pol.(upstream.Observer)
	pool := &upstream.Pool{Name: "app", Targets: ts, Policy: pol}

	const (
		before = 1500 * time.Millisecond
		grace  = 500 * time.Millisecond
		after  = 2500 * time.Millisecond
	)
	start := time.Now()
	var switched atomic.Bool
	var judged atomic.Int64 // picks in the window after the grace
	type pick struct {
		at     time.Duration // since start
		target int
	}
	picks := make([][]pick, 8)
	var wg sync.WaitGroup
	for w := range picks {
		wg.Go(func() {
			req := &exchange.Request{Method: []byte("GET"), Path: []byte("/")}
			for {
				at := time.Since(start)
				if at >= before+after && judged.Load() >= 300 || at >= before+15*time.Second {
					return
				}
				if at >= before && switched.CompareAndSwap(false, true) {
					b.delay[2].Store(int64(500 * time.Millisecond))
				}
				i, err := forward(t.Context(), pool, obs, req)
				if err != nil {
					t.Error(err)
					return
				}
				picks[w] = append(picks[w], pick{at, i})
				if at >= before+grace {
					judged.Add(1)
				}
			}
		})
	}
	wg.Wait()
	var pre, post [3]int
	for _, ps := range picks {
		for _, p := range ps {
			switch {
			case p.at < before:
				pre[p.target]++
			case p.at >= before+grace:
				post[p.target]++
			}
		}
	}
	sum := func(c [3]int) int { return c[0] + c[1] + c[2] }
	t.Logf("before %v, after %v; estimates %v %v %v", pre, post,
		pol.(*upstream.EWMA).Estimate(ts[0]), pol.(*upstream.EWMA).Estimate(ts[1]), pol.(*upstream.EWMA).Estimate(ts[2]))
	if sum(pre) < 100 || sum(post) < 300 {
		t.Fatalf("too few requests to judge: before %v, after %v", pre, post)
	}
	if pre[2]*100 < sum(pre)*5 {
		t.Errorf("before it turned slow, backend 2 served %d of %d", pre[2], sum(pre))
	}
	if post[2]*100 > sum(post)*15 {
		t.Errorf("after it turned slow, backend 2 served %d of %d", post[2], sum(post))
	}
}
