// Package forwardauth is the forward_auth middleware, gatehouse's take on
// nginx's auth_request and Traefik's ForwardAuth: before a request goes to
// its backend, its head (method, URI, host, client address and headers,
// never its body) is sent to an authentication service. A 2xx answer lets
// the request through, with the identity headers the service returned; any
// other answer goes back to the client as it is (a 401 with its
// WWW-Authenticate, a 302 to a login page); a service that cannot be
// reached in time gets the client a 503 — the request is never let through
// unchecked (fail closed).
package forwardauth

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/authmetrics"
)

type settings struct {
	URL                 string        `yaml:"url"`
	CopyRequestHeaders  []string      `yaml:"copy_request_headers"`
	CopyResponseHeaders []string      `yaml:"copy_response_headers"`
	Timeout             time.Duration `yaml:"timeout"`
	UserHeader          string        `yaml:"user_header"`
}

// Filter is one forward_auth entry.
type Filter struct {
	url        string
	client     *client
	timeout    time.Duration
	copyReq    []string // canonical names; nil: every end-to-end header
	copyResp   []string // canonical names
	userHeader string
	m          *authmetrics.Counter
}

// client is the keep-alive connection pool to one auth service, kept
// across reloads so that a reload does not cost every connection.
type client struct{ http.Client }

func (c *client) Close() error { c.CloseIdleConnections(); return nil }

func newClient() *client {
	return &client{http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true, // hand the service's body on untouched
		},
		// The service's redirects (to a login page) are for the client.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// New builds a forward_auth filter from its settings.
func New(b *filter.Build) (filter.Filter, error) {
	var s settings
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(s.URL)
	if s.URL == "" || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Fragment != "" {
		return nil, b.Errorf(pos, "url", "url must be an http:// or https:// URL of the authentication service, without credentials (got %q)", s.URL)
	}
	f := &Filter{url: s.URL, timeout: s.Timeout}
	if f.timeout == 0 {
		f.timeout = 5 * time.Second
	}
	for i, h := range s.CopyRequestHeaders {
		if !filter.ValidHeaderName(h) {
			return nil, b.Errorf(pos, "copy_request_headers["+strconv.Itoa(i)+"]", "%q is not a valid header name", h)
		}
		f.copyReq = append(f.copyReq, http.CanonicalHeaderKey(h))
	}
	for i, h := range s.CopyResponseHeaders {
		if !filter.ValidHeaderName(h) {
			return nil, b.Errorf(pos, "copy_response_headers["+strconv.Itoa(i)+"]", "%q is not a valid header name", h)
		}
		f.copyResp = append(f.copyResp, http.CanonicalHeaderKey(h))
	}
	if s.UserHeader != "" {
		if !filter.ValidHeaderName(s.UserHeader) {
			return nil, b.Errorf(pos, "user_header", "%q is not a valid header name", s.UserHeader)
		}
		f.userHeader = http.CanonicalHeaderKey(s.UserHeader)
	}
	f.client, err = filter.Keep(b.State, "forward_auth.client:"+u.Scheme+"://"+u.Host, func() (*client, error) { return newClient(), nil })
	if err != nil {
		return nil, err
	}
	if f.m, err = authmetrics.For(b, "forward_auth"); err != nil {
		return nil, err
	}
	return f, nil
}

// Serve asks the authentication service about the request.
func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	// Identity headers are the service's to set: drop the client's copies.
	for _, h := range f.copyResp {
		x.Req.Header.Del(h)
	}
	ctx, cancel := context.WithTimeout(x.Ctx, f.timeout)
	defer cancel()
	resp, err := f.client.Do(f.request(ctx, x))
	if err != nil {
		x.Log.Blocked = "forward_auth:unavailable"
		f.m.Refused(x.Log.Blocked)
		filter.Reply(x, 503, filter.StatusText(503))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		x.Log.Blocked = "forward_auth:" + strconv.Itoa(resp.StatusCode)
		f.m.Refused(x.Log.Blocked)
		f.relay(x, resp)
		return
	}
	for _, h := range f.copyResp {
		for _, v := range resp.Header[h] {
			x.Req.Header.Add([]byte(h), []byte(v))
		}
	}
	if f.userHeader != "" {
		x.Log.User = resp.Header.Get(f.userHeader)
	}
	// Read what is left of a small body so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	f.m.Allowed()
	next.Serve(x)
}

// request is the subrequest: GET to the service with the client's headers
// and where the request was going in X-Forwarded-*.
func (f *Filter) request(ctx context.Context, x *filter.Exchange) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url, nil) // url checked at build
	h := req.Header
	if f.copyReq == nil {
		for _, fl := range x.Req.Header {
			if !hopByHop(fl.Name) {
				h.Add(string(fl.Name), string(fl.Value))
			}
		}
	} else {
		for _, name := range f.copyReq {
			for _, fl := range x.Req.Header {
				if exchange.EqualFold(fl.Name, name) {
					h.Add(name, string(fl.Value))
				}
			}
		}
	}
	proto := "http"
	if x.Req.TLS {
		proto = "https"
	}
	uri := string(x.Req.Path)
	if x.Req.HasQuery {
		uri += "?" + string(x.Req.Query)
	}
	h.Set("X-Forwarded-Method", string(x.Req.Method))
	h.Set("X-Forwarded-Proto", proto)
	h.Set("X-Forwarded-Host", string(x.Req.Host))
	h.Set("X-Forwarded-Uri", uri)
	h.Set("X-Forwarded-For", x.ClientIP.String())
	return req
}

// hopByHop lists what is not forwarded to the service: hop-by-hop fields
// (RFC 9110 §7.6.1), the body's framing (the service gets no body), and
// Host (the service's own host is used; the client's is X-Forwarded-Host).
func hopByHop(name []byte) bool {
	for _, h := range [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
		"Upgrade", "Content-Length", "Expect", "Host", "Proxy-Authorization"} {
		if exchange.EqualFold(name, h) {
			return true
		}
	}
	return false
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// relay sends the service's refusal to the client: status, end-to-end
// headers and body.
func (f *Filter) relay(x *filter.Exchange, resp *http.Response) {
	conn := resp.Header.Values("Connection")
	h := make(exchange.Headers, 0, len(resp.Header))
	for name, vs := range resp.Header {
		if hopByHop([]byte(name)) || name == "Server" || named(conn, name) {
			continue
		}
		for _, v := range vs {
			h = append(h, exchange.Header{Name: []byte(name), Value: []byte(v)})
		}
	}
	n := resp.ContentLength
	head := string(x.Req.Method) == "HEAD" || resp.StatusCode == 204 || resp.StatusCode == 304
	if head {
		n = 0
	}
	if x.W.WriteHead(resp.StatusCode, nil, h, n) != nil {
		return
	}
	if !head {
		bp := copyBufs.Get().(*[]byte)
		_, err := io.CopyBuffer(writerOnly{x.W}, resp.Body, *bp)
		copyBufs.Put(bp)
		if err != nil && !errors.Is(err, io.EOF) {
			x.W.Abort() // the client must see the answer was cut short
			return
		}
	}
	x.W.Finish(nil)
}

// named reports whether a Connection field names h.
func named(conn []string, h string) bool {
	for _, c := range conn {
		if exchange.HasToken([]byte(c), h) {
			return true
		}
	}
	return false
}

// writerOnly hides the writer's ReadFrom, which expects a proxied body.
type writerOnly struct{ io.Writer }
