package server

import (
	"bytes"
	"fmt"
	"testing"
)

func benchmarkCacheHit(b *testing.B, size int) {
	text := fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
access_log: {enabled: false}
upstreams:
  app: {targets: ["http://%s"]}
sites:
  - routes:
      - upstream: app
        middleware: [{cache: {max_bytes: 64MiB}}]
`, rawBackendWith(b, "Cache-Control: max-age=3600\r\nETag: \"b\"\r\n", bytes.Repeat([]byte("x"), size)))
	benchmarkAddr(b, startConfig(b, text), size)
}

// BenchmarkCacheHit1KiB is a keep-alive GET answered from the memory cache.
func BenchmarkCacheHit1KiB(b *testing.B) { benchmarkCacheHit(b, 1<<10) }

// BenchmarkCacheHit100KiB is a large cached answer.
func BenchmarkCacheHit100KiB(b *testing.B) { benchmarkCacheHit(b, 100<<10) }
