// Package h2 serves HTTP/2 (cleartext prior knowledge now, TLS by ALPN later)
// with golang.org/x/net/http2 and hands every stream to the same handler as
// the HTTP/1.1 engine, through an exchange adapter.
package h2

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
)

// Server serves HTTP/2 connections.
type Server struct {
	h2      *http2.Server
	base    *http.Server // carries graceful shutdown (GOAWAY) to every connection
	handler h1.Handler
	tls     bool
}

// New returns a server that sends every stream to handler; connections idle
// for idleTimeout are closed.
func New(handler h1.Handler, tls bool, idleTimeout time.Duration) *Server {
	s := &Server{handler: handler, tls: tls, h2: &http2.Server{IdleTimeout: idleTimeout}}
	s.base = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), IdleTimeout: idleTimeout}
	http2.ConfigureServer(s.base, s.h2)
	return s
}

// ServeConn serves one connection whose first bytes (the client preface,
// possibly more) may already have been read into buffered.
func (s *Server) ServeConn(c net.Conn, buffered io.Reader) {
	s.h2.ServeConn(&prefixedConn{Conn: c, r: buffered}, &http2.ServeConnOpts{
		Handler:    http.HandlerFunc(s.serveHTTP),
		BaseConfig: s.base,
	})
}

// SetWriteTimeout closes a connection whose client takes no byte for d
// (0: never); call it before serving.
func (s *Server) SetWriteTimeout(d time.Duration) { s.h2.WriteByteTimeout = d }

// Shutdown sends GOAWAY on every connection: clients finish their streams
// and open no new ones.
func (s *Server) Shutdown(ctx context.Context) {
	s.base.Shutdown(ctx)
}

type prefixedConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	req := &exchange.Request{
		Method:        []byte(r.Method),
		Host:          []byte(r.Host),
		ProtoMinor:    1,
		HTTP2:         true,
		ContentLength: r.ContentLength,
		Body:          r.Body,
		TLS:           s.tls,
	}
	if r.ContentLength < 0 {
		req.ContentLength = -1
	}
	path, query, hasQuery := strings.Cut(r.RequestURI, "?")
	if path == "" || path[0] != '/' {
		http.Error(w, "400 Bad Request", http.StatusBadRequest)
		return
	}
	req.Path, req.Query, req.HasQuery = []byte(path), []byte(query), hasQuery
	for name, values := range r.Header {
		for _, v := range values {
			req.Header = append(req.Header, exchange.Header{Name: []byte(name), Value: []byte(v)})
		}
	}
	req.Expect100 = false // x/net/http2 sends 100 Continue when the body is read
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.RemoteAddr = ap
	}
	trailers := exchange.Headers{}
	req.Trailers = &trailers
	req.Body = &trailerBody{r: r, dst: &trailers}
	rw := &responseWriter{w: w, req: req, body: r.Body}
	s.handler.ServeExchange(req, rw)
	if rw.aborted {
		panic(http.ErrAbortHandler)
	}
}

// trailerBody copies the request's trailers once the body has ended.
type trailerBody struct {
	r   *http.Request
	dst *exchange.Headers
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Body.Read(p)
	if err == io.EOF {
		for name, values := range b.r.Trailer {
			for _, v := range values {
				*b.dst = append(*b.dst, exchange.Header{Name: []byte(name), Value: []byte(v)})
			}
		}
	}
	return n, err
}

type responseWriter struct {
	w        http.ResponseWriter
	body     io.Closer
	req      *exchange.Request
	headSent bool
	bytes    int64
	aborted  bool
	trailers []string
}

func (w *responseWriter) Write1xx(status int, h exchange.Headers) error {
	if status == 100 {
		return nil // the HTTP/2 server does this by itself
	}
	hdr := w.w.Header()
	for _, f := range h {
		hdr.Add(string(f.Name), string(f.Value))
	}
	w.w.WriteHeader(status)
	for _, f := range h {
		hdr.Del(string(f.Name))
	}
	return nil
}

// connectionSpecific are fields HTTP/2 forbids (RFC 9113 §8.2.2).
func connectionSpecific(n []byte) bool {
	for _, f := range [...]string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length", "server"} {
		if exchange.EqualFold(n, f) {
			return true
		}
	}
	return false
}

func (w *responseWriter) WriteHead(status int, _ []byte, h exchange.Headers, contentLength int64) error {
	w.headSent = true
	hdr := w.w.Header()
	for _, f := range h {
		if connectionSpecific(f.Name) {
			continue
		}
		name := http.CanonicalHeaderKey(string(f.Name))
		if name == "Trailer" {
			for _, t := range strings.Split(string(f.Value), ",") {
				if t = strings.TrimSpace(t); t != "" {
					w.trailers = append(w.trailers, t)
				}
			}
		}
		hdr[name] = append(hdr[name], string(f.Value))
	}
	hdr.Set("Server", "gatehouse")
	if contentLength >= 0 && status != 304 && status != 204 {
		hdr.Set("Content-Length", itoa(contentLength))
	}
	w.w.WriteHeader(status)
	return nil
}

func (w *responseWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) Flush() error {
	if f, ok := w.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (w *responseWriter) Finish(trailers exchange.Headers) error {
	hdr := w.w.Header()
	for _, f := range trailers {
		hdr.Add(http.TrailerPrefix+string(f.Name), string(f.Value))
	}
	return nil
}

func (w *responseWriter) Hijack() (net.Conn, io.Reader, error) {
	return nil, nil, http.ErrNotSupported
}

func (w *responseWriter) Abort() { w.aborted = true }

func (w *responseWriter) StopBody() { w.body.Close() }

func (w *responseWriter) Written() (bool, int64) { return w.headSent, w.bytes }

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
