package passhash

import (
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	b, err := Bcrypt([]byte("pässword"), 4)
	if err != nil {
		t.Fatal(err)
	}
	// Small parameters: the same code path, cheap under -race.
	a, err := argon2id([]byte("pässword"), 64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{b, a} {
		h, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if h.String() != s {
			t.Errorf("String() = %q, want %q", h.String(), s)
		}
		if !h.Verify([]byte("pässword")) {
			t.Errorf("%s: the right password does not verify", s[:10])
		}
		for _, wrong := range []string{"", "password", "pässword ", "pässwor"} {
			if h.Verify([]byte(wrong)) {
				t.Errorf("%s: %q verifies", s[:10], wrong)
			}
		}
	}
}

// Argon2id's default parameters (19 MiB) are exercised through the binary
// by the e2e test of hash-password; here they would cost seconds under -race.

func TestBcryptRefusesTruncation(t *testing.T) {
	long := strings.Repeat("a", 72)
	if _, err := Bcrypt([]byte(long+"b"), 4); err == nil {
		t.Fatal("a 73-byte password was hashed (bcrypt would ignore its last byte)")
	}
	s, err := Bcrypt([]byte(long), 4)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := Parse(s)
	if !h.Verify([]byte(long)) || h.Verify([]byte(long+"b")) {
		t.Error("a password longer than 72 bytes verified against the hash of its first 72")
	}
}

func TestParseRefuses(t *testing.T) {
	for in, want := range map[string]string{
		"hunter2":                           "plain-text passwords are refused",
		"":                                  "plain-text passwords are refused",
		"$apr1$a$b":                         "too fast",
		"{SHA}abc":                          "too fast",
		"$2a$10$short":                      "60 characters",
		"$2a$03$" + strings.Repeat("a", 53): "malformed bcrypt",
		"$2a$10$" + strings.Repeat("a", 52) + "!":                                    "invalid character",
		"$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5": "use argon2id",
		"$argon2id$v=16$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5":                "version",
		"$argon2id$v=19$m=65536,t=3$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5":                    "want m=KiB,t=N,p=N",
		"$argon2id$v=19$m=99999999,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5":     "over the limit",
		"$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5":             "salt",
		"$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5":                            "key",
		"$argon2id$v=19$m=65536,t=0,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5":        "malformed argon2id parameter",
		"$argon2id$v=19$m=65536,t=3,x=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5":        "unknown argon2id parameter",
	} {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

// FuzzParse: any string either parses into a hash that verifies without
// panicking, or is refused.
func FuzzParse(f *testing.F) {
	f.Add("$2a$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5")
	f.Add("plain")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Parse(s)
		if err != nil {
			return
		}
		if a, ok := h.(*argon2idHash); ok && a.memory*a.time > 4096 {
			return // valid but too slow to run per fuzz input
		}
		if b, ok := h.(*bcryptHash); ok && string(b.h[4:6]) > "05" {
			return
		}
		h.Verify([]byte("x"))
	})
}
