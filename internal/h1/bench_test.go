package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// browserGET is what a current browser sends for a page (about 600 bytes, 13 fields).
const browserGET = "GET /articles/2024/gatehouse-design.html?ref=home&utm_source=feed HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://www.example.com/\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=4f9a8b7c6d5e4f3a2b1c; theme=dark; consent=yes\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Priority: u=0, i\r\n" +
	"\r\n"

// loopReader serves data over and over, without allocating.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

func BenchmarkParseRequest(b *testing.B) {
	head := []byte(browserGET)
	var req exchange.Request
	if err := ParseRequest(head, &req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		if err := ParseRequest(head, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadHeadParseRequest(b *testing.B) {
	br := bufio.NewReaderSize(&loopReader{data: []byte(browserGET)}, readBufSize)
	buf := make([]byte, 0, 1024)
	var req exchange.Request
	b.ReportAllocs()
	b.SetBytes(int64(len(browserGET)))
	for b.Loop() {
		head, err := ReadHead(br, buf, 64<<10)
		if err != nil {
			b.Fatal(err)
		}
		buf = head[:0]
		if err := ParseRequest(head, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBodyChunked(b *testing.B) {
	chunk := bytes.Repeat([]byte("x"), 4096)
	var raw bytes.Buffer
	for i := 0; i < 4; i++ {
		raw.WriteString("1000\r\n")
		raw.Write(chunk)
		raw.WriteString("\r\n")
	}
	raw.WriteString("0\r\nX-Sum: 1\r\n\r\n")
	br := bufio.NewReaderSize(&loopReader{data: raw.Bytes()}, readBufSize)
	p := make([]byte, 32<<10)
	var body Body
	b.ReportAllocs()
	b.SetBytes(4 * 4096)
	for b.Loop() {
		body.reset(br, bodyChunked, 0, 0, 1024)
		for {
			_, err := body.Read(p)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkServeConnKeepAlive measures one request and response on a
// kept-alive connection, server and client together.
func BenchmarkServeConnKeepAlive(b *testing.B) {
	hello := []byte("hello")
	lim := &Limits{ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
	srv := &Server{
		Handler: handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
			w.WriteHead(200, nil, nil, int64(len(hello)))
			w.Write(hello)
		}),
		Limits: func() *Limits { return lim },
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		srv.ServeConn(c, new(ConnState))
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte(browserGET)
	// The response size is constant (the Date field has a fixed width).
	c.Write(req)
	first := make([]byte, 4096)
	n, err := c.Read(first)
	if err != nil || !bytes.HasSuffix(first[:n], hello) {
		b.Fatalf("first response %q, %v", first[:n], err)
	}
	resp := first[:n]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseRequestAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	head := []byte(browserGET)
	var req exchange.Request
	ParseRequest(head, &req)
	if n := testing.AllocsPerRun(100, func() { ParseRequest(head, &req) }); n != 0 {
		t.Errorf("ParseRequest of a browser GET: %v allocations, want 0", n)
	}
	br := bufio.NewReaderSize(&loopReader{data: head}, readBufSize)
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		h, err := ReadHead(br, buf, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		buf = h[:0]
		ParseRequest(h, &req)
	}); n != 0 {
		t.Errorf("ReadHead+ParseRequest of a browser GET: %v allocations, want 0", n)
	}
}
