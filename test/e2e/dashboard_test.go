package e2e

// The live dashboard of the admin listener, driven in real headless
// Chromium while traffic flows: a backend is killed and the page must show
// its target red within the health check interval; the charts must have
// data. With GATEHOUSE_DASHBOARD_SCREENSHOT=FILE.png the test runs the
// traffic longer and saves a screenshot there (docs/dashboard.png is made
// this way).

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// newDashboardBrowser starts headless Chromium with a fresh profile; the context
// ends it when the test ends.
func newDashboardBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1080),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium (/usr/bin/chromium; make deps installs it): %v", err)
	}
	return ctx
}

// dashTraffic sends requests to the given URLs in turn, about rate a second
// from two clients (a slow answer does not stop the flow), until stop is
// closed or limit requests were sent.
func dashTraffic(stop chan struct{}, wg *sync.WaitGroup, rate int, limit int, urls ...string) {
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			tick := time.NewTicker(2 * time.Second / time.Duration(rate))
			defer tick.Stop()
			for i := w; i < limit; i += 2 {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if resp, err := c.Get(urls[i%len(urls)]); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
}

func TestDashboardShowsDeadTargetAndCharts(t *testing.T) {
	shot := os.Getenv("GATEHOUSE_DASHBOARD_SCREENSHOT")
	web := []*hcBackend{newHCBackendDelay(t, "web1", 2*time.Millisecond), newHCBackendDelay(t, "web2", 3*time.Millisecond),
		newHCBackendDelay(t, "web3", 2*time.Millisecond)}
	api := newHCBackendDelay(t, "api1", 8*time.Millisecond)
	// A check timeout generous enough that no live target flaps on a loaded
	// machine (a race-built binary on two busy cores).
	const interval = time.Second
	p := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
access_log: {enabled: false}
shutdown_timeout: 2s
upstreams:
  web:
    targets: [%s, %s, %s]
    balance: least_conn
    health:
      active: {path: /healthz, interval: %s, timeout: 800ms, fall: 1, rise: 1}
  api:
    targets: [%s]
    health:
      active: {path: /healthz, interval: %s, timeout: 800ms, fall: 1, rise: 1}
      passive: {max_fails: 1000, window: 10s, eject: 5s}
sites:
  - hosts: ["*"]
    routes:
      - match: {path_prefix: /api/}
        upstream: api
      - upstream: web
`, web[0].url(), web[1].url(), web[2].url(), interval, api.url(), interval))
	defer p.stop()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	dashTraffic(stop, &wg, 80, 20000, p.URL("/"), p.URL("/page"), p.URL("/api/items"))
	// Some failures for the error list and the error chart, early, so that
	// they have left the badge's five-second window when the kill comes.
	api.status.Store(503)
	failing := time.AfterFunc(time.Second, func() { api.status.Store(200) })
	defer failing.Stop()

	ctx := newDashboardBrowser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+p.Admin()+"/")); err != nil {
		t.Fatal(err)
	}
	// js evaluates an expression in the page ("" or 0 when it fails).
	js := func(expr string) string {
		v, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("String("+expr+")"))
		return v
	}
	state := func(addr string) string {
		return js(`(document.querySelector('#pools tr[data-target="` + addr + `"]') || {dataset: {}}).dataset.state`)
	}
	if !waitFor(10*time.Second, func() bool { return state(web[1].addr) == "up" }) {
		t.Fatalf("the dashboard does not show %s up: %q", web[1].addr, state(web[1].addr))
	}

	killed := time.Now()
	web[1].kill()
	// The check that fails comes within one interval (+10% jitter); the
	// page polls every second; the rest is margin for a loaded machine.
	limit := interval*11/10 + time.Second + 2500*time.Millisecond
	if !waitFor(limit, func() bool { return state(web[1].addr) == "down" }) {
		t.Fatalf("the dashboard did not show %s down within %v of the kill: %q", web[1].addr, limit, state(web[1].addr))
	}
	t.Logf("target shown down %v after the kill", time.Since(killed).Round(10*time.Millisecond))

	row := `document.querySelector('#pools tr[data-target="` + web[1].addr + `"]')`
	dot := js(`getComputedStyle(` + row + `.querySelector('.dot')).backgroundColor`)
	stateText := js(row + `.querySelector('td.state').textContent`)
	if dot != "rgb(255, 77, 79)" || stateText != "down" {
		t.Errorf("dead target: dot %s, state %q; want red (rgb(255, 77, 79)) and \"down\"", dot, stateText)
	}
	if other := js(`getComputedStyle(document.querySelector('#pools tr[data-target="` + web[0].addr + `"] .dot')).backgroundColor`); other != "rgb(46, 204, 113)" {
		t.Errorf("live target's dot is %s, want green (rgb(46, 204, 113))", other)
	}
	// The badge is red while the 503s above weigh in the last five
	// seconds' error rate, then amber: one of three targets down.
	var overall string
	if !waitFor(8*time.Second, func() bool {
		overall = js(`document.getElementById('overall').dataset.health`)
		return overall == "warn"
	}) {
		t.Errorf("overall health badge %q with one of three web targets down and no errors, want warn", overall)
	}
	// Charts: samples arrive once a second; wait for a few.
	var rpsPoints, latPoints, errRows string
	ok := waitFor(10*time.Second, func() bool {
		rpsPoints = js(`document.getElementById('chart-rps').dataset.points`)
		latPoints = js(`document.getElementById('chart-lat').dataset.points`)
		errRows = js(`document.querySelectorAll('#errors tr:not(.empty)').length`)
		a, _ := strconv.Atoi(rpsPoints)
		b, _ := strconv.Atoi(latPoints)
		c, _ := strconv.Atoi(errRows)
		return a >= 3 && b >= 6 && c > 0
	})
	if !ok {
		t.Errorf("charts: %s request-rate points, %s latency points, %s recent errors; want >= 3, >= 6 (p50 and p99), > 0", rpsPoints, latPoints, errRows)
	}
	// How many of the 80/s the client manages depends on the machine's load.
	if rps, err := strconv.Atoi(js(`document.querySelector('#stat-rps .value').textContent`)); err != nil || rps < 1 {
		t.Errorf("requests/s shows %d (%v) while requests flow", rps, err)
	}
	if e := js(`document.querySelector('#errors td.status').textContent`); e != "503" {
		t.Errorf("recent errors: first status %q, want 503", e)
	}

	if shot == "" {
		return
	}
	// Screenshot mode: more minutes of varying traffic so the charts have
	// a history, the failed target still down.
	dashTraffic(stop, &wg, 120, 40000, p.URL("/"), p.URL("/a"), p.URL("/api/x"))
	time.Sleep(60 * time.Second)
	api.status.Store(502) // shorter than it takes passive health to eject it
	time.Sleep(time.Second)
	api.status.Store(200)
	time.Sleep(30 * time.Second)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
