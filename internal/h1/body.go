package h1

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

var (
	// ErrBodyTooLarge is returned by a Body that passed its limit.
	ErrBodyTooLarge = &Error{413, "request body too large"}
	errBadChunk     = &Error{400, "malformed chunked encoding"}
)

type bodyMode uint8

const (
	bodyNone bodyMode = iota
	bodyFixed
	bodyChunked
	bodyUntilClose
)

// Body reads one message body off a connection's reader, undoing chunked
// framing. It is reused per message; Trailers are valid after io.EOF.
type Body struct {
	br       *bufio.Reader
	mode     bodyMode
	n        int64 // bytes left: of the body (fixed) or of the current chunk
	inChunk  bool
	limit    int64 // 0: none
	total    int64
	err      error
	maxTrail int

	raw net.Conn // the socket under br, for splicing a fixed-length body
	// readTimeout bounds each read of a client's body (a stalled upload must
	// not hold a connection and a backend forever).
	readTimeout time.Duration
	conn        net.Conn
	lr          io.LimitedReader
	pace        pace // the minimum body rate (pace.go)

	trailerBuf []byte
	Trailers   exchange.Headers
}

func (b *Body) reset(br *bufio.Reader, mode bodyMode, n, limit int64, maxTrail int) {
	b.br, b.mode, b.n, b.limit, b.maxTrail = br, mode, n, limit, maxTrail
	b.inChunk, b.total, b.err, b.raw = false, 0, nil, nil
	b.readTimeout, b.conn = 0, nil
	b.pace = pace{}
	b.Trailers = b.Trailers[:0]
	if mode == bodyNone || mode == bodyFixed && n == 0 {
		b.err = io.EOF
	}
}

// Done reports whether the body was read to its end without error.
func (b *Body) Done() bool { return b.err == io.EOF }

// Buffered reports whether the rest of the body is already in the
// connection's buffer (reading it will not touch the socket).
func (b *Body) Buffered() bool {
	switch {
	case b.err != nil:
		return true
	case b.mode == bodyFixed:
		return b.n <= int64(b.br.Buffered())
	}
	return false
}

// WriteBuffered writes a fixed-length body that is all in the connection's
// buffer to w straight from there, and reports whether it did (otherwise
// nothing happened: read the body as usual).
func (b *Body) WriteBuffered(w io.Writer) (done bool, err error) {
	if b.err == io.EOF {
		return true, nil
	}
	if b.err != nil || b.mode != bodyFixed || b.n > int64(b.br.Buffered()) ||
		b.limit > 0 || b.readTimeout > 0 || b.pace.rate > 0 {
		return false, nil
	}
	p, _ := b.br.Peek(int(b.n))
	_, err = w.Write(p)
	b.br.Discard(len(p))
	b.total += b.n
	b.n, b.err = 0, io.EOF
	return true, err
}

// Remaining is what is left of a fixed-length body (-1 for other framings).
func (b *Body) Remaining() int64 {
	if b.mode != bodyFixed {
		return -1
	}
	return b.n
}

func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	var began time.Time
	if (b.readTimeout > 0 || b.pace.rate > 0) && b.br.Buffered() == 0 {
		began = b.arm()
	}
	var n int
	switch b.mode {
	case bodyFixed:
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, b.err = b.br.Read(p)
		b.n -= int64(n)
		if b.n == 0 {
			b.err = io.EOF
		} else if b.err == io.EOF {
			b.err = io.ErrUnexpectedEOF
		}
	case bodyChunked:
		n, b.err = b.readChunked(p)
	case bodyUntilClose:
		n, b.err = b.br.Read(p)
	}
	if b.pace.rate > 0 {
		// Bytes read from the buffer count too; only socket reads wait.
		b.err = b.pace.account(began, int64(n), b.err)
	}
	b.total += int64(n)
	if b.limit > 0 && b.total > b.limit {
		b.err = ErrBodyTooLarge
		return 0, b.err
	}
	return n, b.err
}

// Received is how many body bytes Read has returned (a spliced body is not
// counted: its length is known from Content-Length).
func (b *Body) Received() int64 { return b.total }

// CanSplice reports whether SpliceTo may move the rest of the body
// socket to socket: a fixed-length body with more than minBytes left.
func (b *Body) CanSplice(minBytes int64) bool {
	return b.err == nil && b.mode == bodyFixed && b.raw != nil && b.n > minBytes
}

// SpliceTo copies the rest of a fixed-length body: the bytes already
// buffered through w, then straight from the socket through rf.ReadFrom,
// which the kernel does with splice(2) when rf is a TCP connection.
func (b *Body) SpliceTo(w io.Writer, rf io.ReaderFrom) (int64, error) {
	var total int64
	for b.n > 0 && b.br.Buffered() > 0 {
		p, _ := b.br.Peek(int(min(int64(b.br.Buffered()), b.n)))
		m, err := w.Write(p)
		b.br.Discard(m)
		b.n -= int64(m)
		total += int64(m)
		if err != nil {
			b.err = err
			return total, err
		}
	}
	if b.n > 0 {
		// What went through w must be on the wire before the socket-to-socket
		// copy starts, or the backend would get the body out of order.
		if f, ok := w.(interface{ Flush() error }); ok {
			if err := f.Flush(); err != nil {
				b.err = err
				return total, err
			}
		}
	}
	// A MiB at a time, so that a stalled sender meets the read timeout;
	// with a minimum rate, what the current window still needs at a time.
	for b.n > 0 {
		var began time.Time
		if b.readTimeout > 0 || b.pace.rate > 0 {
			began = b.arm()
		}
		step := min(b.n, 1<<20)
		if b.pace.rate > 0 {
			step = min(step, max(b.pace.need(), 4<<10))
		}
		b.lr = io.LimitedReader{R: b.raw, N: step}
		m, err := rf.ReadFrom(&b.lr)
		b.lr.R = nil
		b.n -= m
		total += m
		if err == nil && m < step {
			err = io.ErrUnexpectedEOF
		}
		if b.pace.rate > 0 {
			err = b.pace.account(began, m, err)
		}
		if err != nil {
			b.err = err
			return total, err
		}
	}
	b.err = io.EOF
	return total, nil
}

func (b *Body) readChunked(p []byte) (int, error) {
	if !b.inChunk {
		size, err := b.readChunkSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			return 0, b.readTrailers()
		}
		b.n, b.inChunk = size, true
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if b.n == 0 {
		b.inChunk = false
		if err := b.expectCRLF(); err != nil {
			return n, err
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *Body) expectCRLF() error {
	c1, err := b.br.ReadByte()
	if err != nil {
		return eofIsUnexpected(err)
	}
	c2, err := b.br.ReadByte()
	if err != nil {
		return eofIsUnexpected(err)
	}
	if c1 != '\r' || c2 != '\n' {
		return errBadChunk
	}
	return nil
}

// readChunkSize reads "HEX[;ext]\r\n". Extensions are skipped but must be
// made of valid bytes; bare LF and over-long sizes are refused.
func (b *Body) readChunkSize() (int64, error) {
	line, err := b.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return 0, errBadChunk
		}
		return 0, eofIsUnexpected(err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, errBadChunk
	}
	line = line[:len(line)-2]
	var size int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i >= 15 {
			return 0, errBadChunk
		}
		size = size<<4 | int64(d)
	}
ext:
	if i == 0 {
		return 0, errBadChunk
	}
	rest := line[i:]
	if len(rest) > 0 {
		rest = exchange.TrimOWS(rest)
		if len(rest) == 0 || rest[0] != ';' || !validValue(rest) {
			return 0, errBadChunk
		}
	}
	return size, nil
}

func (b *Body) readTrailers() error {
	buf, err := readLines(b.br, b.trailerBuf[:0], b.maxTrail, false)
	b.trailerBuf = buf
	if err != nil {
		if _, ok := IsHeadError(err); ok {
			return errBadChunk
		}
		return eofIsUnexpected(err)
	}
	rest := buf
	for len(rest) > 2 {
		var f []byte
		f, rest = nextLine(rest)
		name, value, err := splitField(f)
		if err != nil {
			return errBadChunk
		}
		if forbiddenTrailer(name) {
			continue
		}
		b.Trailers = append(b.Trailers, exchange.Header{Name: name, Value: value})
	}
	return io.EOF
}

// forbiddenTrailer lists fields that must not arrive in a trailer section
// (RFC 9110 §6.5.1): framing, routing and connection control.
func forbiddenTrailer(name []byte) bool {
	for _, f := range [...]string{"content-length", "transfer-encoding", "host", "connection", "trailer", "te", "content-type", "content-encoding", "content-range", "authorization", "set-cookie", "keep-alive", "upgrade"} {
		if exchange.EqualFold(name, f) {
			return true
		}
	}
	return false
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeChunk writes p as one chunk.
func writeChunk(bw *bufio.Writer, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if bw.Available() < 20 {
		bw.Flush()
	}
	h := strconv.AppendUint(bw.AvailableBuffer(), uint64(len(p)), 16)
	h = append(h, '\r', '\n')
	bw.Write(h)
	bw.Write(p)
	_, err := bw.WriteString("\r\n")
	return err
}

// writeLastChunk ends a chunked body with its trailers.
func writeLastChunk(bw *bufio.Writer, trailers exchange.Headers) error {
	bw.WriteString("0\r\n")
	writeFields(bw, trailers)
	_, err := bw.WriteString("\r\n")
	return err
}

func writeFields(bw *bufio.Writer, h exchange.Headers) {
	for i := range h {
		bw.Write(h[i].Name)
		bw.WriteString(": ")
		bw.Write(h[i].Value)
		bw.WriteString("\r\n")
	}
}
