// Package proxy forwards an exchange to a backend over gatehouse's HTTP/1.1
// client: header rewriting, streaming in both directions, 100-continue,
// trailers, protocol upgrades, and error answers that reveal nothing inside.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/route"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// Forwarder forwards requests; one is built per config snapshot.
type Forwarder struct {
	TrustedProxies []netip.Prefix
	Log            *slog.Logger
	// Hide withholds backend fields that reveal what runs behind (nil:
	// only Server, which the engines always replace).
	Hide *Hide
}

// Result tells the access log what happened.
type Result struct {
	Target *upstream.Target
	Pool   *upstream.Pool // the pool forwarded to (a split route picks one)
	Status int
	// UpstreamLatency is from the last attempt's start to its response
	// head (or its failure).
	UpstreamLatency time.Duration
	// Attempts is how many targets were tried (1 + retries).
	Attempts int
}

// expectContinueWait is how long a backend may take to answer
// "Expect: 100-continue" before the body is sent anyway (RFC 9110 §10.1.1).
const expectContinueWait = time.Second

// connectFailureEject is how long a target that refused a connection is
// left out when the pool configures no passive health.
const connectFailureEject = 10 * time.Second

// epoch is a fixed origin for monoNow; never changed after start.
var epoch = time.Now()

// monoNow reads the monotonic clock only (time.Now reads the wall clock
// too), which halves the cost of timing an attempt.
func monoNow() time.Duration { return time.Since(epoch) }

// spliceMin is the body size above which bytes go socket to socket.
const spliceMin = 64 << 10

type state struct {
	tried [8]*upstream.Target // kept here: a local array would escape to the heap
	out   exchange.Headers
	ct    connTokens
	buf   []byte
}

var statePool = sync.Pool{New: func() any {
	return &state{out: make(exchange.Headers, 0, 32), buf: make([]byte, 32<<10)}
}}

// Trusted reports whether the client's forwarding fields may be believed.
func (f *Forwarder) Trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range f.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Forward sends req to a target of pool and relays the answer to w. Failed
// attempts go to the next candidate target when the pool's retry rules and
// budget allow and the request can be sent again.
func (f *Forwarder) Forward(ctx context.Context, req *exchange.Request, w exchange.ResponseWriter, r *route.Route, pool *upstream.Pool, res *Result) {
	st := statePool.Get().(*state)
	defer statePool.Put(st)
	res.Pool = pool
	trusted := f.Trusted(req.RemoteAddr.Addr())
	rp := &pool.Retry
	if rp.Budget != nil {
		rp.Budget.Deposit()
	}
	tried := &st.tried
	defer clear(tried[:])
	t, err := pool.Acquire(req)
	switch {
	case err == upstream.ErrPoolBusy:
		res.Status = WriteBusy(w)
		return
	case err != nil:
		res.Status = WriteError(w, 503)
		return
	}
	_, policy := pool.Current()
	obs, _ := policy.(upstream.Observer)
	for n := 1; ; n++ {
		res.Target = t
		res.Attempts = n
		if n <= len(tried) {
			tried[n-1] = t
		}
		began := monoNow()
		var a attempt
		if t.RoundTripper != nil {
			a = f.tryRT(ctx, req, r, pool, t, st, trusted)
		} else {
			a = f.try(ctx, req, w, r, pool, t, st, trusted)
		}
		// The response head is in, or the attempt failed.
		rtt := monoNow() - began
		res.UpstreamLatency = rtt
		if obs != nil {
			// A 5xx is a real answer with a real latency; passive health
			// judges 5xx.
			obs.Observe(t, rtt, a.err == nil)
		}
		if pool.Stats != nil && a.err == nil {
			pool.Stats.ObserveAttempt(t, rtt)
		}
		failed := a.err != nil || a.status() >= 500
		if failed && t.ReportFailure(pool.Passive, time.Now()) {
			f.Log.Warn("target ejected after repeated failures", "upstream", pool.Name, "target", t.Addr, "for", pool.Passive.Eject.String())
		}
		if a.connectFailed && pool.Passive == nil {
			// Without passive health configured, a target that refuses
			// connections still sits out a moment (nginx's default
			// max_fails=1 fail_timeout=10s), so that a dead backend does not
			// cost every third request a retry.
			t.Eject(time.Now().Add(connectFailureEject))
		}
		var next *upstream.Target
		if failed && n <= rp.Attempts && f.retryable(req, rp, &a) {
			// With no other candidate, the last answer stands as it is.
			next = pool.SelectNext(req, tried[:min(n, len(tried))])
			// A refused connection never reached a backend: retrying it adds
			// no load, so the budget is not charged for it.
			if next != nil && !a.connectFailed && rp.Budget != nil && !rp.Budget.Withdraw() {
				next = nil
			}
			// A target at its connection cap is not retried on.
			if next != nil && !pool.TryAcquire(next) {
				next = nil
			}
		}
		if next == nil {
			f.finishAttempt(req, w, r, pool, t, &a, st, res)
			pool.Release(t)
			return
		}
		if pool.Stats != nil {
			pool.Stats.Retries.Inc()
		}
		if a.cc != nil {
			a.cc.Close()
		}
		if a.sent != nil {
			a.sent.wait()
		}
		if a.rt != nil {
			a.rt.end(nil)
		}
		pool.Release(t)
		if a.err != nil {
			f.Log.Warn("backend attempt failed; retrying on another target", "upstream", pool.Name, "target", t.Addr, "err", a.err)
		}
		t = next
	}
}

// attempt is one try of a request on one target.
type attempt struct {
	cc            *h1.ClientConn
	resp          *h1.Response
	sent          *bodySend
	rt            *roundTrip // instead of cc, resp and sent over a RoundTripper (h2, h2c)
	err           error
	connectFailed bool
}

// status is the response's status code (when err is nil).
func (a *attempt) status() int {
	if a.rt != nil {
		return a.rt.res.StatusCode
	}
	return a.resp.Status
}

// try sends the request to t and reads the response head.
func (f *Forwarder) try(ctx context.Context, req *exchange.Request, w exchange.ResponseWriter, r *route.Route, pool *upstream.Pool, t *upstream.Target, st *state, trusted bool) attempt {
	cc, err := t.Transport.Get(ctx)
	if err != nil {
		return attempt{err: err, connectFailed: true}
	}
	hasBody := req.ContentLength != 0
	for i := 0; ; i++ {
		writeRequestHead(cc, req, r, pool, t, trusted, &st.ct)
		cc.EndHead(req.ContentLength)
		resp, sent, err := f.exchange(cc, req, w, pool, st.buf, hasBody)
		// A reused connection the backend closed while idle fails before any
		// byte of a response: that request was never seen, so a bodyless one
		// goes again on a new connection.
		if err != nil && cc.Reused && !hasBody && i == 0 && isIdempotent(req.Method) && h1.IsIdleClose(err) {
			cc.Close()
			if cc, err = t.Transport.Dial(ctx); err != nil {
				return attempt{err: err, connectFailed: true}
			}
			continue
		}
		return attempt{cc: cc, resp: resp, sent: sent, err: err}
	}
}

// retryable tells whether a failed attempt may be sent to another target:
// never once a byte of the body has been consumed (it cannot be replayed);
// a connection that could not be made always; anything else only for
// idempotent methods (RFC 9110 §9.2.2) and the failures the pool lists.
func (f *Forwarder) retryable(req *exchange.Request, rp *upstream.Retry, a *attempt) bool {
	if a.sent != nil || a.rt != nil && a.rt.touched() {
		return false
	}
	if a.connectFailed {
		return true
	}
	if !isIdempotent(req.Method) && req.ContentLength == 0 {
		return false
	}
	switch {
	case a.err == nil:
		return rp.OnStatus(a.status())
	case isTimeout(a.err):
		return rp.OnTimeout
	default:
		return rp.OnReset
	}
}

func isIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// finishAttempt relays the response of the last attempt, or the error page.
func (f *Forwarder) finishAttempt(req *exchange.Request, w exchange.ResponseWriter, r *route.Route, pool *upstream.Pool, t *upstream.Target, a *attempt, st *state, res *Result) {
	if a.rt != nil {
		f.finishRT(req, w, r, pool, t, a, st, res)
		return
	}
	cc, sent := a.cc, a.sent
	if a.err != nil {
		if cc != nil {
			cc.Close()
		}
		if sent != nil {
			sent.wait()
			// The engine's body errors (too large, bad chunking, too slow)
			// are the client's, whichever copy path met them.
			if _, ok := h1.IsHeadError(sent.err); ok || isClientBodyError(sent.err) {
				res.Status = WriteError(w, clientBodyStatus(sent.err))
				return
			}
		}
		f.Log.Warn("backend exchange failed", "upstream", pool.Name, "target", t.Addr, "err", a.err)
		res.Status = WriteError(w, statusForError(a.err))
		return
	}
	res.Status = a.resp.Status
	f.relay(req, w, r, pool, cc, a.resp, st)
	if sent != nil {
		if !sent.finished() && !sent.settle(50*time.Millisecond) {
			// The backend answered without taking the whole body: the answer
			// goes out now, and the rest of the upload is not waited for.
			if sent.stillReading() {
				w.Flush()
				w.StopBody()
			}
			cc.Close()
		}
		sent.wait()
		if sent.err != nil {
			cc.Close()
		}
	}
	cc.Release()
}

// exchange writes the request (body included) and reads the final response head.
func (f *Forwarder) exchange(cc *h1.ClientConn, req *exchange.Request, w exchange.ResponseWriter, pool *upstream.Pool, buf []byte, hasBody bool) (*h1.Response, *bodySend, error) {
	isHead := string(req.Method) == "HEAD"
	if !hasBody {
		cc.SetReadDeadline(h1.Deadline(pool.ResponseHeaderTimeout))
		if err := cc.Send(); err != nil {
			return nil, nil, err
		}
		resp, err := readFinal(cc, w, isHead)
		// The body may stream for as long as it takes — unless it is already
		// all in the buffer (the common small answer), when no read of this
		// response touches the socket again and the call can be saved.
		if err != nil || !cc.Body().Buffered() {
			cc.SetReadDeadline(time.Time{})
		}
		return resp, nil, err
	}
	if err := cc.Writer().Flush(); err != nil {
		return nil, nil, err
	}
	if req.Expect100 {
		cc.SetReadDeadline(time.Now().Add(expectContinueWait))
		resp, err := cc.ReadResponse(isHead)
		cc.SetReadDeadline(time.Time{})
		switch {
		case err == nil && resp.Status == 100:
		case err == nil && resp.Status >= 200:
			// Refused before the body: the client need not send it, and this
			// connection cannot carry another request (the backend may still
			// expect the body).
			cc.DontReuse()
			return resp, nil, nil
		case err == nil:
			// Another interim answer: send the body and read on.
		case isTimeout(err):
			// A backend that ignores Expect: the client may send the body now.
		default:
			return nil, nil, err
		}
		if err := w.Write1xx(100, nil); err != nil {
			return nil, nil, err
		}
	}
	// No deadline while the body goes up (a previous exchange on this
	// connection may have left one); the sender sets it once the body is out.
	cc.SetReadDeadline(time.Time{})
	s := startBody(cc, req, pool.ResponseHeaderTimeout)
	resp, err := readFinal(cc, w, isHead)
	s.headArrived()
	return resp, s, err
}

// readFinal reads to the final response, passing interim ones (103 Early
// Hints and the like; RFC 9110 §15.2) on to the client. A 100 Continue here
// answers no Expect of ours and is dropped.
func readFinal(cc *h1.ClientConn, w exchange.ResponseWriter, isHead bool) (*h1.Response, error) {
	for {
		resp, err := cc.ReadResponse(isHead)
		if err != nil || resp.Status >= 200 || resp.Status == 101 {
			return resp, err
		}
		if resp.Status != 100 {
			var ct connTokens
			ct.collect(resp.Header)
			var fields exchange.Headers
			for _, h := range resp.Header {
				if !isHopByHop(h.Name) && !ct.names(h.Name) {
					fields = append(fields, h)
				}
			}
			if err := w.Write1xx(resp.Status, fields); err != nil {
				return nil, err
			}
		}
	}
}

// relay sends the response head and streams the body to the client.
func (f *Forwarder) relay(req *exchange.Request, w exchange.ResponseWriter, r *route.Route, pool *upstream.Pool, cc *h1.ClientConn, resp *h1.Response, st *state) {
	upgrade := resp.Status == 101
	if upgrade && (req.Upgrade == nil || req.ContentLength != 0) {
		cc.Close()
		WriteError(w, 502)
		return
	}
	st.out = f.responseFields(st.out[:0], req, resp, r, pool, &st.ct, upgrade)
	if err := w.WriteHead(resp.Status, resp.Reason, st.out, resp.ContentLength); err != nil {
		cc.Close()
		return
	}
	if upgrade {
		tunnel(w, cc)
		return
	}
	body := cc.Body()
	if resp.ContentLength != 0 && cc.BufferedReader().Buffered() == 0 && !isHeadReq(req) {
		// None of the body has come yet and the next read waits on the
		// backend: the head goes out now, so that a client of a long poll
		// or an event stream that starts quiet sees the answer begin.
		if w.Flush() != nil {
			cc.Close()
			return
		}
	}
	if body.CanSplice(spliceMin) {
		if rf, ok := w.(io.ReaderFrom); ok {
			if _, err := body.SpliceTo(w, rf); err != nil {
				cc.Close()
				w.Abort()
			}
			finish(w, cc, body)
			return
		}
	}
	br := cc.BufferedReader()
	for {
		n, err := body.Read(st.buf)
		if n > 0 {
			if _, werr := w.Write(st.buf[:n]); werr != nil {
				cc.Close()
				return
			}
			// Stream: whatever the backend sent is passed on before waiting
			// for more, so events and long polls are never held back.
			if br.Buffered() == 0 {
				if w.Flush() != nil {
					cc.Close()
					return
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			// The backend broke off mid-body: the client must see a broken
			// message, not a complete short one.
			cc.Close()
			w.Abort()
			return
		}
	}
	finish(w, cc, body)
}

func finish(w exchange.ResponseWriter, cc *h1.ClientConn, body *h1.Body) {
	if err := w.Finish(body.Trailers); err != nil {
		cc.Close()
	}
}

// tunnel joins client and backend after 101 Switching Protocols.
func tunnel(w exchange.ResponseWriter, cc *h1.ClientConn) {
	up, upr := cc.Conn()
	client, clientr, err := w.Hijack()
	if err != nil {
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst net.Conn, src io.Reader) {
		io.Copy(dst, src)
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(up, clientr)
	go pipe(client, upr)
	// A half-closed side may still receive: wait for both directions. A peer
	// that vanishes is found by TCP keep-alive, and shutdown closes the
	// client connection, which ends both.
	<-done
	<-done
	client.Close()
	up.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// statusForError maps a backend failure to what the client is told.
func statusForError(err error) int {
	switch {
	case isTimeout(err):
		return 504
	default:
		return 502
	}
}

func isHeadReq(req *exchange.Request) bool { return string(req.Method) == "HEAD" }
