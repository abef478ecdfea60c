package oidc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/filter/filtertest"
)

func TestSealer(t *testing.T) {
	s, _ := newSealer([]byte(strings.Repeat("k", 32)))
	in := session{Sub: "alice", Expires: 99, Values: []string{"a"}, Has: []bool{true}}
	v, err := s.seal("session", &in)
	if err != nil {
		t.Fatal(err)
	}
	var out session
	if err := s.open("session", v, &out); err != nil || out.Sub != "alice" || out.Expires != 99 {
		t.Fatalf("open: %v %+v", err, out)
	}
	if strings.Contains(v, "alice") {
		t.Error("the cookie shows its content")
	}
	if s.open("login", v, &out) == nil {
		t.Error("a session cookie opened as a login cookie")
	}
	other, _ := newSealer([]byte(strings.Repeat("x", 32)))
	if other.open("session", v, &out) == nil {
		t.Error("a cookie opened with another key")
	}
	b := []byte(v)
	b[len(b)-3] ^= 1
	if s.open("session", string(b), &out) == nil {
		t.Error("a tampered cookie opened")
	}
}

func FuzzOpenCookie(f *testing.F) {
	s, _ := newSealer([]byte(strings.Repeat("k", 32)))
	good, _ := s.seal("session", &session{Sub: "a"})
	f.Add(good)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		// Only {Sub: "a"} was ever sealed under this key (in any fuzz
		// worker): nothing else may open.
		var out session
		if s.open("session", v, &out) == nil && out.Sub != "a" {
			t.Fatalf("%q opened as %+v without being sealed by us", v, out)
		}
	})
}

func TestLocalURI(t *testing.T) {
	for in, want := range map[string]string{"/a?b=1": "/a?b=1", "//evil.test/": "/", "/\\evil.test": "/", "https://evil.test": "/", "": "/"} {
		if got := localURI(in); got != want {
			t.Errorf("localURI(%q) = %q, want %q", in, got, want)
		}
	}
	if c := challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); c != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Errorf("S256 challenge %q (RFC 7636 appendix B)", c)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	short := filepath.Join(dir, "short")
	os.WriteFile(secret, []byte(strings.Repeat("s", 40)), 0o644)
	os.WriteFile(short, []byte("short"), 0o644)
	base := `issuer: "https://id.test", client_id: gh, client_secret_file: %q, redirect_url: "https://app.test/cb", cookie_secret_file: %q`
	for settings, want := range map[string]string{
		`{` + fmt.Sprintf(base, secret, secret) + `}`:                                                          "",
		`{` + fmt.Sprintf(base, secret, short) + `}`:                                                           "m.oidc.cookie_secret_file: cookie_secret_file: it must hold at least 32 bytes",
		`{` + strings.Replace(fmt.Sprintf(base, secret, secret), "https://id.test", "http://id.test", 1) + `}`: "m.oidc.issuer: issuer",
		`{` + strings.Replace(fmt.Sprintf(base, secret, secret), "https://app.test/cb", "/cb", 1) + `}`:        "m.oidc.redirect_url",
		`{` + strings.Replace(fmt.Sprintf(base, secret, secret), "client_id: gh", "client_id: \"\"", 1) + `}`:  "client_id is required",
		`{` + fmt.Sprintf(base, secret, secret) + `, forward_claims: {sub: "X User"}}`:                         "m.oidc.forward_claims.sub",
	} {
		_, err := filtertest.Build(t, New, "oidc", settings, nil)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", settings, err, want)
		}
	}
}
