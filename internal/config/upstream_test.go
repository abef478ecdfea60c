package config

import (
	"crypto/x509"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// upstreamConfig sets every field of an upstream pool. It is also the
// FuzzParse seed testdata/fuzz/FuzzParse/upstreams.
const upstreamConfig = `listeners: [{addr: ":8080"}]
upstreams:
  app:
    targets:
      - https://10.0.0.1:8443
      - {url: "dns+https://app.internal:8443/base", weight: 2}
      - srv+https://_https._tcp.app.internal
    backup:
      - https://10.0.9.1:8443
      - {url: https://10.0.9.2, weight: 5}
    balance: least_conn
    transport: h2
    tls:
      ca_file: testdata/tls/ca.pem
      server_name: app.internal
      cert_file: testdata/tls/client.pem
      key_file: testdata/tls/client.key
      insecure_skip_verify: true
    max_idle_per_target: 64
    max_conns_per_target: 1000
    resolve_interval: 5s
    health:
      active:
        path: /ready?full=1
        interval: 5s
        timeout: 2s
        fall: 2
        rise: 4
        expect_status: "200,204,300-399"
        expect_body: OK
        headers: {X-Check: gatehouse}
        host: app.internal:8443
      passive: {max_fails: 5, window: 1m, eject: 15s}
    retries:
      attempts: 2
      on: [connect, timeout, reset, 502, "503", 504]
      budget: 12.5%
      min_retries_per_second: 10
  grpc:
    targets: [dns+http://grpc.internal:50051]
    transport: h2c
sites:
  - routes: [{upstream: app}]
`

func TestParseUpstreams(t *testing.T) {
	c := mustParse(t, upstreamConfig)
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	app := c.Upstreams["app"]
	urls := func(ts []Target) (s []string) {
		for _, t := range ts {
			s = append(s, t.URL.String())
		}
		return s
	}
	weights := func(ts []Target) (w []int) {
		for _, t := range ts {
			w = append(w, t.Weight)
		}
		return w
	}
	check("targets", urls(app.Targets), []string{"https://10.0.0.1:8443", "dns+https://app.internal:8443/base", "srv+https://_https._tcp.app.internal"})
	check("target weights", weights(app.Targets), []int{1, 2, 1})
	check("backup", urls(app.Backup), []string{"https://10.0.9.1:8443", "https://10.0.9.2"})
	check("backup weights", weights(app.Backup), []int{1, 5})
	check("backup[1].Pos", app.Backup[1].Pos, Pos{10, 9})
	check("Balance", app.Balance, "least_conn")
	check("Transport", app.Transport, "h2")
	check("MaxIdlePerTarget", app.MaxIdlePerTarget, 64)
	check("MaxConnsPerTarget", app.MaxConnsPerTarget, 1000)
	check("ResolveInterval", app.ResolveInterval, 5*time.Second)

	check("Health.Active", *app.Health.Active, ActiveHealth{
		Path: "/ready?full=1", Interval: 5 * time.Second, Timeout: 2 * time.Second, Fall: 2, Rise: 4,
		ExpectStatus: StatusRanges{{200, 200}, {204, 204}, {300, 399}},
		ExpectBody:   "OK", Headers: map[string]string{"X-Check": "gatehouse"}, Host: "app.internal:8443",
	})
	check("Health.Passive", *app.Health.Passive, PassiveHealth{MaxFails: 5, Window: time.Minute, Eject: 15 * time.Second})
	check("Retries", app.Retries, Retries{
		Attempts: 2,
		On: []RetryOn{{Kind: RetryConnect}, {Kind: RetryTimeout}, {Kind: RetryReset},
			{Kind: RetryStatus, Status: 502}, {Kind: RetryStatus, Status: 503}, {Kind: RetryStatus, Status: 504}},
		Budget:              0.125,
		MinRetriesPerSecond: 10,
	})
	r := app.Retries
	check("retry predicates", []bool{r.OnConnect(), r.OnTimeout(), r.OnReset(), r.OnStatus(503), r.OnStatus(500)}, []bool{true, true, true, true, false})

	tl := app.TLS
	check("TLS fields", []any{tl.CAFile, tl.ServerName, tl.CertFile, tl.KeyFile, tl.InsecureSkipVerify},
		[]any{"testdata/tls/ca.pem", "app.internal", "testdata/tls/client.pem", "testdata/tls/client.key", true})
	if tl.RootCAs == nil || tl.Certificate == nil || tl.Certificate.Leaf == nil {
		t.Fatalf("TLS files not loaded: RootCAs %v, Certificate %v", tl.RootCAs, tl.Certificate)
	}
	check("client certificate", tl.Certificate.Leaf.Subject.CommonName, "gatehouse test client")
	// The client certificate must verify against the loaded CA pool.
	if _, err := tl.Certificate.Leaf.Verify(x509.VerifyOptions{Roots: tl.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify against ca_file: %v", err)
	}
	tc := tl.ClientConfig()
	check("ClientConfig", []any{tc.ServerName, tc.InsecureSkipVerify, len(tc.Certificates), tc.RootCAs == tl.RootCAs}, []any{"app.internal", true, 1, true})
	check("nil ClientConfig", (*UpstreamTLS)(nil).ClientConfig().RootCAs == nil, true)

	check("Warnings", warningStrings(c), []string{
		`test.yaml:18:29: upstreams.app.tls.insecure_skip_verify: the targets' TLS certificates are not verified: anyone on the network path to them can impersonate them`,
	})

	grpc := c.Upstreams["grpc"]
	check("grpc.Transport", grpc.Transport, "h2c")
	check("grpc.TLS", grpc.TLS, (*UpstreamTLS)(nil))
}

// The FuzzParse seed holds upstreamConfig as it is now.
func TestUpstreamSeedIsCurrent(t *testing.T) {
	data, err := os.ReadFile("testdata/fuzz/FuzzParse/upstreams")
	if err != nil {
		t.Fatal(err)
	}
	if want := "go test fuzz v1\n[]byte(" + strconv.Quote(upstreamConfig) + ")\n"; string(data) != want {
		t.Errorf("testdata/fuzz/FuzzParse/upstreams is not upstreamConfig; rewrite it as:\n%s", want)
	}
}

func warningStrings(c *Config) (s []string) {
	for _, w := range c.Warnings {
		s = append(s, w.Error())
	}
	return s
}

func TestTargetDiscovery(t *testing.T) {
	c := mustParse(t, `listeners: [{addr: ":1"}]
upstreams:
  a:
    targets: [http://a:1, https://a, dns+http://a:1, dns+https://a, srv+http://_h._tcp.a, srv+https://b.service.consul]
`)
	want := [][2]string{{"plain", "http"}, {"plain", "https"}, {"dns", "http"}, {"dns", "https"}, {"srv", "http"}, {"srv", "https"}}
	for i, tg := range c.Upstreams["a"].Targets {
		kind, scheme := tg.Discovery()
		if [2]string{kind, scheme} != want[i] {
			t.Errorf("%s: Discovery() = %s, %s; want %s, %s", tg.URL, kind, scheme, want[i][0], want[i][1])
		}
	}
	if k, s := (Target{}).Discovery(); k != "" || s != "" {
		t.Errorf("Discovery of a target without URL = %q, %q", k, s)
	}
	for _, bad := range []string{"ftp", "plain+http", "dns+ftp", "dns", "srv+dns+http", ""} {
		if k, s := splitScheme(bad); k != "" || s != "" {
			t.Errorf("splitScheme(%q) = %q, %q; want empty", bad, k, s)
		}
	}
}

func TestUpstreamDefaults(t *testing.T) {
	c := mustParse(t, `listeners: [{addr: ":1"}]
upstreams:
  bare: {targets: [http://a:1]}
  checked:
    targets: [http://a:1]
    backup: [http://b:1]
    health: {active: {}, passive: {}}
    retries: {on: [502]}
  fast:
    targets: [http://a:1]
    health: {active: {interval: 500ms}}
    retries: {attempts: 0}
  nulls:
    targets: [http://a:1]
    health: {active: ~, passive: }
    retries:
`)
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	defaultRetries := Retries{Attempts: 1, On: []RetryOn{{Kind: RetryConnect}}, Budget: 0.2, MinRetriesPerSecond: 3}
	for _, name := range []string{"bare", "nulls"} {
		u := c.Upstreams[name]
		check(name+".Health", u.Health, Health{})
		check(name+".Retries", u.Retries, defaultRetries)
		check(name+".Backup", u.Backup, []Target(nil))
		check(name+".Transport", u.Transport, "h1")
		check(name+".TLS", u.TLS, (*UpstreamTLS)(nil))
		check(name+".MaxIdlePerTarget", u.MaxIdlePerTarget, 256)
		check(name+".MaxConnsPerTarget", u.MaxConnsPerTarget, 0)
		check(name+".ResolveInterval", u.ResolveInterval, 30*time.Second)
	}

	u := c.Upstreams["checked"]
	check("checked.Active", *u.Health.Active, ActiveHealth{
		Path: "/healthz", Interval: 2 * time.Second, Timeout: time.Second, Fall: 3, Rise: 2,
		ExpectStatus: StatusRanges{{200, 399}},
	})
	check("checked.Passive", *u.Health.Passive, PassiveHealth{MaxFails: 3, Window: 10 * time.Second, Eject: 30 * time.Second})
	check("checked.Retries", u.Retries, Retries{Attempts: 1, On: []RetryOn{{Kind: RetryStatus, Status: 502}}, Budget: 0.2, MinRetriesPerSecond: 3})
	check("checked.OnConnect", u.Retries.OnConnect(), false)
	check("checked.Backup[0].Weight", u.Backup[0].Weight, 1)

	u = c.Upstreams["fast"]
	check("fast.Active.Timeout", u.Health.Active.Timeout, 250*time.Millisecond)
	check("fast.Retries.Attempts", u.Retries.Attempts, 0)
	check("no warnings", len(c.Warnings), 0)
}

// Zero is kept where it is written and allowed.
func TestUpstreamZeroes(t *testing.T) {
	c := mustParse(t, `listeners: [{addr: ":1"}]
upstreams:
  a:
    targets: [http://a:1]
    max_idle_per_target: 0
    retries: {budget: 0%, min_retries_per_second: 0}
`)
	u := c.Upstreams["a"]
	if u.MaxIdlePerTarget != 0 || u.Retries.Budget != 0 || u.Retries.MinRetriesPerSecond != 0 {
		t.Errorf("zeroes replaced by defaults: %+v", u)
	}
}

func TestParseStatusRanges(t *testing.T) {
	cases := []struct {
		in   string
		want StatusRanges
		err  string
	}{
		{"200-399", StatusRanges{{200, 399}}, ""},
		{"200", StatusRanges{{200, 200}}, ""},
		{" 200 , 204, 300 - 399 ", StatusRanges{{200, 200}, {204, 204}, {300, 399}}, ""},
		{"100-599", StatusRanges{{100, 599}}, ""},
		{"", nil, "no status codes"},
		{"200,", nil, "invalid status list"},
		{"2xx", nil, "invalid status list"},
		{"200-300-400", nil, "invalid status list"},
		{"-200", nil, "invalid status list"},
		{"99", nil, "status 99 is out of range"},
		{"200-600", nil, "status 600 is out of range"},
		{"1000", nil, "status 1000 is out of range"},
		{"399-200", nil, `range "399-200" is backwards: write the lower code first, like 200-399`},
	}
	for _, tc := range cases {
		got, err := ParseStatusRanges(tc.in)
		switch {
		case tc.err == "" && (err != nil || !reflect.DeepEqual(got, tc.want)):
			t.Errorf("ParseStatusRanges(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseStatusRanges(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
		}
	}
	r := StatusRanges{{200, 200}, {204, 204}, {300, 399}}
	for code, want := range map[int]bool{199: false, 200: true, 201: false, 204: true, 300: true, 350: true, 399: true, 400: false} {
		if r.Contains(code) != want {
			t.Errorf("%v.Contains(%d) = %v", r, code, !want)
		}
	}
	if s := r.String(); s != "200,204,300-399" {
		t.Errorf("String() = %q", s)
	}
	if (StatusRanges(nil)).Contains(200) {
		t.Error("an empty list contains nothing")
	}
}

func TestRetryOnString(t *testing.T) {
	if s := (RetryOn{Kind: RetryStatus, Status: 503}).String(); s != "503" {
		t.Errorf("String() = %q", s)
	}
	if s := (RetryOn{Kind: RetryReset}).String(); s != "reset" {
		t.Errorf("String() = %q", s)
	}
}

// The upstream of the interface spec, as written there.
func TestSpecUpstreamExample(t *testing.T) {
	c := mustParse(t, `listeners: [{addr: 127.0.0.1:8080}]
upstreams:
  app:
    targets:                     # a URL string, or a mapping
      - http://127.0.0.1:9001
      - {url: http://127.0.0.1:9002, weight: 3}
    balance: round_robin         # round_robin | weighted_round_robin | least_conn | random | p2c | ewma | hash | first
    preserve_host: false         # true: send the client's Host; false: the target's host
    timeouts: {connect: 5s, response_header: 60s, idle: 90s}
    health:                      # added by the upstreams issue
      active:  {path: /healthz, interval: 2s, timeout: 1s, fall: 3, rise: 2, expect_status: "200-399"}
      passive: {max_fails: 3, window: 10s, eject: 30s}
    retries: {attempts: 2, on: [connect, 502, 503, 504]}   # idempotent methods only, unless the body was not sent yet
    backup: [http://127.0.0.1:9009]   # used only when every target is down
`)
	u := c.Upstreams["app"]
	want := Upstream{
		Pos: Pos{3, 3}, Name: "app", Targets: u.Targets, Balance: "round_robin",
		Timeouts: Timeouts{Connect: 5 * time.Second, ResponseHeader: 60 * time.Second, Idle: 90 * time.Second},
		Health: Health{
			Active:  &ActiveHealth{Path: "/healthz", Interval: 2 * time.Second, Timeout: time.Second, Fall: 3, Rise: 2, ExpectStatus: StatusRanges{{200, 399}}},
			Passive: &PassiveHealth{MaxFails: 3, Window: 10 * time.Second, Eject: 30 * time.Second},
		},
		Retries: Retries{Attempts: 2, On: []RetryOn{{Kind: RetryConnect}, {Kind: RetryStatus, Status: 502}, {Kind: RetryStatus, Status: 503}, {Kind: RetryStatus, Status: 504}},
			Budget: 0.2, MinRetriesPerSecond: 3},
		Backup:    []Target{{Pos: Pos{14, 14}, URL: u.Backup[0].URL, Weight: 1}},
		Transport: "h1", MaxIdlePerTarget: 256, ResolveInterval: 30 * time.Second, Queue: Queue{Timeout: 5 * time.Second},
	}
	if !reflect.DeepEqual(*u, want) {
		t.Errorf("got  %+v\nwant %+v", *u, want)
	}
	if got := u.Backup[0].URL.String(); got != "http://127.0.0.1:9009" {
		t.Errorf("backup = %s", got)
	}
}
