package e2e

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signer is one signing key of the test identity provider.
type signer struct {
	kid    string
	method jwt.SigningMethod
	priv   any
	jwk    map[string]string
}

func rsaSigner(t *testing.T, kid string, method jwt.SigningMethod) *signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, method: method, priv: k, jwk: map[string]string{
		"kty": "RSA", "kid": kid, "use": "sig",
		"n": b64url(k.N.Bytes()), "e": b64url(big.NewInt(int64(k.E)).Bytes())}}
}

func ecSigner(t *testing.T, kid string) *signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt, _ := k.PublicKey.Bytes() // 04 || X || Y
	return &signer{kid: kid, method: jwt.SigningMethodES256, priv: k, jwk: map[string]string{
		"kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256", "x": b64url(pt[1:33]), "y": b64url(pt[33:])}}
}

func edSigner(t *testing.T, kid string) *signer {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, method: jwt.SigningMethodEdDSA, priv: priv, jwk: map[string]string{
		"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64url(pub)}}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// sign makes a token with standard claims (iss, aud, sub, exp in 5 minutes)
// overridden and extended by extra (a nil value deletes the claim).
func (s *signer) sign(t *testing.T, extra map[string]any) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": "https://id.test", "aud": "api", "sub": "user-42", "scope": "read", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(s.method, c)
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jwksServer is the identity provider's key endpoint; its keys can change.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, signers ...*signer) *jwksServer {
	j := &jwksServer{}
	j.set(signers...)
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		json.NewEncoder(w).Encode(map[string]any{"keys": j.keys})
	}))
	t.Cleanup(j.Close)
	return j
}

func (j *jwksServer) set(signers ...*signer) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = nil
	for _, s := range signers {
		j.keys = append(j.keys, s.jwk)
	}
}

const jwtConfig = `listeners: [{addr: "{{LISTEN}}"}]
upstreams: {app: {targets: [%q]}}
sites:
  - routes:
      - match: {path_prefix: /hmac/}
        upstream: app
        middleware: [{jwt: {hmac_secret_file: %q, forward_claims: {sub: X-User-Id}}}]
      - match: {path_prefix: /cookie/}
        upstream: app
        middleware: [{jwt: {jwks_file: %q, from: "cookie:session"}}]
      - match: {path_prefix: /query/}
        upstream: app
        middleware: [{jwt: {jwks_file: %q, from: "query:access_token"}}]
      - match: {path_prefix: /api/}
        upstream: app
        middleware:
          - jwt:
              jwks_url: "%s/.well-known/jwks.json"
              jwks_min_refresh: 1s
              issuers: [https://id.test, https://other.test]
              audiences: [api]
              leeway: 30s
              forward_claims: {sub: X-User-Id, email: X-User-Email, roles: X-Roles}
              require: {scope: read, roles: [staff]}
`

func TestJWTEndToEnd(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, "app")
	rs := rsaSigner(t, "rsa-1", jwt.SigningMethodRS256)
	ps := &signer{kid: "rsa-1", method: jwt.SigningMethodPS256, priv: rs.priv}
	es := ecSigner(t, "ec-1")
	ed := edSigner(t, "ed-1")
	rotated := rsaSigner(t, "rsa-2", jwt.SigningMethodRS384)
	idp := newJWKSServer(t, rs, es, ed)

	secret := []byte("0123456789abcdef0123456789abcdef-hmac")
	secretFile := writeFile(t, "hmac.key", string(secret)+"\n")
	hs := &signer{method: jwt.SigningMethodHS256, priv: secret}
	edJWKS, _ := json.Marshal(map[string]any{"keys": []map[string]string{ed.jwk}})
	jwksFile := writeFile(t, "jwks.json", string(edJWKS))

	cfg := fmt.Sprintf(jwtConfig, backend.URL, secretFile, jwksFile, jwksFile, idp.URL)
	gh := startGatehouse(t, cfg)
	c := newClient(t)
	staff := map[string]any{"roles": []string{"staff", "dev"}, "email": "u@id.test"}

	bearer := func(path, tok string, kv ...string) (*http.Response, []byte) {
		t.Helper()
		return authGet(t, c, gh.URL(path), append([]string{"Authorization", "Bearer " + tok}, kv...)...)
	}
	expect := func(name string, resp *http.Response, body []byte, status int, wwwAuth string) {
		t.Helper()
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d (body %q)", name, resp.StatusCode, status, body)
			return
		}
		if got := resp.Header.Get("WWW-Authenticate"); wwwAuth != "" && got != wwwAuth {
			t.Errorf("%s: WWW-Authenticate %q, want %q", name, got, wwwAuth)
		}
	}
	invalid := func(desc string) string { return `Bearer error="invalid_token", error_description="` + desc + `"` }

	// Every asymmetric family verifies against the fetched JWKS.
	for _, s := range []*signer{rs, ps, es, ed} {
		resp, body := bearer("/api/x", s.sign(t, staff))
		expect(s.method.Alg(), resp, body, 200, "")
	}
	// Claims reach the backend in gatehouse's headers only.
	req, _ := http.NewRequest("GET", gh.URL("/api/who"), nil)
	req.Header.Set("Authorization", "Bearer "+es.sign(t, staff))
	req.Header.Set("X-User-Id", "admin")
	req.Header.Add("x-user-id", "root")
	req.Header.Set("X-User-Email", "forged@evil.test")
	_, s := doSeen(t, c, req)
	if got := s.Header.Values("X-User-Id"); len(got) != 1 || got[0] != "user-42" {
		t.Errorf("backend saw X-User-Id %q, want [user-42]", got)
	}
	if s.Header.Get("X-User-Email") != "u@id.test" || s.Header.Get("X-Roles") != "staff,dev" {
		t.Errorf("backend saw email %q roles %q", s.Header.Get("X-User-Email"), s.Header.Get("X-Roles"))
	}
	// A token without the email claim: the forged header is still dropped.
	req, _ = http.NewRequest("GET", gh.URL("/api/who2"), nil)
	req.Header.Set("Authorization", "Bearer "+rs.sign(t, map[string]any{"roles": "staff"}))
	req.Header.Set("X-User-Email", "forged@evil.test")
	if _, s = doSeen(t, c, req); s.Header.Get("X-User-Email") != "" {
		t.Errorf("a forged X-User-Email reached the backend: %q", s.Header.Get("X-User-Email"))
	}
	if !waitFor(2*time.Second, func() bool { u, ok := userOf(gh, "/api/who"); return ok && u == "user-42" }) {
		t.Error("access log user is not the token's sub")
	}

	now := time.Now()
	for _, c := range []struct {
		name, tok string
		status    int
		www       string
	}{
		{"no token", "", 401, "Bearer"},
		{"garbage", "not-a-jwt", 401, invalid("the token is malformed")},
		{"expired", rs.sign(t, merge(staff, map[string]any{"exp": now.Add(-2 * time.Minute).Unix()})), 401, invalid("the token has expired")},
		{"expired within leeway", rs.sign(t, merge(staff, map[string]any{"exp": now.Add(-10 * time.Second).Unix()})), 200, ""},
		{"not yet valid", rs.sign(t, merge(staff, map[string]any{"nbf": now.Add(2 * time.Minute).Unix()})), 401, invalid("the token is not valid yet")},
		{"no exp", rs.sign(t, merge(staff, map[string]any{"exp": nil})), 401, invalid("the token lacks exp or aud")},
		{"wrong issuer", rs.sign(t, merge(staff, map[string]any{"iss": "https://evil.test"})), 401, invalid("the token is not from an accepted issuer")},
		{"second issuer", rs.sign(t, merge(staff, map[string]any{"iss": "https://other.test"})), 200, ""},
		{"wrong audience", rs.sign(t, merge(staff, map[string]any{"aud": []string{"web"}})), 401, invalid("the token is not for this audience")},
		{"one of its audiences", rs.sign(t, merge(staff, map[string]any{"aud": []string{"web", "api"}})), 200, ""},
		{"no scope read", rs.sign(t, merge(staff, map[string]any{"scope": "write readonly"})), 403, `Bearer error="insufficient_scope", error_description="the token lacks a required claim value"`},
		{"scope among others", rs.sign(t, merge(staff, map[string]any{"scope": "write read"})), 200, ""},
		{"no staff role", rs.sign(t, map[string]any{"roles": []string{"dev"}}), 403, ""},
		{"bad signature", tamper(rs.sign(t, staff)), 401, invalid("the token's signature or algorithm is not accepted")},
		{"unknown signer", rsaSigner(t, "rsa-1", jwt.SigningMethodRS256).sign(t, staff), 401, invalid("the token's signature or algorithm is not accepted")},
		{"alg none", noneToken(t, staff), 401, invalid("the token's signature or algorithm is not accepted")},
		{"HS256 with the RSA public key as secret", confused(t, rs, staff), 401, invalid("the token's signature or algorithm is not accepted")},
		{"HS256 token on a key-set route", hs.sign(t, staff), 401, ""},
	} {
		resp, body := bearer("/api/case", c.tok)
		if c.tok == "" {
			resp, body = authGet(t, newClient(t), gh.URL("/api/case"))
		}
		expect(c.name, resp, body, c.status, c.www)
	}

	// The HMAC route takes HS256 only.
	resp, body := bearer("/hmac/x", hs.sign(t, nil))
	expect("hmac", resp, body, 200, "")
	resp, body = bearer("/hmac/x", rs.sign(t, nil))
	expect("RS256 on the hmac route", resp, body, 401, "")
	// Cookie and query sources (jwks_file with the Ed25519 key).
	resp, body = authGet(t, c, gh.URL("/cookie/x"), "Cookie", "a=1; session="+ed.sign(t, nil)+"; b=2")
	expect("cookie", resp, body, 200, "")
	resp, body = authGet(t, c, gh.URL("/cookie/x"), "Authorization", "Bearer "+ed.sign(t, nil))
	expect("cookie route ignores the Authorization header", resp, body, 401, "Bearer")
	resp, body = authGet(t, c, gh.URL("/query/x?x=1&access_token="+ed.sign(t, nil)))
	expect("query", resp, body, 200, "")
	resp, body = authGet(t, c, gh.URL("/query/x?access_token="+es.sign(t, nil)))
	expect("query with a key not in the file", resp, body, 401, invalid("no trusted key matches the token's kid and algorithm"))

	// Key rotation: a token with a new kid makes gatehouse fetch the set again.
	idp.set(rs, es, ed, rotated)
	time.Sleep(1100 * time.Millisecond) // jwks_min_refresh
	before := idp.fetches.Load()
	resp, body = bearer("/api/rotated", rotated.sign(t, staff))
	expect("rotated key", resp, body, 200, "")
	if n := idp.fetches.Load() - before; n != 1 {
		t.Errorf("the rotated key took %d fetches, want 1", n)
	}
	// A flood of made-up kids does not flood the identity provider.
	before = idp.fetches.Load()
	forged := rsaSigner(t, "", jwt.SigningMethodRS256)
	floodStart := time.Now()
	for i := 0; i < 60; i++ {
		forged.kid = fmt.Sprintf("random-%d", i)
		resp, _ := bearer("/api/flood", forged.sign(t, staff))
		if resp.StatusCode != 401 {
			t.Fatalf("forged kid %d: status %d", i, resp.StatusCode)
		}
	}
	// At most one fetch per jwks_min_refresh (1s) window of the flood.
	if n, most := idp.fetches.Load()-before, 1+int64(time.Since(floodStart)/time.Second); n > most {
		t.Errorf("60 unknown kids in %v caused %d JWKS fetches (at most %d)", time.Since(floodStart), n, most)
	}

	// A reload keeps the fetched keys: no new fetch, and tokens still verify
	// even while the identity provider is down.
	idp.Close()
	before = idp.fetches.Load()
	gh.writeConfig(cfg + "      - {match: {path: /marker}, respond: {body: reloaded}}\n")
	gh.signal(syscall.SIGHUP)
	if !waitFor(5*time.Second, func() bool { r, _ := authGet(t, c, gh.URL("/marker")); return r.StatusCode == 200 }) {
		t.Fatal("the reload did not happen")
	}
	resp, body = bearer("/api/after-reload", rotated.sign(t, staff))
	expect("after reload, identity provider down", resp, body, 200, "")
	if n := idp.fetches.Load() - before; n != 0 {
		t.Errorf("the reload fetched the key set %d times", n)
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// tamper changes the payload and keeps the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), "user-42", "user-43", 1))
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
}

func noneToken(t *testing.T, claims map[string]any) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(merge(claims, map[string]any{
		"iss": "https://id.test", "aud": "api", "sub": "user-42", "scope": "read", "exp": time.Now().Add(time.Minute).Unix()})))
	tok.Header["kid"] = "rsa-1"
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// confused is the classic algorithm-confusion token: HS256, with the
// RSA public key (as the PEM a careless verifier would load) as the secret.
func confused(t *testing.T, rs *signer, claims map[string]any) string {
	der, err := x509.MarshalPKIXPublicKey(&rs.priv.(*rsa.PrivateKey).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	s := &signer{kid: rs.kid, method: jwt.SigningMethodHS256, priv: pemKey}
	return s.sign(t, claims)
}
