// Package filtertest helps the unit tests and benchmarks of filters: it
// builds a filter from YAML settings the way the server does, and runs
// requests through it into a ResponseWriter that records the answer.
package filtertest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"gopkg.in/yaml.v3"
)

// Build builds middleware name from its YAML settings (the text after
// `name:`), with state kept in st (nil: a fresh one closed at the end).
func Build(t testing.TB, factory filter.Factory, name, settings string, st *filter.State) (filter.Filter, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(settings), &doc); err != nil {
		t.Fatal(err)
	}
	var n *yaml.Node
	if len(doc.Content) > 0 {
		n = doc.Content[0]
	}
	if st == nil {
		st = filter.NewState(nil)
		t.Cleanup(st.Close)
	}
	b := &filter.Build{
		Config: &config.Config{File: "test.yaml"},
		Entry:  config.Middleware{Name: name, Path: "m." + name, Settings: n},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		State:  st,
	}
	return factory(b)
}

// MustBuild is Build that fails the test on an error.
func MustBuild(t testing.TB, factory filter.Factory, name, settings string) filter.Filter {
	t.Helper()
	f, err := Build(t, factory, name, settings, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Result is what a request through a filter came to.
type Result struct {
	Status  int // 0: the filter passed the request on
	Header  exchange.Headers
	Body    bytes.Buffer
	Passed  bool
	Request *exchange.Request // as the next handler saw it
	Log     filter.LogFields
}

// Get returns the first value of a response header.
func (r *Result) Get(name string) string { return string(r.Header.Get(name)) }

// Serve runs one GET path request with the given header pairs through f.
func Serve(f filter.Filter, path string, kv ...string) *Result {
	req := &exchange.Request{Method: []byte("GET"), Path: []byte(path), Host: []byte("example.test"), ProtoMinor: 1,
		ContentLength: 0, Body: bytes.NewReader(nil), RemoteAddr: netip.MustParseAddrPort("192.0.2.7:5555")}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add([]byte(kv[i]), []byte(kv[i+1]))
	}
	return ServeRequest(f, req)
}

// ServeRequest runs req through f.
func ServeRequest(f filter.Filter, req *exchange.Request) *Result {
	res := &Result{}
	w := &Writer{res: res}
	x := &filter.Exchange{Ctx: context.Background(), Req: req, W: w, ClientIP: req.RemoteAddr.Addr(), Start: time.Now()}
	f.Serve(x, filter.HandlerFunc(func(x *filter.Exchange) {
		res.Passed = true
		res.Request = x.Req
	}))
	res.Log = x.Log
	return res
}

// Writer records a response; the zero Writer discards it (for benchmarks).
type Writer struct {
	res  *Result
	head bool
	n    int64
}

func (w *Writer) Write1xx(int, exchange.Headers) error { return nil }
func (w *Writer) WriteHead(status int, _ []byte, h exchange.Headers, _ int64) error {
	w.head = true
	if w.res != nil {
		w.res.Status, w.res.Header = status, h
	}
	return nil
}

func (w *Writer) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.res == nil {
		return len(p), nil
	}
	return w.res.Body.Write(p)
}

func (w *Writer) Flush() error                         { return nil }
func (w *Writer) Finish(exchange.Headers) error        { return nil }
func (w *Writer) Hijack() (net.Conn, io.Reader, error) { return nil, nil, io.EOF }
func (w *Writer) StopBody()                            {}
func (w *Writer) Abort()                               {}
func (w *Writer) Written() (bool, int64)               { return w.head, w.n }
