package server

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/tlsconf"
)

var acmeChallengePrefix = []byte("/.well-known/acme-challenge/")

// acmeRegistry is the certificate managers obtaining certificates by ACME:
// any plaintext request for an HTTP-01 challenge path is offered to them
// before routing, whichever listener and site it arrives on.
type acmeRegistry struct {
	list []*tlsconf.Manager
}

func (s *Server) setACME(m *tlsconf.Manager, on bool) {
	s.acmeMu.Lock()
	defer s.acmeMu.Unlock()
	var list []*tlsconf.Manager
	if cur := s.acme.Load(); cur != nil {
		list = slices.DeleteFunc(slices.Clone(cur.list), func(x *tlsconf.Manager) bool { return x == m })
	}
	if on {
		list = append(list, m)
	}
	s.acme.Store(&acmeRegistry{list: list})
}

// serveACMEChallenge answers an HTTP-01 validation request; it reports
// whether it did.
func (s *Server) serveACMEChallenge(req *exchange.Request, w exchange.ResponseWriter) bool {
	reg := s.acme.Load()
	if reg == nil || len(reg.list) == 0 || req.TLS || !bytes.HasPrefix(req.Path, acmeChallengePrefix) {
		return false
	}
	hr := &http.Request{
		Method:     string(req.Method),
		URL:        &url.URL{Path: string(req.Path)},
		Host:       string(req.Host),
		Header:     http.Header{},
		RemoteAddr: req.RemoteAddr.String(),
	}
	for _, m := range reg.list {
		rec := &challengeRecorder{header: http.Header{}}
		if m.HandleHTTPChallenge(rec, hr) {
			h := exchange.Headers{{Name: []byte("Content-Type"), Value: []byte("text/plain")}}
			if rec.status == 0 {
				rec.status = 200
			}
			if w.WriteHead(rec.status, nil, h, int64(rec.body.Len())) == nil {
				w.Write(rec.body.Bytes())
			}
			w.Finish(nil)
			return true
		}
	}
	return false
}

// challengeRecorder is the http.ResponseWriter certmagic writes the key
// authorization to.
type challengeRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *challengeRecorder) Header() http.Header { return r.header }
func (r *challengeRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *challengeRecorder) Write(p []byte) (int, error) {
	if r.body.Len()+len(p) > 4096 { // a key authorization is ~90 bytes
		return 0, http.ErrContentLength
	}
	return r.body.Write(p)
}
