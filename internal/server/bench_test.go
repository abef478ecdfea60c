package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
)

// The benchmarks drive gatehouse with a raw client and a raw backend that
// allocate nothing themselves, so that allocs/op is the proxy's own cost.

func rawBackend(b testing.TB, body []byte) string { return rawBackendWith(b, "", body) }

// rawBackendWith is rawBackend with extra response head lines (each ending in\r\n).
func rawBackendWith(b testing.TB, fields string, body []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: backend/1.0\r\n" + fields + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
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

func startProxy(b testing.TB, backend string) string {
	text := fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
access_log: {enabled: false}
upstreams:
  app: {targets: ["http://%s"]}
sites:
  - routes:
      - match: {path_prefix: /}
        upstream: app
`, backend)
	return startConfig(b, text)
}

// startConfig starts a server for the configuration text (access log off,
// one listener) and returns its listener's address.
func startConfig(b testing.TB, text string) string {
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
	for _, a := range srv.Addrs() {
		return a.String()
	}
	b.Fatal("no listener")
	return ""
}

func benchmarkProxy(b *testing.B, size int) {
	body := bytes.Repeat([]byte("x"), size)
	benchmarkAddr(b, startProxy(b, rawBackend(b, body)), size)
}

func benchmarkAddr(b *testing.B, addr string, size int) { benchmarkAddrPreface(b, addr, size, nil) }

// benchmarkAddrPreface sends preface (a PROXY protocol header) first on
// every connection.
func benchmarkAddrPreface(b *testing.B, addr string, size int, preface []byte) {
	benchmarkRequest(b, addr, size, preface, "")
}

// benchmarkRequest is benchmarkAddrPreface with extra header lines
// ("Name: value\r\n") in every request.
func benchmarkRequest(b *testing.B, addr string, size int, preface []byte, extra string) {
	req := []byte("GET /bench?x=1 HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bench\r\nAccept: */*\r\n" + extra + "\r\n")
	b.ReportAllocs()
	b.SetBytes(int64(size))
	// CPU time per request (client and proxy, one process) tells designs
	// apart on a loaded machine, where wall time per request does not.
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	defer func() {
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		if _, err := c.Write(preface); err != nil {
			b.Error(err)
			return
		}
		br := bufio.NewReaderSize(c, 64<<10)
		head := make([]byte, 0, 4096)
		sink := make([]byte, size)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			h, err := h1.ReadHead(br, head, 64<<10)
			if err != nil {
				b.Error(err)
				return
			}
			head = h[:0]
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

// BenchmarkProxyGET100B is the hot path: a keep-alive GET with a 100-byte answer.
// Target: 0 allocs/op.
func BenchmarkProxyGET100B(b *testing.B) { benchmarkProxy(b, 100) }

// BenchmarkProxyGET100KiB is a large answer (spliced socket to socket).
func BenchmarkProxyGET100KiB(b *testing.B) { benchmarkProxy(b, 100<<10) }

// BenchmarkDirectGET100B is the same load without the proxy: the floor that
// the machine's loopback and scheduler set, to read the proxy numbers against.
func BenchmarkDirectGET100B(b *testing.B) {
	addr := rawBackend(b, bytes.Repeat([]byte("x"), 100))
	benchmarkAddr(b, addr, 100)
}
