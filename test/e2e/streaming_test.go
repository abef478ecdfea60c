package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSSEFirstEventArrivesWhileBackendStillWriting(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second):
		}
		io.WriteString(w, "data: two\n\n")
	}))
	t.Cleanup(be.Close)
	rel := onceCloser(release)
	t.Cleanup(rel)
	gh := startGatehouse(t, oneUpstream("", be.URL))

	req, _ := http.NewRequestWithContext(ctxTimeout(t, 30*time.Second), "GET", gh.URL("/events"), nil)
	type first struct {
		resp *http.Response
		br   *bufio.Reader
		line string
		err  error
	}
	got := make(chan first, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
		if err != nil {
			got <- first{err: err}
			return
		}
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		got <- first{resp, br, line, err}
	}()
	var f first
	select {
	case f = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not reach the client within 5s while the backend was still writing (response buffered)")
	}
	if f.err != nil || f.line != "data: one\n" {
		t.Fatalf("first line %q, err %v", f.line, f.err)
	}
	defer f.resp.Body.Close()
	if ct := f.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	rel()
	rest, err := io.ReadAll(f.br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest of stream %q, err %v", rest, err)
	}
}

func TestChunkedBodiesAndTrailers(t *testing.T) {
	t.Parallel()
	e := echoBackend(t, "e")
	chunky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "part %d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Checksum", "c0ffee")
	}))
	t.Cleanup(chunky.Close)
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
upstreams:
  echo: {targets: ["%s"]}
  chunky: {targets: ["%s"]}
sites:
  - routes:
      - {match: {path_prefix: /chunky}, upstream: chunky}
      - {match: {path_prefix: /}, upstream: echo}
`, e.URL, chunky.URL))
	c := newClient(t)

	t.Run("request body of unknown length", func(t *testing.T) {
		body := strings.Repeat("0123456789abcdef", 64*1024) // 1 MiB
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < len(body); i += 100_000 {
				pw.Write([]byte(body[i:min(i+100_000, len(body))]))
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", gh.URL("/up"), pr)
		req.ContentLength = -1
		req.Trailer = http.Header{"X-Req-Sum": {"abc123"}}
		_, s := doSeen(t, c, req)
		if s.BodyLen != int64(len(body)) || s.BodySHA != sha256Hex([]byte(body)) {
			t.Errorf("backend got %d bytes sha %s, want %d bytes sha %s", s.BodyLen, s.BodySHA, len(body), sha256Hex([]byte(body)))
		}
		if got := s.Trailer.Get("X-Req-Sum"); got != "abc123" {
			t.Errorf("request trailer X-Req-Sum %q at the backend, want abc123 (trailers %v)", got, s.Trailer)
		}
	})

	t.Run("chunked response with trailer", func(t *testing.T) {
		resp, err := c.Get(gh.URL("/chunky"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "part 0;part 1;part 2;part 3;part 4;" {
			t.Fatalf("body %q err %v", b, err)
		}
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("Transfer-Encoding %q, want chunked", resp.TransferEncoding)
		}
		if got := resp.Trailer.Get("X-Checksum"); got != "c0ffee" {
			t.Errorf("response trailer X-Checksum %q, want c0ffee (trailers %v)", got, resp.Trailer)
		}
	})
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	e := echoBackend(t, "e")
	reject := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject/417" {
			w.WriteHeader(417)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
		w.WriteHeader(401)
	}))
	t.Cleanup(reject.Close)
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
upstreams:
  echo: {targets: ["%s"]}
  reject: {targets: ["%s"]}
sites:
  - routes:
      - {match: {path_prefix: /reject/}, upstream: reject}
      - {match: {path_prefix: /}, upstream: echo}
`, e.URL, reject.URL))

	t.Run("100 then final", func(t *testing.T) {
		c, br := dialRaw(t, gh.Addr())
		send(t, c, "POST /up HTTP/1.1\r\nHost: site.test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
		resp, _ := readResp(t, c, br, "POST")
		if resp.StatusCode != 100 {
			t.Fatalf("first response %d, want 100 Continue before the body is sent", resp.StatusCode)
		}
		send(t, c, "hello world")
		resp, b := readResp(t, c, br, "POST")
		for i := 0; resp.StatusCode == 100 && i < 2; i++ { // more 1xx before the final answer are legal
			resp, b = readResp(t, c, br, "POST")
		}
		var s seen
		if resp.StatusCode != 200 || json.Unmarshal(b, &s) != nil || s.BodySHA != sha256Hex([]byte("hello world")) {
			t.Fatalf("final response %d %q", resp.StatusCode, b)
		}
	})
	for _, code := range []string{"401", "417"} {
		t.Run("backend rejects early with "+code, func(t *testing.T) {
			c, br := dialRaw(t, gh.Addr())
			send(t, c, "PUT /reject/"+code+" HTTP/1.1\r\nHost: site.test\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n")
			for i := 0; ; i++ { // the body is never sent: the final answer must come anyway
				resp, _ := readResp(t, c, br, "PUT")
				if resp.StatusCode == 100 && i < 2 {
					t.Logf("proxy sent 100 Continue although the backend rejected")
					continue
				}
				if fmt.Sprint(resp.StatusCode) != code {
					t.Fatalf("status %d, want %s without sending the body", resp.StatusCode, code)
				}
				break
			}
		})
	}
}

// patternReader yields n deterministic bytes: a fixed pseudo-random 1 MiB block
// whose first 8 bytes are replaced by the block's index (so reordering shows).
type patternReader struct {
	n, off int64
	cur    []byte
	curIdx int64
}

var patternBlock = func() []byte {
	b := make([]byte, 1<<20)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}()

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	idx, within := p.off/int64(len(patternBlock)), p.off%int64(len(patternBlock))
	if p.cur == nil || p.curIdx != idx {
		if p.cur == nil {
			p.cur = make([]byte, len(patternBlock))
		}
		copy(p.cur, patternBlock)
		for i := 0; i < 8; i++ {
			p.cur[i] = byte(idx >> (8 * i))
		}
		p.curIdx = idx
	}
	end := min(int64(len(p.cur)), within+(p.n-p.off))
	n := copy(b, p.cur[within:end])
	p.off += int64(n)
	return n, nil
}

func TestLargeBodiesFlatMemory(t *testing.T) {
	t.Parallel()
	size := int64(256 << 20)
	if os.Getenv("GATEHOUSE_E2E_HUGE") == "1" {
		size = 1 << 30
	}
	h := sha256.New()
	io.Copy(h, &patternReader{n: size})
	want := hex.EncodeToString(h.Sum(nil))

	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %s %v", n, hex.EncodeToString(h.Sum(nil)), err)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.Copy(w, &patternReader{n: size})
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, oneUpstream("", be.URL))
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	t.Cleanup(c.CloseIdleConnections)
	ctx := ctxTimeout(t, 240*time.Second)

	if resp, _ := do(t, newClient(t), "POST", gh.URL("/warm"), "", strings.NewReader("warm")); resp.StatusCode != 200 {
		t.Fatalf("warm-up status %d", resp.StatusCode)
	}
	before := vmHWM(t, gh.Pid())

	req, _ := http.NewRequestWithContext(ctx, "POST", gh.URL("/upload"), &patternReader{n: size})
	req.ContentLength = size
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != fmt.Sprintf("%d %s <nil>", size, want) {
		t.Errorf("upload: backend reports %q, want %d bytes with sha %s", b, size, want)
	}

	req, _ = http.NewRequestWithContext(ctx, "GET", gh.URL("/download"), nil)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	h = sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != want || err != nil {
		t.Errorf("download: %d bytes sha %s err %v, want %d bytes sha %s", n, got, err, size, want)
	}

	after := vmHWM(t, gh.Pid())
	t.Logf("gatehouse VmHWM %d MiB before, %d MiB after moving %d MiB each way", before>>20, after>>20, size>>20)
	if !raceBuild && after-before >= 64<<20 {
		t.Errorf("peak RSS grew by %d MiB while streaming %d MiB bodies; want < 64 MiB (flat memory)", (after-before)>>20, size>>20)
	}
}

// TestHeadBeforeQuietBody: a backend that sends its response head and then
// waits (a long poll, an event stream with nothing to say yet) must have
// that head reach the client at once, not when the first body byte comes.
func TestHeadBeforeQuietBody(t *testing.T) {
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "data: late\n\n")
	}))
	defer be.Close()
	defer close(release)
	gh := startGatehouse(t, oneUpstream("", be.URL))
	c := newClient(t)
	start := time.Now()
	resp, err := c.Get(gh.URL("/quiet"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if d := time.Since(start); resp.StatusCode != 200 || d > 3*time.Second {
		t.Fatalf("head arrived after %v (status %d): want it before any body byte", d, resp.StatusCode)
	}
}
