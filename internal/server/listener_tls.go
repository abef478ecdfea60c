package server

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/h2"
	"github.com/gatehouse-proxy/gatehouse/internal/h3"
	"github.com/gatehouse-proxy/gatehouse/internal/tlsconf"
)

// tlsServing is the TLS side of a listener: the handshake, then HTTP/1.1
// or HTTP/2 as ALPN chose, and HTTP/3 on the same port over UDP when
// configured. It is replaced as a whole on reload, except for the
// certificate manager, which lives as long as the listener so that ticket
// keys, OCSP staples and ACME state carry over.
type tlsServing struct {
	srv              *Server
	mgr              *tlsconf.Manager
	h1               *h1.Server
	h2               *h2.Server
	h3               *h3.Server // nil unless protocols has h3
	handshakeTimeout time.Duration
	subjectHeader    []byte
	h2Key            h2Key // what h2 was built with
}

// h2Key is what the HTTP/2 server is built from: while it stays the same a
// reload keeps the server, and its connections are not sent GOAWAY.
type h2Key struct {
	idle    time.Duration
	maxHead int
	altSvc  string
}

// updateTLS brings the listener's TLS side in line with lc: started,
// updated or stopped. A failure leaves the running TLS side as it was.
func (l *listener) updateTLS(s *Server, lc config.Listener, cfg *config.Config) error {
	cur := l.tls.Load()
	if lc.TLS == nil {
		if cur != nil {
			l.tls.Store(nil)
			go cur.close(context.Background(), true)
		}
		return nil
	}
	_, port, _ := net.SplitHostPort(l.ln.Addr().String())
	tlsPort, _ := strconv.Atoi(port)
	settings := tlsconf.Settings{TLS: lc.TLS, Protocols: lc.Protocols, HTTPChallengePort: s.httpChallengePort(cfg), TLSALPNPort: tlsPort}
	var mgr *tlsconf.Manager
	var err error
	if cur != nil {
		mgr = cur.mgr
		err = mgr.Update(settings)
	} else {
		mgr, err = tlsconf.New(settings, s.log.With("listener", lc.Addr), s.TLSTiming)
	}
	if err != nil {
		return err
	}
	snapLimits := func() *h1.Limits { return &s.snap.Load().Limits }
	lim := cfg.Limits
	ts := &tlsServing{srv: s, mgr: mgr, handshakeTimeout: lc.TLS.HandshakeTimeout}
	if ca := lc.TLS.ClientAuth; ca != nil && ca.SubjectHeader != "" {
		ts.subjectHeader = []byte(ca.SubjectHeader)
	}
	var handler h1.Handler = s
	wantH3 := slices.Contains(lc.Protocols, "h3")
	if wantH3 {
		handler = &altSvcHandler{next: s, value: []byte(`h3=":` + port + `"; ma=86400`)}
	}
	ts.h1 = &h1.Server{Handler: handler, Limits: snapLimits, Log: s.log, TLS: true}
	altSvc := ""
	if a, ok := handler.(*altSvcHandler); ok {
		altSvc = string(a.value)
	}
	ts.h2Key = h2Key{lim.IdleTimeout, int(lim.MaxHeaderBytes), altSvc}
	if cur != nil && cur.h2Key == ts.h2Key {
		ts.h2 = cur.h2
	} else {
		ts.h2 = h2.NewWithLimits(handler, true, h2.Limits{IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: int(lim.MaxHeaderBytes)})
	}
	switch {
	case wantH3 && cur != nil && cur.h3 != nil:
		ts.h3 = cur.h3 // the socket stays; its handler is the server itself
		cur.h3 = nil
	case wantH3:
		if ts.h3, err = h3.Listen(l.ln.Addr().String(), mgr.Config(), &h3Handler{l: l, next: s}, h3.Limits{
			HandshakeTimeout: lc.TLS.HandshakeTimeout, IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: int(lim.MaxHeaderBytes),
		}); err != nil {
			if cur == nil {
				mgr.Close()
			}
			return err
		}
		s.log.Info("listening", "addr", ts.h3.Addr().String(), "protocol", "h3")
	}
	l.tls.Store(ts)
	s.setACME(mgr, mgr.HasACME())
	switch {
	case cur == nil:
	case cur.h2 != ts.h2:
		// Connections already on the old HTTP/2 server finish there.
		go cur.close(context.Background(), false)
	case cur.h3 != nil:
		go cur.h3.Shutdown(context.Background())
	}
	return nil
}

// closeTLS stops the TLS side of a listener that never served.
func (l *listener) closeTLS() {
	if ts := l.tls.Swap(nil); ts != nil {
		ts.close(context.Background(), true)
	}
}

// httpChallengePort is the port of the first plaintext listener, where ACME
// HTTP-01 validation requests arrive.
func (s *Server) httpChallengePort(cfg *config.Config) int {
	for _, lc := range cfg.Listeners {
		if lc.TLS != nil {
			continue
		}
		addr := lc.Addr
		if l, ok := s.listeners[lc.Addr]; ok {
			addr = l.ln.Addr().String()
		}
		_, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		return p
	}
	return 0
}

// serve runs the handshake (bounded by handshake_timeout) and hands the
// connection to the protocol ALPN chose.
func (ts *tlsServing) serve(nc net.Conn, st *h1.ConnState) {
	tc := tls.Server(nc, ts.mgr.Config())
	tc.SetDeadline(time.Now().Add(ts.handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		nc.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	info := exchange.NewTLSInfo(cs)
	info.SubjectHeader = ts.subjectHeader
	switch cs.NegotiatedProtocol {
	case "h2":
		ts.h2.ServeTLSConn(tc, info)
		tc.Close()
	case "acme-tls/1":
		tc.Close() // the handshake was the whole TLS-ALPN-01 validation
	default:
		ts.h1.ServeTLSConn(tc, st, info)
	}
}

// close ends this TLS side: GOAWAY to its HTTP/2 connections, HTTP/3 shut
// down; with all, the certificate manager too (the listener is going).
func (ts *tlsServing) close(ctx context.Context, all bool) {
	var wg sync.WaitGroup
	wg.Go(func() { ts.h2.Shutdown(ctx) })
	if ts.h3 != nil {
		wg.Go(func() { ts.h3.Shutdown(ctx) })
	}
	wg.Wait()
	if all {
		ts.srv.setACME(ts.mgr, false)
		ts.mgr.Close()
	}
}

// h3Handler gives HTTP/3 requests the listener's current subject header.
type h3Handler struct {
	l    *listener
	next h1.Handler
}

func (h *h3Handler) ServeExchange(req *exchange.Request, w exchange.ResponseWriter) {
	if ts := h.l.tls.Load(); ts != nil && req.TLSInfo != nil {
		req.TLSInfo.SubjectHeader = ts.subjectHeader
	}
	h.next.ServeExchange(req, w)
}

// altSvcHandler advertises HTTP/3 on the responses of HTTP/1.1 and HTTP/2.
type altSvcHandler struct {
	next  h1.Handler
	value []byte
}

var altSvcPool = sync.Pool{New: func() any { return new(altSvcWriter) }}

func (h *altSvcHandler) ServeExchange(req *exchange.Request, w exchange.ResponseWriter) {
	aw := altSvcPool.Get().(*altSvcWriter)
	aw.ResponseWriter, aw.value = w, h.value
	h.next.ServeExchange(req, aw)
	aw.ResponseWriter, aw.h = nil, aw.h[:0]
	altSvcPool.Put(aw)
}

type altSvcWriter struct {
	exchange.ResponseWriter
	value []byte
	h     exchange.Headers
}

var altSvcName = []byte("Alt-Svc")

func (w *altSvcWriter) WriteHead(status int, reason []byte, h exchange.Headers, contentLength int64) error {
	w.h = append(append(w.h[:0], h...), exchange.Header{Name: altSvcName, Value: w.value})
	return w.ResponseWriter.WriteHead(status, reason, w.h, contentLength)
}

// ReadFrom keeps the engine's copy path behind the wrapper.
func (w *altSvcWriter) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}
