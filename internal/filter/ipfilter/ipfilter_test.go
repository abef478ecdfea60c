package ipfilter

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := config.ParsePrefix(s)
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

func TestSetContains(t *testing.T) {
	s := newSet(prefixes("10.0.0.0/8", "10.1.0.0/16", "192.0.2.1", "192.0.2.2", "0.0.0.0/32", "255.255.255.255", "2001:db8::/32", "::ffff:198.51.100.0/120", "fe80::1"))
	if len(s.v4) != 5 { // 10/8, 192.0.2.1-2 merged, 0.0.0.0, 198.51.100/24, 255.255.255.255
		t.Errorf("v4 ranges %v, want 5", s.v4)
	}
	for ip, want := range map[string]bool{
		"10.0.0.0": true, "10.255.255.255": true, "11.0.0.0": false, "9.255.255.255": false,
		"192.0.2.1": true, "192.0.2.2": true, "192.0.2.3": false, "0.0.0.0": true, "0.0.0.1": false,
		"255.255.255.255": true, "198.51.100.77": true, "::ffff:10.2.3.4": true,
		"2001:db8::1": true, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff": true, "2001:db9::": false,
		"fe80::1": true, "fe80::1%eth0": true, "fe80::2": false, "::a00:1": false, // ::10.0.0.1 is IPv6, not 10.0.0.1
	} {
		if got := s.contains(netip.MustParseAddr(ip)); got != want {
			t.Errorf("contains(%s) = %v, want %v", ip, got, want)
		}
	}
	if s.contains(netip.Addr{}) {
		t.Error("the zero address matched")
	}
	all := newSet(prefixes("0.0.0.0/0", "::/0"))
	if !all.contains(netip.MustParseAddr("1.2.3.4")) || !all.contains(netip.MustParseAddr("ffff::1")) || len(all.v4) != 1 || len(all.v6) != 1 {
		t.Errorf("/0 prefixes: %v %v", all.v4, all.v6)
	}
	// ::/0 is the IPv6 family only: an IPv4 client is not in it.
	if newSet(prefixes("::/0")).contains(netip.MustParseAddr("1.2.3.4")) {
		t.Error("::/0 matched an IPv4 client")
	}
}

// The compiled set agrees with a plain scan of the prefixes.
func TestSetMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	addr := func() netip.Addr {
		if r.IntN(2) == 0 {
			return netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		}
		var b [16]byte
		b[0], b[1], b[15] = 0x20, byte(r.IntN(3)), byte(r.IntN(256))
		return netip.AddrFrom16(b)
	}
	for range 200 {
		var ps []netip.Prefix
		for range r.IntN(20) {
			a := addr()
			ps = append(ps, netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).Masked())
		}
		s := newSet(ps)
		for range 200 {
			a := addr()
			want := false
			for _, p := range ps {
				want = want || p.Contains(a)
			}
			if got := s.contains(a); got != want {
				t.Fatalf("prefixes %v: contains(%s) = %v, scan says %v", ps, a, got, want)
			}
		}
	}
}

func TestContainsAllocatesNothing(t *testing.T) {
	var ps []netip.Prefix
	for i := range 10000 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	s := newSet(ps, prefixes("2001:db8::/48"))
	a4, a6 := netip.MustParseAddr("10.20.30.40"), netip.MustParseAddr("2001:db8::5")
	if n := testing.AllocsPerRun(1000, func() { s.contains(a4); s.contains(a6) }); n != 0 {
		t.Fatalf("%v allocations per lookup", n)
	}
}

func TestParseList(t *testing.T) {
	ps, err := parseList("l.txt", []byte("# blocked\n10.0.0.0/8\n\n  192.0.2.9  # one host\n2001:db8::/32\r\n"))
	if err != nil || len(ps) != 3 {
		t.Fatalf("parseList = %v, %v", ps, err)
	}
	if _, err := parseList("l.txt", []byte("10.0.0.0/8\n10.0.0.0/33\n")); err == nil || !strings.Contains(err.Error(), "l.txt:2: invalid IP prefix") {
		t.Fatalf("bad line: %v", err)
	}
	if _, err := parseList("l.txt", []byte("fe80::1%eth0\n")); err == nil {
		t.Fatal("a zoned address was accepted")
	}
}

// build makes the filter of the first route's first middleware of text.
func build(t testing.TB, text string, st *filter.State, log *slog.Logger) (*Filter, error) {
	t.Helper()
	cfg, err := config.Parse("ip.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	b := &filter.Build{Config: cfg, Entry: cfg.Sites[0].Routes[0].Middleware[0], Log: log, State: st, Metrics: prometheus.NewRegistry()}
	f, err := New(b)
	if err != nil {
		return nil, err
	}
	return f.(*Filter), nil
}

func cfgText(mw string) string {
	return "listeners: [{addr: \"127.0.0.1:0\"}]\nsites:\n  - routes:\n      - respond: {body: hi}\n        middleware:\n          - ip_filter: " + mw + "\n"
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("10.0.0.0/8\nnonsense\n"), 0o644)
	for _, c := range []struct{ mw, want string }{
		{`{}`, `ip.yaml:6:13: sites[0].routes[0].middleware[0].ip_filter: needs at least one of allow, deny, allow_file, deny_file`},
		{`{allow: [10.0.0.0/33]}`, `ip.yaml:6:33: sites[0].routes[0].middleware[0].ip_filter.allow[0]: invalid IP prefix`},
		{`{deny: [nope]}`, `ip_filter.deny[0]: invalid IP address "nope"`},
		{`{deny_file: ` + filepath.Join(dir, "missing.txt") + `}`, `ip_filter.deny_file: stat `},
		{`{allow_file: ` + bad + `}`, `bad.txt:2: invalid IP address "nonsense"`},
		{`{deny: [10.0.0.1], poll_interval: 1ms}`, `poll_interval: must be between 100ms and 1h`},
		{`{denny: [10.0.0.1]}`, `unknown field`},
	} {
		_, err := build(t, cfgText(c.mw), filter.NewState(nil), slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant an error containing %s", c.mw, err, c.want)
		}
	}
}

type recorder struct {
	status int
	body   bytes.Buffer
}

func (r *recorder) Write1xx(int, exchange.Headers) error { return nil }
func (r *recorder) WriteHead(status int, _ []byte, _ exchange.Headers, _ int64) error {
	r.status = status
	return nil
}
func (r *recorder) Write(p []byte) (int, error)          { return r.body.Write(p) }
func (r *recorder) Flush() error                         { return nil }
func (r *recorder) Finish(exchange.Headers) error        { return nil }
func (r *recorder) Hijack() (net.Conn, io.Reader, error) { return nil, nil, fmt.Errorf("no") }
func (r *recorder) StopBody()                            {}
func (r *recorder) Abort()                               {}
func (r *recorder) Written() (bool, int64)               { return r.status != 0, int64(r.body.Len()) }

func status(f *Filter, ip string) (int, string) {
	rec := &recorder{}
	x := &filter.Exchange{Req: &exchange.Request{Method: []byte("GET")}, W: rec}
	if ip != "" {
		x.ClientIP = netip.MustParseAddr(ip)
	}
	f.Serve(x, filter.HandlerFunc(func(x *filter.Exchange) { x.W.WriteHead(200, nil, nil, 0) }))
	return rec.status, x.Log.Blocked
}

func TestSemantics(t *testing.T) {
	st := filter.NewState(nil)
	defer st.Close()
	denyOnly, err := build(t, cfgText(`{deny: [203.0.113.0/24, "2001:db8::/32"]}`), st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]int{"203.0.113.5": 403, "198.51.100.1": 200, "2001:db8::1": 403, "::1": 200, "": 200} {
		if got, _ := status(denyOnly, ip); got != want {
			t.Errorf("deny only, %q: %d, want %d", ip, got, want)
		}
	}
	both, err := build(t, cfgText(`{allow: [10.0.0.0/8], deny: [10.9.0.0/16]}`), filter.NewState(nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]int{"10.1.2.3": 200, "10.9.1.1": 403, "192.0.2.1": 403, "::1": 403, "": 403} {
		if got, blocked := status(both, ip); got != want || (want == 403) != (blocked == "ip_filter") {
			t.Errorf("allow+deny, %q: %d blocked=%q, want %d", ip, got, blocked, want)
		}
	}
	var m dto.Metric
	both.refused.refused.Write(&m)
	if m.GetCounter().GetValue() != 4 {
		t.Errorf("refusals counted: %v, want 4", m.GetCounter().GetValue())
	}
}

// syncLog is a log destination the poller and the test share.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestFilesAreReloadedAndBadVersionsIgnored(t *testing.T) {
	dir := t.TempDir()
	deny := filepath.Join(dir, "deny.txt")
	write := func(s string) {
		tmp := deny + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, deny); err != nil {
			t.Fatal(err)
		}
	}
	write("192.0.2.1\n")
	logs := &syncLog{}
	st := filter.NewState(nil)
	f, err := build(t, cfgText(`{deny_file: `+deny+`, poll_interval: 100ms}`), st, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	wait := func(ip string, want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, _ := status(f, ip)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d, want %d within 5s\nlog:\n%s", ip, got, want, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("192.0.2.1", 403)
	wait("192.0.2.2", 200)
	write("192.0.2.2\n")
	wait("192.0.2.2", 403)
	wait("192.0.2.1", 200)
	write("192.0.2.3\nbroken line\n")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "list file rejected") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `deny.txt:2: invalid IP address \"broken\"`) && !strings.Contains(logs.String(), `broken`) {
		t.Fatalf("the broken file was not logged:\n%s", logs.String())
	}
	if got, _ := status(f, "192.0.2.2"); got != 403 {
		t.Fatalf("after a broken version: %d, want the last good list kept", got)
	}
	if got, _ := status(f, "192.0.2.3"); got != 200 {
		t.Fatalf("after a broken version: 192.0.2.3 got %d, want 200", got)
	}
	os.Remove(deny)
	time.Sleep(300 * time.Millisecond)
	if got, _ := status(f, "192.0.2.2"); got != 403 {
		t.Fatalf("after the file was removed: %d, want the last good list kept", got)
	}
	write("192.0.2.4\n")
	wait("192.0.2.4", 403)

	// A reload with the same settings keeps the watcher (and its list);
	// Close stops the poller.
	st2 := filter.NewState(st)
	f2, err := build(t, cfgText(`{deny_file: `+deny+`, poll_interval: 100ms}`), st2, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if f2.l != f.l {
		t.Fatal("a reload with the same settings made a new watcher")
	}
	st2.Retire(st)
	st2.Close()
	select {
	case <-f.l.done:
	case <-time.After(time.Second):
		t.Fatal("Close did not stop the poller")
	}
}

func BenchmarkContains(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var ps []netip.Prefix
			for i := range n {
				ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 14), byte(i >> 6), byte(i << 2)}), 31))
			}
			s := newSet(ps)
			a := netip.MustParseAddr("10.0.200.7")
			b.ReportAllocs()
			for b.Loop() {
				s.contains(a)
			}
		})
	}
}
