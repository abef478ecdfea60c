package server

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/passhash"
	"github.com/golang-jwt/jwt/v5"
)

// The cost of authentication on the hot path: BenchmarkProxyGET100B's load
// with valid credentials on every request, through one auth middleware.
// Clients repeat their credentials, so these measure the remembered path
// (basic_auth's verified-credentials cache, jwt's verified-token cache);
// the first verification's cost is in the filters' own benchmarks.

func benchmarkAuth(b *testing.B, middleware, header string) {
	addr := startProxyWith(b, rawBackend(b, bytes.Repeat([]byte("x"), 100)), "", middleware)
	// One request first, so that the verification the cache saves is not
	// what gets measured.
	name, value, _ := strings.Cut(header, ": ")
	req, _ := http.NewRequest("GET", "http://"+addr+"/warm", nil)
	req.Header.Set(name, value)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("warm-up request: %v %v", resp, err)
	}
	resp.Body.Close()
	b.ResetTimer()
	benchmarkRequest(b, addr, 100, nil, header+"\r\n")
}

func benchFile(b *testing.B, name string, data []byte) string {
	p := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkProxyGET100BBasicAuth(b *testing.B) {
	h, err := passhash.Bcrypt([]byte("pw"), 10)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkAuth(b, fmt.Sprintf("basic_auth: {users: {alice: %q}}", h),
		"Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("alice:pw")))
}

func BenchmarkProxyGET100BJWT(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	enc := base64.RawURLEncoding
	set, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k",
		"n": enc.EncodeToString(key.N.Bytes()), "e": enc.EncodeToString(big.NewInt(int64(key.E)).Bytes())}}})
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "u", "scope": "read", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k"
	signed, err := tok.SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkAuth(b, fmt.Sprintf("jwt: {jwks_file: %q, require: {scope: read}, forward_claims: {sub: X-User}}", benchFile(b, "jwks", set)),
		"Authorization: Bearer "+signed)
}

func BenchmarkProxyGET100BAPIKey(b *testing.B) {
	keys := benchFile(b, "keys", []byte("bench:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\n")) // sha256("foo")
	benchmarkAuth(b, fmt.Sprintf("api_key: {keys_file: %q}", keys), "X-API-Key: foo")
}
