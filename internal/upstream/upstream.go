// Package upstream holds the pools of backends a route forwards to: targets,
// their keep-alive transports, their health, and the balancing policy that
// picks one.
package upstream

import (
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
)

// Target is one backend server as one configuration snapshot sees it. What
// must outlive a reload (connections, in-flight count, health) is in the
// embedded Backend, which the next snapshot reuses when the target stays.
type Target struct {
	*Backend
	URL    *url.URL
	Host   []byte // Host header to send when the client's is not preserved
	Prefix []byte // URL path prefix prepended to every request path (nil for none)
	Weight int
	// Index is the target's position in its pool (policies keep per-target
	// state in slices indexed by it).
	Index int
}

// Backend is the long-lived state of one backend address.
type Backend struct {
	Addr      string // host:port to dial
	Transport *h1.Transport
	// RoundTripper, when set (transport h2 and h2c), carries the requests
	// instead of Transport.
	RoundTripper http.RoundTripper
	InFlight     atomic.Int64

	// down is set by active health checks; ejectedUntil (unix nanoseconds)
	// by passive outlier detection; drained by an operator (admin API).
	down         atomic.Bool
	ejectedUntil atomic.Int64
	drained      atomic.Bool
	fails        failures
	health       healthState
	// latency observes this backend's attempts for metrics, made on first
	// use by its pool's Stats.
	latency atomic.Pointer[observerRef]
}

// Available reports whether the target may be given new requests.
func (t *Backend) Available() bool {
	if t.down.Load() || t.drained.Load() {
		return false
	}
	if until := t.ejectedUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return false
	}
	return true
}

// SetDown marks the target down or up (active health checks).
func (t *Backend) SetDown(down bool) { t.down.Store(down) }

// Down reports the active health checks' verdict.
func (t *Backend) Down() bool { return t.down.Load() }

// Eject keeps the target out of rotation until the given time (passive health).
func (t *Backend) Eject(until time.Time) { t.ejectedUntil.Store(until.UnixNano()) }

// Ejected reports whether passive health has the target out now.
func (t *Backend) Ejected() bool {
	until := t.ejectedUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}

// SetDrained takes the target out of rotation (no new requests; those in
// flight finish) or puts it back.
func (t *Backend) SetDrained(on bool) { t.drained.Store(on) }

// Drained reports whether an operator took the target out of rotation.
func (t *Backend) Drained() bool { return t.drained.Load() }

// Skip tells a policy which targets not to pick: unavailable ones, and those
// a retry has already tried.
type Skip func(*Target) bool

// Policy picks a target for a request among those skip does not exclude, or
// returns nil when none is left. Implementations keep their own state and
// must not take a lock shared by all requests.
type Policy interface {
	Select(p *Pool, req *exchange.Request, skip Skip) *Target
}

// Pool is a named group of targets with one policy.
//
// Targets and Policy are the targets written as plain URLs and the policy
// built for them. A pool with discovered targets (DNS) gets its targets
// replaced at run time with SetTargets: read them with Current, which gives
// whichever is in use.
type Pool struct {
	Name         string
	Targets      []*Target
	Policy       Policy
	PreserveHost bool
	// RewriteLocation rewrites response URLs that point at a target to
	// the client's scheme and host (proxy/hide.go).
	RewriteLocation bool
	// ResponseHeaderTimeout bounds the wait for a backend's response head.
	ResponseHeaderTimeout time.Duration
	// Backup serves only when no target is available.
	Backup  []*Target
	Retry   Retry
	Passive *Passive
	// Stats, when set, receives the pool's measurements (metrics on).
	Stats    *Stats
	backupRR RoundRobin
	// limit, when set (SetLimit), caps each target's requests in flight.
	limit *limit
	// set, once stored, replaces Targets and Policy.
	set atomic.Pointer[TargetSet]
}

// TargetSet is one immutable list of targets with the policy built for it.
type TargetSet struct {
	Targets []*Target
	Policy  Policy
}

// Current returns the targets in use and their policy.
func (p *Pool) Current() ([]*Target, Policy) {
	if s := p.set.Load(); s != nil {
		return s.Targets, s.Policy
	}
	return p.Targets, p.Policy
}

// SetTargets swaps in a new list of targets and the policy built for it
// (NewPolicy); requests already routed keep the target they got.
func (p *Pool) SetTargets(ts []*Target, policy Policy) {
	p.set.Store(&TargetSet{Targets: ts, Policy: policy})
}

// unavailable is the Skip of a first attempt.
func unavailable(t *Target) bool { return !t.Available() }

// Select picks a target for a first attempt, or nil when none is available
// (backups included).
func (p *Pool) Select(req *exchange.Request) *Target {
	_, policy := p.Current()
	if t := policy.Select(p, req, unavailable); t != nil {
		return t
	}
	return p.selectBackup(unavailable)
}

// SelectNext picks a target for a retry: available and not yet tried.
func (p *Pool) SelectNext(req *exchange.Request, tried []*Target) *Target {
	skip := func(t *Target) bool {
		if !t.Available() {
			return true
		}
		for _, x := range tried {
			if x == t {
				return true
			}
		}
		return false
	}
	_, policy := p.Current()
	if t := policy.Select(p, req, skip); t != nil {
		return t
	}
	return p.selectBackup(skip)
}

func (p *Pool) selectBackup(skip Skip) *Target {
	n := uint64(len(p.Backup))
	if n == 0 {
		return nil
	}
	start := p.backupRR.next.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		if t := p.Backup[(start+i)%n]; !skip(t) {
			return t
		}
	}
	return nil
}

// RoundRobin cycles through the targets in order.
type RoundRobin struct{ next atomic.Uint64 }

func (r *RoundRobin) Select(p *Pool, _ *exchange.Request, skip Skip) *Target {
	ts, _ := p.Current()
	n := uint64(len(ts))
	start := r.next.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		t := ts[(start+i)%n]
		if !skip(t) {
			return t
		}
	}
	return nil
}
