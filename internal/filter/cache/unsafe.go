package cache

import (
	"bytes"
	"io"
	"net"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

// serveUnsafe forwards a request with an unsafe method and, when it
// succeeds, invalidates what the cache holds for its URL and for the
// Location and Content-Location it answered with, when those are on the
// same host (RFC 9111 §4.4).
func (f *Filter) serveUnsafe(x *filter.Exchange, next filter.Handler) {
	u := unsafeRecorder{ResponseWriter: x.W}
	x.W = &u
	next.Serve(x)
	x.W = u.ResponseWriter
	if u.status < 200 || u.status >= 400 {
		return
	}
	base := appendURL(nil, x.Req)
	f.store.Invalidate(string(base))
	origin := base[:len(base)-len(x.Req.Path)-queryLen(x.Req)]
	for _, loc := range [][]byte{u.location, u.contentLocation} {
		if target := sameOrigin(origin, loc); target != nil {
			f.store.Invalidate(string(target))
		}
	}
}

func queryLen(r *exchange.Request) int {
	if r.HasQuery {
		return len(r.Query) + 1
	}
	return 0
}

// sameOrigin resolves a Location or Content-Location value against origin
// (scheme://host): an absolute path, or an absolute URL of the same
// origin. Anything else is not invalidated (§4.4: other hosts must not be).
func sameOrigin(origin, loc []byte) []byte {
	loc = exchange.TrimOWS(loc)
	if len(loc) == 0 {
		return nil
	}
	if i := bytes.IndexByte(loc, '#'); i >= 0 {
		loc = loc[:i]
	}
	if loc[0] == '/' && (len(loc) == 1 || loc[1] != '/') {
		return append(append([]byte(nil), origin...), loc...)
	}
	if len(loc) > len(origin) && bytes.EqualFold(loc[:len(origin)], origin) && loc[len(origin)] == '/' {
		return append(append([]byte(nil), origin...), loc[len(origin):]...)
	}
	return nil
}

// unsafeRecorder notes the status and locations of an unsafe request's
// answer; everything else goes straight through.
type unsafeRecorder struct {
	exchange.ResponseWriter
	status                    int
	location, contentLocation []byte
}

func (u *unsafeRecorder) WriteHead(status int, reason []byte, h exchange.Headers, cl int64) error {
	if u.status == 0 {
		u.status = status
		if v := h.Get("Location"); v != nil {
			u.location = append([]byte(nil), v...)
		}
		if v := h.Get("Content-Location"); v != nil {
			u.contentLocation = append([]byte(nil), v...)
		}
	}
	return u.ResponseWriter.WriteHead(status, reason, h, cl)
}

func (u *unsafeRecorder) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := u.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{u.ResponseWriter}, src)
}

func (u *unsafeRecorder) Hijack() (net.Conn, io.Reader, error) { return u.ResponseWriter.Hijack() }
