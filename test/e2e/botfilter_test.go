package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/miekg/dns"
)

// crawlerDNS is a DNS server on loopback that knows three "crawlers":
// 127.0.0.1 is crawl-1.googlebot.com (and that name resolves back to it),
// 127.0.0.2 claims a name outside Google's domains, and 127.0.0.3 has a
// googlebot.com PTR name whose address is somewhere else.
type crawlerDNS struct {
	addr    string
	queries atomic.Int64
}

func startCrawlerDNS(t *testing.T) *crawlerDNS {
	d := &crawlerDNS{}
	rev := func(ip string) string { s, _ := dns.ReverseAddr(ip); return s }
	ptr := map[string]string{rev("127.0.0.1"): "crawl-1.googlebot.com.", rev("127.0.0.2"): "crawl-2.evil.test.", rev("127.0.0.3"): "crawl-3.googlebot.com."}
	a := map[string]string{"crawl-1.googlebot.com.": "127.0.0.1", "crawl-2.evil.test.": "127.0.0.2", "crawl-3.googlebot.com.": "10.0.0.3"}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = pc.LocalAddr().String()
	started := make(chan struct{})
	var once sync.Once
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { once.Do(func() { close(started) }) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			d.queries.Add(1)
			m := new(dns.Msg)
			m.SetReply(r)
			q := r.Question[0]
			hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 60}
			switch {
			case q.Qtype == dns.TypePTR && ptr[q.Name] != "":
				m.Answer = append(m.Answer, &dns.PTR{Hdr: hdr, Ptr: ptr[q.Name]})
			case q.Qtype == dns.TypeA && a[q.Name] != "":
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP(a[q.Name]).To4()})
			case q.Qtype == dns.TypeAAAA:
			default:
				m.Rcode = dns.RcodeNameError
			}
			w.WriteMsg(m)
		})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

// clientFrom is an HTTP client whose connections come from localIP.
func botClientFrom(t *testing.T, localIP string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	tr := &http.Transport{Proxy: nil, DialContext: d.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

func getUA(t *testing.T, c *http.Client, url, ua, cookie string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("User-Agent", ua)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (UA %q): %v", url, ua, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBotFilterUserAgentsAndVerifiedCrawlers(t *testing.T) {
	d := startCrawlerDNS(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "welcome") }))
	t.Cleanup(backend.Close)
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
access_log: {enabled: true, output: stdout}
upstreams: {app: {targets: ["%s"]}}
sites:
  - routes:
      - upstream: app
        middleware:
          - bot_filter:
              deny_user_agents: ["~(?i)badbot", "curl"]
              allow_user_agents: ["~^Monitor/"]
              verified_crawlers: [{user_agent: "~Googlebot", rdns_suffixes: [.googlebot.com, .google.com]}]
              resolver: %s
              lookup_timeout: 2s
`, backend.URL, d.addr))
	local := botClientFrom(t, "127.0.0.1")
	for _, c := range []struct {
		from, ua string
		want     int
	}{
		{"127.0.0.1", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", 200},
		{"127.0.0.1", "Mozilla/5.0 (compatible; BADBOT/2.0)", 403},
		{"127.0.0.1", "curl/8.5.0", 403},
		{"127.0.0.1", "Monitor/1.0 curl", 200}, // the allow list comes first
		{"127.0.0.1", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 200},
		{"127.0.0.2", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 403}, // PTR outside google
		{"127.0.0.3", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 403}, // forward lookup elsewhere
		{"127.0.0.2", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", 200},                            // not claiming to be a crawler
	} {
		c0 := local
		if c.from != "127.0.0.1" {
			c0 = botClientFrom(t, c.from)
		}
		if st, body := getUA(t, c0, gh.URL("/page"), c.ua, ""); st != c.want {
			t.Errorf("from %s UA %q: %d %q, want %d", c.from, c.ua, st, body, c.want)
		}
	}
	// Verdicts are cached: the real crawler and the fake ones cost no more lookups.
	n := d.queries.Load()
	for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		getUA(t, botClientFrom(t, from), gh.URL("/again"), "Googlebot/2.1", "")
	}
	if d.queries.Load() != n {
		t.Errorf("%d more DNS queries for addresses already checked", d.queries.Load()-n)
	}
	var reasons []string
	waitFor(5*time.Second, func() bool {
		reasons = reasons[:0]
		for _, l := range accessLines(gh.stdout.String()) {
			if b, _ := l["blocked"].(string); b != "" {
				reasons = append(reasons, b)
			}
		}
		return len(reasons) >= 6
	})
	want := "bot_filter:deny_user_agent bot_filter:deny_user_agent bot_filter:unverified_crawler bot_filter:unverified_crawler bot_filter:unverified_crawler bot_filter:unverified_crawler"
	if strings.Join(reasons, " ") != want {
		t.Errorf("access log blocked fields %v, want %s", reasons, want)
	}
}

const challengeConfig = `listeners: [{addr: "{{LISTEN}}"}]
access_log: {enabled: true, output: stdout}
upstreams: {app: {targets: ["%s"]}}
sites:
  - routes:
      - upstream: app
        middleware:
          - bot_filter:
              challenge:
                secret_file: %s
                ttl: 10m
                cookie_name: gh_check
                challenge_user_agents: ["~(?i)headless", "python-requests"]
`

func TestBotFilterChallengeLetsBrowsersInAndKeepsScriptsOut(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "challenge.key")
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(secret, key, 0o600); err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<!doctype html><title>shop</title><h1 id="welcome">welcome to the shop</h1>`)
	}))
	t.Cleanup(backend.Close)
	gh := startGatehouse(t, fmt.Sprintf(challengeConfig, backend.URL, secret))
	url := gh.URL("/shop/index.html")

	// A plain client gets the challenge page (403), as often as it asks.
	plain := botClientFrom(t, "127.0.0.1")
	for _, ua := range []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36", "", "python-requests/2.31"} {
		for range 2 {
			st, body := getUA(t, plain, url, ua, "")
			if st != 403 || !strings.Contains(body, "<script>") || strings.Contains(body, "welcome") {
				t.Fatalf("suspect client (UA %q): %d %q, want the 403 challenge page", ua, st, body)
			}
		}
	}
	if st, body := getUA(t, plain, url, "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", ""); st != 200 || !strings.Contains(body, "welcome") {
		t.Fatalf("ordinary client: %d %q, want the page (only suspects are challenged)", st, body)
	}

	// A real browser runs the script, gets the cookie and the page.
	dir := t.TempDir()
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(dir),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true))
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	if err := chromedp.Do(ctx); err != nil { // starts the browser (no timeout on this first call)
		t.Fatalf("starting chromium: %v", err)
	}
	tctx, cancel3 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel3()
	if err := chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("welcome"))); err != nil {
		t.Fatalf("chromium did not get through the challenge: %v\ngatehouse log:\n%s", err, tail(gh.stdout.String(), 2000))
	}
	heading, err := chromedp.Run(tctx, chromedp.Text(chromedp.ID("welcome")))
	if err != nil {
		t.Fatal(err)
	}
	ua, err := chromedp.Run(tctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatal(err)
	}
	cookies, err := chromedp.Run(tctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		return r.Cookies, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	if heading != "welcome to the shop" || !strings.Contains(ua, "HeadlessChrome") {
		t.Fatalf("chromium got %q with UA %q", heading, ua)
	}
	var tok string
	for _, c := range cookies {
		if c.Name == "gh_check" {
			tok = c.Value
		}
	}
	if tok == "" {
		t.Fatalf("chromium has no gh_check cookie: %+v", cookies)
	}

	// The cookie is the browser's only: same network and user agent pass;
	// another /24, another user agent or a changed token do not.
	if st, _ := getUA(t, plain, url, ua, "gh_check="+tok); st != 200 {
		t.Errorf("the browser's cookie from the browser's address and UA: %d, want 200", st)
	}
	if st, _ := getUA(t, botClientFrom(t, "127.0.1.1"), url, ua, "gh_check="+tok); st != 403 {
		t.Errorf("the browser's cookie from another /24: %d, want 403", st)
	}
	if st, _ := getUA(t, plain, url, "python-requests/2.31", "gh_check="+tok); st != 403 {
		t.Errorf("the browser's cookie with another user agent: %d, want 403", st)
	}
	forged := tok[:len(tok)-2] + "AA"
	if forged == tok {
		forged = tok[:len(tok)-2] + "BB"
	}
	if st, _ := getUA(t, plain, url, ua, "gh_check="+forged); st != 403 {
		t.Errorf("a changed token: %d, want 403", st)
	}
}
