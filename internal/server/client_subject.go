package server

import (
	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// subjectHeaders are the header names any listener passes verified client
// certificate subjects in. Client copies of them are removed from every
// request, on every listener, so a backend can trust what it finds there.
func subjectHeaders(cfg *config.Config) [][]byte {
	var out [][]byte
	for _, l := range cfg.Listeners {
		if l.TLS != nil && l.TLS.ClientAuth != nil && l.TLS.ClientAuth.SubjectHeader != "" {
			out = append(out, []byte(l.TLS.ClientAuth.SubjectHeader))
		}
	}
	return out
}

// setClientSubject removes the client's copies of the subject headers and
// adds the subject of the verified client certificate, if any.
func setClientSubject(req *exchange.Request, names [][]byte) {
	var own []byte
	if req.TLSInfo != nil {
		own = req.TLSInfo.SubjectHeader
	}
	kept := req.Header[:0]
	for _, h := range req.Header {
		if isSubjectHeader(h.Name, names, own) {
			continue
		}
		kept = append(kept, h)
	}
	clear(req.Header[len(kept):])
	req.Header = kept
	if own != nil && req.TLSInfo.ClientSubject != nil {
		req.Header = append(req.Header, exchange.Header{Name: own, Value: req.TLSInfo.ClientSubject})
	}
}

func isSubjectHeader(name []byte, names [][]byte, own []byte) bool {
	if own != nil && exchange.EqualFold(name, string(own)) {
		return true
	}
	for _, n := range names {
		if exchange.EqualFold(name, string(n)) {
			return true
		}
	}
	return false
}
