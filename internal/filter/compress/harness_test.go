package compress

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// build makes a filter from the settings of one `compress:` entry (YAML
// flow mapping text, or "" for none), or returns its configuration error.
func build(t testing.TB, settings string) (*Filter, error) {
	t.Helper()
	text := "listeners: [{addr: '127.0.0.1:0'}]\nsites:\n  - routes:\n      - respond: {body: x}\n        middleware:\n          - compress: " + settings + "\n"
	cfg, err := config.Parse("c.yaml", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	m := cfg.Sites[0].Routes[0].Middleware[0]
	f, err := New(&filter.Build{Config: cfg, Entry: m, Log: slog.New(slog.DiscardHandler), State: filter.NewState(nil)})
	if err != nil {
		return nil, err
	}
	return f.(*Filter), nil
}

func mustBuild(t testing.TB, settings string) *Filter {
	t.Helper()
	f, err := build(t, settings)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// chainServer runs gatehouse's own HTTP/1.1 engine on a loopback listener,
// each request going through f and then to final.
type chainServer struct {
	ln  net.Listener
	wg  sync.WaitGroup
	url string
}

type chainHandler struct{ h filter.Handler }

func (c chainHandler) ServeExchange(req *exchange.Request, w exchange.ResponseWriter) {
	x := filter.Exchange{Req: req, W: w}
	c.h.Serve(&x)
}

func serveChain(t testing.TB, f *Filter, final func(x *filter.Exchange)) *chainServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{
		Handler: chainHandler{filter.Chain(filter.HandlerFunc(final), f)},
		Limits:  func() *h1.Limits { return &h1.Limits{MaxHeaderBytes: 64 << 10} },
		Log:     slog.New(slog.DiscardHandler),
	}
	cs := &chainServer{ln: ln, url: "http://" + ln.Addr().String()}
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cs.wg.Add(1)
			go func() { defer cs.wg.Done(); srv.ServeConn(c, new(h1.ConnState)) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		http.DefaultClient.CloseIdleConnections()
		client.CloseIdleConnections()
		cs.wg.Wait()
	})
	return cs
}

// client never adds Accept-Encoding or decodes by itself: the tests look
// at the bytes on the wire.
var client = &http.Client{Transport: &http.Transport{DisableCompression: true}}

func get(t testing.TB, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, b
}

// decode undoes a Content-Encoding with the libraries' own readers.
func decode(t testing.TB, coding string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch coding {
	case "":
		return b
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unexpected coding %q", coding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s decode: %v", coding, err)
	}
	return out
}

// text is a compressible body of n bytes.
func text(n int) []byte {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString("line ")
		b.WriteString(strings.Repeat(string(rune('a'+i%26)), i%13+1))
		b.WriteString(" of a compressible body\n")
	}
	return []byte(b.String()[:n])
}

// prose is a body like the JSON an API returns: n bytes of records made
// of a few hundred common words in random order, which compress about 4:1
// with gzip (a repeated pattern would compress 100:1 and flatter every
// coding).
func prose(n int) []byte {
	words := strings.Fields(vocabulary)
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for id := 0; b.Len() < n; id++ {
		fmt.Fprintf(&b, `{"id":%d,"user":"%s_%d","score":%d.%02d,"tags":["%s","%s"],"text":"`, id,
			words[r.IntN(len(words))], r.IntN(10000), r.IntN(1000), r.IntN(100), words[r.IntN(len(words))], words[r.IntN(len(words))])
		for range 8 + r.IntN(24) {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString("\"}\n")
	}
	return []byte(b.String()[:n])
}

const vocabulary = `the of and to in is was that for on it with as his he be by at are from this had not or
have an they which one you were her all she there would their we him been has when who will more no if out so said
what up its about into than them can only other new some could time these two may then do first any my now such like
our over man me even most made after also did many before must through back years where much your way well down
should because each just those people how too little state good very make world still own see men work long get
here between both life being under never day same another know while last might us great old year off come since
against go came right used take three request response server client proxy cache header body status error value
system user account order payment invoice product price stock item cart session token route upstream backend`

// reply writes a response in one of the ways handlers do.
func reply(x *filter.Exchange, status int, body []byte, knownLength bool, fields ...string) {
	var h exchange.Headers
	for i := 0; i+1 < len(fields); i += 2 {
		h = append(h, exchange.Header{Name: []byte(fields[i]), Value: []byte(fields[i+1])})
	}
	n := int64(-1)
	if knownLength {
		n = int64(len(body))
	}
	if x.W.WriteHead(status, nil, h, n) != nil {
		return
	}
	x.W.Write(body)
	x.W.Finish(nil)
}

func headers(kv ...string) exchange.Headers {
	var h exchange.Headers
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, exchange.Header{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return h
}

// streamReader decodes a response body as it arrives.
func streamReader(t testing.TB, coding string, r io.Reader) io.Reader {
	t.Helper()
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case "br":
		return brotli.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
	return r
}
