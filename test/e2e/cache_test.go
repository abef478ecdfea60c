package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cacheBackend counts requests per path and answers each path with the
// headers the test gives it; the body names the path and the count.
type cacheBackend struct {
	*httptest.Server
	mu    sync.Mutex
	count map[string]int
	hdr   map[string][]string // path -> header pairs
}

func newCacheBackend(t *testing.T, hdr map[string][]string) *cacheBackend {
	b := &cacheBackend{count: map[string]int{}, hdr: hdr}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.count[r.URL.Path]++
		n := b.count[r.URL.Path]
		pairs := b.hdr[r.URL.Path]
		b.mu.Unlock()
		if pairs == nil {
			pairs = []string{"Cache-Control", "max-age=600"}
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			w.Header().Add(pairs[i], pairs[i+1])
		}
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprintf(w, "%s #%d user=%s", r.URL.Path, n, r.Header.Get("Authorization"))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *cacheBackend) hits(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count[path]
}

func cacheConfig(backend string) string {
	return fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
access_log: {enabled: true, output: stdout}
caches:
  shared: {max_bytes: 8MiB, max_object_bytes: 1MiB}
upstreams:
  app: {targets: ["%s"]}
sites:
  - hosts: [a.test]
    routes:
      - {match: {path_prefix: /}, upstream: app, middleware: [{cache: {use: shared}}]}
  - hosts: [b.test]
    routes:
      - {match: {path_prefix: /}, upstream: app, middleware: [{cache: {use: shared}}]}
  - hosts: [own.test]
    routes:
      - {match: {path_prefix: /}, upstream: app, middleware: [{cache: {max_bytes: 1MiB, default_ttl: 1m}}]}
`, backend)
}

func getHost(t *testing.T, c *http.Client, gh *proc, host, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", gh.URL(path), nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestCacheThroughBinary(t *testing.T) {
	be := newCacheBackend(t, map[string][]string{
		"/private": {"Cache-Control", "private, max-age=600"},
		"/tagged":  {"Cache-Control", "max-age=600", "Surrogate-Key", "product-1 catalog"},
		"/tagged2": {"Cache-Control", "max-age=600", "Cache-Tag", "catalog"},
	})
	gh := startGatehouse(t, cacheConfig(be.URL))
	c := newClient(t)

	// A hit: one backend request, Age and Cache-Status on the second.
	getHost(t, c, gh, "a.test", "/page")
	resp, body := getHost(t, c, gh, "a.test", "/page")
	if !strings.HasPrefix(resp.Header.Get("Cache-Status"), "gatehouse; hit") || body != "/page #1 user=" || resp.Header.Get("Age") == "" {
		t.Fatalf("second GET: %q %q Age %q", resp.Header.Get("Cache-Status"), body, resp.Header.Get("Age"))
	}
	// The store is shared, but the key has the host: b.test is its own URL.
	_, body = getHost(t, c, gh, "b.test", "/page")
	if body != "/page #2 user=" {
		t.Fatalf("b.test: %q, want its own entry", body)
	}
	if be.hits("/page") != 2 {
		t.Fatalf("backend saw /page %d times", be.hits("/page"))
	}

	// Never one user's private answer for another.
	_, a := getHost(t, c, gh, "a.test", "/private", "Authorization", "alice")
	_, b := getHost(t, c, gh, "a.test", "/private", "Authorization", "bob")
	_, anon := getHost(t, c, gh, "a.test", "/private")
	if !strings.Contains(a, "alice") || strings.Contains(b, "alice") || strings.Contains(anon, "alice") {
		t.Fatalf("private answers: alice %q bob %q anonymous %q", a, b, anon)
	}

	// The access log says what the cache did.
	if !waitFor(5*time.Second, func() bool { return strings.Contains(gh.stdout.String(), `"cache":"hit"`) }) {
		t.Errorf("no cache outcome in the access log:\n%s", gh.stdout.String())
	}

	// Purges on the admin listener: by URL, by surrogate key, by prefix.
	purge := func(body string) string {
		resp, b := do(t, c, "POST", "http://"+gh.Admin()+"/api/v1/cache/purge", "", strings.NewReader(body))
		if resp.StatusCode != 200 {
			t.Fatalf("purge %s: %d %s", body, resp.StatusCode, b)
		}
		return string(b)
	}
	if out := purge(`{"url": "http://a.test/page"}`); !strings.Contains(out, `"purged": 1`) {
		t.Fatalf("purge by URL: %s", out)
	}
	if _, body := getHost(t, c, gh, "a.test", "/page"); body != "/page #3 user=" {
		t.Fatalf("after purge: %q, want a fresh fetch", body)
	}
	getHost(t, c, gh, "a.test", "/tagged")
	getHost(t, c, gh, "a.test", "/tagged2")
	if out := purge(`{"tags": ["catalog"]}`); !strings.Contains(out, `"purged": 2`) {
		t.Fatalf("purge by tag: %s", out)
	}
	getHost(t, c, gh, "a.test", "/tagged")
	if be.hits("/tagged") != 2 {
		t.Fatalf("/tagged fetched %d times, want 2 (purged by its surrogate key)", be.hits("/tagged"))
	}
	getHost(t, c, gh, "b.test", "/page")
	if out := purge(`{"prefix": "http://b.test/"}`); !strings.Contains(out, `"purged": 1`) {
		t.Fatalf("purge by prefix: %s", out)
	}
	if resp, _ := do(t, c, "POST", "http://"+gh.Admin()+"/api/v1/cache/purge", "", strings.NewReader(`{"url": "x", "prefix": "y"}`)); resp.StatusCode != 400 {
		t.Fatalf("purge with two selectors: %d, want 400", resp.StatusCode)
	}
	// PURGE method, as Varnish is used.
	getHost(t, c, gh, "a.test", "/v")
	req, _ := http.NewRequest("PURGE", "http://"+gh.Admin()+"/v", nil)
	req.Header.Set("X-Purge-Host", "a.test")
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(pb), `"purged": 1`) {
		t.Fatalf("PURGE /v: %d %s", r.StatusCode, pb)
	}

	// A reload keeps the stored entries.
	getHost(t, c, gh, "own.test", "/kept")
	if resp, _ := do(t, c, "POST", "http://"+gh.Admin()+"/api/v1/reload", "", nil); resp.StatusCode != 200 {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
	if resp, _ := getHost(t, c, gh, "own.test", "/kept"); !strings.HasPrefix(resp.Header.Get("Cache-Status"), "gatehouse; hit") {
		t.Fatalf("after reload: %q, want the entry kept", resp.Header.Get("Cache-Status"))
	}
}

// Concurrent misses through the binary make one backend request.
func TestCacheCoalescingThroughBinary(t *testing.T) {
	be := newCacheBackend(t, nil)
	gh := startGatehouse(t, cacheConfig(be.URL))
	var wg sync.WaitGroup
	var ok atomic.Int32
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, body := getHost(t, c, gh, "a.test", "/slow")
			if body == "/slow #1 user=" {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if be.hits("/slow") != 1 || ok.Load() != 50 {
		t.Fatalf("backend asked %d times; %d of 50 clients got the one answer", be.hits("/slow"), ok.Load())
	}
}

func TestCacheConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ cfg, want string }{
		{`caches: {shared: {max_bytes: 1MiB, max_object_bytes: 2MiB}}`, "caches.shared.max_object_bytes: must not exceed max_bytes"},
		{`caches: {shared: {store: tape}}`, `caches.shared.store: "tape" is not a cache store`},
		{`caches: {shared: {store: disk}}`, "caches.shared.path: required with store: disk"},
		{`caches: {shared: {path: /tmp}}`, "caches.shared.path: only a disk store has a path"},
	} {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte("listeners: [{addr: \"127.0.0.1:0\"}]\n"+c.cfg+"\nsites: [{routes: [{respond: {body: x}}]}]\n"), 0o644)
		code, _, stderr := runCLI(t, "validate", "-c", p)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", c.cfg, code, stderr, c.want)
		}
	}
	for _, c := range []struct{ mw, want string }{
		{`{cache: {use: shraed}}`, `c.yaml:3:67: sites[0].routes[0].middleware[0].cache.use: no cache "shraed"`},
		{`{cache: {use: shared, max_bytes: 1MiB}}`, "cache.max_bytes: not with use"},
		{`{cache: {default_ttl: -1s}}`, "cache.default_ttl: duration -1s must not be negative"},
		{`{cache: {max_byte: 1MiB}}`, `unknown field "max_byte"`},
	} {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte("listeners: [{addr: \"127.0.0.1:0\"}]\ncaches: {shared: {}}\nsites: [{routes: [{respond: {body: x}, middleware: ["+c.mw+"]}]}]\n"), 0o644)
		code, _, stderr := runCLI(t, "validate", "-c", p)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", c.mw, code, stderr, c.want)
		}
	}
}

// A disk store serves after a restart what was cached before it.
func TestCacheDiskStoreSurvivesRestart(t *testing.T) {
	be := newCacheBackend(t, nil)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
access_log: {enabled: false}
caches:
  persisted: {store: disk, path: %q, max_bytes: 4MiB}
upstreams:
  app: {targets: ["%s"]}
sites:
  - routes:
      - {upstream: app, middleware: [{cache: {use: persisted}}]}
`, dir, be.URL)
	gh := startGatehouse(t, cfg)
	c := newClient(t)
	getHost(t, c, gh, "d.test", "/kept")
	gh.stop()
	gh2 := startGatehouse(t, cfg)
	resp, body := getHost(t, c, gh2, "d.test", "/kept")
	if !strings.HasPrefix(resp.Header.Get("Cache-Status"), "gatehouse; hit") || body != "/kept #1 user=" || be.hits("/kept") != 1 {
		t.Fatalf("after restart: %q %q, backend asked %d times", resp.Header.Get("Cache-Status"), body, be.hits("/kept"))
	}
}

// A purge on one instance reaches the other over Redis pub/sub.
func TestCachePurgeFansOutOverRedis(t *testing.T) {
	be := newCacheBackend(t, map[string][]string{"/t": {"Cache-Control", "max-age=600", "Surrogate-Key", "k"}})
	cfg := fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
access_log: {enabled: false}
cluster: {redis: {addr: %q}}
upstreams:
  app: {targets: ["%s"]}
sites:
  - routes:
      - {upstream: app, middleware: [{cache: {max_bytes: 1MiB}}]}
`, startRedis(t).addr, be.URL)
	one := startGatehouse(t, cfg)
	two := startGatehouse(t, cfg)
	c := newClient(t)
	hit := func(gh *proc, path string) bool {
		resp, _ := getHost(t, c, gh, "f.test", path)
		return strings.HasPrefix(resp.Header.Get("Cache-Status"), "gatehouse; hit")
	}
	for _, gh := range []*proc{one, two} {
		getHost(t, c, gh, "f.test", "/u")
		getHost(t, c, gh, "f.test", "/t")
		if !hit(gh, "/u") || !hit(gh, "/t") {
			t.Fatal("not cached")
		}
	}
	// Give the subscriptions a moment to be in place, then purge on one.
	if !waitFor(5*time.Second, func() bool {
		_, b := do(t, c, "POST", "http://"+one.Admin()+"/api/v1/cache/purge", "", strings.NewReader(`{"url": "http://f.test/u"}`))
		if !strings.Contains(string(b), `"fleet": "sent"`) {
			t.Fatalf("purge answer: %s", b)
		}
		return !hit(two, "/u")
	}) {
		t.Fatal("the purge on one instance never reached the other")
	}
	req, _ := http.NewRequest("PURGE", "http://"+two.Admin()+"/", nil)
	req.Header.Set("Surrogate-Key", "k")
	if r, err := c.Do(req); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
	}
	if !waitFor(5*time.Second, func() bool { return !hit(one, "/t") }) {
		t.Fatal("a surrogate-key purge on the second instance never reached the first")
	}
}
