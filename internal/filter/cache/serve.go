package cache

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/cache"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

// reqInfo is what the cache reads of a request head, in one pass.
type reqInfo struct {
	cache.Request
	hasCC           bool
	ifNoneMatch     []byte
	ifModifiedSince []byte
	rng, ifRange    []byte
}

func (r *reqInfo) read(h exchange.Headers) {
	for i := range h {
		n := h[i].Name
		if len(n) < 5 {
			continue
		}
		switch n[0] | 0x20 {
		case 'c':
			if exchange.EqualFold(n, "Cache-Control") {
				r.hasCC = true
			}
		case 'p':
			if exchange.EqualFold(n, "Pragma") && exchange.HasToken(h[i].Value, "no-cache") {
				r.PragmaNoCache = true
			}
		case 'a':
			r.Authorization = r.Authorization || exchange.EqualFold(n, "Authorization")
		case 'i':
			switch {
			case exchange.EqualFold(n, "If-None-Match"):
				r.ifNoneMatch = h[i].Value
			case exchange.EqualFold(n, "If-Modified-Since"):
				r.ifModifiedSince = h[i].Value
			case exchange.EqualFold(n, "If-Range"):
				r.ifRange = h[i].Value
			}
		case 'r':
			if exchange.EqualFold(n, "Range") {
				r.rng = h[i].Value
			}
		}
	}
	if r.hasCC {
		r.Control = cache.ParseControl(h)
		r.PragmaNoCache = false // §5.4: Pragma only counts without Cache-Control
	} else {
		r.Control = noControl
	}
}

var noControl = cache.ParseControl(nil)

// noCache: the request asks for a validated response (§5.2.1.4, §5.4).
func (r *reqInfo) noCache() bool { return r.Control.NoCache || r.PragmaNoCache }

// state is the per-request scratch space, pooled.
type state struct {
	info reqInfo
	key  []byte // scheme://host/path?query
	vkey []byte // variant key scratch
	hdr  exchange.Headers
	buf  []byte // Age and Cache-Status values
	rec  recorder
}

var statePool = sync.Pool{New: func() any {
	return &state{key: make([]byte, 0, 256), hdr: make(exchange.Headers, 0, 24), buf: make([]byte, 0, 128)}
}}

func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	m := x.Req.Method
	switch string(m) {
	case "GET", "HEAD":
		if x.Req.Upgrade != nil {
			next.Serve(x) // a protocol switch (WebSocket) is no response to keep
			return
		}
	case "OPTIONS", "TRACE", "CONNECT":
		next.Serve(x)
		return
	default:
		f.serveUnsafe(x, next)
		return
	}
	st := statePool.Get().(*state)
	defer func() {
		st.info = reqInfo{}
		st.rec = recorder{}
		clear(st.hdr) // no pointer into an entry outlives the request
		st.hdr = st.hdr[:0]
		statePool.Put(st)
	}()
	st.info.read(x.Req.Header)
	st.key = appendURL(st.key[:0], x.Req)
	f.lookup(x, next, st, string(m) == "HEAD")
}

func (f *Filter) lookup(x *filter.Exchange, next filter.Handler, st *state, head bool) {
	info := &st.info
	e, marker := f.store.Lookup(st.key, x.Req.Header, &st.vkey)
	if e != nil && info.Authorization && !e.AuthOK {
		e = nil // §3.5: stored without the origin's consent to share it with authorized requests
	}
	now := time.Now()
	if e != nil {
		ttl := e.TTL(now)
		age := e.Age(now)
		fresh := ttl > 0 && !e.NoCache && !info.noCache()
		c := &info.Control
		if fresh && c.MaxAge >= 0 && age > c.MaxAge {
			fresh = false // §5.2.1.1
		}
		if fresh && c.MinFresh >= 0 && ttl < c.MinFresh {
			fresh = false // §5.2.1.3
		}
		if fresh {
			f.m.count(resHit)
			x.Log.Cache = resHit
			f.answer(x, st, e, now, statusHit, 0)
			return
		}
		if !info.noCache() && !e.NoStale && !e.NoCache {
			// §5.2.1.2: max-stale lets the client take a stale answer.
			if ttl <= 0 && (c.MaxStaleAny || c.MaxStale >= 0 && -ttl <= c.MaxStale) {
				f.m.count(resStale)
				x.Log.Cache = resStale
				f.answer(x, st, e, now, statusStale, 0)
				return
			}
			// RFC 5861 §3: serve stale, refresh once in the background.
			if ttl <= 0 && e.SWR >= 0 && -ttl <= e.SWR && !head {
				f.m.count(resStale)
				x.Log.Cache = resStale
				f.answer(x, st, e, now, statusSWR, 0)
				f.refresh(x, next, st, e)
				return
			}
		}
	}
	if info.Control.OnlyIfCached {
		// §5.2.1.7: nothing usable stored.
		f.m.count(resMiss)
		x.Log.Cache = resMiss
		filter.Reply(x, http.StatusGatewayTimeout, "504 Gateway Timeout\n", "Cache-Status", "gatehouse; fwd=miss; detail=only-if-cached")
		return
	}
	if head {
		// A HEAD that misses goes on unchanged; its answer is not stored.
		f.forward(x, next, st, nil, modePass, fwdFor(marker, e))
		return
	}
	// Coalesce: one request per URL goes to the backend, the others wait
	// for its answer. Authorized and range requests go on their own.
	if !info.Authorization && info.rng == nil && !info.noCache() {
		fl, leader := f.store.Join(st.key)
		if !leader {
			if f.await(x, st, fl) {
				return
			}
		} else {
			st.rec.flight = fl
			defer f.store.Land(st.key, fl, false)
		}
	}
	f.forward(x, next, st, e, modeFetch, fwdFor(marker, e))
}

// fwdFor is RFC 9211's fwd parameter for a request that goes forward.
func fwdFor(marker, e *cache.Entry) string {
	switch {
	case e != nil:
		return "stale"
	case marker != nil:
		return "vary-miss"
	}
	return "uri-miss"
}

// await waits for the flight's leader. It reports true when the request
// was answered from what the leader stored.
func (f *Filter) await(x *filter.Exchange, st *state, fl *cache.Flight) bool {
	t := time.NewTimer(awaitMax)
	defer t.Stop()
	select {
	case <-fl.Done:
	case <-t.C:
		return false
	case <-x.Ctx.Done():
		return false
	}
	if !fl.Stored {
		return false
	}
	e, _ := f.store.Lookup(st.key, x.Req.Header, &st.vkey)
	if e == nil || e.NoCache {
		return false
	}
	now := time.Now()
	if e.TTL(now) <= 0 {
		return false
	}
	f.m.count(resCollapsed)
	x.Log.Cache = resCollapsed
	f.answer(x, st, e, now, statusCollapsed, 0)
	return true
}

// awaitMax bounds how long a request waits for another's response before
// going to the backend itself.
const awaitMax = 30 * time.Second

// Kinds of answer from the store, for Cache-Status (RFC 9211).
const (
	statusHit = iota
	statusStale
	statusSWR
	statusSIE
	statusCollapsed
	statusRevalidated
)

// answer serves e: the body, a 304 to a matching conditional request
// (RFC 9111 §4.3.2), or the requested range (RFC 9110 §14). fwdStatus is
// the backend's status for statusSIE and statusRevalidated.
func (f *Filter) answer(x *filter.Exchange, st *state, e *cache.Entry, now time.Time, kind, fwdStatus int) {
	info := &st.info
	isHead := string(x.Req.Method) == "HEAD"
	status, body := e.Status, e.Body
	var rangeStart, rangeEnd int64 = -1, -1
	if notModified(info, e) {
		status, body = http.StatusNotModified, nil
	} else if info.rng != nil && e.Status == http.StatusOK && ifRangeHolds(info.ifRange, e) {
		switch s, en, ok := parseRange(info.rng, int64(len(e.Body))); {
		case ok && s >= 0:
			status, body, rangeStart, rangeEnd = http.StatusPartialContent, e.Body[s:en+1], s, en
		case ok:
			status, body = http.StatusRequestedRangeNotSatisfiable, nil
		}
	}
	h := st.hdr[:0]
	if status == http.StatusNotModified {
		for _, fl := range e.Header {
			if keepOn304(fl.Name) {
				h = append(h, fl)
			}
		}
	} else {
		h = append(h, e.Header...)
	}
	b := st.buf[:0]
	b = strconv.AppendInt(b, int64(e.Age(now)/time.Second), 10)
	ageEnd := len(b)
	b = appendStatus(b, kind, fwdStatus, e.TTL(now))
	statusEnd := len(b)
	switch status {
	case http.StatusPartialContent:
		b = append(b, "bytes "...)
		b = strconv.AppendInt(b, rangeStart, 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, rangeEnd, 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(len(e.Body)), 10)
	case http.StatusRequestedRangeNotSatisfiable:
		b = append(b, "bytes */"...)
		b = strconv.AppendInt(b, int64(len(e.Body)), 10)
	}
	h = append(h, exchange.Header{Name: nameAge, Value: b[:ageEnd]}, exchange.Header{Name: nameCacheStatus, Value: b[ageEnd:statusEnd]})
	if len(b) > statusEnd {
		h = append(h, exchange.Header{Name: nameContentRange, Value: b[statusEnd:]})
	}
	st.hdr, st.buf = h, b
	n := int64(len(body))
	if status == http.StatusNotModified {
		n = -1
	}
	if x.W.WriteHead(status, nil, h, n) == nil && !isHead && len(body) > 0 {
		x.W.Write(body)
	}
	x.W.Finish(nil)
}

var (
	nameAge          = []byte("Age")
	nameCacheStatus  = []byte("Cache-Status")
	nameContentRange = []byte("Content-Range")
)

// keepOn304: the fields a 304 carries (RFC 9110 §15.4.5).
func keepOn304(n []byte) bool {
	for _, s := range [...]string{"Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Vary", "Last-Modified", "Cache-Status"} {
		if exchange.EqualFold(n, s) {
			return true
		}
	}
	return false
}

// appendStatus writes this cache's Cache-Status member (RFC 9211).
func appendStatus(b []byte, kind, fwdStatus int, ttl time.Duration) []byte {
	b = append(b, "gatehouse; "...)
	switch kind {
	case statusHit:
		b = append(b, "hit"...)
	case statusStale:
		b = append(b, "hit"...)
	case statusSWR:
		b = append(b, "hit"...)
	case statusCollapsed:
		b = append(b, "fwd=uri-miss; collapsed"...)
	case statusSIE, statusRevalidated:
		b = append(b, "fwd=stale; fwd-status="...)
		b = strconv.AppendInt(b, int64(fwdStatus), 10)
		if kind == statusRevalidated {
			b = append(b, "; stored"...)
		}
	}
	b = append(b, "; ttl="...)
	b = strconv.AppendInt(b, int64(ttl/time.Second), 10)
	switch kind {
	case statusSWR:
		b = append(b, "; detail=stale-while-revalidate"...)
	case statusSIE:
		b = append(b, "; detail=stale-if-error"...)
	case statusStale:
		b = append(b, "; detail=max-stale"...)
	}
	return b
}

// appendURL is the cache key of a request: scheme://host/path?query, the
// host lower-cased (RFC 9111 §2: the target URI).
func appendURL(b []byte, r *exchange.Request) []byte {
	if r.TLS {
		b = append(b, "https://"...)
	} else {
		b = append(b, "http://"...)
	}
	for _, c := range r.Host {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	b = append(b, r.Path...)
	if r.HasQuery {
		b = append(b, '?')
		b = append(b, r.Query...)
	}
	return b
}
