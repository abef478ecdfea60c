package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/apikey"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/basicauth"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/botfilter"
	cachefilter "github.com/gatehouse-proxy/gatehouse/internal/filter/cache"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/compress"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/forwardauth"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/ipfilter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/jwtauth"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/oidc"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/ratelimit"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/waf"
	"github.com/gatehouse-proxy/gatehouse/internal/route"
	"github.com/prometheus/client_golang/prometheus"
)

// factories are the middleware this build knows, by the name written in
// the configuration. It is never modified.
var factories = map[string]filter.Factory{
	"cache":        cachefilter.New,
	"rate_limit":   ratelimit.New,
	"ip_filter":    ipfilter.New,
	"compress":     compress.New,
	"basic_auth":   basicauth.New,
	"jwt":          jwtauth.New,
	"forward_auth": forwardauth.New,
	"api_key":      apikey.New,
	"oidc":         oidc.New,
	"waf":          waf.New,
	"bot_filter":   botfilter.New,
}

// buildEnv is what a snapshot build needs from the server.
type buildEnv struct {
	known   map[string]filter.Factory
	log     *slog.Logger
	metrics prometheus.Registerer
}

// buildChains builds the filter chain of every route that has middleware
// (the site's entries first, then the route's): chains[site][route], nil
// where a route has none. Site filters are built once per site and shared
// by its routes, so that a site-wide limit is one limit.
func buildChains(cfg *config.Config, rt *route.Router, final func(*route.Route) filter.Handler, env *buildEnv, state *filter.State) ([][]filter.Handler, error) {
	chains := make([][]filter.Handler, len(cfg.Sites))
	var errs config.Errors
	siteFilters := make([][]filter.Filter, len(cfg.Sites))
	for si := range cfg.Sites {
		chains[si] = make([]filter.Handler, len(cfg.Sites[si].Routes))
		siteFilters[si] = append(siteTLSFilters(cfg, &cfg.Sites[si]), buildFilters(cfg, cfg.Sites[si].Middleware, env, state, &errs)...)
	}
	for _, r := range rt.Routes() {
		rc := &cfg.Sites[r.Site].Routes[r.Index]
		fs := buildFilters(cfg, rc.Middleware, env, state, &errs)
		all := append(slices.Clip(siteFilters[r.Site]), fs...)
		if len(all) > 0 {
			chains[r.Site][r.Index] = filter.Chain(final(r), all...)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return chains, nil
}

func buildFilters(cfg *config.Config, entries []config.Middleware, env *buildEnv, state *filter.State, errs *config.Errors) []filter.Filter {
	var out []filter.Filter
	for _, m := range entries {
		f, ok := env.known[m.Name]
		if !ok {
			*errs = append(*errs, &config.Error{File: cfg.File, Line: m.Pos.Line, Col: m.Pos.Col, Path: m.Path,
				Msg: fmt.Sprintf("unknown middleware %q%s; this build has: %s", m.Name, config.Suggest(m.Name, names(env.known)), strings.Join(names(env.known), ", "))})
			continue
		}
		flt, err := f(&filter.Build{Config: cfg, Entry: m, Log: env.log.With("middleware", m.Path), State: state, Metrics: env.metrics})
		if err != nil {
			if es, ok := err.(config.Errors); ok {
				*errs = append(*errs, es...)
			} else {
				*errs = append(*errs, &config.Error{File: cfg.File, Line: m.Pos.Line, Col: m.Pos.Col, Path: m.Path, Msg: err.Error()})
			}
			continue
		}
		out = append(out, flt)
	}
	return out
}

func names(known map[string]filter.Factory) []string {
	out := make([]string, 0, len(known))
	for n := range known {
		out = append(out, n)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return []string{"(none yet)"}
	}
	return out
}

// served is the per-request state of a route with filters, pooled.
type served struct {
	x   filter.Exchange
	rec filter.Recorder
}

var servedPool = sync.Pool{New: func() any { return new(served) }}

// clientIP is the address of the client: the peer, or when the peer is a
// trusted proxy, the nearest address in X-Forwarded-For that is not one
// (the ones further left are the client's word and can be forged).
func clientIP(req *exchange.Request, trusted func(netip.Addr) bool) netip.Addr {
	ip := req.RemoteAddr.Addr().Unmap()
	if !trusted(ip) {
		return ip
	}
	for i := len(req.Header) - 1; i >= 0; i-- {
		h := &req.Header[i]
		if !exchange.EqualFold(h.Name, "X-Forwarded-For") {
			continue
		}
		v := h.Value
		for len(v) > 0 {
			j := bytes.LastIndexByte(v, ',')
			item := exchange.TrimOWS(v[j+1:])
			if j < 0 {
				v = nil
			} else {
				v = v[:j]
			}
			a, err := netip.ParseAddr(string(item))
			if err != nil {
				return ip // a garbled hop: trust nothing beyond it
			}
			ip = a.Unmap()
			if !trusted(ip) {
				return ip
			}
		}
	}
	return ip
}
