package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/caddyserver/certmagic"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
)

// acmeTLSALPN is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737).
const acmeTLSALPN = "acme-tls/1"

var errNoCertificate = errors.New("no certificate for this server name")

// isACMEChallenge tells a CA's TLS-ALPN-01 validation handshake.
func isACMEChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLSALPN
}

// acmeSource obtains and renews certificates with certmagic.
type acmeSource struct {
	settings config.ACME
	ports    [2]int // http-01, tls-alpn-01
	cache    *certmagic.Cache
	cfg      *certmagic.Config
	issuer   *certmagic.ACMEIssuer
	domains  map[string]bool
	tlsALPN  bool
	stop     context.CancelFunc
}

// updateACME keeps the running ACME source when its settings did not
// change, and starts a new one (stopping the old) when they did.
func (m *Manager) updateACME(s Settings) (*acmeSource, error) {
	old := m.acme.Load()
	a := s.TLS.ACME
	if a == nil {
		if old != nil {
			old.close()
		}
		return nil, nil
	}
	ports := [2]int{s.HTTPChallengePort, s.TLSALPNPort}
	if old != nil && reflect.DeepEqual(old.settings, *a) && old.ports == ports {
		return old, nil
	}
	src, err := m.startACME(*a, ports)
	if err != nil {
		return nil, err
	}
	if old != nil {
		old.close()
	}
	return src, nil
}

func (m *Manager) startACME(a config.ACME, ports [2]int) (*acmeSource, error) {
	src := &acmeSource{settings: a, ports: ports, domains: map[string]bool{}}
	for _, d := range a.Domains {
		src.domains[strings.ToLower(d)] = true
	}
	logger := zapTo(m.log.With("acme", a.CA))
	var cfg *certmagic.Config
	src.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		RenewCheckInterval: m.timing.ACMERenewCheck,
		Logger:             logger,
	})
	cfg = certmagic.New(src.cache, certmagic.Config{
		Storage:            &certmagic.FileStorage{Path: a.Storage},
		RenewalWindowRatio: float64(a.RenewBefore),
		Logger:             logger,
	})
	var roots *x509.CertPool
	if a.CARoot != "" {
		pem, err := os.ReadFile(a.CARoot)
		if err != nil {
			src.cache.Stop()
			return nil, fmt.Errorf("acme.ca_root: %w", err)
		}
		roots = x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
	}
	src.tlsALPN = slices.Contains(a.Challenges, "tls-alpn-01")
	// The challenge ports are gatehouse's own listeners: certmagic then
	// finds them taken and leaves the answering to gatehouse instead of
	// opening servers of its own.
	src.issuer = certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:                      a.CA,
		Email:                   a.Email,
		Agreed:                  true,
		TrustedRoots:            roots,
		DisableHTTPChallenge:    !slices.Contains(a.Challenges, "http-01"),
		DisableTLSALPNChallenge: !src.tlsALPN,
		AltHTTPPort:             ports[0],
		AltTLSALPNPort:          ports[1],
		Logger:                  logger,
	})
	cfg.Issuers = []certmagic.Issuer{src.issuer}
	src.cfg = cfg
	ctx, cancel := context.WithCancel(m.ctx)
	src.stop = cancel
	if err := cfg.ManageAsync(ctx, a.Domains); err != nil {
		cancel()
		src.cache.Stop()
		return nil, fmt.Errorf("acme: %w", err)
	}
	return src, nil
}

func (a *acmeSource) manages(name string) bool {
	return a.domains[strings.ToLower(strings.TrimSuffix(name, "."))]
}

func (a *acmeSource) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.cfg.GetCertificate(hello)
}

func (a *acmeSource) close() {
	a.stop()
	a.cache.Stop()
}

// HandleHTTPChallenge answers an ACME HTTP-01 validation request for a
// certificate this Manager is obtaining; it reports whether it did.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	a := m.acme.Load()
	return a != nil && a.issuer.HandleHTTPChallenge(w, r)
}

// HasACME reports whether this Manager obtains certificates by ACME.
func (m *Manager) HasACME() bool { return m.acme.Load() != nil }

// CertificateFor returns the certificate a client naming name would get
// (for tests and the admin API); nil when there is none yet.
func (m *Manager) CertificateFor(name string) *tls.Certificate {
	c, err := m.getCertificate(&tls.ClientHelloInfo{ServerName: name})
	if err != nil {
		return nil
	}
	return c
}
