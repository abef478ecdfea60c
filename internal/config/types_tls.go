package config

import (
	"crypto/tls"
	"crypto/x509"
	"time"
)

// ListenerTLS terminates TLS on a listener. Certificate files are read and
// checked when the configuration is loaded (the loaded pairs are kept in
// Certificates[i].Loaded); the running server also re-reads them when they
// change on disk.
type ListenerTLS struct {
	Pos          Pos         `yaml:"-"`
	Certificates []CertPair  `yaml:"certificates"` // chosen by SNI; at least one unless acme is set
	MinVersion   string      `yaml:"min_version"`  // "1.2" (default) | "1.3"
	ClientAuth   *ClientAuth `yaml:"client_auth"`
	// HandshakeTimeout bounds the TLS handshake of each connection.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"` // default 10s
	// WatchInterval is how often the certificate files are checked for changes.
	WatchInterval time.Duration `yaml:"watch_interval"` // default 10s
	OCSPStapling  bool          `yaml:"ocsp_stapling"`  // default true
	ACME          *ACME         `yaml:"acme"`
}

// CertPair is one certificate chain and its key.
type CertPair struct {
	Pos      Pos    `yaml:"-"`
	CertFile string `yaml:"cert_file"` // PEM: the certificate, then its intermediates
	KeyFile  string `yaml:"key_file"`  // PEM private key
	// Default makes this the certificate of clients that send no (or an unknown) server name.
	Default bool `yaml:"default"`

	Loaded *tls.Certificate `yaml:"-"` // read at load; Leaf is set
}

// ClientAuth asks clients for certificates (mutual TLS).
type ClientAuth struct {
	CAFile string `yaml:"ca_file"` // PEM CA certificates client certificates must chain to
	Mode   string `yaml:"mode"`    // require (default) | verify_if_given
	// SubjectHeader names the request header that carries the verified
	// client certificate's subject to the backends; "" sends none. A copy
	// sent by the client is always removed.
	SubjectHeader string `yaml:"subject_header"`

	ClientCAs *x509.CertPool `yaml:"-"` // from CAFile
}

// ACME obtains and renews certificates automatically.
type ACME struct {
	Pos     Pos    `yaml:"-"`
	Email   string `yaml:"email"`
	CA      string `yaml:"ca"`      // directory URL; default Let's Encrypt production
	CARoot  string `yaml:"ca_root"` // PEM file of roots to trust for the CA's HTTPS (test CAs)
	Storage string `yaml:"storage"` // directory for accounts, keys and certificates
	// Domains are obtained at start and kept renewed.
	Domains    []string `yaml:"domains"`
	Challenges []string `yaml:"challenges"` // default [http-01, tls-alpn-01]
	// RenewBefore renews a certificate when less than this share of its lifetime is left.
	RenewBefore Ratio `yaml:"renew_before"` // default 33%
}

// HSTS is the Strict-Transport-Security header of a site's HTTPS responses.
type HSTS struct {
	MaxAge            time.Duration `yaml:"max_age"` // default 365 days (8760h)
	IncludeSubdomains bool          `yaml:"include_subdomains"`
	Preload           bool          `yaml:"preload"`
}

// TLS min_version values and their constants.
var tlsVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// TLSVersion is the crypto/tls constant of a min_version value (0 if unknown).
func TLSVersion(v string) uint16 { return tlsVersions[v] }
