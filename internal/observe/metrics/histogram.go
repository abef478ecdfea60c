package metrics

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The latency histograms are gatehouse's own rather than client_golang's:
// an observation is two atomic adds (its bucket and the sum) where
// client_golang's native histogram takes about six and a map lookup, and
// that difference is most of what metrics cost a request. They are
// exported as Prometheus native histograms (schema 3: each bucket 2^(1/8),
// about 9%, wider than the previous) together with classic buckets at the
// powers of two from 2^-14 s (61µs) to 2^6 s (64s), which are boundaries of
// the native buckets, so both views are exact.
const (
	schema  = 3
	perOct  = 1 << schema  // buckets per doubling
	minKey  = -20 * perOct // 2^-20 s (about 1µs) and below: the zero bucket
	maxKey  = 14 * perOct  // 2^14 s (4.5 hours); longer counts in the last bucket
	nBucket = maxKey - minKey + 1
)

// zeroThreshold is the upper bound of the zero bucket, in seconds.
var zeroThreshold = math.Exp2(minKey / perOct)

// subBounds are the upper bounds of the buckets within one doubling, as
// fractions in [0.5, 1) of math.Frexp (computed once, never changed).
var subBounds = func() (b [perOct]float64) {
	for i := range b {
		b[i] = math.Exp2(float64(i-perOct) / perOct)
	}
	return b
}()

// classicLow and classicHigh are the exponents of the classic buckets.
const classicLow, classicHigh = -14, 6

// histogram counts durations.
type histogram struct {
	zero    atomic.Uint64
	sumNs   atomic.Int64
	buckets [nBucket]atomic.Uint64 // index: key - minKey - 1 for keys minKey+1..maxKey+1
}

// ObserveDuration counts one duration.
func (h *histogram) ObserveDuration(d time.Duration) {
	h.sumNs.Add(int64(d))
	v := d.Seconds()
	if v <= zeroThreshold {
		h.zero.Add(1)
		return
	}
	h.buckets[bucketIndex(v)].Add(1)
}

// bucketIndex is the slot of a value above the zero threshold: its key is
// the smallest k with v <= 2^(k/8).
func bucketIndex(v float64) int {
	frac, exp := math.Frexp(v) // v = frac × 2^exp, frac in [0.5, 1)
	sub := 0
	for sub < perOct && subBounds[sub] < frac {
		sub++
	}
	key := (exp-1)*perOct + sub
	return min(key, maxKey) - minKey - 1
}

// snapshot is a histogram's counts at one moment.
type snapshot struct {
	count, zero uint64
	sum         float64 // seconds
	buckets     [nBucket]uint64
}

func (h *histogram) read(s *snapshot) {
	s.zero = h.zero.Load()
	s.count = s.zero
	for i := range h.buckets {
		s.buckets[i] = h.buckets[i].Load()
		s.count += s.buckets[i]
	}
	s.sum = float64(h.sumNs.Load()) / 1e9
}

// histVec is a family of histograms by label values. Series are made when
// a configuration is built (or a target first answers), not per request.
type histVec struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	byID map[string]*histSeries
	all  []*histSeries
}

type histSeries struct {
	labels []string
	histogram
}

func newHistVec(name, help string, labels ...string) *histVec {
	return &histVec{desc: prometheus.NewDesc(name, help, labels, nil), byID: map[string]*histSeries{}}
}

// with returns the series of these label values, made on first use.
func (v *histVec) with(values ...string) *histSeries {
	id := ""
	for _, s := range values {
		id += s + "\xff"
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s := v.byID[id]; s != nil {
		return s
	}
	s := &histSeries{labels: values}
	v.byID[id] = s
	v.all = append(v.all, s)
	return s
}

// series returns every series made so far.
func (v *histVec) series() []*histSeries {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.all[:len(v.all):len(v.all)]
}

func (v *histVec) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

func (v *histVec) Collect(ch chan<- prometheus.Metric) {
	for _, s := range v.series() {
		ch <- &histMetric{desc: v.desc, s: s}
	}
}

// histMetric is one series as the registry writes it.
type histMetric struct {
	desc *prometheus.Desc
	s    *histSeries
}

func (m *histMetric) Desc() *prometheus.Desc { return m.desc }

func (m *histMetric) Write(out *dto.Metric) error {
	var snap snapshot
	m.s.read(&snap)
	out.Label = prometheus.MakeLabelPairs(m.desc, m.s.labels)
	h := &dto.Histogram{
		SampleCount:   &snap.count,
		SampleSum:     &snap.sum,
		Schema:        new(int32(schema)),
		ZeroThreshold: new(zeroThreshold),
		ZeroCount:     &snap.zero,
	}
	// Classic buckets: cumulative counts at 2^e, e = classicLow..classicHigh.
	cum := snap.zero
	i := 0
	for e := classicLow; e <= classicHigh; e++ {
		for ; i < nBucket && i+minKey+1 <= e*perOct; i++ {
			cum += snap.buckets[i]
		}
		h.Bucket = append(h.Bucket, &dto.Bucket{CumulativeCount: new(cum), UpperBound: new(math.Exp2(float64(e)))})
	}
	// Native buckets: spans of consecutive populated keys, counts as deltas.
	var prevKey, prevCount int64
	first := true
	for i, c := range snap.buckets {
		if c == 0 {
			continue
		}
		key := int64(i + minKey + 1)
		switch {
		case first:
			h.PositiveSpan = append(h.PositiveSpan, &dto.BucketSpan{Offset: new(int32(key)), Length: new(uint32(0))})
			first = false
		case key == prevKey+1:
		default:
			h.PositiveSpan = append(h.PositiveSpan, &dto.BucketSpan{Offset: new(int32(key - prevKey - 1)), Length: new(uint32(0))})
		}
		*h.PositiveSpan[len(h.PositiveSpan)-1].Length++
		h.PositiveDelta = append(h.PositiveDelta, int64(c)-prevCount)
		prevKey, prevCount = key, int64(c)
	}
	if len(h.PositiveSpan) == 0 {
		// An empty native histogram still needs a span to be told from a
		// classic one (as client_golang does).
		h.PositiveSpan = []*dto.BucketSpan{{Offset: new(int32(0)), Length: new(uint32(0))}}
	}
	out.Histogram = h
	return nil
}
