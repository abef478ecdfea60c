package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

var (
	errHeadTwice  = errors.New("h1: response head written twice")
	errBodyTooBig = errors.New("h1: response body longer than its Content-Length")
	errShortBody  = errors.New("h1: response body shorter than its Content-Length")
)

// responseWriter is the HTTP/1.1 exchange.ResponseWriter of one connection.
type responseWriter struct {
	c          *conn
	req        *exchange.Request
	headSent   bool
	sent100    bool
	finished   bool
	hijacked   bool
	chunked    bool
	noBody     bool
	closeAfter bool
	remaining  int64 // of a fixed-length body; -1 otherwise
	bodyBytes  int64
	writeErr   error
}

func (w *responseWriter) reset(req *exchange.Request) {
	*w = responseWriter{c: w.c, req: req, remaining: -1}
}

func (w *responseWriter) Written() (bool, int64) { return w.headSent, w.bodyBytes }

func (w *responseWriter) Write1xx(status int, h exchange.Headers) error {
	if w.headSent || w.req.ProtoMinor == 0 {
		return nil
	}
	if status == 100 {
		w.sent100 = true
	}
	bw := w.c.bw
	writeStatusLine(bw, 1, status, nil)
	writeFields(bw, h)
	bw.WriteString("\r\n")
	return w.setErr(bw.Flush())
}

func (w *responseWriter) WriteHead(status int, reason []byte, h exchange.Headers, contentLength int64) error {
	if w.headSent {
		return errHeadTwice
	}
	w.headSent = true
	bw := w.c.bw
	minor := 1
	writeStatusLine(bw, minor, status, reason)
	bw.WriteString("Server: gatehouse\r\n")
	hasDate := false
	for i := range h {
		n := h[i].Name
		if isFramingField(n) && !(status == 101 && len(n) == 10) {
			continue
		}
		hasDate = hasDate || len(n) == 4 && exchange.EqualFold(n, "date")
		bw.Write(n)
		bw.WriteString(": ")
		bw.Write(h[i].Value)
		bw.WriteString("\r\n")
	}
	if !hasDate && status >= 200 {
		writeDate(bw)
	}
	isHead := string(w.req.Method) == "HEAD"
	switch {
	case status == 101:
		// The tunnel's framing belongs to the upgraded protocol.
		w.noBody = true
	case status == 204 || status == 304 || status < 200:
		w.noBody = true
		if status == 304 && contentLength >= 0 {
			writeContentLength(bw, contentLength)
		}
	case isHead:
		w.noBody = true
		if contentLength >= 0 {
			writeContentLength(bw, contentLength)
		}
	case contentLength >= 0:
		w.remaining = contentLength
		writeContentLength(bw, contentLength)
	case w.req.ProtoMinor >= 1:
		w.chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		// HTTP/1.0 client and unknown length: the end of the body is the close.
		w.closeAfter = true
	}
	if b := &w.c.body; status >= 200 && status != 101 && b.Remaining() > maxDrain {
		// Answered with more of the request body unread than finishRequest
		// will skip: say the connection ends here, so that the client does
		// not send its next request into a reset. (A chunked body's size is
		// unknown; a small one is skipped and the connection kept.)
		w.closeAfter = true
	}
	if w.req.Close || w.closeAfter {
		w.closeAfter = true
		bw.WriteString("Connection: close\r\n")
	} else if w.req.ProtoMinor == 0 {
		bw.WriteString("Connection: keep-alive\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return w.setErr(err)
}

func (w *responseWriter) setErr(err error) error {
	if err != nil && w.writeErr == nil {
		w.writeErr = err
	}
	return err
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.writeErr != nil {
		return 0, w.writeErr
	}
	if !w.headSent {
		return 0, errors.New("h1: body written before head")
	}
	if w.noBody {
		w.bodyBytes += int64(len(p))
		return len(p), nil
	}
	bw := w.c.bw
	switch {
	case w.chunked:
		if err := writeChunk(bw, p); err != nil {
			return 0, w.setErr(err)
		}
	case w.remaining >= 0:
		if int64(len(p)) > w.remaining {
			w.closeAfter = true
			return 0, w.setErr(errBodyTooBig)
		}
		if _, err := bw.Write(p); err != nil {
			return 0, w.setErr(err)
		}
		w.remaining -= int64(len(p))
	default:
		if _, err := bw.Write(p); err != nil {
			return 0, w.setErr(err)
		}
	}
	w.bodyBytes += int64(len(p))
	return len(p), nil
}

// ReadFrom copies a fixed-length body straight between sockets (splice on
// Linux) once bufio's bytes are out, which is what makes large bodies cheap.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	tc := w.c.tcp
	if tc == nil || w.chunked || w.noBody || w.remaining < 0 || w.writeErr != nil {
		return io.Copy(writerOnly{w}, src)
	}
	if err := w.c.bw.Flush(); err != nil {
		return 0, w.setErr(err)
	}
	// Hand the kernel the source as it is: splice recognises a socket only
	// directly or under one LimitedReader.
	lr, ok := src.(*io.LimitedReader)
	if !ok || lr.N > w.remaining {
		lr = &io.LimitedReader{R: src, N: w.remaining}
		src = lr
	}
	var n int64
	var err error
	if w.c.cw.timeout <= 0 {
		n, err = tc.ReadFrom(src)
	} else {
		n, err = w.c.cw.spliceFrom(tc, lr)
	}
	w.remaining -= n
	w.bodyBytes += n
	if err != nil {
		w.setErr(err)
	}
	return n, err
}

type writerOnly struct{ io.Writer }

var errAborted = errors.New("h1: response aborted")

func (w *responseWriter) StopBody() {
	w.closeAfter = true
	w.c.nc.SetReadDeadline(time.Now())
}

func (w *responseWriter) Abort() {
	w.closeAfter = true
	w.c.bw.Flush()
	w.setErr(errAborted)
}

func (w *responseWriter) Flush() error {
	if w.writeErr != nil {
		return w.writeErr
	}
	return w.setErr(w.c.bw.Flush())
}

func (w *responseWriter) Finish(trailers exchange.Headers) error {
	if w.finished {
		return w.writeErr
	}
	w.finished = true
	if w.writeErr != nil {
		return w.writeErr
	}
	switch {
	case w.noBody:
	case w.chunked:
		return w.setErr(writeLastChunk(w.c.bw, trailers))
	case w.remaining > 0:
		w.closeAfter = true
		return w.setErr(errShortBody)
	}
	return nil
}

func (w *responseWriter) Hijack() (net.Conn, io.Reader, error) {
	if w.hijacked {
		return nil, nil, errors.New("h1: connection already hijacked")
	}
	if w.c.sock.raw {
		// serveRaw holds the socket's read side; it hands upgrades over
		// to the blocking loop, so this is a handler's mistake.
		return nil, nil, errors.New("h1: connection cannot be hijacked here")
	}
	if err := w.c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	// A tunnel has no deadlines of HTTP's: clear the request head's and
	// the response's.
	w.c.nc.SetReadDeadline(time.Time{})
	w.c.nc.SetWriteDeadline(time.Time{})
	return w.c.nc, w.c.br, nil
}

// isFramingField lists the fields the engine writes itself.
func isFramingField(n []byte) bool {
	switch len(n) {
	case 6:
		return exchange.EqualFold(n, "server")
	case 10:
		return exchange.EqualFold(n, "connection")
	case 14:
		return exchange.EqualFold(n, "content-length")
	case 17:
		return exchange.EqualFold(n, "transfer-encoding")
	}
	return false
}

func writeStatusLine(bw *bufio.Writer, minor, status int, reason []byte) {
	if minor == 0 {
		bw.WriteString("HTTP/1.0 ")
	} else {
		bw.WriteString("HTTP/1.1 ")
	}
	writeInt(bw, int64(status))
	bw.WriteByte(' ')
	if len(reason) > 0 {
		bw.Write(reason)
	} else {
		bw.WriteString(http.StatusText(status))
	}
	bw.WriteString("\r\n")
}

func writeContentLength(bw *bufio.Writer, n int64) {
	bw.WriteString("Content-Length: ")
	writeInt(bw, n)
	bw.WriteString("\r\n")
}

// writeInt formats n in bufio's own free space: a stack buffer handed to
// Write would escape to the heap.
func writeInt(bw *bufio.Writer, n int64) {
	if bw.Available() < 20 {
		bw.Flush()
	}
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), n, 10))
}

// statusLine is the short body of an engine-made error: "400 Bad Request\n".
func statusLine(status int) string {
	return strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
}
