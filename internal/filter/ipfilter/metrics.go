package ipfilter

import "github.com/prometheus/client_golang/prometheus"

// metrics is the refusal counter every ip_filter of a server shares,
// labelled by the middleware's path in the configuration.
type metrics struct {
	reg     prometheus.Registerer
	refused *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{reg: reg, refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_ipfilter_refused_total",
		Help: "Requests refused (403) by ip_filter.",
	}, []string{"middleware"})}
	if err := reg.Register(m.refused); err != nil {
		return nil, err
	}
	return m, nil
}

// Close unregisters the counter: the configuration has no ip_filter left.
func (m *metrics) Close() error {
	m.reg.Unregister(m.refused)
	return nil
}

// series is one filter's counter, resolved once.
type series struct {
	m       *metrics
	path    string
	refused prometheus.Counter
}

// Close drops the filter's series: its entry left the configuration.
func (s *series) Close() error {
	s.m.refused.DeleteLabelValues(s.path)
	return nil
}
