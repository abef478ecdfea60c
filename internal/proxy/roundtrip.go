package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/route"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// This file is the second forwarding path: targets of pools with transport
// h2 (HTTP/2 over TLS, ALPN h2) or h2c (HTTP/2 with prior knowledge over
// TCP) are reached through golang.org/x/net/http2's Transport. The request
// head is decided by the same writeRequestHead as on the HTTP/1.1 path, the
// response head filtered by the same responseFields, and retries, passive
// health and balancing run in the same Forward loop.

// NewH2Transport returns the HTTP/2 transport of one backend at addr: over
// TLS with tlsCfg (which must name the server), or h2c when tlsCfg is nil.
// Connect and handshake share dialTimeout; a failure there is reported as a
// connection failure (retried like a refused connection).
func NewH2Transport(addr string, tlsCfg *tls.Config, dialTimeout, idleTimeout time.Duration, maxHeader int) http.RoundTripper {
	tr := &http2.Transport{
		AllowHTTP:          tlsCfg == nil,
		TLSClientConfig:    tlsCfg,
		DisableCompression: true,
		IdleConnTimeout:    idleTimeout,
		// A connection silent this long is pinged; one that does not answer
		// is closed, and its streams fail (a backend gone without a FIN).
		ReadIdleTimeout: 30 * time.Second,
		PingTimeout:     10 * time.Second,
	}
	if maxHeader > 0 {
		tr.MaxHeaderListSize = uint32(maxHeader)
	}
	tr.DialTLSContext = func(ctx context.Context, _, _ string, cfg *tls.Config) (net.Conn, error) {
		if dialTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, dialTimeout)
			defer cancel()
		}
		d := net.Dialer{KeepAlive: 30 * time.Second}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, &dialError{err}
		}
		if tlsCfg == nil {
			return nc, nil
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, &dialError{&h1.TLSError{Err: err}}
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
			tc.Close()
			return nil, &dialError{errors.New("backend did not negotiate h2 (ALPN " + p + ")")}
		}
		return tc, nil
	}
	return tr
}

// dialError is a connection to a backend that could not be opened.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// respHeaderTimeout is the response head not arriving in time.
type respHeaderTimeout struct{}

func (respHeaderTimeout) Error() string   { return "timeout awaiting response head" }
func (respHeaderTimeout) Timeout() bool   { return true }
func (respHeaderTimeout) Temporary() bool { return true }

var errBodyStopped = errors.New("proxy: request body no longer read")

// roundTrip is one attempt over an http.RoundTripper.
type roundTrip struct {
	res    *http.Response
	body   *rtBody // nil for a request without a body
	cancel context.CancelCauseFunc

	ended    bool
	mu       sync.Mutex
	timer    *time.Timer
	headSeen bool
	timeout  time.Duration
}

// armTimeout starts the wait for the response head (from the end of the
// request body, as on the HTTP/1.1 path).
func (rt *roundTrip) armTimeout() {
	if rt.timeout <= 0 {
		return
	}
	rt.mu.Lock()
	if !rt.headSeen && rt.timer == nil {
		rt.timer = time.AfterFunc(rt.timeout, func() { rt.cancel(respHeaderTimeout{}) })
	}
	rt.mu.Unlock()
}

func (rt *roundTrip) headArrived() {
	rt.mu.Lock()
	rt.headSeen = true
	if rt.timer != nil {
		rt.timer.Stop()
	}
	rt.mu.Unlock()
}

// touched reports whether the transport began reading the request body: it
// cannot be sent again.
func (rt *roundTrip) touched() bool { return rt.body != nil && rt.body.touched.Load() }

// end releases the attempt: the stream is cancelled if still open, and the
// request body is never read again once end returns (the exchange owns it).
func (rt *roundTrip) end(w exchange.ResponseWriter) {
	if rt.ended {
		return
	}
	rt.ended = true
	rt.headArrived()
	rt.cancel(context.Canceled)
	if rt.res != nil {
		rt.res.Body.Close()
	}
	if b := rt.body; b != nil {
		b.closed.Store(true)
		if w != nil && b.touched.Load() && !b.eof.Load() {
			// A read blocked on the client returns.
			w.StopBody()
		}
		b.mu.Lock()
		//lint:ignore SA2001 waits for a read in progress
		b.mu.Unlock()
	}
}

// rtBody hands the exchange's body to the transport. Close does not close
// it (the exchange owns it); reads stop for good at roundTrip.end.
type rtBody struct {
	rt      *roundTrip
	req     *exchange.Request
	hreq    *http.Request
	touched atomic.Bool
	eof     atomic.Bool
	closed  atomic.Bool
	err     error // the client's body failed; read after end

	mu sync.Mutex // held during a read
}

func (b *rtBody) Read(p []byte) (int, error) {
	b.touched.Store(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return 0, errBodyStopped
	}
	n, err := b.req.Body.Read(p)
	switch {
	case err == io.EOF:
		if b.req.Trailers != nil && b.hreq.Trailer != nil {
			for _, h := range *b.req.Trailers {
				if !isHopByHop(h.Name) {
					k := http.CanonicalHeaderKey(string(h.Name))
					b.hreq.Trailer[k] = append(b.hreq.Trailer[k], string(h.Value))
				}
			}
		}
		b.eof.Store(true)
		b.rt.armTimeout()
	case err != nil:
		b.err = &clientBodyError{err}
		return n, b.err
	}
	return n, err
}

func (b *rtBody) Close() error { return nil }

// h2Head collects what writeRequestHead decides for an http.Request.
type h2Head struct {
	method, prefix, path, query []byte
	hasQuery                    bool
	buf                         bytes.Buffer
	bw                          *bufio.Writer
}

func (h *h2Head) WriteRequestLine(method, prefix, path, query []byte, hasQuery bool) {
	h.method, h.prefix, h.path, h.query, h.hasQuery = method, prefix, path, query, hasQuery
}

func (h *h2Head) WriteField(name, value []byte) {
	h.bw.Write(name)
	h.bw.WriteString(": ")
	h.bw.Write(value)
	h.bw.WriteString("\r\n")
}

func (h *h2Head) Writer() *bufio.Writer { return h.bw }

// notForH2 are the fields HTTP/2 forbids or frames itself (RFC 9113 §8.2.2);
// TE passes only as "trailers", which is all writeRequestHead sends.
func notForH2(n string) bool {
	switch strings.ToLower(n) {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length", "expect", "host":
		return true
	}
	return false
}

// newRequest builds the backend request of an exchange.
func newRequest(ctx context.Context, req *exchange.Request, r *route.Route, pool *upstream.Pool, t *upstream.Target, trusted bool, ct *connTokens) *http.Request {
	h := &h2Head{}
	h.bw = bufio.NewWriterSize(&h.buf, 1024)
	writeRequestHead(h, req, r, pool, t, trusted, ct)
	h.bw.Flush()

	path := h.path
	if len(h.prefix) > 0 {
		if h.prefix[len(h.prefix)-1] == '/' && len(path) > 0 && path[0] == '/' {
			path = path[1:]
		}
		path = append(append([]byte{}, h.prefix...), path...)
	}
	scheme := "http"
	if t.URL != nil && t.URL.Scheme == "https" {
		scheme = "https"
	}
	hreq := &http.Request{
		Method:     string(h.method),
		URL:        &url.URL{Scheme: scheme, Host: t.Addr, Opaque: string(path), RawQuery: string(h.query), ForceQuery: h.hasQuery && len(h.query) == 0},
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     make(http.Header, 16),
	}
	for rest := h.buf.Bytes(); len(rest) > 0; {
		line, more, _ := bytes.Cut(rest, []byte("\r\n"))
		rest = more
		name, value, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			continue
		}
		k := http.CanonicalHeaderKey(string(name))
		if k == "Host" {
			hreq.Host = string(value)
			continue
		}
		if notForH2(k) {
			continue
		}
		hreq.Header[k] = append(hreq.Header[k], string(value))
	}
	// Trailers the client announces are announced to the backend, and their
	// values filled in once the body has ended.
	if v := req.Header.Get("Trailer"); v != nil {
		hreq.Trailer = http.Header{}
		for _, name := range strings.Split(string(v), ",") {
			if name = strings.TrimSpace(name); name != "" {
				hreq.Trailer[http.CanonicalHeaderKey(name)] = nil
			}
		}
	}
	return hreq.WithContext(ctx)
}

// tryRT sends the request to t over its RoundTripper and waits for the
// response head.
func (f *Forwarder) tryRT(ctx context.Context, req *exchange.Request, r *route.Route, pool *upstream.Pool, t *upstream.Target, st *state, trusted bool) attempt {
	ctx, cancel := context.WithCancelCause(ctx)
	rt := &roundTrip{cancel: cancel, timeout: pool.ResponseHeaderTimeout}
	hreq := newRequest(ctx, req, r, pool, t, trusted, &st.ct)
	if req.ContentLength != 0 {
		rt.body = &rtBody{rt: rt, req: req, hreq: hreq}
		hreq.Body = rt.body
		hreq.ContentLength = req.ContentLength // -1: unknown
		if hreq.Trailer == nil && req.ContentLength < 0 {
			// Trailers the client did not announce go too.
			hreq.Trailer = http.Header{}
		}
	} else {
		rt.armTimeout()
	}
	res, err := t.RoundTripper.RoundTrip(hreq)
	rt.headArrived()
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, respHeaderTimeout{}) {
			err = cause
		}
		var de *dialError
		return attempt{rt: rt, err: err, connectFailed: errors.As(err, &de)}
	}
	rt.res = res
	return attempt{rt: rt}
}

// finishRT relays the response of the last attempt over a RoundTripper, or
// the error page.
func (f *Forwarder) finishRT(req *exchange.Request, w exchange.ResponseWriter, r *route.Route, pool *upstream.Pool, t *upstream.Target, a *attempt, st *state, res *Result) {
	rt := a.rt
	defer rt.end(w)
	if a.err != nil {
		if b := rt.body; b != nil {
			rt.end(w)
			if b.err != nil {
				res.Status = WriteError(w, clientBodyStatus(b.err))
				return
			}
		}
		f.Log.Warn("backend exchange failed", "upstream", pool.Name, "target", t.Addr, "err", a.err)
		res.Status = WriteError(w, statusForError(a.err))
		return
	}
	hres := rt.res
	res.Status = hres.StatusCode
	fields := make(exchange.Headers, 0, len(hres.Header)+1)
	for k, vv := range hres.Header {
		for _, v := range vv {
			fields = append(fields, exchange.Header{Name: []byte(k), Value: []byte(v)})
		}
	}
	if len(hres.Trailer) > 0 {
		names := make([]string, 0, len(hres.Trailer))
		for k := range hres.Trailer {
			names = append(names, k)
		}
		fields = append(fields, exchange.Header{Name: []byte("Trailer"), Value: []byte(strings.Join(names, ", "))})
	}
	cl := hres.ContentLength
	if len(hres.Trailer) > 0 && string(req.Method) != "HEAD" {
		// Trailers follow only a body of unknown length (chunked in HTTP/1.1).
		cl = -1
	}
	head := h1.Response{Status: hres.StatusCode, Header: fields, ContentLength: cl, Chunked: cl < 0}
	st.out = f.responseFields(st.out[:0], req, &head, r, pool, &st.ct, false)
	if err := w.WriteHead(hres.StatusCode, nil, st.out, cl); err != nil {
		return
	}
	buf := st.buffer()
	for {
		n, err := hres.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			// Every message of a stream (gRPC) goes on at once.
			if w.Flush() != nil {
				return
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			// The backend broke off mid-body: the client must see a broken
			// message, not a complete short one.
			w.Abort()
			return
		}
	}
	var trailers exchange.Headers
	for k, vv := range hres.Trailer {
		for _, v := range vv {
			trailers = append(trailers, exchange.Header{Name: []byte(k), Value: []byte(v)})
		}
	}
	w.Finish(trailers)
}
