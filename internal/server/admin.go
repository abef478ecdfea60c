package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer is the operator's endpoint (net/http is right here: it is off
// the forwarding path and wants routing, JSON and no tuning).
type adminServer struct {
	addr string
	srv  *http.Server
	ln   net.Listener
}

func (s *Server) syncAdmin(cfg *config.Config) error {
	want := ""
	if cfg.Admin != nil {
		want = cfg.Admin.Addr
	}
	if s.admin != nil && s.admin.addr == want {
		return nil
	}
	if s.admin != nil {
		s.admin.close()
		s.admin = nil
	}
	if want == "" {
		return nil
	}
	ln, err := net.Listen("tcp", want)
	if err != nil {
		return err
	}
	a := &adminServer{addr: want, ln: ln, srv: &http.Server{
		Handler:           s.adminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Bounded, so that idle dashboards and scrapers cannot pile up.
		IdleTimeout: 2 * time.Minute,
	}}
	go a.srv.Serve(ln)
	s.admin = a
	s.log.Info("admin listening", "addr", ln.Addr().String())
	return nil
}

func (a *adminServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a.srv.Shutdown(ctx)
}

// adminHandler is the admin mux behind the access checks (admin_auth.go).
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{ErrorLog: nil}))
	mux.HandleFunc("POST /api/v1/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Reload(); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"status": "rejected", "errors": errorLines(err)})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "reloaded"})
	})
	mux.HandleFunc("GET /api/v1/upstreams", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.upstreamsStatus())
	})
	mux.HandleFunc("POST /api/v1/upstreams/{pool}/targets/{target}/drain", func(w http.ResponseWriter, r *http.Request) {
		s.drainTarget(w, r, true)
	})
	mux.HandleFunc("POST /api/v1/upstreams/{pool}/targets/{target}/enable", func(w http.ResponseWriter, r *http.Request) {
		s.drainTarget(w, r, false)
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.status())
	})
	mux.HandleFunc("GET /api/v1/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, redactedConfig(s.snap.Load().Config))
	})
	mux.HandleFunc("GET /api/v1/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.stats())
	})
	mux.Handle("GET /{$}", dashboardHandler())
	mux.Handle("GET /dashboard/", dashboardHandler())
	return s.adminAccess(mux)
}

// Version is set by the command at build time.
var Version = "dev"

type statusInfo struct {
	Version        string        `json:"version"`
	StartedAt      time.Time     `json:"started_at"`
	UptimeS        int64         `json:"uptime_s"`
	ConfigFile     string        `json:"config_file,omitempty"`
	ConfigHash     string        `json:"config_hash"`
	ConfigLoadedAt time.Time     `json:"config_loaded_at"`
	Reloads        int64         `json:"reloads"`
	ReloadFailures int64         `json:"reload_failures"`
	LastReload     *reloadStatus `json:"last_reload,omitempty"`
	MetricsEnabled bool          `json:"metrics_enabled"`
}

func (s *Server) status() statusInfo {
	snap := s.snap.Load()
	return statusInfo{
		Version:        Version,
		StartedAt:      s.startedAt.UTC(),
		UptimeS:        int64(time.Since(s.startedAt).Seconds()),
		ConfigFile:     snap.Config.File,
		ConfigHash:     snap.Config.Hash,
		ConfigLoadedAt: time.Unix(0, s.loadedAt.Load()).UTC(),
		Reloads:        s.reloads.Load(),
		ReloadFailures: s.reloadFailures.Load(),
		LastReload:     s.lastReload.Load(),
		MetricsEnabled: snap.Config.Metrics.Enabled,
	}
}

type targetStatus struct {
	URL      string `json:"url"`
	Address  string `json:"address"`
	Weight   int    `json:"weight"`
	Backup   bool   `json:"backup,omitempty"`
	State    string `json:"state"` // up | down (active check) | ejected (passive) | drained (admin)
	Drained  bool   `json:"drained"`
	InFlight int64  `json:"in_flight"`
	// Failures are those counted toward passive ejection in the current window.
	Failures int `json:"failures"`
	// LatencyMS is the ewma policy's current estimate, when the pool uses it.
	LatencyMS *float64 `json:"latency_ms,omitempty"`
	// AvgLatencyMS is the mean time to response head over the last 10s
	// (metrics on, and traffic in that time).
	AvgLatencyMS *float64   `json:"avg_latency_ms,omitempty"`
	LastCheck    *checkInfo `json:"last_check,omitempty"`
}

type checkInfo struct {
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail"`
}

type poolStatus struct {
	Name    string         `json:"name"`
	Balance string         `json:"balance"`
	Health  string         `json:"health"` // active, passive, active+passive or none: how targets are judged
	Targets []targetStatus `json:"targets"`
}

func (s *Server) upstreamsStatus() map[string]any {
	snap := s.snap.Load()
	out := []poolStatus{}
	for name, p := range snap.Pools {
		uc := snap.Config.Upstreams[name]
		ps := poolStatus{Name: name, Balance: uc.Balance, Health: healthKind(uc), Targets: []targetStatus{}}
		targets, policy := p.Current()
		ewma, _ := policy.(*upstream.EWMA)
		for i, list := range [][]*upstream.Target{targets, p.Backup} {
			for _, t := range list {
				ts := targetStatus{
					URL:      t.URL.String(),
					Address:  t.Addr,
					Weight:   t.Weight,
					Backup:   i == 1,
					State:    targetState(t),
					Drained:  t.Drained(),
					InFlight: t.InFlight.Load(),
					Failures: t.RecentFailures(),
				}
				if ewma != nil && !ts.Backup {
					ms := float64(ewma.Estimate(t)) / float64(time.Millisecond)
					ts.LatencyMS = &ms
				}
				if ms, ok := s.monitor.sampler.TargetLatency(name, t.Addr); ok {
					ts.AvgLatencyMS = &ms
				}
				if at, ok, note := t.LastCheck(); !at.IsZero() {
					ts.LastCheck = &checkInfo{At: at, OK: ok, Detail: note}
				}
				ps.Targets = append(ps.Targets, ts)
			}
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return map[string]any{"upstreams": out}
}

func healthKind(uc *config.Upstream) string {
	switch a, p := uc.Health.Active != nil, uc.Health.Passive != nil; {
	case a && p:
		return "active+passive"
	case a:
		return "active"
	case p:
		return "passive"
	}
	return "none"
}

// targetState is what keeps a target out of rotation, if anything: the
// active checks first (the strongest evidence), then passive ejection, then
// an operator's drain.
func targetState(t *upstream.Target) string {
	switch {
	case t.Down():
		return "down"
	case t.Ejected():
		return "ejected"
	case t.Drained():
		return "drained"
	default:
		return "up"
	}
}

// drainTarget takes a target out of rotation (on) or puts it back. The
// target is named by its address (host:port, as /api/v1/upstreams gives it).
func (s *Server) drainTarget(w http.ResponseWriter, r *http.Request, on bool) {
	name, addr := r.PathValue("pool"), r.PathValue("target")
	snap := s.snap.Load()
	p := snap.Pools[name]
	if p == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no upstream pool of that name"})
		return
	}
	if s.drains.setDrained(name, p, addr, on) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "the pool has no target of that address (use the address /api/v1/upstreams shows, like 127.0.0.1:9001)"})
		return
	}
	var inFlight int64
	forTargets(p, func(t *upstream.Target) {
		if t.Addr == addr {
			inFlight = t.InFlight.Load()
			if on {
				// In-flight requests finish on their connections; idle
				// ones would only linger until the backend drops them.
				t.Transport.CloseIdle(false)
			}
		}
	})
	action := "enabled"
	if on {
		action = "drained"
		s.log.Info("target drained by the admin API", "upstream", name, "target", addr)
	} else {
		s.log.Info("target enabled by the admin API", "upstream", name, "target", addr)
	}
	writeJSON(w, http.StatusOK, map[string]any{"upstream": name, "target": addr, "status": action, "in_flight": inFlight})
}

// stats is what the dashboard polls: per-second samples and recent errors.
func (s *Server) stats() map[string]any {
	return map[string]any{
		"metrics_enabled": s.snap.Load().Config.Metrics.Enabled,
		"samples":         s.monitor.sampler.Samples(),
		"recent_errors":   s.monitor.requests.Errors.Recent(),
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // a client gone mid-answer is nothing to report
}
