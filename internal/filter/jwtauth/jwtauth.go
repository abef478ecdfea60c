// Package jwtauth is the jwt middleware: it lets a request through when it
// carries a JSON Web Token (RFC 7519) signed by a key gatehouse trusts —
// from a JWKS URL (fetched, cached across reloads, refreshed), a JWKS file,
// or an HMAC secret file — that is current, from an accepted issuer, for an
// accepted audience, and has the claims the route requires. Selected claims
// are forwarded to the backend in headers that clients cannot forge.
// Signatures are checked by github.com/golang-jwt/jwt/v5.
package jwtauth

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/authmetrics"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/filewatch"
	"github.com/golang-jwt/jwt/v5"
	"gopkg.in/yaml.v3"
)

type settings struct {
	JWKSURL        string                `yaml:"jwks_url"`
	JWKSFile       string                `yaml:"jwks_file"`
	HMACSecretFile string                `yaml:"hmac_secret_file"`
	Issuers        []string              `yaml:"issuers"`
	Audiences      []string              `yaml:"audiences"`
	Algorithms     []string              `yaml:"algorithms"`
	Leeway         time.Duration         `yaml:"leeway"`
	From           string                `yaml:"from"`
	ForwardClaims  map[string]string     `yaml:"forward_claims"`
	Require        map[string]*yaml.Node `yaml:"require"`
	JWKSRefresh    time.Duration         `yaml:"jwks_refresh"`
	JWKSMinRefresh time.Duration         `yaml:"jwks_min_refresh"`
}

var (
	asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	symmetric  = []string{"HS256", "HS384", "HS512"}
	// RFC 7518 §3.2: an HMAC key at least as long as the hash.
	hmacMin = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}
)

// Filter is one jwt entry.
type Filter struct {
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
	issuers []string
	keys    keySource
	leeway  time.Duration
	cache   tokenCache
	m       *authmetrics.Counter

	from    source
	forward []forwarded
	require []requirement
}

type source struct {
	kind int // fromHeader, fromNamedHeader, fromCookie, fromQuery
	name string
}

const (
	fromHeader = iota
	fromNamedHeader
	fromCookie
	fromQuery
)

// forwarded is one forward_claims entry.
type forwarded struct {
	claim  string
	name   string // the header, for Del
	header []byte // the header, for Add
}

// New builds a jwt filter from its settings.
func New(b *filter.Build) (filter.Filter, error) {
	var s settings
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	f := &Filter{issuers: s.Issuers}
	f.keyfunc = f.key
	var keys keySource
	given := 0
	for _, v := range []string{s.JWKSURL, s.JWKSFile, s.HMACSecretFile} {
		if v != "" {
			given++
		}
	}
	if given != 1 {
		return nil, b.Errorf(pos, "", "jwt needs exactly one of jwks_url, jwks_file and hmac_secret_file (%d given)", given)
	}
	allowed := asymmetric
	switch {
	case s.JWKSURL != "":
		u, err := url.Parse(s.JWKSURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, b.Errorf(pos, "jwks_url", "jwks_url %q is not an http(s) URL", s.JWKSURL)
		}
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			return nil, b.Errorf(pos, "jwks_url", "jwks_url must be https (plain http is allowed to loopback only): anyone on the path could replace the keys")
		}
		refresh := defaultDuration(s.JWKSRefresh, 10*time.Minute)
		minRefresh := defaultDuration(s.JWKSMinRefresh, 10*time.Second)
		if minRefresh > refresh {
			return nil, b.Errorf(pos, "jwks_min_refresh", "jwks_min_refresh (%v) is longer than jwks_refresh (%v)", minRefresh, refresh)
		}
		key := fmt.Sprintf("jwt.jwks:%s|%v|%v", s.JWKSURL, refresh, minRefresh)
		r, err := filter.Keep(b.State, key, func() (*remote, error) {
			return newRemote(s.JWKSURL, refresh, minRefresh, b.Log), nil
		})
		if err != nil {
			return nil, err
		}
		keys.remote = r
	case s.JWKSFile != "":
		data, err := filewatch.ReadFile(s.JWKSFile)
		if err != nil {
			return nil, b.Errorf(pos, "jwks_file", "%v", err)
		}
		if keys.static, err = parseJWKS(data); err != nil {
			return nil, b.Errorf(pos, "jwks_file", "%s: %v", s.JWKSFile, err)
		}
	default:
		data, err := filewatch.ReadFile(s.HMACSecretFile)
		if err != nil {
			return nil, b.Errorf(pos, "hmac_secret_file", "%v", err)
		}
		keys.secret = bytes.TrimRight(data, "\r\n")
		allowed = symmetric
	}
	f.keys = keys

	if keys.secret != nil && len(keys.secret) < 32 {
		return nil, b.Errorf(pos, "hmac_secret_file", "the secret is %d bytes; HMAC needs at least 32", len(keys.secret))
	}
	algs := s.Algorithms
	if len(algs) == 0 {
		algs = allowed
		if keys.secret != nil {
			// By default, the HMAC algorithms the secret is long enough for.
			algs = nil
			for _, a := range symmetric {
				if len(keys.secret) >= hmacMin[a] {
					algs = append(algs, a)
				}
			}
		}
	}
	for i, a := range algs {
		if !slices.Contains(allowed, a) {
			return nil, b.Errorf(pos, fmt.Sprintf("algorithms[%d]", i), "algorithm %q cannot be used with %s; these can: %s",
				a, keySourceName(s), strings.Join(allowed, ", "))
		}
		if need := hmacMin[a]; keys.secret != nil && len(keys.secret) < need {
			return nil, b.Errorf(pos, "hmac_secret_file", "the secret is %d bytes; %s needs at least %d", len(keys.secret), a, need)
		}
	}
	if s.Leeway > 5*time.Minute {
		return nil, b.Errorf(pos, "leeway", "leeway must be at most 5m: clocks that far apart need fixing")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithLeeway(s.Leeway), jwt.WithExpirationRequired(), jwt.WithIssuedAt()}
	if len(s.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(s.Audiences...))
	}
	f.parser = jwt.NewParser(opts...)
	f.leeway = s.Leeway

	if f.from, err = parseFrom(s.From); err != nil {
		return nil, b.Errorf(pos, "from", "%v", err)
	}
	claims := make([]string, 0, len(s.ForwardClaims))
	for c := range s.ForwardClaims {
		claims = append(claims, c)
	}
	slices.Sort(claims)
	for _, c := range claims {
		h := s.ForwardClaims[c]
		if !filter.ValidHeaderName(h) {
			return nil, b.Errorf(pos, config.KeyPath("forward_claims", c), "%q is not a valid header name", h)
		}
		f.forward = append(f.forward, forwarded{claim: c, name: h, header: []byte(h)})
	}
	if f.require, err = requirements(b, s.Require); err != nil {
		return nil, err
	}
	if f.m, err = authmetrics.For(b, "jwt"); err != nil {
		return nil, err
	}
	return f, nil
}

func keySourceName(s settings) string {
	if s.HMACSecretFile != "" {
		return "hmac_secret_file"
	}
	return "a key set (HMAC secrets are never taken from a JWKS)"
}

func defaultDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// parseFrom reads `header`, `header:NAME`, `cookie:NAME` or `query:NAME`.
func parseFrom(s string) (source, error) {
	kind, name, hasName := strings.Cut(s, ":")
	switch {
	case s == "" || s == "header":
		return source{kind: fromHeader}, nil
	case kind == "header" && filter.ValidHeaderName(name):
		return source{kind: fromNamedHeader, name: name}, nil
	case kind == "cookie" && hasName && name != "" && filter.ValidHeaderName(name):
		return source{kind: fromCookie, name: name}, nil
	case kind == "query" && hasName && name != "":
		return source{kind: fromQuery, name: name}, nil
	}
	return source{}, fmt.Errorf("from must be header (Authorization: Bearer), header:NAME, cookie:NAME or query:NAME, not %q", s)
}

// requirements decodes `require: {claim: value | [values]}`.
func requirements(b *filter.Build, req map[string]*yaml.Node) ([]requirement, error) {
	names := make([]string, 0, len(req))
	for c := range req {
		names = append(names, c)
	}
	slices.Sort(names)
	var out []requirement
	var errs config.Errors
	for _, c := range names {
		n := req[c]
		path := b.Entry.Path + "." + config.KeyPath("require", c)
		var values []string
		var err error
		if n.Kind == yaml.SequenceNode {
			_, err = config.Decode(b.Config.File, path, n, &values)
		} else {
			var v string
			_, err = config.Decode(b.Config.File, path, n, &v)
			values = []string{v}
		}
		if err != nil {
			errs = append(errs, err.(config.Errors)...)
			continue
		}
		if len(values) == 0 || slices.Contains(values, "") {
			errs = append(errs, &config.Error{File: b.Config.File, Line: n.Line, Col: n.Column, Path: path, Msg: "a required claim needs a non-empty value or list of values"})
			continue
		}
		out = append(out, requirement{claim: c, values: values, spaced: c == "scope" || c == "scp"})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// Errors the key lookup gives the parser, mapped to what the client is told.
var (
	errNoKey       = errors.New("no key for the token's kid and alg")
	errUnavailable = errors.New("signing keys unavailable")
)

// key is the jwt.Keyfunc: the key that may verify t, chosen by kid and
// alg. HMAC secrets only ever verify HS tokens and key-set keys only the
// algorithms of their kind, which is what defeats algorithm confusion.
func (f *Filter) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	ks := &f.keys
	switch {
	case ks.secret != nil:
		if strings.HasPrefix(alg, "HS") {
			return ks.secret, nil
		}
	case ks.static != nil:
		if k, ok := ks.static.find(kid, alg); ok {
			return k, nil
		}
	default:
		k, unavailable := ks.remote.find(kid, alg)
		if k != nil {
			return k, nil
		}
		if unavailable {
			return nil, errUnavailable
		}
	}
	return nil, errNoKey
}

// keySource is where verification keys come from: exactly one is set.
type keySource struct {
	secret []byte
	static *keySet
	remote *remote
}

func loopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1" || strings.HasPrefix(h, "127.")
}
