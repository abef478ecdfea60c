package botfilter

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testDNS is a real DNS server on loopback answering from fixed tables.
type testDNS struct {
	addr    string
	queries atomic.Int64
	stall   atomic.Bool // never answer (the resolver hangs)
	ptr     map[string]string
	a       map[string][]string
}

func startTestDNS(t testing.TB, ptr map[string]string, a map[string][]string) *testDNS {
	d := &testDNS{ptr: ptr, a: a}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve)}
	var once sync.Once
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { once.Do(func() { close(started) }) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

func (d *testDNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	d.queries.Add(1)
	if d.stall.Load() {
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	switch q.Qtype {
	case dns.TypePTR:
		if p, ok := d.ptr[name]; ok {
			m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: p})
		} else {
			m.Rcode = dns.RcodeNameError
		}
	case dns.TypeA, dns.TypeAAAA:
		for _, s := range d.a[name] {
			ip := net.ParseIP(s)
			if ip.To4() != nil && q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: ip.To4()})
			} else if ip.To4() == nil && q.Qtype == dns.TypeAAAA {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}, AAAA: ip})
			}
		}
	}
	w.WriteMsg(m)
}

func arpa(t testing.TB, ip string) string {
	s, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestForwardConfirmedReverseDNS(t *testing.T) {
	d := startTestDNS(t, map[string]string{
		arpa(t, "192.0.2.1"):   "crawl-1.googlebot.com.",
		arpa(t, "192.0.2.2"):   "crawl-2.evil.test.",       // wrong domain
		arpa(t, "192.0.2.3"):   "crawl-3.googlebot.com.",   // forward lookup disagrees
		arpa(t, "192.0.2.4"):   "Crawl-4.GoogleBot.COM.",   // case does not matter
		arpa(t, "192.0.2.5"):   "googlebot.com.evil.test.", // suffix trick
		arpa(t, "2001:db8::1"): "crawl-6.googlebot.com.",   // IPv6
		arpa(t, "192.0.2.7"):   "notgooglebot.com.",        // not a subdomain
	}, map[string][]string{
		"crawl-1.googlebot.com.":   {"192.0.2.1"},
		"crawl-2.evil.test.":       {"192.0.2.2"},
		"crawl-3.googlebot.com.":   {"192.0.2.99"},
		"crawl-4.googlebot.com.":   {"192.0.2.4"},
		"googlebot.com.evil.test.": {"192.0.2.5"},
		"crawl-6.googlebot.com.":   {"2001:db8::1"},
		"notgooglebot.com.":        {"192.0.2.7"},
	})
	v := newVerifier(d.addr, time.Second, time.Hour, 4, 100)
	defer v.Close()
	sfx := []string{"googlebot.com", "google.com"}
	for ip, want := range map[string]bool{"192.0.2.1": true, "192.0.2.2": false, "192.0.2.3": false, "192.0.2.4": true,
		"192.0.2.5": false, "2001:db8::1": true, "192.0.2.7": false, "192.0.2.8": false} {
		if got := v.verify(context.Background(), netip.MustParseAddr(ip), sfx, "g"); got != want {
			t.Errorf("verify(%s) = %v, want %v", ip, got, want)
		}
	}
	n := d.queries.Load()
	for range 3 {
		v.verify(context.Background(), netip.MustParseAddr("192.0.2.1"), sfx, "g")
		v.verify(context.Background(), netip.MustParseAddr("192.0.2.2"), sfx, "g")
	}
	if d.queries.Load() != n {
		t.Errorf("cached answers went to the DNS server again (%d more queries)", d.queries.Load()-n)
	}
}

func TestLookupsAreBoundedInTimeAndShared(t *testing.T) {
	d := startTestDNS(t, nil, nil)
	d.stall.Store(true)
	v := newVerifier(d.addr, 200*time.Millisecond, time.Hour, 2, 100)
	defer v.Close()
	start := time.Now()
	var wg sync.WaitGroup
	var passed atomic.Int64
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 4)}) // 4 addresses, 5 requests each
			if v.verify(context.Background(), ip, []string{"googlebot.com"}, "g") {
				passed.Add(1)
			}
		}()
	}
	wg.Wait()
	if passed.Load() != 0 {
		t.Errorf("%d requests passed with a resolver that never answers", passed.Load())
	}
	// 4 distinct addresses, 2 lookups at a time, 200ms each: two rounds.
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("20 checks took %v with a hanging resolver; lookups must be bounded", el)
	}
	if q := d.queries.Load(); q > 4*3 { // one PTR per address (+ dns client retries at most)
		t.Errorf("%d queries for 4 addresses: concurrent checks of one address must share a lookup", q)
	}
}
