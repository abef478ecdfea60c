package cache

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/cache"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

// refresh revalidates e in the background (stale-while-revalidate), once
// per URL at a time. The request's bytes die when Serve returns, so the
// background request is a copy, driven through the rest of the chain with
// a ResponseWriter that answers nobody.
func (f *Filter) refresh(x *filter.Exchange, next filter.Handler, st *state, e *cache.Entry) {
	rkey := append([]byte("refresh\x00"), st.key...)
	fl, leader := f.store.Join(rkey)
	if !leader {
		return
	}
	req := copyRequest(x.Req)
	bst := &state{key: append([]byte(nil), st.key...), info: reqInfo{Request: cache.Request{Control: noControl}}}
	ip, route := x.ClientIP, x.Route
	started := f.store.Go(func(ctx context.Context) {
		defer f.store.Land(rkey, fl, false)
		bx := &filter.Exchange{Ctx: ctx, Req: req, W: discard{}, ClientIP: ip, Route: route, Start: time.Now()}
		f.forward(bx, next, bst, e, modeBackground, "stale")
	})
	if !started {
		f.store.Land(rkey, fl, false)
	}
}

// copyRequest deep-copies what a background request needs: a GET of the
// same URL with the same fields, minus the client's conditionals and
// cache directives (the refresh is the cache's own request).
func copyRequest(r *exchange.Request) *exchange.Request {
	size := len(r.Path) + len(r.Query) + len(r.Host)
	for _, h := range r.Header {
		size += len(h.Name) + len(h.Value)
	}
	buf := make([]byte, 0, size)
	cp := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		s := len(buf)
		buf = append(buf, b...)
		return buf[s:len(buf):len(buf)]
	}
	n := &exchange.Request{
		Method:     []byte("GET"),
		Path:       cp(r.Path),
		Query:      cp(r.Query),
		HasQuery:   r.HasQuery,
		Host:       cp(r.Host),
		ProtoMinor: 1,
		Body:       eofReader{},
		TLS:        r.TLS,
		RemoteAddr: r.RemoteAddr,
		LocalAddr:  r.LocalAddr,
	}
	if r.ID != nil {
		n.NewID() // the refresh is a request of its own in logs and traces
	}
	n.Header = make(exchange.Headers, 0, len(r.Header))
	for _, h := range r.Header {
		switch {
		case exchange.EqualFold(h.Name, "Cache-Control"), exchange.EqualFold(h.Name, "Pragma"),
			exchange.EqualFold(h.Name, "Range"), exchange.EqualFold(h.Name, "Content-Length"),
			exchange.EqualFold(h.Name, "Expect"):
			continue
		}
		n.Header = append(n.Header, exchange.Header{Name: cp(h.Name), Value: cp(h.Value)})
	}
	return n
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// discard is the client of a background request: nobody.
type discard struct{}

func (discard) Write1xx(int, exchange.Headers) error                 { return nil }
func (discard) WriteHead(int, []byte, exchange.Headers, int64) error { return nil }
func (discard) Write(p []byte) (int, error)                          { return len(p), nil }
func (discard) Flush() error                                         { return nil }
func (discard) Finish(exchange.Headers) error                        { return nil }
func (discard) Hijack() (net.Conn, io.Reader, error)                 { return nil, nil, errNoConn }
func (discard) StopBody()                                            {}
func (discard) Abort()                                               {}
func (discard) Written() (bool, int64)                               { return false, 0 }
