// Package config loads, decodes and validates gatehouse's configuration file.
// Every value keeps the position it was written at, so that any error can name
// FILE:LINE:COL and the field path (see ../shared/spec/interface.md).
package config

import (
	"net/netip"
	"net/url"
	"regexp"
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
	Upstreams       map[string]*Upstream `yaml:"upstreams"`
	Sites           []Site               `yaml:"sites"`
}

// Pos is where a value was written in the file.
type Pos struct{ Line, Col int }

type Listener struct {
	Pos  Pos    `yaml:"-"`
	Addr string `yaml:"addr"` // host:port, required
	H2C  bool   `yaml:"h2c"`
}

type Admin struct {
	Pos  Pos    `yaml:"-"`
	Addr string `yaml:"addr"`
}

type Limits struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"` // default 10s
	IdleTimeout       time.Duration `yaml:"idle_timeout"`        // default 120s
	MaxHeaderBytes    Size          `yaml:"max_header_bytes"`    // default 64KiB
	MaxBodyBytes      Size          `yaml:"max_body_bytes"`      // 0 = unlimited
}

// Size is a byte count written as 123, "64KiB", "1MB", ...
type Size int64

type AccessLog struct {
	Enabled bool   `yaml:"enabled"` // default true
	Output  string `yaml:"output"`  // stderr (default) | stdout | file path
}

type Upstream struct {
	Pos          Pos      `yaml:"-"`
	Name         string   `yaml:"-"` // the key under upstreams:
	Targets      []Target `yaml:"targets"`
	Balance      string   `yaml:"balance"` // default round_robin
	HashKey      string   `yaml:"hash_key"`
	PreserveHost bool     `yaml:"preserve_host"`
	Timeouts     Timeouts `yaml:"timeouts"`
}

// Target is written either as a URL string or as {url, weight}.
type Target struct {
	Pos    Pos      `yaml:"-"`
	URL    *url.URL `yaml:"url"`    // http://host:port[/base]; scheme http (https later)
	Weight int      `yaml:"weight"` // default 1
}

type Timeouts struct {
	Connect        time.Duration `yaml:"connect"`         // default 5s
	ResponseHeader time.Duration `yaml:"response_header"` // default 60s
	Idle           time.Duration `yaml:"idle"`            // default 90s
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
