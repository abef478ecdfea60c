package server

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
)

// TestListenerGuardFollowsReload: a reload changes a kept listener's
// limits and PROXY setting in place (same socket, same counters).
func TestListenerGuardFollowsReload(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	parse := func(listener string) *config.Config {
		cfg, err := config.Parse("c.yaml", []byte(fmt.Sprintf(`listeners: [{addr: "%s"%s}]
access_log: {enabled: false}
sites: [{routes: [{respond: {body: "hi"}}]}]
`, addr, listener)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	srv, err := New(parse(""), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	get := func(preface string) string {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, preface+"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line)
	}
	if got := get(""); got != "HTTP/1.1 200 OK" {
		t.Fatalf("before: %q", got)
	}
	l := srv.listeners[addr]
	if err := srv.Apply(parse(", proxy_protocol: true, proxy_protocol_from: [127.0.0.1/32], max_requests_per_ip: 7")); err != nil {
		t.Fatal(err)
	}
	if srv.listeners[addr] != l {
		t.Fatal("the listener was replaced, not reconfigured")
	}
	if st := l.guard.set.Load(); !st.proxyProtocol || st.maxReqsPerIP != 7 {
		t.Fatalf("settings after reload: %+v", st)
	}
	if got := get("PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n"); got != "HTTP/1.1 200 OK" {
		t.Fatalf("with a PROXY header after the reload: %q", got)
	}
	if got := get(""); got != "" {
		t.Fatalf("without a PROXY header after the reload: %q, want the connection closed", got)
	}
}
