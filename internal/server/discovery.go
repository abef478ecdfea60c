package server

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// Service discovery: a pool with dns+ or srv+ targets has a resolver that
// looks their names up every resolve_interval and swaps the pool's targets
// (upstream.Pool.SetTargets) when the addresses found change. Requests never
// wait for it: they read whichever target set is current.
//
// A backend is kept by address across rounds (and across reloads, handed
// from the old snapshot's resolver to the new one), so its connections,
// in-flight count and health survive; backends of addresses that went away
// have their checks stopped and idle connections closed. A failed lookup
// keeps the addresses the name last had; a name never resolved has none.

// resolver keeps the targets of one pool up to date. last, backends, seed,
// keys and applied belong to its goroutine while it runs.
type resolver struct {
	name  string
	cfg   *config.Config
	uc    *config.Upstream
	pool  *upstream.Pool
	dns   *net.Resolver
	log   *slog.Logger
	check *upstream.ActiveCheck
	// drains marks a new backend of an address an operator drained.
	drains *drainSet

	last     map[int][]found              // by index in uc.Targets: the addresses last found
	backends map[string]*upstream.Backend // in use, by key
	seed     map[string]*upstream.Backend // the previous snapshot's, until the first round
	keys     string                       // the keys of the current set, to tell a change
	applied  bool                         // a set has been swapped in

	cancel context.CancelFunc
	first  chan struct{} // closed after the first round
	done   chan struct{}
}

// found is one address a discovered target resolved to.
type found struct {
	addr       string // ip:port to dial
	host       string // Host header
	serverName string // TLS server name
}

// hasDiscovery reports whether a pool has dns+ or srv+ targets.
func hasDiscovery(uc *config.Upstream) bool {
	for _, tc := range uc.Targets {
		if kind, _ := tc.Discovery(); kind != config.DiscoveryPlain {
			return true
		}
	}
	return false
}

// startResolvers starts a resolver for every pool of snap with discovered
// targets, seeded with the backends of the previous snapshot's resolver of
// the same pool, and waits (a bounded time) for their first round so that a
// new snapshot is served with its names resolved when DNS answers.
func startResolvers(snap *Snapshot, seeds map[string]*handover, dns *net.Resolver, log *slog.Logger, drains *drainSet) []*resolver {
	if dns == nil {
		dns = net.DefaultResolver
	}
	var rs []*resolver
	for name, p := range snap.Pools {
		uc := snap.Config.Upstreams[name]
		if !hasDiscovery(uc) {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &resolver{
			name: name, cfg: snap.Config, uc: uc, pool: p, dns: dns,
			log:      log.With("upstream", name),
			check:    activeCheck(uc.Health.Active),
			drains:   drains,
			last:     map[int][]found{},
			backends: map[string]*upstream.Backend{},
			cancel:   cancel,
			first:    make(chan struct{}),
			done:     make(chan struct{}),
		}
		if h := seeds[name]; h != nil {
			// What the names last resolved to stands until they resolve
			// again: a reload while DNS fails does not empty the pool.
			r.seed = h.backends
			for i, tc := range uc.Targets {
				if fs, ok := h.found[tc.URL.String()]; ok {
					r.last[i] = fs
				}
			}
			delete(seeds, name)
		}
		go r.run(ctx)
		rs = append(rs, r)
	}
	deadline := time.NewTimer(3 * time.Second)
	defer deadline.Stop()
	for _, r := range rs {
		select {
		case <-r.first:
		case <-deadline.C:
			return rs
		}
	}
	return rs
}

// handover is what a stopped resolver leaves to the next snapshot's
// resolver of the same pool.
type handover struct {
	backends map[string]*upstream.Backend
	found    map[string][]found // by target URL
}

// stopResolvers stops rs and returns what they had by pool name, for the
// next snapshot's resolvers.
func stopResolvers(rs []*resolver) map[string]*handover {
	out := map[string]*handover{}
	for _, r := range rs {
		r.cancel()
		<-r.done
		h := &handover{backends: r.backends, found: map[string][]found{}}
		for k, be := range r.seed { // the first round did not finish
			h.backends[k] = be
		}
		for i, fs := range r.last {
			h.found[r.uc.Targets[i].URL.String()] = fs
		}
		out[r.name] = h
	}
	return out
}

// releaseBackends stops the checks and closes the idle connections of
// backends no pool uses any more.
func releaseBackends(seeds map[string]*handover) {
	for _, h := range seeds {
		for _, be := range h.backends {
			be.StopChecks()
			be.Transport.CloseIdle(true)
		}
	}
}

func (r *resolver) run(ctx context.Context) {
	defer close(r.done)
	r.round(ctx)
	close(r.first)
	t := time.NewTicker(r.uc.ResolveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.round(ctx)
		}
	}
}

// lookupTimeout bounds one lookup: the interval, within [1s, 10s].
func (r *resolver) lookupTimeout() time.Duration {
	return min(max(r.uc.ResolveInterval, time.Second), 10*time.Second)
}

// round looks every discovered name up and swaps the pool's targets when
// the addresses changed.
func (r *resolver) round(ctx context.Context) {
	for i, tc := range r.uc.Targets {
		kind, _ := tc.Discovery()
		if kind == config.DiscoveryPlain {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, r.lookupTimeout())
		fs, err := r.lookup(lctx, kind, tc)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.log.Warn("service discovery: lookup failed; keeping the addresses found before",
				"target", tc.URL.String(), "err", err, "kept", len(r.last[i]))
			continue
		}
		r.last[i] = fs
	}
	r.apply()
}

// apply builds the target list from the configured plain targets and the
// addresses last found, and swaps it in when it changed.
func (r *resolver) apply() {
	var ts, disc []*upstream.Target
	var keys []string
	used := map[string]*upstream.Backend{}
	plain := 0
	for i, tc := range r.uc.Targets {
		kind, scheme := tc.Discovery()
		if kind == config.DiscoveryPlain {
			st := r.pool.Targets[plain]
			plain++
			ts = append(ts, newTargetLike(st, len(ts)))
			keys = append(keys, st.Addr)
			continue
		}
		for _, f := range r.last[i] {
			key := backendKey(r.name, "", tc, r.uc) + "|" + f.addr + "|" + f.serverName
			be := used[key]
			if be == nil {
				be = r.backends[key]
			}
			if be == nil {
				be = r.seed[key]
			}
			if be == nil {
				be = newBackend(r.cfg, r.uc, f.addr, scheme, f.serverName)
				r.drains.mark(r.name, be)
			}
			used[key] = be
			u := *tc.URL
			u.Scheme, u.Host = scheme, f.addr
			t := newTarget(be, &u, f.host, tc.Weight, len(ts))
			ts = append(ts, t)
			disc = append(disc, t)
			keys = append(keys, key)
		}
	}
	joined := strings.Join(keys, "\n")
	if r.applied && r.keys == joined {
		return
	}
	policy, err := upstream.NewPolicy(r.uc.Balance, r.uc.HashKey, ts)
	if err != nil { // validated at load
		r.log.Error("service discovery: cannot build the policy", "err", err)
		return
	}
	for _, t := range disc {
		t.StartChecks(baseURL(t), checkTransport(r.check, t), r.log)
	}
	r.pool.SetTargets(ts, policy)
	for k, be := range r.backends {
		if used[k] != be {
			be.StopChecks()
			be.Transport.CloseIdle(true)
		}
	}
	for k, be := range r.seed {
		if used[k] != be {
			be.StopChecks()
			be.Transport.CloseIdle(true)
		}
	}
	if r.keys != joined {
		r.log.Info("service discovery: targets changed", "targets", len(ts))
	}
	r.backends, r.seed, r.keys, r.applied = used, nil, joined, true
}

// newTargetLike copies a plain target to position index of a new set.
func newTargetLike(t *upstream.Target, index int) *upstream.Target {
	c := newTarget(t.Backend, t.URL, string(t.Host), t.Weight, index)
	c.Prefix = t.Prefix
	return c
}

// lookup resolves one dns+ or srv+ target to its addresses, sorted.
func (r *resolver) lookup(ctx context.Context, kind string, tc config.Target) ([]found, error) {
	_, scheme := tc.Discovery()
	host := tc.URL.Hostname()
	var fs []found
	switch kind {
	case config.DiscoveryDNS:
		port := tc.URL.Port()
		if port == "" {
			port = "80"
			if scheme == "https" {
				port = "443"
			}
		}
		ips, err := r.dns.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		p, _ := strconv.ParseUint(port, 10, 16)
		for _, ip := range ips {
			fs = append(fs, found{addr: netip.AddrPortFrom(ip.Unmap(), uint16(p)).String(), host: tc.URL.Host, serverName: host})
		}
	case config.DiscoverySRV:
		_, srvs, err := r.dns.LookupSRV(ctx, "", "", host)
		if err != nil {
			return nil, err
		}
		for _, s := range srvs {
			name := strings.TrimSuffix(s.Target, ".")
			ips, err := r.dns.LookupNetIP(ctx, "ip", name)
			if err != nil {
				return nil, err
			}
			hostHdr := net.JoinHostPort(name, strconv.Itoa(int(s.Port)))
			for _, ip := range ips {
				fs = append(fs, found{addr: netip.AddrPortFrom(ip.Unmap(), s.Port).String(), host: hostHdr, serverName: name})
			}
		}
	}
	slices.SortFunc(fs, func(a, b found) int { return strings.Compare(a.addr+"|"+a.serverName, b.addr+"|"+b.serverName) })
	fs = slices.CompactFunc(fs, func(a, b found) bool { return a.addr == b.addr && a.serverName == b.serverName })
	return fs, nil
}
