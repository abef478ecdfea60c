package compress

import (
	"bytes"
	"errors"
	"io"
	"net"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// What a response writer is doing with the body.
const (
	stateNew    = iota // no head yet
	stateBuffer        // length unknown: holding up to min_bytes before deciding
	stateEncode        // compressing
	statePass          // passing the body through as it is
	stateDone          // the encoder is closed (or the response is over)
)

var errBodyBeforeHead = errors.New("compress: body written before head")

// rw is the ResponseWriter a compressing filter hands to the rest of the
// chain. It decides at WriteHead (or, for a body of unknown length, once
// min_bytes have come or the handler flushes) whether the body is encoded.
// One is pooled per filter and reused across requests.
type rw struct {
	inner exchange.ResponseWriter
	f     *Filter

	choice int  // index in f.order of the coding the client takes; -1: none
	stream bool // the body's length is unknown: flushes are the handler's word
	reqNo  bool // the request rules compression out (HEAD, Range, no-transform)
	dec    *bodyDecoder

	state  int
	status int
	reason []byte
	src    exchange.Headers // the handler's fields, copied while the head waits
	head   exchange.Headers // the fields sent
	arena  []byte           // bytes of copied and rewritten fields
	buf    []byte           // body held in stateBuffer; copy buffer for ReadFrom
	in     int64            // body bytes the handler wrote

	enc  encoder
	pool *encPool
	snk  sink
	err  error
}

// sink collects the encoder's output, which comes in pieces of a few
// hundred bytes, into writes of a useful size (each Write of the engine is a
// chunk on the wire).
type sink struct {
	w   *rw
	out []byte
}

const sinkSize = 16 << 10

func (s *sink) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(s.out) == 0 && len(p) >= cap(s.out) {
			return n, s.w.innerWrite(p)
		}
		k := copy(s.out[len(s.out):cap(s.out)], p)
		s.out = s.out[:len(s.out)+k]
		p = p[k:]
		if len(s.out) == cap(s.out) {
			if err := s.drain(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (s *sink) drain() error {
	if len(s.out) == 0 {
		return nil
	}
	err := s.w.innerWrite(s.out)
	s.out = s.out[:0]
	return err
}

func (w *rw) innerWrite(p []byte) error {
	if w.err != nil {
		return w.err
	}
	_, err := w.inner.Write(p)
	if err != nil {
		w.err = err
	}
	return err
}

func newRW(f *Filter) *rw {
	w := &rw{f: f, buf: make([]byte, 0, max(int(f.minBytes), 16<<10))}
	w.snk = sink{w: w, out: make([]byte, 0, sinkSize)}
	return w
}

// reset prepares w for one exchange.
func (w *rw) reset(inner exchange.ResponseWriter, req *exchange.Request, dec *bodyDecoder) {
	w.inner = inner
	w.dec = dec
	w.state = stateNew
	w.err = nil
	w.in = 0
	a := parseAccept(req.Header)
	w.choice = a.choose(w.f.order)
	w.reqNo = string(req.Method) == "HEAD" || req.Header.Has("Range") || noTransform(req.Header)
}

// release ends w's use by an exchange: nothing it points to may outlive it.
func (w *rw) release() {
	if w.enc != nil {
		w.pool.put(w.enc)
		w.enc, w.pool = nil, nil
	}
	w.inner = nil
	w.dec = nil
	w.reason = nil
	clear(w.src)
	clear(w.head)
	w.src, w.head = w.src[:0], w.head[:0]
	w.arena = w.arena[:0]
	if cap(w.arena) > 64<<10 {
		w.arena = nil // one response's huge head is not kept for every later one
	}
	w.buf = w.buf[:0]
	w.snk.out = w.snk.out[:0]
}

func (w *rw) Write1xx(status int, h exchange.Headers) error { return w.inner.Write1xx(status, h) }
func (w *rw) Hijack() (net.Conn, io.Reader, error)          { return w.inner.Hijack() }
func (w *rw) StopBody()                                     { w.inner.StopBody() }

// Written reports the head as sent once the handler has written it, even
// while it waits here: the handler must not send a second one.
func (w *rw) Written() (bool, int64) { return w.state != stateNew, w.in }

// The kinds of response WriteHead tells apart.
const (
	kindNever    = iota // never touched: not ours to encode
	kindSmall           // small enough that coding is not worth it: as is
	kindEligible        // would be encoded for a client that takes a coding
)

func (w *rw) WriteHead(status int, reason []byte, h exchange.Headers, contentLength int64) error {
	if w.state != stateNew {
		return w.inner.WriteHead(status, reason, h, contentLength)
	}
	if w.dec != nil && w.dec.refused.Load() {
		// The rest of a refused body is not worth reading: the answer says
		// the connection closes, so that the client does not reuse it.
		w.inner.StopBody()
	}
	w.state = statePass
	if status == 304 {
		return w.notModified(reason, h, contentLength)
	}
	switch w.f.classify(status, h, contentLength) {
	case kindNever, kindSmall:
		return w.inner.WriteHead(status, reason, h, contentLength)
	}
	if w.choice < 0 || w.reqNo {
		// Another request for the same resource may get it encoded:
		// caches must tell them apart (RFC 9110 §12.5.5).
		w.fields(h, false, false, true)
		return w.inner.WriteHead(status, reason, w.head, contentLength)
	}
	w.stream = contentLength < 0
	if contentLength >= 0 {
		return w.startEncoding(status, reason, h)
	}
	// Unknown length: hold the head and up to min_bytes of body. Its bytes
	// belong to the caller (the backend connection's buffer), so copy them.
	w.state = stateBuffer
	w.status = status
	w.reason = w.copyBytes(reason)
	for i := range h {
		w.src = append(w.src, exchange.Header{Name: w.copyBytes(h[i].Name), Value: w.copyBytes(h[i].Value)})
	}
	return nil
}

// notModified passes a 304 on with what the 200 it stands for would have
// had: Vary, and the weakened ETag when the client takes a coding (so that
// the cache's stored, encoded response keeps matching).
func (w *rw) notModified(reason []byte, h exchange.Headers, contentLength int64) error {
	ct := h.Get("Content-Type")
	if h.Has("Content-Encoding") || noTransform(h) || ct != nil && !w.f.typeListed(ct) {
		return w.inner.WriteHead(304, reason, h, contentLength)
	}
	encoded := w.choice >= 0 && !w.reqNo
	if encoded {
		contentLength = -1 // the encoded 200 has no Content-Length either
	}
	// Never Content-Encoding on a 304: a cache merges the 304's fields into
	// its stored response, which may be one sent unencoded.
	w.fields(h, encoded, false, true)
	return w.inner.WriteHead(304, reason, w.head, contentLength)
}

func (w *rw) copyBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	start := len(w.arena)
	w.arena = append(w.arena, b...)
	return w.arena[start:len(w.arena):len(w.arena)]
}

// fields builds w.head from src: with the encoding's changes when encode
// (Content-Encoding itself only when addCE), with Vary: Accept-Encoding
// when vary.
func (w *rw) fields(src exchange.Headers, encode, addCE, vary bool) {
	w.head = w.head[:0]
	varyAt := -1
	for i := range src {
		f := src[i]
		n := f.Name
		switch {
		case exchange.EqualFold(n, "vary"):
			if exchange.HasToken(f.Value, "accept-encoding") || exchange.HasToken(f.Value, "*") {
				vary = false
			} else if varyAt < 0 {
				varyAt = len(w.head)
			}
		case !encode:
		case exchange.EqualFold(n, "content-length"), exchange.EqualFold(n, "accept-ranges"):
			// The length is the encoder's, known only at the end; ranges
			// of an encoded body made on the fly cannot be served again.
			continue
		case exchange.EqualFold(n, "etag"):
			// The encoded body is not byte-for-byte the one the strong tag
			// names; a weak tag still lets If-None-Match revalidate
			// (RFC 9110 §8.8.3), as nginx does.
			if v := exchange.TrimOWS(f.Value); len(v) > 0 && v[0] == '"' {
				start := len(w.arena)
				w.arena = append(append(w.arena, "W/"...), v...)
				f.Value = w.arena[start:len(w.arena):len(w.arena)]
			}
		}
		w.head = append(w.head, f)
	}
	if vary {
		if varyAt >= 0 {
			start := len(w.arena)
			w.arena = append(append(w.arena, w.head[varyAt].Value...), ", Accept-Encoding"...)
			w.head[varyAt].Value = w.arena[start:len(w.arena):len(w.arena)]
		} else {
			w.head = append(w.head, exchange.Header{Name: varyName, Value: acceptEncodingValue})
		}
	}
	if addCE {
		w.head = append(w.head, exchange.Header{Name: contentEncodingName, Value: codingValues[w.f.order[w.choice]]})
	}
}

var (
	varyName            = []byte("Vary")
	acceptEncodingValue = []byte("Accept-Encoding")
	contentEncodingName = []byte("Content-Encoding")
	codingValues        = [numAlgs][]byte{algZstd: []byte("zstd"), algBr: []byte("br"), algGzip: []byte("gzip")}
)

// startEncoding sends the encoded response's head and readies the encoder.
func (w *rw) startEncoding(status int, reason []byte, h exchange.Headers) error {
	w.fields(h, true, true, true)
	w.state = stateEncode
	w.pool = w.f.pools[w.f.order[w.choice]]
	w.enc = w.pool.get(&w.snk)
	err := w.inner.WriteHead(status, reason, w.head, -1)
	if err != nil {
		w.err = err
	}
	return err
}

func (w *rw) Write(p []byte) (int, error) {
	switch w.state {
	case stateEncode:
		w.in += int64(len(p))
		if w.err != nil {
			return 0, w.err
		}
		n, err := w.enc.Write(p)
		if err == nil && w.err != nil {
			err = w.err
		}
		return n, err
	case statePass:
		w.in += int64(len(p))
		return w.inner.Write(p)
	case stateBuffer:
		w.in += int64(len(p))
		if len(w.buf)+len(p) < int(w.f.minBytes) {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		if err := w.decideEncode(); err != nil {
			return 0, err
		}
		n, err := w.enc.Write(p)
		if err == nil && w.err != nil {
			err = w.err
		}
		return n, err
	case stateNew:
		return 0, errBodyBeforeHead
	}
	return 0, io.ErrClosedPipe
}

// decideEncode ends stateBuffer with the body encoded.
func (w *rw) decideEncode() error {
	if err := w.startEncoding(w.status, w.reason, w.src); err != nil {
		return err
	}
	if len(w.buf) > 0 {
		_, err := w.enc.Write(w.buf)
		w.buf = w.buf[:0]
		if err != nil {
			return err
		}
	}
	return w.err
}

// decidePass ends stateBuffer with the body as it is: all of it is here,
// so its length is known.
func (w *rw) decidePass() error {
	w.state = statePass
	err := w.inner.WriteHead(w.status, w.reason, w.src, int64(len(w.buf)))
	if err == nil && len(w.buf) > 0 {
		_, err = w.inner.Write(w.buf)
	}
	w.buf = w.buf[:0]
	return err
}

// Flush sends what has been written so far to the client now: the encoder
// emits everything it holds (a sync flush), then the engine sends it. A
// handler that flushes before min_bytes is streaming (server-sent events,
// long polls): the stream is encoded from there on.
//
// A body of known length is not a stream of events: the proxy flushes
// whenever the backend's bytes pause, which on a real network is every few
// packets, and a sync flush each time would cost ratio and CPU. There, the
// encoder keeps its block and only what it has already produced goes out.
func (w *rw) Flush() error {
	switch w.state {
	case stateBuffer:
		if err := w.decideEncode(); err != nil {
			return err
		}
		fallthrough
	case stateEncode:
		if !w.stream {
			if err := w.snk.drain(); err != nil {
				return err
			}
			break
		}
		if err := w.enc.Flush(); err != nil {
			return err
		}
		if err := w.snk.drain(); err != nil {
			return err
		}
	}
	return w.inner.Flush()
}

// complete ends the body: the held one goes out as it is, the encoder
// writes its end. The engine's own end of the response (Finish) is left to
// whoever calls it.
func (w *rw) complete() error {
	var err error
	switch w.state {
	case stateBuffer:
		err = w.decidePass()
	case stateEncode:
		err = w.enc.Close()
		if derr := w.snk.drain(); err == nil {
			err = derr
		}
		w.pool.put(w.enc)
		w.enc, w.pool = nil, nil
	}
	if w.state != stateNew {
		w.state = stateDone
	}
	if err == nil {
		err = w.err
	}
	return err
}

func (w *rw) Finish(trailers exchange.Headers) error {
	if err := w.complete(); err != nil {
		return err
	}
	return w.inner.Finish(trailers)
}

// Abort breaks the response off; a held head goes out first so that the
// client sees a response cut short rather than none.
func (w *rw) Abort() {
	if w.state == stateBuffer {
		w.state = statePass
		if w.inner.WriteHead(w.status, w.reason, w.src, -1) == nil && len(w.buf) > 0 {
			w.inner.Write(w.buf)
		}
	}
	if w.enc != nil {
		w.pool.put(w.enc) // Reset on its next use discards the half-made stream
		w.enc, w.pool = nil, nil
	}
	w.state = stateDone
	w.inner.Abort()
}

// ReadFrom keeps the engine's splice for bodies that pass through as they
// are, and feeds everything else through the encoder: the engine must never
// get a chance to copy around it.
func (w *rw) ReadFrom(src io.Reader) (int64, error) {
	if w.state == statePass {
		if rf, ok := w.inner.(io.ReaderFrom); ok {
			n, err := rf.ReadFrom(src)
			w.in += n
			return n, err
		}
	}
	// While encoding, the hold buffer is free to serve as the copy buffer.
	var buf []byte
	if w.state == stateEncode {
		buf = w.buf[:cap(w.buf)]
	} else {
		buf = make([]byte, 32<<10)
	}
	return io.CopyBuffer(writerOnly{w}, src, buf)
}

// writerOnly hides ReadFrom so that io.CopyBuffer does not loop back into it.
type writerOnly struct{ io.Writer }

// noTransform reports Cache-Control: no-transform (RFC 9111 §5.2.1.6,
// §5.2.2.6): the sender forbids changing the content, encoding included.
func noTransform(h exchange.Headers) bool {
	for i := range h {
		if exchange.EqualFold(h[i].Name, "cache-control") && exchange.HasToken(h[i].Value, "no-transform") {
			return true
		}
	}
	return false
}

// classify tells what a final response (not a 304) is to this filter.
func (f *Filter) classify(status int, h exchange.Headers, contentLength int64) int {
	if status < 200 || status == 204 || status == 206 {
		return kindNever
	}
	ct := h.Get("Content-Type")
	if ct == nil || !f.typeListed(ct) || h.Has("Content-Encoding") || h.Has("Content-Range") || noTransform(h) {
		return kindNever
	}
	if contentLength == 0 || contentLength > 0 && contentLength < f.minBytes {
		return kindSmall
	}
	return kindEligible
}

// typeListed reports whether the media type of a Content-Type value is one
// of the configured types.
func (f *Filter) typeListed(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = exchange.TrimOWS(ct)
	slash := bytes.IndexByte(ct, '/')
	if slash <= 0 {
		return false
	}
	for _, t := range f.types {
		if t.major {
			if exchange.EqualFold(ct[:slash+1], t.s) {
				return true
			}
		} else if exchange.EqualFold(ct, t.s) {
			return true
		}
	}
	return false
}
