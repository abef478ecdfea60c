package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/filtertest"
	"github.com/golang-jwt/jwt/v5"
)

var enc = base64.RawURLEncoding

type testKey struct {
	kid    string
	method jwt.SigningMethod
	priv   any
	jwk    map[string]string
}

var (
	rsaKey          = func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k }()
	ecKey           = func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }()
	edPub, edKey, _ = ed25519.GenerateKey(rand.Reader)
)

func keys() []testKey {
	pt, _ := ecKey.PublicKey.Bytes()
	return []testKey{
		{"r1", jwt.SigningMethodRS256, rsaKey, map[string]string{"kty": "RSA", "kid": "r1", "n": enc.EncodeToString(rsaKey.N.Bytes()), "e": enc.EncodeToString(big.NewInt(int64(rsaKey.E)).Bytes())}},
		{"e1", jwt.SigningMethodES256, ecKey, map[string]string{"kty": "EC", "kid": "e1", "crv": "P-256", "x": enc.EncodeToString(pt[1:33]), "y": enc.EncodeToString(pt[33:])}},
		{"d1", jwt.SigningMethodEdDSA, edKey, map[string]string{"kty": "OKP", "kid": "d1", "crv": "Ed25519", "x": enc.EncodeToString(edPub)}},
	}
}

func jwksJSON(ks []testKey) []byte {
	var list []map[string]string
	for _, k := range ks {
		list = append(list, k.jwk)
	}
	b, _ := json.Marshal(map[string]any{"keys": list})
	return b
}

func sign(t testing.TB, method jwt.SigningMethod, kid string, priv any, claims jwt.MapClaims) string {
	c := jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeTemp(t testing.TB, name string, data []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseJWKS(t *testing.T) {
	set, err := parseJWKS(jwksJSON(keys()))
	if err != nil || len(set.keys) != 3 {
		t.Fatalf("parseJWKS: %v, %d keys", err, len(set.keys))
	}
	// Skipped: oct (symmetric) keys, encryption keys, unknown types.
	mixed := `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},{"kty":"XYZ"},` + string(mustJSON(keys()[2].jwk)) + `]}`
	set, err = parseJWKS([]byte(mixed))
	if err != nil || len(set.keys) != 1 || set.keys[0].kid != "d1" {
		t.Fatalf("mixed set: %v %+v", err, set)
	}
	for in, want := range map[string]string{
		`nope`:        "not a JSON Web Key Set",
		`{"keys":[]}`: "no RSA, EC or Ed25519",
		`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`:                     "no RSA, EC or Ed25519",
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`:              "at least 2048",
		`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`: "x must be 32 bytes",
		`{"keys":[{"kty":"EC","crv":"P-256","x":"` + enc.EncodeToString(make([]byte, 32)) + `","y":"` + enc.EncodeToString(make([]byte, 32)) + `"}]}`: "EC P-256 key",
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`: "32 bytes",
	} {
		if _, err := parseJWKS([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseJWKS(%s) = %v, want %q", in, err, want)
		}
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// fits is what stops algorithm confusion: no key serves another family.
func TestKeysOnlyServeTheirAlgorithms(t *testing.T) {
	set, _ := parseJWKS(jwksJSON(keys()))
	for _, c := range []struct {
		kid, alg string
		ok       bool
	}{
		{"r1", "RS256", true}, {"r1", "PS512", true}, {"r1", "HS256", false}, {"r1", "ES256", false},
		{"e1", "ES256", true}, {"e1", "ES384", false}, {"e1", "HS256", false},
		{"d1", "EdDSA", true}, {"d1", "HS256", false}, {"d1", "none", false},
		{"", "RS256", true}, {"", "HS256", false}, {"zz", "RS256", false},
	} {
		if _, ok := set.find(c.kid, c.alg); ok != c.ok {
			t.Errorf("find(%q, %q) = %v, want %v", c.kid, c.alg, ok, c.ok)
		}
	}
	// A key that names its alg serves only that one.
	set.keys[0].alg = "RS256"
	if _, ok := set.find("r1", "PS256"); ok {
		t.Error("a key with alg RS256 verified PS256")
	}
}

func FuzzParseJWKS(f *testing.F) {
	f.Add(jwksJSON(keys()))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-384","x":"","y":""},{"kty":"OKP","crv":"X25519","x":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := parseJWKS(data)
		if err != nil {
			return
		}
		for _, k := range set.keys {
			if k.pub == nil {
				t.Fatal("a nil key in the set")
			}
			for _, alg := range symmetric {
				if fits(k.pub, alg) {
					t.Fatal("a key-set key fits an HMAC algorithm")
				}
			}
		}
	})
}

func TestTokenSources(t *testing.T) {
	tok := "aGVhZA.Ym9keQ.c2ln"
	for _, c := range []struct {
		from string
		kv   []string
		path string
		want found
	}{
		{"header", []string{"Authorization", "Bearer " + tok}, "/", present},
		{"header", []string{"Authorization", "bearer    " + tok}, "/", present},
		{"header", []string{"Authorization", "Basic abc"}, "/", none},
		{"header", nil, "/", none},
		{"header", []string{"Authorization", "Bearer a.b"}, "/", malformed},
		{"header", []string{"Authorization", "Bearer " + tok, "Authorization", "Bearer " + tok}, "/", malformed},
		{"header:X-Token", []string{"X-Token", tok}, "/", present},
		{"header:X-Token", []string{"X-Token", "Bearer " + tok}, "/", present},
		{"cookie:s", []string{"Cookie", "a=1; s=" + tok + "; b=2"}, "/", present},
		{"cookie:s", []string{"Cookie", "a=1", "Cookie", `s="` + tok + `"`}, "/", present},
		{"cookie:s", []string{"Cookie", "as=" + tok}, "/", none},
		{"query:t", nil, "/?a=1&t=" + tok, present},
		{"query:t", nil, "/?t=" + strings.ReplaceAll(tok, ".", "%2E"), present},
		{"query:t", nil, "/?tt=" + tok, none},
		{"query:t", nil, "/?t=%zz", none},
	} {
		src, err := parseFrom(c.from)
		if err != nil {
			t.Fatal(err)
		}
		f := &Filter{from: src}
		req := &exchange.Request{}
		path, q, has := strings.Cut(c.path, "?")
		req.Path, req.Query, req.HasQuery = []byte(path), []byte(q), has
		for i := 0; i+1 < len(c.kv); i += 2 {
			req.Header.Add([]byte(c.kv[i]), []byte(c.kv[i+1]))
		}
		got, st := f.token(req)
		if st != c.want || st == present && string(got) != tok {
			t.Errorf("%s %v %s: %q %d, want %d", c.from, c.kv, c.path, got, st, c.want)
		}
	}
}

func FuzzTokenExtraction(f *testing.F) {
	f.Add([]byte("a=1; s=x.y.z"), []byte("t=x.y.z&u=%41"), []byte("Bearer x.y.z"))
	f.Fuzz(func(t *testing.T, cookie, query, authz []byte) {
		var h exchange.Headers
		h.Add([]byte("Cookie"), cookie)
		h.Add([]byte("Authorization"), authz)
		for _, from := range []string{"header", "cookie:s", "query:t"} {
			src, _ := parseFrom(from)
			f := &Filter{from: src}
			tok, st := f.token(&exchange.Request{Header: h, Query: query, HasQuery: true})
			if st == present && !jwsCompact(tok) {
				t.Fatalf("%s: %q is not a compact JWS", from, tok)
			}
		}
	})
}

func TestRequirementsAndForwarding(t *testing.T) {
	scope := requirement{claim: "scope", values: []string{"read"}, spaced: true}
	roles := requirement{claim: "roles", values: []string{"a", "b"}}
	for _, c := range []struct {
		r    requirement
		v    any
		want bool
	}{
		{scope, "read", true}, {scope, "write read", true}, {scope, "readonly", false}, {scope, []any{"read"}, true}, {scope, nil, false},
		{roles, []any{"b", "c", "a"}, true}, {roles, []any{"a"}, false}, {roles, "a b", false},
		{requirement{claim: "n", values: []string{"3"}}, float64(3), true},
		{requirement{claim: "v", values: []string{"true"}}, true, true},
	} {
		if got := c.r.holds(c.v); got != c.want {
			t.Errorf("%s %v holds %#v = %v", c.r.claim, c.r.values, c.v, got)
		}
	}
	for _, c := range []struct {
		v    any
		want string
		ok   bool
	}{
		{"u1", "u1", true}, {float64(42), "42", true}, {[]any{"a", "b"}, "a,b", true},
		{map[string]any{"k": "v"}, `{"k":"v"}`, true}, {"a\r\nX-Admin: 1", "", false}, {"tab\tok", "tab\tok", true},
	} {
		if got, ok := headerValue(c.v); got != c.want || ok != c.ok {
			t.Errorf("headerValue(%#v) = %q %v", c.v, got, ok)
		}
	}
}

// The key set is fetched again for an unknown kid, at most once per
// jwks_min_refresh however many such tokens come.
func TestUnknownKidRefreshIsRateLimited(t *testing.T) {
	ks := keys()
	var served atomic.Pointer[[]byte]
	first := jwksJSON(ks[:1])
	served.Store(&first)
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write(*served.Load())
	}))
	defer srv.Close()
	f := filtertest.MustBuild(t, New, "jwt", fmt.Sprintf(`{jwks_url: %q, jwks_min_refresh: 300ms}`, srv.URL))
	ok := func(tok string) bool { return filtertest.Serve(f, "/", "Authorization", "Bearer "+tok).Passed }
	if !ok(sign(t, ks[0].method, "r1", ks[0].priv, nil)) { // waits for the initial fetch
		t.Fatal("RS256 token refused")
	}
	all := jwksJSON(ks)
	served.Store(&all)
	time.Sleep(350 * time.Millisecond)
	n0 := fetches.Load()
	if !ok(sign(t, ks[1].method, "e1", ks[1].priv, nil)) {
		t.Fatal("a token with a new kid was refused after the set gained it")
	}
	var forged []string
	for i := range 200 {
		forged = append(forged, sign(t, ks[2].method, fmt.Sprint("nope", i), ks[2].priv, nil))
	}
	start := time.Now()
	for _, tok := range forged {
		if ok(tok) {
			t.Fatal("a token with an unknown kid passed")
		}
	}
	// One fetch for the new kid, then at most one per 300ms window.
	if n, most := fetches.Load()-n0, 2+int64(time.Since(start)/(300*time.Millisecond)); n < 1 || n > most {
		t.Errorf("%d fetches for one new kid and 200 unknown ones in %v (at most %d)", n, time.Since(start), most)
	}
}

func TestUnavailableKeysAre503(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	f := filtertest.MustBuild(t, New, "jwt", fmt.Sprintf(`{jwks_url: %q, jwks_min_refresh: 1s}`, srv.URL))
	r := filtertest.Serve(f, "/", "Authorization", "Bearer "+sign(t, jwt.SigningMethodRS256, "r1", rsaKey, nil))
	if r.Passed || r.Status != 503 {
		t.Fatalf("with no keys ever fetched: passed=%v status %d, want 503", r.Passed, r.Status)
	}
}

func TestConfigErrors(t *testing.T) {
	secret := writeTemp(t, "s", []byte(strings.Repeat("k", 40)))
	short := writeTemp(t, "short", []byte("tooshort"))
	for settings, want := range map[string]string{
		`{}`: "exactly one of",
		fmt.Sprintf(`{hmac_secret_file: %q}`, short):                                 "the secret is 8 bytes; HMAC needs at least 32",
		fmt.Sprintf(`{hmac_secret_file: %q, algorithms: [HS512]}`, secret):           "HS512 needs at least 64",
		fmt.Sprintf(`{hmac_secret_file: %q, algorithms: [RS256]}`, secret):           `m.jwt.algorithms[0]: algorithm "RS256" cannot be used with hmac_secret_file`,
		fmt.Sprintf(`{hmac_secret_file: %q, leeway: 1h}`, secret):                    "leeway must be at most 5m",
		fmt.Sprintf(`{hmac_secret_file: %q, from: "body:x"}`, secret):                "from must be",
		fmt.Sprintf(`{hmac_secret_file: %q, require: {scope: []}}`, secret):          "non-empty value",
		fmt.Sprintf(`{hmac_secret_file: %q, require: {scope: [1, {a: b}]}}`, secret): "m.jwt.require.scope[1]",
		fmt.Sprintf(`{jwks_file: %q}`, secret):                                       "not a JSON Web Key Set",
		`{jwks_url: "ftp://x/y"}`:                                                    "not an http(s) URL",
		`{jwks_url: "https://x/y", jwks_refresh: 1s, jwks_min_refresh: 2s}`:          "jwks_min_refresh (2s) is longer",
	} {
		_, err := filtertest.Build(t, New, "jwt", settings, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", settings, err, want)
		}
	}
}

func benchJWT(b *testing.B, settings, tok string, cached bool) {
	f := filtertest.MustBuild(b, New, "jwt", settings).(*Filter)
	req := &exchange.Request{Method: []byte("GET"), Path: []byte("/")}
	req.Header.Add([]byte("Authorization"), []byte("Bearer "+tok))
	hdr := req.Header
	w := &filtertest.Writer{}
	passed := 0
	next := filter.HandlerFunc(func(*filter.Exchange) { passed++ })
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if !cached {
			f.cache.m.Clear()
		}
		req.Header = hdr[:1]
		x := filter.Exchange{Req: req, W: w, Start: now}
		f.Serve(&x, next)
	}
	if passed != b.N {
		b.Fatalf("%d of %d requests passed", passed, b.N)
	}
}

// BenchmarkJWT measures a request through jwt with issuer, audience,
// require and forward_claims checks: "verify" with a token seen for the
// first time, "cached" with one seen before (the common case: a client
// sends the same token until it expires).
func BenchmarkJWT(b *testing.B) {
	ks := keys()
	set := writeTemp(b, "jwks", jwksJSON(ks))
	secret := writeTemp(b, "s", []byte(strings.Repeat("k", 32)))
	claims := jwt.MapClaims{"iss": "https://id.test", "aud": "api", "scope": "read write"}
	full := `, issuers: [https://id.test], audiences: [api], require: {scope: read}, forward_claims: {sub: X-User-Id}}`
	type alg struct {
		name, settings, tok string
	}
	var algs []alg
	for _, k := range ks {
		algs = append(algs, alg{k.method.Alg(), fmt.Sprintf(`{jwks_file: %q`, set) + full, sign(b, k.method, k.kid, k.priv, claims)})
	}
	algs = append(algs, alg{"HS256", fmt.Sprintf(`{hmac_secret_file: %q`, secret) + full, sign(b, jwt.SigningMethodHS256, "", []byte(strings.Repeat("k", 32)), claims)})
	for _, a := range algs {
		b.Run("verify/"+a.name, func(b *testing.B) { benchJWT(b, a.settings, a.tok, false) })
		b.Run("cached/"+a.name, func(b *testing.B) { benchJWT(b, a.settings, a.tok, true) })
	}
}

// A remembered token still expires on time.
func TestCachedTokenStillExpires(t *testing.T) {
	set := writeTemp(t, "jwks", jwksJSON(keys()))
	f := filtertest.MustBuild(t, New, "jwt", fmt.Sprintf(`{jwks_file: %q, leeway: 10s, forward_claims: {sub: X-Sub}}`, set)).(*Filter)
	exp := time.Now().Add(30 * time.Second)
	tok := sign(t, jwt.SigningMethodRS256, "r1", rsaKey, jwt.MapClaims{"exp": exp.Unix()})
	at := func(now time.Time) (bool, string) {
		req := &exchange.Request{Method: []byte("GET"), Path: []byte("/")}
		req.Header.Add([]byte("Authorization"), []byte("Bearer "+tok))
		req.Header.Add([]byte("X-Sub"), []byte("forged"))
		var seen string
		x := filter.Exchange{Req: req, W: &filtertest.Writer{}, Start: now}
		passed := false
		f.Serve(&x, filter.HandlerFunc(func(x *filter.Exchange) { passed, seen = true, string(x.Req.Header.Get("X-Sub")) }))
		return passed, seen
	}
	for range 2 { // verified, then from the cache
		if ok, sub := at(time.Now()); !ok || sub != "u1" {
			t.Fatalf("passed=%v X-Sub=%q", ok, sub)
		}
	}
	if f.cache.n.Load() != 1 {
		t.Fatalf("%d cached tokens, want 1", f.cache.n.Load())
	}
	// The parser checks a token against the real clock; the cache must
	// give a token up at exp + leeway, or its entry's lifetime.
	key := sha256.Sum256([]byte(tok))
	if f.cache.get(key, exp.Add(5*time.Second)) == nil {
		t.Error("the cache gave the token up within the leeway")
	}
	if f.cache.get(key, exp.Add(11*time.Second)) != nil {
		t.Error("the cache kept an expired token")
	}
	if f.cache.get(key, time.Now().Add(tokenCacheTTL+time.Second)) != nil {
		t.Error("the cache kept a token past its entry's lifetime")
	}
}
