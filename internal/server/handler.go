package server

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/observe"
	"github.com/gatehouse-proxy/gatehouse/internal/proxy"
	"github.com/gatehouse-proxy/gatehouse/internal/route"
)

// ServeExchange routes one request with the current snapshot.
func (s *Server) ServeExchange(req *exchange.Request, w exchange.ResponseWriter) {
	start := time.Now()
	if len(req.Path) > 1 && req.Path[1] == '.' && s.serveACMEChallenge(req, w) {
		return
	}
	snap := s.snap.Load()
	if len(snap.SubjectHeaders) > 0 || req.TLSInfo != nil && req.TLSInfo.SubjectHeader != nil {
		setClientSubject(req, snap.SubjectHeaders)
	}
	if rid := &snap.RequestID; rid.Header != nil {
		assignRequestID(req, rid.Header, rid.Name, rid.Trust)
	}
	var span *observe.Span
	if tr := s.tracer.Load(); tr != nil {
		span = tr.Start(req)
	}
	r := snap.Router.Match(req)
	var res proxy.Result
	var lf *filter.LogFields
	upstreamAddr := ""
	switch {
	case r == nil:
		res.Status = proxy.WriteError(w, 404)
	case snap.Chains[r.Site][r.Index] != nil:
		sv := servedPool.Get().(*served)
		sv.rec = filter.Recorder{ResponseWriter: w}
		sv.x = filter.Exchange{
			Ctx:      context.Background(),
			Req:      req,
			W:        &sv.rec,
			ClientIP: clientIP(req, snap.Forwarder.Trusted),
			Route:    r.Name,
			Start:    start,
		}
		snap.Chains[r.Site][r.Index].Serve(&sv.x)
		res.Status = sv.rec.Status
		res.UpstreamLatency = sv.x.Log.UpstreamLatency
		upstreamAddr = sv.x.Log.Upstream
		defer func() {
			sv.x.Reset()
			sv.rec = filter.Recorder{}
			servedPool.Put(sv)
		}()
		lf = &sv.x.Log
	default:
		snap.act(r, req, w, &res)
		if res.Target != nil {
			upstreamAddr = res.Target.Addr
		}
	}
	routeName := ""
	if r != nil {
		routeName = r.Name
	}
	if span != nil {
		span.End(req, routeName, upstreamAddr, res.Status)
	}
	snap.observe(r, req, w, &res, lf, start) // metrics (metrics.go)
	if al := s.accessLog.Load(); al != nil {
		_, n := w.Written()
		var buf [64]byte
		e := observe.Entry{
			Start:           start,
			Client:          req.RemoteAddr.AppendTo(buf[:0]),
			Method:          req.Method,
			Host:            req.Host,
			Path:            req.Path,
			Query:           req.Query,
			HasQuery:        req.HasQuery,
			Proto:           req.Proto(),
			Status:          res.Status,
			Bytes:           n,
			Duration:        time.Since(start),
			Upstream:        upstreamAddr,
			UpstreamLatency: res.UpstreamLatency,
			Route:           routeName,
			RequestID:       req.ID,
			TLS:             tlsVersion(req.TLSInfo),
			Header:          req.Header,
		}
		if lf != nil {
			e.Cache, e.User, e.Blocked = lf.Cache, lf.User, lf.Blocked
		}
		al.Log(&e)
	}
}

// assignRequestID gives req its identifier: the one it came with when
// trusted and well-formed, else a new one, which replaces any the client
// sent so that the backend sees exactly one.
func assignRequestID(req *exchange.Request, name []byte, nameStr string, trust bool) {
	var got []byte
	n := 0
	for i := range req.Header {
		if exchange.EqualFold(req.Header[i].Name, nameStr) {
			got = req.Header[i].Value
			n++
		}
	}
	if trust && n == 1 && validRequestID(got) {
		req.ID = got
		return
	}
	if n > 0 {
		req.Header.Del(nameStr)
	}
	req.Header.Add(name, req.NewID())
}

// validRequestID accepts what tracing systems and other proxies send (UUIDs,
// hex, base64url, dotted ids) and nothing that could break a log line or a
// header: 1 to 128 of A-Z a-z 0-9 - _ . : + / =.
func validRequestID(v []byte) bool {
	if len(v) == 0 || len(v) > 128 {
		return false
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// act runs the route's action: its answer, its redirect, or forwarding.
func (snap *Snapshot) act(r *route.Route, req *exchange.Request, w exchange.ResponseWriter, res *proxy.Result) {
	switch {
	case r.Respond != nil:
		res.Status = respond(w, r.Respond)
	case r.Redirect != nil:
		res.Status = redirect(w, req, r.Redirect)
	default:
		if lim := snap.Limits.MaxBodyBytes; lim > 0 && req.ContentLength > lim {
			res.Status = proxy.WriteError(w, 413)
			return
		}
		snap.Forwarder.Forward(context.Background(), req, w, r, r.Pool(), res)
	}
}

// finalHandler is the end of a filter chain: the route's action.
type finalHandler struct {
	snap *Snapshot
	r    *route.Route
}

func (f *finalHandler) Serve(x *filter.Exchange) {
	var res proxy.Result
	f.snap.act(f.r, x.Req, x.W, &res)
	if res.Target != nil {
		x.Log.Upstream = res.Target.Addr
		x.Log.UpstreamLatency = res.UpstreamLatency
	}
	if res.Pool != nil {
		x.Log.Pool = res.Pool.Name
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

// tlsVersion names the connection's TLS version for the log ("" in clear).
func tlsVersion(t *exchange.TLSInfo) string {
	if t == nil {
		return ""
	}
	switch t.State.Version {
	case tls.VersionTLS13:
		return "1.3"
	case tls.VersionTLS12:
		return "1.2"
	}
	return "older"
}
