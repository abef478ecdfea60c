package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func bigBody() []byte { return bytes.Repeat([]byte("0123456789abcdef"), 16<<10) } // 256 KiB

// testPKI is a CA made for one test, with files gatehouse can be pointed at.
type testPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	pool   *x509.CertPool
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{dir: t.TempDir(), ca: ca, caKey: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = p.write(t, name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue makes a leaf certificate; with client, for client authentication.
// It returns the certificate and the paths of its PEM files.
func (p *testPKI) issue(t *testing.T, cn string, client bool, dns []string, ips []net.IP) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := p.write(t, cn+".pem", "CERTIFICATE", der)
	keyFile := p.write(t, cn+"-key.pem", "PRIVATE KEY", kder)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certFile, keyFile
}

// tlsBackend is an https backend that tells what it saw; h2 offers HTTP/2 by
// ALPN, clientCAs (non-nil) requires a client certificate.
func tlsBackend(t *testing.T, cert tls.Certificate, h2 bool, clientCAs *x509.CertPool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	big := bigBody()
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/big"):
			w.Write(big)
			return
		case strings.HasSuffix(r.URL.Path, "/post"):
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Trailer", "X-Sum")
			fmt.Fprintf(w, "%d %s", len(b), sha256Hex(b))
			w.Header().Set("X-Sum", sha256Hex(b))
			return
		}
		peer := "-"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			peer = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "proto=%s host=%s path=%s peer=%s", r.Proto, r.Host, r.URL.RequestURI(), peer)
	}))
	be.EnableHTTP2 = h2
	be.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		be.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		be.TLS.ClientCAs = clientCAs
	}
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Config.ErrorLog = log.New(io.Discard, "", 0)
	be.StartTLS()
	t.Cleanup(be.Close)
	return be, &conns
}

func upstreamTLSConfig(pools string) string {
	return `listeners:
  - addr: {{LISTEN}}
admin: {addr: "{{ADMIN}}"}
upstreams:
` + pools + `
sites:
  - routes:
      - {match: {path_prefix: /a/}, upstream: a}
      - {match: {path_prefix: /b/}, upstream: b}
      - {match: {path_prefix: /c/}, upstream: c}
      - {match: {path_prefix: /d/}, upstream: d}
`
}

func TestUpstreamTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "gh-test")
	ip := []net.IP{net.ParseIP("127.0.0.1")}
	cert, _, _ := pki.issue(t, "backend-ip", false, nil, ip)
	named, _, _ := pki.issue(t, "backend-named", false, []string{"backend.test"}, nil)
	be, conns := tlsBackend(t, cert, false, nil)
	beNamed, _ := tlsBackend(t, named, false, nil)
	u := strings.TrimPrefix(be.URL, "https://")
	un := strings.TrimPrefix(beNamed.URL, "https://")

	gh := startGatehouse(t, upstreamTLSConfig(fmt.Sprintf(`  a: {targets: ["https://%s"], tls: {ca_file: %q}}
  b: {targets: ["https://%s"], retries: {attempts: 0}}
  c: {targets: ["https://%s/base"], tls: {ca_file: %q, server_name: backend.test}}
  d: {targets: ["https://%s"], tls: {insecure_skip_verify: true}}`, u, pki.caFile, u, un, pki.caFile, un)))
	c := newClient(t)

	t.Run("custom CA", func(t *testing.T) {
		before := conns.Load()
		for i := 0; i < 5; i++ {
			resp, body := do(t, c, "GET", gh.URL(fmt.Sprintf("/a/x?i=%d", i)), "", nil)
			want := fmt.Sprintf("proto=HTTP/1.1 host=%s path=/a/x?i=%d peer=-", u, i)
			if resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("status %d body %q, want %q\n%s", resp.StatusCode, body, want, tail(gh.stderr.String(), 2000))
			}
		}
		// Keep-alive: the TLS connection is reused.
		if n := conns.Load() - before; n > 2 {
			t.Errorf("%d TLS connections for 5 sequential requests; want reuse", n)
		}
		// After a quiet spell the pooled TLS connection is checked (through
		// the socket under it) and still reused.
		before = conns.Load()
		for i := 0; i < 3; i++ {
			time.Sleep(120 * time.Millisecond)
			resp, _ := do(t, c, "GET", gh.URL("/a/idle"), "", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		if n := conns.Load() - before; n > 1 {
			t.Errorf("%d TLS connections for 3 requests after idle spells; want reuse", n)
		}
	})

	t.Run("large body and upload", func(t *testing.T) {
		resp, body := do(t, c, "GET", gh.URL("/a/big"), "", nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, bigBody()) {
			t.Fatalf("GET /a/big: status %d, %d bytes", resp.StatusCode, len(body))
		}
		payload := bytes.Repeat([]byte("z"), 300<<10)
		resp, body = do(t, c, "POST", gh.URL("/a/post"), "", bytes.NewReader(payload))
		if want := fmt.Sprintf("%d %s", len(payload), sha256Hex(payload)); resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("POST: status %d body %q, want %q", resp.StatusCode, body, want)
		}
		if got := resp.Trailer.Get("X-Sum"); got != sha256Hex(payload) {
			t.Errorf("trailer X-Sum %q (trailers %v)", got, resp.Trailer)
		}
	})

	t.Run("unknown CA is 502", func(t *testing.T) {
		resp, body := do(t, c, "GET", gh.URL("/b/x"), "", nil)
		assertErrorPage(t, resp, body, 502)
	})

	t.Run("server name", func(t *testing.T) {
		resp, body := do(t, c, "GET", gh.URL("/c/y"), "", nil)
		// The Host header stays the URL's host; only SNI and verification use server_name.
		want := fmt.Sprintf("proto=HTTP/1.1 host=%s path=/base/c/y peer=-", un)
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("status %d body %q, want %q\n%s", resp.StatusCode, body, want, tail(gh.stderr.String(), 2000))
		}
	})

	t.Run("insecure_skip_verify", func(t *testing.T) {
		resp, body := do(t, c, "GET", gh.URL("/d/z"), "", nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "proto=HTTP/1.1") {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	})
}

func TestUpstreamH2(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "gh-h2")
	cert, _, _ := pki.issue(t, "backend-h2", false, nil, []net.IP{net.ParseIP("127.0.0.1")})
	be, conns := tlsBackend(t, cert, true, nil)
	u := strings.TrimPrefix(be.URL, "https://")
	h1only, _ := tlsBackend(t, cert, false, nil)
	gh := startGatehouse(t, upstreamTLSConfig(fmt.Sprintf(`  a: {targets: ["https://%s"], transport: h2, tls: {ca_file: %q}}
  b: {targets: ["https://%s"], transport: h2, tls: {ca_file: %q}, retries: {attempts: 0}}
  c: {targets: ["https://%s"], transport: h2}
  d: {targets: ["https://%s"], transport: h2, tls: {ca_file: %q}}`,
		u, pki.caFile, strings.TrimPrefix(h1only.URL, "https://"), pki.caFile, u, u, pki.caFile)))
	c := newClient(t)

	before := conns.Load()
	for i := 0; i < 5; i++ {
		resp, body := do(t, c, "GET", gh.URL(fmt.Sprintf("/a/p?i=%d", i)), "", nil)
		want := fmt.Sprintf("proto=HTTP/2.0 host=%s path=/a/p?i=%d peer=-", u, i)
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("status %d body %q, want %q\n%s", resp.StatusCode, body, want, tail(gh.stderr.String(), 2000))
		}
	}
	if n := conns.Load() - before; n != 1 {
		t.Errorf("%d connections for 5 requests over HTTP/2; want 1", n)
	}

	t.Run("upload and trailers", func(t *testing.T) {
		payload := bytes.Repeat([]byte("h2"), 150<<10)
		resp, body := do(t, c, "POST", gh.URL("/a/post"), "", bytes.NewReader(payload))
		want := fmt.Sprintf("%d %s", len(payload), sha256Hex(payload))
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("status %d body %q, want %q", resp.StatusCode, body, want)
		}
		if got := resp.Trailer.Get("X-Sum"); got != sha256Hex(payload) {
			t.Errorf("trailer X-Sum %q, want %q (trailers %v)", got, sha256Hex(payload), resp.Trailer)
		}
	})

	t.Run("large response", func(t *testing.T) {
		resp, body := do(t, c, "GET", gh.URL("/a/big"), "", nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, bigBody()) {
			t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
		}
	})

	t.Run("backend without h2 is 502", func(t *testing.T) {
		resp, body := do(t, c, "GET", gh.URL("/b/x"), "", nil)
		assertErrorPage(t, resp, body, 502)
	})

	t.Run("unknown CA is 502", func(t *testing.T) {
		resp, body := do(t, c, "GET", gh.URL("/c/x"), "", nil)
		assertErrorPage(t, resp, body, 502)
	})
}

func TestUpstreamMTLS(t *testing.T) {
	t.Parallel()
	serverPKI := newTestPKI(t, "gh-server-ca")
	clientPKI := newTestPKI(t, "gh-client-ca")
	cert, _, _ := serverPKI.issue(t, "backend-mtls", false, nil, []net.IP{net.ParseIP("127.0.0.1")})
	_, certFile, keyFile := clientPKI.issue(t, "gatehouse-client", true, nil, nil)
	be1, _ := tlsBackend(t, cert, false, clientPKI.pool)
	be2, _ := tlsBackend(t, cert, true, clientPKI.pool)
	u1 := strings.TrimPrefix(be1.URL, "https://")
	u2 := strings.TrimPrefix(be2.URL, "https://")
	gh := startGatehouse(t, upstreamTLSConfig(fmt.Sprintf(`  a: {targets: ["https://%s"], retries: {attempts: 0}, tls: {ca_file: %q}}
  b: {targets: ["https://%s"], tls: {ca_file: %q, cert_file: %q, key_file: %q}}
  c: {targets: ["https://%s"], transport: h2, retries: {attempts: 0}, tls: {ca_file: %q}}
  d: {targets: ["https://%s"], transport: h2, tls: {ca_file: %q, cert_file: %q, key_file: %q}}`,
		u1, serverPKI.caFile, u1, serverPKI.caFile, certFile, keyFile,
		u2, serverPKI.caFile, u2, serverPKI.caFile, certFile, keyFile)))
	c := newClient(t)
	for _, tc := range []struct {
		name, path, proto string
	}{{"h1", "/a/", "HTTP/1.1"}, {"h2", "/c/", "HTTP/2.0"}} {
		t.Run(tc.name+" without client certificate", func(t *testing.T) {
			resp, body := do(t, c, "GET", gh.URL(tc.path+"x"), "", nil)
			assertErrorPage(t, resp, body, 502)
		})
		with := map[string]string{"/a/": "/b/", "/c/": "/d/"}[tc.path]
		t.Run(tc.name+" with client certificate", func(t *testing.T) {
			resp, body := do(t, c, "GET", gh.URL(with+"x"), "", nil)
			if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "proto="+tc.proto) || !strings.HasSuffix(string(body), "peer=gatehouse-client") {
				t.Fatalf("status %d body %q\n%s", resp.StatusCode, body, tail(gh.stderr.String(), 2000))
			}
		})
	}
}

// TestUpstreamTLSHealthChecks: active checks of https targets use the pool's
// TLS settings (custom CA) and transport (h2): a target whose check fails is
// taken out, the other serves everything.
func TestUpstreamTLSHealthChecks(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "gh-health")
	cert, _, _ := pki.issue(t, "backend-health", false, nil, []net.IP{net.ParseIP("127.0.0.1")})
	start := func(name string, healthy, h2 bool) string {
		be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" && !healthy {
				w.WriteHeader(503)
				return
			}
			fmt.Fprintf(w, "%s %s", name, r.Proto)
		}))
		be.EnableHTTP2 = h2
		be.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		be.Config.ErrorLog = log.New(io.Discard, "", 0)
		be.StartTLS()
		t.Cleanup(be.Close)
		return strings.TrimPrefix(be.URL, "https://")
	}
	gh := startGatehouse(t, upstreamTLSConfig(fmt.Sprintf(`  a:
    targets: ["https://%s", "https://%s"]
    tls: {ca_file: %q}
    health: {active: {path: /healthz, interval: 300ms, timeout: 250ms, fall: 1, rise: 1}}
  b:
    targets: ["https://%s", "https://%s"]
    transport: h2
    tls: {ca_file: %q}
    health: {active: {path: /healthz, interval: 300ms, timeout: 250ms, fall: 1, rise: 1}}
  c: {targets: ["http://127.0.0.1:1"]}
  d: {targets: ["http://127.0.0.1:1"]}`,
		start("good1", true, false), start("bad1", false, false), pki.caFile,
		start("good2", true, true), start("bad2", false, true), pki.caFile)))
	c := newClient(t)
	for _, tc := range []struct{ path, want string }{{"/a/", "good1 HTTP/1.1"}, {"/b/", "good2 HTTP/2.0"}} {
		// The failing targets go down after their first check.
		ok := waitFor(5*time.Second, func() bool {
			for i := 0; i < 6; i++ {
				resp, body := do(t, c, "GET", gh.URL(tc.path), "", nil)
				if resp.StatusCode != 200 || string(body) != tc.want {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Errorf("%s: the target failing its checks still gets requests\n%s", tc.path, tail(gh.stderr.String(), 3000))
		}
	}
}
