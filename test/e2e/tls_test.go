package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/testcert"
)

// HTTPS with HTTP/1.1 and HTTP/2 (chosen by ALPN) to a backend, from Go's
// client and from curl; the certificate is chosen by SNI.
func TestTLSProxy(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	be := echoBackend(t, "app")
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    tls:
      certificates:
        - %s
        - %s
upstreams:
  app: {targets: [%s]}
sites:
  - routes: [{upstream: app}]
`, f.cert(t, "site-a", "a.test", "127.0.0.1"), f.cert(t, "site-b", "*.b.test"), be.URL))
	for _, h2 := range []bool{false, true} {
		c := f.httpsClient(t, gh.Addr(), h2)
		req, _ := http.NewRequest("GET", "https://x.b.test/path?q=1", nil)
		resp, s := doSeen(t, c, req)
		wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
		if resp.Proto != wantProto || resp.TLS.PeerCertificates[0].Subject.CommonName != "site-b" {
			t.Errorf("h2=%v: proto %s, certificate %s", h2, resp.Proto, resp.TLS.PeerCertificates[0].Subject.CommonName)
		}
		if s.URI != "/path?q=1" || s.Header.Get("X-Forwarded-Proto") != "https" || s.Header.Get("X-Forwarded-Host") != "x.b.test" {
			t.Errorf("backend saw %+v", s)
		}
		if resp.Header.Get("Alt-Svc") != "" || resp.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("unexpected headers %v", resp.Header)
		}
	}
	if !waitFor(5*time.Second, func() bool {
		for _, l := range accessLines(gh.stderr.String()) {
			if l["path"] == "/path" && l["tls"] == "1.3" {
				return true
			}
		}
		return false
	}) {
		t.Errorf("no access line with tls 1.3 for /path:\n%s", tail(gh.stderr.String(), 2000))
	}
	if cn := f.servedCN(t, gh.Addr(), "a.test"); cn != "site-a" {
		t.Errorf("a.test served %s", cn)
	}
	for _, flag := range []string{"--http1.1", "--http2"} {
		out, err := exec.Command("curl", "-sS", flag, "--cacert", f.caFile, "--resolve", "a.test:"+port(gh.Addr())+":127.0.0.1",
			"-o", "/dev/null", "-w", "%{http_version} %{http_code}", "https://a.test:"+port(gh.Addr())+"/").CombinedOutput()
		want := map[string]string{"--http1.1": "1.1 200", "--http2": "2 200"}[flag]
		if err != nil || string(out) != want {
			t.Errorf("curl %s: %q %v, want %q", flag, out, err, want)
		}
	}
}

// Certificates change without a connection being dropped: by a reload
// (SIGHUP) and by the files changing on disk.
func TestTLSCertificateChanges(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	release := make(chan struct{})
	done := onceCloser(release)
	defer done()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			io.WriteString(w, "started ")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		io.WriteString(w, "done")
	}))
	t.Cleanup(be.Close)
	tmpl := `listeners:
  - addr: {{LISTEN}}
    tls:
      watch_interval: 100ms
      certificates: [%s]
upstreams:
  app: {targets: [` + be.URL + `]}
sites:
  - routes: [{upstream: app}]
`
	gh := startGatehouse(t, fmt.Sprintf(tmpl, f.cert(t, "one", "a.test")))
	for _, h2 := range []bool{false, true} {
		c := f.httpsClient(t, gh.Addr(), h2)
		resp, err := c.Get("https://a.test/slow")
		if err != nil {
			t.Fatal(err)
		}
		// A reload to another certificate file while the response is open.
		gh.writeConfig(fmt.Sprintf(tmpl, f.cert(t, fmt.Sprintf("two-%v", h2), "a.test")))
		gh.signal(syscall.SIGHUP)
		if !waitFor(5*time.Second, func() bool { return f.servedCN(t, gh.Addr(), "a.test") == fmt.Sprintf("two-%v", h2) }) {
			t.Fatal("reloaded certificate not served")
		}
		done()
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "started done" {
			t.Fatalf("h2=%v: in-flight response cut by the reload: %q %v", h2, b, err)
		}
		release = make(chan struct{})
		done = onceCloser(release)
	}
	// The file itself replaced on disk (as certbot or cert-manager do).
	leaf := f.ca.Issue(t, []string{"a.test"}, testcert.Options{CommonName: "three"})
	testcert.WriteFile(t, filepath.Join(f.dir, "two-true.key"), leaf.KeyPEM)
	testcert.WriteFile(t, filepath.Join(f.dir, "two-true.pem"), leaf.CertPEM)
	if !waitFor(5*time.Second, func() bool { return f.servedCN(t, gh.Addr(), "a.test") == "three" }) {
		t.Fatal("changed certificate file not served")
	}
}

// Client certificates: required or optional; the verified subject goes to
// the backend in the configured header, and a client's own copy of that
// header never does (on any listener).
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	clientCA := testcert.NewCA(t, "client CA")
	caFile := filepath.Join(f.dir, "clients.pem")
	testcert.WriteFile(t, caFile, clientCA.PEM)
	alice := clientCA.Issue(t, nil, testcert.Options{Client: true, CommonName: "alice"}).TLS(t)
	be := echoBackend(t, "app")
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    tls:
      certificates: [%s]
      client_auth: {ca_file: %s, mode: require, subject_header: X-Client-Subject}
  - addr: {{OPTIONAL}}
    tls:
      certificates: [%s]
      client_auth: {ca_file: %s, mode: verify_if_given, subject_header: X-Client-Subject}
  - addr: {{PLAIN}}
upstreams:
  app: {targets: [%s]}
sites:
  - routes: [{upstream: app}]
`, f.cert(t, "a", "a.test"), caFile, f.cert(t, "b", "a.test"), caFile, be.URL))
	waitListening(t, gh.Port("OPTIONAL"), gh.Port("PLAIN"))
	get := func(c *http.Client, url string) (seen, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Client-Subject", "CN=forged")
		req.Header.Add("x-client-subject", "CN=forged2")
		resp, err := c.Do(req)
		if err != nil {
			return seen{}, err
		}
		defer resp.Body.Close()
		var s seen
		err = json.NewDecoder(resp.Body).Decode(&s)
		return s, err
	}
	for _, h2 := range []bool{false, true} {
		s, err := get(f.httpsClient(t, gh.Addr(), h2, alice), "https://a.test/")
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Header.Values("X-Client-Subject"); len(got) != 1 || !strings.HasPrefix(got[0], "CN=alice") {
			t.Errorf("h2=%v: subject header %q", h2, got)
		}
		if _, err := get(f.httpsClient(t, gh.Addr(), h2), "https://a.test/"); err == nil {
			t.Errorf("h2=%v: require let a client without certificate through", h2)
		}
		s, err = get(f.httpsClient(t, gh.Port("OPTIONAL"), h2), "https://a.test/")
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Header.Values("X-Client-Subject"); len(got) != 0 {
			t.Errorf("h2=%v: no certificate, yet subject header %q", h2, got)
		}
	}
	s, err := get(newClient(t), "http://"+gh.Port("PLAIN")+"/")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Header.Values("X-Client-Subject"); len(got) != 0 {
		t.Errorf("plaintext listener forwarded a forged subject %q", got)
	}
	out, err := exec.Command("curl", "-sS", "--cacert", f.caFile, "--resolve", "a.test:"+port(gh.Addr())+":127.0.0.1",
		"https://a.test:"+port(gh.Addr())+"/").CombinedOutput()
	if err == nil {
		t.Errorf("curl without a client certificate got through: %s", out)
	}
}

// https_redirect sends plain HTTP to HTTPS (not ACME challenges); hsts is
// sent on HTTPS responses only.
func TestHTTPSRedirectAndHSTS(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    tls: {certificates: [%s]}
  - addr: {{PLAIN}}
sites:
  - hosts: [a.test]
    https_redirect: true
    hsts: {max_age: 8760h, include_subdomains: true, preload: true}
    routes: [{respond: {body: "secure\n"}}]
  - hosts: [plain.test]
    routes: [{respond: {body: "plain\n"}}]
`, f.cert(t, "a", "a.test")))
	waitListening(t, gh.Port("PLAIN"))
	c := newClient(t)
	resp, _ := do(t, c, "POST", "http://"+gh.Port("PLAIN")+"/p/a?x=1&y", "a.test", strings.NewReader("body"))
	if want := "https://a.test:" + port(gh.Addr()) + "/p/a?x=1&y"; resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Errorf("redirect: %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS on plain HTTP")
	}
	resp, body := do(t, c, "GET", "http://"+gh.Port("PLAIN")+"/.well-known/acme-challenge/token", "a.test", nil)
	if resp.StatusCode != 200 || string(body) != "secure\n" {
		t.Errorf("ACME challenge path redirected: %d %q", resp.StatusCode, body)
	}
	resp, body = do(t, c, "GET", "http://"+gh.Port("PLAIN")+"/", "plain.test", nil)
	if resp.StatusCode != 200 || string(body) != "plain\n" {
		t.Errorf("site without https_redirect: %d %q", resp.StatusCode, body)
	}
	for _, h2 := range []bool{false, true} {
		resp, body = do(t, f.httpsClient(t, gh.Addr(), h2), "GET", "https://a.test/", "", nil)
		if got := resp.Header.Values("Strict-Transport-Security"); resp.StatusCode != 200 || len(got) != 1 || got[0] != "max-age=31536000; includeSubDomains; preload" {
			t.Errorf("h2=%v: %d %q HSTS %q", h2, resp.StatusCode, body, got)
		}
	}
}

// A client that opens a connection and never finishes the handshake is cut
// at handshake_timeout.
func TestTLSHandshakeTimeout(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    tls: {certificates: [%s], handshake_timeout: 300ms}
sites: [{routes: [{respond: {}}]}]
`, f.cert(t, "a", "a.test")))
	c, br := dialRaw(t, gh.Addr())
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello, then silence
	_, err := br.ReadByte()
	if d := time.Since(start); err == nil || d > 3*time.Second || d < 250*time.Millisecond {
		t.Fatalf("connection ended after %v with %v; want a close at ~300ms", d, err)
	}
}
