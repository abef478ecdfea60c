package ipfilter

import (
	"net/netip"
	"testing"
)

// FuzzParseList feeds list files to the parser and checks that every
// accepted entry is found by the compiled set, as a plain scan finds it.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8\n", "# c\n\n192.0.2.1 # host\n", "2001:db8::/32\r\n::ffff:10.0.0.0/104\n", "0.0.0.0/0\n::/0\n",
		"10.0.0.0/33\n", "fe80::1%eth0\n", "1.2.3.4/32\n1.2.3.5\n1.2.3.0/30\n", "\x00\n", "::/128\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n",
	} {
		f.Add([]byte(s), "1.2.3.4")
	}
	f.Fuzz(func(t *testing.T, data []byte, probe string) {
		ps, err := parseList("f", data)
		if err != nil {
			return
		}
		s := newSet(ps)
		for _, p := range ps {
			if !s.contains(p.Addr()) {
				t.Fatalf("entry %s not found in its own set", p)
			}
		}
		a, err := netip.ParseAddr(probe)
		if err != nil {
			return
		}
		want := false
		for _, p := range ps {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			want = want || p.Contains(a.Unmap().WithZone(""))
		}
		if got := s.contains(a); got != want {
			t.Fatalf("list %q: contains(%s) = %v, scan says %v", data, a, got, want)
		}
	})
}
