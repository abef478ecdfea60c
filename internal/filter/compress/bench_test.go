package compress

import (
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

// countingRW is the end of the line for benchmarks: it counts the bytes
// the engine would send and keeps nothing.
type countingRW struct {
	head bool
	n    int64
}

func (w *countingRW) Write1xx(int, exchange.Headers) error { return nil }
func (w *countingRW) WriteHead(int, []byte, exchange.Headers, int64) error {
	w.head = true
	return nil
}
func (w *countingRW) Write(p []byte) (int, error)          { w.n += int64(len(p)); return len(p), nil }
func (w *countingRW) Flush() error                         { return nil }
func (w *countingRW) Finish(exchange.Headers) error        { return nil }
func (w *countingRW) Hijack() (net.Conn, io.Reader, error) { return nil, nil, net.ErrClosed }
func (w *countingRW) StopBody()                            {}
func (w *countingRW) Abort()                               {}
func (w *countingRW) Written() (bool, int64)               { return w.head, w.n }

// BenchmarkCompress runs one response per iteration through the filter:
// allocations per request with the pools warm, throughput, and the
// encoded size (B/resp) for each coding at the filter's default level and
// at gzip level 1 (nginx's default gzip_comp_level).
func BenchmarkCompress(b *testing.B) {
	for _, size := range []int{10 << 10, 100 << 10} {
		body := prose(size)
		for _, c := range []struct{ name, settings, ae string }{
			{"gzip-1", "{levels: {gzip: 1}}", "gzip"},
			{"gzip", "", "gzip"},
			{"br", "", "br"},
			{"zstd", "", "zstd"},
			{"identity", "", ""},
		} {
			b.Run(c.name+"/"+strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
				f := mustBuild(b, c.settings)
				fields := headers("Content-Type", "text/html; charset=utf-8", "ETag", `"abc"`)
				chain := filter.Chain(filter.HandlerFunc(func(x *filter.Exchange) {
					x.W.WriteHead(200, nil, fields, int64(len(body)))
					x.W.Write(body)
					x.W.Finish(nil)
				}), f)
				req := &exchange.Request{Method: []byte("GET"), Path: []byte("/"), Header: headers("Accept-Encoding", c.ae), ContentLength: 0}
				var out countingRW
				x := filter.Exchange{Req: req}
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					out = countingRW{}
					x.W = &out
					chain.Serve(&x)
				}
				b.ReportMetric(float64(out.n), "B/resp")
			})
		}
	}
}
