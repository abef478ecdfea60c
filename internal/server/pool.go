package server

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/proxy"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// buildPool builds one pool. backends holds the previous snapshot's backends
// by key: a target that stays keeps its connections, in-flight count and
// health; every backend used is recorded in used.
func buildPool(cfg *config.Config, name string, uc *config.Upstream, backends, used map[string]*upstream.Backend) (*upstream.Pool, error) {
	if err := supported(name, uc); err != nil {
		return nil, err
	}
	p := &upstream.Pool{
		Name:                  name,
		PreserveHost:          uc.PreserveHost,
		RewriteLocation:       uc.RewriteLocation,
		ResponseHeaderTimeout: uc.Timeouts.ResponseHeader,
		Retry:                 retryRules(uc.Retries),
		Passive:               passiveRules(uc.Health.Passive),
	}
	for _, tc := range uc.Targets {
		if kind, _ := tc.Discovery(); kind != config.DiscoveryPlain {
			continue // added by the pool's resolver (discovery.go)
		}
		p.Targets = append(p.Targets, buildTarget(cfg, uc, backendKey(name, "", tc, uc), tc, len(p.Targets), backends, used))
	}
	for i, tc := range uc.Backup {
		p.Backup = append(p.Backup, buildTarget(cfg, uc, backendKey(name, "backup", tc, uc), tc, i, backends, used))
	}
	// The policy is built for the targets, so after them.
	policy, err := upstream.NewPolicy(uc.Balance, uc.HashKey, p.Targets)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", name, err)
	}
	p.Policy = policy
	p.SetLimit(uc.MaxConnsPerTarget, uc.Queue.Size, uc.Queue.Timeout)
	return p, nil
}

// backendKey names a backend across reloads: the same target of the same
// pool with the same connection settings is the same backend.
func backendKey(pool, role string, t config.Target, uc *config.Upstream) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%d|%s|%s", pool, role, t.URL.String(), uc.Timeouts.Connect, uc.Timeouts.Idle, uc.MaxIdlePerTarget,
		uc.Transport, tlsKey(uc.TLS))
}

// tlsKey identifies TLS settings across reloads: the settings as written and
// a digest of the certificates the files held when they were read.
func tlsKey(c *config.UpstreamTLS) string {
	if c == nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%q|%q|%q|%q|%v|", c.CAFile, c.ServerName, c.CertFile, c.KeyFile, c.InsecureSkipVerify)
	if c.RootCAs != nil {
		// Subjects is deprecated for system pools only; this one is from a file.
		for _, s := range c.RootCAs.Subjects() {
			h.Write(s)
		}
	}
	if c.Certificate != nil {
		for _, der := range c.Certificate.Certificate {
			h.Write(der)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// clientTLS is the TLS configuration for one https target: the pool's
// settings, the target's host name as server name unless one is set, and
// the application protocol to negotiate.
func clientTLS(uc *config.Upstream, serverName, proto string) *tls.Config {
	c := uc.TLS.ClientConfig()
	if c.ServerName == "" {
		c.ServerName = serverName
	}
	c.NextProtos = []string{proto}
	return c
}

func buildTarget(cfg *config.Config, uc *config.Upstream, key string, tc config.Target, index int, backends, used map[string]*upstream.Backend) *upstream.Target {
	be := backends[key]
	if be == nil {
		be = newBackend(cfg, uc, hostPort(tc.URL.Host, tc.URL.Scheme), tc.URL.Scheme, tc.URL.Hostname())
	}
	used[key] = be
	return newTarget(be, tc.URL, tc.URL.Host, tc.Weight, index)
}

// newBackend makes the backend of one address, where scheme is spoken and
// serverName is the TLS server name unless the pool sets one.
func newBackend(cfg *config.Config, uc *config.Upstream, addr, scheme, serverName string) *upstream.Backend {
	be := &upstream.Backend{
		Addr: addr,
		Transport: &h1.Transport{
			Addr:        addr,
			DialTimeout: uc.Timeouts.Connect,
			IdleTimeout: uc.Timeouts.Idle,
			MaxIdle:     uc.MaxIdlePerTarget,
			MaxHeader:   int(cfg.Limits.MaxHeaderBytes),
		},
	}
	https := scheme == "https"
	switch uc.Transport {
	case "h2":
		be.RoundTripper = proxy.NewH2Transport(addr, clientTLS(uc, serverName, "h2"), uc.Timeouts.Connect, uc.Timeouts.Idle, int(cfg.Limits.MaxHeaderBytes))
	case "h2c":
		be.RoundTripper = proxy.NewH2Transport(addr, nil, uc.Timeouts.Connect, uc.Timeouts.Idle, int(cfg.Limits.MaxHeaderBytes))
	default:
		if https {
			be.Transport.TLS = clientTLS(uc, serverName, "http/1.1")
		}
	}
	return be
}

// newTarget is one target of a pool on backend be: u gives the scheme and
// base path, host the Host header sent when the client's is not preserved.
func newTarget(be *upstream.Backend, u *url.URL, host string, weight, index int) *upstream.Target {
	t := &upstream.Target{
		Backend: be,
		URL:     u,
		Host:    []byte(host),
		Weight:  weight,
		Index:   index,
	}
	if prefix := strings.TrimSuffix(u.EscapedPath(), "/"); prefix != "" {
		t.Prefix = []byte(prefix)
	}
	return t
}

// supported refuses what the configuration language has and this build does
// not run yet (discovered backups).
func supported(name string, uc *config.Upstream) error {
	switch uc.Transport {
	case "", "h1", "h2", "h2c":
	default:
		return fmt.Errorf("upstreams.%s.transport: %q is not supported by this build (h1, h2 or h2c)", name, uc.Transport)
	}
	for _, t := range uc.Targets {
		if kind, scheme := t.Discovery(); kind == "" || scheme != "http" && scheme != "https" {
			return fmt.Errorf("upstreams.%s: target %s: scheme not supported", name, t.URL)
		}
	}
	for _, t := range uc.Backup {
		if kind, scheme := t.Discovery(); kind != config.DiscoveryPlain || scheme != "http" && scheme != "https" {
			return fmt.Errorf("upstreams.%s: backup %s: only http:// and https:// backups are supported by this build yet (dns+ and srv+ work in targets)", name, t.URL)
		}
	}
	return nil
}

// retryRules turns the pool's retries section into the proxy's rules.
func retryRules(rc config.Retries) upstream.Retry {
	r := upstream.Retry{
		Attempts:  rc.Attempts,
		OnConnect: rc.OnConnect(),
		OnTimeout: rc.OnTimeout(),
		OnReset:   rc.OnReset(),
	}
	for _, on := range rc.On {
		if on.Kind == config.RetryStatus {
			r.RetryOnStatus(on.Status)
		}
	}
	if r.Attempts > 0 {
		r.Budget = upstream.NewBudget(float64(rc.Budget), rc.MinRetriesPerSecond)
	}
	return r
}

func passiveRules(ph *config.PassiveHealth) *upstream.Passive {
	if ph == nil {
		return nil
	}
	return &upstream.Passive{MaxFails: ph.MaxFails, Window: ph.Window, Eject: ph.Eject}
}

func activeCheck(ah *config.ActiveHealth) *upstream.ActiveCheck {
	if ah == nil {
		return nil
	}
	ranges := ah.ExpectStatus
	return &upstream.ActiveCheck{
		Path:         ah.Path,
		Interval:     ah.Interval,
		Timeout:      ah.Timeout,
		Fall:         ah.Fall,
		Rise:         ah.Rise,
		ExpectStatus: ranges.Contains,
		ExpectBody:   ah.ExpectBody,
		Host:         ah.Host,
		Headers:      ah.Headers,
		Key: strings.Join([]string{ah.Path, ah.Interval.String(), ah.Timeout.String(), fmt.Sprint(ah.Fall, ah.Rise),
			ranges.String(), ah.ExpectBody, ah.Host, fmt.Sprint(ah.Headers)}, "|"),
	}
}

// startHealthChecks starts (or keeps) the active checks of every backend of
// snap and stops those of backends no longer used.
func startHealthChecks(snap *Snapshot, stale map[string]*upstream.Backend, log *slog.Logger) {
	for _, be := range stale {
		be.StopChecks()
	}
	for name, p := range snap.Pools {
		check := activeCheck(snap.Config.Upstreams[name].Health.Active)
		for _, list := range [][]*upstream.Target{p.Targets, p.Backup} {
			for _, t := range list {
				t.StartChecks(baseURL(t), checkTransport(check, t), log.With("upstream", name))
			}
		}
	}
}

// baseURL is where a target's health check path is appended: its scheme and
// address, without the base path (the check path is absolute).
func baseURL(t *upstream.Target) string {
	if t.URL != nil && t.URL.Scheme == "https" {
		return "https://" + t.Addr
	}
	return "http://" + t.Addr
}

// checkTransport gives a target's check the pool's transport: its HTTP/2
// transport (h2, h2c), or HTTP/1.1 with its TLS settings (https).
func checkTransport(c *upstream.ActiveCheck, t *upstream.Target) *upstream.ActiveCheck {
	if c == nil {
		return nil
	}
	switch {
	case t.RoundTripper != nil:
		cc := *c
		// Wrapped: stopping the checker must not close the traffic's idle
		// connections.
		cc.Transport = struct{ http.RoundTripper }{t.RoundTripper}
		return &cc
	case t.Transport.TLS != nil:
		cc := *c
		cc.Transport = &http.Transport{
			TLSClientConfig:     t.Transport.TLS,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     2 * c.Interval,
			DisableCompression:  true,
		}
		return &cc
	}
	return c
}
