package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Checks of an upstream's pool settings: targets and backup, transport and
// TLS, health checks, retries and connection limits.

// targets checks a list of targets (targets: or backup:).
func (v *validator) targets(path string, ts []Target) {
	for i, t := range ts {
		ip := indexPath(path, i)
		if t.URL == nil {
			v.errorf(fieldPath(ip, "url"), "url is required")
		} else if problem := checkTargetURL(t.URL); problem != "" {
			v.errorf(targetURLPath(v.pos, ip), "%s", problem)
		}
		if t.Weight < 1 || t.Weight > 1000 {
			v.errorf(fieldPath(ip, "weight"), "weight must be between 1 and 1000, got %d", t.Weight)
		}
	}
}

// targetURLPath is where a target's URL is written: its url field, or the
// list item itself for a target written as a plain string.
func targetURLPath(pos Positions, item string) string {
	if up := fieldPath(item, "url"); pos.Has(up) {
		return up
	}
	return item
}

// poolTarget is a target of targets: or backup: with its path.
type poolTarget struct {
	path string
	t    Target
}

// allTargets lists targets and backup, and whether every URL is valid:
// checks about the pool as a whole (does any target use https?) would only
// confuse when a URL is wrong.
func (v *validator) allTargets(p string, u *Upstream) (ts []poolTarget, allValid bool) {
	allValid = true
	for _, list := range []struct {
		name string
		ts   []Target
	}{{"targets", u.Targets}, {"backup", u.Backup}} {
		for i, t := range list.ts {
			ip := indexPath(fieldPath(p, list.name), i)
			if t.URL == nil || checkTargetURL(t.URL) != "" || v.isBad(ip) {
				allValid = false
				continue
			}
			ts = append(ts, poolTarget{targetURLPath(v.pos, ip), t})
		}
	}
	return ts, allValid
}

func transports() []string { return []string{"h1", "h2", "h2c"} }

// transport checks transport, tls and resolve_interval against the targets.
func (v *validator) transport(p string, u *Upstream) {
	trp := fieldPath(p, "transport")
	if !slices.Contains(transports(), u.Transport) {
		v.errorf(trp, "unknown transport %s%s: use %s", quote(u.Transport), suggest(u.Transport, transports()), joinOr(transports()))
	}
	ts, allValid := v.allTargets(p, u)
	https, discovery := false, false
	for _, pt := range ts {
		kind, scheme := pt.t.Discovery()
		https = https || scheme == "https"
		discovery = discovery || kind != DiscoveryPlain
		switch {
		case u.Transport == "h2" && scheme != "https":
			v.errorf(pt.path, "transport: h2 (line %d) is HTTP/2 over TLS and needs https targets; for HTTP/2 without TLS use transport: h2c", v.line(trp))
		case u.Transport == "h2c" && scheme == "https":
			v.errorf(pt.path, "transport: h2c (line %d) is HTTP/2 without TLS and needs http targets; for HTTP/2 over TLS use transport: h2", v.line(trp))
		}
	}
	if u.TLS != nil {
		tp := fieldPath(p, "tls")
		if allValid && !https {
			// TLS settings nobody uses are most likely an http:// that
			// should have been https://: sending plaintext where a client
			// certificate was meant is not something to do silently.
			v.errorf(tp, "tls is set but no target uses https: write https:// (or dns+https://, srv+https://) targets, or remove tls")
		}
		v.upstreamTLS(tp, u.TLS)
	}
	if rp := fieldPath(p, "resolve_interval"); v.pos.Has(rp) {
		switch {
		case u.ResolveInterval <= 0:
			v.errorf(rp, "resolve_interval must be positive")
		case allValid && !discovery:
			v.errorf(rp, "resolve_interval applies only to dns+http(s):// and srv+http(s):// targets")
		}
	}
}

// upstreamTLS checks the TLS settings and loads the files they name.
func (v *validator) upstreamTLS(p string, t *UpstreamTLS) {
	if sp := fieldPath(p, "server_name"); v.pos.Has(sp) && !isDNSName(t.ServerName) && !isIP(t.ServerName) {
		v.errorf(sp, "invalid server_name %s: write a host name or an IP address, without a port", quote(t.ServerName))
	}
	if cp := fieldPath(p, "ca_file"); v.pos.Has(cp) && !v.isBad(cp) {
		if pool, problem := loadCAFile(t.CAFile); problem != "" {
			v.errorf(cp, "%s", problem)
		} else {
			t.RootCAs = pool
		}
	}
	cp, kp := fieldPath(p, "cert_file"), fieldPath(p, "key_file")
	switch hasCert, hasKey := v.pos.Has(cp), v.pos.Has(kp); {
	case hasCert && !hasKey:
		v.errorf(kp, "key_file is required with cert_file: the client certificate's private key")
	case hasKey && !hasCert:
		v.errorf(cp, "cert_file is required with key_file: the client certificate")
	case hasCert && hasKey && !v.isBad(cp) && !v.isBad(kp):
		cert, problemAt, problem := loadKeyPair(t.CertFile, t.KeyFile)
		switch problemAt {
		case "cert_file":
			v.errorf(cp, "%s", problem)
		case "key_file":
			v.errorf(kp, "%s", problem)
		default:
			t.Certificate = cert
		}
	}
	if ip := fieldPath(p, "insecure_skip_verify"); t.InsecureSkipVerify {
		v.warnf(ip, "the targets' TLS certificates are not verified: anyone on the network path to them can impersonate them")
	}
}

// maxPEMFile bounds what is read of a certificate or key file: a CA bundle
// of every public root is a few hundred KB.
const maxPEMFile = 16 << 20

// readPEMFile reads a certificate or key file. It refuses what is not a
// regular file, since reading a FIFO or a device could block or never end.
func readPEMFile(field, name string) ([]byte, string) {
	if name == "" {
		return nil, field + " is empty: write the path of a PEM file"
	}
	fi, err := os.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Sprintf("cannot read %s %s: not a regular file", field, quote(name))
	}
	var data []byte
	if err == nil {
		var f *os.File
		if f, err = os.Open(name); err == nil {
			data, err = io.ReadAll(io.LimitReader(f, maxPEMFile+1))
			f.Close()
		}
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Sprintf("cannot read %s %s: %v", field, quote(name), err)
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Sprintf("%s %s is larger than 16MiB: is it the right file?", field, quote(name))
	}
	return data, ""
}

// loadCAFile reads PEM certificates to trust. Blocks of other types are
// skipped; at least one certificate is required.
func loadCAFile(name string) (*x509.CertPool, string) {
	data, problem := readPEMFile("ca_file", name)
	if problem != "" {
		return nil, problem
	}
	certs, problem := parseCertificates("ca_file", name, data)
	if problem != "" {
		return nil, problem
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, ""
}

// loadKeyPair reads a client certificate and its key, and says which field
// (cert_file or key_file) a problem belongs to.
func loadKeyPair(certFile, keyFile string) (cert *tls.Certificate, problemAt, problem string) {
	certPEM, problem := readPEMFile("cert_file", certFile)
	if problem != "" {
		return nil, "cert_file", problem
	}
	keyPEM, problem := readPEMFile("key_file", keyFile)
	if problem != "" {
		return nil, "key_file", problem
	}
	// Check the certificates first, to tell which file is wrong: the
	// messages of tls.X509KeyPair do not name their input.
	if _, problem := parseCertificates("cert_file", certFile, certPEM); problem != "" {
		return nil, "cert_file", problem
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "tls: ")
		if strings.Contains(msg, "does not match") {
			return nil, "key_file", fmt.Sprintf("key_file %s is not the key of the certificate in cert_file %s", quote(keyFile), quote(certFile))
		}
		return nil, "key_file", fmt.Sprintf("key_file %s: %s", quote(keyFile), msg)
	}
	return &pair, "", ""
}

// parseCertificates parses every CERTIFICATE block of a PEM file (other
// blocks are skipped); at least one is required. field and name are for the
// message.
func parseCertificates(field, name string, data []byte) ([]*x509.Certificate, string) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Sprintf("%s %s: certificate %d does not parse: %v", field, quote(name), len(certs)+1, trimX509(err))
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Sprintf("%s %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", field, quote(name))
	}
	return certs, ""
}

func trimX509(err error) string { return strings.TrimPrefix(err.Error(), "x509: ") }

func (v *validator) health(p string, h Health) {
	if a := h.Active; a != nil {
		v.activeHealth(fieldPath(p, "active"), a)
	}
	if ps := h.Passive; ps != nil {
		pp := fieldPath(p, "passive")
		if ps.MaxFails < 1 {
			v.errorf(fieldPath(pp, "max_fails"), "max_fails must be at least 1, got %d", ps.MaxFails)
		}
		positive(v, fieldPath(pp, "window"), "window", ps.Window)
		positive(v, fieldPath(pp, "eject"), "eject", ps.Eject)
	}
}

func positive(v *validator, path, name string, d time.Duration) bool {
	if d <= 0 {
		v.errorf(path, "%s must be positive", name)
		return false
	}
	return true
}

func (v *validator) activeHealth(p string, a *ActiveHealth) {
	if problem := checkCheckPath(a.Path); problem != "" {
		v.errorf(fieldPath(p, "path"), "%s", problem)
	}
	ip, tp := fieldPath(p, "interval"), fieldPath(p, "timeout")
	intervalOK := positive(v, ip, "interval", a.Interval) && !v.isBad(ip)
	switch {
	case v.pos.Has(tp):
		if positive(v, tp, "timeout", a.Timeout) && intervalOK && a.Timeout >= a.Interval {
			v.errorf(tp, "timeout (%s) must be shorter than interval (%s)", a.Timeout, a.Interval)
		}
	case intervalOK && (a.Timeout <= 0 || a.Timeout >= a.Interval):
		// The default timeout is half the interval (at most 1s); only an
		// interval of a nanosecond or so leaves no room for it.
		v.errorf(ip, "interval %s is too short to leave time for a check: timeout defaults to half the interval", a.Interval)
	}
	if a.Fall < 1 {
		v.errorf(fieldPath(p, "fall"), "fall must be at least 1, got %d", a.Fall)
	}
	if a.Rise < 1 {
		v.errorf(fieldPath(p, "rise"), "rise must be at least 1, got %d", a.Rise)
	}
	hp := fieldPath(p, "headers")
	v.headerMap(hp, a.Headers, false)
	for _, name := range slices.Sorted(maps.Keys(a.Headers)) {
		if strings.EqualFold(name, "Host") {
			v.errorf(keyPath(hp, name), "the Host header of the checks goes in host, not in headers")
		}
	}
	if hp := fieldPath(p, "host"); v.pos.Has(hp) {
		if problem := checkHostHeader(a.Host); problem != "" {
			v.errorf(hp, "%s", problem)
		}
	}
}

// checkCheckPath accepts an absolute path, with a query if wanted.
func checkCheckPath(path string) string {
	switch {
	case !strings.HasPrefix(path, "/"):
		return fmt.Sprintf("path must start with \"/\", got %s", quote(path))
	case strings.ContainsAny(path, " #") || strings.ContainsFunc(path, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Sprintf("invalid path %s: a path has no spaces, control characters or #", quote(path))
	}
	return ""
}

// checkHostHeader accepts what a Host header holds: a host name or an IP
// address (IPv6 in brackets), optionally with a port.
func checkHostHeader(h string) string {
	const forms = "write a host name or an address, optionally with a port, like example.com or example.com:8080"
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Sprintf("invalid port %s in host: write a number from 1 to 65535", quote(port))
		}
		host = hh
	} else if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		host = h[1 : len(h)-1]
	} else if strings.Contains(h, ":") {
		return fmt.Sprintf("invalid host %s: %s (an IPv6 address goes in brackets: [::1])", quote(h), forms)
	}
	if host == "" || !isIP(host) && !isDNSName(host) {
		return fmt.Sprintf("invalid host %s: %s", quote(h), forms)
	}
	return ""
}

// maxRetryAttempts bounds attempts: each retry is another request to the
// pool, and a pool in trouble is the one that gets them.
const maxRetryAttempts = 10

func (v *validator) retries(p string, r Retries) {
	if r.Attempts < 0 || r.Attempts > maxRetryAttempts {
		v.errorf(fieldPath(p, "attempts"), "attempts must be between 0 (no retries) and %d, got %d", maxRetryAttempts, r.Attempts)
	}
	op := fieldPath(p, "on")
	if len(r.On) == 0 && v.pos.Has(op) {
		v.errorf(op, "on is empty: list what to retry on, like [connect, 502, 503, 504] (attempts: 0 turns retries off)")
	}
	seen := map[RetryOn]bool{}
	for i, o := range r.On {
		ip := indexPath(op, i)
		if o.Kind == "" || v.isBad(ip) {
			continue
		}
		if seen[o] {
			v.errorf(ip, "%s is listed twice", o)
		}
		seen[o] = true
	}
	if r.MinRetriesPerSecond < 0 {
		v.errorf(fieldPath(p, "min_retries_per_second"), "min_retries_per_second must not be negative, got %d", r.MinRetriesPerSecond)
	}
}

func (v *validator) connLimits(p string, u *Upstream) {
	if u.MaxIdlePerTarget < 0 {
		v.errorf(fieldPath(p, "max_idle_per_target"), "max_idle_per_target must not be negative, got %d", u.MaxIdlePerTarget)
	}
	if u.MaxConnsPerTarget < 0 {
		v.errorf(fieldPath(p, "max_conns_per_target"), "max_conns_per_target must not be negative (0 means unlimited), got %d", u.MaxConnsPerTarget)
	}
	qp := fieldPath(p, "queue")
	if v.pos.Has(qp) && u.MaxConnsPerTarget == 0 {
		v.errorf(qp, "queue applies only with max_conns_per_target (requests wait for a target below it)")
	}
	if u.Queue.Size < 0 {
		v.errorf(fieldPath(qp, "size"), "size must not be negative (0: no waiting, 503 at once), got %d", u.Queue.Size)
	}
	if u.Queue.Timeout <= 0 {
		v.errorf(fieldPath(qp, "timeout"), "timeout must be positive, like 5s")
	}
}
