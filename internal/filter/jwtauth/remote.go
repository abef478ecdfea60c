package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxJWKSBytes bounds a fetched key set; real ones are a few KiB.
const maxJWKSBytes = 1 << 20

// fetchTimeout bounds one fetch of a key set.
const fetchTimeout = 5 * time.Second

// remote is a key set fetched from a jwks_url. It is kept across reloads
// (filter.Keep), refreshed every interval in the background, and re-fetched
// when a token names a kid it does not hold (the identity provider rotated
// its keys) — but at most once per minInterval, so that a flood of tokens
// with made-up kids costs the key server one request per minInterval.
type remote struct {
	url         string
	client      *http.Client
	log         *slog.Logger
	interval    time.Duration
	minInterval time.Duration

	keys    atomic.Pointer[keySet]
	gen     atomic.Uint64 // bumped after every fetch attempt
	lastTry atomic.Int64  // unix ns when the last fetch started
	fetches atomic.Int64  // fetch attempts, for tests and the log

	mu     sync.Mutex // one fetch at a time
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newRemote(url string, interval, minInterval time.Duration, log *slog.Logger) *remote {
	ctx, cancel := context.WithCancel(context.Background())
	r := &remote{
		url:         url,
		log:         log,
		interval:    interval,
		minInterval: minInterval,
		client: &http.Client{
			Timeout: fetchTimeout,
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConnsPerHost: 1,
				IdleConnTimeout:     90 * time.Second,
				TLSHandshakeTimeout: fetchTimeout,
			},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("too many redirects")
				}
				if req.URL.Scheme != "https" && !loopbackHost(req.URL.Hostname()) {
					return errors.New("redirect to plain http refused")
				}
				return nil
			},
		},
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go r.loop()
	return r
}

// loop fetches at once, then every interval; after a failure it retries
// sooner (minInterval, doubling up to interval).
func (r *remote) loop() {
	defer close(r.done)
	retry := r.minInterval
	for {
		wait := r.interval
		r.mu.Lock()
		err := r.fetch()
		r.mu.Unlock()
		if err != nil {
			wait = retry
			retry = min(2*retry, r.interval)
		} else {
			retry = r.minInterval
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Close stops the background refresh; lookups keep the last keys.
func (r *remote) Close() error {
	r.cancel()
	<-r.done
	r.client.CloseIdleConnections()
	return nil
}

// find looks a key up, re-fetching the set once when it does not hold it
// and the last fetch is older than minInterval. unavailable is true when
// no key set was ever fetched.
func (r *remote) find(kid, alg string) (pub any, unavailable bool) {
	gen := r.gen.Load()
	set := r.keys.Load()
	if k, ok := set.find(kid, alg); ok {
		return k, false
	}
	// With keys, a recent fetch settles it. Without any (just started, or
	// the provider was never reachable) wait for a fetch in progress.
	if set != nil && r.recentlyTried() {
		return nil, false
	}
	r.mu.Lock()
	// Whoever held the lock may have fetched what we need.
	if r.gen.Load() == gen && !r.recentlyTried() {
		r.fetch()
	}
	r.mu.Unlock()
	set = r.keys.Load()
	k, ok := set.find(kid, alg)
	return k, !ok && set == nil
}

func (r *remote) recentlyTried() bool {
	return time.Now().UnixNano()-r.lastTry.Load() < int64(r.minInterval)
}

// fetch gets and parses the key set; r.mu is held.
func (r *remote) fetch() error {
	r.lastTry.Store(time.Now().UnixNano())
	r.fetches.Add(1)
	defer r.gen.Add(1)
	set, err := r.get()
	if err != nil {
		if r.ctx.Err() != nil {
			return err // closed: the configuration went away
		}
		r.log.Warn("cannot fetch JWKS; keeping the keys it had", "url", r.url, "err", err)
		return err
	}
	r.keys.Store(set)
	return nil
}

func (r *remote) get() (*keySet, error) {
	ctx, cancel := context.WithTimeout(r.ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("key set over %d bytes", maxJWKSBytes)
	}
	return parseJWKS(data)
}
