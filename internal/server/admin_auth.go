package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// adminAccess guards the admin API:
//   - with admin.token_file set, every request but GET /healthz and the
//     dashboard's static files must carry "Authorization: Bearer TOKEN"
//     (compared in constant time);
//   - without it (the listener is then on loopback: config validation
//     refuses anything else), the Host header must be a loopback name, so a
//     web page cannot reach the API through DNS rebinding;
//   - a write coming from another origin (a browser posting a form from
//     some web page) is refused either way.
func (s *Server) adminAccess(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := ""
		if a := s.snap.Load().Config.Admin; a != nil {
			token = a.Token
		}
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		if !read && crossOrigin(r) {
			writeJSON(w, http.StatusForbidden, map[string]any{"error": "cross-origin admin requests are refused"})
			return
		}
		switch {
		case token == "":
			if !loopbackHost(r.Host) {
				writeJSON(w, http.StatusMisdirectedRequest, map[string]any{"error": "without admin.token_file the admin API answers only to localhost, 127.0.0.1 or [::1]"})
				return
			}
		case read && isPublic(r.URL.Path):
		case !bearerMatches(r.Header.Get("Authorization"), token):
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "this admin API needs Authorization: Bearer TOKEN (admin.token_file)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isPublic tells the paths served without the token: the liveness probe and
// the dashboard's page and assets (which hold no data: the page asks for the
// token and sends it with its API calls).
func isPublic(path string) bool {
	return path == "/healthz" || path == "/" || strings.HasPrefix(path, "/dashboard/")
}

// bearerMatches compares the presented token with the configured one in
// constant time (digests, so that the length does not leak either).
func bearerMatches(header, token string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	a := sha256.Sum256([]byte(strings.TrimSpace(got)))
	b := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// crossOrigin reports a browser request sent by a page of another origin.
func crossOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false // not sent by a browser page (curl, scripts)
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
