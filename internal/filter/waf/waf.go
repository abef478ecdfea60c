// Package waf is the web application firewall middleware: every request
// (line, headers, query and body up to a cap) goes through Coraza running
// the OWASP Core Rule Set, and is refused (block mode) or only logged
// (detect mode) when the rules say it is an attack.
//
//	middleware:
//	  - waf: {rules: crs, paranoia_level: 1, mode: block, exclude_paths: [/healthz]}
//
// Compiling the CRS takes a quarter of a second (about a second under the
// race detector), so the compiled rule set is kept across reloads as long as
// the settings that go into it do not change, and shared by every route that
// uses the same settings.
package waf

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

// settings is the `waf:` entry.
type settings struct {
	Rules         string   `yaml:"rules"`          // crs (default) | none
	ParanoiaLevel int      `yaml:"paranoia_level"` // 1..4, default 1
	Mode          string   `yaml:"mode"`           // block (default) | detect
	ExcludePaths  []string `yaml:"exclude_paths"`  // path prefixes not inspected
	// RequestBodyLimit is how much of a body is buffered and inspected.
	RequestBodyLimit config.Size `yaml:"request_body_limit"`
	// RequestBodyOverLimit says what happens to a larger body: reject (413)
	// or inspect_partial (the first RequestBodyLimit bytes are inspected,
	// the whole body is forwarded).
	RequestBodyOverLimit string `yaml:"request_body_over_limit"`
	InspectResponse      bool   `yaml:"inspect_response"` // response status and headers
	// DirectivesBeforeCRS are SecLang lines loaded after the CRS set-up
	// and before its rules: CRS variables (tx.allowed_methods, ...) and
	// runtime exclusions (ctl:ruleRemoveById) go here.
	DirectivesBeforeCRS []string `yaml:"directives_before_crs"`
	// Directives are extra SecLang lines loaded after the CRS rules:
	// SecRuleRemoveById, SecRuleUpdateTargetById, custom rules.
	Directives []string `yaml:"directives"`
}

const (
	defaultBodyLimit = 128 << 10
	maxBodyLimit     = 64 << 20
)

// Filter is one `waf` middleware entry.
type Filter struct {
	eng         *engine
	block       bool
	exclude     [][]byte
	bodyLimit   int64
	rejectOver  bool
	inspectResp bool
	log         *slog.Logger
}

// engine is a compiled rule set, kept across reloads.
type engine struct {
	waf coraza.WAF
}

// Close releases the WAF's caches. Transactions in flight keep their own
// references, so a request of a retired snapshot finishes normally.
func (e *engine) Close() error {
	if c, ok := e.waf.(experimental.WAFCloser); ok {
		return c.Close()
	}
	return nil
}

// New is the Factory of the `waf` middleware.
func New(b *filter.Build) (filter.Filter, error) {
	var s settings
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	if s.Rules == "" {
		s.Rules = "crs"
	}
	if s.Mode == "" {
		s.Mode = "block"
	}
	if !pos.Has(b.Entry.Path + ".paranoia_level") {
		s.ParanoiaLevel = 1
	}
	if !pos.Has(b.Entry.Path + ".request_body_limit") {
		s.RequestBodyLimit = defaultBodyLimit
	}
	if s.RequestBodyOverLimit == "" {
		s.RequestBodyOverLimit = "reject"
	}
	switch {
	case s.Rules != "crs" && s.Rules != "none":
		return nil, b.Errorf(pos, "rules", "must be crs or none, not %q", s.Rules)
	case s.Rules == "none" && len(s.Directives)+len(s.DirectivesBeforeCRS) == 0:
		return nil, b.Errorf(pos, "rules", "rules: none needs directives (there would be nothing to check)")
	case s.ParanoiaLevel < 1 || s.ParanoiaLevel > 4:
		return nil, b.Errorf(pos, "paranoia_level", "must be 1, 2, 3 or 4, not %d", s.ParanoiaLevel)
	case s.Mode != "block" && s.Mode != "detect":
		return nil, b.Errorf(pos, "mode", "must be block or detect, not %q", s.Mode)
	case s.RequestBodyLimit < 1 || s.RequestBodyLimit > maxBodyLimit:
		return nil, b.Errorf(pos, "request_body_limit", "must be between 1 and 64MiB, not %d", s.RequestBodyLimit)
	case s.RequestBodyOverLimit != "reject" && s.RequestBodyOverLimit != "inspect_partial":
		return nil, b.Errorf(pos, "request_body_over_limit", "must be reject or inspect_partial, not %q", s.RequestBodyOverLimit)
	}
	for i, p := range s.ExcludePaths {
		if !strings.HasPrefix(p, "/") {
			return nil, b.Errorf(pos, fmt.Sprintf("exclude_paths[%d]", i), "must be a path starting with /, not %q", p)
		}
	}
	directives := s.directives()
	sum := sha256.Sum256([]byte(directives))
	eng, err := filter.Keep(b.State, "waf:"+hex.EncodeToString(sum[:]), func() (*engine, error) {
		w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(directives))
		if err != nil {
			return nil, err
		}
		return &engine{waf: w}, nil
	})
	if err != nil {
		field := ""
		switch {
		case len(s.Directives) > 0 && len(s.DirectivesBeforeCRS) == 0:
			field = "directives"
		case len(s.Directives) == 0 && len(s.DirectivesBeforeCRS) > 0:
			field = "directives_before_crs"
		}
		return nil, b.Errorf(pos, field, "the rules do not load: %s", oneLine(err.Error()))
	}
	var exclude [][]byte
	for _, p := range s.ExcludePaths {
		exclude = append(exclude, []byte(p))
	}
	return &Filter{
		eng:         eng,
		block:       s.Mode == "block",
		exclude:     exclude,
		bodyLimit:   int64(s.RequestBodyLimit),
		rejectOver:  s.RequestBodyOverLimit == "reject",
		inspectResp: s.InspectResponse,
		log:         b.Log,
	}, nil
}

// directives is the whole SecLang configuration of s, in load order:
// Coraza's recommended base, our engine settings, the CRS set-up and rules,
// then the user's lines (which can therefore remove or tune CRS rules).
func (s *settings) directives() string {
	var b strings.Builder
	b.WriteString("Include @coraza.conf-recommended\n")
	if s.Mode == "block" {
		b.WriteString("SecRuleEngine On\n")
	} else {
		b.WriteString("SecRuleEngine DetectionOnly\n")
	}
	// The filter buffers the body itself and hands Coraza at most the
	// limit; keeping it all in memory avoids Coraza's temporary files.
	fmt.Fprintf(&b, "SecRequestBodyAccess On\nSecRequestBodyLimit %d\nSecRequestBodyInMemoryLimit %d\nSecRequestBodyLimitAction ProcessPartial\n",
		s.RequestBodyLimit, s.RequestBodyLimit)
	// Responses are inspected by status and headers only (bodies stream).
	b.WriteString("SecResponseBodyAccess Off\nSecAuditEngine Off\n")
	if s.Rules == "crs" {
		fmt.Fprintf(&b, "SecAction \"id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d\"\n", s.ParanoiaLevel)
		b.WriteString("Include @crs-setup.conf.example\n")
	}
	for _, d := range s.DirectivesBeforeCRS {
		b.WriteString(d)
		b.WriteByte('\n')
	}
	if s.Rules == "crs" {
		b.WriteString("Include @owasp_crs/*.conf\n")
	}
	for _, d := range s.Directives {
		b.WriteString(d)
		b.WriteByte('\n')
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

var _ io.Closer = (*engine)(nil) // a reload that drops the settings releases the rules
