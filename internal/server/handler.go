package server

import (
	"context"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/observe"
	"github.com/gatehouse-proxy/gatehouse/internal/proxy"
	"github.com/gatehouse-proxy/gatehouse/internal/route"
)

// ServeExchange routes one request with the current snapshot.
func (s *Server) ServeExchange(req *exchange.Request, w exchange.ResponseWriter) {
	start := time.Now()
	snap := s.snap.Load()
	r := snap.Router.Match(req)
	var res proxy.Result
	switch {
	case r == nil:
		res.Status = proxy.WriteError(w, 404)
	case r.Respond != nil:
		res.Status = respond(w, r.Respond)
	case r.Redirect != nil:
		res.Status = redirect(w, req, r.Redirect)
	default:
		if lim := snap.Limits.MaxBodyBytes; lim > 0 && req.ContentLength > lim {
			res.Status = proxy.WriteError(w, 413)
			break
		}
		snap.Forwarder.Forward(context.Background(), req, w, r, r.Pool(), &res)
	}
	if al := s.accessLog.Load(); al != nil {
		_, n := w.Written()
		var buf [64]byte
		e := observe.Entry{
			Start:    start,
			Client:   req.RemoteAddr.AppendTo(buf[:0]),
			Method:   req.Method,
			Host:     req.Host,
			Path:     req.Path,
			Status:   res.Status,
			Bytes:    n,
			Duration: time.Since(start),
		}
		if res.Target != nil {
			e.Upstream = res.Target.Addr
		}
		if r != nil {
			e.Route = r.Name
		}
		al.Log(&e)
	}
}

func respond(w exchange.ResponseWriter, r *route.Respond) int {
	if w.WriteHead(r.Status, nil, r.Headers, int64(len(r.Body))) == nil {
		w.Write(r.Body)
	}
	return r.Status
}

func redirect(w exchange.ResponseWriter, req *exchange.Request, r *route.Redirect) int {
	h := exchange.Headers{{Name: []byte("Location"), Value: r.Location(req)}}
	w.WriteHead(r.Status, nil, h, 0)
	return r.Status
}
