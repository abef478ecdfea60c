// Package oidc is the oidc middleware: browser login through an OpenID
// Connect provider with the authorization code flow and PKCE (RFC 7636,
// S256). A request without a session is sent to the provider; the
// provider sends the browser back to redirect_url's path, where gatehouse
// exchanges the code for an ID token, verifies it (signature through the
// provider's JWKS, issuer, audience, expiry, nonce) and sets a session
// cookie encrypted and authenticated with AES-256-GCM. Requests with a
// valid session go on with the configured claims in headers gatehouse sets.
package oidc

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/authmetrics"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/filewatch"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/jwtauth"
	"github.com/golang-jwt/jwt/v5"
)

type settings struct {
	Issuer           string            `yaml:"issuer"`
	ClientID         string            `yaml:"client_id"`
	ClientSecretFile string            `yaml:"client_secret_file"`
	RedirectURL      string            `yaml:"redirect_url"`
	Scopes           []string          `yaml:"scopes"`
	CookieName       string            `yaml:"cookie_name"`
	CookieSecretFile string            `yaml:"cookie_secret_file"`
	SessionTTL       time.Duration     `yaml:"session_ttl"`
	ForwardClaims    map[string]string `yaml:"forward_claims"`
}

// clientConfig is what the filter and the provider exchange need of the settings.
type clientConfig struct {
	clientID, clientSecret string
	redirectURI            string
	callbackPath           string
	scope                  string
	cookie, loginCookie    string
	secure                 bool
	ttl                    time.Duration
}

type forwarded struct {
	claim, name string
	header      []byte
}

// Filter is one oidc entry.
type Filter struct {
	c       clientConfig
	p       *provider
	seal    *sealer
	forward []forwarded
	parser  *jwt.Parser
	m       *authmetrics.Counter
}

// loginTTL bounds the time between leaving for the provider and coming back.
const loginTTL = 10 * time.Minute

// New builds an oidc filter from its settings.
func New(b *filter.Build) (filter.Filter, error) {
	var s settings
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	if err := checkEndpoint(s.Issuer); err != nil {
		return nil, b.Errorf(pos, "issuer", "issuer: %v", err)
	}
	if s.ClientID == "" {
		return nil, b.Errorf(pos, "client_id", "client_id is required")
	}
	secret, err := filewatch.ReadFile(s.ClientSecretFile)
	if err != nil || len(bytes.TrimSpace(secret)) == 0 {
		return nil, b.Errorf(pos, "client_secret_file", "client_secret_file: a file holding the client secret is required (%v)", err)
	}
	ru, err := url.Parse(s.RedirectURL)
	if err != nil || ru.Host == "" || (ru.Scheme != "https" && ru.Scheme != "http") || ru.RawQuery != "" || ru.Fragment != "" || !strings.HasPrefix(ru.Path, "/") {
		return nil, b.Errorf(pos, "redirect_url", "redirect_url must be the absolute http(s) URL registered at the provider, such as https://app.example/oauth2/callback, without query")
	}
	cookieKey, err := filewatch.ReadFile(s.CookieSecretFile)
	if err == nil && len(bytes.TrimSpace(cookieKey)) < 32 {
		err = errors.New("it must hold at least 32 bytes (head -c 32 /dev/urandom | base64)")
	}
	if err != nil {
		return nil, b.Errorf(pos, "cookie_secret_file", "cookie_secret_file: %v", err)
	}
	if s.CookieName == "" {
		s.CookieName = "gatehouse_session"
	}
	if !filter.ValidHeaderName(s.CookieName) {
		return nil, b.Errorf(pos, "cookie_name", "%q is not a valid cookie name", s.CookieName)
	}
	if s.SessionTTL == 0 {
		s.SessionTTL = 8 * time.Hour
	}
	scopes := s.Scopes
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile", "email"}
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	f := &Filter{c: clientConfig{
		clientID:     s.ClientID,
		clientSecret: string(bytes.TrimSpace(secret)),
		redirectURI:  s.RedirectURL,
		callbackPath: ru.EscapedPath(),
		scope:        strings.Join(scopes, " "),
		cookie:       s.CookieName,
		loginCookie:  s.CookieName + "_login",
		secure:       ru.Scheme == "https",
		ttl:          s.SessionTTL,
	}}
	if f.seal, err = newSealer(bytes.TrimSpace(cookieKey)); err != nil {
		return nil, err
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
	f.parser = jwt.NewParser(jwt.WithValidMethods(jwtauth.Asymmetric()), jwt.WithIssuer(s.Issuer),
		jwt.WithAudience(s.ClientID), jwt.WithExpirationRequired(), jwt.WithLeeway(time.Minute))
	f.p, err = filter.Keep(b.State, "oidc.provider:"+s.Issuer, func() (*provider, error) { return newProvider(s.Issuer, b.Log), nil })
	if err != nil {
		return nil, err
	}
	if f.m, err = authmetrics.For(b, "oidc"); err != nil {
		return nil, err
	}
	return f, nil
}

// Serve lets a request with a session through, answers the provider's
// callback, and sends everyone else to log in.
func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	for i := range f.forward {
		x.Req.Header.Del(f.forward[i].name)
	}
	if string(x.Req.Path) == f.c.callbackPath {
		f.callback(x)
		f.m.Refused(x.Log.Blocked)
		return
	}
	var s session
	if v := x.Req.Header.Cookie(f.c.cookie); v != nil &&
		f.seal.open("session", string(v), &s) == nil && x.Start.Unix() < s.Expires && len(s.Values) == len(f.forward) {
		for i := range f.forward {
			if s.Has[i] {
				x.Req.Header.Add(f.forward[i].header, []byte(s.Values[i]))
			}
		}
		x.Log.User = s.Sub
		f.m.Allowed()
		next.Serve(x)
		return
	}
	f.login(x)
	f.m.Refused(x.Log.Blocked)
}

// login sends the browser to the provider. Only GET and HEAD are sent: a
// form post would lose its body on the way, so it gets a 401 instead.
func (f *Filter) login(x *filter.Exchange) {
	x.Log.Blocked = "oidc:no_session"
	if m := string(x.Req.Method); m != "GET" && m != "HEAD" {
		filter.Reply(x, 401, "401 Unauthorized: log in first\n", "WWW-Authenticate", `Cookie realm="`+f.c.cookie+`"`)
		return
	}
	ctx, cancel := context.WithTimeout(x.Ctx, 10*time.Second)
	defer cancel()
	m, _, err := f.p.discover(ctx)
	if err != nil {
		x.Log.Blocked = "oidc:provider_unavailable"
		filter.Reply(x, 503, filter.StatusText(503))
		return
	}
	var l login
	for _, p := range []*string{&l.State, &l.Verifier, &l.Nonce} {
		if *p, err = randomString(); err != nil {
			filter.Reply(x, 503, filter.StatusText(503))
			return
		}
	}
	l.URI = string(x.Req.Path)
	if x.Req.HasQuery {
		l.URI += "?" + string(x.Req.Query)
	}
	l.Expires = x.Start.Add(loginTTL).Unix()
	sealed, err := f.seal.seal("login", &l)
	if err != nil {
		filter.Reply(x, 503, filter.StatusText(503))
		return
	}
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {f.c.clientID},
		"redirect_uri":          {f.c.redirectURI},
		"scope":                 {f.c.scope},
		"state":                 {l.State},
		"nonce":                 {l.Nonce},
		"code_challenge":        {challenge(l.Verifier)},
		"code_challenge_method": {"S256"},
	}
	sep := "?"
	if strings.Contains(m.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	f.redirect(x, m.AuthorizationEndpoint+sep+q.Encode(), f.cookieLine(f.c.loginCookie, sealed, int(loginTTL/time.Second)))
}

// callback finishes a login: state and login cookie checked, code
// exchanged, ID token verified, session cookie set.
func (f *Filter) callback(x *filter.Exchange) {
	q, _ := url.ParseQuery(string(x.Req.Query))
	var l login
	v := x.Req.Header.Cookie(f.c.loginCookie)
	if v == nil || f.seal.open("login", string(v), &l) != nil || x.Start.Unix() >= l.Expires {
		f.fail(x, 400, "login_expired", "400 Bad Request: the login expired or was started elsewhere; go back and try again\n")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.State)) != 1 {
		f.fail(x, 400, "bad_state", "400 Bad Request: the login does not match this browser's; go back and try again\n")
		return
	}
	if q.Get("error") != "" || q.Get("code") == "" {
		f.fail(x, 403, "refused", "403 Forbidden: the identity provider did not log you in\n")
		return
	}
	ctx, cancel := context.WithTimeout(x.Ctx, 10*time.Second)
	defer cancel()
	m, keys, err := f.p.discover(ctx)
	if err != nil {
		f.fail(x, 503, "provider_unavailable", filter.StatusText(503))
		return
	}
	raw, err := f.p.exchange(ctx, m, &f.c, q.Get("code"), l.Verifier)
	if err != nil {
		f.p.log.Warn("OpenID code exchange failed", "err", err)
		f.fail(x, 502, "code_exchange", "502 Bad Gateway: the login could not be completed\n")
		return
	}
	claims := jwt.MapClaims{}
	if _, err := f.parser.ParseWithClaims(raw, claims, keys.Keyfunc); err != nil {
		f.p.log.Warn("OpenID ID token refused", "err", err)
		f.fail(x, 502, "id_token", "502 Bad Gateway: the login could not be completed\n")
		return
	}
	if nonce, _ := claims["nonce"].(string); subtle.ConstantTimeCompare([]byte(nonce), []byte(l.Nonce)) != 1 {
		f.fail(x, 502, "nonce", "502 Bad Gateway: the login could not be completed\n")
		return
	}
	s := session{Expires: x.Start.Add(f.c.ttl).Unix(), Values: make([]string, len(f.forward)), Has: make([]bool, len(f.forward))}
	s.Sub, _ = claims["sub"].(string)
	for i := range f.forward {
		c, ok := claims[f.forward[i].claim]
		if !ok {
			continue
		}
		if s.Values[i], ok = jwtauth.HeaderValue(c); !ok {
			f.fail(x, 502, "claim", "502 Bad Gateway: the login could not be completed\n")
			return
		}
		s.Has[i] = true
	}
	sealed, err := f.seal.seal("session", &s)
	if err != nil {
		f.fail(x, 503, "seal", filter.StatusText(503))
		return
	}
	x.Log.User = s.Sub
	f.redirect(x, localURI(l.URI), f.cookieLine(f.c.cookie, sealed, int(f.c.ttl/time.Second)), f.cookieLine(f.c.loginCookie, "", -1))
}

func (f *Filter) fail(x *filter.Exchange, status int, reason, body string) {
	x.Log.Blocked = "oidc:" + reason
	filter.Reply(x, status, body, "Cache-Control", "no-store")
}

// redirect answers 302 to location with the given Set-Cookie lines.
func (f *Filter) redirect(x *filter.Exchange, location string, cookies ...string) {
	h := exchange.Headers{
		{Name: []byte("Location"), Value: []byte(location)},
		{Name: []byte("Cache-Control"), Value: []byte("no-store")},
	}
	for _, c := range cookies {
		h = append(h, exchange.Header{Name: []byte("Set-Cookie"), Value: []byte(c)})
	}
	x.W.WriteHead(302, nil, h, 0)
	x.W.Finish(nil)
}

// cookieLine is a Set-Cookie value; maxAge < 0 deletes the cookie.
// SameSite=Lax lets the provider's top-level redirect back carry the
// login cookie, and keeps the session off cross-site subrequests.
func (f *Filter) cookieLine(name, value string, maxAge int) string {
	if maxAge < 0 {
		maxAge = 0
	}
	s := name + "=" + value + "; Path=/; Max-Age=" + strconv.Itoa(maxAge) + "; HttpOnly; SameSite=Lax"
	if f.c.secure {
		s += "; Secure"
	}
	return s
}

// localURI keeps a return address on this site: a path, not "//host" or
// "/\host" which browsers read as another host.
func localURI(u string) string {
	if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") || strings.HasPrefix(u, "/\\") {
		return "/"
	}
	return u
}
