// Package botfilter is the bot filtering middleware: user-agent deny and
// allow lists, crawlers admitted only when their address's reverse DNS
// proves who runs them, and a JavaScript/cookie challenge for suspect
// clients (no third-party service: a signed, expiring cookie).
//
//	middleware:
//	  - bot_filter:
//	      deny_user_agents: ["~(?i)badbot", "curl"]
//	      verified_crawlers: [{user_agent: "~Googlebot", rdns_suffixes: [.googlebot.com, .google.com]}]
//	      challenge: {enabled: true, secret_file: /etc/gatehouse/challenge.key, ttl: 1h}
//
// Order of checks: allow list (let through), deny list (403), claimed
// crawler (let through only if verified, else 403), challenge (when the
// client is suspect and has no valid cookie: the challenge page, 403).
package botfilter

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

type settings struct {
	DenyUserAgents   []string         `yaml:"deny_user_agents"`
	AllowUserAgents  []string         `yaml:"allow_user_agents"`
	VerifiedCrawlers []crawlerSetting `yaml:"verified_crawlers"`
	// Resolver is the DNS server (host:port) for reverse DNS checks; the
	// first nameserver of /etc/resolv.conf when empty.
	Resolver             string          `yaml:"resolver"`
	LookupTimeout        time.Duration   `yaml:"lookup_timeout"`
	MaxConcurrentLookups int             `yaml:"max_concurrent_lookups"`
	CacheTTL             time.Duration   `yaml:"cache_ttl"`
	CacheSize            int             `yaml:"cache_size"`
	Challenge            challengeConfig `yaml:"-"`
	ChallengeNode        *yaml.Node      `yaml:"challenge"`
}

type crawlerSetting struct {
	UserAgent    string   `yaml:"user_agent"`
	RDNSSuffixes []string `yaml:"rdns_suffixes"`
}

// challengeConfig is `challenge:` — a mapping, or a plain true/false.
type challengeConfig struct {
	Enabled             bool          `yaml:"enabled"`
	SecretFile          string        `yaml:"secret_file"`
	TTL                 time.Duration `yaml:"ttl"`
	CookieName          string        `yaml:"cookie_name"`
	Clients             string        `yaml:"clients"` // suspect (default) | all
	ChallengeUserAgents []string      `yaml:"challenge_user_agents"`
}

// Filter is one bot_filter entry.
type Filter struct {
	deny, allow *uaList
	crawlers    []crawler
	ver         *verifier
	log         *slog.Logger

	challenge    bool
	challengeAll bool
	suspectUA    *uaList
	sign         *signer
	ttl          time.Duration
	cookie       string
}

type crawler struct {
	ua       *uaList
	suffixes []string
	key      string
}

// validCookieName: 1 to 64 letters, digits, _ or -. (A loop, not a
// package-level regexp: compiling that at start-up cost every process
// memory, bot_filter configured or not.)
func validCookieName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validDomain: lower-case dot-separated labels of 1 to 63 letters, digits,
// _ or -, none starting or ending with - (no trailing dot).
func validDomain(s string) bool {
	for label := range strings.SplitSeq(s, ".") {
		if len(label) < 1 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// New is the Factory of the `bot_filter` middleware.
func New(b *filter.Build) (filter.Filter, error) {
	var s settings
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	f := &Filter{log: b.Log}
	lists := []struct {
		field string
		in    []string
		out   **uaList
	}{{"deny_user_agents", s.DenyUserAgents, &f.deny}, {"allow_user_agents", s.AllowUserAgents, &f.allow}}
	for _, l := range lists {
		ul, i, err := compileUAList(l.in)
		if err != nil {
			return nil, b.Errorf(pos, fmt.Sprintf("%s[%d]", l.field, i), "%v", err)
		}
		*l.out = ul
	}
	for i, c := range s.VerifiedCrawlers {
		field := fmt.Sprintf("verified_crawlers[%d]", i)
		ul, _, err := compileUAList([]string{c.UserAgent})
		if err != nil {
			return nil, b.Errorf(pos, field+".user_agent", "%v", err)
		}
		if len(c.RDNSSuffixes) == 0 {
			return nil, b.Errorf(pos, field+".rdns_suffixes", "a verified crawler needs the domain suffixes its reverse DNS must end in")
		}
		var sufs []string
		for j, sfx := range c.RDNSSuffixes {
			sfx = strings.ToLower(strings.TrimPrefix(strings.TrimSuffix(sfx, "."), "."))
			if len(sfx) > 253 || !validDomain(sfx) {
				return nil, b.Errorf(pos, fmt.Sprintf("%s.rdns_suffixes[%d]", field, j), "%q is not a domain name", c.RDNSSuffixes[j])
			}
			sufs = append(sufs, sfx)
		}
		slices.Sort(sufs)
		f.crawlers = append(f.crawlers, crawler{ua: ul, suffixes: sufs, key: strings.Join(sufs, ",")})
	}
	if err := s.defaults(b, pos); err != nil {
		return nil, err
	}
	if len(f.crawlers) > 0 {
		resolver := s.Resolver
		if resolver == "" {
			cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
			if err != nil || len(cc.Servers) == 0 {
				return nil, b.Errorf(pos, "resolver", "no resolver given and none found in /etc/resolv.conf")
			}
			resolver = net.JoinHostPort(cc.Servers[0], cc.Port)
		} else if _, _, err := net.SplitHostPort(resolver); err != nil {
			return nil, b.Errorf(pos, "resolver", "must be host:port, not %q", resolver)
		}
		key := fmt.Sprintf("bot_filter:rdns:%s:%v:%v:%d:%d", resolver, s.LookupTimeout, s.CacheTTL, s.MaxConcurrentLookups, s.CacheSize)
		f.ver, _ = filter.Keep(b.State, key, func() (*verifier, error) {
			return newVerifier(resolver, s.LookupTimeout, s.CacheTTL, s.MaxConcurrentLookups, s.CacheSize), nil
		})
	}
	if err := f.setupChallenge(b, pos, &s.Challenge); err != nil {
		return nil, err
	}
	if f.deny.empty() && f.allow.empty() && len(f.crawlers) == 0 && !f.challenge {
		return nil, b.Errorf(pos, "", "bot_filter has nothing to do: give deny_user_agents, verified_crawlers or challenge")
	}
	return f, nil
}

func (s *settings) defaults(b *filter.Build, pos config.Positions) error {
	at := func(f string) bool { return pos.Has(b.Entry.Path + "." + f) }
	if !at("lookup_timeout") {
		s.LookupTimeout = 2 * time.Second
	}
	if !at("max_concurrent_lookups") {
		s.MaxConcurrentLookups = 32
	}
	if !at("cache_ttl") {
		s.CacheTTL = time.Hour
	}
	if !at("cache_size") {
		s.CacheSize = 65536
	}
	switch {
	case s.LookupTimeout <= 0 || s.LookupTimeout > 30*time.Second:
		return b.Errorf(pos, "lookup_timeout", "must be between 1ms and 30s")
	case s.MaxConcurrentLookups < 1:
		return b.Errorf(pos, "max_concurrent_lookups", "must be at least 1")
	case s.CacheTTL <= 0:
		return b.Errorf(pos, "cache_ttl", "must be positive")
	case s.CacheSize < 1:
		return b.Errorf(pos, "cache_size", "must be at least 1")
	}
	// challenge: true | false | {mapping}
	s.Challenge = challengeConfig{}
	if n := s.ChallengeNode; n != nil {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
			s.Challenge.Enabled = n.Value == "true"
		} else {
			cp, err := config.Decode(b.Config.File, b.Entry.Path+".challenge", n, &s.Challenge)
			if err != nil {
				return err
			}
			if !cp.Has(b.Entry.Path + ".challenge.enabled") {
				s.Challenge.Enabled = true // writing the section turns it on
			}
		}
	}
	return nil
}

func (f *Filter) setupChallenge(b *filter.Build, pos config.Positions, c *challengeConfig) error {
	if !c.Enabled {
		return nil
	}
	if c.TTL == 0 {
		c.TTL = time.Hour
	}
	if c.CookieName == "" {
		c.CookieName = "gatehouse_challenge"
	}
	if c.Clients == "" {
		c.Clients = "suspect"
	}
	switch {
	case c.SecretFile == "":
		return b.Errorf(pos, "challenge.secret_file", "the challenge needs a secret: a file of at least 32 random bytes (e.g. head -c 32 /dev/urandom > challenge.key)")
	case c.TTL < time.Minute || c.TTL > 30*24*time.Hour:
		return b.Errorf(pos, "challenge.ttl", "must be between 1m and 720h")
	case !validCookieName(c.CookieName):
		return b.Errorf(pos, "challenge.cookie_name", "must be 1 to 64 letters, digits, _ or -")
	case c.Clients != "suspect" && c.Clients != "all":
		return b.Errorf(pos, "challenge.clients", "must be suspect or all, not %q", c.Clients)
	}
	path := c.SecretFile
	if !filepath.IsAbs(path) { // relative to the configuration file
		path = filepath.Join(filepath.Dir(b.Config.File), path)
	}
	secret, err := os.ReadFile(path)
	if err != nil {
		return b.Errorf(pos, "challenge.secret_file", "cannot read the secret: %v", err)
	}
	if len(secret) < 32 {
		return b.Errorf(pos, "challenge.secret_file", "the secret is %d bytes; at least 32 are needed", len(secret))
	}
	ul, i, err := compileUAList(c.ChallengeUserAgents)
	if err != nil {
		return b.Errorf(pos, fmt.Sprintf("challenge.challenge_user_agents[%d]", i), "%v", err)
	}
	f.challenge, f.challengeAll, f.suspectUA = true, c.Clients == "all", ul
	f.sign, f.ttl, f.cookie = newSigner(secret), c.TTL, c.CookieName
	return nil
}

// Serve applies the checks in order (see the package comment).
func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	ua := x.Req.Header.Get("User-Agent")
	if f.allow.match(ua) {
		next.Serve(x)
		return
	}
	if f.deny.match(ua) {
		f.refuse(x, "deny_user_agent", ua)
		return
	}
	for i := range f.crawlers {
		c := &f.crawlers[i]
		if !c.ua.match(ua) {
			continue
		}
		if f.ver.verify(x.Ctx, x.ClientIP, c.suffixes, c.key) {
			next.Serve(x)
			return
		}
		f.refuse(x, "unverified_crawler", ua)
		return
	}
	if f.challenge && (f.challengeAll || len(ua) == 0 || f.suspectUA.match(ua)) {
		if tok := x.Req.Header.Cookie(f.cookie); tok == nil || !f.sign.valid(tok, time.Now(), x.ClientIP, ua) {
			f.challengePage(x, ua)
			return
		}
	}
	next.Serve(x)
}

func (f *Filter) refuse(x *filter.Exchange, why string, ua []byte) {
	x.Log.Blocked = "bot_filter:" + why
	f.log.Info("bot_filter", "action", why, "client", x.ClientIP.String(), "user_agent", string(ua), "route", x.Route)
	filter.Reply(x, 403, filter.StatusText(403), "Cache-Control", "no-store")
}

// challengePage answers with the challenge (status 403: a client that does
// not run it never gets further).
func (f *Filter) challengePage(x *filter.Exchange, ua []byte) {
	x.Log.Blocked = "bot_filter:challenge"
	tok := f.sign.token(time.Now().Add(f.ttl), x.ClientIP, ua)
	body := page(f.cookie, tok, f.ttl, x.Req.TLS)
	h := exchange.Headers{
		{Name: []byte("Content-Type"), Value: []byte("text/html; charset=utf-8")},
		{Name: []byte("Cache-Control"), Value: []byte("no-store")},
		{Name: []byte("X-Robots-Tag"), Value: []byte("noindex")},
		{Name: []byte("Content-Security-Policy"), Value: []byte("default-src 'none'; script-src 'unsafe-inline'")},
	}
	if x.W.WriteHead(403, nil, h, int64(len(body))) == nil && string(x.Req.Method) != "HEAD" {
		x.W.Write(body)
	}
	x.W.Finish(nil)
}
