package server

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/observe"
	"github.com/gatehouse-proxy/gatehouse/internal/peerlimit"
	"github.com/gatehouse-proxy/gatehouse/internal/proxyproto"
)

// guard is a listener's admission control: how many connections it holds,
// per client address too, how many requests each address has in progress,
// and the PROXY protocol. Settings change on reload; counters stay with
// the listener.
type guard struct {
	set   atomic.Pointer[guardSettings]
	open  atomic.Int64
	freed chan struct{} // a connection closed while the listener was full
	conns peerlimit.Table
	reqs  peerlimit.Table
}

type guardSettings struct {
	maxConns, maxConnsPerIP, maxReqsPerIP int
	proxyProtocol                         bool
	proxyFrom                             []netip.Prefix
}

func newGuard(lc config.Listener) *guard {
	g := &guard{freed: make(chan struct{}, 1)}
	g.configure(lc)
	return g
}

func (g *guard) configure(lc config.Listener) {
	g.set.Store(&guardSettings{
		maxConns:      lc.MaxConnections,
		maxConnsPerIP: lc.MaxConnectionsPerIP,
		maxReqsPerIP:  lc.MaxRequestsPerIP,
		proxyProtocol: lc.ProxyProtocol,
		proxyFrom:     lc.ProxyProtocolFrom,
	})
}

// waitForRoom blocks the accept loop while the listener holds
// max_connections. Not accepting is what HAProxy's maxconn does: new
// connections wait in the kernel's backlog and are served as soon as a
// slot frees, instead of being accepted only to be reset. To free a slot
// sooner, idle keep-alive connections are closed, as nginx does when it
// runs short of connections. It returns false once the listener closes.
func (l *listener) waitForRoom() bool {
	for {
		max := l.guard.set.Load().maxConns
		if max <= 0 || l.guard.open.Load() < int64(max) {
			return true
		}
		if l.stopped.Load() {
			return false
		}
		l.closeIdle(1)
		select {
		case <-l.guard.freed:
		case <-time.After(50 * time.Millisecond):
			// Settings may have changed, or the listener closed.
		}
	}
}

// closeIdle closes up to n keep-alive connections waiting for a next
// request (never one that has not sent its first: that request is likely
// on its way, and closing it would lose it).
func (l *listener) closeIdle(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if n == 0 {
			return
		}
		if c.state.KeepAliveIdle() && c.state.Drain() {
			c.nc.Close()
			n--
		}
	}
}

// closed counts a connection gone and wakes the accept loop.
func (g *guard) closed() {
	g.open.Add(-1)
	select {
	case g.freed <- struct{}{}:
	default:
	}
}

// admit runs before a connection is served: it reads the PROXY header
// where one is due and applies max_connections_per_ip. It returns the
// connection to serve (reporting the PROXY header's addresses) and the
// client key to release when it ends, or ok false when the connection must
// be closed.
func (g *guard) admit(nc net.Conn, readTimeout time.Duration) (c net.Conn, key netip.Addr, ok bool) {
	st := g.set.Load()
	c = nc
	if st.proxyProtocol {
		var refused bool
		if c, refused = readProxyHeader(nc, st.proxyFrom, readTimeout); refused {
			return nil, netip.Addr{}, false
		}
	}
	if st.maxConnsPerIP <= 0 {
		return c, netip.Addr{}, true
	}
	key = peerlimit.Key(addrOf(c.RemoteAddr()))
	if !g.conns.Acquire(key, st.maxConnsPerIP) {
		return nil, netip.Addr{}, false
	}
	return c, key, true
}

func (g *guard) release(key netip.Addr) {
	if key.IsValid() {
		g.conns.Release(key)
	}
}

// readProxyHeader reads the PROXY header a peer in from (any peer when
// from is empty) must send first. A peer not in from is served as it is:
// if it sends a header anyway, the HTTP parser or the TLS handshake
// refuses those bytes. It returns the connection to serve, or refused.
func readProxyHeader(nc net.Conn, from []netip.Prefix, timeout time.Duration) (net.Conn, bool) {
	tc, isTCP := nc.(*net.TCPConn)
	if !isTCP {
		return nc, true
	}
	if len(from) > 0 && !inPrefixes(addrOf(nc.RemoteAddr()), from) {
		return nc, false
	}
	nc.SetReadDeadline(h1.Deadline(timeout))
	h, err := proxyproto.Read(nc)
	nc.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, true
	}
	if h.Local {
		return nc, false
	}
	return proxyproto.NewConn(tc, h), false
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}

// guardedHandler applies max_requests_per_ip before the server's handler.
type guardedHandler struct {
	s *Server
	g *guard
}

func (h *guardedHandler) ServeExchange(req *exchange.Request, w exchange.ResponseWriter) {
	max := h.g.set.Load().maxReqsPerIP
	if max <= 0 {
		h.s.ServeExchange(req, w)
		return
	}
	// The client behind trusted proxies is the one limited: a CDN's
	// clients must not share one allowance.
	key := peerlimit.Key(clientIP(req, h.s.snap.Load().Forwarder.Trusted))
	if !h.g.reqs.Acquire(key, max) {
		h.s.tooMany(req, w)
		return
	}
	defer h.g.reqs.Release(key)
	h.s.ServeExchange(req, w)
}

var tooManyHeaders = exchange.Headers{
	{Name: []byte("Content-Type"), Value: []byte("text/plain; charset=utf-8")},
	{Name: []byte("X-Content-Type-Options"), Value: []byte("nosniff")},
	{Name: []byte("Cache-Control"), Value: []byte("no-store")},
	{Name: []byte("Retry-After"), Value: []byte("1")},
}

var tooManyBody = []byte("429 Too Many Requests\n")

// tooMany answers 429 to a client over max_requests_per_ip: the client,
// not the server, is over its allowance (RFC 6585 §4), and Retry-After
// says when to come back; 503 would tell load balancers the server is sick.
func (s *Server) tooMany(req *exchange.Request, w exchange.ResponseWriter) {
	start := time.Now()
	if w.WriteHead(429, nil, tooManyHeaders, int64(len(tooManyBody))) == nil {
		w.Write(tooManyBody)
	}
	if al := s.accessLog.Load(); al != nil {
		var buf [64]byte
		al.Log(&observe.Entry{
			Start: start, Client: req.RemoteAddr.AppendTo(buf[:0]), Method: req.Method, Host: req.Host, Path: req.Path,
			Query: req.Query, HasQuery: req.HasQuery, Proto: req.Proto(), Header: req.Header,
			Status: 429, Bytes: int64(len(tooManyBody)), Duration: time.Since(start), Blocked: "max_requests_per_ip",
		})
	}
}
