package jwtauth

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/golang-jwt/jwt/v5"
)

// requirement is one `require` entry: the claim must hold every value.
type requirement struct {
	claim  string
	values []string
	spaced bool // scope, scp: a space-separated list (RFC 8693 §4.2)
}

// Serve lets the request through when it carries a valid token.
func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	// Identity headers are gatehouse's to set: drop what the client sent
	// before anything else, whatever the outcome.
	for i := range f.forward {
		x.Req.Header.Del(f.forward[i].name)
	}
	tok, state := f.token(x.Req)
	switch state {
	case none:
		x.Log.Blocked = "jwt:no_token"
		f.m.Refused(x.Log.Blocked)
		filter.Reply(x, 401, filter.StatusText(401), "WWW-Authenticate", "Bearer")
		return
	case malformed:
		f.refuse(x, "malformed", "the token is malformed")
		f.m.Refused(x.Log.Blocked)
		return
	}
	key := sha256.Sum256(tok)
	v := f.cache.get(key, x.Start)
	if v == nil {
		var refused bool
		if v, refused = f.verify(x, tok); refused {
			f.m.Refused(x.Log.Blocked)
			return
		}
		f.cache.put(key, v, x.Start)
	}
	for i := range f.forward {
		if v.values[i] != nil {
			x.Req.Header.Add(f.forward[i].header, v.values[i])
		}
	}
	x.Log.User = v.sub
	f.m.Allowed()
	next.Serve(x)
}

// verify checks a token the cache does not know, answering the client
// itself when it is refused.
func (f *Filter) verify(x *filter.Exchange, tok []byte) (v *verified, refused bool) {
	claims := jwt.MapClaims{}
	if _, err := f.parser.ParseWithClaims(string(tok), claims, f.keyfunc); err != nil {
		if errors.Is(err, errUnavailable) {
			x.Log.Blocked = "jwt:keys_unavailable"
			filter.Reply(x, 503, filter.StatusText(503))
			return nil, true
		}
		reason, desc := describe(err)
		f.refuse(x, reason, desc)
		return nil, true
	}
	if len(f.issuers) > 0 {
		iss, _ := claims["iss"].(string)
		if !slices.Contains(f.issuers, iss) {
			f.refuse(x, "issuer", "the token is not from an accepted issuer")
			return nil, true
		}
	}
	for i := range f.require {
		if !f.require[i].holds(claims[f.require[i].claim]) {
			x.Log.Blocked = "jwt:require:" + f.require[i].claim
			filter.Reply(x, 403, filter.StatusText(403), "WWW-Authenticate",
				`Bearer error="insufficient_scope", error_description="the token lacks a required claim value"`)
			return nil, true
		}
	}
	v = &verified{values: make([][]byte, len(f.forward))}
	for i := range f.forward {
		c, ok := claims[f.forward[i].claim]
		if !ok {
			continue
		}
		s, ok := headerValue(c)
		if !ok {
			f.refuse(x, "claim:"+f.forward[i].claim, "a forwarded claim holds characters a header cannot carry")
			return nil, true
		}
		v.values[i] = []byte(s)
	}
	v.sub, _ = claims["sub"].(string)
	// exp is required, so the parser has checked it is there.
	exp, _ := claims.GetExpirationTime()
	v.expires = exp.Add(f.leeway).UnixNano()
	return v, false
}

func (f *Filter) refuse(x *filter.Exchange, reason, desc string) {
	x.Log.Blocked = "jwt:" + reason
	filter.Reply(x, 401, filter.StatusText(401), "WWW-Authenticate",
		`Bearer error="invalid_token", error_description="`+desc+`"`)
}

// describe turns a parser error into a log reason and an error_description
// for the client: precise enough to fix a client, with no internal detail.
func describe(err error) (reason, desc string) {
	switch {
	case errors.Is(err, errNoKey):
		return "unknown_key", "no trusted key matches the token's kid and algorithm"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed", "the token is malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature", "the token's signature or algorithm is not accepted"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired", "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not_yet_valid", "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "issued_in_future", "the token was issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "audience", "the token is not for this audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing_claim", "the token lacks exp or aud"
	}
	return "invalid", "the token is invalid"
}

// holds reports whether claim v holds every required value. Strings match
// whole (or, for scope and scp, as one of their space-separated words);
// arrays match by element; numbers and booleans by their JSON text.
func (r *requirement) holds(v any) bool {
	for _, want := range r.values {
		if !has(v, want, r.spaced) {
			return false
		}
	}
	return true
}

func has(v any, want string, spaced bool) bool {
	switch t := v.(type) {
	case string:
		if t == want {
			return true
		}
		if spaced {
			for w := range strings.FieldsSeq(t) {
				if w == want {
					return true
				}
			}
		}
	case []any:
		for _, e := range t {
			if s, ok := scalar(e); ok && s == want {
				return true
			}
		}
	default:
		s, ok := scalar(v)
		return ok && s == want
	}
	return false
}

func scalar(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

// headerValue renders a claim for a header: scalars as text, arrays of
// scalars comma-separated, anything else as JSON. A value with control
// characters is refused rather than cleaned, since it is not what the
// backend would expect either way.
func headerValue(v any) (string, bool) {
	s, ok := scalar(v)
	if !ok {
		if arr, isArr := v.([]any); isArr {
			parts := make([]string, 0, len(arr))
			for _, e := range arr {
				p, ok := scalar(e)
				if !ok {
					parts = nil
					break
				}
				parts = append(parts, p)
			}
			if parts != nil || len(arr) == 0 {
				s, ok = strings.Join(parts, ","), true
			}
		}
		if !ok {
			b, err := json.Marshal(v)
			if err != nil {
				return "", false
			}
			s = string(b)
		}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", false
		}
	}
	return s, true
}
