package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
)

type validator struct {
	file  string
	cfg   *Config
	pos   Positions
	bad   map[string]bool
	errs  Errors
	warns Errors
}

// validate checks what decoding cannot: required fields, ranges, and
// references between sections.
func validate(file string, c *Config, pos Positions, bad map[string]bool) Errors {
	v := &validator{file: file, cfg: c, pos: pos, bad: bad}
	v.listeners()
	v.global()
	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
		v.upstream(name, c.Upstreams[name])
	}
	v.sites()
	v.cluster()
	v.warns.sortByPosition()
	c.Warnings = v.warns
	return v.errs
}

// errorf reports a problem at path, unless the value there (or around it)
// already failed to decode: that error says all there is to say.
func (v *validator) errorf(path, format string, args ...any) {
	if v.isBad(path) {
		return
	}
	p := v.pos.Of(path)
	if p.Line == 0 {
		p = Pos{Line: 1, Col: 1}
	}
	v.errs = append(v.errs, &Error{File: v.file, Line: p.Line, Col: p.Col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// warnf records a setting that is valid but deserves a word in the log.
func (v *validator) warnf(path, format string, args ...any) {
	p := v.pos.Of(path)
	v.warns = append(v.warns, &Error{File: v.file, Line: p.Line, Col: p.Col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// isBad reports whether the value at path, or around it, failed to decode.
func (v *validator) isBad(path string) bool {
	for b := range v.bad {
		if isUnder(path, b) {
			return true
		}
	}
	return false
}

// line is where path was written, for messages that point at a second place.
func (v *validator) line(path string) int { return v.pos.Of(path).Line }

func (v *validator) listeners() {
	c := v.cfg
	if len(c.Listeners) == 0 {
		v.errorf("listeners", "at least one listener is required, like: listeners: [{addr: 127.0.0.1:8080}]")
	}
	seen := map[string]string{} // normalized addr -> path of its first use
	for i, l := range c.Listeners {
		p := fieldPath(indexPath("listeners", i), "addr")
		norm, ok := v.addr(p, l.Addr)
		if !ok {
			continue
		}
		// Port 0 asks for any free port, so two of them do not clash.
		if first, dup := seen[norm]; dup && !strings.HasSuffix(norm, ":0") {
			v.errorf(p, "address %s is already used by %s (line %d)", quote(l.Addr), parentPath(first), v.line(first))
		} else {
			seen[norm] = p
		}
	}
	for i, l := range c.Listeners {
		v.listenerLimits(indexPath("listeners", i), l)
	}
	if c.Admin != nil {
		p := "admin.addr"
		norm, ok := v.addr(p, c.Admin.Addr)
		if ok {
			if first, dup := seen[norm]; dup && !strings.HasSuffix(norm, ":0") {
				v.errorf(p, "address %s is already used by %s (line %d)", quote(c.Admin.Addr), parentPath(first), v.line(first))
				ok = false // one error about the address is enough
			}
		}
		v.admin(c.Admin, ok)
	}
}

// addr checks a listen address and returns its normalized form.
func (v *validator) addr(path, addr string) (string, bool) {
	if !v.pos.Has(path) {
		v.errorf(path, "addr is required (host:port, like 127.0.0.1:8080)")
		return "", false
	}
	norm, problem := checkListenAddr(addr)
	if problem != "" {
		v.errorf(path, "%s", problem)
		return "", false
	}
	return norm, true
}

// listenerLimits checks a listener's connection limits and PROXY protocol.
func (v *validator) listenerLimits(p string, l Listener) {
	for _, f := range []struct {
		name string
		n    int
	}{{"max_connections", l.MaxConnections}, {"max_connections_per_ip", l.MaxConnectionsPerIP}, {"max_requests_per_ip", l.MaxRequestsPerIP}} {
		if f.n < 0 {
			v.errorf(fieldPath(p, f.name), "%s must not be negative (0 means no limit), got %d", f.name, f.n)
		}
	}
	fp := fieldPath(p, "proxy_protocol_from")
	switch {
	case v.pos.Has(fp) && !l.ProxyProtocol:
		v.errorf(fp, "proxy_protocol_from applies only with proxy_protocol: true")
	case l.ProxyProtocol && len(l.ProxyProtocolFrom) == 0:
		v.warnf(fieldPath(p, "proxy_protocol"), "proxy_protocol without proxy_protocol_from: any client that reaches %s can claim any address; list your load balancers in proxy_protocol_from", l.Addr)
	}
}

func (v *validator) global() {
	c := v.cfg
	if c.Limits.MinBodyRate > 0 && c.Limits.BodyRateWindow <= 0 {
		v.errorf("limits.body_rate_window", "body_rate_window must be positive when min_body_rate is set, like 10s")
	}
	for i, name := range c.HideResponseHeaders {
		if !isToken(name) {
			v.errorf(indexPath("hide_response_headers", i), "invalid header name %s: a header name is a single word of letters, digits and -", quote(name))
		}
	}
	if c.AccessLog.Output == "" {
		v.errorf("access_log.output", "output must not be empty: write stderr, stdout or a file path")
	}
	v.accessLog()
	v.requestID()
	v.tracing()
	if m := c.Limits.MaxHeaderBytes; m < 1<<10 || m > 16<<20 {
		v.errorf("limits.max_header_bytes", "max_header_bytes must be between 1KiB and 16MiB, got %d", m)
	}
}

func (v *validator) upstream(name string, u *Upstream) {
	p := keyPath("upstreams", name)
	if !isUpstreamName(name) {
		v.errorf(p, "invalid upstream name %s: use letters, digits, '.', '_' and '-'", quote(name))
	}
	tp := fieldPath(p, "targets")
	if len(u.Targets) == 0 {
		v.errorf(tp, "an upstream needs at least one target")
	}
	v.targets(tp, u.Targets)
	v.targets(fieldPath(p, "backup"), u.Backup)
	if !slices.Contains(balances(), u.Balance) {
		v.errorf(fieldPath(p, "balance"), "unknown balance %s%s: use %s", quote(u.Balance), suggest(u.Balance, balances()), joinOr(balances()))
	}
	if hp := fieldPath(p, "hash_key"); v.pos.Has(hp) {
		if u.Balance != "hash" {
			v.errorf(hp, "hash_key applies only to balance: hash")
		} else if problem := checkHashKey(u.HashKey); problem != "" {
			v.errorf(hp, "%s", problem)
		}
	}
	v.transport(p, u)
	v.health(fieldPath(p, "health"), u.Health)
	v.retries(fieldPath(p, "retries"), u.Retries)
	v.connLimits(p, u)
}

// isUpstreamName keeps names safe in metrics labels and admin API paths.
func isUpstreamName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (v *validator) sites() {
	firstUse := map[string]string{} // host pattern -> path where a site claimed it
	for si := range v.cfg.Sites {
		s := &v.cfg.Sites[si]
		sp := indexPath("sites", si)
		hp := fieldPath(sp, "hosts")
		if len(s.Hosts) == 0 {
			v.errorf(hp, "hosts is empty: leave it out, or write [\"*\"], to match any host")
		}
		for i, h := range s.Hosts {
			p := indexPath(hp, i)
			if !v.pos.Has(hp) {
				p = hp // the default ["*"]
			}
			if problem := checkHostPattern(h); problem != "" {
				v.errorf(p, "%s", problem)
				continue
			}
			first, dup := firstUse[h]
			switch {
			case dup && isUnder(first, hp):
				v.errorf(p, "host %s is listed twice", quote(h))
			case dup:
				v.errorf(p, "host %s is already served by %s (line %d); a host belongs to one site", quote(h), siteOf(first), v.line(first))
			default:
				firstUse[h] = p
			}
		}
		rsp := fieldPath(sp, "routes")
		if len(s.Routes) == 0 {
			v.errorf(rsp, "a site needs at least one route")
		}
		for ri := range s.Routes {
			v.route(indexPath(rsp, ri), &s.Routes[ri])
		}
	}
}

// siteOf returns the sites[N] part of a path.
func siteOf(path string) string {
	if i := strings.IndexByte(path, ']'); i >= 0 {
		return path[:i+1]
	}
	return path
}

func (v *validator) route(rp string, r *Route) {
	v.match(fieldPath(rp, "match"), &r.Match)
	if sp := fieldPath(rp, "strip_prefix"); v.pos.Has(sp) && !strings.HasPrefix(r.StripPrefix, "/") {
		v.errorf(sp, "strip_prefix must start with \"/\", got %s", quote(r.StripPrefix))
	}
	v.headerOps(fieldPath(rp, "request_headers"), r.RequestHeaders)
	v.headerOps(fieldPath(rp, "response_headers"), r.ResponseHeaders)

	var found, paths []string
	for _, action := range []string{"upstream", "split", "respond", "redirect"} {
		if p := fieldPath(rp, action); v.pos.Has(p) {
			found, paths = append(found, action), append(paths, p)
		}
	}
	switch {
	case len(found) == 0:
		v.errorf(rp, "a route needs exactly one of upstream, split, respond, redirect; found none")
	case len(found) > 1:
		v.errorf(paths[1], "a route needs exactly one of upstream, split, respond, redirect; found %s", joinAnd(found))
	}

	if p := fieldPath(rp, "upstream"); v.pos.Has(p) {
		v.upstreamRef(p, r.Upstream)
	}
	if p := fieldPath(rp, "split"); v.pos.Has(p) {
		v.split(p, r.Split)
	}
	if r.Respond != nil {
		p := fieldPath(rp, "respond")
		if r.Respond.Status < 100 || r.Respond.Status > 599 {
			v.errorf(fieldPath(p, "status"), "status must be between 100 and 599, got %d", r.Respond.Status)
		}
		v.headerMap(fieldPath(p, "headers"), r.Respond.Headers, false)
	}
	if r.Redirect != nil {
		p := fieldPath(rp, "redirect")
		if r.Redirect.To == "" {
			v.errorf(fieldPath(p, "to"), "to is required: the URL to redirect to, like https://{host}{uri}")
		} else if problem := checkPlaceholders(r.Redirect.To); problem != "" {
			v.errorf(fieldPath(p, "to"), "%s", problem)
		} else if problem := checkHeaderValue(r.Redirect.To); problem != "" {
			v.errorf(fieldPath(p, "to"), "%s", problem)
		}
		switch r.Redirect.Status {
		case 301, 302, 303, 307, 308:
		default:
			v.errorf(fieldPath(p, "status"), "status must be 301, 302, 303, 307 or 308, got %d", r.Redirect.Status)
		}
	}
}

func (v *validator) upstreamRef(path, name string) {
	switch {
	case name == "":
		v.errorf(path, "the upstream name is empty")
	case v.cfg.Upstreams[name] == nil:
		names := slices.Sorted(maps.Keys(v.cfg.Upstreams))
		if len(names) == 0 {
			v.errorf(path, "upstream %s is not defined: there is no upstreams section", quote(name))
			return
		}
		if hint := suggest(name, names); hint != "" {
			v.errorf(path, "upstream %s is not defined%s", quote(name), hint)
		} else if len(names) <= 10 {
			v.errorf(path, "upstream %s is not defined; the upstreams are %s", quote(name), joinAnd(names))
		} else {
			v.errorf(path, "upstream %s is not defined", quote(name))
		}
	}
}

func (v *validator) split(path string, entries []SplitEntry) {
	if len(entries) == 0 {
		v.errorf(path, "split needs at least one entry, like [{upstream: app, weight: 90}, {upstream: canary, weight: 10}]")
		return
	}
	total, complete := 0, true
	for i, e := range entries {
		ep := indexPath(path, i)
		if up := fieldPath(ep, "upstream"); v.pos.Has(up) {
			v.upstreamRef(up, e.Upstream)
		} else {
			v.errorf(up, "upstream is required")
		}
		wp := fieldPath(ep, "weight")
		switch {
		case !v.pos.Has(wp):
			// No default: in a split, a forgotten weight is more likely a
			// mistake than a wish for an equal share.
			v.errorf(wp, "weight is required (0 sends this upstream no traffic)")
			complete = false
		case e.Weight < 0 || e.Weight > 1_000_000:
			v.errorf(wp, "weight must be between 0 and 1000000, got %d", e.Weight)
			complete = false
		default:
			total += e.Weight
		}
	}
	if complete && total == 0 {
		v.errorf(path, "the split weights add up to 0: at least one must be positive")
	}
}

func (v *validator) match(path string, m *Match) {
	var kinds []string
	for _, k := range []string{"path", "path_prefix", "path_regex"} {
		if v.pos.Has(fieldPath(path, k)) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) > 1 {
		v.errorf(fieldPath(path, kinds[1]), "use only one of path, path_prefix and path_regex; found %s", joinAnd(kinds))
	}
	if p := fieldPath(path, "path"); v.pos.Has(p) && !strings.HasPrefix(m.Path, "/") {
		v.errorf(p, "path must start with \"/\", got %s", quote(m.Path))
	}
	if p := fieldPath(path, "path_prefix"); v.pos.Has(p) && !strings.HasPrefix(m.PathPrefix, "/") {
		v.errorf(p, "path_prefix must start with \"/\", got %s", quote(m.PathPrefix))
	}
	for i, meth := range m.Methods {
		if !isToken(meth) {
			v.errorf(indexPath(fieldPath(path, "methods"), i), "invalid method %s: a method is a single word, like GET", quote(meth))
		}
	}
	v.headerMap(fieldPath(path, "headers"), m.Headers, true)
	qp := fieldPath(path, "query")
	for _, k := range slices.Sorted(maps.Keys(m.Query)) {
		if k == "" {
			v.errorf(keyPath(qp, k), "a query parameter name must not be empty")
		}
		v.matchValue(keyPath(qp, k), m.Query[k])
	}
}

// matchValue checks the "~REGEX" form of header and query matches, whose
// regular expressions the router compiles later.
func (v *validator) matchValue(path, val string) {
	if re, ok := strings.CutPrefix(val, "~"); ok {
		if _, err := compileRegexp(re); err != nil {
			v.errorf(path, "%s", err)
		}
	}
}

// headerMap checks names and values; in a match, values may be "~REGEX".
func (v *validator) headerMap(path string, h map[string]string, isMatch bool) {
	seen := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(h)) {
		p := keyPath(path, name)
		if !isToken(name) {
			v.errorf(p, "invalid header name %s: a header name is a single word of letters, digits and -", quote(name))
			continue
		}
		// Header names are case-insensitive, so X-A and x-a would silently
		// override each other.
		if other, dup := seen[strings.ToLower(name)]; dup {
			v.errorf(p, "header %s is also written as %s: header names are case-insensitive", quote(name), quote(other))
		}
		seen[strings.ToLower(name)] = name
		if problem := checkHeaderValue(h[name]); problem != "" {
			v.errorf(p, "%s", problem)
		} else if isMatch {
			v.matchValue(p, h[name])
		}
	}
}

func (v *validator) headerOps(path string, ops HeaderOps) {
	v.headerMap(fieldPath(path, "set"), ops.Set, false)
	v.headerMap(fieldPath(path, "add"), ops.Add, false)
	for i, name := range ops.Remove {
		if !isToken(name) {
			v.errorf(indexPath(fieldPath(path, "remove"), i), "invalid header name %s: a header name is a single word of letters, digits and -", quote(name))
		}
	}
}

func (v *validator) cluster() {
	r := v.cfg.Cluster.Redis
	if r == nil {
		return
	}
	if r.Addr == "" {
		v.errorf("cluster.redis.addr", "required: host:port of the Redis server")
	} else if _, _, err := net.SplitHostPort(r.Addr); err != nil {
		v.errorf("cluster.redis.addr", "%q is not host:port", r.Addr)
	}
	if r.DB < 0 {
		v.errorf("cluster.redis.db", "must be 0 or more")
	}
	if r.PasswordFile != "" {
		if _, err := os.ReadFile(r.PasswordFile); err != nil {
			v.errorf("cluster.redis.password_file", "cannot read it: %v", errors.Unwrap(err))
		}
	}
}
