package cache

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/cache"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

type mode uint8

const (
	modePass       mode = iota // forward, store nothing (HEAD misses)
	modeFetch                  // forward, store what may be stored, revalidate a stale entry
	modeBackground             // modeFetch for a background refresh: nobody to answer
)

// recorder is the ResponseWriter the rest of the chain answers a forwarded
// request on. It streams the answer to the client while copying a storable
// body, and holds back the backend's 304 (a revalidation) and 5xx (when
// stale-if-error allows a stale answer), which the cache answers instead.
type recorder struct {
	f       *Filter
	st      *state
	inner   exchange.ResponseWriter
	mode    mode
	stale   *cache.Entry
	fwd     string
	flight  *cache.Flight
	reqTime time.Time

	status   int
	headSeen bool
	n        int64 // body bytes seen
	swallow  bool  // the answer is held back
	finished bool
	aborted  bool

	capture   bool
	entry     *cache.Entry // the response being stored (Body set at the end)
	refreshed *cache.Entry // the stale entry as a 304 refreshed it
	storeOK   bool         // refreshed may be stored
	vary      []string
	body      []byte
	cl        int64
}

// forward passes the request on with a recorder in front of x.W.
func (f *Filter) forward(x *filter.Exchange, next filter.Handler, st *state, stale *cache.Entry, m mode, fwd string) {
	r := &st.rec
	*r = recorder{f: f, st: st, inner: x.W, mode: m, stale: stale, fwd: fwd, flight: r.flight, reqTime: time.Now()}
	if m != modePass {
		info := &st.info
		if stale != nil || info.rng == nil {
			// The backend is asked for a full, storable answer (or a 304 to
			// our validators, §4.3.1); the client's own conditionals are
			// answered from the result.
			x.Req.Header.Del("If-None-Match")
			x.Req.Header.Del("If-Modified-Since")
			x.Req.Header.Del("If-Range")
			x.Req.Header.Del("If-Match")
			x.Req.Header.Del("If-Unmodified-Since")
		}
		if stale != nil {
			if stale.ETag != nil {
				x.Req.Header.Add(nameIfNoneMatch, stale.ETag)
			}
			if stale.LastModified != nil {
				x.Req.Header.Add(nameIfModifiedSince, stale.LastModified)
			}
		}
	}
	x.W = r
	next.Serve(x)
	x.W = r.inner
	r.done(x)
}

var (
	nameIfNoneMatch     = []byte("If-None-Match")
	nameIfModifiedSince = []byte("If-Modified-Since")
)

// quiet: nothing goes to the client (held back, or no client at all).
func (r *recorder) quiet() bool { return r.swallow || r.mode == modeBackground }

func (r *recorder) land(stored bool) {
	if r.flight != nil {
		r.f.store.Land(r.st.key, r.flight, stored)
		r.flight = nil
	}
}

func (r *recorder) WriteHead(status int, reason []byte, h exchange.Headers, cl int64) error {
	if r.headSeen {
		return r.inner.WriteHead(status, reason, h, cl) // the engine says it is a second head
	}
	r.status, r.headSeen, r.cl = status, true, cl
	now := time.Now()
	info := &r.st.info
	stored := false
	if r.mode != modePass {
		switch {
		case r.stale != nil && status == 304:
			merged := r.stale.Merge304(h)
			d := cache.Decide(&info.Request, r.stale.Status, merged, r.f.params, now)
			r.refreshed = cache.NewEntry(r.stale.URL, r.stale.URL, r.stale.Status, merged, r.stale.Body, &d, r.reqTime, now)
			r.storeOK, r.vary = d.Store, d.Vary
			r.swallow = true
			return nil
		case r.stale != nil && status >= 500 && r.staleIfError(now):
			r.swallow = true
			r.land(false)
			return nil
		}
		d := cache.Decide(&info.Request, status, h, r.f.params, now)
		if d.Store && cl <= r.f.store.MaxObject() {
			r.capture, stored = true, true
			r.entry = cache.NewEntry("", string(r.st.key), status, h, nil, &d, r.reqTime, now)
			r.vary = d.Vary
			if cl > 0 {
				r.body = make([]byte, 0, cl)
			}
		} else {
			// Not storable: waiting requests go on their own now.
			r.land(false)
		}
	}
	if r.mode == modeBackground {
		return nil
	}
	out := append(r.st.hdr[:0], h...)
	b := append(r.st.buf[:0], "gatehouse; fwd="...)
	b = append(b, r.fwd...)
	if stored {
		b = append(b, "; stored"...)
	}
	out = append(out, exchange.Header{Name: nameCacheStatus, Value: b})
	r.st.hdr, r.st.buf = out, b
	return r.inner.WriteHead(status, reason, out, cl)
}

// staleIfError: RFC 5861 §4 lets the stale entry answer for a failing
// backend, within the response's or the request's stale-if-error window.
func (r *recorder) staleIfError(now time.Time) bool {
	e := r.stale
	if e.NoStale {
		return false
	}
	over := -e.TTL(now)
	return e.SIE >= 0 && over <= e.SIE || r.st.info.Control.StaleIfError >= 0 && over <= r.st.info.Control.StaleIfError
}

func (r *recorder) Write(p []byte) (int, error) {
	r.n += int64(len(p))
	if r.swallow {
		return len(p), nil
	}
	if r.capture {
		if int64(len(r.body)+len(p)) > r.f.store.MaxObject() {
			r.capture, r.body = false, nil // too large after all: passed through
			r.land(false)
		} else {
			r.body = append(r.body, p...)
		}
	}
	if r.mode == modeBackground {
		return len(p), nil
	}
	return r.inner.Write(p)
}

// ReadFrom keeps the engine's splice for answers that are not copied.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := r.inner.(io.ReaderFrom); ok && !r.capture && !r.quiet() {
		n, err := rf.ReadFrom(src)
		r.n += n
		return n, err
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(writerOnly{r}, src, *bp)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type writerOnly struct{ io.Writer }

func (r *recorder) Write1xx(status int, h exchange.Headers) error {
	if r.quiet() {
		return nil
	}
	return r.inner.Write1xx(status, h)
}

func (r *recorder) Flush() error {
	if r.quiet() {
		return nil
	}
	return r.inner.Flush()
}

func (r *recorder) Finish(trailers exchange.Headers) error {
	r.finished = true
	if r.quiet() {
		return nil
	}
	return r.inner.Finish(trailers)
}

var errNoConn = errors.New("cache: no client connection to take over")

func (r *recorder) Hijack() (net.Conn, io.Reader, error) {
	if r.quiet() {
		return nil, nil, errNoConn
	}
	r.capture = false
	return r.inner.Hijack()
}

func (r *recorder) StopBody() {
	if r.mode != modeBackground {
		r.inner.StopBody()
	}
}

func (r *recorder) Abort() {
	r.aborted = true
	if !r.quiet() {
		r.inner.Abort()
	}
}

func (r *recorder) Written() (bool, int64) {
	if r.quiet() {
		return r.headSeen, r.n
	}
	return r.inner.Written()
}

// done stores what was recorded and, when the answer was held back,
// answers from the store.
func (r *recorder) done(x *filter.Exchange) {
	f := r.f
	now := time.Now()
	result := resMiss
	if r.mode == modePass && r.st.info.Authorization {
		result = resBypass
	}
	switch {
	case r.refreshed != nil:
		result = resRevalidated
		if r.storeOK {
			f.store.Put(r.refreshed, r.vary, x.Req.Header)
			r.land(true)
		} else {
			f.store.Invalidate(r.refreshed.URL)
		}
		if r.mode != modeBackground {
			f.answer(x, r.st, r.refreshed, now, statusRevalidated, 304)
		}
	case r.swallow:
		result = resStale
		if r.mode != modeBackground {
			f.answer(x, r.st, r.stale, now, statusSIE, r.status)
		}
	case r.capture && r.finished && !r.aborted && (r.cl < 0 || int64(len(r.body)) == r.cl):
		body := r.body
		if cap(body)-len(body) > len(body)/8 {
			body = append([]byte(nil), body...) // unknown length grew the buffer: keep only what is used
		}
		r.entry.Body = body
		if f.store.Put(r.entry, r.vary, x.Req.Header) {
			f.m.bytes.Set(float64(f.store.Weight()))
			r.land(true)
		}
	}
	r.land(false)
	if r.mode != modeBackground {
		f.m.count(result)
		x.Log.Cache = result
	}
	r.body, r.entry, r.refreshed, r.stale = nil, nil, nil, nil
}
