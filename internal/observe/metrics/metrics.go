// Package metrics counts requests for Prometheus (/metrics) and the admin
// dashboard. The metric families are registered once per server; each
// configuration snapshot pre-resolves the series of its routes (Route), so
// that counting a request is a few array indexings and atomic adds: no
// label strings are built and no map is searched per request.
package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the request method: the methods of RFC 9110 and PATCH;
// anything else counts as OTHER, so that a client cannot grow the label set.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

const numMethods = len(methods)

// methodIndex maps a request method to its place in methods.
func methodIndex(m []byte) int {
	switch string(m) { // compiled without converting (no allocation)
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "DELETE":
		return 4
	case "PATCH":
		return 5
	case "OPTIONS":
		return 6
	case "CONNECT":
		return 7
	case "TRACE":
		return 8
	}
	return numMethods - 1
}

// Label values of the status class; "none" is an exchange that ended
// without a response head (the client went away first).
var classes = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

const numClasses = len(classes)

func classIndex(status int) int {
	if c := status / 100; status >= 100 && c < numClasses {
		return c
	}
	return 0
}

// Requests holds the per-request metric families of one server.
type Requests struct {
	requests *prometheus.CounterVec // site, route, upstream, method, code
	duration *histVec               // site, route
	bytesIn  *prometheus.CounterVec // site, route
	bytesOut *prometheus.CounterVec // site, route
	upstream *histVec               // upstream, target
	retries  *prometheus.CounterVec // upstream
	// Errors keeps the latest failed exchanges for the dashboard.
	Errors *ErrorRing
}

// NewRequests creates the families and registers them on reg.
func NewRequests(reg prometheus.Registerer) *Requests {
	m := &Requests{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_requests_total",
			Help: "Requests answered, by site, route, upstream pool (\"\" when none was used), method and status class.",
		}, []string{"site", "route", "upstream", "method", "code"}),
		duration: newHistVec("gatehouse_request_duration_seconds",
			"Time from the request head to the end of the response, by site and route.", "site", "route"),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_request_body_bytes_total",
			Help: "Request body bytes received from clients, by site and route.",
		}, []string{"site", "route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_response_body_bytes_total",
			Help: "Response body bytes sent to clients, by site and route.",
		}, []string{"site", "route"}),
		upstream: newHistVec("gatehouse_upstream_response_seconds",
			"Time from sending a request to a target to its response head, per attempt, by upstream pool and target.", "upstream", "target"),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_upstream_retries_total",
			Help: "Requests sent again to another target after a failed attempt, by upstream pool.",
		}, []string{"upstream"}),
		Errors: &ErrorRing{},
	}
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.upstream, m.retries)
	return m
}

// Route is the pre-resolved series of one route (or of the requests no
// route matched), built with a configuration snapshot.
type Route struct {
	site, name string
	duration   *histSeries
	bytesIn    prometheus.Counter
	bytesOut   prometheus.Counter
	// pools[0] counts answers that used no upstream (filters, respond,
	// redirect, errors before forwarding); then one per pool the route
	// forwards to.
	pools  []poolSeries
	errors *ErrorRing
}

type poolSeries struct {
	name string
	vec  *prometheus.CounterVec // curried with site, route and upstream
	// counts are resolved on first use, so that combinations never seen
	// are not exported as zeros.
	counts [numMethods][numClasses]atomic.Pointer[counter]
}

type counter struct{ prometheus.Counter }

// Route pre-resolves the series of one route forwarding to pools.
func (m *Requests) Route(site, name string, pools []string) *Route {
	r := &Route{
		site:     site,
		name:     name,
		duration: m.duration.with(site, name),
		bytesIn:  m.bytesIn.WithLabelValues(site, name),
		bytesOut: m.bytesOut.WithLabelValues(site, name),
		pools:    make([]poolSeries, 1+len(pools)),
		errors:   m.Errors,
	}
	for i, p := range append([]string{""}, pools...) {
		r.pools[i].name = p
		r.pools[i].vec = m.requests.MustCurryWith(prometheus.Labels{"site": site, "route": name, "upstream": p})
	}
	return r
}

// Pool returns the observers of one upstream pool's attempts.
func (m *Requests) Pool(name string) (retries prometheus.Counter, targetLatency func(addr string) *histSeries) {
	return m.retries.WithLabelValues(name), func(addr string) *histSeries { return m.upstream.with(name, addr) }
}

// Exchange is what Observe needs to know of one finished exchange.
type Exchange struct {
	Method   []byte
	Path     []byte // for the recent errors only
	Status   int
	Pool     string // the upstream pool used, "" for none
	Target   string // the target's address, "" for none
	Start    time.Time
	Duration time.Duration
	BytesIn  int64
	BytesOut int64
}

// Observe counts one exchange.
func (r *Route) Observe(x *Exchange) {
	ps := &r.pools[0]
	if x.Pool != "" {
		for i := 1; i < len(r.pools); i++ {
			// Usually the very same string as the pool's name: equal
			// pointers, compared at once.
			if r.pools[i].name == x.Pool {
				ps = &r.pools[i]
				break
			}
		}
	}
	mi, ci := methodIndex(x.Method), classIndex(x.Status)
	c := ps.counts[mi][ci].Load()
	if c == nil {
		c = &counter{ps.vec.WithLabelValues(methods[mi], classes[ci])}
		ps.counts[mi][ci].Store(c)
	}
	c.Inc()
	r.duration.ObserveDuration(x.Duration)
	if x.BytesIn > 0 {
		r.bytesIn.Add(float64(x.BytesIn))
	}
	if x.BytesOut > 0 {
		r.bytesOut.Add(float64(x.BytesOut))
	}
	if x.Status >= 500 {
		r.errors.add(r, x, methods[mi])
	}
}
