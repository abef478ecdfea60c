package config

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
)

// minTokenLen is the shortest admin token accepted: the admin API can
// reload, drain and read the configuration, so a guessable token is refused.
const minTokenLen = 16

// admin reads the token file and refuses an admin listener reachable from
// other machines without one: the admin API changes what the proxy does.
func (v *validator) admin(a *Admin, addrOK bool) {
	if a.TokenFile != "" {
		b, err := os.ReadFile(a.TokenFile)
		switch {
		case err != nil:
			v.errorf("admin.token_file", "cannot read it: %v", errors.Unwrap(err))
		case len(strings.TrimSpace(string(b))) < minTokenLen:
			v.errorf("admin.token_file", "the token must be at least %d characters (generate one with: openssl rand -hex 32)", minTokenLen)
		default:
			a.Token = strings.TrimSpace(string(b))
		}
	} else if v.pos.Has("admin.token_file") {
		v.errorf("admin.token_file", "must not be empty: give the path of a file holding the token")
	}
	if a.TokenFile == "" && addrOK && !IsLoopbackAddr(a.Addr) {
		v.errorf("admin.addr", "%s is reachable from other machines: listen on 127.0.0.1 or ::1, or set admin.token_file", quote(a.Addr))
	}
}

// IsLoopbackAddr reports whether a listen address (host:port) only accepts
// connections from this machine: a loopback IP or "localhost".
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
