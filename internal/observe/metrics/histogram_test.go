package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// expand turns native spans and deltas into key -> count.
func expand(h *dto.Histogram) map[int32]int64 {
	out := map[int32]int64{}
	key, count, k := int32(0), int64(0), 0
	for _, sp := range h.GetPositiveSpan() {
		key += sp.GetOffset()
		for range sp.GetLength() {
			count += h.GetPositiveDelta()[k]
			k++
			if count != 0 {
				out[key] = count
			}
			key++
		}
	}
	return out
}

// The native buckets are those client_golang's own native histogram (schema
// 3, factor 1.1) gives the same observations.
func TestHistogramMatchesClientGolang(t *testing.T) {
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ref", NativeHistogramBucketFactor: 1.1,
		NativeHistogramZeroThreshold: zeroThreshold})
	vec := newHistVec("mine", "test", "l")
	mine := vec.with("x")
	rng := rand.New(rand.NewPCG(1, 2))
	sum := 0.0
	for i := range 5000 {
		// Log-uniform from 100ns to 1000s, and the exact bucket boundaries.
		v := math.Pow(10, -7+10*rng.Float64())
		if i%10 == 0 {
			v = math.Exp2(float64(rng.IntN(200)-120) / 8)
		}
		d := time.Duration(v * 1e9)
		ref.Observe(d.Seconds())
		mine.ObserveDuration(d)
		sum += d.Seconds()
	}
	var a, b dto.Metric
	ref.Write(&a)
	(&histMetric{desc: vec.desc, s: mine}).Write(&b)
	ha, hb := a.GetHistogram(), b.GetHistogram()
	if ha.GetSchema() != hb.GetSchema() || ha.GetSampleCount() != hb.GetSampleCount() || ha.GetZeroCount() != hb.GetZeroCount() {
		t.Fatalf("schema %d/%d count %d/%d zero %d/%d", ha.GetSchema(), hb.GetSchema(), ha.GetSampleCount(), hb.GetSampleCount(), ha.GetZeroCount(), hb.GetZeroCount())
	}
	if math.Abs(hb.GetSampleSum()-sum) > 1e-6*sum {
		t.Errorf("sum %v, want %v", hb.GetSampleSum(), sum)
	}
	ea, eb := expand(ha), expand(hb)
	for k, v := range ea {
		if k > maxKey {
			continue // beyond the range kept: counted in the last bucket
		}
		if eb[k] != v {
			t.Errorf("bucket %d: %d, client_golang %d", k, eb[k], v)
		}
	}
	// Classic buckets are cumulative at the powers of two and end at the count.
	prev := uint64(0)
	for i, bk := range hb.GetBucket() {
		if want := math.Exp2(float64(classicLow + i)); bk.GetUpperBound() != want || bk.GetCumulativeCount() < prev {
			t.Fatalf("classic bucket %d: le %v count %d", i, bk.GetUpperBound(), bk.GetCumulativeCount())
		}
		prev = bk.GetCumulativeCount()
		n := uint64(ha.GetZeroCount())
		for k, v := range ea {
			if float64(k) <= float64(classicLow+i)*perOct {
				n += uint64(v)
			}
		}
		if prev != n {
			t.Errorf("classic le=%v: %d, want %d", bk.GetUpperBound(), prev, n)
		}
	}
}

func TestHistogramObserveIsCheap(t *testing.T) {
	var h histogram
	if n := testing.AllocsPerRun(1000, func() { h.ObserveDuration(300 * time.Microsecond) }); n != 0 {
		t.Errorf("%v allocations per observation", n)
	}
}
