package waf

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3/types"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
)

// Serve inspects the request and lets it through, or refuses it.
func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	if f.excluded(x.Req.Path) {
		next.Serve(x)
		return
	}
	tx := f.eng.waf.NewTransaction()
	defer func() {
		tx.ProcessLogging()
		tx.Close()
	}()
	if it := f.requestHead(x, tx); it != nil {
		f.refuse(x, tx, it)
		return
	}
	rb, status := f.requestBody(x, tx)
	if rb != nil {
		defer rb.release()
	}
	if status != 0 {
		x.Log.Blocked = "waf:body"
		reply(x, status)
		return
	}
	it, err := tx.ProcessRequestBody()
	if err != nil {
		// Coraza failed on its own (not a verdict): refuse rather than let
		// an uninspected request through.
		f.log.Error("waf: request body processing failed", "error", err.Error())
		reply(x, 500)
		return
	}
	if it != nil {
		f.refuse(x, tx, it)
		return
	}
	seen := f.report(x, tx, "pass", 0)
	if !f.inspectResp {
		next.Serve(x)
		return
	}
	inner := x.W
	rw := respWriterPool.Get().(*respWriter)
	*rw = respWriter{ResponseWriter: inner, f: f, x: x, tx: tx, seen: seen}
	x.W = rw
	next.Serve(x)
	x.W = inner
	*rw = respWriter{}
	respWriterPool.Put(rw)
}

// excluded reports whether path is under one of exclude_paths. A path with
// dot segments or encoded slashes, dots or backslashes is never excluded:
// the backend may normalise /static/../admin to /admin.
func (f *Filter) excluded(path []byte) bool {
	if len(f.exclude) == 0 {
		return false
	}
	match := false
	for _, p := range f.exclude {
		if bytes.HasPrefix(path, p) {
			match = true
			break
		}
	}
	return match && plainPath(path)
}

func plainPath(p []byte) bool {
	if bytes.IndexByte(p, '\\') >= 0 || bytes.Contains(p, []byte("/.")) {
		return false
	}
	for i := bytes.IndexByte(p, '%'); i >= 0; i = bytes.IndexByte(p, '%') {
		if i+2 < len(p) {
			switch strings.ToLower(string(p[i+1 : i+3])) {
			case "2e", "2f", "5c", "25":
				return false
			}
		}
		p = p[i+1:]
	}
	return true
}

// requestHead feeds the connection, request line and headers to tx and runs
// phase 1.
func (f *Filter) requestHead(x *filter.Exchange, tx types.Transaction) *types.Interruption {
	req := x.Req
	tx.ProcessConnection(x.ClientIP.String(), int(req.RemoteAddr.Port()), req.LocalAddr.Addr().Unmap().String(), int(req.LocalAddr.Port()))
	uri := string(req.Path)
	if req.HasQuery {
		uri = string(req.Path) + "?" + string(req.Query)
	}
	proto := "HTTP/1.1"
	if req.ProtoMinor == 0 {
		proto = "HTTP/1.0"
	}
	tx.ProcessURI(uri, string(req.Method), proto)
	hasHost := false
	for i := range req.Header {
		h := &req.Header[i]
		hasHost = hasHost || exchange.EqualFold(h.Name, "host")
		if req.Expect100 && exchange.EqualFold(h.Name, "expect") {
			// gatehouse answers 100-continue itself and never forwards the
			// client's Expect, so the CRS rule against Expect-based desync
			// (920450 /expect/) has nothing to protect here.
			continue
		}
		tx.AddRequestHeader(string(h.Name), string(h.Value))
	}
	if !hasHost && len(req.Host) > 0 { // HTTP/2 carries it as :authority
		tx.AddRequestHeader("Host", string(req.Host))
	}
	if host, _, err := net.SplitHostPort(string(req.Host)); err == nil {
		tx.SetServerName(host)
	} else {
		tx.SetServerName(string(req.Host))
	}
	return tx.ProcessRequestHeaders()
}

// requestBody buffers the body up to the limit, hands it to tx, and puts a
// reader in front of the request's body that replays the buffered bytes and
// then the rest. It returns a status when the request must be refused
// (too large, unreadable).
func (f *Filter) requestBody(x *filter.Exchange, tx types.Transaction) (*replay, int) {
	req := x.Req
	if req.ContentLength == 0 || !tx.IsRequestBodyAccessible() {
		return nil, 0
	}
	if f.rejectOver && req.ContentLength > f.bodyLimit {
		return nil, 413 // known too large: refuse before the client sends it
	}
	if req.Expect100 {
		// The client waits for a go-ahead before sending what we must
		// read now; the backend will then get the body without Expect.
		if err := x.W.Write1xx(100, nil); err != nil {
			return nil, 400
		}
		req.Expect100 = false
	}
	rb := replayPool.Get().(*replay)
	rb.buf.Reset()
	_, err := rb.buf.ReadFrom(io.LimitReader(req.Body, f.bodyLimit+1))
	if err != nil {
		return rb, bodyErrorStatus(err)
	}
	data := rb.buf.Bytes()
	if int64(len(data)) > f.bodyLimit {
		if f.rejectOver {
			return rb, 413
		}
		data = data[:f.bodyLimit]
	}
	if _, _, err := tx.WriteRequestBody(data); err != nil {
		f.log.Error("waf: buffering the request body failed", "error", err.Error())
		return rb, 500
	}
	rb.data, rb.rest = rb.buf.Bytes(), req.Body
	req.Body = rb
	return rb, 0
}

func bodyErrorStatus(err error) int {
	if e, ok := h1.IsHeadError(err); ok {
		return e.Status
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 408
	}
	return 400
}

// replay is a request body: the bytes the WAF read, then the rest.
type replay struct {
	buf  bytes.Buffer
	data []byte
	rest io.Reader
}

var replayPool = sync.Pool{New: func() any { return new(replay) }}

func (r *replay) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	return r.rest.Read(p)
}

// release returns the buffer to the pool unless it grew large (one huge
// upload must not pin its memory in the pool).
func (r *replay) release() {
	r.data, r.rest = nil, nil
	if r.buf.Cap() > 1<<20 {
		return
	}
	replayPool.Put(r)
}

// refuse answers a request the rules stopped.
func (f *Filter) refuse(x *filter.Exchange, tx types.Transaction, it *types.Interruption) {
	x.Log.Blocked = "waf:" + f.ids(tx)
	f.report(x, tx, "block", 0)
	if it.Action == "drop" {
		x.W.Abort()
		return
	}
	status := it.Status
	if status < 400 || status > 599 {
		status = 403
	}
	reply(x, status)
}

func reply(x *filter.Exchange, status int) {
	filter.Reply(x, status, strconv.Itoa(status)+" "+http.StatusText(status)+"\n", "Cache-Control", "no-store")
}

// ids lists the rules that matched, comma separated. Rules without a
// message (flow control, set-up) are left out.
func (f *Filter) ids(tx types.Transaction) string {
	var ids []byte
	for _, m := range tx.MatchedRules() {
		if !logged(m) {
			continue
		}
		if len(ids) > 0 {
			ids = append(ids, ',')
		}
		ids = strconv.AppendInt(ids, int64(m.Rule().ID()), 10)
	}
	return string(ids)
}

// logged reports whether m is a rule meant to be logged: `nolog` rules
// (set-up, flow control, "Enabling body inspection") are not findings.
func logged(m types.MatchedRule) bool {
	if l, ok := m.(interface{ Log() bool }); ok {
		return l.Log() && m.Message() != ""
	}
	return m.Message() != ""
}

// report logs the rules that matched (if any) from the from'th match on,
// and returns how many matches there are now.
func (f *Filter) report(x *filter.Exchange, tx types.Transaction, action string, from int) int {
	var ids []byte
	var msgs, data []string
	matched := tx.MatchedRules()
	for _, m := range matched[min(from, len(matched)):] {
		if !logged(m) {
			continue
		}
		if len(ids) > 0 {
			ids = append(ids, ',')
		}
		ids = strconv.AppendInt(ids, int64(m.Rule().ID()), 10)
		msgs = append(msgs, m.Message())
		data = append(data, clip(m.Data(), 256))
	}
	if len(ids) == 0 {
		return len(matched)
	}
	level := slog.LevelWarn
	switch {
	case action == "block":
	case !f.block:
		action = "detect"
	default:
		level = slog.LevelInfo // matched, but below the blocking threshold
	}
	f.log.Log(x.Ctx, level, "waf", "action", action, "rules", string(ids), "messages", msgs, "data", data,
		"client", x.ClientIP.String(), "method", string(x.Req.Method), "path", string(x.Req.Path), "route", x.Route)
	return len(matched)
}

// clip cuts s to at most n bytes (log data quotes the client's input).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// respWriter runs the response phase on the response head and, when the
// rules block, answers 403 instead and drops the backend's body.
type respWriter struct {
	exchange.ResponseWriter
	f       *Filter
	x       *filter.Exchange
	tx      types.Transaction
	seen    int // request-phase matches, already logged
	blocked bool
}

var respWriterPool = sync.Pool{New: func() any { return new(respWriter) }}

func (w *respWriter) WriteHead(status int, reason []byte, h exchange.Headers, contentLength int64) error {
	for i := range h {
		w.tx.AddResponseHeader(string(h[i].Name), string(h[i].Value))
	}
	it := w.tx.ProcessResponseHeaders(status, "HTTP/1.1")
	if it == nil {
		w.f.report(w.x, w.tx, "pass", w.seen)
		return w.ResponseWriter.WriteHead(status, reason, h, contentLength)
	}
	w.blocked = true
	w.x.Log.Blocked = "waf:" + w.f.ids(w.tx)
	w.f.report(w.x, w.tx, "block", w.seen)
	body := "403 Forbidden\n"
	hs := exchange.Headers{
		{Name: []byte("Content-Type"), Value: []byte("text/plain; charset=utf-8")},
		{Name: []byte("Cache-Control"), Value: []byte("no-store")},
	}
	if err := w.ResponseWriter.WriteHead(403, nil, hs, int64(len(body))); err != nil {
		return err
	}
	if string(w.x.Req.Method) != "HEAD" {
		_, err := io.WriteString(w.ResponseWriter, body)
		return err
	}
	return nil
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.blocked {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

func (w *respWriter) Flush() error {
	if w.blocked {
		return nil
	}
	return w.ResponseWriter.Flush()
}

func (w *respWriter) Finish(trailers exchange.Headers) error {
	if w.blocked {
		trailers = nil
	}
	return w.ResponseWriter.Finish(trailers)
}

// ReadFrom keeps the engine's splice path for the bodies it lets through.
func (w *respWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.blocked {
		return io.Copy(io.Discard, src)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// Hijack is forwarded explicitly so that upgrades pass through the wrapper.
func (w *respWriter) Hijack() (net.Conn, io.Reader, error) { return w.ResponseWriter.Hijack() }

type writerOnly struct{ io.Writer }
