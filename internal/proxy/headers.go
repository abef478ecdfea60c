package proxy

import (
	"bufio"
	"bytes"
	"net/netip"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/route"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// isHopByHop lists the fields that describe one connection, never the
// message (RFC 9110 §7.6.1), plus the framing fields each side writes itself.
func isHopByHop(n []byte) bool {
	switch len(n) {
	case 2:
		return exchange.EqualFold(n, "te")
	case 7:
		return exchange.EqualFold(n, "upgrade") || exchange.EqualFold(n, "trailer")
	case 10:
		return exchange.EqualFold(n, "connection") || exchange.EqualFold(n, "keep-alive")
	case 14:
		return exchange.EqualFold(n, "content-length")
	case 16:
		return exchange.EqualFold(n, "proxy-connection")
	case 17:
		return exchange.EqualFold(n, "transfer-encoding")
	}
	return false
}

// connTokens collects the values of every Connection field: the fields they
// name are hop-by-hop too.
type connTokens struct {
	vals [8][]byte
	n    int
	more bool // more than fit: fall back to scanning the header list
	h    exchange.Headers
}

func (c *connTokens) collect(h exchange.Headers) {
	c.n, c.more, c.h = 0, false, h
	for i := range h {
		if len(h[i].Name) == 10 && exchange.EqualFold(h[i].Name, "connection") {
			if c.n == len(c.vals) {
				c.more = true
				continue
			}
			c.vals[c.n] = h[i].Value
			c.n++
		}
	}
}

func (c *connTokens) names(name []byte) bool {
	for i := 0; i < c.n; i++ {
		if exchange.HasTokenBytes(c.vals[i], name) {
			return true
		}
	}
	if c.more {
		for i := range c.h {
			if exchange.EqualFold(c.h[i].Name, "connection") && exchange.HasTokenBytes(c.h[i].Value, name) {
				return true
			}
		}
	}
	return false
}

// isForwardingField is a field gatehouse writes itself from what it knows of
// the client; a client's own copy is kept only when the client is trusted.
func isForwardingField(n []byte) bool {
	switch len(n) {
	case 9:
		return exchange.EqualFold(n, "forwarded")
	case 15:
		return exchange.EqualFold(n, "x-forwarded-for")
	case 16:
		return exchange.EqualFold(n, "x-forwarded-host")
	case 17:
		return exchange.EqualFold(n, "x-forwarded-proto")
	}
	return false
}

// headWriter takes the request head writeRequestHead decides on: a backend
// connection (*h1.ClientConn), or an h2Head that turns it into an
// *http.Request for the HTTP/2 transports. Fields go through WriteField, or
// straight to Writer() as "Name: value\r\n" lines.
type headWriter interface {
	WriteRequestLine(method, prefix, path, query []byte, hasQuery bool)
	WriteField(name, value []byte)
	Writer() *bufio.Writer
}

// writeRequestHead writes the request line and fields for the backend.
func writeRequestHead(cc headWriter, req *exchange.Request, r *route.Route, p *upstream.Pool, t *upstream.Target, trusted bool, ct *connTokens) {
	path := req.Path
	if len(r.StripPrefix) > 0 && bytes.HasPrefix(path, r.StripPrefix) &&
		(len(path) == len(r.StripPrefix) || path[len(r.StripPrefix)] == '/') {
		path = path[len(r.StripPrefix):]
		if len(path) == 0 {
			path = slash
		}
	}
	cc.WriteRequestLine(req.Method, t.Prefix, path, req.Query, req.HasQuery)
	if p.PreserveHost && len(req.Host) > 0 {
		cc.WriteField(hostName, req.Host)
	} else {
		cc.WriteField(hostName, t.Host)
	}
	ct.collect(req.Header)
	ops := &r.RequestHeaders
	var xff, xfproto, xfhost, fwd []byte
	teTrailers := false
	for i := range req.Header {
		h := &req.Header[i]
		n := h.Name
		if isHopByHop(n) || len(n) == 4 && exchange.EqualFold(n, "host") {
			if len(n) == 2 && exchange.HasToken(h.Value, "trailers") {
				teTrailers = true
			}
			continue
		}
		if isForwardingField(n) {
			if trusted {
				switch len(n) {
				case 9:
					fwd = joinPrior(fwd, h.Value)
				case 15:
					xff = joinPrior(xff, h.Value)
				case 16:
					xfhost = h.Value
				case 17:
					xfproto = h.Value
				}
			}
			continue
		}
		if len(n) == 6 && exchange.EqualFold(n, "expect") {
			// Only a 100-continue we can relay is forwarded (below).
			continue
		}
		// Names with '_' are dropped, as nginx does by default: many backends
		// (CGI, WSGI, Rack) fold '_' and '-' together, so X_Forwarded_For
		// would pass for the X-Forwarded-For that gatehouse sets.
		if ct.names(n) || ops.Drops(n) || bytes.IndexByte(n, '_') >= 0 {
			continue
		}
		cc.WriteField(n, h.Value)
	}
	for i := range ops.Set {
		cc.WriteField(ops.Set[i].Name, ops.Set[i].Value)
	}
	for i := range ops.Add {
		cc.WriteField(ops.Add[i].Name, ops.Add[i].Value)
	}
	writeForwarded(cc, req, xff, xfproto, xfhost, fwd)
	if teTrailers {
		cc.WriteField(teName, trailersValue)
	}
	if req.Upgrade != nil && req.ContentLength == 0 {
		// An upgrade whose request has a body is forwarded as a plain request:
		// the tunnel would race the body for the client's bytes.
		cc.WriteField(connectionName, upgradeValue)
		cc.WriteField(upgradeName, req.Upgrade)
	}
	if req.Expect100 && req.ContentLength != 0 {
		cc.WriteField(expectName, continueValue)
	}
}

// joinPrior appends one more prior value. Several fields of the same name
// are rare (one per proxy hop at most), so the copy is off the common path.
func joinPrior(prev, v []byte) []byte {
	if prev == nil {
		return v
	}
	out := make([]byte, 0, len(prev)+2+len(v))
	out = append(out, prev...)
	out = append(out, ", "...)
	return append(out, v...)
}

func writeForwarded(cc headWriter, req *exchange.Request, xff, xfproto, xfhost, fwd []byte) {
	bw := cc.Writer()
	ip := req.RemoteAddr.Addr().Unmap()
	proto := protoHTTP
	if req.TLS {
		proto = protoHTTPS
	}

	bw.WriteString("X-Forwarded-For: ")
	if len(xff) > 0 {
		bw.Write(xff)
		bw.WriteString(", ")
	}
	writeIP(bw, ip)
	bw.WriteString("\r\n")

	if xfproto == nil {
		xfproto = proto
	}
	cc.WriteField(xForwardedProto, xfproto)
	if xfhost == nil {
		xfhost = req.Host
	}
	if len(xfhost) > 0 {
		cc.WriteField(xForwardedHost, xfhost)
	}

	// RFC 7239: for=; an IPv6 address is quoted and bracketed, a host with a
	// port is quoted because ':' is not a token character.
	bw.WriteString("Forwarded: ")
	if len(fwd) > 0 {
		bw.Write(fwd)
		bw.WriteString(", ")
	}
	bw.WriteString("for=")
	writeNodeIP(bw, ip)
	if len(req.Host) > 0 {
		bw.WriteString(";host=")
		if bytes.IndexByte(req.Host, ':') >= 0 || bytes.IndexByte(req.Host, '[') >= 0 {
			bw.WriteByte('"')
			bw.Write(req.Host)
			bw.WriteByte('"')
		} else {
			bw.Write(req.Host)
		}
	}
	bw.WriteString(";proto=")
	bw.Write(proto)
	bw.WriteString("\r\n")
}

func writeNodeIP(bw *bufio.Writer, ip netip.Addr) {
	if ip.Is6() {
		bw.WriteString("\"[")
		writeIP(bw, ip)
		bw.WriteString("]\"")
		return
	}
	writeIP(bw, ip)
}

// writeIP formats ip in bufio's free space (a stack buffer would escape).
func writeIP(bw *bufio.Writer, ip netip.Addr) {
	if bw.Available() < 64 {
		bw.Flush()
	}
	bw.Write(ip.AppendTo(bw.AvailableBuffer()))
}

var (
	slash           = []byte("/")
	hostName        = []byte("Host")
	teName          = []byte("TE")
	trailersValue   = []byte("trailers")
	connectionName  = []byte("Connection")
	upgradeName     = []byte("Upgrade")
	upgradeValue    = []byte("Upgrade")
	expectName      = []byte("Expect")
	continueValue   = []byte("100-continue")
	xForwardedProto = []byte("X-Forwarded-Proto")
	xForwardedHost  = []byte("X-Forwarded-Host")
	protoHTTP       = []byte("http")
	protoHTTPS      = []byte("https")
)

// responseFields filters a backend's response fields into out: hop-by-hop
// fields, the backend's Server and whatever Hide withholds are dropped,
// URLs that point at a target are rewritten when the pool asks for it.
func (f *Forwarder) responseFields(out exchange.Headers, req *exchange.Request, resp *h1.Response, r *route.Route, pool *upstream.Pool, ct *connTokens, upgrade bool) exchange.Headers {
	ct.collect(resp.Header)
	ops := &r.ResponseHeaders
	for i := range resp.Header {
		h := &resp.Header[i]
		n := h.Name
		if isHopByHop(n) {
			// A trailer announcement stays true only where trailers can
			// follow (a chunked body), since gatehouse passes them on.
			if resp.Chunked && len(n) == 7 && exchange.EqualFold(n, "trailer") {
				out = append(out, *h)
			}
			continue
		}
		if len(n) == 6 && exchange.EqualFold(n, "server") || ct.names(n) || ops.Drops(n) || f.Hide != nil && f.Hide.drops(n) {
			continue
		}
		if pool.RewriteLocation {
			if refresh, ok := isLocationField(n); ok {
				var nv []byte
				if refresh {
					nv = rewriteRefresh(h.Value, req, r.StripPrefix, pool)
				} else {
					nv = rewriteLocation(h.Value, req, r.StripPrefix, pool)
				}
				if nv != nil {
					out = append(out, exchange.Header{Name: n, Value: nv})
					continue
				}
			}
		}
		out = append(out, *h)
	}
	if f.Hide != nil && f.Hide.via {
		out = append(out, exchange.Header{Name: viaName, Value: viaValue})
	}
	out = append(out, ops.Set...)
	out = append(out, ops.Add...)
	if upgrade {
		out = append(out, exchange.Header{Name: connectionName, Value: upgradeValue})
		if v := resp.Header.Get("Upgrade"); v != nil {
			out = append(out, exchange.Header{Name: upgradeName, Value: v})
		}
	}
	return out
}
