package server

import (
	"sync"

	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// drainSet remembers which targets an operator took out of rotation
// (POST /api/v1/upstreams/{pool}/targets/{target}/drain), by pool and
// address, so that a reload keeping a target keeps it drained even when the
// target gets a new backend (changed timeouts, TLS settings).
type drainSet struct {
	mu  sync.Mutex
	set map[drainKey]bool
}

type drainKey struct{ pool, addr string }

func newDrainSet() *drainSet { return &drainSet{set: map[drainKey]bool{}} }

// apply marks the targets of snap that are in the set, and forgets the
// entries of targets snap no longer has.
func (d *drainSet) apply(snap *Snapshot) {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[drainKey]bool{}
	for name, p := range snap.Pools {
		forTargets(p, func(t *upstream.Target) {
			k := drainKey{name, t.Addr}
			seen[k] = true
			t.SetDrained(d.set[k])
		})
	}
	for k := range d.set {
		if !seen[k] {
			delete(d.set, k)
		}
	}
}

// mark drains a backend just made for a discovered address when that
// address was drained (nil d: no drains kept, as in tests).
func (d *drainSet) mark(pool string, be *upstream.Backend) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.set[drainKey{pool, be.Addr}] {
		be.SetDrained(true)
	}
}

// setDrained drains (or enables) the targets of pool p with address addr;
// it reports how many there were.
func (d *drainSet) setDrained(pool string, p *upstream.Pool, addr string, on bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	forTargets(p, func(t *upstream.Target) {
		if t.Addr == addr {
			t.SetDrained(on)
			n++
		}
	})
	if n > 0 {
		if on {
			d.set[drainKey{pool, addr}] = true
		} else {
			delete(d.set, drainKey{pool, addr})
		}
	}
	return n
}

// forTargets calls f with every target of p: the current ones and backups.
func forTargets(p *upstream.Pool, f func(*upstream.Target)) {
	ts, _ := p.Current()
	for _, t := range ts {
		f(t)
	}
	for _, t := range p.Backup {
		f(t)
	}
}
