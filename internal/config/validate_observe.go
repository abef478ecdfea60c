package config

import (
	"net/url"
	"slices"
	"strings"
)

// AccessLogFields are the field names access_log.fields may list (besides
// header:NAME).
var AccessLogFields = []string{
	"time", "client", "method", "host", "path", "query", "proto", "status", "bytes", "bytes_in", "duration_ms",
	"upstream", "upstream_ms", "route", "request_id", "tls", "cache", "user", "blocked", "referer", "user_agent",
}

func (v *validator) accessLog() {
	a := &v.cfg.AccessLog
	switch a.Format {
	case "json", "combined", "common":
	default:
		v.errorf("access_log.format", "format must be json, combined or common, not %q%s", a.Format, suggest(a.Format, []string{"json", "combined", "common"}))
	}
	if len(a.Fields) > 0 && a.Format != "json" {
		v.errorf("access_log.fields", "fields apply to format json only; combined and common have fixed fields")
	}
	seen := map[string]bool{}
	for i, f := range a.Fields {
		p := indexPath("access_log.fields", i)
		switch {
		case strings.HasPrefix(f, "header:"):
			if !isToken(f[len("header:"):]) {
				v.errorf(p, "%q: header:NAME needs a header field name", f)
			}
		case !slices.Contains(AccessLogFields, f):
			v.errorf(p, "unknown field %q%s; fields: %s, header:NAME", f, suggest(f, AccessLogFields), strings.Join(AccessLogFields, ", "))
		}
		if seen[f] {
			v.errorf(p, "field %q is listed twice", f)
		}
		seen[f] = true
	}
}

func (v *validator) requestID() {
	if h := v.cfg.RequestID.Header; v.cfg.RequestID.Enabled && !isToken(h) {
		v.errorf("request_id.header", "%q is not a header field name", h)
	}
}

func (v *validator) tracing() {
	t := v.cfg.Tracing
	if t == nil {
		return
	}
	if t.OTLPEndpoint == "" {
		v.errorf("tracing.otlp_endpoint", "required: the OTLP/HTTP collector, e.g. http://127.0.0.1:4318")
	} else if u, err := url.Parse(t.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errorf("tracing.otlp_endpoint", "%q is not an http:// or https:// URL", t.OTLPEndpoint)
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		v.errorf("tracing.sample_ratio", "sample_ratio must be between 0 and 1, got %g", t.SampleRatio)
	}
	for name := range t.Headers {
		if !isToken(name) {
			v.errorf(keyPath("tracing.headers", name), "%q is not a header field name", name)
		}
	}
}
