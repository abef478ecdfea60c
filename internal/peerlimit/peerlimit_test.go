package peerlimit

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::",
		"2001:db8:1:3::1":      "2001:db8:1:3::",
		"::1":                  "::",
	} {
		if got := Key(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("Key(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestAcquireRelease(t *testing.T) {
	var tb Table
	a, b := Key(netip.MustParseAddr("192.0.2.1")), Key(netip.MustParseAddr("2001:db8::1"))
	for i := 0; i < 3; i++ {
		if !tb.Acquire(a, 3) {
			t.Fatalf("acquire %d refused", i)
		}
	}
	if tb.Acquire(a, 3) {
		t.Fatal("fourth acquire allowed with max 3")
	}
	if !tb.Acquire(b, 3) {
		t.Fatal("another address is refused")
	}
	tb.Release(a)
	if !tb.Acquire(a, 3) {
		t.Fatal("acquire after a release refused")
	}
	for i := 0; i < 3; i++ {
		tb.Release(a)
	}
	tb.Release(b)
	for i := range tb.shards {
		if len(tb.shards[i].m) != 0 {
			t.Fatalf("shard %d keeps %v after every release", i, tb.shards[i].m)
		}
	}
}

// TestConcurrent checks that the cap holds under contention from many
// goroutines and that every count returns to zero.
func TestConcurrent(t *testing.T) {
	var tb Table
	k := Key(netip.MustParseAddr("198.51.100.7"))
	const limit = 5
	var wg sync.WaitGroup
	var held, peak atomic.Int32
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if !tb.Acquire(k, limit) {
					continue
				}
				n := held.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				held.Add(-1)
				tb.Release(k)
			}
		}()
	}
	wg.Wait()
	if peak.Load() > limit || tb.Count(k) != 0 {
		t.Fatalf("peak %d (max %d), left %d", peak.Load(), limit, tb.Count(k))
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	var tb Table
	b.RunParallel(func(pb *testing.PB) {
		i := byte(0)
		for pb.Next() {
			i++
			k := netip.AddrFrom4([4]byte{10, 0, 0, i})
			tb.Acquire(k, 100)
			tb.Release(k)
		}
	})
}
