package metrics

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// errorSlots is how many recent failed exchanges are kept.
const errorSlots = 64

// maxErrorPath is how much of a failed request's path is kept.
const maxErrorPath = 120

// ErrorRing keeps the latest exchanges answered with a 5xx (by a backend or
// by gatehouse itself) for the dashboard. Writers take a ticket with one
// atomic add and lock only their slot, so concurrent failures do not queue
// on one lock, and nothing is allocated: the path is copied into the slot.
type ErrorRing struct {
	next  atomic.Uint64
	slots [errorSlots]errorSlot
}

type errorSlot struct {
	mu      sync.Mutex
	seq     uint64 // ticket + 1; 0: never written
	at      time.Time
	site    string
	route   string
	method  string
	status  int
	pool    string
	target  string
	pathLen int
	path    [maxErrorPath]byte
}

// RecentError is one failed exchange.
type RecentError struct {
	At       time.Time `json:"at"`
	Site     string    `json:"site"`
	Route    string    `json:"route"`
	Method   string    `json:"method"`
	Path     string    `json:"path"`
	Status   int       `json:"status"`
	Upstream string    `json:"upstream,omitempty"`
	Target   string    `json:"target,omitempty"`
}

func (e *ErrorRing) add(r *Route, x *Exchange, method string) {
	seq := e.next.Add(1)
	s := &e.slots[(seq-1)%errorSlots]
	s.mu.Lock()
	s.seq, s.at, s.site, s.route, s.method, s.status = seq, x.Start, r.site, r.name, method, x.Status
	s.pool, s.target = x.Pool, x.Target
	s.pathLen = copy(s.path[:], x.Path)
	s.mu.Unlock()
}

// Recent returns the kept errors, newest first.
func (e *ErrorRing) Recent() []RecentError {
	type entry struct {
		seq uint64
		RecentError
	}
	var all []entry
	for i := range e.slots {
		s := &e.slots[i]
		s.mu.Lock()
		if s.seq != 0 {
			all = append(all, entry{s.seq, RecentError{
				At: s.at, Site: s.site, Route: s.route, Method: s.method, Path: string(s.path[:s.pathLen]),
				Status: s.status, Upstream: s.pool, Target: s.target,
			}})
		}
		s.mu.Unlock()
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(b.seq, a.seq) })
	out := make([]RecentError, len(all))
	for i, a := range all {
		out[i] = a.RecentError
	}
	return out
}
