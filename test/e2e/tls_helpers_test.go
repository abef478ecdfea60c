package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/testcert"
)

// tlsFixture is a test CA and certificate files for TLS listeners.
type tlsFixture struct {
	dir    string
	ca     *testcert.CA
	caFile string
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	f := &tlsFixture{dir: t.TempDir(), ca: testcert.NewCA(t, "e2e CA")}
	f.caFile = filepath.Join(f.dir, "ca.pem")
	testcert.WriteFile(t, f.caFile, f.ca.PEM)
	return f
}

// cert issues a certificate for names and writes NAME.pem/NAME.key; it
// returns the YAML of a certificates entry.
func (f *tlsFixture) cert(t *testing.T, file string, names ...string) string {
	t.Helper()
	cf, kf := f.ca.Issue(t, names, testcert.Options{CommonName: file}).Write(t, f.dir, file)
	return "{cert_file: " + cf + ", key_file: " + kf + "}"
}

// dialTo makes every connection go to addr, whatever the URL's host, so
// that clients send the URL's host as SNI and Host.
func dialTo(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	}
}

// httpsClient trusts the fixture's CA and connects to addr; h2 chooses
// whether it offers HTTP/2.
func (f *tlsFixture) httpsClient(t *testing.T, addr string, h2 bool, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       dialTo(addr),
		TLSClientConfig:   &tls.Config{RootCAs: f.ca.Pool(), Certificates: certs},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// port is the port of a host:port.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// servedCN is the common name of the certificate addr serves for sni.
func (f *tlsFixture) servedCN(t *testing.T, addr, sni string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: sni, RootCAs: f.ca.Pool()})
	if err != nil {
		t.Fatalf("handshake with %s for %s: %v", addr, sni, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func indent(s string, n int) string {
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", n))
}

// waitListening waits until addr accepts TCP: startGatehouse waits for
// {{LISTEN}} only, and the other listeners open right after it.
func waitListening(t *testing.T, addrs ...string) {
	t.Helper()
	for _, addr := range addrs {
		if !waitFor(5*time.Second, func() bool { return ready(addr, "") }) {
			t.Fatalf("%s not listening", addr)
		}
	}
}
