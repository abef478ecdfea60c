// Package upstream holds the pools of backends a route forwards to: targets,
// their keep-alive transports and the balancing policy that picks one.
package upstream

import (
	"net/url"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
)

// Target is one backend server.
type Target struct {
	URL    *url.URL
	Addr   string // host:port to dial
	Host   []byte // Host header to send when the client's is not preserved
	Prefix []byte // URL path prefix prepended to every request path ("" for none)
	Weight int

	Transport *h1.Transport
	InFlight  atomic.Int64
}

// Policy picks a target for a request. Implementations keep their own state
// and must not take a lock shared by all requests.
type Policy interface {
	Select(p *Pool, req *exchange.Request) *Target
}

// Pool is a named group of targets with one policy.
type Pool struct {
	Name         string
	Targets      []*Target
	Policy       Policy
	PreserveHost bool
	// ResponseHeaderTimeout bounds the wait for a backend's response head.
	ResponseHeaderTimeout time.Duration
}

// Select picks a target, or nil when the pool has none available.
func (p *Pool) Select(req *exchange.Request) *Target {
	if len(p.Targets) == 0 {
		return nil
	}
	return p.Policy.Select(p, req)
}

// RoundRobin cycles through the targets in order.
type RoundRobin struct{ next atomic.Uint64 }

func (r *RoundRobin) Select(p *Pool, _ *exchange.Request) *Target {
	n := r.next.Add(1) - 1
	return p.Targets[n%uint64(len(p.Targets))]
}
