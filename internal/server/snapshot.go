// Package server wires gatehouse together: it compiles a configuration into
// an immutable snapshot, swaps snapshots atomically on reload, and runs the
// listeners, the admin endpoint and graceful shutdown.
package server

import (
	"net"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/observe/metrics"
	"github.com/gatehouse-proxy/gatehouse/internal/proxy"
	"github.com/gatehouse-proxy/gatehouse/internal/route"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// Snapshot is everything a request needs, built once per configuration and
// never modified: in-flight requests keep the one they started with.
type Snapshot struct {
	Config    *config.Config
	Router    *route.Router
	Pools     map[string]*upstream.Pool
	Forwarder *proxy.Forwarder
	Limits    h1.Limits
	// Chains are the routes' filter chains, [site][route]; nil for a route
	// without middleware, which goes straight to its action.
	Chains [][]filter.Handler
	// Filters is what the filters keep across reloads.
	Filters *filter.State
	// RequestID is the request_id setting; Header is nil when it is off.
	RequestID requestIDSetting

	// routeMetrics are the routes' pre-resolved series, [site][route], and
	// unmatched those of requests no route took; nil with metrics off.
	routeMetrics [][]*metrics.Route
	unmatched    *metrics.Route
}

type requestIDSetting struct {
	Header []byte
	Name   string // Header as a string, for lookups that must not convert
	Trust  bool
}

// buildSnapshot compiles cfg. backends holds the previous snapshot's backends
// by key; the ones reused or created are returned in used.
// prevFilters is the previous snapshot's filter state (nil at start);
// env gives the middleware factories, logger and metrics registry.
func buildSnapshot(cfg *config.Config, backends map[string]*upstream.Backend, prevFilters *filter.State, env *buildEnv) (*Snapshot, map[string]*upstream.Backend, error) {
	used := map[string]*upstream.Backend{}
	pools := map[string]*upstream.Pool{}
	for name, uc := range cfg.Upstreams {
		p, err := buildPool(cfg, name, uc, backends, used)
		if err != nil {
			return nil, nil, err
		}
		pools[name] = p
	}
	rt, err := route.Compile(cfg, pools)
	if err != nil {
		return nil, nil, err
	}
	s := &Snapshot{
		Config: cfg,
		Router: rt,
		Pools:  pools,
		Forwarder: &proxy.Forwarder{TrustedProxies: cfg.TrustedProxies, Log: env.log,
			Hide: proxy.NewHide(cfg.HideResponseHeaders, cfg.SendVia)},
		Limits: h1.Limits{
			ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
			IdleTimeout:       cfg.Limits.IdleTimeout,
			MaxHeaderBytes:    int(cfg.Limits.MaxHeaderBytes),
			MaxBodyBytes:      int64(cfg.Limits.MaxBodyBytes),
			BodyReadTimeout:   cfg.Limits.BodyReadTimeout,
			WriteTimeout:      cfg.Limits.WriteTimeout,
			MinBodyRate:       int64(cfg.Limits.MinBodyRate),
			BodyRateWindow:    cfg.Limits.BodyRateWindow,
		},
		Filters: filter.NewState(prevFilters),
	}
	if cfg.RequestID.Enabled {
		s.RequestID = requestIDSetting{Header: []byte(cfg.RequestID.Header), Name: cfg.RequestID.Header, Trust: cfg.RequestID.TrustIncoming}
	}
	final := func(r *route.Route) filter.Handler { return &finalHandler{snap: s, r: r} }
	if s.Chains, err = buildChains(cfg, rt, final, env, s.Filters); err != nil {
		s.Filters.Discard()
		return nil, nil, err
	}
	return s, used, nil
}

// hostPort adds the scheme's default port when the URL has none.
func hostPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if scheme == "https" {
		return net.JoinHostPort(strings.Trim(host, "[]"), "443")
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), "80")
}
