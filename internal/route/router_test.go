package route

import (
	"net/netip"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

const routerConfig = `listeners: [{addr: "127.0.0.1:0"}]
upstreams:
  app: {targets: ["http://127.0.0.1:1"]}
  canary: {targets: ["http://127.0.0.1:2"]}
sites:
  - hosts: [example.test]
    routes:
      - match: {path: /exact}
        respond: {body: exact}
      - match: {path_prefix: /admin/, client_ip: [10.0.0.0/8]}
        respond: {body: admin}
      - match: {path_regex: '^/v[0-9]+/', methods: [POST]}
        respond: {body: versioned-post}
      - match: {path_prefix: /h, headers: {X-Env: canary}}
        respond: {body: header-exact}
      - match: {path_prefix: /h, headers: {X-Env: "~^stag"}}
        respond: {body: header-regex}
      - match: {path_prefix: /h, headers: {X-Any: "*"}}
        respond: {body: header-present}
      - match: {path_prefix: /q, query: {debug: "1", "a b": "c d"}}
        respond: {body: query}
      - match: {path_prefix: /split}
        split: [{upstream: app, weight: 90}, {upstream: canary, weight: 10}]
  - hosts: ["::1", "[2001:db8::1]"]
    routes:
      - respond: {body: ipv6}
  - hosts: ["*.example.test"]
    routes:
      - respond: {body: wildcard}
  - hosts: ["*.deep.example.test"]
    routes:
      - respond: {body: deeper-wildcard}
  - hosts: ["*"]
    routes:
      - match: {path_prefix: /}
        respond: {body: fallback}
`

func compileTest(t *testing.T) *Router {
	t.Helper()
	cfg, err := config.Parse("router.yaml", []byte(routerConfig))
	if err != nil {
		t.Fatal(err)
	}
	pools := map[string]*upstream.Pool{}
	for name := range cfg.Upstreams {
		pools[name] = &upstream.Pool{Name: name}
	}
	rt, err := Compile(cfg, pools)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func request(method, host, target string, hdr ...string) *exchange.Request {
	r := &exchange.Request{Method: []byte(method), Host: []byte(host), RemoteAddr: netip.MustParseAddrPort("127.0.0.1:5000")}
	path, query := target, ""
	for i := 0; i < len(target); i++ {
		if target[i] == '?' {
			path, query = target[:i], target[i+1:]
			r.HasQuery = true
			break
		}
	}
	r.Path, r.Query = []byte(path), []byte(query)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add([]byte(hdr[i]), []byte(hdr[i+1]))
	}
	return r
}

func TestRouterMatch(t *testing.T) {
	rt := compileTest(t)
	tests := []struct {
		name string
		req  *exchange.Request
		want string // respond body, "" for no match
	}{
		{"exact path", request("GET", "example.test", "/exact"), "exact"},
		{"exact path is not a prefix", request("GET", "example.test", "/exact/more"), ""},
		{"host is case-insensitive and port ignored", request("GET", "EXAMPLE.test:8080", "/exact"), "exact"},
		{"trailing dot host", request("GET", "example.test.", "/exact"), "exact"},
		{"client_ip refused", request("GET", "example.test", "/admin/x"), ""},
		{"regex needs POST", request("GET", "example.test", "/v2/x"), ""},
		{"regex and method", request("POST", "example.test", "/v2/x"), "versioned-post"},
		{"header exact", request("GET", "example.test", "/h", "X-Env", "canary"), "header-exact"},
		{"header regex", request("GET", "example.test", "/h", "x-env", "staging"), "header-regex"},
		{"header present", request("GET", "example.test", "/h", "X-Any", ""), "header-present"},
		{"header absent", request("GET", "example.test", "/h"), ""},
		{"query both", request("GET", "example.test", "/q?x=1&debug=1&a+b=c%20d"), "query"},
		{"query missing one", request("GET", "example.test", "/q?debug=1"), ""},
		{"wildcard", request("GET", "a.example.test", "/"), "wildcard"},
		{"longest wildcard wins", request("GET", "x.deep.example.test", "/"), "deeper-wildcard"},
		{"wildcard does not match the bare domain's sibling", request("GET", "badexample.test", "/"), "fallback"},
		{"IPv6 literal host", request("GET", "[::1]:8080", "/"), "ipv6"},
		{"IPv6 literal host written bracketed", request("GET", "[2001:DB8::1]", "/"), "ipv6"},
		{"fallback site", request("GET", "other.test", "/anything"), "fallback"},
		{"percent-encoded path is matched decoded", request("GET", "example.test", "/%65xact"), "exact"},
		{"dot segments resolved before matching", request("GET", "example.test", "/x/../exact"), "exact"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rt.Match(tc.req)
			got := ""
			if r != nil && r.Respond != nil {
				got = string(r.Respond.Body)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	admin := request("GET", "example.test", "/admin/x")
	admin.RemoteAddr = netip.MustParseAddrPort("10.1.2.3:5000")
	if r := rt.Match(admin); r == nil || string(r.Respond.Body) != "admin" {
		t.Errorf("client_ip 10.1.2.3 did not match the admin route")
	}
}

func TestSplitWeights(t *testing.T) {
	rt := compileTest(t)
	r := rt.Match(request("GET", "example.test", "/split"))
	if r == nil || len(r.Split) != 2 {
		t.Fatalf("split route not found")
	}
	const n = 20000
	canary := 0
	for i := 0; i < n; i++ {
		if r.Pool().Name == "canary" {
			canary++
		}
	}
	// Binomial(20000, 0.1): sd = 42; ±6 sd cannot fail by luck in practice.
	if canary < 2000-250 || canary > 2000+250 {
		t.Errorf("canary got %d of %d, want about 10%%", canary, n)
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b":        "/a/b",
		"//a///b":     "/a/b",
		"/a/./b":      "/a/b",
		"/a/../b":     "/b",
		"/../../b":    "/b",
		"/a/b/":       "/a/b/",
		"/a/%2e%2e/b": "/b",
		"/a%2Fb":      "/a%2Fb",
		"/%61dmin":    "/admin",
		"/a/..":       "/",
		"/":           "/",
		"/a/b/.":      "/a/b/",
		"/%zz":        "/%zz",
		"/a%00b":      "/a%00b",
	} {
		if got := string(normalizePath([]byte(in))); got != want {
			t.Errorf("normalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedirectLocation(t *testing.T) {
	r := compileRedirect("https://{host}{uri}#{path}?{query}{scheme}{unknown}", 308)
	got := string(r.Location(request("GET", "h.test", "/p?q=1")))
	want := "https://h.test/p?q=1#/p?q=1http{unknown}"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func BenchmarkRouterMatch(b *testing.B) {
	rt := compileTest(&testing.T{})
	req := request("GET", "example.test", "/q?x=1&debug=1&a+b=c%20d", "X-Env", "prod")
	b.ReportAllocs()
	for b.Loop() {
		rt.Match(req)
	}
}
