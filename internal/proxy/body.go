package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
)

// bodySend streams a request body to the backend in its own goroutine, so
// that a backend that answers while still reading (or echoes as it reads)
// never deadlocks against us.
type bodySend struct {
	cc      *h1.ClientConn
	timeout time.Duration
	done    chan struct{}
	err     error
	fin     atomic.Bool
	// taken is set once the client's body has been read to its end: what is
	// left is writing its tail to the backend, which will not block long.
	taken atomic.Bool

	mu       sync.Mutex
	headSeen bool
}

func startBody(cc *h1.ClientConn, req *exchange.Request, respTimeout time.Duration) *bodySend {
	s := &bodySend{cc: cc, timeout: respTimeout, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = sendBody(cc, req, &s.taken)
		if s.err != nil {
			// Unblock the response read: the exchange cannot complete.
			cc.Close()
			return
		}
		s.fin.Store(true)
		// The response-head timeout counts from the end of the body.
		s.mu.Lock()
		if !s.headSeen {
			cc.SetReadDeadline(h1.Deadline(s.timeout))
		}
		s.mu.Unlock()
	}()
	return s
}

func (s *bodySend) headArrived() {
	s.mu.Lock()
	s.headSeen = true
	s.cc.SetReadDeadline(time.Time{})
	s.mu.Unlock()
}

func (s *bodySend) finished() bool { return s.fin.Load() }

// stillReading reports whether the client's body is still being read.
func (s *bodySend) stillReading() bool { return !s.taken.Load() }
func (s *bodySend) wait()              { <-s.done }

// settle gives the body a moment to end by itself: a backend may answer
// while the last bytes (a chunked body's end, say) are on their way.
func (s *bodySend) settle(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
		return true
	case <-t.C:
		return false
	}
}

var bodyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func sendBody(cc *h1.ClientConn, req *exchange.Request, taken *atomic.Bool) error {
	bw := cc.Writer()
	if req.ContentLength > 0 {
		if b, ok := req.Body.(*h1.Body); ok && b.CanSplice(spliceMin) {
			if err := bw.Flush(); err != nil {
				return err
			}
			if rf, ok := cc.RawConn().(io.ReaderFrom); ok {
				_, err := b.SpliceTo(bw, rf)
				if err != nil {
					return err
				}
				taken.Store(true)
				return bw.Flush()
			}
		}
	}
	bp := bodyBufPool.Get().(*[]byte)
	defer bodyBufPool.Put(bp)
	buf := *bp
	chunked := req.ContentLength < 0
	var sent int64
	for {
		n, err := req.Body.Read(buf)
		if n > 0 {
			sent += int64(n)
			if chunked {
				cc.WriteChunk(buf[:n])
			} else {
				bw.Write(buf[:n])
			}
			// A streaming upload reaches the backend as it comes.
			if ferr := bw.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			taken.Store(true)
			break
		}
		if err != nil {
			return &clientBodyError{err}
		}
	}
	if chunked {
		var tr exchange.Headers
		if req.Trailers != nil {
			tr = *req.Trailers
		}
		cc.WriteLastChunk(tr)
	} else if sent != req.ContentLength {
		return &clientBodyError{io.ErrUnexpectedEOF}
	}
	return bw.Flush()
}

// clientBodyError marks a failure reading the client's body (as opposed to
// writing to the backend).
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "client body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

func isClientBodyError(err error) bool {
	var ce *clientBodyError
	return errors.As(err, &ce)
}

func clientBodyStatus(err error) int {
	if e, ok := h1.IsHeadError(err); ok {
		return e.Status
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 408
	}
	return 400
}
