// Package server wires gatehouse together: it compiles a configuration into
// an immutable snapshot, swaps snapshots atomically on reload, and runs the
// listeners, the admin endpoint and graceful shutdown.
package server

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
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
}

// transportKey names a backend connection pool across reloads: the same
// target with the same settings keeps its warm connections.
func transportKey(pool string, t config.Target, to config.Timeouts) string {
	return fmt.Sprintf("%s|%s|%s|%s", pool, t.URL.String(), to.Connect, to.Idle)
}

// buildSnapshot compiles cfg. backends holds the previous snapshot's backends
// by key; the ones reused or created are returned in used.
func buildSnapshot(cfg *config.Config, backends map[string]*upstream.Backend, log *slog.Logger) (*Snapshot, map[string]*upstream.Backend, error) {
	used := map[string]*upstream.Backend{}
	pools := map[string]*upstream.Pool{}
	for name, uc := range cfg.Upstreams {
		p := &upstream.Pool{
			Name:                  name,
			PreserveHost:          uc.PreserveHost,
			ResponseHeaderTimeout: uc.Timeouts.ResponseHeader,
			Policy:                &upstream.RoundRobin{},
		}
		for _, tc := range uc.Targets {
			key := transportKey(name, tc, uc.Timeouts)
			be := backends[key]
			if be == nil {
				addr := hostPort(tc.URL.Host, tc.URL.Scheme)
				be = &upstream.Backend{
					Addr: addr,
					Transport: &h1.Transport{
						Addr:        addr,
						DialTimeout: uc.Timeouts.Connect,
						IdleTimeout: uc.Timeouts.Idle,
						MaxIdle:     256,
						MaxHeader:   int(cfg.Limits.MaxHeaderBytes),
					},
				}
			}
			used[key] = be
			prefix := strings.TrimSuffix(tc.URL.EscapedPath(), "/")
			t := &upstream.Target{
				Backend: be,
				URL:     tc.URL,
				Host:    []byte(tc.URL.Host),
				Weight:  tc.Weight,
				Index:   len(p.Targets),
			}
			if prefix != "" {
				t.Prefix = []byte(prefix)
			}
			p.Targets = append(p.Targets, t)
		}
		pools[name] = p
	}
	rt, err := route.Compile(cfg, pools)
	if err != nil {
		return nil, nil, err
	}
	s := &Snapshot{
		Config:    cfg,
		Router:    rt,
		Pools:     pools,
		Forwarder: &proxy.Forwarder{TrustedProxies: cfg.TrustedProxies, Log: log},
		Limits: h1.Limits{
			ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
			IdleTimeout:       cfg.Limits.IdleTimeout,
			MaxHeaderBytes:    int(cfg.Limits.MaxHeaderBytes),
			MaxBodyBytes:      int64(cfg.Limits.MaxBodyBytes),
		},
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
