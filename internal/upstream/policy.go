package upstream

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Balancing policies.
//
// Every policy picks among the targets that skip does not exclude and returns
// nil when none is left. None takes a lock: state is atomics (counters,
// in-flight counts, latency estimates) and tables computed once by NewPolicy.
// A policy is built for one list of targets; when a pool's targets change
// (reload, service discovery), build a new policy with NewPolicy.
//
//	round_robin           RoundRobin: each target in turn.
//	weighted_round_robin  WeightedRoundRobin: nginx's smooth weighted round robin.
//	least_conn            LeastConn: fewest in-flight requests per unit of weight.
//	random                Random: at random, in proportion to weight.
//	p2c                   P2C: the less loaded of two random targets.
//	ewma                  EWMA: p2c on peak-EWMA latency × in-flight (an Observer).
//	hash                  Hash: consistent hashing of a request key.
//	first                 First: the first available target, in configured order.

// Observer is implemented by policies that learn from finished exchanges
// (EWMA). The proxy calls Observe once per attempt on a target, when the
// response head has been read (ok) or the attempt has failed (!ok: connect
// error, reset, timeout), with the time since the attempt started:
//
//	if o, ok := pool.Policy.(upstream.Observer); ok {
//		o.Observe(t, time.Since(start), err == nil)
//	}
//
// Observe is safe for concurrent use and does not allocate.
type Observer interface {
	Observe(t *Target, rtt time.Duration, ok bool)
}

// NewPolicy builds the policy named balance (see the list above) for
// targets; hashKey (client_ip, uri, header:NAME, cookie:NAME) is used by
// hash only. The names are those config validation accepts.
func NewPolicy(balance, hashKey string, targets []*Target) (Policy, error) {
	ts := slices.Clone(targets)
	switch balance {
	case "", "round_robin":
		return &RoundRobin{}, nil
	case "weighted_round_robin":
		return newWeightedRoundRobin(ts), nil
	case "least_conn":
		return &LeastConn{}, nil
	case "random":
		return &Random{s: newSampler(ts)}, nil
	case "p2c":
		return &P2C{s: newSampler(ts)}, nil
	case "ewma":
		return newEWMA(ts), nil
	case "hash":
		return newHash(hashKey, ts)
	case "first":
		return First{}, nil
	}
	return nil, fmt.Errorf("unknown balance %q: use %s", balance,
		strings.Join([]string{"round_robin", "weighted_round_robin", "least_conn", "random", "p2c", "ewma", "hash", "first"}, ", "))
}

// weightOf is a target's weight, at least 1.
func weightOf(t *Target) uint64 {
	if t.Weight < 1 {
		return 1
	}
	return uint64(t.Weight)
}

// First sends everything to the first available target in configured order:
// the others are standbys.
type First struct{}

func (First) Select(p *Pool, _ *exchange.Request, skip Skip) *Target {
	ts, _ := p.Current()
	for _, t := range ts {
		if !skip(t) {
			return t
		}
	}
	return nil
}

// LeastConn picks the target with the fewest in-flight requests per unit of
// weight (inflight/weight, compared without division). Ties are broken at
// random in proportion to weight, so that idle targets share the traffic.
type LeastConn struct{}

func (LeastConn) Select(p *Pool, _ *exchange.Request, skip Skip) *Target {
	var best *Target
	var bestLoad, bestW, tieW uint64
	var rng uint64
	ts, _ := p.Current()
	for _, t := range ts {
		if skip(t) {
			continue
		}
		load, w := uint64(max(t.InFlight.Load(), 0)), weightOf(t)
		if best == nil {
			best, bestLoad, bestW, tieW = t, load, w, w
			continue
		}
		lhs, rhs := load*bestW, bestLoad*w
		switch {
		case lhs < rhs:
			best, bestLoad, bestW, tieW = t, load, w, w
		case lhs == rhs:
			// Weighted reservoir sampling: each tied target ends up
			// chosen with probability weight/sum of tied weights.
			if rng == 0 {
				rng = rand.Uint64() | 1
			}
			tieW += w
			if splitmix(&rng)>>32*tieW>>32 < w { // uniform in [0, tieW)
				best, bestLoad, bestW = t, load, w
			}
		}
	}
	return best
}

// splitmix advances a cheap per-call generator (SplitMix64); it only breaks
// ties, so statistical quality beyond that is not needed.
func splitmix(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// sampler draws targets at random in proportion to their weights. It is
// immutable once built.
type sampler struct {
	ts    []*Target
	cum   []uint64 // cum[i] = sum of the weights of ts[:i+1]
	total uint64
	equal bool // all weights equal: draw uniformly
}

func newSampler(ts []*Target) sampler {
	s := sampler{ts: ts, cum: make([]uint64, len(ts)), equal: true}
	for i, t := range ts {
		s.total += weightOf(t)
		s.cum[i] = s.total
		if weightOf(t) != weightOf(ts[0]) {
			s.equal = false
		}
	}
	return s
}

// draw returns the index of a random target (len(ts) > 0).
func (s *sampler) draw() int {
	if s.equal {
		return int(rand.Uint64N(uint64(len(s.ts))))
	}
	r := rand.Uint64N(s.total)
	i, _ := slices.BinarySearch(s.cum, r+1) // first i with cum[i] > r
	return i
}

// drawOther returns the index of a random target other than i, in
// proportion to weight among the others (len(ts) > 1).
func (s *sampler) drawOther(i int) int {
	if s.equal {
		j := int(rand.Uint64N(uint64(len(s.ts) - 1)))
		if j >= i {
			j++
		}
		return j
	}
	w := weightOf(s.ts[i])
	lo := s.cum[i] - w
	r := rand.Uint64N(s.total - w)
	if r >= lo {
		r += w // step over i's share
	}
	j, _ := slices.BinarySearch(s.cum, r+1)
	return j
}

// drawAvailable picks, at random in proportion to weight, a target of ts
// that skip does not exclude and that is not not; nil when there is none.
// It is the slow path, taken when a quick draw hit an excluded target.
func drawAvailable(ts []*Target, skip Skip, not *Target) *Target {
	var total uint64
	var last *Target
	for _, t := range ts {
		if t != not && !skip(t) {
			total += weightOf(t)
			last = t
		}
	}
	if total == 0 {
		return nil
	}
	r := rand.Uint64N(total)
	for _, t := range ts {
		if t == not || skip(t) {
			continue
		}
		if w := weightOf(t); r < w {
			return t
		} else {
			r -= w
		}
	}
	return last // availability changed between the two passes
}

// Random picks a target at random in proportion to its weight.
type Random struct{ s sampler }

func (r *Random) Select(_ *Pool, _ *exchange.Request, skip Skip) *Target {
	if len(r.s.ts) == 0 {
		return nil
	}
	if t := r.s.ts[r.s.draw()]; !skip(t) {
		return t
	}
	return drawAvailable(r.s.ts, skip, nil)
}

// P2C is the power of two choices: two distinct targets drawn at random in
// proportion to weight, and the one with fewer in-flight requests per unit
// of weight ((inflight+1)/weight) wins; on a tie, the first drawn. The most
// loaded target is never chosen while another is available, and no target
// needs to be compared with all the others.
type P2C struct{ s sampler }

func (q *P2C) Select(_ *Pool, _ *exchange.Request, skip Skip) *Target {
	a, b := pickTwo(&q.s, skip)
	if b == nil {
		return a
	}
	// (inflight+1)/weight, cross-multiplied.
	ca := uint64(max(a.InFlight.Load(), 0)+1) * weightOf(b)
	cb := uint64(max(b.InFlight.Load(), 0)+1) * weightOf(a)
	if cb < ca {
		return b
	}
	return a
}

// pickTwo draws two distinct targets that skip does not exclude, at random
// in proportion to weight. b is nil when only a is left; both are nil when
// none is.
func pickTwo(s *sampler, skip Skip) (a, b *Target) {
	switch len(s.ts) {
	case 0:
		return nil, nil
	case 1:
		if t := s.ts[0]; !skip(t) {
			return t, nil
		}
		return nil, nil
	}
	i := s.draw()
	j := s.drawOther(i)
	a, b = s.ts[i], s.ts[j]
	if !skip(a) && !skip(b) {
		return a, b
	}
	a = drawAvailable(s.ts, skip, nil)
	if a == nil {
		return nil, nil
	}
	return a, drawAvailable(s.ts, skip, a)
}
