package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"
)

func protocolNames() []string   { return []string{"h1", "h2", "h3"} }
func tlsVersionNames() []string { return []string{"1.2", "1.3"} }
func clientAuthModes() []string { return []string{"require", "verify_if_given"} }
func acmeChallenges() []string  { return []string{"http-01", "tls-alpn-01"} }

// listenersTLS checks protocols and tls of every listener, loading the
// certificate files they name.
func (v *validator) listenersTLS() {
	for i := range v.cfg.Listeners {
		l := &v.cfg.Listeners[i]
		lp := indexPath("listeners", i)
		v.protocols(lp, l)
		if l.TLS != nil {
			v.listenerTLS(fieldPath(lp, "tls"), l.TLS)
		}
	}
	for si, s := range v.cfg.Sites {
		if h := s.HSTS; h != nil {
			hp := fieldPath(indexPath("sites", si), "hsts")
			switch {
			case h.MaxAge < 0 || h.MaxAge%time.Second != 0:
				v.errorf(fieldPath(hp, "max_age"), "max_age must be a whole number of seconds, 0 or more (0 tells browsers to forget the policy)")
			case h.Preload && (h.MaxAge < DefaultHSTSMaxAge || !h.IncludeSubdomains):
				v.errorf(fieldPath(hp, "preload"), "preload lists require max_age of at least 8760h (one year) and include_subdomains: true")
			}
		}
	}
}

func (v *validator) protocols(lp string, l *Listener) {
	pp := fieldPath(lp, "protocols")
	if v.pos.Has(pp) && len(l.Protocols) == 0 {
		v.errorf(pp, "protocols must not be empty: leave it out for the default ([h1, h2] with tls, [h1] without)")
		return
	}
	seen := map[string]bool{}
	for j, p := range l.Protocols {
		ep := indexPath(pp, j)
		switch {
		case !slices.Contains(protocolNames(), p):
			v.errorf(ep, "unknown protocol %s%s: use %s", quote(p), suggest(p, protocolNames()), joinOr(protocolNames()))
		case seen[p]:
			v.errorf(ep, "protocol %s is listed twice", p)
		case p != "h1" && l.TLS == nil:
			v.errorf(ep, "%s needs tls on this listener (for cleartext HTTP/2 use h2c: true)", p)
		}
		seen[p] = true
	}
	if l.TLS != nil && len(l.Protocols) > 0 && !seen["h1"] && !seen["h2"] {
		v.errorf(pp, "a TLS listener needs h1 or h2 over TCP (h3 is found through their Alt-Svc header)")
	}
}

func (v *validator) listenerTLS(p string, t *ListenerTLS) {
	cp := fieldPath(p, "certificates")
	if len(t.Certificates) == 0 && t.ACME == nil {
		v.errorf(cp, "a TLS listener needs certificates ([{cert_file: ..., key_file: ...}]) or acme")
	}
	defaults := 0
	for j := range t.Certificates {
		c := &t.Certificates[j]
		ep := indexPath(cp, j)
		if c.Default {
			if defaults++; defaults == 2 {
				v.errorf(fieldPath(ep, "default"), "only one certificate may be the default")
			}
		}
		cfp, kfp := fieldPath(ep, "cert_file"), fieldPath(ep, "key_file")
		switch {
		case !v.pos.Has(cfp):
			v.errorf(cfp, "cert_file is required: the PEM certificate chain")
		case !v.pos.Has(kfp):
			v.errorf(kfp, "key_file is required: the certificate's PEM private key")
		case v.isBad(cfp) || v.isBad(kfp):
		default:
			cert, at, problem := LoadServerCertificate(c.CertFile, c.KeyFile, time.Now())
			switch at {
			case "cert_file":
				v.errorf(cfp, "%s", problem)
			case "key_file":
				v.errorf(kfp, "%s", problem)
			default:
				c.Loaded = cert
			}
		}
	}
	if vp := fieldPath(p, "min_version"); !slices.Contains(tlsVersionNames(), t.MinVersion) {
		v.errorf(vp, "unknown min_version %s: use %s", quote(t.MinVersion), joinOr(quoteAll(tlsVersionNames())))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"handshake_timeout", t.HandshakeTimeout}, {"watch_interval", t.WatchInterval}} {
		if f.d <= 0 {
			v.errorf(fieldPath(p, f.name), "%s must be positive", f.name)
		}
	}
	if ca := t.ClientAuth; ca != nil {
		v.clientAuth(fieldPath(p, "client_auth"), ca)
	}
	if a := t.ACME; a != nil {
		v.acme(fieldPath(p, "acme"), a)
		if slices.Contains(a.Challenges, "http-01") && !v.hasPlainListener() {
			v.errorf(fieldPath(p, "acme.challenges"), "http-01 is answered on a listener without tls (port 80 for public CAs): add one, or use challenges: [tls-alpn-01]")
		}
	}
}

func (v *validator) hasPlainListener() bool {
	for _, l := range v.cfg.Listeners {
		if l.TLS == nil {
			return true
		}
	}
	return false
}

func quoteAll(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = quote(s)
	}
	return out
}

func (v *validator) clientAuth(p string, ca *ClientAuth) {
	if fp := fieldPath(p, "ca_file"); !v.pos.Has(fp) {
		v.errorf(fp, "ca_file is required: the PEM certificates of the CAs that sign client certificates")
	} else if !v.isBad(fp) {
		if pool, problem := loadCAFile(ca.CAFile); problem != "" {
			v.errorf(fp, "%s", problem)
		} else {
			ca.ClientCAs = pool
		}
	}
	if !slices.Contains(clientAuthModes(), ca.Mode) {
		v.errorf(fieldPath(p, "mode"), "unknown mode %s%s: use %s", quote(ca.Mode), suggest(ca.Mode, clientAuthModes()), joinOr(clientAuthModes()))
	}
	if hp := fieldPath(p, "subject_header"); v.pos.Has(hp) && !isToken(ca.SubjectHeader) {
		v.errorf(hp, "invalid subject_header %s: write a header name such as X-Client-Subject", quote(ca.SubjectHeader))
	}
}

func (v *validator) acme(p string, a *ACME) {
	if sp := fieldPath(p, "storage"); strings.TrimSpace(a.Storage) == "" {
		v.errorf(sp, "storage is required: the directory where the ACME account, keys and certificates are kept")
	}
	if cp := fieldPath(p, "ca"); !strings.HasPrefix(a.CA, "https://") {
		v.errorf(cp, "ca must be the https:// URL of the ACME directory, got %s", quote(a.CA))
	}
	if rp := fieldPath(p, "ca_root"); v.pos.Has(rp) && !v.isBad(rp) {
		if _, problem := loadCAFile(a.CARoot); problem != "" {
			v.errorf(rp, "%s", strings.Replace(problem, "ca_file", "ca_root", 1))
		}
	}
	dp := fieldPath(p, "domains")
	if len(a.Domains) == 0 {
		v.errorf(dp, "no domains: list them (domains: [example.com]) or give the sites exact host names")
	}
	for j, d := range a.Domains {
		switch {
		case strings.HasPrefix(d, "*."):
			v.errorf(indexPath(dp, j), "wildcard %s needs the DNS-01 challenge, which gatehouse does not do: list the names", quote(d))
		case isIP(d) || !isDNSName(d) || !strings.Contains(d, "."):
			v.errorf(indexPath(dp, j), "invalid domain %s: write a public DNS name such as example.com", quote(d))
		}
	}
	chp := fieldPath(p, "challenges")
	if len(a.Challenges) == 0 {
		v.errorf(chp, "challenges must not be empty: use http-01, tls-alpn-01 or both")
	}
	for j, c := range a.Challenges {
		if !slices.Contains(acmeChallenges(), c) {
			v.errorf(indexPath(chp, j), "unknown challenge %s%s: use %s", quote(c), suggest(c, acmeChallenges()), joinOr(acmeChallenges()))
		}
	}
	if a.RenewBefore <= 0 || a.RenewBefore >= 1 {
		v.errorf(fieldPath(p, "renew_before"), "renew_before must be between 0%% and 100%%, not included")
	}
}

// LoadServerCertificate reads a certificate chain and its key and checks
// that they belong together and that the certificate is valid at now. On a
// problem it says which file ("cert_file" or "key_file") is at fault and
// why, naming the file.
func LoadServerCertificate(certFile, keyFile string, now time.Time) (cert *tls.Certificate, problemAt, problem string) {
	cert, problemAt, problem = loadKeyPair(certFile, keyFile)
	if problem != "" {
		return nil, problemAt, problem
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, "cert_file", fmt.Sprintf("cert_file %s: %v", quote(certFile), trimX509(err))
		}
		cert.Leaf = leaf
	}
	const day = "2006-01-02 15:04:05 UTC"
	switch {
	case now.After(leaf.NotAfter):
		return nil, "cert_file", fmt.Sprintf("the certificate in cert_file %s expired on %s: renew it", quote(certFile), leaf.NotAfter.UTC().Format(day))
	case now.Before(leaf.NotBefore):
		return nil, "cert_file", fmt.Sprintf("the certificate in cert_file %s is not valid before %s (is the clock right?)", quote(certFile), leaf.NotBefore.UTC().Format(day))
	}
	return cert, "", ""
}
