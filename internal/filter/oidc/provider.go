package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/filter/jwtauth"
)

// provider is an OpenID provider, found through its discovery document
// (OpenID Connect Discovery 1.0 §4), which is fetched on first use and
// kept across reloads; a failed fetch is retried at most every
// retryInterval, so that a provider that is down is not hammered.
type provider struct {
	issuer string
	client *http.Client
	log    *slog.Logger

	mu       sync.Mutex
	meta     *metadata
	keys     *jwtauth.KeySet
	lastFail time.Time
}

const retryInterval = 5 * time.Second

type metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

func newProvider(issuer string, log *slog.Logger) *provider {
	return &provider{
		issuer: issuer,
		log:    log,
		client: &http.Client{
			Timeout:       10 * time.Second,
			Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Close stops the key set's refresh and drops idle connections.
func (p *provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys != nil {
		p.keys.Close()
	}
	p.client.CloseIdleConnections()
	return nil
}

var errProviderDown = errors.New("OpenID provider unavailable")

// discover returns the provider's endpoints and keys, fetching them first.
func (p *provider) discover(ctx context.Context) (*metadata, *jwtauth.KeySet, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.meta != nil {
		return p.meta, p.keys, nil
	}
	if time.Since(p.lastFail) < retryInterval {
		return nil, nil, errProviderDown
	}
	m, err := p.fetchMetadata(ctx)
	if err != nil {
		p.lastFail = time.Now()
		p.log.Warn("OpenID discovery failed", "issuer", p.issuer, "err", err)
		return nil, nil, errProviderDown
	}
	p.meta = m
	p.keys = jwtauth.NewKeySet(m.JWKSURI, p.log)
	return p.meta, p.keys, nil
}

func (p *provider) fetchMetadata(ctx context.Context) (*metadata, error) {
	u := strings.TrimSuffix(p.issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("discovery document: status %d", resp.StatusCode)
	}
	var m metadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("discovery document: %v", err)
	}
	// §4.3: the issuer in the document must be the one configured.
	if m.Issuer != p.issuer {
		return nil, fmt.Errorf("discovery document names issuer %q, not %q", m.Issuer, p.issuer)
	}
	for name, v := range map[string]string{"authorization_endpoint": m.AuthorizationEndpoint, "token_endpoint": m.TokenEndpoint, "jwks_uri": m.JWKSURI} {
		if err := checkEndpoint(v); err != nil {
			return nil, fmt.Errorf("discovery document: %s: %v", name, err)
		}
	}
	return &m, nil
}

// checkEndpoint requires https, except to loopback (tests, sidecars).
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname())) {
		return fmt.Errorf("%q must be https (plain http only to loopback)", s)
	}
	return nil
}

func loopback(h string) bool {
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}

// exchange trades an authorization code for the ID token (RFC 6749 §4.1.3,
// client_secret_basic, with the PKCE code_verifier of RFC 7636 §4.5).
func (p *provider) exchange(ctx context.Context, m *metadata, c *clientConfig, code, verifier string) (string, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.redirectURI},
		"code_verifier": {verifier},
	}
	req, err := http.NewRequestWithContext(ctx, "POST", m.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.clientSecret))
	resp, err := p.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("token endpoint: status %d, unreadable answer", resp.StatusCode)
	}
	if resp.StatusCode != 200 || body.IDToken == "" {
		return "", fmt.Errorf("token endpoint: status %d, error %q", resp.StatusCode, body.Error)
	}
	return body.IDToken, nil
}
