// Package https holds the site settings that steer clients to HTTPS:
// https_redirect (plain-HTTP requests answered with 308 to the https URL)
// and hsts (Strict-Transport-Security on HTTPS responses, RFC 6797). The
// server puts them in front of a site's own middleware.
package https

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

// acmeChallengePath is where ACME HTTP-01 validation requests arrive; they
// must be answered over plain HTTP (RFC 8555 §8.3).
var acmeChallengePath = []byte("/.well-known/acme-challenge/")

// Redirect answers plain-HTTP requests with 308 to the same URL on https.
type Redirect struct {
	// Port is the HTTPS port to send clients to; 443 is left out of the URL.
	Port int
}

func (r *Redirect) Serve(x *filter.Exchange, next filter.Handler) {
	req := x.Req
	if req.TLS || bytes.HasPrefix(req.Path, acmeChallengePath) {
		next.Serve(x)
		return
	}
	host := hostOnly(req.Host)
	if len(host) == 0 {
		filter.Reply(x, 400, "400 Bad Request: no Host\n")
		return
	}
	loc := make([]byte, 0, 16+len(host)+len(req.Path)+len(req.Query))
	loc = append(loc, "https://"...)
	loc = append(loc, host...)
	if r.Port != 443 && r.Port != 0 {
		loc = strconv.AppendInt(append(loc, ':'), int64(r.Port), 10)
	}
	loc = append(loc, req.Path...)
	if req.HasQuery {
		loc = append(append(loc, '?'), req.Query...)
	}
	h := exchange.Headers{{Name: []byte("Location"), Value: loc}}
	x.W.WriteHead(308, nil, h, 0)
	x.W.Finish(nil)
}

// hostOnly is the host of a Host header, without its port (an IPv6
// literal keeps its brackets).
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return nil
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

// HSTS adds Strict-Transport-Security to the responses sent over HTTPS
// (never over plain HTTP, where RFC 6797 §7.2 says browsers ignore it).
type HSTS struct {
	value []byte
}

// NewHSTS builds the header value.
func NewHSTS(maxAge time.Duration, includeSubdomains, preload bool) *HSTS {
	v := strconv.AppendInt([]byte("max-age="), int64(maxAge/time.Second), 10)
	if includeSubdomains {
		v = append(v, "; includeSubDomains"...)
	}
	if preload {
		v = append(v, "; preload"...)
	}
	return &HSTS{value: v}
}

var hstsName = []byte("Strict-Transport-Security")

var writerPool = sync.Pool{New: func() any { return new(hstsWriter) }}

func (f *HSTS) Serve(x *filter.Exchange, next filter.Handler) {
	if !x.Req.TLS {
		next.Serve(x)
		return
	}
	w := writerPool.Get().(*hstsWriter)
	w.ResponseWriter, w.value = x.W, f.value
	x.W = w
	next.Serve(x)
	x.W = w.ResponseWriter
	w.ResponseWriter, w.h = nil, w.h[:0]
	writerPool.Put(w)
}

type hstsWriter struct {
	exchange.ResponseWriter
	value []byte
	h     exchange.Headers
}

func (w *hstsWriter) WriteHead(status int, reason []byte, h exchange.Headers, contentLength int64) error {
	w.h = w.h[:0]
	for _, f := range h {
		if !exchange.EqualFold(f.Name, "Strict-Transport-Security") { // the site's policy wins over a backend's
			w.h = append(w.h, f)
		}
	}
	w.h = append(w.h, exchange.Header{Name: hstsName, Value: w.value})
	return w.ResponseWriter.WriteHead(status, reason, w.h, contentLength)
}

// ReadFrom keeps the engine's copy path behind the wrapper.
func (w *hstsWriter) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

// Hijack is forwarded explicitly so that the wrapper is transparent to upgrades.
func (w *hstsWriter) Hijack() (net.Conn, io.Reader, error) { return w.ResponseWriter.Hijack() }
