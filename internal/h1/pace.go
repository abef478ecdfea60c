package h1

import (
	"errors"
	"io"
	"net"
	"time"
)

// ErrBodyTooSlow is returned by a request body that arrives slower than
// the minimum rate: the client gets 408 and the connection is closed.
var ErrBodyTooSlow = &Error{408, "request body too slow"}

// pace enforces a minimum request body rate. Only the time spent waiting
// for the client counts (time the proxy spends pushing the body on to a
// slow backend is not the client's fault): every window of such waiting
// must bring at least rate×window bytes, or the body is cut. nginx's
// client_body_timeout only bounds the gap between two reads, which a
// client trickling one byte at a time never trips.
type pace struct {
	rate   int64 // bytes per second; 0: off
	window time.Duration
	waited time.Duration // in the current window
	got    int64         // bytes in the current window
}

func (p *pace) start(rate int64, window time.Duration) {
	*p = pace{rate: rate, window: window}
}

// need is what the current window still needs.
func (p *pace) need() int64 {
	return int64(float64(p.rate)*p.window.Seconds()) - p.got
}

// left is the waiting the current window still allows.
func (p *pace) left() time.Duration { return p.window - p.waited }

// account records a read of n bytes, from the socket when it began at
// began (zero: from the buffer, no waiting), and returns err, or
// ErrBodyTooSlow when the window ran out before its bytes came.
func (p *pace) account(began time.Time, n int64, err error) error {
	if !began.IsZero() {
		p.waited += time.Since(began)
	}
	p.got += n
	if p.got >= int64(float64(p.rate)*p.window.Seconds()) {
		p.waited, p.got = 0, 0 // the window's quota is met: a new one starts
		return err
	}
	if err == io.EOF {
		return err // the whole body is in
	}
	var ne net.Error
	if p.waited >= p.window || err != nil && errors.As(err, &ne) && ne.Timeout() && p.left() <= time.Millisecond {
		return ErrBodyTooSlow
	}
	return err
}

// arm sets the read deadline for the next read from the socket: the read
// timeout, or sooner what the rate's window has left. It returns when.
func (b *Body) arm() time.Time {
	now := time.Now()
	var d time.Duration
	if b.readTimeout > 0 {
		d = b.readTimeout
	}
	if b.pace.rate > 0 && (d == 0 || b.pace.left() < d) {
		d = max(b.pace.left(), time.Millisecond)
	}
	b.conn.SetReadDeadline(now.Add(d))
	return now
}
