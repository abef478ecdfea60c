package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/testcert"
)

// tlsFiles writes the certificate files the TLS config tests point at.
func tlsFiles(t *testing.T) (dir string) {
	dir = t.TempDir()
	ca := testcert.NewCA(t, "config test CA")
	good := ca.Issue(t, []string{"a.test", "*.b.test"}, testcert.Options{})
	good.Write(t, dir, "good")
	other := ca.Issue(t, []string{"c.test"}, testcert.Options{})
	testcert.WriteFile(t, filepath.Join(dir, "other.key"), other.KeyPEM)
	ca.Issue(t, []string{"old.test"}, testcert.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}).Write(t, dir, "expired")
	ca.Issue(t, []string{"new.test"}, testcert.Options{NotBefore: time.Now().Add(24 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour)}).Write(t, dir, "future")
	testcert.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	testcert.WriteFile(t, filepath.Join(dir, "garbage.pem"), []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"))
	testcert.WriteFile(t, filepath.Join(dir, "empty.pem"), []byte("nothing here\n"))
	return dir
}

func TestTLSListener(t *testing.T) {
	dir := tlsFiles(t)
	text := strings.ReplaceAll(`listeners:
  - addr: 127.0.0.1:8443
    protocols: [h1, h2, h3]
    tls:
      certificates:
        - {cert_file: DIR/good.pem, key_file: DIR/good.key}
      min_version: "1.3"
      client_auth: {ca_file: DIR/ca.pem, mode: verify_if_given, subject_header: X-Client-Subject}
  - addr: 127.0.0.1:8444
    tls: {certificates: [{cert_file: DIR/good.pem, key_file: DIR/good.key, default: true}]}
  - addr: 127.0.0.1:8080
sites:
  - hosts: [a.test]
    https_redirect: true
    hsts: {include_subdomains: true}
    routes: [{respond: {}}]
`, "DIR", dir)
	c := mustParse(t, text)
	l := c.Listeners[0]
	if l.TLS.Certificates[0].Loaded == nil || l.TLS.Certificates[0].Loaded.Leaf.DNSNames[1] != "*.b.test" {
		t.Fatalf("certificate not loaded: %+v", l.TLS.Certificates[0])
	}
	if l.TLS.MinVersion != "1.3" || l.TLS.ClientAuth.ClientCAs == nil || l.TLS.ClientAuth.Mode != "verify_if_given" {
		t.Fatalf("tls = %+v", l.TLS)
	}
	d := c.Listeners[1]
	if strings.Join(d.Protocols, ",") != "h1,h2" || d.TLS.MinVersion != "1.2" || d.TLS.HandshakeTimeout != DefaultHandshakeTimeout ||
		d.TLS.WatchInterval != DefaultWatchInterval || !d.TLS.OCSPStapling || !d.TLS.Certificates[0].Default {
		t.Fatalf("defaults not applied: %+v %+v", d, d.TLS)
	}
	if c.Listeners[2].Protocols != nil {
		t.Fatalf("plaintext protocols = %v", c.Listeners[2].Protocols)
	}
	if h := c.Sites[0].HSTS; h.MaxAge != DefaultHSTSMaxAge || !h.IncludeSubdomains || !c.Sites[0].HTTPSRedirect {
		t.Fatalf("site = %+v", c.Sites[0])
	}
}

func TestTLSErrors(t *testing.T) {
	dir := tlsFiles(t)
	missing := filepath.Join(dir, "missing.pem")
	os.WriteFile(filepath.Join(dir, "unreadable.pem"), []byte("x"), 0)
	cases := []struct {
		name, text string
		want       []string
	}{
		{"expired", `listeners: [{addr: ":1", tls: {certificates: [{cert_file: DIR/expired.pem, key_file: DIR/expired.key}]}}]`,
			[]string{`listeners[0].tls.certificates[0].cert_file: the certificate in cert_file "DIR/expired.pem" expired on `}},
		{"not yet valid", `listeners: [{addr: ":1", tls: {certificates: [{cert_file: DIR/future.pem, key_file: DIR/future.key}]}}]`,
			[]string{`listeners[0].tls.certificates[0].cert_file: the certificate in cert_file "DIR/future.pem" is not valid before `}},
		{"key of another certificate", `listeners: [{addr: ":1", tls: {certificates: [{cert_file: DIR/good.pem, key_file: DIR/other.key}]}}]`,
			[]string{`listeners[0].tls.certificates[0].key_file: key_file "DIR/other.key" is not the key of the certificate in cert_file "DIR/good.pem"`}},
		{"bad PEM", `listeners: [{addr: ":1", tls: {certificates: [{cert_file: DIR/garbage.pem, key_file: DIR/good.key}]}}]`,
			[]string{`listeners[0].tls.certificates[0].cert_file: cert_file "DIR/garbage.pem": certificate 1 does not parse`}},
		{"no PEM", `listeners: [{addr: ":1", tls: {certificates: [{cert_file: DIR/empty.pem, key_file: DIR/good.key}]}}]`,
			[]string{`listeners[0].tls.certificates[0].cert_file: cert_file "DIR/empty.pem" holds no PEM certificate`}},
		{"missing file", `listeners: [{addr: ":1", tls: {certificates: [{cert_file: ` + missing + `, key_file: DIR/good.key}]}}]`,
			[]string{`listeners[0].tls.certificates[0].cert_file: cannot read cert_file "DIR/missing.pem": no such file or directory`}},
		{"key not a key", `listeners: [{addr: ":1", tls: {certificates: [{cert_file: DIR/good.pem, key_file: DIR/good.pem}]}}]`,
			[]string{`listeners[0].tls.certificates[0].key_file: key_file "DIR/good.pem": `}},
		{"nothing to serve", `listeners: [{addr: ":1", tls: {min_version: "1.1"}}]`,
			[]string{`listeners[0].tls.certificates: a TLS listener needs certificates`, `listeners[0].tls.min_version: unknown min_version "1.1": use "1.2" or "1.3"`}},
		{"two defaults, no key", `listeners: [{addr: ":1", tls: {certificates: [{cert_file: DIR/good.pem, key_file: DIR/good.key, default: true}, {cert_file: DIR/good.pem, default: true}]}}]`,
			[]string{`listeners[0].tls.certificates[1].default: only one certificate may be the default`, `listeners[0].tls.certificates[1].key_file: key_file is required`}},
		{"protocols", `listeners: [{addr: ":1", protocols: [h2, h4, h2]}, {addr: ":2", protocols: [h3], tls: {certificates: [{cert_file: DIR/good.pem, key_file: DIR/good.key}]}}]`,
			[]string{`listeners[0].protocols[0]: h2 needs tls on this listener (for cleartext HTTP/2 use h2c: true)`,
				`listeners[0].protocols[1]: unknown protocol "h4"`, `listeners[0].protocols[2]: protocol h2 is listed twice`,
				`listeners[1].protocols: a TLS listener needs h1 or h2 over TCP`}},
		{"client auth", `listeners: [{addr: ":1", tls: {certificates: [{cert_file: DIR/good.pem, key_file: DIR/good.key}], client_auth: {mode: optional, subject_header: "X Bad"}}}]`,
			[]string{`listeners[0].tls.client_auth.ca_file: ca_file is required`, `listeners[0].tls.client_auth.mode: unknown mode "optional"`, `listeners[0].tls.client_auth.subject_header: invalid subject_header "X Bad"`}},
		{"acme", `listeners: [{addr: ":1", tls: {acme: {ca: "http://x", domains: ["*.a.test", "localhost"], challenges: [dns-01]}}}]`,
			[]string{`listeners[0].tls.acme.storage: storage is required`, `listeners[0].tls.acme.ca: ca must be the https:// URL`,
				`listeners[0].tls.acme.domains[0]: wildcard "*.a.test" needs the DNS-01 challenge`, `listeners[0].tls.acme.domains[1]: invalid domain "localhost"`,
				`listeners[0].tls.acme.challenges[0]: unknown challenge "dns-01"`}},
		{"acme http-01 without a plain listener", `listeners: [{addr: ":1", tls: {acme: {storage: /tmp/x, domains: [a.test]}}}]`,
			[]string{`listeners[0].tls.acme.challenges: http-01 is answered on a listener without tls`}},
		{"hsts", `listeners: [{addr: ":1"}]
sites: [{hsts: {max_age: 1h, preload: true}, routes: [{respond: {}}]}]`,
			[]string{`sites[0].hsts.preload: preload lists require max_age of at least 8760h`}},
	}
	if os.Geteuid() != 0 { // root reads files whatever their mode
		cases = append(cases, struct {
			name, text string
			want       []string
		}{"unreadable", `listeners: [{addr: ":1", tls: {certificates: [{cert_file: DIR/unreadable.pem, key_file: DIR/good.key}]}}]`,
			[]string{`cannot read cert_file "DIR/unreadable.pem": permission denied`}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(strings.ReplaceAll(tc.text, "DIR", dir)))
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.ReplaceAll(err.Error(), dir, "DIR")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			if n := strings.Count(got, "\n") + 1; n != len(tc.want) {
				t.Errorf("%d errors, want %d:\n%s", n, len(tc.want), got)
			}
		})
	}
}
