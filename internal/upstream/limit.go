package upstream

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// ErrPoolBusy means every target of the pool is at its connection cap and
// the request could not wait for one (queue full or wait timed out).
var ErrPoolBusy = errors.New("upstream: every target busy")

// ErrNoTarget means no target of the pool is available at all.
var ErrNoTarget = errors.New("upstream: no target available")

// limit caps the requests in flight on each target of a pool (HAProxy's
// server maxconn, nginx's max_conns) and queues those that find every
// target at the cap, so that one slow backend holds at most its own share
// of connections and waiting requests, never the whole proxy.
type limit struct {
	max          int64
	queueSize    int64
	queueTimeout time.Duration
	waiting      atomic.Int64
	// wake gets a token when a slot frees while requests wait; tokens
	// never block a release (the channel holds one per queue place).
	wake chan struct{}
	full Skip
}

// queuePoll bounds each wait in the queue: slots freed by requests of an
// older configuration (whose pool object this is not) are seen this late.
const queuePoll = 20 * time.Millisecond

// SetLimit caps each target at max requests in flight (0: no cap), with
// a queue of queueSize requests waiting at most queueTimeout. Call it
// before the pool serves.
func (p *Pool) SetLimit(maxConns, queueSize int, queueTimeout time.Duration) {
	if maxConns <= 0 {
		p.limit = nil
		return
	}
	l := &limit{max: int64(maxConns), queueSize: int64(queueSize), queueTimeout: queueTimeout,
		wake: make(chan struct{}, max(queueSize, 1))}
	l.full = func(t *Target) bool { return !t.Available() || t.InFlight.Load() >= l.max }
	p.limit = l
}

// Acquire picks a target for a first attempt and counts the request in
// flight on it (Release ends that). With a cap, it picks among targets
// below it, waiting in the queue when all are at it.
func (p *Pool) Acquire(req *exchange.Request) (*Target, error) {
	l := p.limit
	if l == nil {
		t := p.Select(req)
		if t == nil {
			return nil, ErrNoTarget
		}
		t.InFlight.Add(1)
		return t, nil
	}
	if t := p.selectFree(req); t != nil {
		return t, nil
	}
	if p.Select(req) == nil {
		return nil, ErrNoTarget // nothing is up: waiting would not help
	}
	if l.waiting.Add(1) > l.queueSize {
		l.waiting.Add(-1)
		return nil, ErrPoolBusy
	}
	defer l.waiting.Add(-1)
	deadline := time.Now().Add(l.queueTimeout)
	timer := time.NewTimer(min(l.queueTimeout, queuePoll))
	defer timer.Stop()
	for {
		if t := p.selectFree(req); t != nil {
			return t, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, ErrPoolBusy
		}
		timer.Reset(min(left, queuePoll))
		select {
		case <-l.wake:
		case <-timer.C:
		}
	}
}

// selectFree picks a target below the cap and takes a slot on it; a target
// that fills between the pick and the take is picked around.
func (p *Pool) selectFree(req *exchange.Request) *Target {
	l := p.limit
	_, policy := p.Current()
	for range 4 {
		t := policy.Select(p, req, l.full)
		if t == nil {
			t = p.selectBackup(l.full)
		}
		if t == nil {
			return nil
		}
		if p.TryAcquire(t) {
			return t
		}
	}
	return nil
}

// TryAcquire counts one more request in flight on t unless t is at the
// pool's cap; it reports whether it did.
func (p *Pool) TryAcquire(t *Target) bool {
	l := p.limit
	if l == nil {
		t.InFlight.Add(1)
		return true
	}
	for {
		n := t.InFlight.Load()
		if n >= l.max {
			return false
		}
		if t.InFlight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release ends a request counted by Acquire or TryAcquire, handing the
// slot to a queued request if one waits.
func (p *Pool) Release(t *Target) {
	t.InFlight.Add(-1)
	if l := p.limit; l != nil && l.waiting.Load() > 0 {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// Waiting is how many requests wait in the pool's queue now.
func (p *Pool) Waiting() int64 {
	if p.limit == nil {
		return 0
	}
	return p.limit.waiting.Load()
}
