package h1

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Handler answers one exchange.
type Handler interface {
	ServeExchange(req *exchange.Request, w exchange.ResponseWriter)
}

// Limits bound what one client may send; they may change on reload, so the
// server reads them per request.
type Limits struct {
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	MaxBodyBytes      int64 // 0: unlimited
	// BodyReadTimeout bounds the wait for each read of a request body.
	BodyReadTimeout time.Duration
	// WriteTimeout bounds each wait for the client to take response
	// bytes (0: none); see connWriter.
	WriteTimeout time.Duration
	// MinBodyRate (bytes per second, 0: off) over BodyRateWindow of
	// waiting is the slowest request body accepted (pace.go).
	MinBodyRate    int64
	BodyRateWindow time.Duration
}

// Server runs the HTTP/1.1 connection loop.
type Server struct {
	Handler Handler
	Limits  func() *Limits
	// H2C, when set, takes connections that open with the HTTP/2 preface.
	H2C func(c net.Conn, buffered io.Reader)
	Log *slog.Logger
	// TLS marks connections as HTTPS for the exchange.
	TLS bool
	// ParkAfter is how long a connection of ServeConnParkable waits for
	// its next request on a goroutine of its own before it is parked
	// (park_linux.go); zero means one second.
	ParkAfter time.Duration

	parkMu     sync.Mutex
	parker     *parker // nil until a connection parks (park_linux.go)
	parkWarned atomic.Bool
}

const readBufSize = 8 << 10
const writeBufSize = 8 << 10

type conn struct {
	srv  *Server
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	head []byte
	req  exchange.Request
	body Body
	rw   responseWriter
	cw   connWriter
	// tcp is the socket under nc, for splice: nc itself, or what a wrapper
	// that only changes the addresses (PROXY protocol) has underneath.
	tcp *net.TCPConn

	remote, local netip.AddrPort
	tls           *exchange.TLSInfo // nil on plaintext connections

	sock sock
	// idleArmed is when serveRaw last set the idle read deadline (zero:
	// the read deadline is something else now).
	idleArmed time.Time
	idleFor   time.Duration // the idle timeout
	idleTimer time.Duration // what the deadline was set to: idleFor or parkAfter
	parkable  bool
	// serveRaw's callback and the state it works on.
	rawCallback func(uintptr) bool
	rawState    *ConnState
	rawOut      rawOutcome
	// done, when set, is what ServeConnParkable's caller runs once the
	// connection has ended; such a connection may be parked.
	done func()
}

var connPool = sync.Pool{New: func() any {
	c := &conn{head: make([]byte, 0, 1024)}
	c.rw.c = c
	c.cw.c = c
	return c
}}

// A connection holds its read and write buffers only while it has work:
// one parked between keep-alive requests gives them back, as nginx frees its
// buffers on an idle connection, so that thousands of idle clients cost no
// buffer memory (16 KiB each otherwise) and busy ones reuse buffers that are
// already in memory and in cache.
var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}
)

func takeBuffers(r io.Reader, w io.Writer) (*bufio.Reader, *bufio.Writer) {
	br, bw := readerPool.Get().(*bufio.Reader), writerPool.Get().(*bufio.Writer)
	br.Reset(r)
	bw.Reset(w)
	return br, bw
}

// putBuffers gives buffers back, dropping what they hold (only a failed
// connection leaves anything).
func putBuffers(br *bufio.Reader, bw *bufio.Writer) {
	br.Reset(nil)
	readerPool.Put(br)
	bw.Reset(nil)
	writerPool.Put(bw)
}

func (c *conn) takeBuffers() {
	if c.br == nil {
		c.br, c.bw = takeBuffers(&c.sock, &c.cw)
	}
}

func (c *conn) putBuffers() {
	if c.br != nil {
		c.body.br = nil
		putBuffers(c.br, c.bw)
		c.br, c.bw = nil, nil
	}
}

// Deadline is the time d from now, or no deadline (the zero time) for a
// zero d, which the configuration uses for "no limit".
func Deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// ConnState lets the owner of a connection close it when it is idle (for
// graceful shutdown) and tell when it has gone.
type ConnState struct {
	idle     atomic.Bool
	draining atomic.Bool
	served   atomic.Bool // at least one request answered
	parked   atomic.Pointer[parked]
}

// Idle reports whether the connection is waiting for a next request.
func (s *ConnState) Idle() bool { return s.idle.Load() }

// KeepAliveIdle reports whether the connection is idle between requests,
// having answered one: what may be closed to make room for new clients. A
// new connection is not, since its first request is likely already in flight.
func (s *ConnState) KeepAliveIdle() bool { return s.idle.Load() && s.served.Load() }

// Drain asks the connection to close after the current response; it returns
// true if the connection was idle (the caller may close it right away).
func (s *ConnState) Drain() bool {
	s.draining.Store(true)
	if e := s.parked.Load(); e != nil {
		// Its new goroutine sees draining and closes it.
		e.p.wake(e)
	}
	return s.idle.Load()
}

// ServeConn serves HTTP/1.1 on nc until the client or a limit closes it.
// It closes nc unless the connection was handed over (upgrade, h2c).
func (s *Server) ServeConn(nc net.Conn, st *ConnState) { s.serveConn(nc, st, nil, true, nil) }

// ServeTLSConn is ServeConn for a connection whose TLS handshake is done;
// its requests carry info.
func (s *Server) ServeTLSConn(nc net.Conn, st *ConnState, info *exchange.TLSInfo) {
	s.serveConn(nc, st, info, true, nil)
}

// ServeConnParkable is ServeConn for a caller that need not keep a
// goroutine on the connection: one idle for long between requests is parked
// (park_linux.go) and ServeConnParkable returns before it has ended. done
// is called once the connection has ended, either way.
func (s *Server) ServeConnParkable(nc net.Conn, st *ConnState, done func()) {
	s.serveConn(nc, st, nil, true, done)
}

func (s *Server) parkAfter() time.Duration {
	if s.ParkAfter > 0 {
		return s.ParkAfter
	}
	return time.Second
}

// resume serves a parked connection again, on a goroutine of its own.
func (s *Server) resume(nc net.Conn, st *ConnState, done func()) {
	if st.draining.Load() {
		// Woken to be closed (a shutdown, or room for a new client): no
		// conn state or buffers for that.
		nc.Close()
		done()
		return
	}
	s.serveConn(nc, st, nil, false, done)
}

// connEnd is how serve let go of a connection.
type connEnd uint8

const (
	connClosed     connEnd = iota
	connHandedOver         // upgraded, hijacked or given to HTTP/2
	connParked
)

func (s *Server) serveConn(nc net.Conn, st *ConnState, info *exchange.TLSInfo, first bool, done func()) {
	c := connPool.Get().(*conn)
	c.srv, c.nc, c.tls, c.done = s, nc, info, done
	c.sock.init(nc)
	if first {
		// (A resumed connection takes them when bytes come: its wake-up
		// may be a FIN.)
		c.takeBuffers()
	}
	c.tcp = tcpOf(nc)
	c.remote = addrPort(nc.RemoteAddr())
	c.local = addrPort(nc.LocalAddr())
	end := c.serve(st, first)
	if end == connClosed {
		if c.bw != nil {
			c.bw.Flush()
		}
		nc.Close()
	}
	if end != connParked && done != nil {
		defer done()
	}
	if c.rw.hijacked {
		// The hijacker may still read the buffered reader: this conn is
		// its now, and is not recycled.
		return
	}
	c.putBuffers()
	c.srv, c.nc, c.tcp, c.tls, c.done = nil, nil, nil, nil, nil
	c.sock = sock{}
	// The next connection arms its own idle deadline (armIdle would take
	// a recent one as set).
	c.idleArmed = time.Time{}
	c.cw.timeout, c.cw.armed = 0, time.Time{}
	c.req.Reset()
	c.rw.hijacked = false
	if cap(c.head) <= 64<<10 {
		connPool.Put(c)
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// isH2Preface tells whether the connection opens with the HTTP/2 preface,
// reading more only while what has arrived is still a prefix of it (an
// HTTP/1 request shorter than the preface must not wait for more bytes).
func (c *conn) isH2Preface() bool {
	for n := 1; ; n++ {
		p, err := c.br.Peek(min(max(n, c.br.Buffered()), len(h2Preface)))
		if !bytes.HasPrefix(h2Preface, p) {
			return false
		}
		if len(p) == len(h2Preface) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

func (c *conn) serve(st *ConnState, first bool) connEnd {
	s := c.srv
	c.parkable = c.done != nil && canPark
	for {
		parsed := false
		// The first request goes the blocking way only to be looked at for
		// the HTTP/2 preface.
		if c.sock.rc != nil && (!first || s.H2C == nil) {
			switch c.serveRaw(st) {
			case rawEnd:
				return connClosed
			case rawPark:
				until := time.Time{}
				if c.idleFor > 0 {
					until = c.idleArmed.Add(c.idleFor)
				}
				if s.park(c.nc, c.sock.rc, st, c.done, until) {
					return connParked
				}
				// It waits here, under its real idle timeout; park cleared
				// the write deadline too.
				c.parkable, c.idleArmed, c.cw.armed = false, time.Time{}, time.Time{}
				continue
			case rawParsed:
				parsed = true
			}
			// What is left needs blocking reads: a request with a body or
			// an upgrade (parsed), or a head that has not all come yet.
		}
		lim := s.Limits()
		c.idleArmed = time.Time{}
		if !parsed {
			c.cw.setTimeout(lim.WriteTimeout)
			if !first {
				st.served.Store(true)
			}
			st.idle.Store(true)
			if st.draining.Load() {
				return connClosed
			}
			c.nc.SetReadDeadline(Deadline(lim.IdleTimeout))
			if _, err := c.br.Peek(1); err != nil {
				return connClosed
			}
			st.idle.Store(false)
			if first && s.H2C != nil {
				if c.isH2Preface() {
					c.nc.SetReadDeadline(time.Time{})
					c.nc.SetWriteDeadline(time.Time{})
					p, _ := c.br.Peek(c.br.Buffered())
					s.H2C(c.nc, io.MultiReader(bytes.NewReader(append([]byte(nil), p...)), c.nc))
					return connHandedOver
				}
			}
			c.nc.SetReadDeadline(Deadline(lim.ReadHeaderTimeout))
			if !c.readRequest(lim) {
				return connClosed
			}
		}
		first = false
		switch c.handle(st, lim) {
		case handledHijacked:
			return connHandedOver
		case handledClose:
			return connClosed
		}
	}
}

// readRequest reads and parses the next request head, answering a bad one.
func (c *conn) readRequest(lim *Limits) bool {
	head, err := ReadHead(c.br, c.head, lim.MaxHeaderBytes)
	c.head = head[:0]
	if err != nil {
		c.refuse(err)
		return false
	}
	if err := ParseRequest(head, &c.req); err != nil {
		c.refuse(err)
		return false
	}
	return true
}

type handled uint8

const (
	handledKeepAlive handled = iota
	handledClose
	handledHijacked
)

// handle serves the parsed request in c.req. The head's read deadline
// stays: a bodyless request reads nothing more until the next head, and a
// body sets one per read.
func (c *conn) handle(st *ConnState, lim *Limits) handled {
	if !c.prepareBody(lim) {
		return handledClose
	}
	if st.draining.Load() {
		c.req.Close = true
	}
	c.serveOne()
	if c.rw.hijacked {
		return handledHijacked
	}
	if !c.finishRequest() {
		return handledClose
	}
	return handledKeepAlive
}

// prepareBody sets the request body up, refusing one over the limit at once.
func (c *conn) prepareBody(lim *Limits) bool {
	r := &c.req
	r.RemoteAddr, r.LocalAddr, r.TLS, r.TLSInfo = c.remote, c.local, c.srv.TLS || c.tls != nil, c.tls
	switch {
	case r.Chunked:
		c.body.reset(c.br, bodyChunked, 0, lim.MaxBodyBytes, lim.MaxHeaderBytes)
	case r.ContentLength > 0:
		if lim.MaxBodyBytes > 0 && r.ContentLength > lim.MaxBodyBytes {
			c.refuse(ErrBodyTooLarge)
			return false
		}
		c.body.reset(c.br, bodyFixed, r.ContentLength, 0, 0)
		c.body.raw = c.nc
		if c.tcp != nil {
			c.body.raw = c.tcp
		}
	default:
		c.body.reset(c.br, bodyNone, 0, 0, 0)
	}
	if r.Chunked || r.ContentLength > 0 {
		c.body.readTimeout, c.body.conn = lim.BodyReadTimeout, c.nc
		if lim.MinBodyRate > 0 {
			c.body.pace.start(lim.MinBodyRate, lim.BodyRateWindow)
		}
		if lim.BodyReadTimeout <= 0 && lim.MinBodyRate <= 0 {
			c.nc.SetReadDeadline(time.Time{})
		}
	}
	r.Body = &c.body
	r.Trailers = &c.body.Trailers
	c.rw.reset(r)
	return true
}

// serveOne runs the handler, turning a panic into a 500 (or a closed
// connection once the head is out) so that one bad request cannot stop the server.
func (c *conn) serveOne() {
	defer func() {
		if p := recover(); p != nil {
			c.srv.Log.Error("panic serving request", "panic", p, "stack", string(debug.Stack()))
			c.rw.closeAfter = true
			switch {
			case c.rw.hijacked:
			case !c.rw.headSent:
				c.writeError(500, "500 Internal Server Error\n")
			default:
				// The body is cut short: the client must see it unfinished.
				c.rw.Abort()
			}
		}
	}()
	c.srv.Handler.ServeExchange(&c.req, &c.rw)
	if !c.rw.headSent && !c.rw.hijacked {
		c.writeError(500, "500 Internal Server Error\n")
	}
}

// finishRequest ends the response and decides whether the connection can
// carry another request.
func (c *conn) finishRequest() bool {
	rw := &c.rw
	if !rw.finished {
		if err := rw.Finish(nil); err != nil {
			return false
		}
	}
	if rw.closeAfter || c.req.Close || rw.writeErr != nil {
		c.bw.Flush()
		return false
	}
	if !c.body.Done() {
		// An unread body must be skipped before the next request; a client that
		// waits for 100 Continue never sends it, so that connection is closed.
		if c.req.Expect100 && !rw.sent100 || !c.drainBody() {
			c.bw.Flush()
			return false
		}
	}
	// Always flush: holding a response back for a pipelined request that
	// may wait on a slow backend (or never complete) would delay or lose it.
	return c.bw.Flush() == nil
}

const maxDrain = 256 << 10

func (c *conn) drainBody() bool {
	n, err := io.Copy(io.Discard, io.LimitReader(&c.body, maxDrain))
	_ = n
	return err == nil && c.body.Done()
}

// refuse answers a message the parser rejected and ends the connection.
func (c *conn) refuse(err error) {
	if e, ok := IsHeadError(err); ok {
		c.writeError(e.Status, statusLine(e.Status))
		c.bw.Flush()
		return
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.writeError(408, statusLine(408))
		c.bw.Flush()
	}
}

// writeError writes a complete short plain-text response.
func (c *conn) writeError(status int, body string) {
	c.rw.closeAfter = true
	WriteSimple(c.bw, status, body, true)
}

// WriteSimple writes a whole small text/plain response.
func WriteSimple(bw *bufio.Writer, status int, body string, close bool) {
	writeStatusLine(bw, 1, status, nil)
	writeDate(bw)
	bw.WriteString("Server: gatehouse\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n")
	if close {
		bw.WriteString("Connection: close\r\n")
	}
	writeContentLength(bw, int64(len(body)))
	bw.WriteString("\r\n")
	bw.WriteString(body)
}
