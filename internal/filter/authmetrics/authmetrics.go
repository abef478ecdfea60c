// Package authmetrics counts what the authentication filters decide, for
// /metrics: gatehouse_auth_total{middleware, result}, where result is
// "allowed" or the reason of a refusal as the access log's blocked field
// gives it (bad_credentials, expired, unavailable, 401, ...). A rise in
// refusals is how a guessing attack or a broken identity provider shows.
package authmetrics

import (
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/prometheus/client_golang/prometheus"
)

// Counter counts one filter's decisions; a nil Counter counts nothing
// (builds without a metrics registry, as in unit tests).
type Counter struct {
	name    string
	vec     *prometheus.CounterVec
	allowed prometheus.Counter
}

// vec is the collector, registered once per registry and kept across
// reloads; a reload that drops every authentication filter unregisters it.
type vec struct {
	*prometheus.CounterVec
	reg prometheus.Registerer
}

func (v *vec) Close() error { v.reg.Unregister(v.CounterVec); return nil }

// For returns the counter of middleware name (basic_auth, jwt, ...).
func For(b *filter.Build, name string) (*Counter, error) {
	if b.Metrics == nil {
		return nil, nil
	}
	v, err := filter.Keep(b.State, "auth.metrics", func() (*vec, error) {
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_auth_total",
			Help: "Requests checked by authentication middleware, by middleware and result (allowed, or the refusal's reason).",
		}, []string{"middleware", "result"})
		if err := b.Metrics.Register(cv); err != nil {
			return nil, err
		}
		return &vec{CounterVec: cv, reg: b.Metrics}, nil
	})
	if err != nil {
		return nil, err
	}
	return &Counter{name: name, vec: v.CounterVec, allowed: v.WithLabelValues(name, "allowed")}, nil
}

// Allowed counts a request let through.
func (c *Counter) Allowed() {
	if c != nil {
		c.allowed.Inc()
	}
}

// Refused counts a request the filter answered itself; blocked is the
// access log's blocked field ("jwt:expired"), whose part after the
// filter's name is the result. An answer that refused nothing (oidc's
// completed login, a redirect) counts as "answered".
func (c *Counter) Refused(blocked string) {
	if c == nil {
		return
	}
	result := strings.TrimPrefix(blocked, c.name+":")
	if result == "" {
		result = "answered"
	}
	c.vec.WithLabelValues(c.name, result).Inc()
}
