package config

import (
	"strings"
	"time"
)

// Defaults for fields left out of the file. A field written as 0 keeps its
// 0: only absence (or null) brings the default in.
const (
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultBodyReadTimeout   = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultWriteTimeout      = 60 * time.Second
	DefaultBodyRateWindow    = 10 * time.Second
	DefaultQueueTimeout      = 5 * time.Second
	DefaultAccessLogOutput   = "stderr"
	DefaultBalance           = "round_robin"
	DefaultHashKey           = "client_ip"
	DefaultWeight            = 1
	DefaultConnectTimeout    = 5 * time.Second
	DefaultResponseHeader    = 60 * time.Second
	DefaultUpstreamIdle      = 90 * time.Second
	DefaultTransport         = "h1"
	DefaultMaxIdlePerTarget  = 256
	DefaultResolveInterval   = 30 * time.Second
	DefaultRetryAttempts     = 1
	DefaultRetryBudget       = 0.2 // 20%
	DefaultMinRetriesPerSec  = 3
	DefaultHealthPath        = "/healthz"
	DefaultHealthInterval    = 2 * time.Second
	DefaultHealthTimeout     = 1 * time.Second // but at most half the interval
	DefaultHealthFall        = 3
	DefaultHealthRise        = 2
	DefaultExpectStatus      = "200-399"
	DefaultPassiveMaxFails   = 3
	DefaultPassiveWindow     = 10 * time.Second
	DefaultPassiveEject      = 30 * time.Second
	DefaultRespondStatus     = 200
	DefaultRedirectStatus    = 308
)

// applyDefaults fills the fields the file left out, and normalizes the
// values whose case does not matter so that the rest of the program can
// compare them as they are.
func applyDefaults(c *Config, pos Positions) {
	def := func(path string, set func()) {
		if !pos.Has(path) {
			set()
		}
	}
	def("shutdown_timeout", func() { c.ShutdownTimeout = DefaultShutdownTimeout })
	def("limits.read_header_timeout", func() { c.Limits.ReadHeaderTimeout = DefaultReadHeaderTimeout })
	def("limits.idle_timeout", func() { c.Limits.IdleTimeout = DefaultIdleTimeout })
	def("limits.body_read_timeout", func() { c.Limits.BodyReadTimeout = DefaultBodyReadTimeout })
	def("limits.max_header_bytes", func() { c.Limits.MaxHeaderBytes = DefaultMaxHeaderBytes })
	def("limits.write_timeout", func() { c.Limits.WriteTimeout = DefaultWriteTimeout })
	def("limits.body_rate_window", func() { c.Limits.BodyRateWindow = DefaultBodyRateWindow })
	def("hide_response_headers", func() { c.HideResponseHeaders = DefaultHideResponseHeaders() })
	def("access_log.enabled", func() { c.AccessLog.Enabled = true })
	def("access_log.output", func() { c.AccessLog.Output = DefaultAccessLogOutput })
	def("metrics.enabled", func() { c.Metrics.Enabled = true })
	def("access_log.format", func() { c.AccessLog.Format = "json" })
	def("request_id.enabled", func() { c.RequestID.Enabled = true })
	def("request_id.header", func() { c.RequestID.Header = "X-Request-ID" })
	def("request_id.trust_incoming", func() { c.RequestID.TrustIncoming = true })
	if t := c.Tracing; t != nil {
		def("tracing.sample_ratio", func() { t.SampleRatio = 1 })
		def("tracing.service_name", func() { t.ServiceName = "gatehouse" })
	}
	if r := c.Cluster.Redis; r != nil {
		def("cluster.redis.dial_timeout", func() { r.DialTimeout = time.Second })
		def("cluster.redis.timeout", func() { r.Timeout = 100 * time.Millisecond })
		def("cluster.redis.prefix", func() { r.Prefix = "gatehouse:" })
	}

	for name, u := range c.Upstreams {
		p := keyPath("upstreams", name)
		def(fieldPath(p, "balance"), func() { u.Balance = DefaultBalance })
		if u.Balance == "hash" {
			def(fieldPath(p, "hash_key"), func() { u.HashKey = DefaultHashKey })
		}
		for i := range u.Targets {
			def(fieldPath(indexPath(fieldPath(p, "targets"), i), "weight"), func() { u.Targets[i].Weight = DefaultWeight })
		}
		for i := range u.Backup {
			def(fieldPath(indexPath(fieldPath(p, "backup"), i), "weight"), func() { u.Backup[i].Weight = DefaultWeight })
		}
		tp := fieldPath(p, "timeouts")
		def(fieldPath(tp, "connect"), func() { u.Timeouts.Connect = DefaultConnectTimeout })
		def(fieldPath(tp, "response_header"), func() { u.Timeouts.ResponseHeader = DefaultResponseHeader })
		def(fieldPath(tp, "idle"), func() { u.Timeouts.Idle = DefaultUpstreamIdle })

		def(fieldPath(p, "transport"), func() { u.Transport = DefaultTransport })
		def(fieldPath(p, "max_idle_per_target"), func() { u.MaxIdlePerTarget = DefaultMaxIdlePerTarget })
		def(fieldPath(p, "queue.timeout"), func() { u.Queue.Timeout = DefaultQueueTimeout })
		def(fieldPath(p, "resolve_interval"), func() { u.ResolveInterval = DefaultResolveInterval })

		rp := fieldPath(p, "retries")
		def(fieldPath(rp, "attempts"), func() { u.Retries.Attempts = DefaultRetryAttempts })
		def(fieldPath(rp, "on"), func() { u.Retries.On = []RetryOn{{Kind: RetryConnect}} })
		def(fieldPath(rp, "budget"), func() { u.Retries.Budget = DefaultRetryBudget })
		def(fieldPath(rp, "min_retries_per_second"), func() { u.Retries.MinRetriesPerSecond = DefaultMinRetriesPerSec })

		// Health checks are off unless their section is written; a written
		// section gets defaults for what it leaves out.
		if a := u.Health.Active; a != nil {
			ap := fieldPath(p, "health.active")
			def(fieldPath(ap, "path"), func() { a.Path = DefaultHealthPath })
			def(fieldPath(ap, "interval"), func() { a.Interval = DefaultHealthInterval })
			// A default must not contradict what is written: with
			// interval: 500ms, a 1s timeout would be an error.
			def(fieldPath(ap, "timeout"), func() { a.Timeout = min(DefaultHealthTimeout, a.Interval/2) })
			def(fieldPath(ap, "fall"), func() { a.Fall = DefaultHealthFall })
			def(fieldPath(ap, "rise"), func() { a.Rise = DefaultHealthRise })
			def(fieldPath(ap, "expect_status"), func() { a.ExpectStatus, _ = ParseStatusRanges(DefaultExpectStatus) })
		}
		if ps := u.Health.Passive; ps != nil {
			pp := fieldPath(p, "health.passive")
			def(fieldPath(pp, "max_fails"), func() { ps.MaxFails = DefaultPassiveMaxFails })
			def(fieldPath(pp, "window"), func() { ps.Window = DefaultPassiveWindow })
			def(fieldPath(pp, "eject"), func() { ps.Eject = DefaultPassiveEject })
		}
	}

	for si := range c.Sites {
		s := &c.Sites[si]
		sp := indexPath("sites", si)
		def(fieldPath(sp, "hosts"), func() { s.Hosts = []string{"*"} })
		for i, h := range s.Hosts {
			s.Hosts[i] = normalizeHost(h)
		}
		for ri := range s.Routes {
			r := &s.Routes[ri]
			rp := indexPath(fieldPath(sp, "routes"), ri)
			for i, m := range r.Match.Methods {
				r.Match.Methods[i] = strings.ToUpper(m)
			}
			if r.Respond != nil {
				def(fieldPath(rp, "respond.status"), func() { r.Respond.Status = DefaultRespondStatus })
			}
			if r.Redirect != nil {
				def(fieldPath(rp, "redirect.status"), func() { r.Redirect.Status = DefaultRedirectStatus })
			}
		}
	}
}

// DefaultHideResponseHeaders are the backend fields that name the software
// or framework behind gatehouse (Server and Via are always handled).
func DefaultHideResponseHeaders() []string {
	return []string{"X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version", "X-Runtime", "X-Generator",
		"X-Drupal-Cache", "X-Drupal-Dynamic-Cache", "X-Varnish", "X-Backend-Server", "X-Upstream", "X-Served-By"}
}

// normalizeHost lower-cases a host pattern and drops the brackets of an
// IPv6 literal, so that it compares equal to the host part of a request's
// Host header as net.SplitHostPort returns it.
func normalizeHost(h string) string {
	h = strings.ToLower(h)
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	return h
}
