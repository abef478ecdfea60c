package cache

import (
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes counted and logged (x.Log.Cache).
const (
	resHit         = "hit"         // fresh entry served
	resStale       = "stale"       // stale entry served (stale-while-revalidate, stale-if-error, max-stale)
	resMiss        = "miss"        // forwarded, nothing usable stored
	resRevalidated = "revalidated" // stored entry confirmed by a 304
	resCollapsed   = "collapsed"   // waited for another request's response, served it
	resBypass      = "bypass"      // not a request the cache can answer
)

// collectors are the cache's metrics, registered once per registry and
// kept across reloads.
type collectors struct {
	reg      prometheus.Registerer
	requests *prometheus.CounterVec
	bytes    *prometheus.GaugeVec
}

func (c *collectors) Close() error {
	c.reg.Unregister(c.requests)
	c.reg.Unregister(c.bytes)
	return nil
}

type counters struct {
	hit, stale, miss, revalidated, collapsed, bypass prometheus.Counter
	bytes                                            prometheus.Gauge
}

func (m *counters) init(b *filter.Build, name string) error {
	reg := b.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	c, err := filter.Keep(b.State, "cache.metrics", func() (*collectors, error) {
		c := &collectors{
			reg: reg,
			requests: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "gatehouse_cache_requests_total",
				Help: "Requests seen by cache middleware, by cache and outcome (hit, stale, miss, revalidated, collapsed, bypass).",
			}, []string{"cache", "result"}),
			bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "gatehouse_cache_stored_bytes",
				Help: "Bytes counted against max_bytes by each cache at the last store.",
			}, []string{"cache"}),
		}
		if err := reg.Register(c.requests); err != nil {
			return nil, err
		}
		if err := reg.Register(c.bytes); err != nil {
			reg.Unregister(c.requests)
			return nil, err
		}
		return c, nil
	})
	if err != nil {
		return err
	}
	l := func(r string) prometheus.Counter { return c.requests.WithLabelValues(name, r) }
	m.hit, m.stale, m.miss = l(resHit), l(resStale), l(resMiss)
	m.revalidated, m.collapsed, m.bypass = l(resRevalidated), l(resCollapsed), l(resBypass)
	m.bytes = c.bytes.WithLabelValues(name)
	return nil
}

func (m *counters) count(r string) {
	switch r {
	case resHit:
		m.hit.Inc()
	case resStale:
		m.stale.Inc()
	case resMiss:
		m.miss.Inc()
	case resRevalidated:
		m.revalidated.Inc()
	case resCollapsed:
		m.collapsed.Inc()
	case resBypass:
		m.bypass.Inc()
	}
}
