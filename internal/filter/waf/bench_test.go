package waf_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/server"
)

// The benchmarks compare the same proxied requests with and without the WAF
// (CRS, paranoia level 1): the ratio of their ns/op is the WAF's cost.

func benchBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 100))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					head, err := h1.ReadHead(br, nil, 64<<10)
					if err != nil {
						return
					}
					if i := bytes.Index(bytes.ToLower(head), []byte("content-length: ")); i >= 0 {
						end := bytes.IndexByte(head[i:], '\r')
						n, _ := strconv.Atoi(string(head[i+16 : i+end]))
						io.CopyN(io.Discard, br, int64(n))
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func benchProxy(b *testing.B, middleware string) string {
	cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
access_log: {enabled: false}
upstreams: {app: {targets: ["http://%s"]}}
sites:
  - routes:
      - upstream: app
        middleware: [%s]
`, benchBackend(b), middleware)))
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	for _, a := range srv.Addrs() {
		return a.String()
	}
	b.Fatal("no listener")
	return ""
}

const (
	benchGET = "GET /shop/search?q=blue+widgets&page=2&sort=price HTTP/1.1\r\nHost: shop.test\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-GB,en;q=0.9\r\n" +
		"Cookie: session=0123456789abcdef; theme=dark\r\n\r\n"
	benchForm = "name=John+Doe&email=john%40example.com&address=1+High+Street%2C+Springfield&message=" +
		"Hello%2C+I+would+like+a+quote+for+one+hundred+units+of+the+blue+widget+delivered+next+week."
)

func benchPOST() string {
	return "POST /shop/contact HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0\r\n" +
		"Accept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(benchForm)) + "\r\n\r\n" + benchForm
}

func benchRequests(b *testing.B, addr, req string) {
	raw := []byte(req)
	b.ReportAllocs()
	b.ResetTimer() // the WAF's compilation is not the cost per request
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 64<<10)
		sink := make([]byte, 100)
		for pb.Next() {
			if _, err := c.Write(raw); err != nil {
				b.Error(err)
				return
			}
			h, err := h1.ReadHead(br, nil, 64<<10)
			if err != nil {
				b.Error(err)
				return
			}
			if !bytes.HasPrefix(h, []byte("HTTP/1.1 200 ")) {
				b.Errorf("unexpected response %q", h)
				return
			}
			if _, err := io.ReadFull(br, sink); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

const wafPL1 = "{waf: {paranoia_level: 1}}"

func BenchmarkProxyGETNoWAF(b *testing.B)  { benchRequests(b, benchProxy(b, ""), benchGET) }
func BenchmarkProxyGETWAF(b *testing.B)    { benchRequests(b, benchProxy(b, wafPL1), benchGET) }
func BenchmarkProxyPOSTNoWAF(b *testing.B) { benchRequests(b, benchProxy(b, ""), benchPOST()) }
func BenchmarkProxyPOSTWAF(b *testing.B)   { benchRequests(b, benchProxy(b, wafPL1), benchPOST()) }

// BenchmarkCompileCRS is what building the WAF costs (once per settings;
// kept across reloads).
func BenchmarkCompileCRS(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchProxy(b, fmt.Sprintf("{waf: {paranoia_level: 1, directives: [\"# run %d\"]}}", i))
	}
}
