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

// DurationBuckets are the classic buckets of the latency histograms (for
// scrapers without native histograms), in seconds: fine at the low end,
// where a proxy on a fast network lives.
var DurationBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// nativeFactor is the growth factor of the native histograms' buckets
// (schema 3: 2^(1/8), about 9% per bucket). No bucket limit is set: latency
// values span at most a few hundred buckets of this schema, and without a
// limit the schema never changes, which keeps the dashboard's per-second
// differences simple.
const nativeFactor = 1.1

// Requests holds the per-request metric families of one server.
type Requests struct {
	requests *prometheus.CounterVec   // site, route, upstream, method, code
	duration *prometheus.HistogramVec // site, route
	bytesIn  *prometheus.CounterVec   // site, route
	bytesOut *prometheus.CounterVec   // site, route
	upstream *prometheus.HistogramVec // upstream, target
	retries  *prometheus.CounterVec   // upstream
	// Errors keeps the latest failed exchanges for the dashboard.
	Errors *ErrorRing
}

// NewRequests creates the families and registers them on reg.
func NewRequests(reg prometheus.Registerer) *Requests {
	hist := func(name, help string, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        name,
			Help:                        help,
			Buckets:                     DurationBuckets,
			NativeHistogramBucketFactor: nativeFactor,
		}, labels)
	}
	m := &Requests{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_requests_total",
			Help: "Requests answered, by site, route, upstream pool (\"\" when none was used), method and status class.",
		}, []string{"site", "route", "upstream", "method", "code"}),
		duration: hist("gatehouse_request_duration_seconds",
			"Time from the request head to the end of the response, by site and route.", "site", "route"),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_request_body_bytes_total",
			Help: "Request body bytes received from clients, by site and route.",
		}, []string{"site", "route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_response_body_bytes_total",
			Help: "Response body bytes sent to clients, by site and route.",
		}, []string{"site", "route"}),
		upstream: hist("gatehouse_upstream_response_seconds",
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
	duration   prometheus.Observer
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
		duration: m.duration.WithLabelValues(site, name),
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
func (m *Requests) Pool(name string) (retries prometheus.Counter, targetLatency func(addr string) prometheus.Observer) {
	vec := m.upstream.MustCurryWith(prometheus.Labels{"upstream": name})
	return m.retries.WithLabelValues(name), func(addr string) prometheus.Observer { return vec.WithLabelValues(addr) }
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
	r.duration.Observe(x.Duration.Seconds())
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
