package upstream

import (
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

func limitedPool(t testing.TB, targets, maxConns, queue int, timeout time.Duration) *Pool {
	t.Helper()
	p := &Pool{Name: "p"}
	for i := 0; i < targets; i++ {
		p.Targets = append(p.Targets, &Target{Backend: &Backend{Addr: "t"}, URL: &url.URL{}, Index: i})
	}
	pol, err := NewPolicy("round_robin", "", p.Targets)
	if err != nil {
		t.Fatal(err)
	}
	p.Policy = pol
	p.SetLimit(maxConns, queue, timeout)
	return p
}

func TestLimitCapsEveryTarget(t *testing.T) {
	p := limitedPool(t, 2, 2, 0, time.Second)
	req := &exchange.Request{}
	var got []*Target
	for i := 0; i < 4; i++ {
		tg, err := p.Acquire(req)
		if err != nil {
			t.Fatalf("acquire %d: %v", i, err)
		}
		got = append(got, tg)
	}
	for _, tg := range p.Targets {
		if n := tg.InFlight.Load(); n != 2 {
			t.Fatalf("target %d has %d in flight, want 2", tg.Index, n)
		}
	}
	if _, err := p.Acquire(req); !errors.Is(err, ErrPoolBusy) {
		t.Fatalf("fifth acquire without a queue: %v, want ErrPoolBusy", err)
	}
	if p.TryAcquire(p.Targets[0]) {
		t.Fatal("TryAcquire passed the cap")
	}
	p.Release(got[0])
	if _, err := p.Acquire(req); err != nil {
		t.Fatalf("acquire after a release: %v", err)
	}
}

func TestLimitQueue(t *testing.T) {
	p := limitedPool(t, 1, 1, 1, 2*time.Second)
	req := &exchange.Request{}
	held, err := p.Acquire(req)
	if err != nil {
		t.Fatal(err)
	}
	// One waits in the queue; a second finds it full at once.
	var wg sync.WaitGroup
	wg.Add(1)
	var queued *Target
	var qerr error
	go func() { defer wg.Done(); queued, qerr = p.Acquire(req) }()
	for p.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if _, err := p.Acquire(req); !errors.Is(err, ErrPoolBusy) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("acquire with the queue full: %v after %v, want ErrPoolBusy at once", err, time.Since(start))
	}
	p.Release(held)
	wg.Wait()
	if qerr != nil || queued == nil {
		t.Fatalf("queued acquire: %v", qerr)
	}
	// The queue's wait is bounded.
	p2 := limitedPool(t, 1, 1, 5, 100*time.Millisecond)
	if _, err := p2.Acquire(req); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, err := p2.Acquire(req); !errors.Is(err, ErrPoolBusy) || time.Since(start) < 90*time.Millisecond {
		t.Fatalf("acquire past the queue timeout: %v after %v", err, time.Since(start))
	}
}

func TestLimitNoTargetUp(t *testing.T) {
	p := limitedPool(t, 1, 1, 5, 5*time.Second)
	p.Targets[0].SetDown(true)
	start := time.Now()
	if _, err := p.Acquire(&exchange.Request{}); !errors.Is(err, ErrNoTarget) || time.Since(start) > time.Second {
		t.Fatalf("acquire with every target down: %v after %v, want ErrNoTarget at once", err, time.Since(start))
	}
}

// BenchmarkAcquireRelease is a first attempt's pick and its release,
// without a cap and with one.
func BenchmarkAcquireRelease(b *testing.B) {
	for _, c := range []struct {
		name string
		max  int
	}{{"uncapped", 0}, {"capped", 1 << 20}} {
		b.Run(c.name, func(b *testing.B) {
			p := limitedPool(b, 4, c.max, 10, time.Second)
			req := &exchange.Request{}
			b.ReportAllocs()
			for b.Loop() {
				t, _ := p.Acquire(req)
				p.Release(t)
			}
		})
	}
}
