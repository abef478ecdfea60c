package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// pipeClient is a ClientConn whose backend sends raw and then closes.
func pipeClient(t *testing.T, raw string) *ClientConn {
	t.Helper()
	client, backend := net.Pipe()
	go func() {
		io.WriteString(backend, raw)
		backend.Close()
	}()
	t.Cleanup(func() { client.Close() })
	client.SetDeadline(time.Now().Add(5 * time.Second))
	return &ClientConn{
		t:    &Transport{MaxHeader: 4096, MaxIdle: 2},
		nc:   client,
		br:   bufio.NewReaderSize(client, readBufSize),
		bw:   bufio.NewWriter(client),
		head: make([]byte, 0, 256),
	}
}

func TestClientReadResponseFraming(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		head     bool // response to HEAD
		status   int
		body     string
		close    bool
		trailers string
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", false, 200, "hello", false, ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", false, 200, "hello", false, "X-Sum=1"},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nall of it", false, 200, "all of it", true, ""},
		{"TE gzip is until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b", false, 200, "\x1f\x8b", true, ""},
		{"HEAD has no body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, 200, "", false, ""},
		{"HEAD chunked has no body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, 200, "", false, ""},
		{"204 has no body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, 204, "", false, ""},
		{"304 has no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false, 304, "", false, ""},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, 200, "ok", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := pipeClient(t, tc.raw)
			r, err := cc.ReadResponse(tc.head)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(cc.Body())
			if err != nil {
				t.Fatalf("body: %v", err)
			}
			var tr []string
			for _, h := range cc.Body().Trailers {
				tr = append(tr, string(h.Name)+"="+string(h.Value))
			}
			if r.Status != tc.status || string(body) != tc.body || r.Close != tc.close || strings.Join(tr, ",") != tc.trailers {
				t.Errorf("status %d body %q close %v trailers %v; want %d %q %v %q",
					r.Status, body, r.Close, tr, tc.status, tc.body, tc.close, tc.trailers)
			}
		})
	}
}

func TestClientInterimResponses(t *testing.T) {
	cc := pipeClient(t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	for _, want := range []int{100, 103, 200} {
		r, err := cc.ReadResponse(false)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != want {
			t.Fatalf("status %d, want %d", r.Status, want)
		}
	}
	if body, _ := io.ReadAll(cc.Body()); string(body) != "ok" {
		t.Errorf("body %q", body)
	}
}

func TestClientRefusesBadResponses(t *testing.T) {
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
	} {
		cc := pipeClient(t, raw)
		_, err := cc.ReadResponse(false)
		if statusOf(err) != 502 {
			t.Errorf("%q: %v, want a 502 error", raw, err)
		}
		cc.Release()
		if len(cc.t.idle) != 0 {
			t.Errorf("%q: connection pooled after a refused response", raw)
		}
	}
}

func TestClientBadHeadReason(t *testing.T) {
	cc := pipeClient(t, "HTTP/1.1 200 OK\nContent-Length: 0\n\n")
	_, err := cc.ReadResponse(false)
	if statusOf(err) != 502 {
		t.Fatalf("bare LF response: %v, want a 502 error", err)
	}
	if strings.Contains(err.Error(), "too large") {
		t.Errorf("bug response-bad-head-reason: bare LF response reported as %q", err)
	}
}

func TestClientReleaseAndReuse(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		c, err := backend.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			head, err := ReadHead(br, nil, 4096)
			if err != nil {
				return
			}
			_ = head
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}()
	tr := &Transport{Addr: backend.Addr().String(), DialTimeout: time.Second, MaxIdle: 4, MaxHeader: 4096}
	defer tr.CloseIdle(true)
	for i := 0; i < 3; i++ {
		cc, err := tr.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cc.Reused != (i > 0) {
			t.Errorf("request %d: Reused %v", i, cc.Reused)
		}
		cc.WriteRequestLine([]byte("GET"), nil, []byte("/"), nil, false)
		cc.WriteField([]byte("Host"), []byte("b"))
		cc.EndHead(0)
		if err := cc.Writer().Flush(); err != nil {
			t.Fatal(err)
		}
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := cc.ReadResponse(false); err != nil {
			t.Fatal(err)
		}
		if body, _ := io.ReadAll(cc.Body()); string(body) != "ok" {
			t.Fatalf("body %q", body)
		}
		cc.Release()
	}
}

func TestClientWriteBuffered(t *testing.T) {
	tests := []struct {
		name, raw string
		done      bool
		body      string
	}{
		{"all buffered", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true, "hello"},
		{"empty", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, ""},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", true, ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, "hello"},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nhello", false, "hello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := pipeClient(t, tc.raw)
			if _, err := cc.ReadResponse(false); err != nil {
				t.Fatal(err)
			}
			cc.br.Peek(len(tc.raw)) // what the pipe holds is all buffered now
			var out strings.Builder
			done, err := cc.Body().WriteBuffered(&out)
			if done != tc.done || err != nil {
				t.Fatalf("WriteBuffered: %v, %v; want %v", done, err, tc.done)
			}
			if !done {
				b, err := io.ReadAll(cc.Body())
				if err != nil {
					t.Fatal(err)
				}
				out.Write(b)
			}
			if out.String() != tc.body || !cc.Body().Done() {
				t.Errorf("body %q (done %v), want %q", out.String(), cc.Body().Done(), tc.body)
			}
		})
	}
	t.Run("not all buffered yet", func(t *testing.T) {
		client, backend := net.Pipe()
		defer client.Close()
		go func() {
			io.WriteString(backend, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(backend, "world")
			backend.Close()
		}()
		cc := &ClientConn{t: &Transport{MaxHeader: 4096}, nc: client, br: bufio.NewReader(client), head: make([]byte, 0, 256)}
		if _, err := cc.ReadResponse(false); err != nil {
			t.Fatal(err)
		}
		if done, _ := cc.Body().WriteBuffered(io.Discard); done {
			t.Fatal("WriteBuffered took a body whose end has not come")
		}
		if b, err := io.ReadAll(cc.Body()); err != nil || string(b) != "helloworld" {
			t.Errorf("body %q, %v", b, err)
		}
	})
}
