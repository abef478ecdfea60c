package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// bannerBackend answers like a talkative application server: software
// banners, its own Via, and URLs that name its own address.
func bannerBackend(t *testing.T) *httptest.Server {
	var self string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Server", "Apache/2.4.1 (Unix) PHP/5.3")
		h.Set("X-Powered-By", "PHP/5.3.29")
		h.Set("X-AspNet-Version", "4.0.30319")
		h.Set("X-Runtime", "0.012")
		h.Set("Via", "1.1 cache7.corp.internal:3128 (squid/3.5)")
		h.Set("X-Secret", "inside")
		h.Set("X-App", "kept")
		switch strings.TrimPrefix(r.URL.Path, "/base") {
		case "/login":
			h.Set("Location", "http://"+self+"/base/welcome?x=1")
			w.WriteHeader(http.StatusFound)
		case "/created":
			h.Set("Location", "http://"+self+"/base/items/7")
			h.Set("Content-Location", "http://"+self+"/base/items/7")
			h.Set("Refresh", "3; url=http://"+self+"/base/items")
			w.WriteHeader(http.StatusCreated)
		case "/elsewhere":
			h.Set("Location", "https://example.org/x")
			w.WriteHeader(http.StatusFound)
		default:
			w.Write([]byte("hello"))
		}
	}))
	self = srv.Listener.Addr().String()
	t.Cleanup(srv.Close)
	return srv
}

// TestBackendsHidden: nothing of the backend's software or address reaches
// the client — banners and Via dropped, URLs naming a target rewritten to
// the address the client used (base path off, strip_prefix back on), and
// proxy error pages generic.
func TestBackendsHidden(t *testing.T) {
	t.Parallel()
	be := bannerBackend(t)
	dead := freeAddr(t)
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
upstreams:
  app:
    targets: ["%s/base"]
    rewrite_location: true
  plain:
    targets: ["%s/base"]
  down:
    targets: ["http://%s"]
    retries: {attempts: 0}
sites:
  - routes:
      - {match: {path_prefix: /shop}, strip_prefix: /shop, upstream: app}
      - {match: {path_prefix: /plain}, strip_prefix: /plain, upstream: plain}
      - {match: {path_prefix: /down}, upstream: down}
`, be.URL, be.URL, dead))
	c := newClient(t)
	beAddr := be.Listener.Addr().String()
	_, bePort, _ := strings.Cut(beAddr, ":")
	leaks := func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		for name, vv := range resp.Header {
			for _, v := range vv {
				for _, bad := range []string{bePort, "Apache", "PHP", "squid", "corp.internal", "4.0.30319"} {
					if strings.Contains(v, bad) {
						t.Errorf("%s: %q reveals %q", name, v, bad)
					}
				}
			}
		}
		for _, gone := range []string{"X-Powered-By", "X-AspNet-Version", "X-Runtime", "Via"} {
			if v := resp.Header.Get(gone); v != "" {
				t.Errorf("%s: %q passed through", gone, v)
			}
		}
		if strings.Contains(string(body), bePort) {
			t.Errorf("body %q names the backend's port", body)
		}
	}

	resp, body := do(t, c, "GET", gh.URL("/shop/page"), "shop.example", nil)
	leaks(t, resp, body)
	if resp.Header.Get("Server") != "gatehouse" || resp.Header.Get("X-App") != "kept" || resp.Header.Get("X-Secret") != "inside" {
		t.Errorf("Server %q X-App %q X-Secret %q; want gatehouse, kept, inside", resp.Header.Get("Server"), resp.Header.Get("X-App"), resp.Header.Get("X-Secret"))
	}

	resp, body = do(t, c, "GET", gh.URL("/shop/login"), "shop.example", nil)
	leaks(t, resp, body)
	if got := resp.Header.Get("Location"); resp.StatusCode != 302 || got != "http://shop.example/shop/welcome?x=1" {
		t.Errorf("redirect: %d Location %q, want http://shop.example/shop/welcome?x=1", resp.StatusCode, got)
	}
	resp, body = do(t, c, "POST", gh.URL("/shop/created"), "shop.example", nil)
	leaks(t, resp, body)
	for name, want := range map[string]string{
		"Location":         "http://shop.example/shop/items/7",
		"Content-Location": "http://shop.example/shop/items/7",
		"Refresh":          "3; url=http://shop.example/shop/items",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s %q, want %q", name, got, want)
		}
	}
	resp, _ = do(t, c, "GET", gh.URL("/shop/elsewhere"), "shop.example", nil)
	if got := resp.Header.Get("Location"); got != "https://example.org/x" {
		t.Errorf("a redirect elsewhere was changed: %q", got)
	}
	// Without rewrite_location the URL is passed as the backend wrote it.
	resp, _ = do(t, c, "GET", gh.URL("/plain/login"), "shop.example", nil)
	if got := resp.Header.Get("Location"); got != "http://"+beAddr+"/base/welcome?x=1" {
		t.Errorf("rewrite_location off: Location %q", got)
	}
	// A failed backend's page names nothing of it.
	resp, body = do(t, c, "GET", gh.URL("/down/x"), "shop.example", nil)
	_, deadPort, _ := strings.Cut(dead, ":")
	assertErrorPage(t, resp, body, 502, deadPort)
}

// TestHideListAndVia: hide_response_headers replaces the default list, and
// send_via puts gatehouse's own Via in place of the backend's.
func TestHideListAndVia(t *testing.T) {
	t.Parallel()
	be := bannerBackend(t)
	gh := startGatehouse(t, oneUpstream("hide_response_headers: [X-Secret]\nsend_via: true", be.URL))
	resp, _ := do(t, newClient(t), "GET", gh.URL("/page"), "", nil)
	if v := resp.Header.Get("X-Secret"); v != "" {
		t.Errorf("X-Secret %q passed, but it is listed", v)
	}
	if v := resp.Header.Get("X-Powered-By"); v != "PHP/5.3.29" {
		t.Errorf("X-Powered-By %q: the written list replaces the default one", v)
	}
	if v := resp.Header.Values("Via"); len(v) != 1 || v[0] != "1.1 gatehouse" {
		t.Errorf("Via %q, want only 1.1 gatehouse", v)
	}
}
