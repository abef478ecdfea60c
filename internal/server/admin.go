package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
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
	a := &adminServer{addr: want, ln: ln, srv: &http.Server{Handler: s.adminMux(), ReadHeaderTimeout: 10 * time.Second}}
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

func (s *Server) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
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
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		snap := s.snap.Load()
		st := map[string]any{
			"version":     Version,
			"uptime_s":    int64(time.Since(s.startedAt).Seconds()),
			"config_hash": snap.Config.Hash,
			"reloads":     s.reloads.Load(),
		}
		if lr := s.lastReload.Load(); lr != nil {
			st["last_reload"] = lr
		}
		writeJSON(w, http.StatusOK, st)
	})
	s.addCacheAdmin(mux)
	return mux
}

// Version is set by the command at build time.
var Version = "dev"

type targetStatus struct {
	URL      string `json:"url"`
	Address  string `json:"address"`
	Weight   int    `json:"weight"`
	Backup   bool   `json:"backup,omitempty"`
	State    string `json:"state"` // up | down (active check) | ejected (passive)
	InFlight int64  `json:"in_flight"`
	// Failures are those counted toward passive ejection in the current window.
	Failures int `json:"failures"`
	// LatencyMS is the ewma policy's current estimate, when the pool uses it.
	LatencyMS *float64   `json:"latency_ms,omitempty"`
	LastCheck *checkInfo `json:"last_check,omitempty"`
}

type checkInfo struct {
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail"`
}

type poolStatus struct {
	Name    string         `json:"name"`
	Balance string         `json:"balance"`
	Targets []targetStatus `json:"targets"`
}

func (s *Server) upstreamsStatus() map[string]any {
	snap := s.snap.Load()
	out := []poolStatus{}
	for name, p := range snap.Pools {
		ps := poolStatus{Name: name, Balance: snap.Config.Upstreams[name].Balance}
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
					InFlight: t.InFlight.Load(),
					Failures: t.RecentFailures(),
				}
				if ewma != nil && !ts.Backup {
					ms := float64(ewma.Estimate(t)) / float64(time.Millisecond)
					ts.LatencyMS = &ms
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

func targetState(t *upstream.Target) string {
	switch {
	case t.Down():
		return "down"
	case t.Ejected():
		return "ejected"
	default:
		return "up"
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		return
	}
}
