package ratelimit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in    string
		count int64
		per   time.Duration
		err   string
	}{
		{"100/s", 100, time.Second, ""},
		{"6000/m", 6000, time.Minute, ""},
		{" 10 / hour ", 10, time.Hour, ""},
		{"1000/d", 1000, 24 * time.Hour, ""},
		{"5/10s", 5, 10 * time.Second, ""},
		{"30/1m30s", 30, 90 * time.Second, ""},
		{"100", 0, 0, "COUNT/PERIOD"},
		{"0/s", 0, 0, "between 1"},
		{"-1/s", 0, 0, "whole number"},
		{"1.5/s", 0, 0, "whole number"},
		{"99999999999999999999/s", 0, 0, "between 1"},
		{"10/y", 0, 0, "period"},
		{"10/-1s", 0, 0, "period"},
		{"10/0s", 0, 0, "more than 0"},
		{"10/9999h", 0, 0, "at most 366 days"},
		{"1000000000/100ms", 0, 0, "nanosecond"},
		{"10/", 0, 0, "period"},
	} {
		r, err := ParseRate(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseRate(%q) = %v, %v; want error with %q", c.in, r, err, c.err)
			}
			continue
		}
		if err != nil || r.Count != c.count || r.Period != c.per {
			t.Errorf("ParseRate(%q) = %v, %v; want %d per %v", c.in, r, err, c.count, c.per)
		}
	}
}

func TestParseParts(t *testing.T) {
	good := [][]string{{"client_ip"}, {"route"}, {"header:X-Api-Key"}, {"query:key"}, {"client_ip", "header:X-Api-Key", "route"}}
	for _, g := range good {
		if _, err := parseParts(g); err != nil {
			t.Errorf("parseParts(%q): %v", g, err)
		}
	}
	for _, c := range []struct {
		in  []string
		err string
	}{
		{nil, "at least one"},
		{[]string{"ip"}, "unknown key"},
		{[]string{"header:"}, "not an HTTP token"},
		{[]string{"header:X Y"}, "not an HTTP token"},
		{[]string{"query:a=b"}, "query parameter name"},
		{[]string{"header:X-A", "header:x-a"}, "listed twice"},
		{[]string{"client_ip", "client_ip"}, "listed twice"},
		{strings.Split("client_ip,route,header:a,header:b,header:c,header:d,header:e,header:f,header:g", ","), "at most 8"},
	} {
		if _, err := parseParts(c.in); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("parseParts(%q) = %v, want an error with %q", c.in, err, c.err)
		}
	}
}

func TestGCRA(t *testing.T) {
	const T, burst = int64(100), 3 // one request per 100 ns, 3 at once
	tat := int64(0)
	var d decision
	for i := range burst {
		tat, d = gcra(tat, 1000, T, T*burst)
		if !d.allowed || d.remaining != int64(burst-1-i) {
			t.Fatalf("request %d of the burst: %+v", i, d)
		}
	}
	tat, d = gcra(tat, 1000, T, T*burst)
	if d.allowed || d.retry != 100 || d.reset != 300 {
		t.Fatalf("over the burst: %+v, want refused, retry 100ns, reset 300ns", d)
	}
	// One emission interval later exactly one more passes.
	tat, d = gcra(tat, 1100, T, T*burst)
	if !d.allowed || d.remaining != 0 {
		t.Fatalf("after one interval: %+v", d)
	}
	if _, d = gcra(tat, 1100, T, T*burst); d.allowed {
		t.Fatal("a second request in the same interval passed")
	}
	// Long idle: a full bucket again, not more.
	if _, d = gcra(tat, 1_000_000, T, T*burst); !d.allowed || d.remaining != burst-1 {
		t.Fatalf("after idling: %+v, want remaining %d", d, burst-1)
	}
}

func TestLocalStoreStaysBounded(t *testing.T) {
	s := newLocalStore(1024)
	defer s.Close()
	hour := int64(time.Hour) // buckets that stay non-full for an hour: nothing expires
	var key [8]byte
	for i := range 200_000 {
		key[0], key[1], key[2] = byte(i), byte(i>>8), byte(i>>16)
		if d := s.take(key[:], hour/10, hour); !d.allowed {
			t.Fatalf("a new key was refused at %d", i)
		}
	}
	if n := s.len(); n > 1024 || n < 900 {
		t.Fatalf("flood of 200000 keys left %d entries, want at most max_keys=1024 (and close to it)", n)
	}
	if s.evicted.Load() < 200_000-1024 {
		t.Fatalf("evicted %d", s.evicted.Load())
	}
	// Buckets that are full again are swept.
	s2 := newLocalStore(1024)
	defer s2.Close()
	for i := range 500 {
		key[0], key[1] = byte(i), byte(i>>8)
		s2.take(key[:], 1, 1) // full again one nanosecond later
	}
	time.Sleep(time.Millisecond)
	for i := range s2.shards {
		sh := &s2.shards[i]
		sh.mu.Lock()
		sweep(sh, s2.now())
		sh.mu.Unlock()
	}
	if n := s2.len(); n != 0 {
		t.Fatalf("%d expired entries survived a sweep", n)
	}
}

func TestLocalStoreShrinksAfterFlood(t *testing.T) {
	s := newLocalStore(1 << 20)
	defer s.Close()
	var key [8]byte
	for i := range 200_000 {
		key[0], key[1], key[2] = byte(i), byte(i>>8), byte(i>>16)
		s.take(key[:], 1, 1)
	}
	time.Sleep(time.Millisecond)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sweep(sh, s.now())
		if sh.peak > 1024 {
			t.Errorf("shard %d peak %d after the sweep: its map was not rebuilt", i, sh.peak)
		}
		sh.mu.Unlock()
	}
}

func exch(method, ip, route string, query string, headers ...string) *filter.Exchange {
	req := &exchange.Request{Method: []byte(method), Query: []byte(query)}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add([]byte(headers[i]), []byte(headers[i+1]))
	}
	return &filter.Exchange{Ctx: context.Background(), Req: req, ClientIP: netip.MustParseAddr(ip), Route: route}
}

func TestKeys(t *testing.T) {
	k := keySpec{parts: []part{{kind: partClientIP}}, ipv4Prefix: 32, ipv6Prefix: 64}
	mat := func(k keySpec, x *filter.Exchange) string { return string(k.appendKey(nil, x)) }
	same := func(a, b string) {
		t.Helper()
		if a != b {
			t.Errorf("want the same key, got %x and %x", a, b)
		}
	}
	differ := func(a, b string) {
		t.Helper()
		if a == b {
			t.Errorf("want different keys, both %x", a)
		}
	}
	same(mat(k, exch("GET", "2001:db8:1:2:aaaa::1", "", "")), mat(k, exch("GET", "2001:db8:1:2:bbbb::9", "", "")))
	differ(mat(k, exch("GET", "2001:db8:1:2::1", "", "")), mat(k, exch("GET", "2001:db8:1:3::1", "", "")))
	differ(mat(k, exch("GET", "192.0.2.1", "", "")), mat(k, exch("GET", "192.0.2.2", "", "")))
	k.ipv4Prefix = 24
	same(mat(k, exch("GET", "192.0.2.1", "", "")), mat(k, exch("GET", "192.0.2.200", "", "")))
	// ::c000:201 is not 192.0.2.1: the family is part of the key.
	differ(mat(k, exch("GET", "192.0.2.1", "", "")), mat(k, exch("GET", "::ffff:0:c000:201", "", "")))

	h := keySpec{parts: []part{{kind: partHeader, name: "X-Api-Key"}}}
	differ(mat(h, exch("GET", "::1", "", "")), mat(h, exch("GET", "::1", "", "", "X-Api-Key", "")))
	same(mat(h, exch("GET", "::1", "", "", "x-api-key", "abc")), mat(h, exch("GET", "192.0.2.1", "", "", "X-API-KEY", " abc ")))
	differ(mat(h, exch("GET", "::1", "", "", "X-Api-Key", "abc")), mat(h, exch("GET", "::1", "", "", "X-Api-Key", "abd")))

	q := keySpec{parts: []part{{kind: partQuery, name: "api key"}}}
	same(mat(q, exch("GET", "::1", "", "x=1&api+key=a%20b")), mat(q, exch("GET", "::1", "", "api%20key=a+b&api+key=other")))
	differ(mat(q, exch("GET", "::1", "", "api+key=")), mat(q, exch("GET", "::1", "", "x=1")))

	// Combinations cannot be confused by moving bytes between components.
	c := keySpec{parts: []part{{kind: partHeader, name: "A"}, {kind: partHeader, name: "B"}}}
	differ(mat(c, exch("GET", "::1", "", "", "A", "xy", "B", "z")), mat(c, exch("GET", "::1", "", "", "A", "x", "B", "yz")))
	r := keySpec{parts: []part{{kind: partRoute}, {kind: partClientIP}}, ipv4Prefix: 32, ipv6Prefix: 64}
	differ(mat(r, exch("GET", "::1", "sites[0].routes[0]", "")), mat(r, exch("GET", "::1", "sites[0].routes[1]", "")))
}

// build makes the filter of the first route's first middleware of text.
func build(t testing.TB, text string, st *filter.State, reg prometheus.Registerer) (*Filter, error) {
	t.Helper()
	cfg, err := config.Parse("rl.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	b := &filter.Build{Config: cfg, Entry: cfg.Sites[0].Routes[0].Middleware[0], Log: slog.New(slog.DiscardHandler), State: st, Metrics: reg}
	f, err := New(b)
	if err != nil {
		return nil, err
	}
	return f.(*Filter), nil
}

func cfgText(mw string) string {
	return "listeners: [{addr: \"127.0.0.1:0\"}]\nsites:\n  - routes:\n      - respond: {body: hi}\n        middleware:\n          - rate_limit: " + mw + "\n"
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ mw, want string }{
		{`{}`, `rl.yaml:6:13: sites[0].routes[0].middleware[0].rate_limit.rate: required`},
		{`{rate: 10}`, `rate_limit.rate: want COUNT/PERIOD`},
		{`{rate: 10/x}`, `rl.yaml:6:32: sites[0].routes[0].middleware[0].rate_limit.rate: period "x"`},
		{`{rate: 10/s, burst: 0}`, `rate_limit.burst: must be between 1`},
		{`{rate: 1/d, burst: 1000}`, `more than a year`},
		{`{rate: 10/s, key: ip}`, `rl.yaml:6:43: sites[0].routes[0].middleware[0].rate_limit.key: unknown key "ip"`},
		{`{rate: 10/s, key: [client_ip, 3]}`, `rl.yaml:6:55: sites[0].routes[0].middleware[0].rate_limit.key: expected a string`},
		{`{rate: 10/s, key: {a: b}}`, `rate_limit.key: expected a string or a list`},
		{`{rate: 10/s, store: memcached}`, `rate_limit.store: "memcached": want local or redis`},
		{`{rate: 10/s, store: redis}`, `rate_limit.store: needs cluster.redis`},
		{`{rate: 10/s, on_store_error: deny}`, `rate_limit.on_store_error: only applies to store: redis`},
		{`{rate: 10/s, key: route, ipv6_prefix: 48}`, `ipv6_prefix: only applies when key includes client_ip`},
		{`{rate: 10/s, ipv4_prefix: 33}`, `ipv4_prefix: must be between 1 and 32`},
		{`{rate: 10/s, max_keys: 1}`, `max_keys: must be between 64`},
		{`{rate: 10/s, name: "a b"}`, `name: "a b"`},
		{`{rate: 10/s, burts: 3}`, `unknown field`},
	} {
		_, err := build(t, cfgText(c.mw), filter.NewState(nil), prometheus.NewRegistry())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant an error containing %s", c.mw, err, c.want)
		}
	}
}

// recorder is the response side of a unit test: it keeps what a filter or
// the final handler wrote.
type recorder struct {
	status int
	h      http1Headers
	body   bytes.Buffer
}

type http1Headers []exchange.Header

func (r *recorder) Write1xx(int, exchange.Headers) error { return nil }
func (r *recorder) WriteHead(status int, _ []byte, h exchange.Headers, _ int64) error {
	r.status = status
	r.h = append(r.h[:0], h...)
	return nil
}
func (r *recorder) Write(p []byte) (int, error)          { return r.body.Write(p) }
func (r *recorder) Flush() error                         { return nil }
func (r *recorder) Finish(exchange.Headers) error        { return nil }
func (r *recorder) Hijack() (net.Conn, io.Reader, error) { return nil, nil, fmt.Errorf("no") }
func (r *recorder) StopBody()                            {}
func (r *recorder) Abort()                               {}
func (r *recorder) Written() (bool, int64)               { return r.status != 0, int64(r.body.Len()) }
func (r *recorder) get(name string) string               { return string(exchange.Headers(r.h).Get(name)) }

var okHandler = filter.HandlerFunc(func(x *filter.Exchange) {
	x.W.WriteHead(200, nil, nil, 2)
	x.W.Write([]byte("ok"))
})

func serve(f *Filter, x *filter.Exchange) *recorder {
	rec := &recorder{}
	x.W = rec
	f.Serve(x, okHandler)
	return rec
}

func TestFilterLimitsAndAnswersWithHeaders(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := filter.NewState(nil)
	defer st.Close()
	f, err := build(t, cfgText(`{rate: 2/m, burst: 3, name: api}`), st, reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		rec := serve(f, exch("GET", "192.0.2.7", "r", ""))
		if rec.status != 200 || rec.get("RateLimit-Policy") != `"api";q=3;w=90` || rec.get("RateLimit") != fmt.Sprintf(`"api";r=%d;t=%d`, 2-i, 30*(i+1)) {
			t.Fatalf("request %d: %d policy=%q ratelimit=%q", i, rec.status, rec.get("RateLimit-Policy"), rec.get("RateLimit"))
		}
	}
	x := exch("GET", "192.0.2.7", "r", "")
	rec := serve(f, x)
	if rec.status != 429 || rec.get("Retry-After") != "30" || rec.get("RateLimit") != `"api";r=0;t=90` || rec.body.String() != "429 Too Many Requests\n" || x.Log.Blocked != "rate_limit" {
		t.Fatalf("over the limit: %d Retry-After=%q RateLimit=%q body=%q blocked=%q", rec.status, rec.get("Retry-After"), rec.get("RateLimit"), rec.body.String(), x.Log.Blocked)
	}
	if rec := serve(f, exch("HEAD", "192.0.2.7", "r", "")); rec.status != 429 || rec.body.Len() != 0 {
		t.Fatalf("HEAD over the limit: %d with %d body bytes", rec.status, rec.body.Len())
	}
	if rec := serve(f, exch("GET", "192.0.2.8", "r", "")); rec.status != 200 {
		t.Fatalf("another client: %d", rec.status)
	}
	path := "sites[0].routes[0].middleware[0].rate_limit"
	m, _ := filter.Keep(st, "ratelimit.metrics", func() (*metrics, error) { return nil, fmt.Errorf("not kept") })
	if a, l := counterValue(m.requests.WithLabelValues(path, "allowed")), counterValue(m.requests.WithLabelValues(path, "limited")); a != 4 || l != 2 {
		t.Fatalf("metrics allowed=%v limited=%v, want 4 and 2", a, l)
	}

	// A reload with the same settings keeps the buckets; another rate starts afresh.
	st2 := filter.NewState(st)
	f2, err := build(t, cfgText(`{rate: 2/m, burst: 3, name: api}`), st2, reg)
	if err != nil {
		t.Fatal(err)
	}
	if f2.local != f.local {
		t.Fatal("a reload with unchanged settings made a new store")
	}
	if rec := serve(f2, exch("GET", "192.0.2.7", "r", "")); rec.status != 429 {
		t.Fatalf("after the reload: %d, want still limited", rec.status)
	}
	st3 := filter.NewState(st2)
	f3, err := build(t, cfgText(`{rate: 3/m, burst: 3, name: api}`), st3, reg)
	if err != nil {
		t.Fatal(err)
	}
	st3.Retire(st2)
	if rec := serve(f3, exch("GET", "192.0.2.7", "r", "")); rec.status != 200 {
		t.Fatalf("after a reload with a new rate: %d", rec.status)
	}
	st3.Close()
}

func TestNoHeadersOnAllowedWhenOff(t *testing.T) {
	st := filter.NewState(nil)
	defer st.Close()
	f, err := build(t, cfgText(`{rate: 1/s, headers: false}`), st, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if rec := serve(f, exch("GET", "::1", "r", "")); rec.status != 200 || rec.get("RateLimit") != "" {
		t.Fatalf("allowed: %d RateLimit=%q", rec.status, rec.get("RateLimit"))
	}
	if rec := serve(f, exch("GET", "::1", "r", "")); rec.status != 429 || rec.get("RateLimit") == "" {
		t.Fatalf("refused: %d RateLimit=%q (always sent with a 429)", rec.status, rec.get("RateLimit"))
	}
}

// The shared headers of a fixed response must not be written into.
func TestHeaderWriterCopiesTheCallersHeaders(t *testing.T) {
	st := filter.NewState(nil)
	defer st.Close()
	f, err := build(t, cfgText(`{rate: 100/s}`), st, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	shared := make(exchange.Headers, 1, 8)
	shared[0] = exchange.Header{Name: []byte("A"), Value: []byte("1")}
	rec := &recorder{}
	x := exch("GET", "::1", "r", "")
	x.W = rec
	f.Serve(x, filter.HandlerFunc(func(x *filter.Exchange) { x.W.WriteHead(200, nil, shared, 0) }))
	if spare := shared[:2]; spare[1].Name != nil {
		t.Fatalf("the filter wrote %q into the caller's spare capacity", spare[1].Name)
	}
	if len(rec.h) != 3 || rec.get("A") != "1" {
		t.Fatalf("headers sent: %q", rec.h)
	}
}

func TestServeAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops objects)")
	}
	st := filter.NewState(nil)
	defer st.Close()
	f, err := build(t, cfgText(`{rate: 1000000000/s, key: [client_ip, header:X-Api-Key]}`), st, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	x := exch("GET", "2001:db8::1", "r", "", "X-Api-Key", "k1")
	rec := &recorder{}
	final := filter.HandlerFunc(func(x *filter.Exchange) { x.W.WriteHead(200, nil, nil, 0) })
	serveOnce := func() {
		x.W = rec
		f.Serve(x, final)
	}
	serveOnce()
	if n := testing.AllocsPerRun(1000, serveOnce); n > 0.01 {
		t.Fatalf("%v allocations per allowed request", n)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// BenchmarkServeLocal is the filter alone, every goroutine with a client of
// its own (spread over the shards), or all on one key (one shard's lock).
func BenchmarkServeLocal(b *testing.B) {
	for _, shared := range []bool{false, true} {
		b.Run(fmt.Sprintf("one_key=%t", shared), func(b *testing.B) {
			st := filter.NewState(nil)
			defer st.Close()
			f, err := build(b, cfgText(`{rate: 1000000000/s}`), st, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			final := filter.HandlerFunc(func(x *filter.Exchange) { x.W.WriteHead(200, nil, nil, 0) })
			var n atomic.Int32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ip := "192.0.2.1"
				if !shared {
					ip = fmt.Sprintf("10.0.%d.1", n.Add(1))
				}
				x := exch("GET", ip, "r", "")
				rec := &recorder{}
				for pb.Next() {
					x.W = rec
					f.Serve(x, final)
				}
			})
		})
	}
}
