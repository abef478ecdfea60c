package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// openIDProvider is a small OpenID provider: discovery, an authorization
// endpoint that logs "alice" in at once, a token endpoint that checks the
// client secret and the PKCE verifier, and a JWKS.
type openIDProvider struct {
	*httptest.Server
	key        *rsa.PrivateKey
	mu         sync.Mutex
	codes      map[string]grant
	badNonce   atomic.Bool
	pkceFailed atomic.Int64
}

type grant struct{ challenge, nonce, redirect string }

func newOpenIDProvider(t *testing.T) *openIDProvider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &openIDProvider{key: key, codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": p.URL, "authorization_endpoint": p.URL + "/authorize",
			"token_endpoint": p.URL + "/token", "jwks_uri": p.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "op", "alg": "RS256",
			"n": b64url(key.N.Bytes()), "e": b64url(big.NewInt(int64(key.E)).Bytes())}}})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("response_type") != "code" || q.Get("client_id") != "gh" || q.Get("code_challenge_method") != "S256" ||
			len(q.Get("code_challenge")) != 43 || !strings.Contains(q.Get("scope"), "openid") || q.Get("nonce") == "" {
			http.Error(w, "bad authorization request: "+r.URL.RawQuery, 400)
			return
		}
		code := fmt.Sprint("code-", time.Now().UnixNano())
		p.mu.Lock()
		p.codes[code] = grant{q.Get("code_challenge"), q.Get("nonce"), q.Get("redirect_uri")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		r.ParseForm()
		p.mu.Lock()
		g, ok := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code")) // one use
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case id != "gh" || secret != "s3cret":
			w.WriteHeader(401)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		case !ok || r.PostForm.Get("redirect_uri") != g.redirect || r.PostForm.Get("grant_type") != "authorization_code":
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			p.pkceFailed.Add(1)
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		nonce := g.nonce
		if p.badNonce.Load() {
			nonce = "replayed"
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": p.URL, "aud": "gh", "sub": "alice",
			"email": "alice@id.test", "groups": []string{"staff", "dev"}, "nonce": nonce,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = "op"
		s, _ := tok.SignedString(key)
		json.NewEncoder(w).Encode(map[string]string{"id_token": s, "token_type": "Bearer", "access_token": "at"})
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func TestOIDCLoginEndToEnd(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, "app")
	op := newOpenIDProvider(t)
	secret := writeFile(t, "client-secret", "s3cret\n")
	cookieKey := writeFile(t, "cookie-key", strings.Repeat("k", 40))
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
upstreams: {app: {targets: [%q]}}
sites:
  - middleware:
      - oidc:
          issuer: %q
          client_id: gh
          client_secret_file: %q
          redirect_url: "http://{{LISTEN}}/oauth2/callback"
          cookie_secret_file: %q
          session_ttl: 3s
          forward_claims: {sub: X-User, email: X-Email, groups: X-Groups}
    routes:
      - upstream: app
`, backend.URL, op.URL, secret, cookieKey))

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil}}
	req, _ := http.NewRequest("GET", gh.URL("/app/page?x=1"), nil)
	req.Header.Set("X-User", "admin") // forged: must never reach the backend
	resp, s := doSeen(t, browser, req)
	if s.URI != "/app/page?x=1" || s.Header.Get("X-User") != "alice" || s.Header.Get("X-Email") != "alice@id.test" || s.Header.Get("X-Groups") != "staff,dev" {
		t.Fatalf("after login the backend saw %s with X-User %q X-Email %q X-Groups %q", s.URI, s.Header.Get("X-User"), s.Header.Get("X-Email"), s.Header.Get("X-Groups"))
	}
	if resp.Request.URL.Path != "/app/page" {
		t.Errorf("ended at %s", resp.Request.URL)
	}
	var session *http.Cookie
	for _, c := range jar.Cookies(resp.Request.URL) {
		if c.Name == "gatehouse_session" {
			session = c
		}
	}
	if session == nil || strings.Contains(session.Value, "alice") {
		t.Fatalf("session cookie %v: missing or readable", session)
	}
	// The session is enough from now on: no more trips to the provider.
	noFollow := newClient(t)
	r2, _ := authGet(t, noFollow, gh.URL("/again"), "Cookie", "gatehouse_session="+session.Value, "X-User", "root")
	if r2.StatusCode != 200 {
		t.Fatalf("with the session cookie: %d", r2.StatusCode)
	}
	if !waitFor(2*time.Second, func() bool { u, ok := userOf(gh, "/again"); return ok && u == "alice" }) {
		t.Error("access log user is not the session's sub")
	}

	// Without a session: GET goes to the provider with PKCE; POST gets 401.
	r3, _ := authGet(t, noFollow, gh.URL("/x"))
	loc, _ := url.Parse(r3.Header.Get("Location"))
	if r3.StatusCode != 302 || !strings.HasPrefix(r3.Header.Get("Location"), op.URL+"/authorize?") || loc.Query().Get("code_challenge_method") != "S256" {
		t.Errorf("no session: %d to %q", r3.StatusCode, r3.Header.Get("Location"))
	}
	if c := r3.Header.Get("Set-Cookie"); !strings.Contains(c, "gatehouse_session_login=") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") {
		t.Errorf("login cookie %q", c)
	}
	pr, _ := http.NewRequest("POST", gh.URL("/form"), strings.NewReader("a=1"))
	if r, _ := doReq(t, noFollow, pr); r.StatusCode != 401 {
		t.Errorf("POST without a session: %d, want 401", r.StatusCode)
	}
	// A tampered session cookie is no session.
	tampered := []byte(session.Value)
	tampered[len(tampered)/2] ^= 1
	if r, _ := authGet(t, noFollow, gh.URL("/t"), "Cookie", "gatehouse_session="+string(tampered)); r.StatusCode != 302 {
		t.Errorf("tampered session: %d, want a redirect to log in", r.StatusCode)
	}
	// The callback checks state against the login cookie.
	loginCookie := strings.Split(r3.Header.Get("Set-Cookie"), ";")[0]
	if r, _ := authGet(t, noFollow, gh.URL("/oauth2/callback?code=x&state=forged"), "Cookie", loginCookie); r.StatusCode != 400 {
		t.Errorf("forged state: %d, want 400", r.StatusCode)
	}
	if r, _ := authGet(t, noFollow, gh.URL("/oauth2/callback?code=x&state="+loc.Query().Get("state"))); r.StatusCode != 400 {
		t.Errorf("callback without the login cookie: %d, want 400", r.StatusCode)
	}
	// A code the provider does not know (or a replayed one) fails the login.
	if r, body := authGet(t, noFollow, gh.URL("/oauth2/callback?code=unknown&state="+loc.Query().Get("state")), "Cookie", loginCookie); r.StatusCode != 502 || strings.Contains(string(body), "invalid_grant") {
		t.Errorf("unknown code: %d %q", r.StatusCode, body)
	}
	// An ID token whose nonce is not this login's is refused.
	op.badNonce.Store(true)
	jar2, _ := cookiejar.New(nil)
	b2 := &http.Client{Jar: jar2, Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil}}
	if r, _ := authGet(t, b2, gh.URL("/n")); r.StatusCode != 502 {
		t.Errorf("wrong nonce: %d, want 502", r.StatusCode)
	}
	op.badNonce.Store(false)
	for path, want := range map[string]string{"/x": "oidc:no_session", "/oauth2/callback": "oidc:code_exchange"} {
		if !waitFor(2*time.Second, func() bool { return blockedOf(gh, path, want) }) {
			t.Errorf("no access log line for %s blocked as %s", path, want)
		}
	}
	if !waitFor(2*time.Second, func() bool { return blockedOf(gh, "/oauth2/callback", "oidc:nonce") }) {
		t.Error("the wrong nonce was not what failed the login")
	}
	if op.pkceFailed.Load() != 0 {
		t.Errorf("%d PKCE verifications failed at the provider", op.pkceFailed.Load())
	}
	// The session ends after session_ttl.
	time.Sleep(3100 * time.Millisecond)
	if r, _ := authGet(t, noFollow, gh.URL("/late"), "Cookie", "gatehouse_session="+session.Value); r.StatusCode != 302 {
		t.Errorf("expired session: %d, want a redirect to log in", r.StatusCode)
	}
}

// blockedOf reports whether an access log line for path says blocked: want.
func blockedOf(gh *proc, path, want string) bool {
	for _, l := range accessLines(gh.stderr.String()) {
		if l["path"] == path && l["blocked"] == want {
			return true
		}
	}
	return false
}
