// Package tlsconf terminates TLS for one listener: certificates chosen by
// SNI from files (re-read when they change), the TLS policy (versions,
// cipher suites, ALPN), rotated session ticket keys, OCSP stapling, client
// certificates and certificates obtained by ACME. A Manager lives as long as
// its listener; a reload hands it new settings and the handshakes that start
// afterwards use them, while established connections go on undisturbed.
package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
)

// Settings are what a Manager serves.
type Settings struct {
	TLS       *config.ListenerTLS
	Protocols []string // h1, h2 (h3 is served by QUIC with the same certificates)
	// The ports ACME challenges arrive on: a plaintext listener of
	// gatehouse's for HTTP-01, this listener's for TLS-ALPN-01.
	HTTPChallengePort, TLSALPNPort int
}

// tls12Suites are the TLS 1.2 cipher suites offered: ECDHE key exchange
// (forward secrecy) with an AEAD cipher only. TLS 1.3 suites are all AEAD
// and not configurable in crypto/tls.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Timing is how often the background work runs; tests shorten it.
type Timing struct {
	TicketRotation time.Duration // default 12h
	OCSPTimeout    time.Duration // one OCSP request; default 10s
	OCSPRetryMin   time.Duration // first retry after a failed fetch; default 1m
	OCSPRetryMax   time.Duration // retries back off up to this; default 1h
	ACMERenewCheck time.Duration // how often ACME certificates are checked for renewal; default 10m
}

func (t *Timing) defaults() {
	if t.TicketRotation <= 0 {
		t.TicketRotation = 12 * time.Hour
	}
	if t.OCSPTimeout <= 0 {
		t.OCSPTimeout = 10 * time.Second
	}
	if t.OCSPRetryMin <= 0 {
		t.OCSPRetryMin = time.Minute
	}
	if t.ACMERenewCheck <= 0 {
		t.ACMERenewCheck = 10 * time.Minute
	}
	if t.OCSPRetryMax <= 0 {
		t.OCSPRetryMax = time.Hour
	}
}

// Manager serves the TLS side of one listener.
type Manager struct {
	log    *slog.Logger
	timing Timing
	http   *http.Client // for OCSP responders
	base   *tls.Config  // given to tls.Server; hands out cur
	cur    atomic.Pointer[tls.Config]
	certs  atomic.Pointer[certSet]
	acme   atomic.Pointer[acmeSource]

	mu       sync.Mutex // serialises Update, file checks and Close
	settings Settings
	genStop  context.CancelFunc // stops the current settings' watcher
	ctx      context.Context    // ends at Close
	stop     context.CancelFunc
	wg       sync.WaitGroup
	tickets  ticketKeys
}

// New starts a Manager for s.
func New(s Settings, log *slog.Logger, timing Timing) (*Manager, error) {
	timing.defaults()
	m := &Manager{log: log, timing: timing, http: &http.Client{Timeout: timing.OCSPTimeout}}
	m.ctx, m.stop = context.WithCancel(context.Background())
	m.base = &tls.Config{GetConfigForClient: m.configForClient}
	m.tickets.rotate()
	m.base.SetSessionTicketKeys(m.tickets.keys)
	m.wg.Add(1)
	go m.rotateTickets()
	if err := m.Update(s); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Config is the tls.Config to serve connections with.
func (m *Manager) Config() *tls.Config { return m.base }

// Update switches to new settings: the next handshakes use them.
func (m *Manager) Update(s Settings) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	acme, err := m.updateACME(s)
	if err != nil {
		return err
	}
	old := m.certs.Load()
	entries := make([]*entry, 0, len(s.TLS.Certificates))
	for _, p := range s.TLS.Certificates {
		e := &entry{pair: p}
		e.stamp, _ = stampOf(p)
		cert := *p.Loaded
		if o := old.find(cert.Certificate[0]); o != nil {
			cert.OCSPStaple = o.cert.Load().OCSPStaple // keep the staple we have
		}
		e.cert.Store(&cert)
		entries = append(entries, e)
	}
	if old != nil {
		for _, e := range old.entries {
			e.stopStapling()
		}
	}
	set := newCertSet(entries)
	m.certs.Store(set)
	m.acme.Store(acme)
	m.cur.Store(m.build(s, acme))
	m.settings = s
	if m.genStop != nil {
		m.genStop()
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.genStop = cancel
	for _, e := range entries {
		m.startStapling(e, s.TLS.OCSPStapling)
	}
	m.wg.Add(1)
	go m.watch(ctx, s.TLS.WatchInterval)
	return nil
}

// Close stops the background work (file watch, OCSP, ticket rotation, ACME).
func (m *Manager) Close() {
	m.mu.Lock()
	m.stop()
	if a := m.acme.Swap(nil); a != nil {
		a.close()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *Manager) build(s Settings, acme *acmeSource) *tls.Config {
	c := &tls.Config{
		MinVersion:     config.TLSVersion(s.TLS.MinVersion),
		CipherSuites:   tls12Suites,
		GetCertificate: m.getCertificate,
	}
	if slices.Contains(s.Protocols, "h2") {
		c.NextProtos = append(c.NextProtos, "h2")
	}
	if slices.Contains(s.Protocols, "h1") {
		c.NextProtos = append(c.NextProtos, "http/1.1")
	}
	if acme != nil && acme.tlsALPN {
		c.NextProtos = append(c.NextProtos, acmeTLSALPN)
	}
	// Set on the config handed out, not only on base: HTTP/3 (quic-go)
	// clones base once, and would otherwise keep its first keys forever.
	c.SetSessionTicketKeys(m.tickets.keys)
	if ca := s.TLS.ClientAuth; ca != nil {
		c.ClientCAs = ca.ClientCAs
		c.ClientAuth = tls.RequireAndVerifyClientCert
		if ca.Mode == "verify_if_given" {
			c.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return c
}

func (m *Manager) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	c := m.cur.Load()
	if isACMEChallenge(hello) && c.ClientAuth != tls.NoClientCert {
		// The CA validating a TLS-ALPN-01 challenge has no client certificate.
		c = c.Clone()
		c.ClientAuth = tls.NoClientCert
	}
	return c, nil
}

// getCertificate picks the certificate for the client's server name: a
// file certificate naming it, else one ACME manages, else the default.
func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	acme := m.acme.Load()
	if acme != nil && isACMEChallenge(hello) {
		return acme.getCertificate(hello)
	}
	set := m.certs.Load()
	if e := set.match(hello.ServerName); e != nil {
		return e.cert.Load(), nil
	}
	if acme != nil && (acme.manages(hello.ServerName) || set.def == nil) {
		return acme.getCertificate(hello)
	}
	if c := set.get(""); c != nil {
		return c, nil
	}
	return nil, errNoCertificate
}

// find returns the entry serving the certificate whose DER is leaf.
func (s *certSet) find(leaf []byte) *entry {
	if s == nil {
		return nil
	}
	for _, e := range s.entries {
		if bytes.Equal(e.cert.Load().Certificate[0], leaf) {
			return e
		}
	}
	return nil
}

// rotateNow makes a new ticket key and sets the keys on the configs in use.
func (m *Manager) rotateNow() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tickets.rotate()
	m.base.SetSessionTicketKeys(m.tickets.keys)
	if c := m.cur.Load(); c != nil {
		c.SetSessionTicketKeys(m.tickets.keys)
	}
}

func (m *Manager) rotateTickets() {
	defer m.wg.Done()
	t := time.NewTicker(m.timing.TicketRotation)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.rotateNow()
		}
	}
}
