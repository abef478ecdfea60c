package upstream

import (
	"sync"
	"time"
)

// Passive is outlier detection: MaxFails failures (connect errors,
// timeouts, 5xx) within Window take a target out for Eject.
type Passive struct {
	MaxFails int
	Window   time.Duration
	Eject    time.Duration
}

// failures counts one backend's recent failures. It is touched only when an
// exchange with that backend fails, so its lock is never on the common path.
type failures struct {
	mu          sync.Mutex
	windowStart time.Time
	count       int
}

// ReportFailure records a failed exchange; it reports whether the backend
// was ejected by it.
func (b *Backend) ReportFailure(p *Passive, now time.Time) bool {
	if p == nil || p.MaxFails <= 0 {
		return false
	}
	f := &b.fails
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.windowStart) > p.Window {
		f.windowStart, f.count = now, 0
	}
	f.count++
	if f.count < p.MaxFails {
		return false
	}
	f.count = 0
	b.Eject(now.Add(p.Eject))
	return true
}

// RecentFailures is the failure count of the current passive-health window.
func (b *Backend) RecentFailures() int {
	b.fails.mu.Lock()
	defer b.fails.mu.Unlock()
	return b.fails.count
}
