// Package passhash makes and checks password hashes in the two formats
// gatehouse accepts: bcrypt ($2a$, $2b$, $2y$) and argon2id in the PHC
// string format ($argon2id$v=19$m=KiB,t=N,p=N$SALT$KEY, unpadded base64),
// the formats htpasswd, Caddy and most password tools write. Anything else,
// plain text above all, is refused by Parse.
package passhash

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Hash is a parsed password hash.
type Hash interface {
	// Verify reports whether password is the one hashed, in time that
	// does not depend on how much of it matches.
	Verify(password []byte) bool
	// String is the hash as written.
	String() string
}

// Argon2id parameters of new hashes: the OWASP recommendation (19 MiB, two
// passes, one lane), which keeps a verification near 20 ms and its memory
// small enough that a burst of logins cannot exhaust the host.
const (
	Argon2Memory  = 19 * 1024 // KiB
	Argon2Time    = 2
	Argon2Threads = 1
	argon2SaltLen = 16
	argon2KeyLen  = 32
)

// Limits on argon2id parameters a configuration may use: beyond them one
// verification would cost seconds or gigabytes.
const (
	maxArgon2Memory = 1 << 20 // KiB = 1 GiB
	maxArgon2Time   = 64
)

// BcryptMaxPassword is bcrypt's limit: it ignores bytes past 72, so longer
// passwords are refused rather than silently truncated.
const BcryptMaxPassword = 72

// ErrNotAHash is returned by Parse for anything that is not a bcrypt or
// argon2id hash, plain-text passwords included.
var ErrNotAHash = errors.New("not a bcrypt or argon2id hash (plain-text passwords are refused; make a hash with `gatehouse hash-password`)")

// Parse reads a bcrypt or argon2id hash.
func Parse(s string) (Hash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return nil, errors.New("argon2i and argon2d hashes are not accepted: use argon2id")
	case strings.HasPrefix(s, "$apr1$"), strings.HasPrefix(s, "{SHA}"), strings.HasPrefix(s, "$1$"),
		strings.HasPrefix(s, "$5$"), strings.HasPrefix(s, "$6$"):
		return nil, errors.New("MD5, SHA-1 and crypt(3) hashes are too fast to guess against: use bcrypt or argon2id (`gatehouse hash-password`)")
	}
	return nil, ErrNotAHash
}

// bcryptHash keeps the hash both ways: bcrypt takes bytes, and String is
// called per request (basicauth's cache key) without a copy.
type bcryptHash struct {
	s string
	h []byte
}

func parseBcrypt(s string) (Hash, error) {
	if len(s) != 60 {
		return nil, fmt.Errorf("a bcrypt hash is 60 characters long, this one is %d", len(s))
	}
	if _, err := bcrypt.Cost([]byte(s)); err != nil {
		return nil, fmt.Errorf("malformed bcrypt hash: %v", err)
	}
	// Cost() checks the prefix and cost; the salt and hash must be
	// bcrypt's base64 alphabet or Compare would fail on every password.
	for _, c := range []byte(s[7:]) {
		if !(c == '.' || c == '/' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return nil, errors.New("malformed bcrypt hash: invalid character in salt or hash")
		}
	}
	return &bcryptHash{s: s, h: []byte(s)}, nil
}

func (b *bcryptHash) Verify(password []byte) bool {
	if len(password) > BcryptMaxPassword {
		// Still spend the time, so that length is all this reveals.
		bcrypt.CompareHashAndPassword(b.h, password[:BcryptMaxPassword])
		return false
	}
	return bcrypt.CompareHashAndPassword(b.h, password) == nil
}

func (b *bcryptHash) String() string { return b.s }

type argon2idHash struct {
	s            string
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

var b64 = base64.RawStdEncoding

func parseArgon2id(s string) (Hash, error) {
	// "" argon2id v=19 m=..,t=..,p=.. salt key
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, errors.New("malformed argon2id hash: want $argon2id$v=19$m=KiB,t=N,p=N$SALT$KEY")
	}
	if parts[2] != "v=19" {
		return nil, fmt.Errorf("argon2id version %q is not supported (want v=19)", parts[2])
	}
	h := &argon2idHash{s: s}
	var seen [3]bool
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, errors.New("malformed argon2id parameters: want m=KiB,t=N,p=N")
	}
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || n == 0 {
			return nil, fmt.Errorf("malformed argon2id parameter %q", p)
		}
		switch k {
		case "m":
			h.memory, seen[0] = uint32(n), true
		case "t":
			h.time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return nil, fmt.Errorf("argon2id parallelism %d is over 255", n)
			}
			h.threads, seen[2] = uint8(n), true
		default:
			return nil, fmt.Errorf("unknown argon2id parameter %q", k)
		}
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return nil, errors.New("malformed argon2id parameters: want m=KiB,t=N,p=N")
	}
	if h.memory > maxArgon2Memory || h.time > maxArgon2Time {
		return nil, fmt.Errorf("argon2id cost m=%d,t=%d is over the limit (m<=%d KiB, t<=%d): one login would take seconds", h.memory, h.time, maxArgon2Memory, maxArgon2Time)
	}
	if h.memory < 8*uint32(h.threads) {
		return nil, errors.New("argon2id memory must be at least 8 KiB per lane")
	}
	var err error
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return nil, errors.New("malformed argon2id salt: want at least 8 bytes in unpadded base64")
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 128 {
		return nil, errors.New("malformed argon2id key: want 16 to 128 bytes in unpadded base64")
	}
	return h, nil
}

func (h *argon2idHash) Verify(password []byte) bool {
	k := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1
}

func (h *argon2idHash) String() string { return h.s }

// Bcrypt hashes password with bcrypt at cost.
func Bcrypt(password []byte, cost int) (string, error) {
	if len(password) > BcryptMaxPassword {
		return "", fmt.Errorf("bcrypt uses only the first %d bytes of a password; this one has %d (use argon2id)", BcryptMaxPassword, len(password))
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("bcrypt cost must be %d to %d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := bcrypt.GenerateFromPassword(password, cost)
	return string(h), err
}

// Argon2id hashes password with argon2id and the recommended parameters.
func Argon2id(password []byte) (string, error) {
	return argon2id(password, Argon2Memory, Argon2Time, Argon2Threads)
}

func argon2id(password []byte, memory, time uint32, threads uint8) (string, error) {
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey(password, salt, time, memory, threads, argon2KeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", memory, time, threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}
