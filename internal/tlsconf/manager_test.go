package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/testcert"
)

// logBuf collects log lines for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// pair writes a leaf and returns its CertPair as the config would load it.
func pair(t *testing.T, dir, name string, leaf *testcert.Leaf, def bool) config.CertPair {
	t.Helper()
	cf, kf := leaf.Write(t, dir, name)
	c, _, problem := config.LoadServerCertificate(cf, kf, time.Now())
	if problem != "" {
		t.Fatal(problem)
	}
	return config.CertPair{CertFile: cf, KeyFile: kf, Default: def, Loaded: c}
}

func settings(pairs ...config.CertPair) Settings {
	return Settings{Protocols: []string{"h1", "h2"}, TLS: &config.ListenerTLS{
		Certificates: pairs, MinVersion: "1.2", WatchInterval: time.Hour, HandshakeTimeout: 5 * time.Second, OCSPStapling: true,
	}}
}

func newManager(t *testing.T, s Settings, timing Timing) (*Manager, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	m, err := New(s, slog.New(slog.NewJSONHandler(logs, nil)), timing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, logs
}

// serveTLS accepts TLS connections with m and echoes what they send.
func serveTLS(t *testing.T, m *Manager) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, m.Config())
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() == nil {
					io.Copy(tc, tc)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	return tls.DialWithDialer(d, "tcp", addr, cfg)
}

// servedFor returns the first name of the certificate served for sni.
func servedFor(t *testing.T, addr, sni string, roots *x509.CertPool) string {
	t.Helper()
	c, err := dial(t, addr, &tls.Config{ServerName: sni, RootCAs: roots, InsecureSkipVerify: sni == ""})
	if err != nil {
		t.Fatalf("handshake for %q: %v", sni, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestSNI(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "sni CA")
	m, _ := newManager(t, settings(
		pair(t, dir, "wild", ca.Issue(t, []string{"*.b.test", "b.test"}, testcert.Options{CommonName: "wild"}), false),
		pair(t, dir, "exact", ca.Issue(t, []string{"x.b.test"}, testcert.Options{CommonName: "exact"}), false),
		pair(t, dir, "def", ca.Issue(t, []string{"d.test"}, testcert.Options{CommonName: "def"}), true),
		pair(t, dir, "ip", ca.Issue(t, []string{"127.0.0.1"}, testcert.Options{CommonName: "ip"}), false),
	), Timing{})
	addr := serveTLS(t, m)
	for sni, want := range map[string]string{
		"x.b.test": "exact", // an exact name beats the wildcard
		"X.B.TEST": "exact",
		"y.b.test": "wild",
		"b.test":   "wild",
		"d.test":   "def",
	} {
		if got := servedFor(t, addr, sni, ca.Pool()); got != want {
			t.Errorf("SNI %s: served %s, want %s", sni, got, want)
		}
	}
	// The wildcard covers one label only; unknown names and clients
	// without SNI get the default.
	for _, sni := range []string{"z.y.b.test", "other.test", ""} {
		c, err := dial(t, addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "def" {
			t.Errorf("SNI %q: served %s, want the default", sni, cn)
		}
		c.Close()
	}
}

func TestDefaultIsFirstWithoutMark(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "CA")
	m, _ := newManager(t, settings(
		pair(t, dir, "one", ca.Issue(t, []string{"one.test"}, testcert.Options{}), false),
		pair(t, dir, "two", ca.Issue(t, []string{"two.test"}, testcert.Options{}), false),
	), Timing{})
	if got := servedFor(t, serveTLS(t, m), "", nil); got != "one.test" {
		t.Fatalf("default = %s", got)
	}
}

// A certificate file replaced on disk is served from the next handshake,
// while a connection opened before goes on working; a replacement that does
// not load leaves the running certificate in place.
func TestReloadWhenFilesChange(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "CA")
	s := settings(pair(t, dir, "site", ca.Issue(t, []string{"a.test"}, testcert.Options{CommonName: "first"}), false))
	s.TLS.WatchInterval = 20 * time.Millisecond
	m, logs := newManager(t, s, Timing{})
	addr := serveTLS(t, m)
	old, err := dial(t, addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	// A key that is not the certificate's: refused, logged, first kept.
	other := ca.Issue(t, []string{"a.test"}, testcert.Options{CommonName: "broken"})
	testcert.WriteFile(t, filepath.Join(dir, "site.key"), other.KeyPEM)
	waitFor(t, func() bool { return strings.Contains(logs.String(), "cannot be used") })
	if got := servedFor(t, addr, "a.test", ca.Pool()); got != "first" {
		t.Fatalf("after a bad change: %s", got)
	}
	if !strings.Contains(logs.String(), "is not the key of the certificate") {
		t.Fatalf("log does not say why:\n%s", logs)
	}

	next := ca.Issue(t, []string{"a.test"}, testcert.Options{CommonName: "second"})
	next.Write(t, dir, "site")
	waitFor(t, func() bool { return servedFor(t, addr, "a.test", ca.Pool()) == "second" })

	old.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := old.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(old, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("old connection broke: %q %v", buf, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPolicy(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "CA")
	s := settings(pair(t, dir, "a", ca.Issue(t, []string{"a.test"}, testcert.Options{}), false))
	m, _ := newManager(t, s, Timing{})
	addr := serveTLS(t, m)
	base := func() *tls.Config { return &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()} }

	c := base()
	c.MaxVersion = tls.VersionTLS11
	c.MinVersion = tls.VersionTLS10
	if conn, err := dial(t, addr, c); err == nil {
		conn.Close()
		t.Error("TLS 1.1 accepted")
	}
	c = base()
	c.MaxVersion = tls.VersionTLS12
	c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
	if conn, err := dial(t, addr, c); err == nil {
		conn.Close()
		t.Error("a CBC cipher suite was accepted")
	}
	c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
	conn, err := dial(t, addr, c)
	if err != nil {
		t.Fatalf("TLS 1.2 with an AEAD suite: %v", err)
	}
	if st := conn.ConnectionState(); st.Version != tls.VersionTLS12 || st.NegotiatedProtocol != "" {
		t.Errorf("state %+v", st)
	}
	conn.Close()
	c = base()
	c.NextProtos = []string{"http/1.1", "h2"}
	conn, err = dial(t, addr, c)
	if err != nil {
		t.Fatal(err)
	}
	if st := conn.ConnectionState(); st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "h2" {
		t.Errorf("version %x, ALPN %q: want TLS 1.3 and h2 (the server's preference)", st.Version, st.NegotiatedProtocol)
	}
	conn.Close()

	s.TLS.MinVersion = "1.3"
	if err := m.Update(s); err != nil {
		t.Fatal(err)
	}
	c = base()
	c.MaxVersion = tls.VersionTLS12
	if conn, err := dial(t, addr, c); err == nil {
		conn.Close()
		t.Error("TLS 1.2 accepted with min_version 1.3")
	}
}

// Sessions resume across a reload of the settings, and across two key
// rotations; after a third, the ticket's key is gone.
func TestSessionTickets(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "CA")
	s := settings(pair(t, dir, "a", ca.Issue(t, []string{"a.test"}, testcert.Options{}), false))
	m, _ := newManager(t, s, Timing{TicketRotation: time.Hour})
	addr := serveTLS(t, m)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cache := tls.NewLRUClientSessionCache(4)
		resumed := func() bool {
			c, err := dial(t, addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), ClientSessionCache: cache, MaxVersion: v})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// TLS 1.3 tickets arrive after the handshake: read to get them.
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			c.Read(make([]byte, 1))
			return c.ConnectionState().DidResume
		}
		resumed()
		if !resumed() {
			t.Fatalf("version %x: no resumption", v)
		}
		if err := m.Update(s); err != nil {
			t.Fatal(err)
		}
		m.rotateNow()
		m.rotateNow()
		if !resumed() {
			t.Fatalf("version %x: no resumption after a reload and two rotations", v)
		}
		for range keptTicketKeys {
			m.rotateNow()
		}
		if resumed() {
			t.Fatalf("version %x: resumed with a ticket whose key was rotated out", v)
		}
	}
}

func TestClientAuth(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "server CA")
	clients := testcert.NewCA(t, "client CA")
	stranger := testcert.NewCA(t, "other CA")
	s := settings(pair(t, dir, "a", ca.Issue(t, []string{"a.test"}, testcert.Options{}), false))
	s.TLS.ClientAuth = &config.ClientAuth{Mode: "require", ClientCAs: clients.Pool()}
	m, _ := newManager(t, s, Timing{})
	addr := serveTLS(t, m)
	good := clients.Issue(t, nil, testcert.Options{Client: true, CommonName: "alice"}).TLS(t)
	bad := stranger.Issue(t, nil, testcert.Options{Client: true, CommonName: "mallory"}).TLS(t)
	try := func(certs ...tls.Certificate) error {
		cfg := &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()}
		if len(certs) > 0 {
			// Sent whatever CAs the server names (Go's client would
			// otherwise keep a certificate of another CA to itself).
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
		}
		c, err := dial(t, addr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		// With TLS 1.3 the server's verdict on the client certificate
		// arrives after the client's handshake is done.
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 1))
		return err
	}
	if err := try(good); err != nil {
		t.Errorf("require, good certificate: %v", err)
	}
	if try() == nil || try(bad) == nil {
		t.Error("require: accepted without a good certificate")
	}
	s.TLS.ClientAuth.Mode = "verify_if_given"
	if err := m.Update(s); err != nil {
		t.Fatal(err)
	}
	if try() != nil || try(good) != nil {
		t.Error("verify_if_given refused a client without certificate or with a good one")
	}
	if try(bad) == nil {
		t.Error("verify_if_given accepted a certificate of an unknown CA")
	}
}

// ocspResponder answers OCSP requests for ca's certificates: good, or the
// status set; it counts requests.
type ocspResponder struct {
	ca     *testcert.CA
	mu     sync.Mutex
	status int
	hits   int
}

func (o *ocspResponder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, "bad request", 400)
		return
	}
	o.mu.Lock()
	o.hits++
	status := o.status
	o.mu.Unlock()
	now := time.Now().Truncate(time.Second)
	resp, err := ocsp.CreateResponse(o.ca.Cert, o.ca.Cert, ocsp.Response{
		Status: status, SerialNumber: req.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
		RevokedAt: now.Add(-time.Minute),
	}, o.ca.Key)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
}

func TestOCSPStapling(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "CA")
	responder := &ocspResponder{ca: ca, status: ocsp.Good}
	srv := httptest.NewServer(responder)
	defer srv.Close()
	leaf := ca.Issue(t, []string{"a.test"}, testcert.Options{OCSPServer: srv.URL})
	m, _ := newManager(t, settings(pair(t, dir, "a", leaf, false)), Timing{OCSPRetryMin: 50 * time.Millisecond})
	addr := serveTLS(t, m)
	var staple []byte
	waitFor(t, func() bool {
		c, err := dial(t, addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		staple = c.ConnectionState().OCSPResponse
		return staple != nil
	})
	r, err := ocsp.ParseResponseForCert(staple, leaf.Cert, ca.Cert)
	if err != nil || r.Status != ocsp.Good {
		t.Fatalf("staple: %v %+v", err, r)
	}
	// A reload of unchanged settings keeps the staple without waiting.
	if err := m.Update(settings(pair(t, dir, "a", leaf, false))); err != nil {
		t.Fatal(err)
	}
	c, err := dial(t, addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectionState().OCSPResponse == nil {
		t.Error("staple lost on reload")
	}
	c.Close()
}

// A revoked answer is not stapled, and an unreachable responder only
// costs a log line: handshakes go on without a staple, at once.
func TestOCSPNotStapled(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "CA")
	responder := &ocspResponder{ca: ca, status: ocsp.Revoked}
	srv := httptest.NewServer(responder)
	defer srv.Close()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	revoked := ca.Issue(t, []string{"r.test"}, testcert.Options{OCSPServer: srv.URL})
	unreachable := ca.Issue(t, []string{"u.test"}, testcert.Options{OCSPServer: deadURL})
	m, logs := newManager(t, settings(pair(t, dir, "r", revoked, false), pair(t, dir, "u", unreachable, false)),
		Timing{OCSPRetryMin: 50 * time.Millisecond, OCSPTimeout: time.Second})
	addr := serveTLS(t, m)
	waitFor(t, func() bool {
		l := logs.String()
		return strings.Contains(l, "REVOKED") && strings.Contains(l, "connection refused")
	})
	for _, name := range []string{"r.test", "u.test"} {
		start := time.Now()
		c, err := dial(t, addr, &tls.Config{ServerName: name, RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		if c.ConnectionState().OCSPResponse != nil {
			t.Errorf("%s: stapled", name)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: handshake took %v", name, d)
		}
		c.Close()
	}
}
