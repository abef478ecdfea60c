package server

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The cost of the protections on the hot path: the same load as
// BenchmarkProxyGET100B with one middleware on the route. Every request
// comes from 127.0.0.1, so rate_limit works on one bucket (its worst case
// for contention) at a rate it never reaches.

func startProxyWith(b *testing.B, backend, top, middleware string) string {
	text := fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
access_log: {enabled: false}
%s
upstreams:
  app: {targets: ["http://%s"]}
sites:
  - routes:
      - match: {path_prefix: /}
        upstream: app
        middleware:
          - %s
`, top, backend, middleware)
	return startConfig(b, text)
}

func benchmarkMiddleware(b *testing.B, top, middleware string) {
	body := bytes.Repeat([]byte("x"), 100)
	addr := startProxyWith(b, rawBackend(b, body), top, middleware)
	b.ResetTimer() // the configuration's own allocations are not the request's
	benchmarkAddr(b, addr, 100)
}

func BenchmarkProxyGET100BRateLimitLocal(b *testing.B) {
	benchmarkMiddleware(b, "", "rate_limit: {rate: 1000000000/s}")
}

func BenchmarkProxyGET100BRateLimitLocalNoHeaders(b *testing.B) {
	benchmarkMiddleware(b, "", "rate_limit: {rate: 1000000000/s, headers: false}")
}

func BenchmarkProxyGET100BRateLimitRedis(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		b.Fatal("redis-server: ", err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("redis-server did not start")
		}
	}
	benchmarkMiddleware(b, fmt.Sprintf("cluster: {redis: {addr: %q}}", addr), "rate_limit: {rate: 1000000/s, store: redis}")
}

// A deny list of 10000 prefixes that do not hold the client.
func BenchmarkProxyGET100BIPFilter(b *testing.B) {
	var sb strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&sb, "\"10.%d.%d.0/24\", ", i>>8, i&255)
	}
	benchmarkMiddleware(b, "", "ip_filter: {deny: ["+strings.TrimSuffix(sb.String(), ", ")+"]}")
}

func BenchmarkProxyGET100BBotFilter(b *testing.B) {
	benchmarkMiddleware(b, "", `bot_filter: {deny_user_agents: ["~(?i)(badbot|scrapy|python-requests)", "curl/"]}`)
}
