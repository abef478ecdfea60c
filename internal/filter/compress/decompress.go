package compress

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"

	"github.com/andybalholm/brotli"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ratioFloor is the decoded size below which the ratio cap does not apply:
// a small, very regular body (a JSON array of zeros) legitimately shrinks a
// thousandfold, and at this size it can do no harm.
const ratioFloor = 1 << 20

// zstdMaxWindow is the largest window a zstd request body may ask for; RFC
// 9659 §3 caps the window of zstd as an HTTP content coding at 8 MiB.
const zstdMaxWindow = 8 << 20

// The answers to a body that cannot be decoded: both reach the client as
// the status (the proxy answers a failed upload with the *h1.Error's status).
var (
	errTooLarge = &h1.Error{Status: 413, Reason: "decoded request body too large"}
	errCorrupt  = &h1.Error{Status: 400, Reason: "malformed encoded request body"}
)

// decoderPools keeps decoders for reuse; it is shared by every compress
// filter and kept across reloads.
type decoderPools struct {
	gz, br, zs, bodies sync.Pool
}

// bodyDecoder replaces a request's body with its decoded form and enforces
// the size and ratio caps while the backend reads it.
type bodyDecoder struct {
	pools   *decoderPools
	orig    io.Reader
	coding  alg
	started bool
	in      countReader
	dec     io.Reader
	gz      *gzip.Reader
	br      *brotli.Reader
	zs      *zstd.Decoder
	out     int64
	maxOut  int64
	ratio   int64
	err     error
	// refused is set (by whichever goroutine reads the body) once the body
	// is refused, so that the answer can say the connection will close.
	refused atomic.Bool
}

// countReader counts what the decoder took from the client and remembers
// how the client's body failed, if it did.
type countReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// decodeRequest swaps the body of a request sent with one content coding
// gatehouse knows for its decoded form; anything else (no body, identity,
// several codings, one it does not know) goes to the backend as it came.
func (f *Filter) decodeRequest(req *exchange.Request) *bodyDecoder {
	if req.ContentLength == 0 {
		return nil
	}
	var ce []byte
	for i := range req.Header {
		if exchange.EqualFold(req.Header[i].Name, "content-encoding") {
			if ce != nil {
				return nil // stacked codings: the backend's business
			}
			ce = exchange.TrimOWS(req.Header[i].Value)
		}
	}
	if ce == nil || bytes.IndexByte(ce, ',') >= 0 {
		return nil
	}
	var a alg
	switch {
	case exchange.EqualFold(ce, "gzip"), exchange.EqualFold(ce, "x-gzip"):
		a = algGzip
	case exchange.EqualFold(ce, "br"):
		a = algBr
	case exchange.EqualFold(ce, "zstd"):
		a = algZstd
	default:
		return nil
	}
	d, _ := f.decoders.bodies.Get().(*bodyDecoder)
	if d == nil {
		d = &bodyDecoder{}
	}
	*d = bodyDecoder{pools: f.decoders, orig: req.Body, coding: a, in: countReader{r: req.Body}, maxOut: f.maxOut, ratio: f.maxRatio}
	req.Body = d
	// The decoded length is known only at its end: the body goes chunked.
	req.ContentLength = -1
	req.Header.Del("Content-Encoding")
	req.Header.Del("Content-Length")
	// Digests of the encoded content no longer match what is sent.
	req.Header.Del("Content-Digest")
	req.Header.Del("Repr-Digest")
	req.Header.Del("Content-MD5")
	return d
}

// start makes the decoder on the first read: a gzip reader reads the
// header at once, and that must happen on the backend's schedule.
func (d *bodyDecoder) start() error {
	p := d.pools
	switch d.coding {
	case algGzip:
		d.gz, _ = p.gz.Get().(*gzip.Reader)
		if d.gz == nil {
			d.gz = new(gzip.Reader)
		}
		if err := d.gz.Reset(&d.in); err != nil {
			return err
		}
		d.dec = d.gz
	case algBr:
		d.br, _ = p.br.Get().(*brotli.Reader)
		if d.br == nil {
			d.br = brotli.NewReader(&d.in)
		} else {
			d.br.Reset(&d.in)
		}
		d.dec = d.br
	case algZstd:
		d.zs, _ = p.zs.Get().(*zstd.Decoder)
		if d.zs == nil {
			z, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(zstdMaxWindow))
			if err != nil {
				return err
			}
			d.zs = z
		}
		if err := d.zs.Reset(&d.in); err != nil {
			return err
		}
		d.dec = d.zs
	}
	return nil
}

func (d *bodyDecoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if !d.started {
		d.started = true
		if err := d.start(); err != nil {
			return 0, d.fail(err)
		}
	}
	// Never decode more than one byte past the cap in one read.
	if rest := d.maxOut - d.out + 1; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := d.dec.Read(p)
	d.out += int64(n)
	if d.out > d.maxOut || d.out > ratioFloor && d.out > d.ratio*max(d.in.n, 1) {
		d.err = errTooLarge
		d.refused.Store(true)
		return 0, d.err
	}
	if err != nil && err != io.EOF {
		return n, d.fail(err)
	}
	return n, err
}

// fail keeps the client's own failure (a timeout, the engine's body limit)
// as it was, and calls anything else a malformed body.
func (d *bodyDecoder) fail(err error) error {
	if d.in.err != nil {
		d.err = d.in.err
	} else {
		// Bad data, or the body ended inside the encoded stream.
		d.err = errCorrupt
		d.refused.Store(true)
	}
	return d.err
}

// restore puts the request's own body back (the engine drains it for the
// next request) and the decoders in their pools.
func (d *bodyDecoder) restore(req *exchange.Request) {
	req.Body = d.orig
	p := d.pools
	if d.gz != nil {
		p.gz.Put(d.gz)
	}
	if d.br != nil {
		d.br.Reset(nil)
		p.br.Put(d.br)
	}
	if d.zs != nil {
		d.zs.Reset(nil)
		p.zs.Put(d.zs)
	}
	*d = bodyDecoder{}
	p.bodies.Put(d)
}
