package upstream

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Unit-level distribution tests: Select is called many times with in-flight
// counts set by hand. Deterministic policies are checked exactly. For random
// ones every bound is stated with the binomial standard deviation σ of the
// count it bounds; none is closer than 7σ to the expected value (a chance of
// failure below 1e-11 per bound), and each is far from what a policy without
// the property would give.

func mkTargets(weights ...int) []*Target {
	ts := make([]*Target, len(weights))
	for i, w := range weights {
		u, _ := url.Parse(fmt.Sprintf("http://10.0.0.%d:8080", i+1))
		ts[i] = &Target{Backend: &Backend{Addr: u.Host}, URL: u, Weight: w, Index: i}
	}
	return ts
}

func mkPool(t testing.TB, balance, key string, ts []*Target) *Pool {
	t.Helper()
	pol, err := NewPolicy(balance, key, ts)
	if err != nil {
		t.Fatal(err)
	}
	return &Pool{Name: "test", Targets: ts, Policy: pol}
}

var emptyReq = &exchange.Request{}

// counts selects n times and counts the picks by target index (-1: nil).
func counts(p *Pool, req *exchange.Request, n int) map[int]int {
	c := map[int]int{}
	for range n {
		if t := p.Select(req); t != nil {
			c[t.Index]++
		} else {
			c[-1]++
		}
	}
	return c
}

func sequence(p *Pool, req *exchange.Request, n int) string {
	var b strings.Builder
	for range n {
		t := p.Select(req)
		if t == nil {
			b.WriteByte('-')
			continue
		}
		b.WriteByte(byte('a' + t.Index))
	}
	return b.String()
}

// within fails unless lo <= got <= hi.
func within(t *testing.T, what string, got, lo, hi int) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s = %d, want %d..%d", what, got, lo, hi)
	}
}

func TestNewPolicyNames(t *testing.T) {
	ts := mkTargets(1, 1)
	for _, b := range []string{"round_robin", "weighted_round_robin", "least_conn", "random", "p2c", "ewma", "hash", "first", ""} {
		if _, err := NewPolicy(b, "", ts); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
	if _, err := NewPolicy("roundrobin", "", ts); err == nil {
		t.Error("unknown balance accepted")
	}
	for _, k := range []string{"ip", "header:", "cookie:", "query:x"} {
		if _, err := NewPolicy("hash", k, ts); err == nil {
			t.Errorf("hash_key %q accepted", k)
		}
	}
	// No targets: every policy answers nil.
	for _, b := range []string{"round_robin", "weighted_round_robin", "least_conn", "random", "p2c", "ewma", "hash", "first"} {
		p := mkPool(t, b, "uri", nil)
		if got := p.Policy.Select(p, emptyReq, unavailable); got != nil {
			t.Errorf("%s with no targets picked %v", b, got)
		}
	}
}

// Every policy: nothing when all are down; never a skipped target; a retry
// (skip of the tried one) gets another target.
func TestPoliciesRespectSkip(t *testing.T) {
	req := &exchange.Request{Path: []byte("/x"), RemoteAddr: netip.MustParseAddrPort("192.0.2.1:1234")}
	for _, b := range []string{"round_robin", "weighted_round_robin", "least_conn", "random", "p2c", "ewma", "hash", "first"} {
		t.Run(b, func(t *testing.T) {
			ts := mkTargets(3, 1, 2, 1)
			p := mkPool(t, b, "client_ip", ts)
			ts[1].SetDown(true)
			ts[3].Eject(time.Now().Add(time.Hour))
			for range 500 {
				got := p.Select(req)
				if got == nil || got == ts[1] || got == ts[3] {
					t.Fatalf("picked %v with targets 1 and 3 out", got)
				}
				next := p.SelectNext(req, []*Target{got})
				if next == nil || next == got || next == ts[1] || next == ts[3] {
					t.Fatalf("retry after %d picked %v", got.Index, next)
				}
				if last := p.SelectNext(req, []*Target{got, next}); last != nil {
					t.Fatalf("third pick %d with two of two available tried", last.Index)
				}
			}
			for _, x := range ts {
				x.SetDown(true)
			}
			if got := p.Select(req); got != nil {
				t.Fatalf("picked %d with all down", got.Index)
			}
		})
	}
}

func TestRoundRobinExact(t *testing.T) {
	p := mkPool(t, "round_robin", "", mkTargets(1, 1, 1))
	if got := sequence(p, emptyReq, 9); got != "abcabcabc" {
		t.Fatalf("sequence %s", got)
	}
}

func TestFirst(t *testing.T) {
	ts := mkTargets(1, 1, 1)
	p := mkPool(t, "first", "", ts)
	if got := sequence(p, emptyReq, 5); got != "aaaaa" {
		t.Fatalf("sequence %s", got)
	}
	ts[0].SetDown(true)
	if got := sequence(p, emptyReq, 5); got != "bbbbb" {
		t.Fatalf("primary down: %s", got)
	}
	ts[1].Eject(time.Now().Add(time.Hour))
	if got := sequence(p, emptyReq, 5); got != "ccccc" {
		t.Fatalf("two down: %s", got)
	}
	ts[0].SetDown(false)
	if got := sequence(p, emptyReq, 5); got != "aaaaa" {
		t.Fatalf("primary back: %s", got)
	}
}

// nginxSmooth is the reference: nginx's loop over all peers per pick.
func nginxSmooth(weights []int, n int) string {
	cur := make([]int, len(weights))
	total := 0
	for _, w := range weights {
		total += w
	}
	var b strings.Builder
	for range n {
		best := -1
		for i, w := range weights {
			cur[i] += w
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		b.WriteByte(byte('a' + best))
	}
	return b.String()
}

func TestWeightedRoundRobinSmooth(t *testing.T) {
	p := mkPool(t, "weighted_round_robin", "", mkTargets(5, 1, 1))
	if got := sequence(p, emptyReq, 14); got != "aabacaaaabacaa" {
		t.Fatalf("5:1:1 gave %s, want aabacaa twice", got)
	}
	// Same as nginx, exactly, for assorted weights (gcd reduced or not).
	for _, ws := range [][]int{{1, 1, 1}, {10, 2, 2}, {3, 2}, {7, 5, 3, 1}, {1, 100}, {4, 4, 2, 6, 1}} {
		p := mkPool(t, "weighted_round_robin", "", mkTargets(ws...))
		sum := 0
		for _, w := range ws {
			sum += w
		}
		if got, want := sequence(p, emptyReq, 3*sum), nginxSmooth(ws, 3*sum); got != want {
			t.Errorf("weights %v:\n got %s\nwant %s", ws, got, want)
		}
	}
}

func TestWeightedRoundRobinUnavailable(t *testing.T) {
	ts := mkTargets(5, 1, 1)
	p := mkPool(t, "weighted_round_robin", "", ts)
	sequence(p, emptyReq, 3)
	ts[1].SetDown(true)
	// The pool notices when a pick lands on b (within one period of 7);
	// from then on it runs on the smooth sequence of a and c (5:1 →
	// aaacaa), exactly: 5 a and 1 c in every window of 6, never b.
	sequence(p, emptyReq, 7)
	if got := sequence(p, emptyReq, 60); !isRotation(got, "aaacaa") {
		t.Fatalf("with b down: %s, want a rotation of aaacaa repeated", got)
	}
	// b is back: noticed within wrrRecheck picks, then the full sequence.
	ts[1].SetDown(false)
	got := sequence(p, emptyReq, wrrRecheck+7)
	if !strings.Contains(got, "b") {
		t.Fatalf("b not back within %d picks: %s", wrrRecheck+7, got)
	}
	got = sequence(p, emptyReq, 70)
	for i := 0; i+7 <= len(got); i++ {
		w := got[i : i+7]
		if strings.Count(w, "a") != 5 || strings.Count(w, "b") != 1 || strings.Count(w, "c") != 1 {
			t.Fatalf("after recovery, window %q of %s", w, got)
		}
	}
	// All down, then one back.
	for _, x := range ts {
		x.SetDown(true)
	}
	if got := sequence(p, emptyReq, 3); got != "---" {
		t.Fatalf("all down: %s", got)
	}
	ts[2].SetDown(false)
	if got := sequence(p, emptyReq, 3); got != "ccc" {
		t.Fatalf("only c up: %s", got)
	}
}

// Weights whose period exceeds wrrMaxPeriod are scaled; the shares stay
// within 1% of the weights.
func TestWeightedRoundRobinLargePeriod(t *testing.T) {
	ws := []int{1000, 997, 991, 983, 977, 971, 967, 953, 947, 941, 937, 929, 919, 911, 907, 1, 2, 3}
	ts := mkTargets(ws...)
	p := mkPool(t, "weighted_round_robin", "", ts)
	tab := p.Policy.(*WeightedRoundRobin).full
	if len(tab.seq) > wrrMaxPeriod+len(ws) {
		t.Fatalf("period %d", len(tab.seq))
	}
	sum := 0
	for _, w := range ws {
		sum += w
	}
	c := counts(p, emptyReq, len(tab.seq))
	for i, w := range ws {
		want := float64(w) / float64(sum) * float64(len(tab.seq))
		if c[i] < 1 || math.Abs(float64(c[i])-want) > 0.01*float64(len(tab.seq)) {
			t.Errorf("target %d (weight %d): %d picks in a period of %d, want about %.0f", i, w, c[i], len(tab.seq), want)
		}
	}
}

func TestLeastConn(t *testing.T) {
	ts := mkTargets(1, 1, 1)
	p := mkPool(t, "least_conn", "", ts)
	// Idle and equal: ties are broken at random, so they share.
	// n=30000, p=1/3: mean 10000, σ=82; bound ±1000 (12σ).
	c := counts(p, emptyReq, 30000)
	for i := range 3 {
		within(t, fmt.Sprintf("idle target %d", i), c[i], 9000, 11000)
	}
	// a busier than b and c: never a; b and c share (mean 5000 of 10000,
	// σ=50; ±1000 is 20σ).
	ts[0].InFlight.Store(3)
	ts[1].InFlight.Store(1)
	ts[2].InFlight.Store(1)
	c = counts(p, emptyReq, 10000)
	if c[0] != 0 {
		t.Errorf("busiest target picked %d times", c[0])
	}
	within(t, "b", c[1], 4000, 6000)
	// Weights: load is in-flight per unit of weight. a (weight 2) with 2 in
	// flight is as loaded as b with 1 and c with 1: ties weighted 2:1:1
	// (mean 5000 of 10000 for a, σ=50).
	w := mkTargets(2, 1, 1)
	pw := mkPool(t, "least_conn", "", w)
	w[0].InFlight.Store(2)
	w[1].InFlight.Store(1)
	w[2].InFlight.Store(1)
	c = counts(pw, emptyReq, 10000)
	within(t, "weighted a", c[0], 4000, 6000)
	w[0].InFlight.Store(3) // 3/2 > 1/1: a loses
	c = counts(pw, emptyReq, 1000)
	if c[0] != 0 {
		t.Errorf("a at 3/2 picked %d times against 1/1", c[0])
	}
}

func TestRandom(t *testing.T) {
	// Weights 2:1:1, n=40000: a mean 20000 (σ=100), b and c 10000 (σ=87);
	// bounds ±2000 (>20σ). Unweighted would give a 13333: far outside.
	ts := mkTargets(2, 1, 1)
	p := mkPool(t, "random", "", ts)
	c := counts(p, emptyReq, 40000)
	within(t, "a (weight 2)", c[0], 18000, 22000)
	within(t, "b (weight 1)", c[1], 8000, 12000)
	within(t, "c (weight 1)", c[2], 8000, 12000)
	// a down: b and c share by weight, a never (mean 15000 of 30000, σ=87).
	ts[0].SetDown(true)
	c = counts(p, emptyReq, 30000)
	if c[0] != 0 {
		t.Errorf("down target picked %d times", c[0])
	}
	within(t, "b with a down", c[1], 14000, 16000)
	// Equal weights: uniform (mean 10000 of 30000, σ=82, ±1000).
	pe := mkPool(t, "random", "", mkTargets(1, 1, 1))
	c = counts(pe, emptyReq, 30000)
	for i := range 3 {
		within(t, fmt.Sprintf("equal target %d", i), c[i], 9000, 11000)
	}
}

func TestP2C(t *testing.T) {
	ts := mkTargets(1, 1, 1)
	p := mkPool(t, "p2c", "", ts)
	// Idle: uniform (mean 10000 of 30000, σ=82, ±1000 = 12σ).
	c := counts(p, emptyReq, 30000)
	for i := range 3 {
		within(t, fmt.Sprintf("idle target %d", i), c[i], 9000, 11000)
	}
	// Loads 0 < 1 < 2: a wins both pairs it is in (2/3), b wins {b,c}
	// (1/3), c never (deterministic: it loses every pair). n=30000: a mean
	// 20000, σ=82, ±1000. least_conn would give a 30000, random 10000.
	ts[0].InFlight.Store(0)
	ts[1].InFlight.Store(1)
	ts[2].InFlight.Store(2)
	c = counts(p, emptyReq, 30000)
	if c[2] != 0 {
		t.Errorf("most loaded picked %d times", c[2])
	}
	within(t, "least loaded", c[0], 19000, 21000)
	// Weights 4:1:1, idle: the heavier wins every pair it is in (cost
	// 1/4 < 1/1); only the pair {b,c} avoids a, drawn with probability
	// 2·(1/6)·(1/5) = 1/15. n=30000: b and c each mean 1000, σ=31, ±300
	// (9σ); unweighted p2c would give them 10000.
	pw := mkPool(t, "p2c", "", mkTargets(4, 1, 1))
	c = counts(pw, emptyReq, 30000)
	within(t, "b (weight 1 of 4:1:1)", c[1], 700, 1300)
	within(t, "c (weight 1 of 4:1:1)", c[2], 700, 1300)
}

// A closed loop: clients each holding one request; target 2 takes 20 ticks
// to answer, the others 1. By count, round robin and random give the slow
// target 1/3 of the requests however slow it is; least_conn and p2c avoid it.
func TestInFlightPoliciesAvoidSlowTarget(t *testing.T) {
	for _, b := range []string{"round_robin", "least_conn", "p2c", "ewma"} {
		t.Run(b, func(t *testing.T) {
			ts := mkTargets(1, 1, 1)
			p := mkPool(t, b, "", ts)
			// One tick is a millisecond; ewma is told every latency.
			clk := &fakeClock{ns: 1}
			obs, _ := p.Policy.(Observer)
			if e, ok := p.Policy.(*EWMA); ok {
				e.now = clk.now
			}
			latency := []int{1, 1, 20}
			const clients, ticks = 6, 3000
			type req struct {
				t           *Target
				start, done int
			}
			var out []req
			picks := make([]int, 3)
			for tick := 0; tick < ticks; tick++ {
				clk.advance(time.Millisecond)
				// Finish what is due.
				out = slices.DeleteFunc(out, func(r req) bool {
					if r.done > tick {
						return false
					}
					if obs != nil {
						obs.Observe(r.t, time.Duration(r.done-r.start)*time.Millisecond, true)
					}
					r.t.InFlight.Add(-1)
					return true
				})
				for len(out) < clients {
					x := p.Select(emptyReq)
					x.InFlight.Add(1)
					picks[x.Index]++
					out = append(out, req{x, tick, tick + latency[x.Index]})
				}
			}
			total := picks[0] + picks[1] + picks[2]
			share := float64(picks[2]) / float64(total)
			t.Logf("picks %v", picks)
			if b == "round_robin" {
				// The control: by count, blind to latency.
				if share < 0.30 {
					t.Errorf("round robin gave the slow target %.1f%%, want 1/3", 100*share)
				}
				return
			}
			// Round robin would give the slow target 33%. Here it is chosen
			// only when its load is no higher than the others': a stuck client
			// or two out of six. Expected a few percent; bound 12%.
			if share > 0.12 {
				t.Errorf("slow target got %d of %d picks (%.1f%%)", picks[2], total, 100*share)
			}
		})
	}
}

// fakeClock drives EWMA's decay in tests.
type fakeClock struct{ ns int64 }

func (c *fakeClock) now() int64              { return c.ns }
func (c *fakeClock) advance(d time.Duration) { c.ns += int64(d) }

func newTestEWMA(t *testing.T, ts []*Target) (*Pool, *EWMA, *fakeClock) {
	p := mkPool(t, "ewma", "", ts)
	e := p.Policy.(*EWMA)
	clk := &fakeClock{ns: 1}
	e.now = clk.now
	return p, e, clk
}

func near(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if d := got - want; d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestEWMAEstimate(t *testing.T) {
	ts := mkTargets(1, 1)
	_, e, clk := newTestEWMA(t, ts)
	a := ts[0]
	if got := e.Estimate(a); got != 0 {
		t.Fatalf("unmeasured estimate %v", got)
	}
	e.Observe(a, 10*time.Millisecond, true)
	near(t, "first sample", e.Estimate(a), 10*time.Millisecond)
	clk.advance(time.Millisecond)
	e.Observe(a, 100*time.Millisecond, true)
	near(t, "peak replaces at once", e.Estimate(a), 100*time.Millisecond)
	// One time constant later a 10ms sample is averaged in with weight
	// 1-1/e: 100/e + 10(1-1/e).
	clk.advance(DefaultEWMADecay)
	e.Observe(a, 10*time.Millisecond, true)
	want := time.Duration(math.Round(100e6/math.E + 10e6*(1-1/math.E)))
	near(t, "decayed average", e.Estimate(a), want)
	// Without samples, the estimate fades towards 0 (so a backend shunned
	// for being slow is tried again).
	clk.advance(DefaultEWMADecay)
	near(t, "faded", e.Estimate(a), time.Duration(float64(want)/math.E))
	// A failure counts for at least the penalty.
	b := ts[1]
	e.Observe(b, time.Millisecond, false)
	near(t, "failure", e.Estimate(b), DefaultEWMAFailurePenalty)
	// Not our target: ignored.
	other := mkTargets(1)[0]
	e.Observe(other, time.Second, true)
}

func TestEWMADistribution(t *testing.T) {
	ts := mkTargets(1, 1, 1)
	p, e, clk := newTestEWMA(t, ts)
	// Never measured and idle: tried first (cost 0 beats any measured one).
	e.Observe(ts[0], time.Millisecond, true)
	e.Observe(ts[1], time.Millisecond, true)
	c := counts(p, emptyReq, 3000)
	// c is in 2 of the 3 pairs and wins them: mean 2000 of 3000, σ=26, ±300.
	within(t, "unmeasured idle target", c[2], 1700, 2300)
	// Never measured but busy: avoided until it answers (deterministic).
	ts[2].InFlight.Store(1)
	if c := counts(p, emptyReq, 1000); c[2] != 0 {
		t.Errorf("unmeasured busy target picked %d times", c[2])
	}
	ts[2].InFlight.Store(0)
	// All measured alike: they share (mean 1000 of 3000, σ=26, ±300).
	e.Observe(ts[2], time.Millisecond, true)
	c = counts(p, emptyReq, 3000)
	for i := range 3 {
		within(t, fmt.Sprintf("equal target %d", i), c[i], 700, 1300)
	}
	// c turns slow: its first slow answer takes all its traffic away
	// (cost 100ms against 1ms: it loses every pair; deterministic).
	clk.advance(10 * time.Millisecond)
	e.Observe(ts[2], 100*time.Millisecond, true)
	if c := counts(p, emptyReq, 3000); c[2] != 0 {
		t.Errorf("slow target picked %d times", c[2])
	}
	// In-flight requests count too: a with 200 in flight costs 201ms, more
	// than slow c: now a is the one that loses every pair.
	ts[0].InFlight.Store(200)
	if c := counts(p, emptyReq, 3000); c[0] != 0 || c[2] == 0 {
		t.Errorf("with a at 200 in flight: %v", c)
	}
	ts[0].InFlight.Store(0)
	// A minute later the others, still answering in 1ms, are fresh while
	// c's estimate has faded to 100ms·e^-6 = 0.25ms: c is tried again.
	clk.advance(time.Minute)
	e.Observe(ts[0], time.Millisecond, true)
	e.Observe(ts[1], time.Millisecond, true)
	c = counts(p, emptyReq, 3000)
	within(t, "faded slow target", c[2], 1700, 2300)
}

// Estimates belong to the Backend: a new policy for the same backends (a
// reload) starts from what the old one learnt.
func TestEWMASurvivesReload(t *testing.T) {
	ts := mkTargets(1, 1)
	_, e1, _ := newTestEWMA(t, ts)
	e1.Observe(ts[0], 50*time.Millisecond, true)
	ts2 := []*Target{{Backend: ts[0].Backend, URL: ts[0].URL, Weight: 1, Index: 0}, {Backend: ts[1].Backend, URL: ts[1].URL, Weight: 1, Index: 1}}
	_, e2, _ := newTestEWMA(t, ts2)
	e2.now = e1.now
	near(t, "estimate after reload", e2.Estimate(ts2[0]), 50*time.Millisecond)
	if e2.Estimate(ts2[1]) != 0 {
		t.Error("unmeasured backend has an estimate")
	}
}

// Two targets never measured, both busy: the one with fewer in flight wins.
func TestEWMAUnmeasuredBusy(t *testing.T) {
	ts := mkTargets(1, 1)
	p, _, _ := newTestEWMA(t, ts)
	ts[0].InFlight.Store(3)
	ts[1].InFlight.Store(2)
	if c := counts(p, emptyReq, 100); c[1] != 100 {
		t.Errorf("picks %v, want all on the one with fewer in flight", c)
	}
}

// An estimate is dropped with its Backend (no leak across reloads).
func TestEWMAStateCollected(t *testing.T) {
	var keys []weak.Pointer[Backend]
	func() {
		ts := mkTargets(1, 1, 1)
		mkPool(t, "ewma", "", ts)
		for _, x := range ts {
			k := weak.Make(x.Backend)
			if _, ok := ewmaStates.Load(k); !ok {
				t.Fatal("no estimate for a backend of the policy")
			}
			keys = append(keys, k)
		}
	}()
	left := func() int {
		n := 0
		for _, k := range keys {
			if _, ok := ewmaStates.Load(k); ok {
				n++
			}
		}
		return n
	}
	for i := 0; i < 100 && left() > 0; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := left(); n > 0 {
		t.Errorf("%d estimates left after their backends were collected", n)
	}
}

func hashReqs(n int) []*exchange.Request {
	rs := make([]*exchange.Request, n)
	for i := range rs {
		rs[i] = &exchange.Request{Header: exchange.Headers{{Name: []byte("X-User"), Value: fmt.Appendf(nil, "user-%d", i)}}}
	}
	return rs
}

func assignments(p *Pool, rs []*exchange.Request, skip Skip) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		if t := p.Policy.Select(p, r, skip); t != nil {
			out[i] = t.URL.String()
		}
	}
	return out
}

// The ring is fixed by the targets' URLs and a fixed hash: these checks are
// deterministic. The bounds say how even the ring is.
func TestHashConsistent(t *testing.T) {
	const n = 10000
	rs := hashReqs(n)
	ts := mkTargets(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	p := mkPool(t, "hash", "header:X-User", ts)
	before := assignments(p, rs, unavailable)
	// Same key, same target (and the same in another instance).
	again := assignments(mkPool(t, "hash", "header:X-User", mkTargets(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)), rs, unavailable)
	if !slices.Equal(before, again) {
		t.Fatal("two rings over the same targets disagree")
	}
	// Spread: each of 10 targets gets 5%–15% of the keys (160 points per
	// target make the ring even to about ±8%).
	per := map[string]int{}
	for _, u := range before {
		per[u]++
	}
	for _, x := range ts {
		within(t, "keys on "+x.URL.Host, per[x.URL.String()], n*5/100, n*15/100)
	}
	// Remove target 3: only its keys move (about 1/10: bound 5%–15%).
	removed := ts[3].URL.String()
	rest := slices.Delete(slices.Clone(mkTargets(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)), 3, 4)
	for i, x := range rest {
		x.Index = i
	}
	after := assignments(mkPool(t, "hash", "header:X-User", rest), rs, unavailable)
	moved := 0
	for i := range rs {
		if before[i] != after[i] {
			moved++
			if before[i] != removed {
				t.Fatalf("key %d moved from %s (not removed) to %s", i, before[i], after[i])
			}
		} else if after[i] == removed {
			t.Fatalf("key %d still on the removed target", i)
		}
	}
	within(t, "keys moved by removing 1 of 10", moved, n*5/100, n*15/100)
	// Skipping target 3 (down, or tried by a retry) is the same as
	// removing it: the walk finds the next distinct target on the ring.
	skipped := assignments(p, rs, func(x *Target) bool { return x.URL.String() == removed })
	if !slices.Equal(skipped, after) {
		t.Fatal("skip differs from removal")
	}
	// Add an 11th target: keys move only to it (about 1/11: 4%–14%).
	more := mkTargets(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	added := more[10].URL.String()
	grown := assignments(mkPool(t, "hash", "header:X-User", more), rs, unavailable)
	moved = 0
	for i := range rs {
		if before[i] != grown[i] {
			moved++
			if grown[i] != added {
				t.Fatalf("key %d moved from %s to %s, not to the new target", i, before[i], grown[i])
			}
		}
	}
	within(t, "keys moved by adding an 11th", moved, n*4/100, n*14/100)
}

func TestHashWeights(t *testing.T) {
	// Weight 3 among five of weight 1 owns 3/8 of the ring (3750 of
	// 10000); the ring's unevenness is a few percent: bound ±750.
	rs := hashReqs(10000)
	ts := mkTargets(3, 1, 1, 1, 1, 1)
	c := map[int]int{}
	p := mkPool(t, "hash", "header:X-User", ts)
	for _, r := range rs {
		c[p.Select(r).Index]++
	}
	within(t, "weight 3 of 8", c[0], 3000, 4500)
}

func TestHashKeys(t *testing.T) {
	ts := mkTargets(1, 1, 1, 1, 1, 1, 1, 1)
	pick := func(p *Pool, r *exchange.Request) int { return p.Select(r).Index }
	// client_ip: the port does not matter, nor IPv4-mapped IPv6 notation.
	pip := mkPool(t, "hash", "client_ip", ts)
	spread := map[int]bool{}
	for i := range 64 {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		a := pick(pip, &exchange.Request{RemoteAddr: netip.AddrPortFrom(ip, 1000)})
		b := pick(pip, &exchange.Request{RemoteAddr: netip.AddrPortFrom(ip, 2000)})
		m := pick(pip, &exchange.Request{RemoteAddr: netip.AddrPortFrom(netip.AddrFrom16(ip.As16()), 3000)})
		if a != b || a != m {
			t.Fatalf("%v: %d %d %d", ip, a, b, m)
		}
		spread[a] = true
	}
	if len(spread) < 4 {
		t.Errorf("64 addresses on %d of 8 targets", len(spread))
	}
	// uri: path and query.
	puri := mkPool(t, "hash", "uri", ts)
	uri := func(path, q string, has bool) *exchange.Request {
		return &exchange.Request{Path: []byte(path), Query: []byte(q), HasQuery: has}
	}
	seen := map[int]bool{}
	for i := range 64 {
		seen[pick(puri, uri("/a", fmt.Sprint("id=", i), true))] = true
		if pick(puri, uri("/x/y", "", false)) != pick(puri, uri("/x/y", "", false)) {
			t.Fatal("same uri, different targets")
		}
	}
	if len(seen) < 4 {
		t.Errorf("64 queries on %d of 8 targets", len(seen))
	}
	// cookie: parsed out of one or several Cookie fields.
	pc := mkPool(t, "hash", "cookie:sid", ts)
	ck := func(vals ...string) *exchange.Request {
		r := &exchange.Request{}
		for _, v := range vals {
			r.Header = append(r.Header, exchange.Header{Name: []byte("cookie"), Value: []byte(v)})
		}
		return r
	}
	ref := pick(pc, ck("sid=abc123"))
	for _, r := range []*exchange.Request{
		ck("a=1; sid=abc123; b=2"),
		ck("xsid=zzz;sid=abc123"),
		ck("a=1", "sid=\"abc123\""),
		ck("  sid = abc123 ;"),
	} {
		if got := pick(pc, r); got != ref {
			t.Errorf("cookie %q: target %d, want %d", r.Header, got, ref)
		}
	}
	seen = map[int]bool{}
	for i := range 64 {
		seen[pick(pc, ck(fmt.Sprintf("sid=s%d", i)))] = true
	}
	if len(seen) < 4 {
		t.Errorf("64 cookies on %d of 8 targets", len(seen))
	}
	// No key (no cookie, another cookie, empty value, no header): round
	// robin, exactly.
	for _, r := range []*exchange.Request{ck("other=1"), ck("sid="), {}} {
		if got := sequence(pc, r, 16); !isRotation(got, "abcdefgh") {
			t.Errorf("no key %q: %s", r.Header, got)
		}
	}
	ph := mkPool(t, "hash", "header:X-User", ts)
	if got := sequence(ph, &exchange.Request{}, 8); !isRotation(got, "abcdefgh") {
		t.Errorf("no header: %s", got)
	}
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

// The ring must not change between versions: it decides which backend
// holds a client's session in every instance. These values pin it.
func TestHashGolden(t *testing.T) {
	if got := hashString("user-42"); got != 0xa39532c7ab051e8d {
		t.Errorf("hashString(user-42) = %#x", got)
	}
	p := mkPool(t, "hash", "header:X-User", mkTargets(1, 1, 1, 1, 1))
	var got []int
	for _, r := range hashReqs(10) {
		got = append(got, p.Select(r).Index)
	}
	if want := []int{3, 0, 1, 1, 0, 4, 0, 3, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("assignments %v, want %v", got, want)
	}
}

// Concurrent Select, Observe and health changes: no race (run with -race),
// no nil while something is up.
func TestPoliciesConcurrent(t *testing.T) {
	for _, b := range []string{"round_robin", "weighted_round_robin", "least_conn", "random", "p2c", "ewma", "hash", "first"} {
		t.Run(b, func(t *testing.T) {
			ts := mkTargets(3, 1, 2)
			p := mkPool(t, b, "header:X-User", ts)
			rs := hashReqs(16)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 2000 {
						x := p.Select(rs[(g+i)%len(rs)])
						if x == nil {
							t.Error("nil with target 0 always up")
							return
						}
						x.InFlight.Add(1)
						if o, ok := p.Policy.(Observer); ok {
							o.Observe(x, time.Duration(i%7)*time.Millisecond, i%50 != 0)
						}
						x.InFlight.Add(-1)
					}
				})
			}
			wg.Go(func() {
				for i := range 500 {
					ts[1+i%2].SetDown(i%3 == 0)
				}
			})
			wg.Wait()
		})
	}
}

func benchTargets() []*Target { return mkTargets(1, 1, 1, 1, 1, 1, 1, 1, 1, 1) }

var benchPolicies = []struct{ name, balance, key string }{
	{"round_robin", "round_robin", ""},
	{"weighted_round_robin", "weighted_round_robin", ""},
	{"least_conn", "least_conn", ""},
	{"random", "random", ""},
	{"p2c", "p2c", ""},
	{"ewma", "ewma", ""},
	{"hash_client_ip", "hash", "client_ip"},
	{"hash_uri", "hash", "uri"},
	{"hash_header", "hash", "header:X-User"},
	{"hash_cookie", "hash", "cookie:sid"},
	{"first", "first", ""},
}

func benchRequest() *exchange.Request {
	return &exchange.Request{
		Method:     []byte("GET"),
		Path:       []byte("/api/v1/items/12345"),
		Query:      []byte("page=2&sort=name"),
		HasQuery:   true,
		RemoteAddr: netip.MustParseAddrPort("203.0.113.7:51234"),
		Header: exchange.Headers{
			{Name: []byte("Host"), Value: []byte("example.com")},
			{Name: []byte("User-Agent"), Value: []byte("bench/1.0")},
			{Name: []byte("X-User"), Value: []byte("user-1234")},
			{Name: []byte("Cookie"), Value: []byte("theme=dark; sid=0123456789abcdef; lang=en")},
		},
	}
}

// Select allocates nothing on the common path.
func TestSelectAllocs(t *testing.T) {
	req := benchRequest()
	for _, bp := range benchPolicies {
		ts := benchTargets()
		p := mkPool(t, bp.balance, bp.key, ts)
		ts[3].InFlight.Store(2)
		if o, ok := p.Policy.(Observer); ok {
			for _, x := range ts {
				o.Observe(x, time.Millisecond, true)
			}
		}
		if a := testing.AllocsPerRun(1000, func() { p.Select(req) }); a != 0 {
			t.Errorf("%s: %v allocs per Select", bp.name, a)
		}
	}
}

// BenchmarkSelect/<policy>: one Select over 10 targets, from one goroutine;
// BenchmarkSelectParallel: from all Ps at once (shared counters contend).
func BenchmarkSelect(b *testing.B) {
	req := benchRequest()
	for _, bp := range benchPolicies {
		b.Run(bp.name, func(b *testing.B) {
			ts := benchTargets()
			p := mkPool(b, bp.balance, bp.key, ts)
			if o, ok := p.Policy.(Observer); ok { // the measured path
				for _, x := range ts {
					o.Observe(x, time.Millisecond, true)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				p.Select(req)
			}
		})
	}
}

func BenchmarkSelectParallel(b *testing.B) {
	req := benchRequest()
	for _, bp := range benchPolicies {
		b.Run(bp.name, func(b *testing.B) {
			ts := benchTargets()
			p := mkPool(b, bp.balance, bp.key, ts)
			if o, ok := p.Policy.(Observer); ok { // the measured path
				for _, x := range ts {
					o.Observe(x, time.Millisecond, true)
				}
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.Select(req)
				}
			})
		})
	}
}
