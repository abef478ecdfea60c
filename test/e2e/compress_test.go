package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/coder/websocket"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/net/http2"
)

// compressConfig is one upstream behind a route with the compress
// middleware written as settings (a YAML flow mapping), on a listener that
// also takes h2c.
func compressConfig(settings, target string) string {
	return fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    h2c: true
admin:
  addr: {{ADMIN}}
shutdown_timeout: 5s
access_log: {enabled: false}
upstreams:
  app:
    targets: [%q]
sites:
  - routes:
      - match: {path_prefix: /}
        upstream: app
        middleware:
          - compress: %s
`, target, settings)
}

// apiBody is n bytes of JSON records of random common words: compresses
// about 3:1, like a real API answer rather than a repeated pattern.
func apiBody(n int) []byte {
	words := strings.Fields("the of and to in is was that for on it with as he be by at are from this had not or have an they which one you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man request response server client proxy cache header body status error value")
	r := rand.New(rand.NewPCG(7, 9))
	var b strings.Builder
	for id := 0; b.Len() < n; id++ {
		fmt.Fprintf(&b, `{"id":%d,"user":"%s%d","text":"`, id, words[r.IntN(len(words))], r.IntN(1000))
		for range 6 + r.IntN(20) {
			b.WriteString(words[r.IntN(len(words))] + " ")
		}
		b.WriteString("\"}\n")
	}
	return []byte(b.String()[:n])
}

// decodeBody undoes Content-Encoding with each library's own reader.
func decodeBody(t testing.TB, coding string, r io.Reader) []byte {
	t.Helper()
	switch coding {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unexpected Content-Encoding %q", coding)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: decoding: %v", coding, err)
	}
	return b
}

func TestCompressResponsesEndToEnd(t *testing.T) {
	t.Parallel()
	page := apiBody(60 << 10)
	modified := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/page": // known length, strong ETag, ranges: http.ServeContent
			h.Set("Content-Type", "application/json")
			h.Set("ETag", `"page-v1"`)
			http.ServeContent(w, r, "", modified, bytes.NewReader(page))
		case "/stream": // unknown length: chunked from the backend
			h.Set("Content-Type", "text/plain; charset=utf-8")
			for i := 0; i < len(page); i += 7000 {
				w.Write(page[i:min(i+7000, len(page))])
			}
		case "/small":
			h.Set("Content-Type", "text/plain")
			w.Write(page[:200])
		case "/png":
			h.Set("Content-Type", "image/png")
			h.Set("Content-Length", strconv.Itoa(len(page)))
			w.Write(page)
		case "/pre": // encoded by the backend already
			h.Set("Content-Type", "text/plain")
			h.Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			zw.Write(page)
			zw.Close()
		}
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, compressConfig("{algorithms: [zstd, br, gzip], min_bytes: 1KiB}", be.URL))
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 20 * time.Second}
	t.Cleanup(raw.CloseIdleConnections)
	get := func(c *http.Client, method, path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, gh.URL(path), nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: reading: %v", method, path, err)
		}
		return resp, b
	}

	// Each coding, with a known length and a streamed body, decoded by the
	// libraries' own readers.
	for _, c := range []struct{ ae, want string }{
		{"gzip", "gzip"}, {"br", "br"}, {"zstd", "zstd"},
		{"gzip, deflate, br, zstd", "zstd"}, {"gzip;q=1, br;q=0.9", "gzip"}, {"br, zstd;q=0", "br"},
	} {
		for _, path := range []string{"/page", "/stream"} {
			resp, b := get(raw, "GET", path, "Accept-Encoding", c.ae)
			ce := resp.Header.Get("Content-Encoding")
			if resp.StatusCode != 200 || ce != c.want {
				t.Fatalf("%s with %q: status %d Content-Encoding %q, want %s", path, c.ae, resp.StatusCode, ce, c.want)
			}
			if got := decodeBody(t, ce, bytes.NewReader(b)); !bytes.Equal(got, page) {
				t.Errorf("%s %s: decoded %d bytes, want the %d the backend sent", path, ce, len(got), len(page))
			}
			if len(b) > len(page)/2 {
				t.Errorf("%s %s: %d bytes on the wire for %d: barely compressed", path, ce, len(b), len(page))
			}
			if resp.ContentLength != -1 || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("%s %s: Content-Length %d, Vary %q", path, ce, resp.ContentLength, resp.Header.Get("Vary"))
			}
			if path == "/page" && (resp.Header.Get("ETag") != `W/"page-v1"` || resp.Header.Get("Accept-Ranges") != "") {
				t.Errorf("/page %s: ETag %q Accept-Ranges %q, want the tag weakened and no ranges", ce, resp.Header.Get("ETag"), resp.Header.Get("Accept-Ranges"))
			}
		}
	}

	// Go's own client: asks for gzip and decodes it transparently.
	resp, b := get(&http.Client{Timeout: 20 * time.Second}, "GET", "/page")
	if !resp.Uncompressed || !bytes.Equal(b, page) {
		t.Errorf("net/http client: Uncompressed %v, %d bytes", resp.Uncompressed, len(b))
	}

	// The weakened tag revalidates: the backend compares If-None-Match weakly.
	resp, _ = get(raw, "GET", "/page", "Accept-Encoding", "gzip", "If-None-Match", `W/"page-v1"`)
	if resp.StatusCode != 304 || resp.Header.Get("ETag") != `W/"page-v1"` || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("revalidation: %d ETag %q Vary %q, want 304 with the weak tag and Vary", resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("Vary"))
	}

	// Left as they are.
	for _, c := range []struct {
		name, method, path string
		hdr                []string
		status             int
		vary               bool
	}{
		{"no Accept-Encoding", "GET", "/page", nil, 200, true},
		{"identity only", "GET", "/page", []string{"Accept-Encoding", "identity"}, 200, true},
		{"nothing acceptable", "GET", "/page", []string{"Accept-Encoding", "gzip;q=0, identity;q=0"}, 200, true},
		{"small body", "GET", "/small", []string{"Accept-Encoding", "gzip"}, 200, false},
		{"image", "GET", "/png", []string{"Accept-Encoding", "gzip"}, 200, false},
		{"range", "GET", "/page", []string{"Accept-Encoding", "gzip", "Range", "bytes=0-99"}, 206, false},
		{"HEAD", "HEAD", "/page", []string{"Accept-Encoding", "gzip"}, 200, true},
	} {
		resp, b := get(raw, c.method, c.path, c.hdr...)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: status %d Content-Encoding %q, want %d unencoded", c.name, resp.StatusCode, resp.Header.Get("Content-Encoding"), c.status)
		}
		if c.method == "GET" && resp.ContentLength != int64(len(b)) {
			t.Errorf("%s: Content-Length %d for %d bytes", c.name, resp.ContentLength, len(b))
		}
		if strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") != c.vary {
			t.Errorf("%s: Vary %q, want Accept-Encoding: %v", c.name, resp.Header.Get("Vary"), c.vary)
		}
		if c.name == "range" && string(b) != string(page[:100]) {
			t.Errorf("range: body %q", b)
		}
	}
	// Already encoded by the backend: passed on untouched, never twice.
	resp, b = get(raw, "GET", "/pre", "Accept-Encoding", "gzip, br, zstd")
	if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(decodeBody(t, "gzip", bytes.NewReader(b)), page) {
		t.Errorf("pre-encoded: Content-Encoding %q, or encoded twice", resp.Header.Get("Content-Encoding"))
	}

	// HTTP/2 (h2c) clients get the same.
	h2 := &http.Client{Timeout: 20 * time.Second, Transport: &http2.Transport{AllowHTTP: true, DisableCompression: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	for _, path := range []string{"/page", "/stream"} {
		resp, b = get(h2, "GET", path, "Accept-Encoding", "br")
		if resp.ProtoMajor != 2 || resp.Header.Get("Content-Encoding") != "br" || !bytes.Equal(decodeBody(t, "br", bytes.NewReader(b)), page) {
			t.Errorf("h2c %s: %s Content-Encoding %q", path, resp.Proto, resp.Header.Get("Content-Encoding"))
		}
	}

	// curl, as a browser-like client that decodes by itself.
	dir := t.TempDir()
	hdrFile, bodyFile := filepath.Join(dir, "h"), filepath.Join(dir, "b")
	out, err := exec.Command("curl", "-sS", "--compressed", "--max-time", "20", "-D", hdrFile, "-o", bodyFile, gh.URL("/stream")).CombinedOutput()
	if err != nil {
		t.Fatalf("curl --compressed: %v\n%s", err, out)
	}
	heads, _ := os.ReadFile(hdrFile)
	got, _ := os.ReadFile(bodyFile)
	if !regexpMatch(`(?im)^content-encoding: (zstd|br|gzip)\r?$`, string(heads)) || !bytes.Equal(got, page) {
		t.Errorf("curl --compressed: headers\n%s\ndecoded %d bytes, want %d", heads, len(got), len(page))
	}
}

func regexpMatch(re, s string) bool {
	ok, _ := regexp.MatchString(re, s)
	return ok
}

// An event stream through compression still delivers each event as the
// backend flushes it, for every coding.
func TestCompressedServerSentEvents(t *testing.T) {
	t.Parallel()
	release := make(chan struct{}, 8)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		for i := range 3 {
			fmt.Fprintf(w, "id: %d\ndata: event number %d\n\n", i, i)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Second):
				return
			}
		}
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, compressConfig("{}", be.URL))
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(c.CloseIdleConnections)
	for _, coding := range []string{"gzip", "br", "zstd"} {
		req, _ := http.NewRequestWithContext(ctxTimeout(t, 30*time.Second), "GET", gh.URL("/events"), nil)
		req.Header.Set("Accept-Encoding", coding)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("Content-Encoding") != coding {
			t.Fatalf("%s: Content-Encoding %q", coding, resp.Header.Get("Content-Encoding"))
		}
		var r io.Reader
		switch coding {
		case "gzip":
			r, err = gzip.NewReader(resp.Body)
		case "br":
			r = brotli.NewReader(resp.Body)
		case "zstd":
			var zr *zstd.Decoder
			zr, err = zstd.NewReader(resp.Body, zstd.WithDecoderConcurrency(1))
			r = zr
			defer zr.Close()
		}
		if err != nil {
			t.Fatalf("%s: %v", coding, err)
		}
		br := bufio.NewReader(r)
		for i := range 3 {
			want := []string{"id: " + strconv.Itoa(i) + "\n", "data: event number " + strconv.Itoa(i) + "\n", "\n"}
			for _, w := range want {
				if line := readLineTimeout(t, br, 5*time.Second); line != w {
					t.Fatalf("%s: event %d: line %q, want %q", coding, i, line, w)
				}
			}
			release <- struct{}{} // the backend waits until the client saw the event
		}
		resp.Body.Close()
	}
}

// concatBomb is a real decompression bomb: copies of one encoded MiB of
// zeros, concatenated (gzip members and zstd frames may follow each
// other), so that a small body decodes to mib MiB.
func concatBomb(t testing.TB, coding string, mib int) []byte {
	var one bytes.Buffer
	switch coding {
	case "gzip":
		zw, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
		zw.Write(make([]byte, 1<<20))
		zw.Close()
	case "zstd":
		zw, _ := zstd.NewWriter(&one, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		zw.Write(make([]byte, 1<<20))
		zw.Close()
	}
	return bytes.Repeat(one.Bytes(), mib)
}

func encodeBody(t testing.TB, coding string, b []byte) []byte {
	var out bytes.Buffer
	var w io.WriteCloser
	// The fastest levels: the test is about decoding, and -race is slow.
	switch coding {
	case "gzip":
		w, _ = gzip.NewWriterLevel(&out, gzip.BestSpeed)
	case "br":
		w = brotli.NewWriterLevel(&out, 1)
	case "zstd":
		w, _ = zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedFastest))
	}
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func TestDecompressRequestBodies(t *testing.T) {
	t.Parallel()
	e := echoBackend(t, "e")
	gh := startGatehouse(t, compressConfig("{decompress_requests: true, max_decompressed_bytes: 2MiB, max_ratio: 100}", e.URL))
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	post := func(coding string, body []byte) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", gh.URL("/upload"), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if coding != "" {
			req.Header.Set("Content-Encoding", coding)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %s (%d bytes): %v", coding, len(body), err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	plain := apiBody(200 << 10)
	for _, coding := range []string{"gzip", "br", "zstd"} {
		resp, b := post(coding, encodeBody(t, coding, plain))
		var s seen
		if resp.StatusCode != 200 || json.Unmarshal(b, &s) != nil {
			t.Fatalf("%s: status %d body %q", coding, resp.StatusCode, b)
		}
		if s.BodyLen != int64(len(plain)) || s.BodySHA != sha256Hex(plain) || s.Header.Get("Content-Encoding") != "" ||
			len(s.TE) != 1 || s.TE[0] != "chunked" {
			t.Errorf("%s: backend saw %d bytes, Content-Encoding %q, TE %v; want the %d decoded bytes, chunked", coding,
				s.BodyLen, s.Header.Get("Content-Encoding"), s.TE, len(plain))
		}
	}
	// Bombs: 64 MiB of zeros in about 64 KiB (gzip) or a few KiB (zstd).
	// The size cap or the ratio stops them with 413 long before the end.
	for _, coding := range []string{"gzip", "zstd"} {
		bomb := concatBomb(t, coding, 64)
		start := time.Now()
		resp, b := post(coding, bomb)
		if resp.StatusCode != 413 {
			t.Errorf("%s bomb (%d bytes): status %d, want 413", coding, len(bomb), resp.StatusCode)
		}
		assertErrorPage(t, resp, b, 413)
		if !resp.Close {
			t.Errorf("%s bomb: the 413 does not say Connection: close (the rest of the body is not read)", coding)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s bomb took %v to refuse", coding, d)
		}
	}
	// Under the ratio, over the size: random-ish text of 3 MiB.
	if resp, _ := post("zstd", encodeBody(t, "zstd", apiBody(3<<20))); resp.StatusCode != 413 {
		t.Errorf("3 MiB decoded body over a 2 MiB cap: status %d, want 413", resp.StatusCode)
	}
	// Not really compressed: 400, nothing internal said.
	resp, b := post("gzip", []byte("plain text pretending to be gzip"))
	if resp.StatusCode != 400 {
		t.Errorf("garbage gzip: status %d, want 400", resp.StatusCode)
	}
	assertErrorPage(t, resp, b, 400)
	// The server is still well.
	if resp, _ := post("", []byte("{}")); resp.StatusCode != 200 {
		t.Errorf("plain POST after the bombs: %d", resp.StatusCode)
	}
}

func TestCompressConfigErrorsArePositioned(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "bad.yaml", `listeners: [{addr: "127.0.0.1:0"}]
sites:
  - routes:
      - respond: {body: hi}
        middleware:
          - compress: {algorithms: [gzip, deflate], level: 6}
`)
	code, _, stderr := runCLI(t, "validate", "-c", p)
	if code != 1 || !strings.Contains(stderr, "bad.yaml:6:43: sites[0].routes[0].middleware[0].compress.algorithms[1]: unknown coding \"deflate\"") {
		t.Errorf("validate: exit %d\n%s", code, stderr)
	}
}

// An upgrade passes through the compress middleware untouched: the 101 is
// not encoded, and the tunnel carries the frames as they are.
func TestWebSocketThroughCompress(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(1 << 20)
		for {
			typ, data, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			if ws.Write(r.Context(), typ, data) != nil {
				return
			}
		}
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, compressConfig("{min_bytes: 0}", be.URL))
	ctx := ctxTimeout(t, 20*time.Second)
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	ws, resp, err := websocket.Dial(ctx, "ws://"+gh.Addr()+"/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr},
		HTTPHeader: http.Header{"Accept-Encoding": {"gzip, br, zstd"}}})
	if err != nil {
		t.Fatalf("dial through gatehouse: %v", err)
	}
	defer ws.CloseNow()
	if resp.StatusCode != 101 || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	ws.SetReadLimit(1 << 20)
	msg := apiBody(100 << 10)
	if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	if typ, data, err := ws.Read(ctx); err != nil || typ != websocket.MessageText || !bytes.Equal(data, msg) {
		t.Fatalf("echo: type %v, %d bytes, %v", typ, len(data), err)
	}
	ws.Close(websocket.StatusNormalClosure, "bye")
}
