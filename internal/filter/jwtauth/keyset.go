package jwtauth

import (
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeySet is a JWKS fetched from a URL, cached and refreshed as for the
// jwt filter, for other filters that verify tokens (oidc's ID tokens).
type KeySet struct{ r *remote }

// NewKeySet fetches the key set at url in the background and keeps it
// fresh until Close; whoever holds it keeps it across reloads.
func NewKeySet(url string, log *slog.Logger) *KeySet {
	return &KeySet{r: newRemote(url, 10*time.Minute, 10*time.Second, log)}
}

// Close stops the background refresh.
func (k *KeySet) Close() error { return k.r.Close() }

// Keyfunc is a jwt.Keyfunc choosing the key by kid and alg, with the same
// protection against algorithm confusion as the jwt filter.
func (k *KeySet) Keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	pub, unavailable := k.r.find(kid, t.Method.Alg())
	switch {
	case pub != nil:
		return pub, nil
	case unavailable:
		return nil, errUnavailable
	}
	return nil, errNoKey
}

// Asymmetric lists the signature algorithms a key set can verify.
func Asymmetric() []string { return append([]string(nil), asymmetric...) }

// HeaderValue renders a claim for a request header as forward_claims does;
// false when it holds characters a header cannot carry.
func HeaderValue(v any) (string, bool) { return headerValue(v) }
