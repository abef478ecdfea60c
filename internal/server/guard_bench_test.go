package server

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkProtectGET100B is BenchmarkProxyGET100B with each protection of
// issue 6 on by itself (limits high enough never to refuse), to measure
// what each costs on the hot path. "off" turns off what is on by default
// (write_timeout, the hide list); "defaults" is the default configuration.
func BenchmarkProtectGET100B(b *testing.B) {
	off := "limits: {write_timeout: 0}\nhide_response_headers: []\n"
	cases := []struct {
		name, listener, top, upstream string
		proxyProtocol                 bool
	}{
		{name: "off", top: off},
		{name: "defaults"},
		{name: "listener_limits", top: off, listener: "max_connections: 10000, max_connections_per_ip: 10000, max_requests_per_ip: 10000"},
		{name: "proxy_protocol", top: off, listener: "proxy_protocol: true, proxy_protocol_from: [127.0.0.1/32]", proxyProtocol: true},
		{name: "max_conns_per_target", top: off, upstream: "max_conns_per_target: 10000, queue: {size: 100, timeout: 1s}"},
		{name: "rewrite_location_send_via", top: "limits: {write_timeout: 0}\nsend_via: true\n", upstream: "rewrite_location: true"},
		{name: "all", top: "send_via: true\nlimits: {min_body_rate: 1KiB}\n",
			listener: "max_connections: 10000, max_connections_per_ip: 10000, max_requests_per_ip: 10000, proxy_protocol: true, proxy_protocol_from: [127.0.0.1/32]",
			upstream: "max_conns_per_target: 10000, queue: {size: 100, timeout: 1s}, rewrite_location: true", proxyProtocol: true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			backend := rawBackend(b, bytes.Repeat([]byte("x"), 100))
			listener := ""
			if tc.listener != "" {
				listener = ", " + tc.listener
			}
			upstream := ""
			if tc.upstream != "" {
				upstream = ", " + tc.upstream
			}
			text := fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"%s}]
access_log: {enabled: false}
%s
upstreams:
  app: {targets: ["http://%s"]%s}
sites:
  - routes:
      - match: {path_prefix: /}
        upstream: app
`, listener, tc.top, backend, upstream)
			addr := startConfig(b, text)
			var preface []byte
			if tc.proxyProtocol {
				preface = []byte("PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n")
			}
			benchmarkAddrPreface(b, addr, 100, preface)
		})
	}
}
