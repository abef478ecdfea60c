package compress

import (
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// alg is a content coding gatehouse can produce.
type alg uint8

const (
	algZstd alg = iota
	algBr
	algGzip
	numAlgs
)

// algNames are the content-coding names, as written in the configuration
// and in Content-Encoding.
var algNames = [numAlgs]string{algZstd: "zstd", algBr: "br", algGzip: "gzip"}

func (a alg) String() string { return algNames[a] }

// Window sizes: what one stream may hold in memory. A response body of a
// web page or an API answer rarely gains from more, and a proxy runs
// thousands of streams at once (Caddy and nginx bound theirs the same way).
const (
	zstdWindow = 256 << 10
	brLGWin    = 18 // 256 KiB
)

// Named levels, per coding. "default" follows common practice (Caddy's
// gzip 5, zstd's default, brotli 4 as used for on-the-fly compression by
// most CDNs); "best" is slow and is meant for small bodies.
var namedLevels = map[string][numAlgs]int{
	"fastest": {algZstd: 1, algBr: 1, algGzip: 1},
	"default": {algZstd: 3, algBr: 4, algGzip: 5},
	"better":  {algZstd: 7, algBr: 6, algGzip: 7},
	"best":    {algZstd: 11, algBr: 11, algGzip: 9},
}

// levelRange is the numeric range each coding accepts in `levels:`.
var levelRange = [numAlgs][2]int{algZstd: {1, 22}, algBr: {0, 11}, algGzip: {1, 9}}

// encoder is what the three libraries' writers have in common.
type encoder interface {
	io.Writer
	Flush() error
	Close() error
	Reset(w io.Writer)
}

// encPool keeps encoders of one coding and level for reuse: building one
// costs tens to hundreds of KiB of tables, reusing one costs a Reset.
type encPool struct {
	alg   alg
	level int
	p     sync.Pool
}

func newEncPool(a alg, level int) (*encPool, error) {
	ep := &encPool{alg: a, level: level}
	// Build one now, so that a bad level is a configuration error and the
	// first request does not pay for it.
	e, err := ep.build()
	if err != nil {
		return nil, err
	}
	ep.p.Put(e)
	return ep, nil
}

func (ep *encPool) build() (encoder, error) {
	switch ep.alg {
	case algGzip:
		return gzip.NewWriterLevel(io.Discard, ep.level)
	case algBr:
		return brotli.NewWriterOptions(io.Discard, brotli.WriterOptions{Quality: ep.level, LGWin: brLGWin}), nil
	case algZstd:
		return zstd.NewWriter(io.Discard,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(ep.level)),
			zstd.WithEncoderConcurrency(1), // one goroutine per stream: the request's own
			zstd.WithWindowSize(zstdWindow),
			zstd.WithLowerEncoderMem(true), // about 0.8 MiB less per stream at the default speed
			zstd.WithEncoderCRC(true))
	}
	return nil, fmt.Errorf("unknown coding %d", ep.alg)
}

// get returns an encoder writing to dst.
func (ep *encPool) get(dst io.Writer) encoder {
	e, _ := ep.p.Get().(encoder)
	if e == nil {
		var err error
		if e, err = ep.build(); err != nil {
			panic(err) // the level was checked when the pool was made
		}
	}
	e.Reset(dst)
	return e
}

func (ep *encPool) put(e encoder) { ep.p.Put(e) }
