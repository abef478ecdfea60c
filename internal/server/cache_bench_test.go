package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
)

// cacheableBackend answers every request with a body that may be cached
// for an hour.
func cacheableBackend(b testing.TB, body []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=3600\r\nETag: \"b\"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	resp = append(resp, body...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				buf := make([]byte, 0, 4096)
				for {
					head, err := h1.ReadHead(br, buf, 64<<10)
					if err != nil {
						return
					}
					buf = head[:0]
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func benchmarkCacheHit(b *testing.B, size int) {
	text := fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
access_log: {enabled: false}
upstreams:
  app: {targets: ["http://%s"]}
sites:
  - routes:
      - upstream: app
        middleware: [{cache: {max_bytes: 64MiB}}]
`, cacheableBackend(b, bytes.Repeat([]byte("x"), size)))
	cfg, err := config.Parse("bench.yaml", []byte(text))
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(b.Context()) })
	var addr string
	for _, a := range srv.Addrs() {
		addr = a.String()
	}
	benchmarkAddr(b, addr, size)
}

// BenchmarkCacheHit1KiB is a keep-alive GET answered from the memory cache.
func BenchmarkCacheHit1KiB(b *testing.B) { benchmarkCacheHit(b, 1<<10) }

// BenchmarkCacheHit100KiB is a large cached answer.
func BenchmarkCacheHit100KiB(b *testing.B) { benchmarkCacheHit(b, 100<<10) }
