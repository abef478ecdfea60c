package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullConfig is the example of the interface spec, with every field set.
const fullConfig = `# every field of the spec
listeners:
  - addr: 127.0.0.1:8080
    h2c: true
  - addr: "[::1]:8443"

admin:
  addr: 127.0.0.1:9901

trusted_proxies: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"]
shutdown_timeout: 15s

limits:
  read_header_timeout: 5s
  idle_timeout: 2m
  max_header_bytes: 32KiB
  max_body_bytes: 1.5MB

access_log: {enabled: false, output: /var/log/gatehouse.log}

upstreams:
  app:
    targets:
      - http://127.0.0.1:9001
      - {url: http://127.0.0.1:9002/base, weight: 3}
    balance: hash
    hash_key: header:X-User
    preserve_host: true
    timeouts: {connect: 1s, response_header: 250ms, idle: 0}
  app-canary:
    targets: [http://127.0.0.1:9003]

sites:
  - hosts: [Example.test, "*.example.test"]
    middleware:
      - ip_filter: {allow: [10.0.0.0/8]}
    routes:
      - match:
          path_prefix: /api/
          methods: [GET, post]
          headers: {X-Env: canary, X-Debug: "~^(1|yes)$", X-Any: "*"}
          query: {debug: 1}
          client_ip: [127.0.0.0/8, "::1/128"]
        strip_prefix: /api
        request_headers:  {set: {X-From: gatehouse}, add: {Via: gh}, remove: [X-Internal]}
        response_headers: {set: {}, add: {}, remove: [X-Powered-By]}
        middleware:
          - rate_limit: {key: client_ip, rate: 100/s, burst: 200}
          - compress:
        upstream: app
      - match: {path: /canary}
        split: [{upstream: app, weight: 90}, {upstream: app-canary, weight: 10}]
      - match: {path_regex: '^/v[0-9]+/'}
        respond: {status: 204, body: "ok\n", headers: {Content-Type: text/plain}}
  - routes:
      - redirect: {to: "https://{host}{uri}", status: 301}
`

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse failed:\n%v", err)
	}
	return c
}

func TestParseFull(t *testing.T) {
	c := mustParse(t, fullConfig)
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}

	check("File", c.File, "test.yaml")
	check("len(Hash)", len(c.Hash), 64)
	check("Listeners", c.Listeners, []Listener{
		{Pos: Pos{3, 5}, Addr: "127.0.0.1:8080", H2C: true},
		{Pos: Pos{5, 5}, Addr: "[::1]:8443"},
	})
	check("Admin", *c.Admin, Admin{Pos: Pos{8, 3}, Addr: "127.0.0.1:9901"})
	check("TrustedProxies", c.TrustedProxies, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32"),
	})
	check("ShutdownTimeout", c.ShutdownTimeout, 15*time.Second)
	check("Limits", c.Limits, Limits{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute, BodyReadTimeout: 60 * time.Second, MaxHeaderBytes: 32 << 10, MaxBodyBytes: 1_500_000, WriteTimeout: 60 * time.Second, BodyRateWindow: 10 * time.Second})
	check("AccessLog", c.AccessLog, AccessLog{Enabled: false, Output: "/var/log/gatehouse.log", Format: "json"})

	check("len(Upstreams)", len(c.Upstreams), 2)
	app := c.Upstreams["app"]
	check("app.Name", app.Name, "app")
	check("app.Pos", app.Pos, Pos{22, 3})
	check("app.Balance", app.Balance, "hash")
	check("app.HashKey", app.HashKey, "header:X-User")
	check("app.PreserveHost", app.PreserveHost, true)
	check("app.Timeouts", app.Timeouts, Timeouts{Connect: time.Second, ResponseHeader: 250 * time.Millisecond, Idle: 0})
	check("len(app.Targets)", len(app.Targets), 2)
	check("target0.URL", app.Targets[0].URL.String(), "http://127.0.0.1:9001")
	check("target0.Weight", app.Targets[0].Weight, 1)
	check("target0.Pos", app.Targets[0].Pos, Pos{24, 9})
	check("target1.URL", app.Targets[1].URL.String(), "http://127.0.0.1:9002/base")
	check("target1.Weight", app.Targets[1].Weight, 3)
	check("target1.Pos", app.Targets[1].Pos, Pos{25, 9})
	canary := c.Upstreams["app-canary"]
	check("canary.Name", canary.Name, "app-canary")
	check("canary.Balance", canary.Balance, "round_robin")
	check("canary.HashKey", canary.HashKey, "")
	check("canary.Timeouts", canary.Timeouts, Timeouts{Connect: 5 * time.Second, ResponseHeader: 60 * time.Second, Idle: 90 * time.Second})

	check("len(Sites)", len(c.Sites), 2)
	s := c.Sites[0]
	check("site0.Pos", s.Pos, Pos{34, 5})
	check("site0.Hosts", s.Hosts, []string{"example.test", "*.example.test"})
	check("site0.Middleware[0].Name", s.Middleware[0].Name, "ip_filter")
	check("site0.Middleware[0].Path", s.Middleware[0].Path, "sites[0].middleware[0].ip_filter")
	check("site0.Middleware[0].Pos", s.Middleware[0].Pos, Pos{36, 9})
	check("len(site0.Routes)", len(s.Routes), 3)

	r := s.Routes[0]
	check("route0.Pos", r.Pos, Pos{38, 9})
	check("route0.Match.PathPrefix", r.Match.PathPrefix, "/api/")
	check("route0.Match.Methods", r.Match.Methods, []string{"GET", "POST"})
	check("route0.Match.Headers", r.Match.Headers, map[string]string{"X-Env": "canary", "X-Debug": "~^(1|yes)$", "X-Any": "*"})
	check("route0.Match.Query", r.Match.Query, map[string]string{"debug": "1"})
	check("route0.Match.ClientIP", r.Match.ClientIP, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	check("route0.StripPrefix", r.StripPrefix, "/api")
	check("route0.RequestHeaders", r.RequestHeaders, HeaderOps{Set: map[string]string{"X-From": "gatehouse"}, Add: map[string]string{"Via": "gh"}, Remove: []string{"X-Internal"}})
	check("route0.ResponseHeaders", r.ResponseHeaders, HeaderOps{Set: map[string]string{}, Add: map[string]string{}, Remove: []string{"X-Powered-By"}})
	check("route0.Upstream", r.Upstream, "app")
	check("route0.Middleware names", []string{r.Middleware[0].Name, r.Middleware[1].Name}, []string{"rate_limit", "compress"})
	check("route0.Middleware[0].Settings.Line", r.Middleware[0].Settings.Line, 48)
	check("route0.Middleware[1].Settings is null", isNull(r.Middleware[1].Settings), true)

	r = s.Routes[1]
	check("route1.Match.Path", r.Match.Path, "/canary")
	check("route1.Split", r.Split, []SplitEntry{{Pos: Pos{52, 17}, Upstream: "app", Weight: 90}, {Pos: Pos{52, 46}, Upstream: "app-canary", Weight: 10}})

	r = s.Routes[2]
	check("route2.Match.PathRegex", r.Match.PathRegex.String(), "^/v[0-9]+/")
	check("route2.Respond", *r.Respond, Respond{Status: 204, Body: "ok\n", Headers: map[string]string{"Content-Type": "text/plain"}})

	s = c.Sites[1]
	check("site1.Hosts", s.Hosts, []string{"*"})
	check("site1.Redirect", *s.Routes[0].Redirect, Redirect{To: "https://{host}{uri}", Status: 301})
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, `
listeners: [{addr: ":0"}]
upstreams:
  a: {targets: [http://a:1, {url: "http://b:2"}], balance: hash}
sites:
  - routes:
      - {match: {methods: [get, Delete]}, upstream: a}
      - respond: {}
      - redirect: {to: /x}
`)
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("ShutdownTimeout", c.ShutdownTimeout, 30*time.Second)
	check("Limits", c.Limits, Limits{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, BodyReadTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10, WriteTimeout: 60 * time.Second, BodyRateWindow: 10 * time.Second})
	check("AccessLog", c.AccessLog, AccessLog{Enabled: true, Output: "stderr", Format: "json"})
	check("Admin", c.Admin, (*Admin)(nil))
	a := c.Upstreams["a"]
	check("Balance", a.Balance, "hash")
	check("HashKey", a.HashKey, "client_ip")
	check("weights", []int{a.Targets[0].Weight, a.Targets[1].Weight}, []int{1, 1})
	check("Timeouts", a.Timeouts, Timeouts{Connect: 5 * time.Second, ResponseHeader: 60 * time.Second, Idle: 90 * time.Second})
	check("Hosts", c.Sites[0].Hosts, []string{"*"})
	check("Methods", c.Sites[0].Routes[0].Match.Methods, []string{"GET", "DELETE"})
	check("Respond.Status", c.Sites[0].Routes[1].Respond.Status, 200)
	check("Redirect.Status", c.Sites[0].Routes[2].Redirect.Status, 308)
}

// Defaults fill absent fields only: what is written, even as zero, stays.
func TestDefaultsOnlyWhenAbsent(t *testing.T) {
	cases := []struct {
		name, text string
		get        func(*Config) any
		want       any
	}{
		{"access_log present without enabled", "access_log: {output: stdout}", func(c *Config) any { return c.AccessLog }, AccessLog{Enabled: true, Output: "stdout", Format: "json"}},
		{"access_log null", "access_log:", func(c *Config) any { return c.AccessLog }, AccessLog{Enabled: true, Output: "stderr", Format: "json"}},
		{"access_log disabled", "access_log: {enabled: false}", func(c *Config) any { return c.AccessLog.Enabled }, false},
		{"shutdown_timeout 0", "shutdown_timeout: 0", func(c *Config) any { return c.ShutdownTimeout }, time.Duration(0)},
		{"shutdown_timeout 0s", "shutdown_timeout: 0s", func(c *Config) any { return c.ShutdownTimeout }, time.Duration(0)},
		{"shutdown_timeout null", "shutdown_timeout: ~", func(c *Config) any { return c.ShutdownTimeout }, 30 * time.Second},
		{"idle_timeout 0", "limits: {idle_timeout: 0}", func(c *Config) any { return c.Limits }, Limits{ReadHeaderTimeout: 10 * time.Second, BodyReadTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10, WriteTimeout: 60 * time.Second, BodyRateWindow: 10 * time.Second}},
		{"max_body_bytes", "limits: {max_body_bytes: 10MiB}", func(c *Config) any { return c.Limits.MaxBodyBytes }, Size(10 << 20)},
		{"max_body_bytes in hex", "limits: {max_body_bytes: 0x100}", func(c *Config) any { return c.Limits.MaxBodyBytes }, Size(256)},
		{"max_body_bytes with underscores", "limits: {max_body_bytes: 1_000_000}", func(c *Config) any { return c.Limits.MaxBodyBytes }, Size(1_000_000)},
		{"trailing empty document", "---\n", func(c *Config) any { return len(c.Listeners) }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, "listeners: [{addr: ':1'}]\n"+tc.text+"\n")
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	c := mustParse(t, `{
	"listeners": [{"addr": "127.0.0.1:8080"}],
	"upstreams": {"app": {"targets": ["http://127.0.0.1:9001", {"url": "http://127.0.0.1:9002", "weight": 2}]}},
	"sites": [{"hosts": ["a.test"], "routes": [{"match": {"path_prefix": "/"}, "upstream": "app"}]}]
}`)
	if got := c.Upstreams["app"].Targets[1].Weight; got != 2 {
		t.Errorf("weight = %d, want 2", got)
	}
	_, err := Parse("c.json", []byte(`{"listeners": [{"addr": ":1", "adr": 2}]}`))
	if want := `c.json:1:31: listeners[0].adr: unknown field "adr" (did you mean "addr"?)`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	c := mustParse(t, `
listeners: [{addr: ":1"}]
upstreams:
  a:
    <<: &common {balance: least_conn, timeouts: {connect: 2s}}
    targets: [http://a:1]
  b:
    <<: *common
    balance: first
    targets: &t [http://b:1]
  c: {targets: *t}
sites: [{routes: [{upstream: a}]}]
`)
	u := c.Upstreams
	if u["a"].Balance != "least_conn" || u["a"].Timeouts.Connect != 2*time.Second {
		t.Errorf("a = %+v, merge not applied", u["a"])
	}
	if u["b"].Balance != "first" || u["b"].Timeouts.Connect != 2*time.Second {
		t.Errorf("b = %+v, own keys must override merged ones", u["b"])
	}
	if u["c"].Targets[0].URL.Host != "b:1" {
		t.Errorf("c = %+v, alias not followed", u["c"])
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(fullConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path {
		t.Errorf("File = %q, want %q", c.File, path)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("err = %#v, want Errors with one error", err)
	}
	if want := filepath.Join(dir, "missing.yaml") + ": no such file or directory"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want Size
		err  string
	}{
		{"0", 0, ""},
		{"1024", 1024, ""},
		{"64KiB", 64 << 10, ""},
		{"64kib", 64 << 10, ""},
		{"64 KB", 64000, ""},
		{"1.5MB", 1_500_000, ""},
		{"1.1MB", 1_100_000, ""},
		{"1.5MiB", 3 << 19, ""},
		{"2GiB", 2 << 30, ""},
		{"3gb", 3_000_000_000, ""},
		{"10B", 10, ""},
		{"8589934591GiB", 8589934591 << 30, ""},
		{"8589934592GiB", 0, "too large"},
		{"9223372036854775807", 9223372036854775807, ""},
		{"9223372036854775808", 0, "too large"},
		{"-1", 0, "must not be negative"},
		{"1.5", 0, "not a whole number"},
		{"1.0001KB", 0, "not a whole number"},
		{"10TB", 0, `unknown unit "TB"`},
		{"KB", 0, "invalid size"},
		{".5KB", 0, "invalid size"},
		{"1.2.3", 0, "invalid size"},
		{"", 0, "invalid size"},
	}
	for _, tc := range cases {
		got, err := ParseSize(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseSize(%q) = %d, %v; want error containing %q", tc.in, got, err, tc.err)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	cases := []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.0.2.1", "192.0.2.1/32"},
		{"::1", "::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"10.0.0.0/33", ""},
		{"fe80::1%eth0", ""},
		{"example.com", ""},
		{"", ""},
	}
	for _, tc := range cases {
		got, err := ParsePrefix(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParsePrefix(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestPaths(t *testing.T) {
	cases := []struct{ path, parent string }{
		{"sites[0].routes[2].upstream", "sites[0].routes[2]"},
		{"sites[0].routes[2]", "sites[0].routes"},
		{"sites", ""},
		{`headers["a.b"]`, "headers"},
		{`headers["a]"]`, "headers"},
	}
	for _, tc := range cases {
		if got := parentPath(tc.path); got != tc.parent {
			t.Errorf("parentPath(%q) = %q, want %q", tc.path, got, tc.parent)
		}
	}
	if got := keyPath("h", "X-A"); got != "h.X-A" {
		t.Errorf("keyPath = %q", got)
	}
	if got := keyPath("h", "a.b"); got != `h["a.b"]` {
		t.Errorf("keyPath = %q", got)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"path", "path_prefix", "path_regex", "methods", "headers"}
	cases := []struct{ in, want string }{
		{"path_prefx", "path_prefix"},
		{"pathPrefix", "path_prefix"},
		{"path-regex", "path_regex"},
		{"method", "methods"},
		{"zzz", ""},
		{"cookies", ""},
	}
	for _, tc := range cases {
		got := suggest(tc.in, names)
		want := ""
		if tc.want != "" {
			want = ` (did you mean "` + tc.want + `"?)`
		}
		if got != want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, want)
		}
	}
}
