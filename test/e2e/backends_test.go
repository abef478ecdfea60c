package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// seen is what the echo backend reports about the request it received.
type seen struct {
	Name    string      `json:"name"`
	Method  string      `json:"method"`
	URI     string      `json:"uri"`
	Host    string      `json:"host"`
	Proto   string      `json:"proto"`
	Header  http.Header `json:"header"`
	BodyLen int64       `json:"body_len"`
	BodySHA string      `json:"body_sha"`
	TE      []string    `json:"te"`
	CL      int64       `json:"cl"`
	Trailer http.Header `json:"trailer"`
}

// echoBackend answers every request with a JSON description of it, and with
// `Server: SecretBackend/9.9` (which the proxy must hide).
func echoBackend(t testing.TB, name string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, "body read error", http.StatusBadRequest)
			return
		}
		s := seen{Name: name, Method: r.Method, URI: r.RequestURI, Host: r.Host, Proto: r.Proto,
			Header: r.Header, BodyLen: n, BodySHA: hex.EncodeToString(h.Sum(nil)),
			TE: r.TransferEncoding, CL: r.ContentLength, Trailer: r.Trailer}
		w.Header().Set("Server", "SecretBackend/9.9")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// doSeen sends a request through the proxy to an echo backend and decodes its report.
func doSeen(t testing.TB, c *http.Client, req *http.Request) (*http.Response, seen) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	var s seen
	if resp.StatusCode != 200 || json.Unmarshal(b, &s) != nil {
		t.Fatalf("%s %s: status %d, body %q", req.Method, req.URL, resp.StatusCode, b)
	}
	return resp, s
}

func sha256Hex(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// rawBackend is a TCP listener whose connections are handled by fn; it closes
// the listener and every accepted connection at the end of the test.
func rawBackend(t testing.TB, fn func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				fn(c, bufio.NewReader(c))
			}()
		}
	}()
	return l.Addr().String()
}

// readHead reads one message head (start line through the blank line) as raw text.
func readHead(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			return sb.String(), err
		}
		if line == "\r\n" || line == "\n" {
			return sb.String(), nil
		}
		if sb.Len() > 1<<20 {
			return sb.String(), errors.New("head too large")
		}
	}
}

// parseHead splits a raw head into its start line and header fields.
func parseHead(head string) (string, http.Header) {
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(head)))
	first, _ := tp.ReadLine()
	mh, _ := tp.ReadMIMEHeader()
	return first, http.Header(mh)
}

// rawMsg is a message read byte-exactly off the wire.
type rawMsg struct {
	Head    string
	First   string
	Header  http.Header
	Body    []byte
	Trailer string // raw trailer section of a chunked body
}

// readRawRequest reads a request head and its body (Content-Length or chunked).
func readRawRequest(br *bufio.Reader) (*rawMsg, error) {
	head, err := readHead(br)
	if err != nil {
		return nil, err
	}
	m := &rawMsg{Head: head}
	m.First, m.Header = parseHead(head)
	switch {
	case strings.Contains(strings.ToLower(strings.Join(m.Header.Values("Transfer-Encoding"), ",")), "chunked"):
		if m.Body, err = io.ReadAll(httputil.NewChunkedReader(br)); err != nil {
			return m, err
		}
		m.Trailer, err = readHead(br) // trailer fields and the final CRLF
		return m, err
	case m.Header.Get("Content-Length") != "":
		n, err := strconv.Atoi(m.Header.Get("Content-Length"))
		if err != nil {
			return m, err
		}
		m.Body = make([]byte, n)
		_, err = io.ReadFull(br, m.Body)
		return m, err
	}
	return m, nil
}

// headerTokens is the lower-cased comma-separated tokens of every h[name] line.
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.ToLower(strings.TrimSpace(tok)); tok != "" {
				out = append(out, tok)
			}
		}
	}
	return out
}

// dialRaw opens a TCP connection closed at the end of the test.
func dialRaw(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func send(t testing.TB, c net.Conn, s string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readResp reads one response (5 s at most) for a request of the given method, body included.
func readResp(t testing.TB, c net.Conn, br *bufio.Reader, method string) (*http.Response, []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	resp.Body.Close()
	return resp, b
}

// expectClosed reads until EOF; it fails if the peer keeps the connection open for d.
func expectClosed(t testing.TB, c net.Conn, br *bufio.Reader, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	n, err := io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open %v after the response (read %d more bytes)", d, n)
	}
	if n > 0 {
		t.Errorf("%d unexpected bytes after the response before close", n)
	}
}

// assertErrorPage checks a proxy-generated error response: status, plain short
// text body that names no address and no Go error text, and Server: gatehouse.
func assertErrorPage(t testing.TB, resp *http.Response, body []byte, status int, forbidden ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d (body %q)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q, want text/plain; charset=utf-8", ct)
	}
	if s := resp.Header.Get("Server"); s != "gatehouse" {
		t.Errorf("Server %q, want gatehouse", s)
	}
	if len(body) > 200 {
		t.Errorf("error body is %d bytes, want a short one: %q", len(body), body)
	}
	low := strings.ToLower(string(body))
	for _, bad := range append([]string{"127.0.0.1", "dial", "tcp", "eof", "refused", "i/o timeout", "deadline exceeded", "context", "goroutine", "panic", "read:", "write:"}, forbidden...) {
		if strings.Contains(low, strings.ToLower(bad)) {
			t.Errorf("error body %q contains %q", body, bad)
		}
	}
}
