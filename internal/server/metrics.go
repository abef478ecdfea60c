package server

import (
	"context"
	"strconv"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/observe/metrics"
	"github.com/gatehouse-proxy/gatehouse/internal/proxy"
	"github.com/gatehouse-proxy/gatehouse/internal/route"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// monitor is the server's part of metrics: the request families, the
// dashboard's sampler and the goroutine that ticks it.
type monitor struct {
	requests *metrics.Requests
	sampler  *metrics.Sampler
	cancel   context.CancelFunc
	done     chan struct{}
}

// newMonitor registers every family on reg: the request metrics, what is
// read from the server when scraped, and the Go runtime and process ones.
func newMonitor(s *Server, reg *prometheus.Registry) *monitor {
	m := &monitor{requests: metrics.NewRequests(reg)}
	m.sampler = metrics.NewSampler(m.requests)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &scrapeCollector{s: s})
	return m
}

// start ticks the sampler once a second until stop.
func (m *monitor) start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				m.sampler.Tick(now)
			}
		}
	}()
}

func (m *monitor) stop() {
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
}

// instrument gives a snapshot, before it serves, the pre-resolved series of
// its routes and the stats of its pools (when metrics are enabled).
func (m *monitor) instrument(snap *Snapshot) {
	cfg := snap.Config
	if !cfg.Metrics.Enabled {
		return
	}
	for name, p := range snap.Pools {
		retries, latency := m.requests.Pool(name)
		p.Stats = &upstream.Stats{Retries: retries, TargetLatency: func(addr string) upstream.DurationObserver { return latency(addr) }}
	}
	snap.routeMetrics = make([][]*metrics.Route, len(cfg.Sites))
	for si := range cfg.Sites {
		site := siteLabel(&cfg.Sites[si])
		snap.routeMetrics[si] = make([]*metrics.Route, len(cfg.Sites[si].Routes))
		for ri := range cfg.Sites[si].Routes {
			snap.routeMetrics[si][ri] = m.requests.Route(site, routeName(si, ri), routePools(&cfg.Sites[si].Routes[ri]))
		}
	}
	snap.unmatched = m.requests.Route("", "", nil)
}

// siteLabel names a site in metrics by its first host ("*" for any).
func siteLabel(s *config.Site) string {
	if len(s.Hosts) == 0 {
		return "*"
	}
	return s.Hosts[0]
}

// routeName is the route's name as route.Compile gives it.
func routeName(site, index int) string {
	return "sites[" + strconv.Itoa(site) + "].routes[" + strconv.Itoa(index) + "]"
}

// routePools lists the pools a route may forward to.
func routePools(rc *config.Route) []string {
	if rc.Upstream != "" {
		return []string{rc.Upstream}
	}
	var out []string
	for _, e := range rc.Split {
		out = append(out, e.Upstream)
	}
	return out
}

// observe counts one finished exchange (the handler's metrics hook). r is
// nil when no route matched; lf is the filter chain's fields when the route
// has one.
func (snap *Snapshot) observe(r *route.Route, req *exchange.Request, w exchange.ResponseWriter, res *proxy.Result, lf *filter.LogFields, start time.Time) {
	rm := snap.unmatched
	if r != nil && snap.routeMetrics != nil {
		rm = snap.routeMetrics[r.Site][r.Index]
	}
	if rm == nil {
		return // metrics off
	}
	x := metrics.Exchange{Method: req.Method, Path: req.Path, Status: res.Status, Start: start, Duration: time.Since(start)}
	if res.Pool != nil {
		x.Pool = res.Pool.Name
	}
	if res.Target != nil {
		x.Target = res.Target.Addr
	}
	if lf != nil {
		x.Pool, x.Target = lf.Pool, lf.Upstream
	}
	x.BytesIn = req.ContentLength
	if x.BytesIn < 0 {
		if b, ok := req.Body.(interface{ Received() int64 }); ok {
			x.BytesIn = b.Received()
		}
	}
	_, x.BytesOut = w.Written()
	rm.Observe(&x)
}

// scrapeCollector reads, when /metrics is scraped, what the server knows
// anyway: connections, targets' state and checks, reloads. Requests pay
// nothing for these.
type scrapeCollector struct{ s *Server }

var (
	connsDesc = prometheus.NewDesc("gatehouse_listener_connections",
		"Client connections open, by listener address.", []string{"listener"}, nil)
	parkedDesc = prometheus.NewDesc("gatehouse_listener_connections_parked",
		"Idle keep-alive connections among them that wait without a goroutine (idle for over a second).", []string{"listener"}, nil)
	targetUpDesc = prometheus.NewDesc("gatehouse_upstream_target_up",
		"1 when the target may be given requests (healthy, not ejected, not drained), else 0.", []string{"upstream", "target"}, nil)
	targetStateDesc = prometheus.NewDesc("gatehouse_upstream_target_state",
		"1 for the state the target is in: up, down (active checks), ejected (passive health) or drained (admin).", []string{"upstream", "target", "state"}, nil)
	targetInFlightDesc = prometheus.NewDesc("gatehouse_upstream_target_in_flight",
		"Requests being forwarded to the target now.", []string{"upstream", "target"}, nil)
	checksDesc = prometheus.NewDesc("gatehouse_upstream_health_checks_total",
		"Active health checks of the target, by result (pass, fail).", []string{"upstream", "target", "result"}, nil)
	reloadsDesc = prometheus.NewDesc("gatehouse_config_reloads_total",
		"Configuration reloads, by result (success, failure).", []string{"result"}, nil)
	lastReloadOKDesc = prometheus.NewDesc("gatehouse_config_last_reload_successful",
		"1 when the last reload succeeded (or none was tried), 0 when it was rejected.", nil, nil)
	lastReloadTimeDesc = prometheus.NewDesc("gatehouse_config_last_reload_success_timestamp_seconds",
		"Unix time the running configuration was loaded.", nil, nil)
	logDroppedDesc = prometheus.NewDesc("gatehouse_access_log_dropped_total",
		"Access log lines lost to a full queue (since the log was last opened with new settings).", nil, nil)
	infoDesc = prometheus.NewDesc("gatehouse_build_info",
		"Always 1; the labels say which gatehouse runs and with which configuration.", []string{"version", "config_hash"}, nil)
)

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connsDesc, parkedDesc, targetUpDesc, targetStateDesc, targetInFlightDesc, checksDesc,
		reloadsDesc, lastReloadOKDesc, lastReloadTimeDesc, logDroppedDesc, infoDesc} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.mu.Lock()
	for addr, l := range s.listeners {
		l.mu.Lock()
		n := len(l.conns)
		l.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(n), addr)
		ch <- prometheus.MustNewConstMetric(parkedDesc, prometheus.GaugeValue, float64(l.srv.Load().Parked()), addr)
	}
	s.mu.Unlock()
	snap := s.snap.Load()
	for name, p := range snap.Pools {
		targets, _ := p.Current()
		for _, list := range [][]*upstream.Target{targets, p.Backup} {
			for _, t := range list {
				up := 0.0
				if t.Available() {
					up = 1
				}
				ch <- prometheus.MustNewConstMetric(targetUpDesc, prometheus.GaugeValue, up, name, t.Addr)
				state := targetState(t)
				for _, st := range []string{"up", "down", "ejected", "drained"} {
					v := 0.0
					if st == state {
						v = 1
					}
					ch <- prometheus.MustNewConstMetric(targetStateDesc, prometheus.GaugeValue, v, name, t.Addr, st)
				}
				ch <- prometheus.MustNewConstMetric(targetInFlightDesc, prometheus.GaugeValue, float64(t.InFlight.Load()), name, t.Addr)
				if passed, failed := t.CheckCounts(); passed+failed > 0 {
					ch <- prometheus.MustNewConstMetric(checksDesc, prometheus.CounterValue, float64(passed), name, t.Addr, "pass")
					ch <- prometheus.MustNewConstMetric(checksDesc, prometheus.CounterValue, float64(failed), name, t.Addr, "fail")
				}
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(s.reloads.Load()), "success")
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(s.reloadFailures.Load()), "failure")
	ok := 1.0
	if lr := s.lastReload.Load(); lr != nil && !lr.OK {
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(lastReloadOKDesc, prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(lastReloadTimeDesc, prometheus.GaugeValue, float64(s.loadedAt.Load())/1e9)
	if al := s.accessLog.Load(); al != nil {
		ch <- prometheus.MustNewConstMetric(logDroppedDesc, prometheus.CounterValue, float64(al.Dropped()))
	}
	ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, Version, snap.Config.Hash)
}
