package metrics

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// History is how many per-second samples the dashboard can show.
const History = 300

// targetWindow is how many seconds a target's average latency covers.
const targetWindow = 10

// Sample is one second of traffic, all routes together.
type Sample struct {
	T         int64   `json:"t"`          // unix seconds at the end of the second
	RPS       float64 `json:"rps"`        // requests answered
	ErrorRate float64 `json:"error_rate"` // share of them answered with a 5xx, 0..1
	P50       float64 `json:"p50_ms"`     // median request duration, milliseconds (0 without requests)
	P99       float64 `json:"p99_ms"`
}

// Sampler turns the cumulative metrics into per-second samples once a
// second, off the request path: requests pay nothing for the dashboard.
type Sampler struct {
	m *Requests

	mu      sync.Mutex
	ring    [History]Sample
	n, head int // count kept; index of the next write
	started bool
	prev    totals
	// targets: cumulative (sum, count) of each target's attempts at the
	// last targetWindow+1 ticks, to average over the window.
	targets [targetWindow + 1]map[targetKey]sumCount
	tick    int
}

type targetKey struct{ Upstream, Target string }

type sumCount struct {
	sum   float64
	count uint64
}

// totals are the cumulative counts a sample is the difference of.
type totals struct {
	requests, errors uint64
	schema           int32
	zero             uint64
	buckets          map[int32]uint64 // native bucket index -> cumulative count
}

// NewSampler samples m; call Tick once a second.
func NewSampler(m *Requests) *Sampler { return &Sampler{m: m} }

// Tick takes the sample of the second ending at now.
func (s *Sampler) Tick(now time.Time) {
	cur := s.read()
	tg := s.readTargets()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets[s.tick%len(s.targets)] = tg
	s.tick++
	if !s.started {
		s.started, s.prev = true, cur
		return
	}
	smp := Sample{T: now.Unix()}
	if d := cur.requests - s.prev.requests; cur.requests >= s.prev.requests && d > 0 {
		smp.RPS = float64(d)
		smp.ErrorRate = float64(cur.errors-s.prev.errors) / float64(d)
	}
	if cur.schema == s.prev.schema || s.prev.buckets == nil {
		delta := map[int32]uint64{}
		for k, v := range cur.buckets {
			if d := v - s.prev.buckets[k]; v > s.prev.buckets[k] {
				delta[k] = d
			}
		}
		zero := cur.zero - min(cur.zero, s.prev.zero)
		smp.P50 = quantile(0.5, cur.schema, zero, delta) * 1000
		smp.P99 = quantile(0.99, cur.schema, zero, delta) * 1000
	}
	s.prev = cur
	s.ring[s.head] = smp
	s.head = (s.head + 1) % History
	s.n = min(s.n+1, History)
}

// Samples returns the kept samples, oldest first.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Sample, 0, s.n)
	for i := s.n; i > 0; i-- {
		out = append(out, s.ring[(s.head-i+History)%History])
	}
	return out
}

// TargetLatency is the mean time to response head of a target's attempts
// over the last ten seconds, in milliseconds; ok is false without any.
func (s *Sampler) TargetLatency(upstream, target string) (ms float64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tick < 2 {
		return 0, false
	}
	newest := s.targets[(s.tick-1)%len(s.targets)]
	oldest := s.targets[max(s.tick-len(s.targets), 0)%len(s.targets)]
	k := targetKey{upstream, target}
	a, b := newest[k], oldest[k]
	if a.count <= b.count {
		return 0, false
	}
	return (a.sum - b.sum) / float64(a.count-b.count) * 1000, true
}

// read sums the request counters and duration histograms of every route.
func (s *Sampler) read() totals {
	t := totals{buckets: map[int32]uint64{}, schema: math.MinInt32}
	collect(s.m.requests, func(d *dto.Metric) {
		n := uint64(d.GetCounter().GetValue())
		t.requests += n
		for _, l := range d.GetLabel() {
			if l.GetName() == "code" && l.GetValue() == "5xx" {
				t.errors += n
			}
		}
	})
	collect(s.m.duration, func(d *dto.Metric) {
		h := d.GetHistogram()
		if h.GetSchema() != t.schema && t.schema != math.MinInt32 {
			return // not expected: schemas change only with a bucket limit
		}
		t.schema = h.GetSchema()
		t.zero += h.GetZeroCount()
		idx, count := int32(0), int64(0)
		deltas := h.GetPositiveDelta()
		k := 0
		for _, sp := range h.GetPositiveSpan() {
			idx += sp.GetOffset()
			for range sp.GetLength() {
				count += deltas[k]
				k++
				t.buckets[idx] += uint64(count)
				idx++
			}
		}
	})
	return t
}

func (s *Sampler) readTargets() map[targetKey]sumCount {
	out := map[targetKey]sumCount{}
	collect(s.m.upstream, func(d *dto.Metric) {
		var k targetKey
		for _, l := range d.GetLabel() {
			switch l.GetName() {
			case "upstream":
				k.Upstream = l.GetValue()
			case "target":
				k.Target = l.GetValue()
			}
		}
		h := d.GetHistogram()
		out[k] = sumCount{h.GetSampleSum(), h.GetSampleCount()}
	})
	return out
}

// collect calls f with every series of c.
func collect(c prometheus.Collector, f func(*dto.Metric)) {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) == nil {
			f(&d)
		}
	}
}

// quantile estimates the q-quantile (seconds) of a native histogram: the
// geometric middle of the bucket the rank falls in.
func quantile(q float64, schema int32, zero uint64, buckets map[int32]uint64) float64 {
	total := zero
	for _, v := range buckets {
		total += v
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	seen := zero
	if seen >= rank {
		return 0
	}
	keys := make([]int32, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	base := math.Exp2(math.Exp2(-float64(schema)))
	for _, k := range keys {
		seen += buckets[k]
		if seen >= rank {
			// Bucket k holds values in (base^(k-1), base^k].
			return math.Pow(base, float64(k)-0.5)
		}
	}
	return math.Pow(base, float64(keys[len(keys)-1]))
}
