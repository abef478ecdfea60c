package proxy

import (
	"net/url"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/route"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

func TestHideDrops(t *testing.T) {
	h := NewHide([]string{"X-Powered-By", "X-AspNet-Version", "X-A-Very-Long-Header-Name-Of-Forty-Bytes"}, false)
	for n, want := range map[string]bool{
		"x-powered-by": true, "X-POWERED-BY": true, "X-AspNet-Version": true, "Via": true, "via": true,
		"X-A-Very-Long-Header-Name-Of-Forty-Bytes": true,
		"Content-Type": false, "X-Powered": false, "Vary": false, "X-Request-Id": false,
	} {
		if got := h.drops([]byte(n)); got != want {
			t.Errorf("drops(%q) = %v, want %v", n, got, want)
		}
	}
}

func TestRewriteLocation(t *testing.T) {
	target := func(raw, addr string) *upstream.Target {
		u, _ := url.Parse(raw)
		tg := &upstream.Target{Backend: &upstream.Backend{Addr: addr}, URL: u}
		if u.Path != "" {
			tg.Prefix = []byte(u.Path)
		}
		return tg
	}
	pool := &upstream.Pool{Targets: []*upstream.Target{
		target("http://10.0.0.5:8080", "10.0.0.5:8080"),
		target("http://app.internal/base", "app.internal:80"),
	}, Backup: []*upstream.Target{target("https://[fd00::9]:8443", "[fd00::9]:8443")}}
	req := &exchange.Request{Host: []byte("www.example.com")}
	tls := &exchange.Request{Host: []byte("www.example.com"), TLS: true}
	cases := []struct {
		in    string
		req   *exchange.Request
		strip string
		want  string // "" for no rewrite
	}{
		{"http://10.0.0.5:8080/login?next=/a", req, "", "http://www.example.com/login?next=/a"},
		{"http://10.0.0.5:8080", req, "", "http://www.example.com/"},
		{"HTTP://10.0.0.5:8080/x", tls, "", "https://www.example.com/x"},
		{"http://10.0.0.5:8080/x", req, "/api", "http://www.example.com/api/x"},
		{"//10.0.0.5:8080/x#frag", req, "", "http://www.example.com/x#frag"},
		{"http://app.internal/base/y", req, "", "http://www.example.com/y"},
		{"http://APP.internal:80/base", req, "", "http://www.example.com/"},
		{"http://app.internal/basement", req, "", "http://www.example.com/basement"},
		{"https://[fd00::9]:8443/z", req, "", "http://www.example.com/z"},
		{"http://user@10.0.0.5:8080/u", req, "", "http://www.example.com/u"},
		{"http://10.0.0.5:9999/x", req, "", ""},
		{"https://elsewhere.example/x", req, "", ""},
		{"/relative/path", req, "", ""},
		{"http://10.0.0.5:8080/x", &exchange.Request{}, "", "/x"},
	}
	for _, tc := range cases {
		got := string(rewriteLocation([]byte(tc.in), tc.req, []byte(tc.strip), pool))
		if got != tc.want {
			t.Errorf("rewriteLocation(%q, strip %q) = %q, want %q", tc.in, tc.strip, got, tc.want)
		}
	}
	for in, want := range map[string]string{
		"5; url=http://10.0.0.5:8080/next":  "5; url=http://www.example.com/next",
		"0;URL='http://10.0.0.5:8080/q'":    "0;URL='http://www.example.com/q'",
		"3; url=https://elsewhere.example/": "",
		"10":                                "",
	} {
		if got := string(rewriteRefresh([]byte(in), req, nil, pool)); got != want {
			t.Errorf("rewriteRefresh(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkResponseFields is the filtering of a typical backend response
// head, without and with the default hide list, and with rewrite_location
// on (no URL field to rewrite: the common case).
func BenchmarkResponseFields(b *testing.B) {
	resp := &h1.Response{Status: 200, Header: exchange.Headers{
		{Name: []byte("Date"), Value: []byte("Mon, 02 Jan 2006 15:04:05 GMT")},
		{Name: []byte("Content-Type"), Value: []byte("text/html; charset=utf-8")},
		{Name: []byte("Content-Length"), Value: []byte("100")},
		{Name: []byte("Cache-Control"), Value: []byte("max-age=60")},
		{Name: []byte("ETag"), Value: []byte(`"abc"`)},
		{Name: []byte("Server"), Value: []byte("nginx")},
		{Name: []byte("Vary"), Value: []byte("Accept-Encoding")},
		{Name: []byte("X-Request-Id"), Value: []byte("1234")},
	}, ContentLength: 100}
	r := &route.Route{}
	defaults := []string{"X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version", "X-Runtime", "X-Generator",
		"X-Drupal-Cache", "X-Drupal-Dynamic-Cache", "X-Varnish", "X-Backend-Server", "X-Upstream", "X-Served-By"}
	for _, c := range []struct {
		name    string
		hide    *Hide
		rewrite bool
	}{{"none", nil, false}, {"hide_defaults", NewHide(defaults, false), false}, {"hide_defaults_rewrite_location", NewHide(defaults, false), true}} {
		b.Run(c.name, func(b *testing.B) {
			f := &Forwarder{Hide: c.hide}
			pool := &upstream.Pool{RewriteLocation: c.rewrite}
			var ct connTokens
			out := make(exchange.Headers, 0, 32)
			req := &exchange.Request{}
			b.ReportAllocs()
			for b.Loop() {
				out = f.responseFields(out[:0], req, resp, r, pool, &ct, false)
			}
		})
	}
}
