package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/tlsconf"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// acmeServer starts a gatehouse server for an ACME configuration.
func acmeServer(t *testing.T, text string, logs io.Writer) *Server {
	t.Helper()
	cfg, err := config.Parse("acme.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.TLSTiming = tlsconf.Timing{ACMERenewCheck: 500 * time.Millisecond}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	return srv
}

// served is the certificate addr serves for name; nil until there is one.
func servedLeaf(addr, name string) *x509.Certificate {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return nil
	}
	defer c.Close()
	leaf := c.ConnectionState().PeerCertificates[0]
	if len(leaf.DNSNames) == 0 || leaf.DNSNames[0] != name {
		return nil
	}
	return leaf
}

func waitLeaf(t *testing.T, addr, name string, d time.Duration, ok func(*x509.Certificate) bool) *x509.Certificate {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(100 * time.Millisecond) {
		if leaf := servedLeaf(addr, name); leaf != nil && ok(leaf) {
			return leaf
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for %s from %s within %v", name, addr, d)
		}
	}
}

func anyLeaf(*x509.Certificate) bool { return true }

func acmeConfig(p *pebble, httpPort, tlsPort int, storage, challenges, domains, renew string) string {
	return fmt.Sprintf(`listeners:
  - addr: 127.0.0.1:%d
    tls:
      acme: {email: ops@acme.test, ca: %q, ca_root: %q, storage: %q, domains: %s, challenges: %s%s}
  - addr: 127.0.0.1:%d
access_log: {enabled: false}
sites:
  - routes: [{respond: {body: "ok\n"}}]
`, tlsPort, p.dirURL, p.rootPEM, storage, domains, challenges, renew, httpPort)
}

// Certificates obtained from Pebble with HTTP-01 (answered on the plain
// listener) and TLS-ALPN-01 (on the TLS listener), served, stored, and
// reused from storage by a restarted server without a new order.
func TestACMEWithPebble(t *testing.T) {
	t.Parallel()
	httpPort, tlsPort := freePort(t), freePort(t)
	p := startPebble(t, httpPort, tlsPort, time.Hour)
	storage := t.TempDir()
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	logs := &lockedBuf{}
	srv := acmeServer(t, acmeConfig(p, httpPort, tlsPort, storage, "[http-01]", "[h.acme.test]", ""), logs)
	first := waitLeaf(t, tlsAddr, "h.acme.test", 30*time.Second, anyLeaf)
	// The chain served verifies up to Pebble's root.
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", tlsAddr, &tls.Config{ServerName: "h.acme.test", RootCAs: p.roots(t)})
	if err != nil {
		t.Fatalf("verified handshake: %v", err)
	}
	c.Close()
	if !strings.Contains(first.Issuer.CommonName, "Pebble") {
		t.Errorf("issuer %q", first.Issuer)
	}
	if !strings.Contains(logs.String(), `"challenge":"http-01"`) {
		t.Errorf("no HTTP-01 challenge answered:\n%s", logs)
	}
	// Stored where the configuration says.
	var stored []string
	filepath.WalkDir(storage, func(path string, d fs.DirEntry, err error) error {
		if strings.HasSuffix(path, ".crt") {
			stored = append(stored, path)
		}
		return nil
	})
	if len(stored) != 1 || !strings.Contains(stored[0], "h.acme.test") {
		t.Errorf("stored certificates %v", stored)
	}

	// A reload adds a domain validated with TLS-ALPN-01; the first one
	// comes from storage, unchanged.
	cfg2 := acmeConfig(p, httpPort, tlsPort, storage, "[tls-alpn-01]", "[h.acme.test, t.acme.test]", "")
	c2, err := config.Parse("acme.yaml", []byte(cfg2))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(c2); err != nil {
		t.Fatal(err)
	}
	waitLeaf(t, tlsAddr, "t.acme.test", 30*time.Second, anyLeaf)
	if !strings.Contains(logs.String(), `"challenge":"tls-alpn-01"`) {
		t.Errorf("no TLS-ALPN-01 challenge answered:\n%s", logs)
	}
	if got := servedLeaf(tlsAddr, "h.acme.test"); got == nil || got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("h.acme.test not reused after the reload: %v", got)
	}
	srv.Shutdown(t.Context())

	// A restart serves both from storage at once.
	acmeServer(t, cfg2, io.Discard)
	for _, name := range []string{"h.acme.test", "t.acme.test"} {
		leaf := waitLeaf(t, tlsAddr, name, 3*time.Second, anyLeaf)
		if name == "h.acme.test" && leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Errorf("restart obtained a new certificate for %s instead of using the stored one", name)
		}
	}
}

// A certificate is renewed before it expires (Pebble issues 20-second
// certificates here; renew_before 60% renews with 12 seconds left).
func TestACMERenewal(t *testing.T) {
	t.Parallel()
	httpPort, tlsPort := freePort(t), freePort(t)
	p := startPebble(t, httpPort, tlsPort, 20*time.Second)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	acmeServer(t, acmeConfig(p, httpPort, tlsPort, t.TempDir(), "[http-01, tls-alpn-01]", "[r.acme.test]", ", renew_before: 60%"), io.Discard)
	first := waitLeaf(t, tlsAddr, "r.acme.test", 30*time.Second, anyLeaf)
	renewed := waitLeaf(t, tlsAddr, "r.acme.test", 30*time.Second, func(l *x509.Certificate) bool {
		return l.SerialNumber.Cmp(first.SerialNumber) != 0
	})
	if !renewed.NotAfter.After(first.NotAfter) || time.Now().After(first.NotAfter) {
		t.Errorf("renewed %v → %v at %v: not before expiry", first.NotAfter, renewed.NotAfter, time.Now())
	}
}
