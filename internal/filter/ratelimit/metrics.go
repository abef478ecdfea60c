package ratelimit

import "github.com/prometheus/client_golang/prometheus"

// metrics are the counters every rate_limit filter of a server shares,
// labelled by the middleware's path in the configuration.
type metrics struct {
	reg         prometheus.Registerer
	requests    *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_ratelimit_requests_total",
			Help: "Requests seen by rate_limit filters, by outcome (allowed, limited).",
		}, []string{"middleware", "outcome"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_ratelimit_store_errors_total",
			Help: "Requests whose rate-limit store (Redis) failed or was known to be down; on_store_error decided them.",
		}, []string{"middleware"}),
	}
	if err := reg.Register(m.requests); err != nil {
		return nil, err
	}
	if err := reg.Register(m.storeErrors); err != nil {
		reg.Unregister(m.requests)
		return nil, err
	}
	return m, nil
}

// Close unregisters the counters: the configuration has no rate limit left.
func (m *metrics) Close() error {
	m.reg.Unregister(m.requests)
	m.reg.Unregister(m.storeErrors)
	return nil
}

// series are one filter's counters, resolved once so that a request
// only adds to an atomic.
type series struct {
	m                             *metrics
	path                          string
	allowed, limited, storeErrors prometheus.Counter
}

func (m *metrics) series(path string) *series {
	return &series{
		m:           m,
		path:        path,
		allowed:     m.requests.WithLabelValues(path, "allowed"),
		limited:     m.requests.WithLabelValues(path, "limited"),
		storeErrors: m.storeErrors.WithLabelValues(path),
	}
}

// Close drops the filter's series: its entry left the configuration.
func (s *series) Close() error {
	s.m.requests.DeleteLabelValues(s.path, "allowed")
	s.m.requests.DeleteLabelValues(s.path, "limited")
	s.m.storeErrors.DeleteLabelValues(s.path)
	return nil
}
