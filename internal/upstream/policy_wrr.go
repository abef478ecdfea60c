package upstream

import (
	"sync/atomic"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// wrrMaxPeriod bounds a precomputed smooth sequence (entries): weights whose
// sum, divided by their gcd, is larger are scaled down to fit, keeping their
// ratios to within 1/wrrMaxPeriod of the total.
const wrrMaxPeriod = 1 << 14

// wrrRecheck is how often (in requests) a pool running without some targets
// checks whether they are back.
const wrrRecheck = 64

// WeightedRoundRobin is nginx's smooth weighted round robin: weights 5:1:1
// give a a b a c a a, spreading each target's turns evenly instead of in
// bursts. The sequence (one period: the sum of the weights divided by their
// gcd) is computed once, and an atomic counter indexes it.
//
// When targets are unavailable (down or ejected), the smooth sequence of the
// targets that are left is computed once and used until the set changes, so
// the others keep their proportions and their smoothness, as in nginx. That
// happens on the request path but only when availability changes; pools of
// more than 64 targets fall back to a weighted random pick instead. Targets a
// retry already tried are skipped by walking forward in the sequence.
type WeightedRoundRobin struct {
	ts      []*Target
	weights []uint64
	next    atomic.Uint64
	full    *wrrTable // all targets
	cur     atomic.Pointer[wrrTable]
}

// wrrTable is the smooth sequence of the targets not in mask.
type wrrTable struct {
	mask    uint64  // unavailable targets (bit i: ts[i]); 0 for the full table
	members uint64  // targets present in seq (for pools of at most 64)
	seq     []int32 // indexes into ts, one period
}

func newWeightedRoundRobin(ts []*Target) *WeightedRoundRobin {
	w := &WeightedRoundRobin{ts: ts, weights: make([]uint64, len(ts))}
	for i, t := range ts {
		w.weights[i] = weightOf(t)
	}
	w.full = buildWRR(w.weights, 0)
	w.cur.Store(w.full)
	return w
}

func (w *WeightedRoundRobin) Select(_ *Pool, _ *exchange.Request, skip Skip) *Target {
	if len(w.ts) == 0 {
		return nil
	}
	i := w.next.Add(1) - 1
	tab := w.cur.Load()
	if (tab.mask != 0 && i%wrrRecheck == 0) || len(tab.seq) == 0 {
		tab = w.refresh(tab) // some may be back
	}
	if len(tab.seq) == 0 {
		return nil
	}
	pos := int(i % uint64(len(tab.seq)))
	t := w.ts[tab.seq[pos]]
	if !skip(t) {
		return t
	}
	if len(w.ts) > 64 {
		return drawAvailable(w.ts, skip, nil)
	}
	if nt := w.refresh(tab); nt != tab {
		// Availability changed: continue in the sequence of the targets left.
		tab = nt
		if len(tab.seq) == 0 {
			return nil
		}
		pos = int(i % uint64(len(tab.seq)))
		if t = w.ts[tab.seq[pos]]; !skip(t) {
			return t
		}
	}
	// Excluded for another reason (a retry tried it): the next distinct
	// targets in sequence order.
	seen := uint64(1) << tab.seq[pos]
	for k := 1; k < len(tab.seq) && seen != tab.members; k++ {
		idx := tab.seq[(pos+k)%len(tab.seq)]
		bit := uint64(1) << idx
		if seen&bit != 0 {
			continue
		}
		seen |= bit
		if t := w.ts[idx]; !skip(t) {
			return t
		}
	}
	return nil
}

// refresh returns the table for the targets available now, computing and
// publishing it if tab is not that one. Concurrent refreshes compute the
// same table; whichever is stored last is as good as the other.
func (w *WeightedRoundRobin) refresh(tab *wrrTable) *wrrTable {
	if len(w.ts) > 64 {
		return tab
	}
	var mask uint64
	for i, t := range w.ts {
		if !t.Available() {
			mask |= 1 << i
		}
	}
	if mask == tab.mask {
		return tab
	}
	nt := w.full
	if mask != 0 {
		nt = buildWRR(w.weights, mask)
	}
	w.cur.Store(nt)
	return nt
}

// buildWRR computes one period of the smooth weighted round robin of the
// targets not in mask (bit i excludes weights[i]; only for i < 64).
func buildWRR(weights []uint64, mask uint64) *wrrTable {
	tab := &wrrTable{mask: mask}
	w := make([]uint64, len(weights))
	var sum, g uint64
	for i, x := range weights {
		if i < 64 && mask&(1<<i) != 0 {
			continue
		}
		w[i] = x
		sum += x
		g = gcd(g, x)
		if i < 64 {
			tab.members |= 1 << i
		}
	}
	if sum == 0 {
		return tab
	}
	period := sum / g
	if period > wrrMaxPeriod {
		// Scale down; every target keeps at least one turn.
		g = 0
		var s uint64
		for i, x := range w {
			if x == 0 {
				continue
			}
			w[i] = max(1, (x*wrrMaxPeriod+sum/2)/sum)
			s += w[i]
			g = gcd(g, w[i])
		}
		sum = s
		period = s / g
	}
	for i := range w {
		w[i] /= g
	}
	// nginx: every turn, each target's current weight grows by its weight;
	// the largest (first on a tie) is chosen and loses the total.
	cur := make([]int64, len(w))
	tab.seq = make([]int32, period)
	for k := range tab.seq {
		best := -1
		for i, x := range w {
			if x == 0 {
				continue
			}
			cur[i] += int64(x)
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(period)
		tab.seq[k] = int32(best)
	}
	return tab
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
