package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBasicAuthEndToEnd(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, "app")
	alice := hashPassword(t, "wonder land", "--algorithm", "bcrypt", "--cost", "5")
	// argon2id with small parameters: the default 19 MiB costs seconds in
	// a race-built binary (TestHashPasswordCLI checks the CLI's argon2id).
	bob := argon2Hash("bøb's secret")
	carol := hashPassword(t, "carol-pw", "--cost", "4")
	if !strings.HasPrefix(alice, "$2a$05$") {
		t.Fatalf("hash-password printed %q", alice)
	}
	usersFile := writeFile(t, "users", "# staff\nbob:"+bob+"\n\n")
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
upstreams: {app: {targets: [%q]}}
sites:
  - routes:
      - match: {path_prefix: /open}
        upstream: app
      - upstream: app
        middleware:
          - basic_auth:
              realm: staff area
              users: {alice: %q}
              users_file: %q
`, backend.URL, alice, usersFile))
	c := newClient(t)

	check := func(path string, status int, kv ...string) *http.Response {
		t.Helper()
		resp, body := authGet(t, c, gh.URL(path), kv...)
		if resp.StatusCode != status {
			t.Fatalf("%s %v: status %d, want %d (body %q)", path, kv, resp.StatusCode, status, body)
		}
		if status == 401 {
			if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="staff area", charset="UTF-8"` {
				t.Errorf("%s: WWW-Authenticate %q", path, got)
			}
			if strings.Contains(string(body), "alice") || len(body) > 100 {
				t.Errorf("%s: refusal body %q", path, body)
			}
		}
		return resp
	}
	check("/open", 200)
	check("/a", 401)
	check("/b", 401, "Authorization", basicCreds("alice", "wrong"))
	check("/c", 401, "Authorization", basicCreds("mallory", "wonder land"))
	check("/d", 401, "Authorization", "Basic !!!notbase64")
	check("/e", 401, "Authorization", "Bearer abc")
	check("/f", 401, "Authorization", basicCreds("alice", "wonder land"), "Authorization", basicCreds("alice", "wonder land"))
	check("/alice", 200, "Authorization", basicCreds("alice", "wonder land"))
	check("/alice-lower", 200, "Authorization", "basic   "+strings.TrimPrefix(basicCreds("alice", "wonder land"), "Basic "))
	check("/bob", 200, "Authorization", basicCreds("bob", "bøb's secret"))
	check("/carol-before", 401, "Authorization", basicCreds("carol", "carol-pw"))

	// The users file is re-read when it changes: carol in, bob out.
	replaceAuthFile(t, usersFile, "carol:"+carol+"\n")
	if !waitFor(10*time.Second, func() bool {
		resp, _ := authGet(t, c, gh.URL("/carol"), "Authorization", basicCreds("carol", "carol-pw"))
		return resp.StatusCode == 200
	}) {
		t.Fatal("carol was not let in after the users file changed")
	}
	check("/bob-after", 401, "Authorization", basicCreds("bob", "bøb's secret"))
	// A broken users file keeps the last good content.
	replaceAuthFile(t, usersFile, "carol:plaintext\n")
	if !waitFor(10*time.Second, func() bool { return strings.Contains(gh.stderr.String(), "watched file is invalid") }) {
		t.Error("a broken users file was not logged")
	}
	check("/carol-still", 200, "Authorization", basicCreds("carol", "carol-pw"))

	if !waitFor(2*time.Second, func() bool { u, ok := userOf(gh, "/alice"); return ok && u == "alice" }) {
		t.Error("the access log does not name the user alice")
	}
	if !waitFor(2*time.Second, func() bool {
		for _, l := range accessLines(gh.stderr.String()) {
			if l["path"] == "/b" {
				return l["blocked"] == "basic_auth:bad_credentials" && l["user"] == nil
			}
		}
		return false
	}) {
		t.Error("the access log does not show the refusal of /b")
	}
}

func TestAuthConfigErrorsArePositioned(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ yaml, want string }{
		{"basic_auth: {users: {alice: hunter2}}", `:5:43: sites[0].routes[0].middleware[0].basic_auth.users.alice: user "alice": not a bcrypt or argon2id hash (plain-text passwords are refused`},
		{"basic_auth: {users: {bob: \"$apr1$x$y\"}}", `basic_auth.users.bob: user "bob": MD5, SHA-1 and crypt(3) hashes`},
		{"basic_auth: {realm: x}", `basic_auth: basic_auth needs users or a users_file`},
		{"basic_auth: {users_file: /nonexistent/users}", `:5:47: sites[0].routes[0].middleware[0].basic_auth.users_file: cannot read "/nonexistent/users"`},
		{"jwt: {hmac_secret_file: /nonexistent/s, jwks_url: \"https://id.test/k\"}", `jwt: jwt needs exactly one of jwks_url, jwks_file and hmac_secret_file (2 given)`},
		{"jwt: {jwks_url: \"http://id.example/k\"}", `jwt.jwks_url: jwks_url must be https`},
		{"jwt: {jwks_url: \"https://id.example/k\", algorithms: [RS256, HS256]}", `jwt.algorithms[1]: algorithm "HS256" cannot be used with a key set`},
		{"jwt: {jwks_url: \"https://id.example/k\", algorithms: [none]}", `jwt.algorithms[0]: algorithm "none" cannot be used`},
		{"jwt: {jwks_url: \"https://id.example/k\", from: \"cookie:\"}", `jwt.from: from must be header`},
		{"jwt: {jwks_url: \"https://id.example/k\", forward_claims: {sub: \"X User\"}}", `jwt.forward_claims.sub: "X User" is not a valid header name`},
		{"jwt: {jwks_url: \"https://id.example/k\", require: {scope: {a: b}}}", `jwt.require.scope`},
		{"forward_auth: {url: \"ftp://x\"}", `forward_auth.url: url must be an http:// or https:// URL`},
		{"forward_auth: {url: \"http://127.0.0.1:1/\", copy_response_headers: [\"a b\"]}", `forward_auth.copy_response_headers[0]: "a b" is not a valid header name`},
		{"api_key: {header: X-Key}", `api_key.keys_file: keys_file is required`},
	} {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			cfg := writeFile(t, "c.yaml", `listeners: [{addr: "127.0.0.1:0"}]
sites:
  - routes:
      - respond: {body: hi}
        middleware: [`+c.yaml+`]
`)
			code, _, stderr := runCLI(t, "validate", "-c", cfg)
			if code != 1 || !strings.Contains(stderr, c.want) {
				t.Errorf("%s:\nexit %d, stderr %q\nwant it to contain %q", c.yaml, code, stderr, c.want)
			}
		})
	}
}

func TestHashPasswordCLI(t *testing.T) {
	t.Parallel()
	code, _, stderr := runCLI(t, "hash-password", "--algorithm", "md5")
	if code != 2 || !strings.Contains(stderr, "bcrypt or argon2id") {
		t.Errorf("bad algorithm: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "hash-password", "secret")
	if code != 2 || !strings.Contains(stderr, "never from the command line") {
		t.Errorf("password as an argument: exit %d, %q", code, stderr)
	}
	// Default: bcrypt at cost 10.
	if h := hashPassword(t, "pw"); !strings.HasPrefix(h, "$2a$10$") || len(h) != 60 {
		t.Errorf("default hash %q", h)
	}
	if h := hashPassword(t, "pw", "--algorithm", "argon2id"); !regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Errorf("argon2id hash %q", h)
	}
	// bcrypt ignores bytes past 72: such passwords are refused, not truncated.
	code, _, stderr = runCLIStdin(t, strings.Repeat("x", 80)+"\n", "hash-password")
	if code != 1 || !strings.Contains(stderr, "72 bytes") {
		t.Errorf("80-byte password: exit %d, %q", code, stderr)
	}
}

func TestAPIKeyEndToEnd(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, "app")
	digest := func(k string) string { s := sha256.Sum256([]byte(k)); return hex.EncodeToString(s[:]) }
	keysFile := writeFile(t, "keys", "# name:sha256(key)\nci-bot:"+digest("k-ci-123")+"\nbilling:"+strings.ToUpper(digest("k-bill-456"))+"\n")
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
upstreams: {app: {targets: [%q]}}
sites:
  - routes:
      - upstream: app
        middleware: [{api_key: {header: X-Api-Key, keys_file: %q, name_header: X-Key-Name}}]
`, backend.URL, keysFile))
	c := newClient(t)
	for _, kv := range [][]string{
		nil,
		{"X-Api-Key", "wrong"},
		{"X-Api-Key", digest("k-ci-123")}, // the digest itself is not a key
		{"X-Api-Key", "k-ci-123", "X-Api-Key", "k-ci-123"},
		{"X-Key-Name", "billing"}, // a forged name alone is nothing
	} {
		resp, _ := authGet(t, c, gh.URL("/x"), kv...)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `APIKey header="X-Api-Key"` {
			t.Errorf("%v: %d %q, want 401 with a challenge", kv, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	req, _ := http.NewRequest("GET", gh.URL("/y"), nil)
	req.Header.Set("X-Api-Key", "k-bill-456")
	req.Header.Add("X-Key-Name", "ci-bot") // forged: must be replaced
	req.Header.Add("x-key-name", "root")
	_, s := doSeen(t, c, req)
	if got := s.Header.Values("X-Key-Name"); len(got) != 1 || got[0] != "billing" {
		t.Errorf("backend saw X-Key-Name %q, want only [billing]", got)
	}
	if s.Header.Get("X-Api-Key") != "" {
		t.Error("the key itself reached the backend")
	}
	if !waitFor(2*time.Second, func() bool { u, ok := userOf(gh, "/y"); return ok && u == "billing" }) {
		t.Error("access log user is not the key's name")
	}
	// Decisions are counted on /metrics.
	_, metrics := authGet(t, c, "http://"+gh.Admin()+"/metrics")
	for _, want := range []string{`gatehouse_auth_total{middleware="api_key",result="allowed"} 1`,
		`gatehouse_auth_total{middleware="api_key",result="unknown_key"} 2`, `gatehouse_auth_total{middleware="api_key",result="no_key"} 2`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Keys are re-read from the file.
	replaceAuthFile(t, keysFile, "new:"+digest("k-new")+"\n")
	if !waitFor(10*time.Second, func() bool {
		resp, _ := authGet(t, c, gh.URL("/z"), "X-Api-Key", "k-new")
		return resp.StatusCode == 200
	}) {
		t.Fatal("a key added to keys_file was not accepted")
	}
	if resp, _ := authGet(t, c, gh.URL("/z"), "X-Api-Key", "k-ci-123"); resp.StatusCode != 401 {
		t.Errorf("a key removed from keys_file still works: %d", resp.StatusCode)
	}
}

// authService is a real authentication service for forward_auth: it lets
// "Bearer good" through with identity headers, redirects browsers without
// credentials to a login page, and refuses the rest with its own body.
type authService struct {
	*httptest.Server
	calls atomic.Int64
	last  atomic.Pointer[http.Request]
	delay time.Duration
}

func newAuthService(t *testing.T, delay time.Duration) *authService {
	a := &authService{delay: delay}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		a.last.Store(r.Clone(r.Context()))
		time.Sleep(a.delay)
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			w.Header().Set("X-User", "alice")
			w.Header().Add("X-Groups", "admins")
			w.Header().Add("X-Groups", "dev")
			w.Header().Set("X-Not-Copied", "1")
			w.WriteHeader(204)
		case "":
			http.Redirect(w, r, "https://login.test/?rd="+r.Header.Get("X-Forwarded-Uri"), http.StatusFound)
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="sso"`)
			w.Header().Set("Set-Cookie", "seen=1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			json.NewEncoder(w).Encode(map[string]string{"error": "bad token"})
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func TestForwardAuthEndToEnd(t *testing.T) {
	t.Parallel()
	backend := echoBackend(t, "app")
	auth := newAuthService(t, 0)
	slow := newAuthService(t, 3*time.Second)
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
upstreams: {app: {targets: [%q]}}
sites:
  - routes:
      - match: {path_prefix: /slow/}
        upstream: app
        middleware: [{forward_auth: {url: "%s/check", timeout: 300ms}}]
      - match: {path_prefix: /down/}
        upstream: app
        middleware: [{forward_auth: {url: "http://{{DEAD}}/check"}}]
      - upstream: app
        middleware:
          - forward_auth:
              url: "%s/check?from=gh"
              copy_response_headers: [X-User, X-Groups]
              user_header: X-User
`, backend.URL, slow.URL, auth.URL))
	c := newClient(t)

	// 2xx: through, with the service's identity headers and never the client's
	// (which the service does not see either).
	req, _ := http.NewRequest("GET", gh.URL("/app/page?q=1"), nil)
	req.Header.Set("Authorization", "Bearer good")
	req.Header.Set("X-User", "root")
	req.Header.Set("X-Groups", "wheel")
	req.Header.Set("Cookie", "sid=abc")
	_, s := doSeen(t, c, req)
	if got := s.Header.Values("X-User"); len(got) != 1 || got[0] != "alice" {
		t.Errorf("backend saw X-User %q, want [alice]", got)
	}
	if got := s.Header.Values("X-Groups"); strings.Join(got, ",") != "admins,dev" {
		t.Errorf("backend saw X-Groups %q, want [admins dev]", got)
	}
	if s.Header.Get("X-Not-Copied") != "" {
		t.Error("a header not in copy_response_headers reached the backend")
	}
	last := auth.last.Load()
	for k, want := range map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/app/page?q=1", "X-Forwarded-Host": gh.Addr(),
		"X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1", "Cookie": "sid=abc", "X-User": ""} {
		if got := last.Header.Get(k); got != want {
			t.Errorf("auth service saw %s %q, want %q", k, got, want)
		}
	}
	if last.Method != "GET" || last.URL.RequestURI() != "/check?from=gh" {
		t.Errorf("auth service saw %s %s", last.Method, last.URL.RequestURI())
	}
	if !waitFor(2*time.Second, func() bool { u, ok := userOf(gh, "/app/page"); return ok && u == "alice" }) {
		t.Error("access log user is not the service's X-User")
	}

	// Non-2xx: the service's answer, as it is.
	resp, body := authGet(t, c, gh.URL("/app/x"), "Authorization", "Bearer bad")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="sso"` ||
		resp.Header.Get("Set-Cookie") != "seen=1" || !strings.Contains(string(body), `"bad token"`) {
		t.Errorf("refusal: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp, _ = authGet(t, c, gh.URL("/app/y?z=1"))
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://login.test/?rd=/app/y?z=1" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The connection to the service is kept alive across requests.
	before := auth.calls.Load()
	for i := 0; i < 20; i++ {
		authGet(t, c, gh.URL("/app/k"), "Authorization", "Bearer good")
	}
	if n := auth.calls.Load() - before; n != 20 {
		t.Errorf("the service was asked %d times for 20 requests", n)
	}

	// Unreachable or too slow: 503, never through.
	for _, path := range []string{"/down/x", "/slow/x"} {
		start := time.Now()
		resp, body := authGet(t, c, gh.URL(path), "Authorization", "Bearer good")
		if resp.StatusCode != 503 || strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "app") {
			t.Errorf("%s: %d %q, want a plain 503", path, resp.StatusCode, body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %v: the timeout was not applied", path, d)
		}
	}
}
