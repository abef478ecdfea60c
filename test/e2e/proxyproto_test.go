package e2e

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// proxyV2 is a PROXY protocol v2 header for a TCP connection from src to
// dst, with a NOOP TLV (which the receiver must skip); local makes it a
// LOCAL command.
func proxyV2(src, dst netip.AddrPort, local bool) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	cmd := byte(0x21)
	if local {
		cmd = 0x20
	}
	fam := byte(0x11)
	var addr []byte
	if src.Addr().Is6() {
		fam = 0x21
		s, d := src.Addr().As16(), dst.Addr().As16()
		addr = append(s[:], d[:]...)
	} else {
		s, d := src.Addr().As4(), dst.Addr().As4()
		addr = append(s[:], d[:]...)
	}
	addr = binary.BigEndian.AppendUint16(addr, src.Port())
	addr = binary.BigEndian.AppendUint16(addr, dst.Port())
	addr = append(addr, 0x04, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o') // PP2_TYPE_NOOP
	b = append(b, cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addr)))
	return append(b, addr...)
}

// seenVia sends preface (a PROXY header or nothing) and one request on a
// new connection from local address from, and returns the echo backend's
// report (or the raw status of a gatehouse answer).
func seenVia(t *testing.T, from, addr string, preface []byte) (int, seen, string) {
	t.Helper()
	c, br := dialFrom(t, from, addr)
	c.Write(preface)
	send(t, c, "GET /pp HTTP/1.1\r\nHost: pp.test\r\n\r\n")
	resp, body := readResp(t, c, br, "GET")
	var s seen
	json.Unmarshal(body, &s)
	return resp.StatusCode, s, string(body)
}

func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	be := echoBackend(t, "be")
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    proxy_protocol: true
    proxy_protocol_from: [127.0.0.1/32]
  - addr: {{OPEN}}
    proxy_protocol: true
admin: {addr: {{ADMIN}}}
limits: {read_header_timeout: 1s}
upstreams:
  app: {targets: [%s]}
sites:
  - routes:
      - {match: {client_ip: [203.0.113.0/24]}, respond: {status: 200, body: "documentation net\n"}}
      - {upstream: app}
`, be.URL))
	dst := netip.MustParseAddrPort(gh.Addr())
	xff := func(s seen) string { return s.Header.Get("X-Forwarded-For") }

	t.Run("v1 sets the client everywhere", func(t *testing.T) {
		c, br := dialFrom(t, "127.0.0.1", gh.Addr())
		send(t, c, "PROXY TCP4 198.51.100.7 "+dst.Addr().String()+" 40000 "+fmt.Sprint(dst.Port())+"\r\n")
		for i := 0; i < 2; i++ { // the whole keep-alive connection
			send(t, c, "GET /v1 HTTP/1.1\r\nHost: pp.test\r\n\r\n")
			resp, body := readResp(t, c, br, "GET")
			var s seen
			json.Unmarshal(body, &s)
			if resp.StatusCode != 200 || xff(s) != "198.51.100.7" || !strings.Contains(s.Header.Get("Forwarded"), "for=198.51.100.7") {
				t.Fatalf("request %d: %d X-Forwarded-For %q Forwarded %q", i, resp.StatusCode, xff(s), s.Header.Get("Forwarded"))
			}
		}
		if !waitFor(3*time.Second, func() bool {
			for _, l := range accessLines(gh.stderr.String()) {
				if l["path"] == "/v1" && strings.HasPrefix(fmt.Sprint(l["client"]), "198.51.100.7:40000") {
					return true
				}
			}
			return false
		}) {
			t.Error("the access log does not name the PROXY header's client")
		}
	})
	t.Run("v1 client_ip match", func(t *testing.T) {
		st, _, body := seenVia(t, "127.0.0.1", gh.Addr(), []byte("PROXY TCP4 203.0.113.9 127.0.0.1 1 2\r\n"))
		if st != 200 || body != "documentation net\n" {
			t.Fatalf("%d %q: the client_ip route did not match the PROXY client", st, body)
		}
	})
	t.Run("v2 IPv6 with TLVs", func(t *testing.T) {
		h := proxyV2(netip.MustParseAddrPort("[2001:db8::42]:5555"), netip.MustParseAddrPort("[2001:db8::1]:443"), false)
		if st, s, body := seenVia(t, "127.0.0.1", gh.Addr(), h); st != 200 || xff(s) != "2001:db8::42" {
			t.Fatalf("%d X-Forwarded-For %q (%s)", st, xff(s), body)
		}
	})
	t.Run("v2 LOCAL and v1 UNKNOWN keep the connection's address", func(t *testing.T) {
		h := proxyV2(netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.2:2"), true)
		for _, pre := range [][]byte{h, []byte("PROXY UNKNOWN\r\n")} {
			if st, s, _ := seenVia(t, "127.0.0.1", gh.Addr(), pre); st != 200 || xff(s) != "127.0.0.1" {
				t.Fatalf("%q: %d X-Forwarded-For %q, want 127.0.0.1", pre[:6], st, xff(s))
			}
		}
	})
	t.Run("a trusted peer without a header, or a bad one, is closed", func(t *testing.T) {
		for _, pre := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "PROXY TCP4 1.2.3.4 nonsense 1 2\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"} {
			c, br := dialFrom(t, "127.0.0.1", gh.Addr())
			send(t, c, pre)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := io.Copy(io.Discard, br); n != 0 || err != nil && !isReset(err) {
				t.Fatalf("%q: read %d bytes, %v; want the connection closed without an answer", pre, n, err)
			}
		}
	})
	t.Run("a silent peer is closed at read_header_timeout", func(t *testing.T) {
		c, br := dialFrom(t, "127.0.0.1", gh.Addr())
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); err != io.EOF && !isReset(err) {
			t.Fatalf("silent peer: %v", err)
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
			t.Fatalf("closed after %v, want read_header_timeout (1s)", d)
		}
	})
	t.Run("an untrusted peer may not send one", func(t *testing.T) {
		c, br := dialFrom(t, "127.0.0.2", gh.Addr())
		send(t, c, "PROXY TCP4 198.51.100.7 127.0.0.1 1 2\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, _ := readResp(t, c, br, "GET")
		if resp.StatusCode != 400 {
			t.Fatalf("PROXY header from an untrusted peer: %d, want 400", resp.StatusCode)
		}
		expectClosed(t, c, br, 3*time.Second)
		// Without one it is served as itself.
		if st, s, _ := seenVia(t, "127.0.0.2", gh.Addr(), nil); st != 200 || xff(s) != "127.0.0.2" {
			t.Fatalf("untrusted peer without a header: %d X-Forwarded-For %q", st, xff(s))
		}
	})
	t.Run("without proxy_protocol_from every peer must send one", func(t *testing.T) {
		if st, s, _ := seenVia(t, "127.0.0.2", gh.Port("OPEN"), []byte("PROXY TCP4 192.0.2.77 127.0.0.1 1 2\r\n")); st != 200 || xff(s) != "192.0.2.77" {
			t.Fatalf("%d X-Forwarded-For %q", st, xff(s))
		}
		if !strings.Contains(gh.stderr.String(), "proxy_protocol without proxy_protocol_from") {
			t.Error("no warning about a PROXY listener open to any peer")
		}
	})
}

// TestProxyProtocolFromHAProxy: HAProxy with send-proxy-v2 in front of
// gatehouse; the backend sees the client HAProxy accepted, not HAProxy.
func TestProxyProtocolFromHAProxy(t *testing.T) {
	t.Parallel()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed (make deps installs it)")
	}
	be := echoBackend(t, "be")
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    proxy_protocol: true
    proxy_protocol_from: [127.0.0.1/32]
upstreams:
  app: {targets: [%s]}
sites: [{routes: [{upstream: app}]}]
`, be.URL))
	front := freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global
  log stderr format raw local0 emerg
defaults
  mode http
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend f
  bind %s
  default_backend b
backend b
  server gh %s send-proxy-v2
`, front, gh.Addr())), 0o644)
	cmd := exec.Command(haproxy, "-f", cfg, "-db")
	logs := &logBuf{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", logs.String())
		}
	})
	if !waitFor(5*time.Second, func() bool {
		c, err := net.Dial("tcp", front)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatal("haproxy did not start")
	}
	cl := clientFrom(t, "127.0.0.3")
	resp, err := cl.Get("http://" + front + "/through-haproxy")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s seen
	if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || s.URI != "/through-haproxy" {
		t.Fatalf("%d %+v", resp.StatusCode, s)
	}
	// HAProxy adds no X-Forwarded-For of its own here: what gatehouse
	// writes comes from the PROXY header alone.
	if got := s.Header.Get("X-Forwarded-For"); got != "127.0.0.3" {
		t.Fatalf("X-Forwarded-For %q, want the client behind HAProxy (127.0.0.3)", got)
	}
}
