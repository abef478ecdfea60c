package h1

import (
	"io"
	"net"
	"time"
)

// connWriter is what a connection's bufio.Writer writes to: the socket,
// under a write deadline when a write timeout is set, so that a client
// that stops reading (its window full, the kernel's buffer full) is cut
// after the timeout and its backend connection released, as nginx's
// send_timeout does.
//
// Setting a deadline on every write would cost a timer update per
// response; the deadline is moved only once an eighth of the timeout has
// passed since it was last set, so a stalled write is cut after between
// 7/8 of the timeout and the whole of it.
type connWriter struct {
	c       *conn
	timeout time.Duration
	armed   time.Time // when the deadline was last set
	lr      io.LimitedReader
}

// setTimeout takes the timeout of the next response; a deadline left by
// a previous one is cleared when the timeout is now off (a reload).
func (w *connWriter) setTimeout(d time.Duration) {
	w.timeout = d
	if d <= 0 && !w.armed.IsZero() {
		w.armed = time.Time{}
		w.c.nc.SetWriteDeadline(time.Time{})
	}
}

func (w *connWriter) Write(p []byte) (int, error) {
	if w.timeout > 0 {
		w.arm()
	}
	if w.c.sock.raw {
		// serveRaw's goroutine, which holds the socket.
		return w.c.sock.Write(p)
	}
	return w.c.nc.Write(p)
}

func (w *connWriter) arm() {
	now := time.Now()
	if now.Sub(w.armed) >= w.timeout/8 {
		w.armed = now
		w.c.nc.SetWriteDeadline(now.Add(w.timeout))
	}
}

// spliceStep is how much of a spliced response goes out per deadline:
// about what one splice(2) through a pipe moves, so that a slow but
// steady reader is judged as with plain writes.
const spliceStep = 64 << 10

// spliceFrom copies src to the socket in steps, re-arming the deadline
// before each. Each step reads src under one LimitedReader, the only
// wrapping splice(2) sees through.
func (w *connWriter) spliceFrom(tc *net.TCPConn, src *io.LimitedReader) (int64, error) {
	var total int64
	for src.N > 0 {
		w.arm()
		w.lr = io.LimitedReader{R: src.R, N: min(src.N, spliceStep)}
		step := w.lr.N
		n, err := tc.ReadFrom(&w.lr)
		w.lr.R = nil
		src.N -= n
		total += n
		if err != nil || n < step {
			return total, err
		}
	}
	return total, nil
}

// tcpOf is the TCP socket under nc, or nil.
func tcpOf(nc net.Conn) *net.TCPConn {
	switch c := nc.(type) {
	case *net.TCPConn:
		return c
	case interface{ TCP() *net.TCPConn }:
		return c.TCP()
	}
	return nil
}
