// Package exchange is the one request/response view shared by every protocol
// engine (our HTTP/1.1 engine, HTTP/2 through x/net/http2). Engines fill a Request
// and provide a ResponseWriter; the router and the proxy only ever see these.
//
// Byte slices in a Request point into the engine's connection buffer: they are
// valid until the handler returns and must not be retained.
package exchange

import (
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
)

// Request is one client request. It is reset and reused by the engine.
type Request struct {
	Method []byte
	Path   []byte // raw (still percent-encoded) path of the request target
	Query  []byte // raw query after '?', without it
	// HasQuery tells "/a?" (empty query) from "/a".
	HasQuery bool
	Host     []byte // Host header (or authority), as sent
	// ProtoMinor is the HTTP/1.x minor version (1 for HTTP/2 exchanges).
	ProtoMinor int
	// HTTP2 is set by the HTTP/2 engine (for logs; semantics follow ProtoMinor).
	HTTP2  bool
	Header Headers
	// ContentLength is -1 when the length is unknown (chunked, HTTP/2 without it).
	ContentLength int64
	Body          io.Reader // never nil; reads EOF at once when there is no body
	// Chunked is true when the body came with Transfer-Encoding: chunked.
	Chunked bool
	// Trailers are filled in by the engine once Body has returned io.EOF.
	Trailers   *Headers
	Expect100  bool   // Expect: 100-continue
	Upgrade    []byte // Upgrade header value when Connection: upgrade asks for it
	Close      bool   // the client asked to close (or HTTP/1.0 without keep-alive)
	TLS        bool
	RemoteAddr netip.AddrPort
	LocalAddr  netip.AddrPort

	// ID identifies the request in logs, traces and to the backend (the
	// request_id setting); it points into idBuf or into the request head.
	ID    []byte
	idBuf [32]byte
}

// Proto is the protocol as logs write it: HTTP/1.0, HTTP/1.1, HTTP/2.0.
func (r *Request) Proto() string {
	switch {
	case r.HTTP2:
		return "HTTP/2.0"
	case r.ProtoMinor == 0:
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// NewID sets ID to 128 random bits in hex, as nginx's $request_id, without
// allocating.
func (r *Request) NewID() []byte {
	const hex = "0123456789abcdef"
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 16; i++ {
		r.idBuf[i] = hex[a>>60]
		r.idBuf[16+i] = hex[b>>60]
		a <<= 4
		b <<= 4
	}
	r.ID = r.idBuf[:]
	return r.ID
}

// Reset clears r for reuse, keeping allocated capacity.
func (r *Request) Reset() {
	h := r.Header[:0]
	*r = Request{Header: h}
}

// ResponseWriter is how a handler answers. Exactly one WriteHead (after any
// number of Write1xx) precedes the body.
type ResponseWriter interface {
	// Write1xx sends an informational response (100 Continue, 103 Early Hints).
	Write1xx(status int, h Headers) error
	// WriteHead sends the status and headers. contentLength is the body length,
	// or -1 when unknown (the engine then chooses chunked or close-delimited).
	// Framing headers in h (Content-Length, Transfer-Encoding) are ignored.
	WriteHead(status int, reason []byte, h Headers, contentLength int64) error
	Write(p []byte) (int, error)
	// Flush sends buffered bytes to the client now.
	Flush() error
	// Finish ends the body, sending trailers when the protocol can.
	Finish(trailers Headers) error
	// Hijack takes the raw connection over after a 101 response (HTTP/1.1 only);
	// the reader returns bytes already buffered from the client first.
	Hijack() (net.Conn, io.Reader, error)
	// StopBody says the request body will not be read further (the backend
	// answered before taking all of it): a reader blocked on it returns, and
	// the connection is not reused for another request.
	StopBody()
	// Abort breaks the response off so that the client sees it incomplete
	// (the connection is closed; HTTP/2 resets the stream).
	Abort()
	// Written reports whether WriteHead has been called, and the body bytes since.
	Written() (headSent bool, bodyBytes int64)
}
