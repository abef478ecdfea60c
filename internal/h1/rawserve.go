package h1

import (
	"bytes"
	"time"
)

// rawOutcome is why the raw loop let go of the connection.
type rawOutcome uint8

const (
	rawWait     rawOutcome = iota // nothing buffered, socket drained: park
	rawEnd                        // the connection is done
	rawParsed                     // c.req needs the blocking path
	rawUnparsed                   // a head has begun but not ended
)

var endOfHead = []byte("\r\n\r\n")

// serveRaw serves keep-alive requests of a plain TCP connection inside one
// RawConn.Read, so that waiting for the next request costs no read that
// finds nothing (see sock). Only requests that need no more reads once
// their head is in are served here: without a body and not an upgrade.
// Anything else returns to the blocking loop: parsed, a request of that
// kind in c.req; end, the connection is done.
func (c *conn) serveRaw(st *ConnState) (parsed, end bool) {
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
		return false, true
	}
	return c.rawOut == rawParsed, c.rawOut == rawEnd
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
// timeout has passed since it was last set (as connWriter does for
// writes): a connection is closed after between 7/8 of the idle timeout
// and the whole of it, and a busy one pays no timer update per request.
func (c *conn) armIdle(d time.Duration) {
	now := time.Now()
	if !c.idleArmed.IsZero() && d == c.idleFor && (d <= 0 || now.Sub(c.idleArmed) < d/8) {
		return
	}
	c.idleArmed, c.idleFor = now, d
	c.nc.SetReadDeadline(Deadline(d))
}
