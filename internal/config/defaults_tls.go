package config

import "time"

// Defaults of the TLS settings of listeners and sites.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultWatchInterval    = 10 * time.Second
	DefaultMinVersion       = "1.2"
	DefaultClientAuthMode   = "require"
	DefaultACMECA           = "https://acme-v02.api.letsencrypt.org/directory"
	DefaultACMERenewBefore  = 1.0 / 3
	DefaultHSTSMaxAge       = 365 * 24 * time.Hour
)

func applyTLSDefaults(c *Config, pos Positions) {
	def := func(path string, set func()) {
		if !pos.Has(path) {
			set()
		}
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		lp := indexPath("listeners", i)
		t := l.TLS
		if t == nil {
			continue // plaintext: HTTP/1.1, and cleartext HTTP/2 with h2c
		}
		def(fieldPath(lp, "protocols"), func() { l.Protocols = []string{"h1", "h2"} })
		tp := fieldPath(lp, "tls")
		def(fieldPath(tp, "min_version"), func() { t.MinVersion = DefaultMinVersion })
		def(fieldPath(tp, "handshake_timeout"), func() { t.HandshakeTimeout = DefaultHandshakeTimeout })
		def(fieldPath(tp, "watch_interval"), func() { t.WatchInterval = DefaultWatchInterval })
		def(fieldPath(tp, "ocsp_stapling"), func() { t.OCSPStapling = true })
		if ca := t.ClientAuth; ca != nil {
			def(fieldPath(tp, "client_auth.mode"), func() { ca.Mode = DefaultClientAuthMode })
		}
		if a := t.ACME; a != nil {
			ap := fieldPath(tp, "acme")
			def(fieldPath(ap, "ca"), func() { a.CA = DefaultACMECA })
			def(fieldPath(ap, "challenges"), func() { a.Challenges = []string{"http-01", "tls-alpn-01"} })
			def(fieldPath(ap, "renew_before"), func() { a.RenewBefore = DefaultACMERenewBefore })
			def(fieldPath(ap, "domains"), func() { a.Domains = siteDomains(c) })
		}
	}
	for si := range c.Sites {
		if h := c.Sites[si].HSTS; h != nil {
			def(fieldPath(indexPath("sites", si), "hsts.max_age"), func() { h.MaxAge = DefaultHSTSMaxAge })
		}
	}
}

// siteDomains are the exact DNS names of the sites, which ACME certifies
// when tls.acme.domains is left out.
func siteDomains(c *Config) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range c.Sites {
		for _, h := range s.Hosts {
			h = normalizeHost(h)
			if h == "*" || h == "" || h[0] == '*' || isIP(h) || !isDNSName(h) || seen[h] {
				continue
			}
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}
