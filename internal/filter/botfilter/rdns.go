package botfilter

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// verifier checks that an address belongs to a crawler's operator by
// forward-confirmed reverse DNS, as Google, Bing and others document it: the
// PTR name of the address must end in one of the operator's suffixes, and
// that name must resolve (A/AAAA) back to the same address. Results are
// cached; lookups are bounded in time (timeout) and in number (sem), and
// concurrent checks of one address share one lookup.
type verifier struct {
	resolver string
	timeout  time.Duration
	ttl      time.Duration // of a definite answer
	errTTL   time.Duration // of a failed lookup (timeout, SERVFAIL)
	maxCache int
	sem      chan struct{}
	client   *dns.Client

	mu       sync.Mutex
	cache    map[cacheKey]cacheEntry
	inflight map[cacheKey]*flight

	ctx    context.Context // cancelled by Close: lookups in progress stop
	cancel context.CancelFunc
}

type cacheKey struct {
	addr     netip.Addr
	suffixes string // the crawler's suffixes, joined
}

type cacheEntry struct {
	ok  bool
	exp time.Time
}

type flight struct {
	done chan struct{}
	ok   bool
}

func newVerifier(resolver string, timeout, ttl time.Duration, concurrency, maxCache int) *verifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &verifier{
		resolver: resolver,
		timeout:  timeout,
		ttl:      ttl,
		errTTL:   min(ttl, 30*time.Second),
		maxCache: maxCache,
		sem:      make(chan struct{}, concurrency),
		client:   &dns.Client{Net: "udp", Timeout: timeout},
		cache:    map[cacheKey]cacheEntry{},
		inflight: map[cacheKey]*flight{},
		ctx:      ctx,
		cancel:   cancel,
	}
}

// Close stops the lookups in progress (they then count as failed).
func (v *verifier) Close() error {
	v.cancel()
	return nil
}

// verify reports whether addr's reverse DNS is in one of the domains
// (lower case, no leading dot) and resolves back to addr.
func (v *verifier) verify(ctx context.Context, addr netip.Addr, suffixes []string, key string) bool {
	k := cacheKey{addr, key}
	now := time.Now()
	v.mu.Lock()
	if e, ok := v.cache[k]; ok && now.Before(e.exp) {
		v.mu.Unlock()
		return e.ok
	}
	if f, ok := v.inflight[k]; ok {
		v.mu.Unlock()
		select {
		case <-f.done:
			return f.ok
		case <-ctx.Done():
			return false
		}
	}
	f := &flight{done: make(chan struct{})}
	v.inflight[k] = f
	v.mu.Unlock()

	ok, err := v.lookup(addr, suffixes)
	ttl := v.ttl
	if err != nil {
		ttl = v.errTTL
	}
	v.mu.Lock()
	if len(v.cache) >= v.maxCache {
		v.evict(now)
	}
	v.cache[k] = cacheEntry{ok: ok, exp: time.Now().Add(ttl)}
	delete(v.inflight, k)
	v.mu.Unlock()
	f.ok = ok
	close(f.done)
	return ok
}

// evict drops expired entries, or everything when none has expired (a flood
// of distinct addresses must not grow the cache without bound).
func (v *verifier) evict(now time.Time) {
	for k, e := range v.cache {
		if !now.Before(e.exp) {
			delete(v.cache, k)
		}
	}
	if len(v.cache) >= v.maxCache {
		clear(v.cache)
	}
}

var errBusy = errors.New("too many lookups in progress")

// lookup does the forward-confirmed reverse DNS check within v.timeout.
// A definite "no" (no PTR, wrong domain, no address match) has a nil error.
func (v *verifier) lookup(addr netip.Addr, suffixes []string) (bool, error) {
	ctx, cancel := context.WithTimeout(v.ctx, v.timeout)
	defer cancel()
	select {
	case v.sem <- struct{}{}:
		defer func() { <-v.sem }()
	case <-ctx.Done():
		return false, errBusy
	}
	arpa, err := dns.ReverseAddr(addr.String())
	if err != nil {
		return false, nil
	}
	ptrs, err := v.query(ctx, arpa, dns.TypePTR)
	if err != nil {
		return false, err
	}
	qtype := dns.TypeA
	if addr.Is6() {
		qtype = dns.TypeAAAA
	}
	var lastErr error
	for _, rr := range ptrs {
		ptr, ok := rr.(*dns.PTR)
		if !ok {
			continue
		}
		name := strings.ToLower(ptr.Ptr)
		if !hasSuffix(strings.TrimSuffix(name, "."), suffixes) {
			continue
		}
		addrs, err := v.query(ctx, name, qtype)
		if err != nil {
			lastErr = err
			continue
		}
		for _, rr := range addrs {
			var ip netip.Addr
			switch a := rr.(type) {
			case *dns.A:
				ip, _ = netip.AddrFromSlice(a.A.To4())
			case *dns.AAAA:
				ip, _ = netip.AddrFromSlice(a.AAAA)
			}
			if ip == addr {
				return true, nil
			}
		}
	}
	return false, lastErr
}

// hasSuffix reports whether name is one of the domains (given without
// their leading dot) or inside one: "google.com" takes "google.com" and
// "crawl.google.com", never "notgoogle.com".
func hasSuffix(name string, domains []string) bool {
	for _, d := range domains {
		if name == d || len(name) > len(d) && strings.HasSuffix(name, d) && name[len(name)-len(d)-1] == '.' {
			return true
		}
	}
	return false
}

// query asks the resolver for name/qtype and returns the answer records.
// NXDOMAIN is an empty answer, not an error.
func (v *verifier) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	r, _, err := v.client.ExchangeContext(ctx, m, v.resolver)
	if err != nil {
		return nil, err
	}
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return r.Answer, nil
	}
	return nil, errors.New("dns: " + dns.RcodeToString[r.Rcode])
}
