package basicauth

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/filtertest"
	"github.com/gatehouse-proxy/gatehouse/internal/passhash"
)

func creds(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func mustHash(t testing.TB, pw string, cost int) string {
	h, err := passhash.Bcrypt([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestParseBasic(t *testing.T) {
	var buf [maxCredentials * 3 / 4]byte
	for in, want := range map[string]string{
		creds("alice", "pw"):                             "alice|pw",
		creds("alice", "p:w:"):                           "alice|p:w:",
		creds("", ""):                                    "|",
		"basic " + b64("bob:x"):                          "bob|x",
		"BASIC    " + b64("bob:x") + "  ":                "bob|x",
		"Basic " + strings.TrimRight(b64("bob:xy"), "="): "bob|xy",
		creds("jürgen", "ünïcode"):                       "jürgen|ünïcode",
		"Basic " + b64("nocolon"):                        "",
		"Basic " + b64("a:b\x00"):                        "",
		"Basic " + b64("a:b\n"):                          "",
		"Basic " + b64("a:\xff\xfe"):                     "",
		"Basic":                                          "",
		"Basic ":                                         "",
		"Basicx " + b64("a:b"):                           "",
		"Bearer " + b64("a:b"):                           "",
		"Basic " + b64("a:b") + "=":                      "",
		"Basic !!!!":                                     "",
		"Basic " + strings.Repeat("A", 2000):             "",
	} {
		u, p, ok := ParseBasic([]byte(in), buf[:])
		got := ""
		if ok {
			got = string(u) + "|" + string(p)
		}
		if got != want {
			t.Errorf("ParseBasic(%q) = %q, want %q", in, got, want)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func FuzzParseBasic(f *testing.F) {
	f.Add([]byte(creds("alice", "pw")))
	f.Add([]byte("basic YTpi"))
	f.Add([]byte("Basic YTpi=="))
	f.Fuzz(func(t *testing.T, v []byte) {
		var buf [maxCredentials * 3 / 4]byte
		u, p, ok := ParseBasic(v, buf[:])
		if !ok {
			return
		}
		// What parses re-encodes to credentials that parse the same.
		again := []byte(creds(string(u), string(p)))
		u2, p2, ok2 := ParseBasic(again, make([]byte, len(buf)))
		if !ok2 || string(u2) != string(u) || string(p2) != string(p) {
			t.Fatalf("%q parsed as %q:%q, which does not round-trip", v, u, p)
		}
	})
}

func FuzzParseUsersFile(f *testing.F) {
	f.Add([]byte("# c\nalice:$2a$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234\n\n"))
	f.Add([]byte("bob:plain\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := parseUsersFile(data)
		if err != nil {
			return
		}
		for name, h := range users {
			if checkName(name) != nil || h == nil {
				t.Fatalf("accepted user %q", name)
			}
		}
	})
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users")
	os.WriteFile(file, []byte("bob:"+mustHash(t, "bob-pw", 4)+"\n"), 0o644)
	f := filtertest.MustBuild(t, New, "basic_auth", fmt.Sprintf(`{realm: "Staff", users: {alice: %q}, users_file: %q}`, mustHash(t, "alice-pw", 4), file))
	for _, c := range []struct {
		name   string
		kv     []string
		passed bool
		log    string
	}{
		{"none", nil, false, "basic_auth:no_credentials"},
		{"alice", []string{"Authorization", creds("alice", "alice-pw")}, true, "alice"},
		{"bob from the file", []string{"Authorization", creds("bob", "bob-pw")}, true, "bob"},
		{"wrong password", []string{"Authorization", creds("alice", "bob-pw")}, false, "basic_auth:bad_credentials"},
		{"unknown", []string{"Authorization", creds("carol", "alice-pw")}, false, "basic_auth:bad_credentials"},
		{"two headers", []string{"Authorization", creds("alice", "alice-pw"), "Authorization", creds("alice", "alice-pw")}, false, "basic_auth:malformed"},
	} {
		r := filtertest.Serve(f, "/", c.kv...)
		if r.Passed != c.passed {
			t.Errorf("%s: passed=%v", c.name, r.Passed)
		}
		if c.passed && r.Log.User != c.log || !c.passed && r.Log.Blocked != c.log {
			t.Errorf("%s: log %+v, want %q", c.name, r.Log, c.log)
		}
		if !c.passed && (r.Status != 401 || r.Get("WWW-Authenticate") != `Basic realm="Staff", charset="UTF-8"`) {
			t.Errorf("%s: %d %q", c.name, r.Status, r.Get("WWW-Authenticate"))
		}
	}
}

// An unknown user costs a hash verification, like a known one with the
// wrong password: timing does not tell which names exist.
func TestUnknownUserCostsAVerification(t *testing.T) {
	// Cost 5 (32 rounds) is well above the noise and cheap enough under -race.
	f := filtertest.MustBuild(t, New, "basic_auth", fmt.Sprintf(`{users: {alice: %q}}`, mustHash(t, "pw", 5))).(*Filter)
	timeOf := func(user string) time.Duration {
		best := time.Hour
		for range 3 {
			start := time.Now()
			f.check([]byte(user), []byte("wrong"), start, new(string))
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := timeOf("alice"), timeOf("mallory")
	if unknown < known/2 {
		t.Errorf("unknown user took %v, known user with a wrong password %v", unknown, known)
	}
}

// Good credentials are verified once, then served from the cache; the
// cache is keyed by the hash too, so a changed hash is verified afresh.
func TestCacheSkipsRepeatedVerification(t *testing.T) {
	f := filtertest.MustBuild(t, New, "basic_auth", fmt.Sprintf(`{users: {alice: %q}}`, mustHash(t, "pw", 5))).(*Filter)
	now := time.Now()
	start := time.Now()
	if !f.check([]byte("alice"), []byte("pw"), now, new(string)) {
		t.Fatal("alice did not verify")
	}
	first := time.Since(start)
	start = time.Now()
	for range 100 {
		if !f.check([]byte("alice"), []byte("pw"), now, new(string)) {
			t.Fatal("alice did not verify from the cache")
		}
	}
	if per := time.Since(start) / 100; per > first/10 {
		t.Errorf("cached check took %v, first %v: the cache is not used", per, first)
	}
	if f.check([]byte("alice"), []byte("PW"), now, new(string)) {
		t.Error("a wrong password passed after a right one was cached")
	}
	if f.check([]byte("alice"), []byte("pw"), now.Add(cacheTTL+time.Second), new(string)) != true {
		t.Error("an expired entry is not verified again")
	}
	for i := range cacheMax + 10 {
		f.remember([32]byte{byte(i), byte(i >> 8), 1}, now)
	}
	if n := f.cached.Load(); n > cacheMax {
		t.Errorf("cache holds %d entries, over %d", n, cacheMax)
	}
}

func TestConfigErrors(t *testing.T) {
	for settings, want := range map[string]string{
		`{users: {alice: hunter2}}`: `m.basic_auth.users.alice: user "alice": not a bcrypt or argon2id hash`,
		`{users: {"a:b": "$2a$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"}}`: `users["a:b"]: user name "a:b" contains a colon`,
		`{realm: "a\"b", users: {}}`:    `m.basic_auth.realm: realm`,
		`{}`:                            `basic_auth needs users or a users_file`,
		`{users_file: ""}`:              `users_file is empty`,
		`{users_file: /nonexistent}`:    `cannot read "/nonexistent"`,
		`{users: {alice: x}, userz: 1}`: `unknown field "userz"`,
	} {
		_, err := filtertest.Build(t, New, "basic_auth", settings, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", settings, err, want)
		}
	}
}

// A users file kept across builds: the second build takes the first's watcher.
func TestUsersFileKeptAcrossReloads(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	os.WriteFile(file, []byte("bob:"+mustHash(t, "pw", 4)+"\n"), 0o644)
	s1 := filter.NewState(nil)
	f1, err := filtertest.Build(t, New, "basic_auth", fmt.Sprintf(`{users_file: %q}`, file), s1)
	if err != nil {
		t.Fatal(err)
	}
	s2 := filter.NewState(s1)
	f2, err := filtertest.Build(t, New, "basic_auth", fmt.Sprintf(`{users_file: %q}`, file), s2)
	if err != nil {
		t.Fatal(err)
	}
	s2.Retire(s1)
	defer s2.Close()
	if f1.(*Filter).file != f2.(*Filter).file {
		t.Error("the reload made a second watcher of the same file")
	}
	r := filtertest.Serve(f2, "/", "Authorization", creds("bob", "pw"))
	if !r.Passed {
		t.Error("bob refused after the reload")
	}
}

func BenchmarkBasicAuthCached(b *testing.B) {
	f := filtertest.MustBuild(b, New, "basic_auth", fmt.Sprintf(`{users: {alice: %q}}`, mustHash(b, "pw", 10)))
	benchServe(b, f, creds("alice", "pw"))
}

func BenchmarkBasicAuthBcrypt10Uncached(b *testing.B) {
	f := filtertest.MustBuild(b, New, "basic_auth", fmt.Sprintf(`{users: {alice: %q}}`, mustHash(b, "pw", 10)))
	benchServe(b, f, creds("alice", "wrong")) // failures are never cached
}

func BenchmarkBasicAuthArgon2idUncached(b *testing.B) {
	h, _ := passhash.Argon2id([]byte("pw"))
	f := filtertest.MustBuild(b, New, "basic_auth", fmt.Sprintf(`{users: {alice: %q}}`, h))
	benchServe(b, f, creds("alice", "wrong"))
}

func benchServe(b *testing.B, f filter.Filter, authz string) {
	req := &exchange.Request{Method: []byte("GET"), Path: []byte("/")}
	req.Header.Add([]byte("Authorization"), []byte(authz))
	w := &filtertest.Writer{}
	next := filter.HandlerFunc(func(*filter.Exchange) {})
	var x filter.Exchange
	b.ReportAllocs()
	for b.Loop() {
		x = filter.Exchange{Req: req, W: w, Start: time.Now()}
		f.Serve(&x, next)
	}
}
