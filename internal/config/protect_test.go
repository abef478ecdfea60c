package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestProtectionSettings(t *testing.T) {
	c := mustParse(t, `listeners:
  - addr: ":1"
    max_connections: 100
    max_connections_per_ip: 10
    max_requests_per_ip: 5
    proxy_protocol: true
    proxy_protocol_from: [10.0.0.0/24, "::1"]
limits: {write_timeout: 5s, min_body_rate: 1KiB, body_rate_window: 3s}
hide_response_headers: [X-Secret]
send_via: true
upstreams:
  a:
    targets: [http://a:1]
    max_conns_per_target: 3
    queue: {size: 7}
    rewrite_location: true
`)
	l := c.Listeners[0]
	if l.MaxConnections != 100 || l.MaxConnectionsPerIP != 10 || l.MaxRequestsPerIP != 5 || !l.ProxyProtocol ||
		!reflect.DeepEqual(l.ProxyProtocolFrom, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("::1/128")}) {
		t.Errorf("listener = %+v", l)
	}
	if c.Limits.WriteTimeout != 5*time.Second || c.Limits.MinBodyRate != 1024 || c.Limits.BodyRateWindow != 3*time.Second {
		t.Errorf("limits = %+v", c.Limits)
	}
	if !reflect.DeepEqual(c.HideResponseHeaders, []string{"X-Secret"}) || !c.SendVia {
		t.Errorf("hide_response_headers = %v, send_via = %v", c.HideResponseHeaders, c.SendVia)
	}
	u := c.Upstreams["a"]
	if u.MaxConnsPerTarget != 3 || u.Queue != (Queue{Size: 7, Timeout: DefaultQueueTimeout}) || !u.RewriteLocation {
		t.Errorf("upstream = %+v", u)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", warningStrings(c))
	}

	d := mustParse(t, "listeners: [{addr: ':1'}]\n")
	if !reflect.DeepEqual(d.HideResponseHeaders, DefaultHideResponseHeaders()) || d.Limits.WriteTimeout != DefaultWriteTimeout {
		t.Errorf("defaults: hide %v write_timeout %v", d.HideResponseHeaders, d.Limits.WriteTimeout)
	}
	e := mustParse(t, "listeners: [{addr: ':1'}]\nhide_response_headers: []\n")
	if len(e.HideResponseHeaders) != 0 {
		t.Errorf("an empty list written is kept empty, got %v", e.HideResponseHeaders)
	}
}

func TestProtectionErrors(t *testing.T) {
	_, err := Parse("x.yaml", []byte(`listeners:
  - addr: ":1"
    max_connections: -1
    max_connections_per_ip: -2
    max_requests_per_ip: -3
    proxy_protocol_from: [10.0.0.0/8]
limits: {write_timeout: -1s, min_body_rate: 1KiB, body_rate_window: 0}
hide_response_headers: ["bad name"]
upstreams:
  a:
    targets: [http://a:1]
    queue: {size: -1, timeout: 0}
`))
	want := []string{
		`x.yaml:3:22: listeners[0].max_connections: max_connections must not be negative (0 means no limit), got -1`,
		`x.yaml:4:29: listeners[0].max_connections_per_ip: max_connections_per_ip must not be negative (0 means no limit), got -2`,
		`x.yaml:5:26: listeners[0].max_requests_per_ip: max_requests_per_ip must not be negative (0 means no limit), got -3`,
		`x.yaml:6:26: listeners[0].proxy_protocol_from: proxy_protocol_from applies only with proxy_protocol: true`,
		`x.yaml:7:25: limits.write_timeout: duration -1s must not be negative`,
		`x.yaml:7:69: limits.body_rate_window: body_rate_window must be positive when min_body_rate is set, like 10s`,
		`x.yaml:8:25: hide_response_headers[0]: invalid header name "bad name": a header name is a single word of letters, digits and -`,
		`x.yaml:12:12: upstreams.a.queue: queue applies only with max_conns_per_target (requests wait for a target below it)`,
		`x.yaml:12:19: upstreams.a.queue.size: size must not be negative (0: no waiting, 503 at once), got -1`,
		`x.yaml:12:32: upstreams.a.queue.timeout: timeout must be positive, like 5s`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	c := mustParse(t, "listeners: [{addr: ':1', proxy_protocol: true}]\n")
	if w := warningStrings(c); len(w) != 1 || !strings.Contains(w[0], "listeners[0].proxy_protocol: proxy_protocol without proxy_protocol_from") {
		t.Errorf("warnings %q, want one about proxy_protocol without proxy_protocol_from", w)
	}
}
