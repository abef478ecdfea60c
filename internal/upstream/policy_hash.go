package upstream

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Consistent hashing ring sizes: hashPointsPerWeight points per unit of
// weight (as nginx's hash ... consistent and ketama use 160), at most
// hashMaxPoints in all (bigger weights are scaled down to fit).
const (
	hashPointsPerWeight = 160
	hashMaxPoints       = 1 << 16
)

type hashKind uint8

const (
	hashClientIP hashKind = iota
	hashURI
	hashHeader
	hashCookie
)

// Hash is consistent hashing (a ketama-style ring): every target owns points
// on a ring of 64-bit hashes, as many as hashPointsPerWeight × weight, placed
// by hashing the target's URL, so that every gatehouse instance given the
// same targets builds the same ring. A request's key hashes to a point; the
// next target point clockwise serves it. Removing one of N targets moves only
// the keys it served (about 1/N), to the targets that follow its points;
// adding one takes about 1/(N+1) of the keys, from all the others.
//
// The hash is FNV-1a 64 followed by the murmur3 64-bit finalizer (FNV alone
// mixes short keys poorly): stable across processes, versions and machines,
// unlike hash/maphash, and without a dependency.
//
// The key is the client's IP address (not its port), the URI (path and
// query), a header's value or a cookie's value. A request without the key
// (no such header or cookie, or an empty value) is balanced round robin.
// When the key's target is excluded (down, or already tried by a retry), the
// ring is walked on to the next distinct target: the same target the key
// would go to if the excluded one were removed.
type Hash struct {
	kind   hashKind
	name   string // header or cookie name
	ts     []*Target
	points []uint64 // sorted
	owners []int32  // owners[i] is the index in ts of points[i]
	rr     atomic.Uint64
}

func newHash(key string, ts []*Target) (*Hash, error) {
	h := &Hash{ts: ts}
	switch kind, name, _ := strings.Cut(key, ":"); {
	case key == "" || key == "client_ip":
		h.kind = hashClientIP
	case key == "uri":
		h.kind = hashURI
	case kind == "header" && name != "":
		h.kind, h.name = hashHeader, name
	case kind == "cookie" && name != "":
		h.kind, h.name = hashCookie, name
	default:
		return nil, fmt.Errorf("invalid hash_key %q: use client_ip, uri, header:NAME or cookie:NAME", key)
	}
	h.buildRing()
	return h, nil
}

// targetID names a target on the ring: its URL, and the address dialled
// when the URL does not say it (a default port, or an address found by
// service discovery), so that every instance names it alike.
func targetID(t *Target) string {
	var addr string
	if t.Backend != nil {
		addr = t.Addr
	}
	if t.URL == nil {
		return addr
	}
	id := t.URL.String()
	if addr != "" && addr != t.URL.Host {
		id += "@" + addr
	}
	return id
}

func (h *Hash) buildRing() {
	var sumW uint64
	for _, t := range h.ts {
		sumW += weightOf(t)
	}
	per := func(t *Target) int { return int(weightOf(t)) * hashPointsPerWeight }
	if sumW*hashPointsPerWeight > hashMaxPoints {
		per = func(t *Target) int { return int(max(1, weightOf(t)*hashMaxPoints/sumW)) }
	}
	type point struct {
		hash  uint64
		owner int32
	}
	var pts []point
	seen := map[string]int{}
	for i, t := range h.ts {
		id := targetID(t)
		// The same URL twice in a pool: the second copy gets points of its own.
		if n := seen[id]; n > 0 {
			seen[id] = n + 1
			id += "#" + strconv.Itoa(n)
		} else {
			seen[id] = 1
		}
		for v := range per(t) {
			pts = append(pts, point{hashString(id + "-" + strconv.Itoa(v)), int32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		if a.hash != b.hash {
			if a.hash < b.hash {
				return -1
			}
			return 1
		}
		return int(a.owner - b.owner)
	})
	h.points = make([]uint64, len(pts))
	h.owners = make([]int32, len(pts))
	for i, p := range pts {
		h.points[i], h.owners[i] = p.hash, p.owner
	}
}

func (h *Hash) Select(_ *Pool, req *exchange.Request, skip Skip) *Target {
	if len(h.points) == 0 {
		return nil
	}
	key, ok := h.key(req)
	if !ok {
		return h.roundRobin(skip)
	}
	return h.lookup(key, skip)
}

// lookup serves a key hash: the owner of the first point at or after it,
// walking on past excluded targets.
func (h *Hash) lookup(key uint64, skip Skip) *Target {
	n := len(h.points)
	start, _ := slices.BinarySearch(h.points, key)
	if start == n {
		start = 0
	}
	first := h.owners[start]
	if t := h.ts[first]; !skip(t) {
		return t
	}
	// Walk on to the next distinct targets. seen tracks pools of up to 64
	// targets so the walk stops once all have been refused.
	small := len(h.ts) <= 64
	var seen uint64
	if small {
		seen = 1 << first
	}
	all := uint64(1)<<len(h.ts) - 1 // all ones for 64
	last := first
	for k := 1; k < n; k++ {
		o := h.owners[(start+k)%n]
		if o == last {
			continue
		}
		last = o
		if small {
			bit := uint64(1) << o
			if seen&bit != 0 {
				continue
			}
			seen |= bit
		}
		if t := h.ts[o]; !skip(t) {
			return t
		}
		if small && seen == all {
			return nil
		}
	}
	return nil
}

func (h *Hash) roundRobin(skip Skip) *Target {
	n := uint64(len(h.ts))
	start := h.rr.Add(1) - 1
	for i := range n {
		if t := h.ts[(start+i)%n]; !skip(t) {
			return t
		}
	}
	return nil
}

// key hashes the request's key; ok is false when the request has none.
func (h *Hash) key(req *exchange.Request) (uint64, bool) {
	switch h.kind {
	case hashClientIP:
		ip := req.RemoteAddr.Addr()
		if !ip.IsValid() {
			return 0, false
		}
		b := ip.Unmap().As16() // IPv4 and IPv4-mapped IPv6 hash alike
		return fmix64(fnv1a(fnvOffset, b[:])), true
	case hashURI:
		x := fnv1a(fnvOffset, req.Path)
		if req.HasQuery {
			x = (x ^ '?') * fnvPrime
			x = fnv1a(x, req.Query)
		}
		return fmix64(x), true
	case hashHeader:
		v := req.Header.Get(h.name)
		if len(v) == 0 {
			return 0, false
		}
		return fmix64(fnv1a(fnvOffset, v)), true
	case hashCookie:
		v := req.Header.Cookie(h.name)
		if len(v) == 0 {
			return 0, false
		}
		return fmix64(fnv1a(fnvOffset, v)), true
	}
	return 0, false
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv1a(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// fmix64 is murmur3's finalizer: every input bit affects every output bit.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func hashString(s string) uint64 { return fmix64(fnv1a(fnvOffset, []byte(s))) }
