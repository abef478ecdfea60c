// Package filter is the middleware model of gatehouse: the filters of a
// route (rate limits, authentication, WAF, cache, compression, ...) are
// built once per configuration from its `middleware:` entries and chained in
// front of the route's action. A filter checks the request head and answers
// early, or passes the exchange on, possibly with a ResponseWriter of its
// own that rewrites or records the response as it streams by.
package filter

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Exchange is one request on its way through a route's filter chain. It is
// reused across requests: nothing may keep it after Serve returns (a filter
// that works on in the background copies what it needs).
type Exchange struct {
	Ctx context.Context
	Req *exchange.Request
	// W is where the answer goes. A filter may hand the next one a wrapper
	// of W by setting it before calling next.Serve, and must set it back
	// afterwards.
	W exchange.ResponseWriter
	// ClientIP is the client's address: the connection's peer, or the one
	// trusted proxies (trusted_proxies, the PROXY protocol) vouch for.
	ClientIP netip.Addr
	Route    string // e.g. sites[0].routes[1]
	Start    time.Time

	// Log collects what filters tell the access log and metrics.
	Log LogFields
}

// LogFields is what filters report about an exchange.
type LogFields struct {
	Upstream        string        // the target that answered (set by the route's action)
	UpstreamLatency time.Duration // its time to the response head
	Cache           string        // RFC 9211 outcome: hit, miss, stale, bypass, ...
	User            string        // the authenticated identity
	Blocked         string        // which filter refused the request and why, e.g. "waf:942100"
	Pool            string        // the upstream pool the action forwarded to (metrics)
}

// Reset clears x for the next request.
func (x *Exchange) Reset() { *x = Exchange{} }

// Handler serves an exchange: the next filter, or the route's action.
type Handler interface {
	Serve(x *Exchange)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(x *Exchange)

func (f HandlerFunc) Serve(x *Exchange) { f(x) }

// Filter is one middleware. Serve calls next.Serve(x) to let the request
// through, or answers on x.W itself to stop it.
type Filter interface {
	Serve(x *Exchange, next Handler)
}

// Chain returns the handler that runs filters in order, then final.
func Chain(final Handler, filters ...Filter) Handler {
	h := final
	for i := len(filters) - 1; i >= 0; i-- {
		h = &link{f: filters[i], next: h}
	}
	return h
}

type link struct {
	f    Filter
	next Handler
}

func (l *link) Serve(x *Exchange) { l.f.Serve(x, l.next) }

// Reply answers x with a short body and the given header fields (name,
// value pairs). Filters use it for their refusals (401, 403, 429, ...).
func Reply(x *Exchange, status int, body string, fields ...string) {
	h := make(exchange.Headers, 0, 2+len(fields)/2)
	h = append(h, exchange.Header{Name: []byte("Content-Type"), Value: []byte("text/plain; charset=utf-8")})
	for i := 0; i+1 < len(fields); i += 2 {
		h = append(h, exchange.Header{Name: []byte(fields[i]), Value: []byte(fields[i+1])})
	}
	if x.W.WriteHead(status, nil, h, int64(len(body))) == nil && x.Req.Method != nil && string(x.Req.Method) != "HEAD" {
		io.WriteString(x.W, body)
	}
	x.W.Finish(nil)
}

// Recorder is a ResponseWriter that remembers the status it was given.
// The server wraps every response in one so that the access log and
// metrics see the status whoever answered.
type Recorder struct {
	exchange.ResponseWriter
	Status int
}

func (r *Recorder) WriteHead(status int, reason []byte, h exchange.Headers, contentLength int64) error {
	r.Status = status
	return r.ResponseWriter.WriteHead(status, reason, h, contentLength)
}

// ReadFrom keeps the engine's zero-copy path (splice) behind the wrapper.
func (r *Recorder) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{r.ResponseWriter}, src)
}

// Hijack is forwarded explicitly so that the wrapper is transparent to upgrades.
func (r *Recorder) Hijack() (net.Conn, io.Reader, error) { return r.ResponseWriter.Hijack() }

// writerOnly hides ReadFrom so that io.Copy does not loop back into it.
type writerOnly struct{ io.Writer }

// StatusText is a short reason text for a status, for refusal bodies.
func StatusText(status int) string {
	switch status {
	case 401:
		return "401 Unauthorized\n"
	case 403:
		return "403 Forbidden\n"
	case 429:
		return "429 Too Many Requests\n"
	case 503:
		return "503 Service Unavailable\n"
	}
	return strconv.Itoa(status) + "\n"
}
