package basicauth

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/passhash"
)

// maxCredentials bounds the base64 text decoded per request: no real user
// name and password come near it, and it keeps the stack buffer fixed.
const maxCredentials = 1024

// ParseBasic reads `Basic BASE64(user:password)` (RFC 7617): the scheme is
// case-insensitive and followed by one or more spaces; the credentials are
// padded or unpadded standard base64 of UTF-8 text; the user name is what
// precedes the first colon. buf receives the decoded bytes (it must hold
// maxCredentials*3/4 bytes); user and password point into it.
func ParseBasic(v []byte, buf []byte) (user, password []byte, ok bool) {
	if len(v) < 6 || !exchange.EqualFold(v[:5], "Basic") || v[5] != ' ' {
		return nil, nil, false
	}
	b64 := bytes.TrimLeft(v[6:], " ")
	b64 = bytes.TrimRight(b64, " \t")
	if len(b64) == 0 || len(b64) > maxCredentials {
		return nil, nil, false
	}
	enc := base64.StdEncoding
	if len(b64)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	n, err := enc.Decode(buf[:cap(buf)], b64)
	if err != nil {
		return nil, nil, false
	}
	dec := buf[:n]
	i := bytes.IndexByte(dec, ':')
	if i < 0 || !utf8.Valid(dec) {
		return nil, nil, false
	}
	for _, c := range dec {
		if c < 0x20 || c == 0x7f { // RFC 7617 §2: no control characters
			return nil, nil, false
		}
	}
	return dec[:i], dec[i+1:], true
}

// parseUsersFile reads `name:HASH` lines (htpasswd layout); blank lines and
// lines starting with # are skipped. Errors name the line.
func parseUsersFile(data []byte) (map[string]passhash.Hash, error) {
	users := map[string]passhash.Hash{}
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		name, hash, ok := strings.Cut(trimmed, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: want NAME:HASH", n+1)
		}
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("line %d: %v", n+1, err)
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("line %d: user %q is listed twice", n+1, name)
		}
		h, err := passhash.Parse(strings.TrimSpace(hash))
		if err != nil {
			return nil, fmt.Errorf("line %d: user %q: %v", n+1, name, err)
		}
		users[name] = h
	}
	return users, nil
}

// checkName refuses names a client could not send (RFC 7617: no colon, no
// control characters) or that would be ambiguous in the access log.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("empty user name")
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("user name %q is not UTF-8", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == ':' {
			return fmt.Errorf("user name %q contains a colon or a control character", name)
		}
	}
	return nil
}
