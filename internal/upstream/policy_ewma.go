package upstream

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Defaults of the EWMA policy.
const (
	// DefaultEWMADecay is the time constant of the latency average (as in
	// Finagle and Linkerd): a sample's weight fades by 1/e in this time.
	DefaultEWMADecay = 10 * time.Second
	// DefaultEWMAFailurePenalty is the latency a failed exchange counts
	// for at least, so that a backend failing fast does not look fast.
	DefaultEWMAFailurePenalty = time.Second
)

// unmeasuredBusy is the cost of a target that has requests in flight but no
// latency measured yet (plus its in-flight count): it is not given more
// until one answers. 2^50 ns is about 13 days, and float64 still tells
// 2^50+1 from 2^50+2.
const unmeasuredBusy = 1 << 50

// EWMA is peak-EWMA balancing, as in Finagle and Linkerd: every backend has
// a latency estimate, and p2c picks between two random targets the one with
// the lower cost = estimate × (in-flight + 1) / weight.
//
// The estimate is "peak" sensitive: a sample above it replaces it at once, so
// a backend that turns slow loses its traffic with its first slow answer; a
// sample below it is averaged in with weight 1 - exp(-Δt/Decay) (Δt: the
// time since the previous sample), so recovering takes about Decay. Between
// samples the estimate decays towards zero with the same time constant, so a
// backend that got no traffic because it was slow is tried again later.
// A target never measured costs 0 while idle (it is tried at once) and a
// prohibitive amount while it has a request in flight.
//
// Estimates belong to the Backend (keyed weakly by its identity), so a reload
// that keeps a target keeps what was learnt about it. Estimates are fed by
// Observe (EWMA is an Observer); without observations EWMA is p2c on
// in-flight counts.
type EWMA struct {
	s  sampler
	st []*ewmaState // parallel to s.ts

	// Decay and FailurePenalty are set by NewPolicy to the defaults above;
	// change them only before the policy is used.
	Decay          time.Duration
	FailurePenalty time.Duration

	now func() int64 // monotonic nanoseconds; a field for tests
}

// ewmaState is one backend's estimate. The two fields are updated one after
// the other without a lock: a sample racing with another may be weighted a
// little off, which a heuristic can afford.
type ewmaState struct {
	rtt   atomic.Uint64 // float64 bits: nanoseconds; 0 = never measured
	stamp atomic.Int64  // monotonic nanoseconds of the last sample
}

var ewmaEpoch = time.Now()

// monoNow reads the monotonic clock only (time.Since of a time that has a
// monotonic reading does not read the wall clock).
func monoNow() int64 { return int64(time.Since(ewmaEpoch)) }

// ewmaStates maps a weak pointer to a Backend to its estimate; the entry is
// dropped when the Backend is collected.
var ewmaStates sync.Map

func ewmaStateOf(b *Backend) *ewmaState {
	if b == nil {
		return new(ewmaState)
	}
	k := weak.Make(b)
	if v, ok := ewmaStates.Load(k); ok {
		return v.(*ewmaState)
	}
	v, loaded := ewmaStates.LoadOrStore(k, new(ewmaState))
	if !loaded {
		runtime.AddCleanup(b, func(k weak.Pointer[Backend]) { ewmaStates.Delete(k) }, k)
	}
	return v.(*ewmaState)
}

func newEWMA(ts []*Target) *EWMA {
	e := &EWMA{
		s:              newSampler(ts),
		st:             make([]*ewmaState, len(ts)),
		Decay:          DefaultEWMADecay,
		FailurePenalty: DefaultEWMAFailurePenalty,
		now:            monoNow,
	}
	for i, t := range ts {
		e.st[i] = ewmaStateOf(t.Backend)
	}
	return e
}

func (e *EWMA) Select(_ *Pool, _ *exchange.Request, skip Skip) *Target {
	a, b := pickTwo(&e.s, skip)
	if b == nil {
		return a
	}
	var now int64
	if e.cost(b, &now) < e.cost(a, &now) {
		return b
	}
	return a
}

// state finds t's estimate: by its index, or by a scan when t is not where
// its index says (then nil if it is not one of ours).
func (e *EWMA) state(t *Target) *ewmaState {
	if i := t.Index; i >= 0 && i < len(e.s.ts) && e.s.ts[i] == t {
		return e.st[i]
	}
	for i, x := range e.s.ts {
		if x == t {
			return e.st[i]
		}
	}
	return nil
}

// cost is estimate × (in-flight + 1) / weight. *now is read from the clock
// the first time it is needed.
func (e *EWMA) cost(t *Target, now *int64) float64 {
	inflight := max(t.InFlight.Load(), 0)
	st := e.state(t)
	if st == nil {
		return unmeasuredBusy
	}
	rtt := math.Float64frombits(st.rtt.Load())
	if rtt == 0 {
		if inflight == 0 {
			return 0
		}
		return unmeasuredBusy + float64(inflight)
	}
	if *now == 0 {
		*now = e.now()
	}
	if dt := *now - st.stamp.Load(); dt > 0 {
		rtt *= decay(float64(dt) / float64(e.Decay))
	}
	return rtt * float64(inflight+1) / float64(weightOf(t))
}

// Observe records the latency of one exchange with t (see Observer).
func (e *EWMA) Observe(t *Target, rtt time.Duration, ok bool) {
	st := e.state(t)
	if st == nil {
		return
	}
	sample := max(float64(rtt), 1) // 0 means "never measured"
	if !ok {
		sample = max(sample, float64(e.FailurePenalty))
	}
	now := e.now()
	prev := st.stamp.Swap(now)
	w := 1.0 // weight of the old estimate
	if dt := now - prev; dt > 0 && prev != 0 {
		w = decay(float64(dt) / float64(e.Decay))
	}
	for {
		oldBits := st.rtt.Load()
		old := math.Float64frombits(oldBits)
		next := sample
		if old != 0 && sample <= old*w {
			// Below the (decayed) estimate: average it in. Above: peak,
			// the sample replaces the estimate.
			next = old*w + sample*(1-w)
		}
		if st.rtt.CompareAndSwap(oldBits, math.Float64bits(next)) {
			return
		}
	}
}

// decay is e^-x for x >= 0. Under traffic x (time since the last sample over
// Decay) is tiny, where three terms of the series are exact to 1e-9.
func decay(x float64) float64 {
	if x < 1e-3 {
		return 1 - x + x*x/2
	}
	return math.Exp(-x)
}

// Estimate reports t's current latency estimate (0 when never measured), for
// the admin API.
func (e *EWMA) Estimate(t *Target) time.Duration {
	st := e.state(t)
	if st == nil {
		return 0
	}
	rtt := math.Float64frombits(st.rtt.Load())
	if rtt == 0 {
		return 0
	}
	if dt := e.now() - st.stamp.Load(); dt > 0 {
		rtt *= decay(float64(dt) / float64(e.Decay))
	}
	return time.Duration(rtt)
}
