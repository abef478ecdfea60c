// Package peerlimit counts what each client address holds at once
// (connections, requests in progress) and refuses more than a cap. The
// table is split into shards by address, each with its own lock, so that
// clients do not contend with each other.
package peerlimit

import (
	"net/netip"
	"sync"
)

const shards = 64

// Table counts per client address; the zero value is ready to use.
type Table struct {
	shards [shards]shard
}

type shard struct {
	mu sync.Mutex
	m  map[netip.Addr]int32
	_  [40]byte // one shard per cache line: neighbours must not share one
}

// Key is the address a client is counted under: IPv4 as it is (an
// IPv4-mapped IPv6 address as IPv4), IPv6 by its /64, which one subscriber
// usually gets whole, so that a client cannot step around the cap by
// taking a new address from its own prefix.
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		clear(b[8:])
		return netip.AddrFrom16(b)
	}
	return a
}

func (t *Table) shard(k netip.Addr) *shard {
	b := k.As16()
	var h uint64 = 14695981039346656037
	for _, c := range b[:] {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return &t.shards[h%shards]
}

// Acquire counts one more for k (a Key) unless k holds max already; it
// reports whether it did. Each true must be matched by one Release.
func (t *Table) Acquire(k netip.Addr, max int) bool {
	s := t.shard(k)
	s.mu.Lock()
	n := s.m[k]
	if int(n) >= max {
		s.mu.Unlock()
		return false
	}
	if s.m == nil {
		s.m = map[netip.Addr]int32{}
	}
	s.m[k] = n + 1
	s.mu.Unlock()
	return true
}

// Release counts one less for k; an address that holds nothing leaves the
// table, so it does not grow with the clients seen.
func (t *Table) Release(k netip.Addr) {
	s := t.shard(k)
	s.mu.Lock()
	if n := s.m[k] - 1; n > 0 {
		s.m[k] = n
	} else {
		delete(s.m, k)
	}
	s.mu.Unlock()
}

// Count is what k holds now.
func (t *Table) Count(k netip.Addr) int {
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.m[k])
}
