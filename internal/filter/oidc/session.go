package oidc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
)

// sealer encrypts and authenticates cookie values with AES-256-GCM: a
// client can neither read a session (it may hold claims the user should
// not see, such as group lists) nor forge or alter one. Each kind of cookie
// (session, login) has its own additional data, so one cannot be replayed
// as the other.
type sealer struct{ aead cipher.AEAD }

func newSealer(secret []byte) (*sealer, error) {
	// The key is derived so that a secret file of any length (at least 32
	// bytes, checked at load) gives a 256-bit key.
	key := sha256.Sum256(append([]byte("gatehouse oidc cookie key\x00"), secret...))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

var cookieB64 = base64.RawURLEncoding

func (s *sealer) seal(kind string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return cookieB64.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(kind))), nil
}

var errBadCookie = errors.New("cookie does not decrypt")

func (s *sealer) open(kind, value string, v any) error {
	raw, err := cookieB64.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return errBadCookie
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(kind))
	if err != nil {
		return errBadCookie
	}
	if json.Unmarshal(plain, v) != nil {
		return errBadCookie
	}
	return nil
}

// session is what the session cookie holds.
type session struct {
	Sub     string   `json:"s"`
	Expires int64    `json:"e"` // unix seconds
	Values  []string `json:"v"` // per forward_claims entry ("" when absent)
	Has     []bool   `json:"h"`
}

// login is what the short-lived login cookie holds between the redirect
// to the provider and the callback.
type login struct {
	State    string `json:"st"`
	Verifier string `json:"pk"` // PKCE code_verifier (RFC 7636)
	Nonce    string `json:"n"`
	URI      string `json:"u"` // where to go back to
	Expires  int64  `json:"e"`
}

// randomString is 32 random bytes in base64url: states, nonces, verifiers.
func randomString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return cookieB64.EncodeToString(b), nil
}

// challenge is the S256 PKCE code_challenge of a verifier.
func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return cookieB64.EncodeToString(sum[:])
}
