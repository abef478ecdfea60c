package jwtauth

import (
	"sync"
	"sync/atomic"
	"time"
)

// Verifying a signature costs tens of microseconds (RSA, ECDSA, Ed25519),
// far more than the rest of a proxied request, and a client sends the same
// token with every request until it expires. So what a verified token
// grants is remembered under its SHA-256, until the token expires, but no
// longer than tokenCacheTTL: a key removed from the key set stops
// admitting its tokens within that time. Only tokens that passed every
// check are remembered; refusals are recomputed.
const (
	tokenCacheTTL = time.Minute
	tokenCacheMax = 10000
)

// verified is what a token that passed grants.
type verified struct {
	expires int64    // unix ns: exp + leeway
	until   int64    // unix ns: when the cache entry lapses
	sub     string   // for the access log
	values  [][]byte // per forward_claims entry; nil: the claim is absent
}

type tokenCache struct {
	m sync.Map // [32]byte -> *verified
	n atomic.Int64
}

func (c *tokenCache) get(key [32]byte, now time.Time) *verified {
	e, ok := c.m.Load(key)
	if !ok {
		return nil
	}
	v := e.(*verified)
	if t := now.UnixNano(); t >= v.until || t >= v.expires {
		return nil
	}
	return v
}

func (c *tokenCache) put(key [32]byte, v *verified, now time.Time) {
	v.until = now.Add(tokenCacheTTL).UnixNano()
	if _, loaded := c.m.Swap(key, v); loaded {
		return
	}
	if c.n.Add(1) <= tokenCacheMax {
		return
	}
	// Full: drop what lapsed, and arbitrary entries until a quarter is free.
	t := now.UnixNano()
	c.m.Range(func(k, e any) bool {
		v := e.(*verified)
		if t >= v.until || t >= v.expires || c.n.Load() > tokenCacheMax*3/4 {
			c.m.Delete(k)
			c.n.Add(-1)
		}
		return true
	})
}
