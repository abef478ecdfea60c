package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Response is a backend's response head, parsed in place.
type Response struct {
	ProtoMinor    int
	Status        int
	Reason        []byte
	Header        exchange.Headers
	ContentLength int64 // -1 when unknown (chunked or until close)
	Chunked       bool
	Close         bool
}

// Transport keeps alive connections to one backend address. Checkout is a
// short critical section on this target's own lock: requests to different
// targets never contend.
type Transport struct {
	Addr        string // host:port
	DialTimeout time.Duration
	IdleTimeout time.Duration
	MaxIdle     int
	MaxHeader   int
	// TLS, when set, makes every connection a TLS client connection with
	// this configuration (ServerName and NextProtos filled in by the
	// caller); the handshake counts against DialTimeout.
	TLS *tls.Config

	mu     sync.Mutex
	idle   []*ClientConn
	closed bool
}

// ClientConn is one connection to a backend, used by one exchange at a time.
type ClientConn struct {
	t        *Transport
	nc       net.Conn
	sock     sock
	br       *bufio.Reader
	bw       *bufio.Writer
	head     []byte
	Resp     Response
	body     Body
	Reused   bool
	lastUsed time.Time
	// broken is set from the request-body goroutine too.
	broken atomic.Bool

	// Send's state, kept here so that its callback is made once.
	sendStep func(uintptr) bool
	sent     bool
	sendErr  error
}

var errTransportClosed = errors.New("h1: transport closed")

// livenessCheckAfter is the idle time after which a pooled connection is
// checked before reuse.
const livenessCheckAfter = 50 * time.Millisecond

// alive reports whether an idle connection is still open and silent: a
// non-blocking peek that finds EOF, an error or unsolicited bytes means the
// connection cannot carry a request.
func alive(nc net.Conn) bool {
	if tc, ok := nc.(*tls.Conn); ok {
		// Any record waiting (a close_notify alert, say) means the backend
		// is done with the connection, as bytes on a plain one do.
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var buf [1]byte
	rerr := rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		_ = n
		ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return rerr == nil && ok
}

// Get returns an idle connection, or dials a new one.
func (t *Transport) Get(ctx context.Context) (*ClientConn, error) {
	now := time.Now()
	t.mu.Lock()
	for n := len(t.idle); n > 0; n = len(t.idle) {
		cc := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		idle := now.Sub(cc.lastUsed)
		if t.IdleTimeout > 0 && idle > t.IdleTimeout {
			t.mu.Unlock()
			cc.nc.Close()
			t.mu.Lock()
			continue
		}
		t.mu.Unlock()
		// After a quiet spell the backend may have closed the connection
		// (most close idle ones within seconds): look before using it. Under
		// load connections idle for microseconds and skip the syscall.
		if idle > livenessCheckAfter && !alive(cc.nc) {
			cc.nc.Close()
			t.mu.Lock()
			continue
		}
		cc.Reused = true
		cc.takeBuffers()
		return cc, nil
	}
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, errTransportClosed
	}
	return t.Dial(ctx)
}

// Dial opens a fresh connection.
func (t *Transport) Dial(ctx context.Context) (*ClientConn, error) {
	d := net.Dialer{Timeout: t.DialTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	if t.TLS != nil {
		if nc, err = t.handshake(ctx, nc); err != nil {
			return nil, err
		}
	}
	cc := &ClientConn{t: t, nc: nc, head: make([]byte, 0, 1024)}
	cc.sock.init(nc)
	cc.takeBuffers()
	return cc, nil
}

// takeBuffers and putBuffers: a pooled idle connection holds no buffers
// (see readerPool).
func (cc *ClientConn) takeBuffers() { cc.br, cc.bw = takeBuffers(&cc.sock, &cc.sock) }

func (cc *ClientConn) putBuffers() {
	cc.body.br = nil
	putBuffers(cc.br, cc.bw)
	cc.br, cc.bw = nil, nil
}

// handshake runs the TLS client handshake on nc within DialTimeout.
func (t *Transport) handshake(ctx context.Context, nc net.Conn) (net.Conn, error) {
	tc := tls.Client(nc, t.TLS)
	if t.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.DialTimeout)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, &TLSError{Err: err}
	}
	return tc, nil
}

// TLSError is a failed TLS handshake with a backend: like a refused
// connection, the request never reached it.
type TLSError struct{ Err error }

func (e *TLSError) Error() string { return "tls handshake: " + e.Err.Error() }
func (e *TLSError) Unwrap() error { return e.Err }

// Release gives the connection back for reuse when its response was read to
// the end and both sides allow keep-alive; otherwise it closes it.
func (cc *ClientConn) Release() {
	if cc.broken.Load() || cc.Resp.Close || !cc.body.Done() || cc.br.Buffered() > 0 || cc.bw.Buffered() > 0 {
		cc.nc.Close()
		return
	}
	t := cc.t
	cc.lastUsed = time.Now()
	cc.putBuffers()
	t.mu.Lock()
	if t.closed || len(t.idle) >= t.MaxIdle {
		t.mu.Unlock()
		cc.nc.Close()
		return
	}
	t.idle = append(t.idle, cc)
	t.mu.Unlock()
}

// Close closes the connection for good.
func (cc *ClientConn) Close() { cc.broken.Store(true); cc.nc.Close() }

// DontReuse keeps the connection out of the pool once the exchange ends
// (its response can still be read).
func (cc *ClientConn) DontReuse() { cc.broken.Store(true) }

// CloseIdle closes every idle connection; with final, later Gets fail.
func (t *Transport) CloseIdle(final bool) {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if final {
		t.closed = true
	}
	t.mu.Unlock()
	for _, cc := range idle {
		cc.nc.Close()
	}
}

// Writer is where the request head and body go.
func (cc *ClientConn) Writer() *bufio.Writer { return cc.bw }

// Conn returns the raw connection and the reader holding bytes already
// received, for tunnels after 101 Switching Protocols.
func (cc *ClientConn) Conn() (net.Conn, io.Reader) {
	cc.broken.Store(true)
	cc.nc.SetReadDeadline(time.Time{})
	return cc.nc, cc.br
}

// RawConn is the connection, for splicing request bodies (a *tls.Conn for
// an https backend, which splice cannot take).
func (cc *ClientConn) RawConn() net.Conn { return cc.nc }

// WriteRequestLine starts a request; prefix (the target's base path) goes
// in front of path.
func (cc *ClientConn) WriteRequestLine(method, prefix, path, query []byte, hasQuery bool) {
	bw := cc.bw
	bw.Write(method)
	bw.WriteByte(' ')
	if len(prefix) > 0 {
		bw.Write(prefix)
		if prefix[len(prefix)-1] == '/' && len(path) > 0 && path[0] == '/' {
			path = path[1:]
		}
	}
	bw.Write(path)
	if hasQuery {
		bw.WriteByte('?')
		bw.Write(query)
	}
	bw.WriteString(" HTTP/1.1\r\n")
}

// WriteField writes one header field.
func (cc *ClientConn) WriteField(name, value []byte) {
	bw := cc.bw
	bw.Write(name)
	bw.WriteString(": ")
	bw.Write(value)
	bw.WriteString("\r\n")
}

// EndHead writes the framing of the body (-1: chunked) and the empty line.
func (cc *ClientConn) EndHead(contentLength int64) {
	switch {
	case contentLength > 0:
		writeContentLength(cc.bw, contentLength)
	case contentLength < 0:
		cc.bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	cc.bw.WriteString("\r\n")
}

// WriteChunk and WriteLastChunk frame a request body of unknown length.
func (cc *ClientConn) WriteChunk(p []byte) error { return writeChunk(cc.bw, p) }
func (cc *ClientConn) WriteLastChunk(trailers exchange.Headers) error {
	return writeLastChunk(cc.bw, trailers)
}

// Send writes the buffered request and waits, under the read deadline
// already set, for the first bytes of the answer. On a plain TCP socket both
// happen inside one RawConn.Read (see sock): the readiness notice is reset
// before the request goes out, so the answer's arrival cannot be missed and
// no read is tried before it. Errors are the write's or the read's, as
// Flush and ReadResponse would report them.
func (cc *ClientConn) Send() error {
	s := &cc.sock
	if s.rc == nil || cc.br.Buffered() > 0 {
		return cc.bw.Flush()
	}
	cc.sent, cc.sendErr = false, nil
	if cc.sendStep == nil {
		cc.sendStep = cc.step // once per connection: a method value allocates
	}
	err := s.rc.Read(cc.sendStep)
	if cc.sendErr != nil {
		return cc.sendErr
	}
	return err
}

// step is Send's RawConn.Read callback: the first call writes the request,
// the later ones (after a readiness notice) read the answer's first bytes.
func (cc *ClientConn) step(fd uintptr) bool {
	s := &cc.sock
	s.fd, s.raw = int(fd), true
	defer func() { s.raw = false }()
	if !cc.sent {
		cc.sent = true
		cc.sendErr = cc.bw.Flush()
		return cc.sendErr != nil
	}
	_, err := cc.br.Peek(1)
	if err == errAgain {
		return false
	}
	cc.sendErr = err
	return true
}

// SetReadDeadline bounds the wait for the response head.
func (cc *ClientConn) SetReadDeadline(t time.Time) { cc.nc.SetReadDeadline(t) }

// ReadResponse reads the response head and prepares Body(). Interim 1xx
// responses other than 101 are returned too; call again for the final one.
func (cc *ClientConn) ReadResponse(headRequest bool) (*Response, error) {
	head, err := ReadHead(cc.br, cc.head, cc.t.MaxHeader)
	cc.head = head[:0]
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() && len(head) == 0 {
			// Nothing arrived: the caller may decide to wait again.
			return nil, err
		}
		cc.broken.Store(true)
		if e, ok := IsHeadError(err); ok {
			if e == errHeadTooLarge || e == errURITooLong {
				return nil, errRespHeadTooLarge
			}
			return nil, errBadRespHead
		}
		if err == io.EOF && len(head) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	r := &cc.Resp
	if err := parseResponse(head, r); err != nil {
		cc.broken.Store(true)
		return nil, err
	}
	switch {
	case r.Status < 200 || r.Status == 204 || r.Status == 304 || headRequest:
		cc.body.reset(cc.br, bodyNone, 0, 0, 0)
		if r.Status == 101 {
			cc.broken.Store(true)
		}
	case r.Chunked:
		cc.body.reset(cc.br, bodyChunked, 0, 0, cc.t.MaxHeader)
	case r.ContentLength >= 0:
		cc.body.reset(cc.br, bodyFixed, r.ContentLength, 0, 0)
		if _, plain := cc.nc.(*net.TCPConn); plain {
			// Only a plain socket can be spliced (a TLS one must be decrypted).
			cc.body.raw = cc.nc
		}
	default:
		cc.body.reset(cc.br, bodyUntilClose, 0, 0, 0)
		r.Close = true
	}
	return r, nil
}

// Body is the current response's body.
func (cc *ClientConn) Body() *Body { return &cc.body }

// BufferedReader is the reader the body comes from (for splicing: once its
// buffered bytes are copied, the rest can come straight off the socket).
func (cc *ClientConn) BufferedReader() *bufio.Reader { return cc.br }

func parseResponse(head []byte, r *Response) error {
	hdr := r.Header[:0]
	*r = Response{Header: hdr, ContentLength: -1}
	line, rest := nextLine(head)
	// "HTTP/1.1 200 OK"; the reason may be empty, and the space before it
	// missing, which some servers do.
	if len(line) < 12 || line[8] != ' ' {
		return errBadStatus
	}
	minor, err := parseVersion(line[:8])
	if err != nil {
		return errBadStatus
	}
	code := line[9:12]
	if code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' {
		return errBadStatus
	}
	r.ProtoMinor = minor
	r.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if len(line) > 12 {
		if line[12] != ' ' || !validValue(line[13:]) {
			return errBadStatus
		}
		r.Reason = line[13:]
	}
	var clSeen, teSeen, keepAlive, connClose bool
	for len(rest) > 2 {
		var f []byte
		f, rest = nextLine(rest)
		name, value, err := splitField(f)
		if err != nil {
			return &Error{502, "malformed response header"}
		}
		r.Header = append(r.Header, exchange.Header{Name: name, Value: value})
		switch {
		case len(name) == 14 && exchange.EqualFold(name, "content-length"):
			n, ok := parseDecimal(value)
			if !ok || clSeen && n != r.ContentLength {
				return &Error{502, "invalid Content-Length in response"}
			}
			clSeen, r.ContentLength = true, n
		case len(name) == 17 && exchange.EqualFold(name, "transfer-encoding"):
			teSeen = true
			// A field with only empty elements adds no coding.
			if len(bytes.Trim(value, " \t,")) > 0 {
				r.Chunked = lastCodingIsChunked(value)
			}
		case len(name) == 10 && exchange.EqualFold(name, "connection"):
			connClose = connClose || exchange.HasToken(value, "close")
			keepAlive = keepAlive || exchange.HasToken(value, "keep-alive")
		}
	}
	if teSeen {
		if clSeen {
			// RFC 9112 §6.3: a sign of response splitting; never trust it.
			return &Error{502, "response has both Content-Length and Transfer-Encoding"}
		}
		r.ContentLength = -1
		// Not chunked: read until close. In HTTP/1.0 the framing is faulty
		// whatever it says (RFC 9112 §6.1): close after it too.
		if !r.Chunked || minor == 0 {
			r.Close = true
		}
	}
	r.Close = r.Close || connClose || minor == 0 && !keepAlive
	return nil
}

// lastCodingIsChunked ignores empty list elements (RFC 9110 §5.6.1).
func lastCodingIsChunked(v []byte) bool {
	for {
		v = exchange.TrimOWS(v)
		if len(v) > 0 && v[len(v)-1] == ',' {
			v = v[:len(v)-1]
			continue
		}
		break
	}
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return exchange.EqualFold(exchange.TrimOWS(v), "chunked")
}

// IsIdleClose reports a connection closed before a single byte of the
// response arrived (EOF, reset, broken pipe — never a timeout): on a reused
// connection this is the backend's idle close racing our request.
func IsIdleClose(err error) bool {
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
