package h1

import (
	"bytes"
	"errors"
	"os"
	"time"
)

// rawOutcome is why the raw loop let go of the connection.
type rawOutcome uint8

const (
	rawWait     rawOutcome = iota // nothing buffered, socket drained: park
	rawEnd                        // the connection is done
	rawParsed                     // c.req needs the blocking path
	rawUnparsed                   // a head has begun but not ended
	rawPark                       // idle for ParkAfter: park it (park_linux.go)
)

var endOfHead = []byte("\r\n\r\n")

// serveRaw serves keep-alive requests of a plain TCP connection inside one
// RawConn.Read, so that waiting for the next request costs no read that
// finds nothing (see sock). Only requests that need no more reads once
// their head is in are served here: without a body and not an upgrade.
// Anything else returns to the blocking loop (rawParsed: a request of that
// kind is in c.req; rawUnparsed), or ends the connection (rawEnd), or has
// it parked (rawPark).
func (c *conn) serveRaw(st *ConnState) rawOutcome {
	// RawConn.Read resets the readiness notice: data may be waiting that
	// no notice will announce, so look before parking the first time.
	c.sock.drained = false
	c.rawState = st
	if c.rawCallback == nil {
		c.rawCallback = c.rawRead // once per pooled conn: a method value allocates
	}
	err := c.sock.rc.Read(c.rawCallback)
	c.rawState = nil
	if err != nil {
		// Parked only from a wait with nothing buffered either way (the
		// buffers went back), and on ParkAfter's deadline, not the idle
		// timeout's.
		if c.parkable && c.br == nil && c.idleTimer != c.idleFor && errors.Is(err, os.ErrDeadlineExceeded) {
			return rawPark
		}
		return rawEnd
	}
	return c.rawOut
}

// rawRead is serveRaw's RawConn.Read callback.
func (c *conn) rawRead(fd uintptr) bool {
	c.takeBuffers()
	c.sock.fd, c.sock.raw = int(fd), true
	c.rawOut = c.rawStep(c.rawState)
	c.sock.raw = false
	return c.rawOut != rawWait
}

// rawStep serves what the buffer and the socket hold until it must wait.
func (c *conn) rawStep(st *ConnState) rawOutcome {
	for {
		if c.br.Buffered() == 0 {
			if !c.sock.drained {
				if _, err := c.br.Peek(1); err != nil && err != errAgain {
					return rawEnd
				}
				continue
			}
			st.idle.Store(true)
			if st.draining.Load() {
				return rawEnd
			}
			// A client that half-closed right after its request (FIN in the
			// same readiness notice as the bytes) is seen only at the idle
			// timeout: nginx learns of that FIN from EPOLLRDHUP, which Go's
			// poller does not pass on, and finding out costs the very read
			// this loop saves.
			c.armIdle(c.srv.Limits().IdleTimeout)
			// After the wake-up, read before concluding anything.
			c.sock.drained = false
			if c.bw.Buffered() == 0 {
				c.putBuffers()
			}
			return rawWait
		}
		st.idle.Store(false)
		p, _ := c.br.Peek(c.br.Buffered())
		// ReadHead must find the whole head in the buffer: no empty lines
		// to skip before it (which it would read past), and its end there.
		if p[0] == '\r' || p[0] == '\n' || bytes.Index(p, endOfHead) < 0 {
			return rawUnparsed
		}
		lim := c.srv.Limits()
		c.cw.setTimeout(lim.WriteTimeout)
		if !c.readRequest(lim) {
			return rawEnd
		}
		r := &c.req
		if r.Chunked || r.ContentLength != 0 || r.Upgrade != nil || r.Expect100 {
			return rawParsed
		}
		if c.handle(st, lim) != handledKeepAlive {
			return rawEnd
		}
		st.served.Store(true)
	}
}

// armIdle sets the idle deadline, moving it only once an eighth of the
// time it gives has passed since it was last set (as connWriter does for
// writes): a connection is closed after between 7/8 of the idle timeout
// and the whole of it, and a busy one pays no timer update per request. A
// parkable connection's deadline is ParkAfter's when that comes first.
func (c *conn) armIdle(d time.Duration) {
	timer := d
	if after := c.srv.parkAfter(); c.parkable && (d <= 0 || d > after) {
		timer = after
	}
	now := time.Now()
	if !c.idleArmed.IsZero() && d == c.idleFor && (timer <= 0 || now.Sub(c.idleArmed) < timer/8) {
		return
	}
	c.idleArmed, c.idleFor, c.idleTimer = now, d, timer
	c.nc.SetReadDeadline(Deadline(timer))
}
