package ipfilter

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
)

// set is a list of prefixes compiled into sorted, merged, non-overlapping
// address ranges, one list per family: a lookup is a binary search that
// allocates nothing, whatever the number of entries.
type set struct {
	v4 []r32
	v6 []r128
	n  int // entries it was built from (for logs)
}

type r32 struct{ lo, hi uint32 }

type u128 struct{ hi, lo uint64 }

type r128 struct{ lo, hi u128 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a u128) next() (u128, bool) {
	if a.lo != ^uint64(0) {
		return u128{a.hi, a.lo + 1}, true
	}
	if a.hi != ^uint64(0) {
		return u128{a.hi + 1, 0}, true
	}
	return a, false
}

func toU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// newSet compiles prefixes (any order, overlaps allowed). An IPv4-mapped
// IPv6 prefix (::ffff:10.0.0.0/104) counts as the IPv4 prefix it maps,
// since client addresses are compared unmapped.
func newSet(prefixes ...[]netip.Prefix) *set {
	s := &set{}
	for _, list := range prefixes {
		for _, p := range list {
			s.n++
			p = p.Masked()
			a := p.Addr()
			if a.Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
				a = p.Addr()
			}
			if a.Is4() {
				lo := binary.BigEndian.Uint32(a.AsSlice())
				hi := lo | uint32(uint64(1)<<(32-p.Bits())-1)
				s.v4 = append(s.v4, r32{lo, hi})
				continue
			}
			lo := toU128(a.WithZone(""))
			hi := lo
			host := 128 - p.Bits()
			// Go's shifts of 64 or more give 0, so /0 sets every bit.
			if host >= 64 {
				hi.lo = ^uint64(0)
				hi.hi |= uint64(1)<<(host-64) - 1
			} else {
				hi.lo |= uint64(1)<<host - 1
			}
			s.v6 = append(s.v6, r128{lo, hi})
		}
	}
	s.v4 = merge32(s.v4)
	s.v6 = merge128(s.v6)
	return s
}

func merge32(rs []r32) []r32 {
	slices.SortFunc(rs, func(a, b r32) int { return cmp.Compare(a.lo, b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && (out[n-1].hi == ^uint32(0) || r.lo <= out[n-1].hi+1) {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

func merge128(rs []r128) []r128 {
	slices.SortFunc(rs, func(a, b r128) int { return a.lo.cmp(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			nx, ok := last.hi.next()
			if !ok || r.lo.cmp(nx) <= 0 {
				if r.hi.cmp(last.hi) > 0 {
					last.hi = r.hi
				}
				continue
			}
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

// contains reports whether a is in the set.
func (s *set) contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		v := binary.BigEndian.Uint32(b[:])
		rs := s.v4
		// The last range starting at or below v is the only candidate.
		lo, hi := 0, len(rs)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if rs[m].lo <= v {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo > 0 && v <= rs[lo-1].hi
	}
	v := toU128(a.WithZone(""))
	rs := s.v6
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].lo.cmp(v) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && v.cmp(rs[lo-1].hi) <= 0
}

// maxFileBytes bounds a list file: a mistaken path (a log, a disk image)
// must not be read into memory.
const maxFileBytes = 64 << 20

// parseList reads a list file: one address or prefix per line, `#`
// starting a comment, blank lines ignored. Any bad line rejects the whole
// file, naming the line: half a deny list is worse than the previous one.
func parseList(name string, data []byte) ([]netip.Prefix, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxFileBytes>>20)
	}
	var out []netip.Prefix
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxFileBytes)
	for line := 1; sc.Scan(); line++ {
		t := sc.Bytes()
		if i := bytes.IndexByte(t, '#'); i >= 0 {
			t = t[:i]
		}
		t = bytes.TrimSpace(t)
		if len(t) == 0 {
			continue
		}
		p, err := config.ParsePrefix(string(t))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return out, nil
}
