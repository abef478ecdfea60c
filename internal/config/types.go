// Package config loads, decodes and validates gatehouse's configuration file.
// Every value keeps the position it was written at, so that any error can name
// FILE:LINE:COL and the field path (see ../shared/spec/interface.md).
package config

import (
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is one decoded and validated configuration file.
type Config struct {
	// File is the path the configuration was read from ("" for embedded configs).
	File string `yaml:"-"`
	// Hash is a hex SHA-256 of the file's bytes, to tell reloads apart.
	Hash string `yaml:"-"`

	Listeners       []Listener           `yaml:"listeners"`
	Admin           *Admin               `yaml:"admin"`
	TrustedProxies  []netip.Prefix       `yaml:"trusted_proxies"`
	ShutdownTimeout time.Duration        `yaml:"shutdown_timeout"` // default 30s
	Limits          Limits               `yaml:"limits"`
	AccessLog       AccessLog            `yaml:"access_log"`
	RequestID       RequestID            `yaml:"request_id"`
	Tracing         *Tracing             `yaml:"tracing"`
	Upstreams       map[string]*Upstream `yaml:"upstreams"`
	Sites           []Site               `yaml:"sites"`
	// Cluster is the state several gatehouse instances share.
	Cluster Cluster `yaml:"cluster"`
	// Metrics says whether requests are counted for /metrics and the
	// dashboard's charts.
	Metrics Metrics `yaml:"metrics"`

	// HideResponseHeaders are backend response fields never passed to
	// clients (software banners); nil after defaults means the default list.
	HideResponseHeaders []string `yaml:"hide_response_headers"`
	// SendVia adds "Via: 1.1 gatehouse" to proxied responses in place of the
	// backends' own Via (which is always dropped: it names inside hosts).
	SendVia bool `yaml:"send_via"`

	// Warnings are settings that are valid but deserve a word in the log
	// when the configuration is loaded (insecure_skip_verify), in the same
	// FILE:LINE:COL: path: message form as errors, ordered by position.
	Warnings []*Error `yaml:"-"`
}

// Cluster configures what a fleet of gatehouse instances shares (rate-limit
// counters, cache purges) through Redis.
type Cluster struct {
	Redis *Redis `yaml:"redis"`
}

// Redis is how to reach the fleet's Redis server.
type Redis struct {
	Pos          Pos           `yaml:"-"`
	Addr         string        `yaml:"addr"` // host:port, required
	Username     string        `yaml:"username"`
	PasswordFile string        `yaml:"password_file"` // the password, read at load; never inline in the file
	DB           int           `yaml:"db"`
	DialTimeout  time.Duration `yaml:"dial_timeout"` // default 1s
	// Timeout bounds each command: a slow Redis must not hold requests up.
	Timeout time.Duration `yaml:"timeout"` // default 100ms
	// Prefix starts every key gatehouse writes, so that fleets may share a server.
	Prefix string `yaml:"prefix"` // default "gatehouse:"
	TLS    bool   `yaml:"tls"`
}

// Pos is where a value was written in the file.
type Pos struct{ Line, Col int }

type Listener struct {
	Pos  Pos    `yaml:"-"`
	Addr string `yaml:"addr"` // host:port, required
	H2C  bool   `yaml:"h2c"`

	// MaxConnections caps the open client connections; at the cap the
	// listener stops accepting (the kernel's backlog holds new ones) and
	// closes idle keep-alive connections to make room. 0: no cap.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP caps one client address's open connections
	// (IPv6 grouped by /64); more are closed at once. 0: no cap.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxRequestsPerIP caps one client address's requests in progress, over
	// all its connections and HTTP/2 streams; more get 429. 0: no cap.
	MaxRequestsPerIP int `yaml:"max_requests_per_ip"`
	// ProxyProtocol reads a PROXY protocol v1 or v2 header first on every
	// connection from ProxyProtocolFrom (every peer when that is empty).
	ProxyProtocol     bool           `yaml:"proxy_protocol"`
	ProxyProtocolFrom []netip.Prefix `yaml:"proxy_protocol_from"`
}

type Admin struct {
	Pos  Pos    `yaml:"-"`
	Addr string `yaml:"addr"` // host:port; not loopback only with TokenFile
	// TokenFile holds the bearer token that every admin request but
	// GET /healthz and the dashboard's static page must carry. Read at load.
	TokenFile string `yaml:"token_file"`
	Token     string `yaml:"-"` // the file's content, surrounding white space removed
}

// Metrics turns per-request metrics on or off. Scrape-time metrics
// (upstream health, connections, reloads, Go runtime) are always served.
type Metrics struct {
	Enabled bool `yaml:"enabled"` // default true
}

type Limits struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"` // default 10s
	IdleTimeout       time.Duration `yaml:"idle_timeout"`        // default 120s
	BodyReadTimeout   time.Duration `yaml:"body_read_timeout"`   // default 60s
	MaxHeaderBytes    Size          `yaml:"max_header_bytes"`    // default 64KiB
	MaxBodyBytes      Size          `yaml:"max_body_bytes"`      // 0 = unlimited
	// WriteTimeout bounds each wait for a client to take response bytes
	// (nginx send_timeout); a client that stops reading is cut. 0: none.
	WriteTimeout time.Duration `yaml:"write_timeout"` // default 60s
	// MinBodyRate is the slowest request body accepted, in bytes per
	// second, measured over BodyRateWindow of waiting for the client; a
	// slower one gets 408 and the connection is closed. 0: off.
	MinBodyRate    Size          `yaml:"min_body_rate"`
	BodyRateWindow time.Duration `yaml:"body_rate_window"` // default 10s
}

// Size is a byte count written as 123, "64KiB", "1MB", ...
type Size int64

type AccessLog struct {
	Enabled bool   `yaml:"enabled"` // default true
	Output  string `yaml:"output"`  // stderr (default) | stdout | file path
	Format  string `yaml:"format"`  // json (default) | combined | common
	// Fields, for the json format, lists the fields to write, in order
	// (names of observe.Fields, or header:NAME for a request header).
	Fields []string `yaml:"fields"`
}

// RequestID is the identifier every request carries to the backend and the
// access log.
type RequestID struct {
	Enabled bool   `yaml:"enabled"` // default true
	Header  string `yaml:"header"`  // default X-Request-ID
	// TrustIncoming keeps a well-formed identifier the client (or a proxy in
	// front) sent; false: always a new one.
	TrustIncoming bool `yaml:"trust_incoming"` // default true
}

// Tracing exports OpenTelemetry spans over OTLP/HTTP.
type Tracing struct {
	Pos          Pos               `yaml:"-"`
	OTLPEndpoint string            `yaml:"otlp_endpoint"` // e.g. http://127.0.0.1:4318 (required)
	SampleRatio  float64           `yaml:"sample_ratio"`  // default 1; parents' decisions are followed
	ServiceName  string            `yaml:"service_name"`  // default gatehouse
	Headers      map[string]string `yaml:"headers"`       // sent with each export (an API key, say)
}

type Upstream struct {
	Pos          Pos      `yaml:"-"`
	Name         string   `yaml:"-"` // the key under upstreams:
	Targets      []Target `yaml:"targets"`
	Balance      string   `yaml:"balance"` // default round_robin
	HashKey      string   `yaml:"hash_key"`
	PreserveHost bool     `yaml:"preserve_host"`
	Timeouts     Timeouts `yaml:"timeouts"`

	Health  Health   `yaml:"health"`
	Retries Retries  `yaml:"retries"` // always set: defaults retry connect failures once
	Backup  []Target `yaml:"backup"`  // used only when every target is down; same syntax as targets

	Transport         string       `yaml:"transport"`            // h1 (default) | h2 (https targets only) | h2c (http targets only)
	TLS               *UpstreamTLS `yaml:"tls"`                  // nil: system roots, no client certificate; only with https targets
	MaxIdlePerTarget  int          `yaml:"max_idle_per_target"`  // default 256; 0 keeps no idle connection
	MaxConnsPerTarget int          `yaml:"max_conns_per_target"` // default 0 = unlimited; requests in flight per target
	// Queue holds requests while every target is at MaxConnsPerTarget.
	Queue Queue `yaml:"queue"`
	// RewriteLocation rewrites Location, Content-Location and Refresh
	// URLs that point at a target to the address the client used.
	RewriteLocation bool          `yaml:"rewrite_location"`
	ResolveInterval time.Duration `yaml:"resolve_interval"` // default 30s; used by dns+ and srv+ targets
}

// Queue is where requests wait for a free slot of a pool whose targets are
// all at max_conns_per_target: at most Size of them, each for at most
// Timeout; beyond either the answer is 503.
type Queue struct {
	Size    int           `yaml:"size"`    // default 0: no waiting
	Timeout time.Duration `yaml:"timeout"` // default 5s
}

// Target is written either as a URL string or as {url, weight}.
type Target struct {
	Pos    Pos      `yaml:"-"`
	URL    *url.URL `yaml:"url"`    // SCHEME://host[:port][/base]; see Discovery for the schemes
	Weight int      `yaml:"weight"` // default 1
}

// The kinds of target that Target.Discovery reports.
const (
	DiscoveryPlain = "plain" // http://, https://: dial the URL's host as written
	DiscoveryDNS   = "dns"   // dns+http://, dns+https://: A/AAAA records of the host, re-resolved every ResolveInterval
	DiscoverySRV   = "srv"   // srv+http://, srv+https://: SRV records of the host (no port in the URL), re-resolved every ResolveInterval
)

// Discovery tells how the target's addresses are found (kind: DiscoveryPlain,
// DiscoveryDNS or DiscoverySRV) and what is spoken to each of them (scheme:
// "http" or "https"). A validated target always has one of those.
func (t Target) Discovery() (kind, scheme string) {
	if t.URL == nil {
		return "", ""
	}
	return splitScheme(t.URL.Scheme)
}

// splitScheme splits "dns+https" into ("dns", "https"); unknown schemes
// give ("", "").
func splitScheme(s string) (kind, scheme string) {
	prefix, proto, found := strings.Cut(s, "+")
	if !found {
		prefix, proto = DiscoveryPlain, s
	}
	switch {
	case prefix != DiscoveryPlain && prefix != DiscoveryDNS && prefix != DiscoverySRV,
		found && prefix == DiscoveryPlain,
		proto != "http" && proto != "https":
		return "", ""
	}
	return prefix, proto
}

type Timeouts struct {
	Connect        time.Duration `yaml:"connect"`         // default 5s
	ResponseHeader time.Duration `yaml:"response_header"` // default 60s
	Idle           time.Duration `yaml:"idle"`            // default 90s
}

// Health holds the two independent ways a target is taken out of rotation.
type Health struct {
	Active  *ActiveHealth  `yaml:"active"`  // nil: no active checks
	Passive *PassiveHealth `yaml:"passive"` // nil: no outlier detection
}

// ActiveHealth is an HTTP GET of Path sent to every target every Interval.
// Fall consecutive failures mark a target down, Rise consecutive successes
// bring it back. A check succeeds when the response arrives within Timeout,
// its status is in ExpectStatus and its body contains ExpectBody.
type ActiveHealth struct {
	Path         string            `yaml:"path"`          // default /healthz; starts with "/"; used as is (a target's base path is not prepended)
	Interval     time.Duration     `yaml:"interval"`      // default 2s; > 0
	Timeout      time.Duration     `yaml:"timeout"`       // default min(1s, Interval/2); > 0 and < Interval
	Fall         int               `yaml:"fall"`          // default 3; >= 1
	Rise         int               `yaml:"rise"`          // default 2; >= 1
	ExpectStatus StatusRanges      `yaml:"expect_status"` // default 200-399
	ExpectBody   string            `yaml:"expect_body"`   // "": the body is not looked at
	Headers      map[string]string `yaml:"headers"`       // extra request headers (never Host: see Host)
	Host         string            `yaml:"host"`          // Host header; "": the target's host[:port]
}

// PassiveHealth ejects a target after MaxFails failures (connect errors,
// timeouts, 5xx responses) within Window, for Eject.
type PassiveHealth struct {
	MaxFails int           `yaml:"max_fails"` // default 3; >= 1
	Window   time.Duration `yaml:"window"`    // default 10s; > 0
	Eject    time.Duration `yaml:"eject"`     // default 30s; > 0
}

// StatusRanges is a set of HTTP status codes written as "200-399" or
// "200,204,300-399". Every range is within 100-599 with Lo <= Hi.
type StatusRanges []StatusRange

// StatusRange is the codes from Lo to Hi, both included.
type StatusRange struct{ Lo, Hi int }

// Contains reports whether code is in one of the ranges.
func (r StatusRanges) Contains(code int) bool {
	for _, sr := range r {
		if code >= sr.Lo && code <= sr.Hi {
			return true
		}
	}
	return false
}

// String writes the ranges back in the form they are read in.
func (r StatusRanges) String() string {
	parts := make([]string, len(r))
	for i, sr := range r {
		parts[i] = strconv.Itoa(sr.Lo)
		if sr.Hi != sr.Lo {
			parts[i] += "-" + strconv.Itoa(sr.Hi)
		}
	}
	return strings.Join(parts, ",")
}

// Retries says when a failed request is tried again, on another target.
//
// Attempts is the number of retries AFTER the first try: attempts: 2 means
// at most 3 tries in all, and 0 turns retries off. A retry happens only
// when the failure is listed in On, and:
//   - for RetryConnect (the connection to the target could not be opened, so
//     the request never reached it): for every request;
//   - for RetryTimeout, RetryReset and RetryStatus: only when the method is
//     idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) or no byte of the
//     request body was sent yet;
//
// and when the pool's retry budget allows it: over the last 10 seconds, the
// pool's retries may be at most the larger of Budget times its requests
// (20%: one retry per five requests) and MinRetriesPerSecond*10, so that a
// quiet pool can still retry. A retry goes to a target not yet tried for
// the request. See docs/config.md, "retries".
type Retries struct {
	Attempts            int       `yaml:"attempts"`               // default 1; 0..10; retries after the first try
	On                  []RetryOn `yaml:"on"`                     // default [connect]; never empty
	Budget              Ratio     `yaml:"budget"`                 // default 20% (0.2); 0..1
	MinRetriesPerSecond int       `yaml:"min_retries_per_second"` // default 3; >= 0
}

// RetryOn is one entry of retries.on: a kind of failure, or a status code.
type RetryOn struct {
	Kind   RetryKind
	Status int // for Kind == RetryStatus: 400..599
}

// RetryKind is what failed.
type RetryKind string

const (
	RetryConnect RetryKind = "connect" // opening the connection failed (refused, unreachable, connect timeout, TLS handshake)
	RetryTimeout RetryKind = "timeout" // no response head within timeouts.response_header
	RetryReset   RetryKind = "reset"   // the connection broke before the response head arrived
	RetryStatus  RetryKind = "status"  // the response head carried Status
)

// String is the entry as written in the file: "connect", "502", ...
func (r RetryOn) String() string {
	if r.Kind == RetryStatus {
		return strconv.Itoa(r.Status)
	}
	return string(r.Kind)
}

// OnConnect, OnTimeout, OnReset and OnStatus report whether On lists that
// failure. They say nothing of Attempts, the method or the budget.
func (r Retries) OnConnect() bool { return r.on(RetryConnect, 0) }
func (r Retries) OnTimeout() bool { return r.on(RetryTimeout, 0) }
func (r Retries) OnReset() bool   { return r.on(RetryReset, 0) }
func (r Retries) OnStatus(code int) bool {
	return r.on(RetryStatus, code)
}

func (r Retries) on(kind RetryKind, status int) bool {
	for _, o := range r.On {
		if o.Kind == kind && o.Status == status {
			return true
		}
	}
	return false
}

// Ratio is a share written as a percentage from 0% to 100% ("20%", "2.5%")
// and stored as a fraction from 0 to 1: "20%" is 0.2.
type Ratio float64

// UpstreamTLS configures TLS to https targets. File paths are used as
// written: a relative path is relative to gatehouse's working directory.
// The files are read and checked when the configuration is loaded; what they
// hold is kept in RootCAs and Certificate, so a reload re-reads them.
type UpstreamTLS struct {
	CAFile             string `yaml:"ca_file"`              // PEM certificates to trust instead of the system roots
	ServerName         string `yaml:"server_name"`          // SNI and the name verified; "": the target's host
	CertFile           string `yaml:"cert_file"`            // client certificate (mTLS), PEM; with KeyFile
	KeyFile            string `yaml:"key_file"`             // its private key, PEM; with CertFile
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"` // true: do not verify the targets' certificates (Config.Warnings says so)

	RootCAs     *x509.CertPool   `yaml:"-"` // from CAFile; nil: the system roots
	Certificate *tls.Certificate `yaml:"-"` // from CertFile and KeyFile; nil: none
}

// ClientConfig returns a new tls.Config for connections to the targets,
// which the caller may complete (NextProtos). When ServerName is "", the
// caller must set ServerName to the host of the target being dialled (as
// tls.Dial does). A nil *UpstreamTLS gives the defaults.
func (t *UpstreamTLS) ClientConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t == nil {
		return c
	}
	c.RootCAs = t.RootCAs
	c.ServerName = t.ServerName
	c.InsecureSkipVerify = t.InsecureSkipVerify
	if t.Certificate != nil {
		c.Certificates = []tls.Certificate{*t.Certificate}
	}
	return c
}

type Site struct {
	Pos        Pos          `yaml:"-"`
	Hosts      []string     `yaml:"hosts"` // default ["*"]
	Middleware []Middleware `yaml:"middleware"`
	Routes     []Route      `yaml:"routes"`
}

type Route struct {
	Pos             Pos          `yaml:"-"`
	Match           Match        `yaml:"match"`
	StripPrefix     string       `yaml:"strip_prefix"`
	RequestHeaders  HeaderOps    `yaml:"request_headers"`
	ResponseHeaders HeaderOps    `yaml:"response_headers"`
	Middleware      []Middleware `yaml:"middleware"`

	// Exactly one action.
	Upstream string       `yaml:"upstream"`
	Split    []SplitEntry `yaml:"split"`
	Respond  *Respond     `yaml:"respond"`
	Redirect *Redirect    `yaml:"redirect"`
}

type Match struct {
	Path       string            `yaml:"path"`
	PathPrefix string            `yaml:"path_prefix"`
	PathRegex  *regexp.Regexp    `yaml:"path_regex"`
	Methods    []string          `yaml:"methods"` // upper-cased by the decoder
	Headers    map[string]string `yaml:"headers"` // exact | "~REGEX" | "*"
	Query      map[string]string `yaml:"query"`   // exact | "~REGEX" | "*"
	ClientIP   []netip.Prefix    `yaml:"client_ip"`
}

type HeaderOps struct {
	Set    map[string]string `yaml:"set"`
	Add    map[string]string `yaml:"add"`
	Remove []string          `yaml:"remove"`
}

type SplitEntry struct {
	Pos      Pos    `yaml:"-"`
	Upstream string `yaml:"upstream"`
	Weight   int    `yaml:"weight"`
}

type Respond struct {
	Status  int               `yaml:"status"` // default 200
	Body    string            `yaml:"body"`
	Headers map[string]string `yaml:"headers"`
}

type Redirect struct {
	To     string `yaml:"to"`     // placeholders {host} {path} {uri} {query} {scheme}
	Status int    `yaml:"status"` // default 308; 301|302|303|307|308
}

// Middleware is one `{NAME: {settings}}` entry. Settings stay as YAML so that each
// filter package decodes its own fields (with the same positions) when it is built.
type Middleware struct {
	Pos      Pos
	Name     string
	Path     string // field path of the settings, e.g. sites[0].middleware[1].rate_limit; pass it to Decode
	Settings *yaml.Node
}

// Error is one problem in a configuration file.
type Error struct {
	File      string
	Line, Col int
	Path      string // e.g. sites[0].routes[2].upstream
	Msg       string
}

// Error renders FILE:LINE:COL: field.path: message. Parts that are unknown
// are left out: the position of an unreadable file, the path of a syntax
// error, the file name of a configuration that was not read from a file.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ":")
	}
	if e.Line > 0 {
		b.WriteString(itoa(e.Line) + ":" + itoa(e.Col) + ":")
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}
