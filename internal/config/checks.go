package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Syntax checks for single values. Each returns "" when the value is fine,
// else the message to show.

// checkListenAddr accepts host:port with a numeric port; the host may be
// empty (all interfaces), an IP address or a name such as localhost.
func checkListenAddr(addr string) (norm, problem string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Sprintf("invalid address %s: write host:port, like 127.0.0.1:8080 or :8080", quote(addr))
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", fmt.Sprintf("invalid port %s: write a number from 0 to 65535", quote(port))
	}
	if host != "" && !isIP(host) && !isDNSName(host) {
		return "", fmt.Sprintf("invalid host %s: write an IP address or a host name", quote(host))
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), ""
}

func isIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

// isDNSName accepts the names a Host header can carry: labels of letters,
// digits, '-' and '_' (common in internal names), not starting or ending with
// '-'. The input is expected in lower case (see normalizeHost) only for sites.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkHostPattern accepts an exact host, "*.suffix" or "*".
func checkHostPattern(h string) string {
	const forms = "write a host name (example.com), a wildcard (*.example.com) or *"
	switch {
	case h == "":
		return "a host pattern must not be empty: " + forms
	case h == "*":
		return ""
	case strings.HasPrefix(h, "*."):
		if rest := h[2:]; isDNSName(rest) && !isIP(rest) {
			return ""
		}
		return fmt.Sprintf("invalid host pattern %s: %s", quote(h), forms)
	case strings.Contains(h, "*"):
		return fmt.Sprintf("invalid host pattern %s: a wildcard must be the whole first label, like *.example.com", quote(h))
	case isIP(h) || isDNSName(h):
		return ""
	}
	if host, _, err := net.SplitHostPort(h); err == nil && (isIP(host) || isDNSName(host)) {
		return fmt.Sprintf("invalid host pattern %s: leave the port out, sites match the host name only", quote(h))
	}
	return fmt.Sprintf("invalid host pattern %s: %s", quote(h), forms)
}

// targetSchemes lists the schemes a target URL may use: http and https,
// and their dns+ and srv+ forms for targets found by DNS (see
// Target.Discovery).
func targetSchemes() []string {
	return []string{"http", "https", "dns+http", "dns+https", "srv+http", "srv+https"}
}

func checkTargetURL(u *url.URL) string {
	schemes := targetSchemes()
	ok := slices.Contains(schemes, u.Scheme)
	switch {
	case !ok && u.Opaque != "" && !strings.HasPrefix(u.Opaque, "/"):
		// "localhost:9001" parses as scheme "localhost".
		return fmt.Sprintf("the URL has no scheme: write %s://%s:%s", schemes[0], u.Scheme, u.Opaque)
	case !ok && u.Scheme == "":
		return fmt.Sprintf("scheme must be %s: write %s://HOST:PORT", joinOr(schemes), schemes[0])
	case !ok:
		return fmt.Sprintf("scheme must be %s, not %q%s", joinOr(schemes), u.Scheme, suggest(u.Scheme, schemes))
	case u.Opaque != "" || u.Hostname() == "":
		return fmt.Sprintf("the URL has no host: write %s://HOST:PORT", u.Scheme)
	case u.User != nil:
		return "the URL must not contain a user name or password"
	case u.RawQuery != "" || u.ForceQuery:
		return "the URL must not contain a query (?...)"
	case u.Fragment != "":
		return "the URL must not contain a fragment (#...)"
	case u.Port() == "0":
		return "port 0 is not a valid target port"
	}
	kind, scheme := splitScheme(u.Scheme)
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return fmt.Sprintf("invalid port %s: write a number from 1 to 65535", quote(p))
		}
	} else if strings.HasSuffix(u.Host, ":") && kind != DiscoverySRV {
		return "the port after \":\" is empty: write a port, or leave the colon out"
	}
	host := u.Hostname()
	switch {
	case kind == DiscoveryPlain:
	case isIP(host):
		return fmt.Sprintf("%s looks up a host name, and %s is an address: write %s://%s", u.Scheme, host, scheme, u.Host)
	case !isDNSName(host):
		return fmt.Sprintf("invalid host name %s: %s looks it up in DNS", quote(host), u.Scheme)
	case kind == DiscoverySRV && u.Port() != "":
		return fmt.Sprintf("%s takes no port: the SRV records give the ports; write %s://%s", u.Scheme, u.Scheme, host)
	case kind == DiscoverySRV && strings.HasSuffix(u.Host, ":"):
		return fmt.Sprintf("%s takes no port: the SRV records give the ports", u.Scheme)
	}
	return ""
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), the
// syntax of header names and methods.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// checkHeaderValue rejects the bytes that would let a value end the header
// (CR, LF) or that servers treat inconsistently (NUL).
func checkHeaderValue(v string) string {
	if strings.ContainsAny(v, "\r\n\x00") {
		return "a header value must not contain CR, LF or NUL characters"
	}
	return ""
}

func balances() []string {
	return []string{"round_robin", "weighted_round_robin", "least_conn", "random", "p2c", "ewma", "hash", "first"}
}

// checkHashKey accepts client_ip, uri, header:NAME and cookie:NAME.
func checkHashKey(k string) string {
	const forms = "use client_ip, uri, header:NAME or cookie:NAME"
	switch k {
	case "client_ip", "uri":
		return ""
	}
	kind, name, found := strings.Cut(k, ":")
	if !found || (kind != "header" && kind != "cookie") {
		return fmt.Sprintf("invalid hash_key %s: %s", quote(k), forms)
	}
	if !isToken(name) {
		return fmt.Sprintf("invalid hash_key %s: %s needs a name, like %s:X-User", quote(k), kind, kind)
	}
	return ""
}

// checkPlaceholders rejects {words} that a redirect cannot fill in, which
// would otherwise reach clients verbatim.
func checkPlaceholders(to string) string {
	known := []string{"host", "path", "uri", "query", "scheme"}
	for rest := to; ; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			return ""
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return ""
		}
		name := rest[open+1 : open+end]
		rest = rest[open+end+1:]
		if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz_") != "" {
			continue // not a placeholder, just braces
		}
		isKnown := false
		for _, k := range known {
			isKnown = isKnown || name == k
		}
		if !isKnown {
			return fmt.Sprintf("unknown placeholder {%s}%s: use {host}, {path}, {uri}, {query} or {scheme}", name, suggest(name, known))
		}
	}
}
