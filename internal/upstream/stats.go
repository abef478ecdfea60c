package upstream

import "time"

// DurationObserver takes one measured duration.
type DurationObserver interface{ ObserveDuration(time.Duration) }

// Counter counts events (prometheus.Counter satisfies it).
type Counter interface{ Inc() }

// Stats receives what the proxy measures of one pool's exchanges, for
// metrics. It holds handles made once per configuration; the per-target
// observer is made on a backend's first attempt and kept on the backend.
type Stats struct {
	// Retries counts requests sent again after a failed attempt.
	Retries Counter
	// TargetLatency makes the observer of one target's attempt latencies
	// (seconds to the response head), by target address.
	TargetLatency func(addr string) DurationObserver
}

type observerRef struct{ DurationObserver }

// ObserveAttempt records the time a target took to send a response head.
func (s *Stats) ObserveAttempt(t *Target, d time.Duration) {
	o := t.latency.Load()
	if o == nil {
		// Two first attempts racing make the same series twice: harmless,
		// the registry hands both the same one.
		o = &observerRef{s.TargetLatency(t.Addr)}
		t.latency.Store(o)
	}
	o.ObserveDuration(d)
}
