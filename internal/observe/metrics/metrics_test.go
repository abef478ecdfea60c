package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestLabelsAreBounded(t *testing.T) {
	for m, want := range map[string]string{"GET": "GET", "PATCH": "PATCH", "get": "OTHER", "PROPFIND": "OTHER", "": "OTHER", "TRACE": "TRACE"} {
		if got := methods[methodIndex([]byte(m))]; got != want {
			t.Errorf("method %q -> %q, want %q", m, got, want)
		}
	}
	for s, want := range map[int]string{0: "none", 99: "none", 101: "1xx", 200: "2xx", 304: "3xx", 499: "4xx", 503: "5xx", 600: "none", -1: "none"} {
		if got := classes[classIndex(s)]; got != want {
			t.Errorf("status %d -> %q, want %q", s, got, want)
		}
	}
}

func TestRouteCountsItsSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewRequests(reg)
	r := m.Route("example.test", "sites[0].routes[0]", []string{"a", "b"})
	now := time.Now()
	r.Observe(&Exchange{Method: []byte("GET"), Status: 200, Pool: "a", Target: "10.0.0.1:80", Start: now, Duration: time.Millisecond, BytesIn: 10, BytesOut: 100})
	r.Observe(&Exchange{Method: []byte("GET"), Status: 204, Pool: "a", Start: now, Duration: time.Millisecond})
	r.Observe(&Exchange{Method: []byte("BREW"), Status: 502, Pool: "b", Target: "10.0.0.2:80", Path: []byte("/x"), Start: now, Duration: time.Millisecond})
	r.Observe(&Exchange{Method: []byte("POST"), Status: 429, Start: now, Duration: time.Millisecond})
	got := series(t, reg)
	want := map[string]float64{
		`gatehouse_requests_total{code="2xx",method="GET",route="sites[0].routes[0]",site="example.test",upstream="a"}`:   2,
		`gatehouse_requests_total{code="4xx",method="POST",route="sites[0].routes[0]",site="example.test",upstream=""}`:   1,
		`gatehouse_requests_total{code="5xx",method="OTHER",route="sites[0].routes[0]",site="example.test",upstream="b"}`: 1,
		`gatehouse_response_body_bytes_total{route="sites[0].routes[0]",site="example.test"}`:                             100,
		`gatehouse_request_body_bytes_total{route="sites[0].routes[0]",site="example.test"}`:                              10,
		`gatehouse_request_duration_seconds{route="sites[0].routes[0]",site="example.test"}`:                              4,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	n := 0
	for k := range got {
		if strings.HasPrefix(k, "gatehouse_requests_total") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d request series, want 3 (combinations never seen are not exported): %v", n, got)
	}
	errs := m.Errors.Recent()
	if len(errs) != 1 || errs[0].Status != 502 || errs[0].Upstream != "b" || errs[0].Target != "10.0.0.2:80" || errs[0].Path != "/x" || errs[0].Method != "OTHER" {
		t.Errorf("recent errors %+v", errs)
	}
}

// Counting a request allocates nothing once its series exist.
func TestObserveDoesNotAllocate(t *testing.T) {
	m := NewRequests(prometheus.NewRegistry())
	r := m.Route("s", "r", []string{"app"})
	x := &Exchange{Method: []byte("GET"), Status: 200, Pool: "app", Start: time.Now(), Duration: 300 * time.Microsecond, BytesOut: 100}
	r.Observe(x)
	if n := testing.AllocsPerRun(1000, func() { r.Observe(x) }); n != 0 {
		t.Errorf("Observe allocates %v times per request", n)
	}
}

func TestErrorRingKeepsTheLatestNewestFirst(t *testing.T) {
	m := NewRequests(prometheus.NewRegistry())
	r := m.Route("s", "r", nil)
	long := strings.Repeat("p", 500)
	for i := range 3 * errorSlots {
		r.Observe(&Exchange{Method: []byte("GET"), Status: 500 + i%4, Path: []byte(long), Start: time.Unix(int64(i), 0)})
	}
	got := m.Errors.Recent()
	if len(got) != errorSlots {
		t.Fatalf("kept %d, want %d", len(got), errorSlots)
	}
	for i, e := range got {
		if want := int64(3*errorSlots - 1 - i); e.At.Unix() != want {
			t.Fatalf("entry %d at %d, want %d (newest first)", i, e.At.Unix(), want)
		}
		if len(e.Path) != maxErrorPath {
			t.Fatalf("path kept %d bytes, want %d", len(e.Path), maxErrorPath)
		}
	}
}

func TestSamplerPerSecond(t *testing.T) {
	m := NewRequests(prometheus.NewRegistry())
	s := NewSampler(m)
	r := m.Route("s", "r", []string{"app"})
	retries, latency := m.Pool("app")
	_ = retries
	t0 := time.Unix(1000, 0)
	s.Tick(t0) // the baseline
	// Second 1: 100 requests, 10 of them 5xx; durations 1ms x 90, 100ms x 10.
	for i := range 100 {
		x := &Exchange{Method: []byte("GET"), Status: 200, Duration: time.Millisecond}
		if i < 10 {
			x.Status, x.Duration = 503, 100*time.Millisecond
		}
		r.Observe(x)
		latency("10.0.0.1:80").ObserveDuration(2 * time.Millisecond)
	}
	s.Tick(t0.Add(time.Second))
	// Second 2: nothing.
	s.Tick(t0.Add(2 * time.Second))
	got := s.Samples()
	if len(got) != 2 {
		t.Fatalf("%d samples, want 2", len(got))
	}
	a := got[0]
	if a.T != 1001 || a.RPS != 100 || a.ErrorRate != 0.1 {
		t.Errorf("sample %+v, want t 1001, 100 rps, error rate 0.1", a)
	}
	// Native buckets are 9% wide: the estimates are within that of the truth.
	if a.P50 < 0.9 || a.P50 > 1.1 || a.P99 < 90 || a.P99 > 110 {
		t.Errorf("p50 %.3f ms (want ~1), p99 %.3f ms (want ~100)", a.P50, a.P99)
	}
	if b := got[1]; b.RPS != 0 || b.P50 != 0 {
		t.Errorf("idle second %+v, want zeros", b)
	}
	if ms, ok := s.TargetLatency("app", "10.0.0.1:80"); !ok || ms < 1.99 || ms > 2.01 {
		t.Errorf("target latency %v %v, want 2ms", ms, ok)
	}
	if _, ok := s.TargetLatency("app", "10.0.0.9:80"); ok {
		t.Error("latency of a target without traffic")
	}
	// The ring keeps History samples.
	for i := range History + 10 {
		s.Tick(t0.Add(time.Duration(3+i) * time.Second))
	}
	if got := s.Samples(); len(got) != History || got[len(got)-1].T != t0.Unix()+int64(History+12) {
		t.Errorf("%d samples, last at %d", len(got), got[len(got)-1].T)
	}
}

// series gathers reg into "name{labels}" -> value (counters; the count of
// histograms).
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"=\""+l.GetValue()+"\"")
			}
			k := f.GetName() + "{" + strings.Join(ls, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[k] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[k] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// BenchmarkObserve is the per-request cost of metrics: one Observe (a
// counter, a native histogram, the bytes counter).
func BenchmarkObserve(b *testing.B) {
	m := NewRequests(prometheus.NewRegistry())
	r := m.Route("s", "r", []string{"app"})
	x := &Exchange{Method: []byte("GET"), Status: 200, Pool: "app", Start: time.Now(), Duration: 300 * time.Microsecond, BytesOut: 100}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe(x)
		}
	})
}
