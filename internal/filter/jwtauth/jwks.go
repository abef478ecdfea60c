package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// key is one verification key of a key set.
type key struct {
	kid string
	alg string // the JWK's "alg", "" when it did not say
	pub any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// keySet is an immutable set of keys, swapped whole on refresh.
type keySet struct {
	keys []key
}

// jwk is the subset of RFC 7517/7518/8037 members gatehouse reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// maxKeys bounds a key set: real ones hold a handful.
const maxKeys = 100

// parseJWKS reads a JSON Web Key Set. Keys gatehouse cannot use to verify
// signatures (encryption keys, symmetric "oct" keys, unknown types or
// curves) are skipped, so that an identity provider adding a new kind of
// key does not break the ones that work; a set with no usable key is an
// error. Symmetric keys are never taken from a key set: an HMAC secret
// published in a JWKS would let anyone sign.
func parseJWKS(data []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %v", err)
	}
	if len(doc.Keys) > maxKeys {
		return nil, fmt.Errorf("%d keys: over the %d limit", len(doc.Keys), maxKeys)
	}
	set := &keySet{}
	var firstErr error
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("key %d: %v", i, err)
			}
			continue
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		pub, err := j.public()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("key %d (kid %q): %v", i, j.Kid, err)
			}
			continue
		}
		if pub == nil {
			continue
		}
		set.keys = append(set.keys, key{kid: j.Kid, alg: j.Alg, pub: pub})
	}
	if len(set.keys) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, errors.New("no RSA, EC or Ed25519 signature key in the set")
	}
	return set, nil
}

var b64 = base64.RawURLEncoding

// public returns the key, nil for a kind that is skipped, or an error for
// a key of a known kind that is malformed.
func (j *jwk) public() (any, error) {
	switch j.Kty {
	case "RSA":
		n, err := bigInt(j.N, "n")
		if err != nil {
			return nil, err
		}
		e, err := bigInt(j.E, "e")
		if err != nil {
			return nil, err
		}
		if n.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: at least 2048 are required", n.BitLen())
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("RSA exponent out of range")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, nil
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != size {
			return nil, fmt.Errorf("EC %s key: x must be %d bytes of base64url", j.Crv, size)
		}
		y, err := b64.DecodeString(j.Y)
		if err != nil || len(y) != size {
			return nil, fmt.Errorf("EC %s key: y must be %d bytes of base64url", j.Crv, size)
		}
		// ecdsa.ParseUncompressedPublicKey checks the point is on the curve.
		pt := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
		if err != nil {
			return nil, fmt.Errorf("EC %s key: %v", j.Crv, err)
		}
		return pub, nil
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, nil
		}
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("Ed25519 key: x must be 32 bytes of base64url")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil
}

func bigInt(s, name string) (*big.Int, error) {
	b, err := b64.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("RSA key: %s is not base64url", name)
	}
	if len(b) > 1024 { // 8192 bits
		return nil, fmt.Errorf("RSA key: %s is too large", name)
	}
	return new(big.Int).SetBytes(b), nil
}

// fits reports whether pub verifies tokens signed with alg: the family and,
// for ECDSA, the curve must match (RFC 7518 §3.4 ties ES256 to P-256).
// This, with HMAC secrets never coming from a key set, is what stops
// algorithm confusion: a token saying HS256 never meets a public key.
func fits(pub any, alg string) bool {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return p.Curve == elliptic.P256()
		case "ES384":
			return p.Curve == elliptic.P384()
		case "ES512":
			return p.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// find returns the key for a token's kid and alg. A token without a kid
// may use any key of the right kind (small sets often have one key and no
// kids); with a kid, only that key, and its own alg must agree if it has one.
func (s *keySet) find(kid, alg string) (any, bool) {
	if s == nil {
		return nil, false
	}
	for i := range s.keys {
		k := &s.keys[i]
		if kid != "" && k.kid != kid {
			continue
		}
		if k.alg != "" && k.alg != alg {
			continue
		}
		if fits(k.pub, alg) {
			return k.pub, true
		}
	}
	return nil, false
}
