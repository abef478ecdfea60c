package cache_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// 100 concurrent misses for one URL make exactly one backend request; the
// other 99 are answered with its stored response.
func TestCoalescingOneBackendRequest(t *testing.T) {
	arrived := make(chan struct{}, 200)
	release := make(chan struct{})
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "shared")
	})
	const n = 100
	var wg sync.WaitGroup
	var bad atomic.Int32
	var collapsed atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.get("/hot")
			if r.status != 200 || r.body != "shared" {
				bad.Add(1)
			}
			if strings.Contains(r.cacheStatus(), "collapsed") {
				collapsed.Add(1)
			}
		}()
	}
	<-arrived
	// Let the other 99 reach the cache and queue behind the first.
	waitUntil(t, 5*time.Second, func() bool {
		return e.store().Waiting(e.base+"/hot") == n-1
	})
	close(release)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d clients got a wrong answer", bad.Load())
	}
	e.expectHits(1, "100 concurrent misses")
	if collapsed.Load() == 0 {
		t.Errorf("no request reported collapsed in Cache-Status")
	}
}

// counter reads gatehouse_cache_requests_total{result} from the server's
// registry.
func counter(t *testing.T, e *env, result string) float64 {
	mfs, err := e.srv.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_cache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A response that may not be stored releases the waiting requests: each
// goes to the backend on its own instead of waiting in turn.
func TestCoalescingReleasesWaitersOnUncacheable(t *testing.T) {
	release := make(chan struct{})
	var first atomic.Bool
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			<-release
		}
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "own")
	})
	const n = 10
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.get("/u"); r.body != "own" {
				t.Errorf("got %q", r.body)
			}
		}()
	}
	waitUntil(t, 5*time.Second, func() bool { return e.store().Waiting(e.base+"/u") == n-1 })
	close(release)
	wg.Wait()
	e.expectHits(n, "uncacheable: everyone on their own")
}

// The store stays under max_bytes under a load of distinct keys, and a
// one-off scan does not evict what is requested often (W-TinyLFU).
func TestMemoryBoundedAndScanResistant(t *testing.T) {
	body := strings.Repeat("b", 4<<10)
	e := newEnv(t, "{max_bytes: 256KiB, max_object_bytes: 16KiB}", serve(200, body, "Cache-Control", "max-age=600"))
	st := e.store()
	for i := 0; i < 40; i++ {
		e.get("/hot") // popular
	}
	for i := 0; i < 200; i++ {
		if r := e.get(fmt.Sprintf("/scan/%d", i)); len(r.body) != len(body) {
			t.Fatalf("scan %d: body of %d bytes", i, len(r.body))
		}
		if i%50 == 0 {
			if b := st.Bytes(); b > 256<<10 {
				t.Fatalf("after %d distinct keys: %d bytes stored, max_bytes is %d", i, b, 256<<10)
			}
		}
		if i%20 == 0 {
			e.get("/hot")
		}
	}
	if b := st.Bytes(); b > 256<<10 || b < 128<<10 {
		t.Fatalf("%d bytes stored, want close to but under max_bytes (%d)", b, 256<<10)
	}
	if r := e.get("/hot"); !isHit(r) {
		t.Errorf("the popular URL was evicted by a scan: %q", r.cacheStatus())
	}
}

// Objects over max_object_bytes pass through whole and are not stored,
// whether their length is known up front or not.
func TestLargeObjectsPassThrough(t *testing.T) {
	big := strings.Repeat("L", 100<<10)
	e := newEnv(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if r.URL.Path == "/chunked" {
			for i := 0; i < 100; i++ {
				io.WriteString(w, big[:1<<10])
				w.(http.Flusher).Flush()
			}
			return
		}
		io.WriteString(w, big)
	})
	for _, p := range []string{"/known", "/chunked"} {
		for i := 0; i < 2; i++ {
			r := e.get(p)
			if r.body != big || isHit(r) {
				t.Fatalf("%s #%d: %d bytes (%s), want all %d passed through, not stored", p, i, len(r.body), r.cacheStatus(), len(big))
			}
		}
	}
	if e.store().Len() != 0 {
		t.Errorf("%d entries stored", e.store().Len())
	}
}

// Hits, misses and stale answers are counted on the server's registry.
func TestMetricsCountOutcomes(t *testing.T) {
	e := newEnv(t, "", serve(200, "x", "Cache-Control", "max-age=60"))
	e.get("/m1")
	e.get("/m1")
	e.get("/m1")
	if h, m := counter(t, e, "hit"), counter(t, e, "miss"); h != 2 || m != 1 {
		t.Fatalf("hit=%v miss=%v, want 2 and 1", h, m)
	}
}
