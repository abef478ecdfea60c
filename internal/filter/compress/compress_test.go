package compress

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

func TestNegotiation(t *testing.T) {
	order := []alg{algZstd, algBr, algGzip}
	for _, c := range []struct {
		ae   []string // Accept-Encoding fields; nil: none
		want string
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{"gzip"}, "gzip"},
		{[]string{"gzip, br"}, "br"},                  // tie: the configured order
		{[]string{"gzip, deflate, br, zstd"}, "zstd"}, // Chrome
		{[]string{"gzip;q=1.0, br;q=0.5"}, "gzip"},
		{[]string{"br;q=0.5", "gzip;q=0.8"}, "gzip"}, // several fields are one list
		{[]string{"*"}, "zstd"},
		{[]string{"*;q=0.5, br;q=0.6"}, "br"},
		{[]string{"*, zstd;q=0"}, "br"},
		{[]string{"*;q=0"}, ""},
		{[]string{"gzip;q=0"}, ""},
		{[]string{"identity"}, ""},
		{[]string{"identity;q=0"}, ""}, // nothing acceptable: identity anyway
		{[]string{"gzip, identity;q=0"}, "gzip"},
		{[]string{"gzip;q=0.5, identity"}, ""}, // identity explicitly preferred
		{[]string{"gzip;q=0.5, identity;q=0.5"}, "gzip"},
		{[]string{"x-gzip"}, "gzip"},
		{[]string{"GZIP"}, "gzip"},
		{[]string{"gzip ; q=0.3 , br ; Q=0.2"}, "gzip"},
		{[]string{"gzip;q=2"}, ""},      // invalid qvalue: element ignored
		{[]string{"gzip;q=0.1234"}, ""}, // too many digits
		{[]string{"gzip;q=1.001"}, ""},
		{[]string{"gzip;q=1.000"}, "gzip"},
		{[]string{"gzip;q=0."}, ""},
		{[]string{"gzip;q=0.001"}, "gzip"},
		{[]string{"br;level=5;q=0.4, gzip;q=0.3"}, "br"}, // unknown parameter skipped
		{[]string{"gz ip, br"}, "br"},                    // malformed element ignored
		{[]string{",,gzip,,"}, "gzip"},
		{[]string{"gzip;q=0, gzip"}, ""}, // the first mention counts
		{[]string{"deflate, compress"}, ""},
	} {
		var h []string
		for _, v := range c.ae {
			h = append(h, "Accept-Encoding", v)
		}
		a := parseAccept(headers(h...))
		got := ""
		if i := a.choose(order); i >= 0 {
			got = order[i].String()
		}
		if got != c.want {
			t.Errorf("Accept-Encoding %q: chose %q, want %q", c.ae, got, c.want)
		}
	}
	// Ties follow the configured order, whatever it is.
	a := parseAccept(headers("Accept-Encoding", "zstd, br, gzip"))
	if i := a.choose([]alg{algGzip, algBr}); i != 0 {
		t.Errorf("order [gzip br]: chose %d, want 0 (gzip)", i)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ settings, want string }{
		{"{algorithms: [gzip, lz4]}", "c.yaml:6:43: sites[0].routes[0].middleware[0].compress.algorithms[1]: unknown coding \"lz4\""},
		{"{algorithms: [gzip, GZIP]}", "algorithms[1]: GZIP is listed twice"},
		{"{algorithms: []}", "algorithms: list at least one"},
		{"{level: 6}", "compress.level: level \"6\": use fastest, default, better or best"},
		{"{levels: {gzip: 10}}", "compress.levels.gzip: gzip level must be 1 to 9"},
		{"{levels: {br: -1}}", "levels.br: br level must be 0 to 11"},
		{"{levels: {zstd: 23}}", "levels.zstd: zstd level must be 1 to 22"},
		{"{levels: {lz4: 1}}", "levels.lz4: unknown field"},
		{"{types: [text]}", "types[0]: \"text\" is not a media type"},
		{"{types: ['*/*']}", "types[0]"},
		{"{types: ['application/*+json']}", "a wildcard stands for the whole subtype only"},
		{"{min_bytes: 2MiB}", "min_bytes: at most 1MiB"},
		{"{max_ratio: 10}", "max_ratio: has no effect without decompress_requests: true"},
		{"{decompress_requests: true, max_ratio: 1}", "max_ratio: must be at least 2"},
		{"{decompress_requests: true, max_decompressed_bytes: 0}", "max_decompressed_bytes: must be more than 0"},
		{"{gzip: true}", "compress.gzip: unknown field"},
	} {
		_, err := build(t, c.settings)
		var ce config.Errors
		if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want a config error containing %q", c.settings, err, c.want)
		}
	}
	for _, ok := range []string{"", "{}", "{level: fastest, levels: {gzip: 1, br: 0, zstd: 22}}", "{types: [text/html, 'TEXT/*']}",
		"{min_bytes: 0}", "{decompress_requests: true, max_ratio: 1000, max_decompressed_bytes: 1GiB}"} {
		if _, err := build(t, ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestResponseDecisions drives the filter through the real HTTP/1.1 engine
// and checks, for each kind of response, the head and the decoded body.
func TestResponseDecisions(t *testing.T) {
	f := mustBuild(t, "{min_bytes: 1000}")
	big := text(20 << 10)
	small := text(500)
	type resp struct {
		status int
		body   []byte
		known  bool
		fields []string
	}
	cases := []struct {
		name     string
		req      []string // request fields
		method   string
		resp     resp
		coding   string // expected Content-Encoding
		vary     bool   // Accept-Encoding in Vary
		etag     string // expected ETag ("" = not checked)
		length   bool   // Content-Length expected
		accRange bool   // Accept-Ranges expected
	}{
		{name: "gzip known length", req: []string{"Accept-Encoding", "gzip"},
			resp:   resp{200, big, true, []string{"Content-Type", "text/html; charset=utf-8", "ETag", `"v1"`, "Accept-Ranges", "bytes"}},
			coding: "gzip", vary: true, etag: `W/"v1"`},
		{name: "br unknown length", req: []string{"Accept-Encoding", "br"},
			resp: resp{200, big, false, []string{"Content-Type", "application/json"}}, coding: "br", vary: true},
		{name: "zstd preferred", req: []string{"Accept-Encoding", "gzip, br, zstd"},
			resp: resp{200, big, true, []string{"Content-Type", "text/plain"}}, coding: "zstd", vary: true},
		{name: "weak etag stays", req: []string{"Accept-Encoding", "gzip"},
			resp:   resp{200, big, true, []string{"Content-Type", "text/css", "ETag", `W/"w"`}},
			coding: "gzip", vary: true, etag: `W/"w"`},
		{name: "vary merged", req: []string{"Accept-Encoding", "gzip"},
			resp:   resp{200, big, true, []string{"Content-Type", "text/css", "Vary", "Origin"}},
			coding: "gzip", vary: true},
		{name: "vary * kept", req: []string{"Accept-Encoding", "gzip"},
			resp:   resp{200, big, true, []string{"Content-Type", "text/css", "Vary", "*"}},
			coding: "gzip"},
		{name: "no Accept-Encoding", resp: resp{200, big, true, []string{"Content-Type", "text/plain", "ETag", `"v1"`}},
			vary: true, etag: `"v1"`, length: true},
		{name: "small known length", req: []string{"Accept-Encoding", "gzip"},
			resp: resp{200, small, true, []string{"Content-Type", "text/plain"}}, length: true},
		{name: "small unknown length gets one", req: []string{"Accept-Encoding", "gzip"},
			resp: resp{200, small, false, []string{"Content-Type", "text/plain"}}, length: true},
		{name: "type not listed", req: []string{"Accept-Encoding", "gzip"},
			resp: resp{200, big, true, []string{"Content-Type", "image/png"}}, length: true},
		{name: "no content type", req: []string{"Accept-Encoding", "gzip"},
			resp: resp{200, big, true, nil}, length: true},
		{name: "already encoded", req: []string{"Accept-Encoding", "gzip"},
			resp: resp{200, big, true, []string{"Content-Type", "text/plain", "Content-Encoding", "x-custom"}}, coding: "x-custom", length: true},
		{name: "no-transform", req: []string{"Accept-Encoding", "gzip"},
			resp: resp{200, big, true, []string{"Content-Type", "text/plain", "Cache-Control", "public, no-transform"}}, length: true},
		{name: "request no-transform", req: []string{"Accept-Encoding", "gzip", "Cache-Control", "no-transform"},
			resp: resp{200, big, true, []string{"Content-Type", "text/plain"}}, vary: true, length: true},
		{name: "206", req: []string{"Accept-Encoding", "gzip", "Range", "bytes=0-1999"},
			resp: resp{206, big[:2000], true, []string{"Content-Type", "text/plain", "Content-Range", "bytes 0-1999/20480"}}, length: true},
		{name: "range request answered 200", req: []string{"Accept-Encoding", "gzip", "Range", "bytes=0-10"},
			resp: resp{200, big, true, []string{"Content-Type", "text/plain"}}, vary: true, length: true},
		{name: "404 page compressed", req: []string{"Accept-Encoding", "gzip"},
			resp: resp{404, big, true, []string{"Content-Type", "text/html"}}, coding: "gzip", vary: true},
		{name: "HEAD", method: "HEAD", req: []string{"Accept-Encoding", "gzip"},
			resp: resp{200, big, true, []string{"Content-Type", "text/plain"}}, vary: true, length: true},
		{name: "q=0 everywhere", req: []string{"Accept-Encoding", "gzip;q=0, identity;q=0"},
			resp: resp{200, big, true, []string{"Content-Type", "text/plain"}}, vary: true, length: true},
	}
	var cur int
	srv := serveChain(t, f, func(x *filter.Exchange) {
		r := cases[cur].resp
		reply(x, r.status, r.body, r.known, r.fields...)
	})
	for i, c := range cases {
		cur = i
		method := c.method
		if method == "" {
			method = "GET"
		}
		req, _ := http.NewRequest(method, srv.url+"/", nil)
		for j := 0; j+1 < len(c.req); j += 2 {
			req.Header.Add(c.req[j], c.req[j+1])
		}
		resp, body := do(t, req)
		if resp.StatusCode != c.resp.status {
			t.Errorf("%s: status %d", c.name, resp.StatusCode)
		}
		if ce := resp.Header.Get("Content-Encoding"); ce != c.coding {
			t.Errorf("%s: Content-Encoding %q, want %q", c.name, ce, c.coding)
		}
		vary := false
		for _, v := range resp.Header.Values("Vary") {
			vary = vary || strings.Contains(strings.ToLower(v), "accept-encoding")
		}
		if vary != c.vary {
			t.Errorf("%s: Vary %q, want Accept-Encoding listed: %v", c.name, resp.Header.Values("Vary"), c.vary)
		}
		if c.name == "vary merged" && resp.Header.Get("Vary") != "Origin, Accept-Encoding" {
			t.Errorf("vary merged: Vary %q", resp.Header.Values("Vary"))
		}
		if c.etag != "" && resp.Header.Get("ETag") != c.etag {
			t.Errorf("%s: ETag %q, want %s", c.name, resp.Header.Get("ETag"), c.etag)
		}
		if (resp.ContentLength >= 0) != c.length {
			t.Errorf("%s: Content-Length %d, want present: %v", c.name, resp.ContentLength, c.length)
		}
		if c.coding != "" && resp.Header.Get("Accept-Ranges") != "" {
			t.Errorf("%s: Accept-Ranges kept on an encoded body", c.name)
		}
		if method == "HEAD" {
			continue
		}
		got := body
		if c.coding != "x-custom" {
			got = decode(t, c.coding, body)
		}
		if !bytes.Equal(got, c.resp.body) {
			t.Errorf("%s: decoded body differs (%d bytes, want %d)", c.name, len(got), len(c.resp.body))
		}
		if c.coding != "" && c.coding != "x-custom" && len(body) >= len(c.resp.body)/2 {
			t.Errorf("%s: %d bytes encoded from %d: not compressed", c.name, len(body), len(c.resp.body))
		}
	}
}

// A 304 carries what the 200 would have: Vary, and the tag weakened when
// the client's stored copy is encoded.
func TestNotModified(t *testing.T) {
	f := mustBuild(t, "")
	srv := serveChain(t, f, func(x *filter.Exchange) {
		reply(x, 304, nil, false, "ETag", `"v1"`)
	})
	resp, _ := get(t, srv.url, "Accept-Encoding", "br")
	if resp.StatusCode != 304 || resp.Header.Get("ETag") != `W/"v1"` || resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("304 with br accepted: %d ETag %q Vary %q", resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("Vary"))
	}
	resp, _ = get(t, srv.url)
	if resp.Header.Get("ETag") != `"v1"` || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("304 without Accept-Encoding: ETag %q Vary %q", resp.Header.Get("ETag"), resp.Header.Get("Vary"))
	}
}

// A handler that flushes before min_bytes is a stream: every flushed piece
// must reach the client decodable at once, while the handler waits.
func TestFlushReachesClient(t *testing.T) {
	f := mustBuild(t, "")
	for _, coding := range []string{"gzip", "br", "zstd"} {
		next := make(chan struct{})
		srv := serveChain(t, f, func(x *filter.Exchange) {
			x.W.WriteHead(200, nil, headers("Content-Type", "text/event-stream"), -1)
			for i := range 3 {
				io.WriteString(x.W, "data: event "+string(rune('0'+i))+"\n\n")
				x.W.Flush()
				select {
				case <-next:
				case <-time.After(5 * time.Second):
					return
				}
			}
			x.W.Finish(nil)
		})
		req, _ := http.NewRequest("GET", srv.url, nil)
		req.Header.Set("Accept-Encoding", coding)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("Content-Encoding") != coding {
			t.Fatalf("%s: Content-Encoding %q", coding, resp.Header.Get("Content-Encoding"))
		}
		r := streamReader(t, coding, resp.Body)
		for i := range 3 {
			want := "data: event " + string(rune('0'+i)) + "\n\n"
			buf := make([]byte, len(want))
			done := make(chan error, 1)
			go func() { _, err := io.ReadFull(r, buf); done <- err }()
			select {
			case err := <-done:
				if err != nil || string(buf) != want {
					t.Fatalf("%s: event %d: %q, %v", coding, i, buf, err)
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("%s: event %d did not arrive while the handler waited", coding, i)
			}
			next <- struct{}{}
		}
		resp.Body.Close()
	}
}

func TestReadFromGoesThroughTheEncoder(t *testing.T) {
	f := mustBuild(t, "")
	body := text(200 << 10)
	srv := serveChain(t, f, func(x *filter.Exchange) {
		x.W.WriteHead(200, nil, headers("Content-Type", "text/plain"), int64(len(body)))
		rf, ok := x.W.(io.ReaderFrom)
		if !ok {
			t.Error("the writer lost ReadFrom")
			return
		}
		rf.ReadFrom(bytes.NewReader(body))
		x.W.Finish(nil)
	})
	for _, ae := range []string{"gzip", ""} {
		resp, b := get(t, srv.url, "Accept-Encoding", ae)
		ce := resp.Header.Get("Content-Encoding")
		if ce != ae || !bytes.Equal(decode(t, ce, b), body) {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, %d bytes", ae, ce, len(b))
		}
	}
}

// A handler that writes its answer without Finish (the engine ends the
// response after the chain) still gets a complete encoded body.
func TestHandlerWithoutFinish(t *testing.T) {
	f := mustBuild(t, "")
	body := text(8 << 10)
	srv := serveChain(t, f, func(x *filter.Exchange) {
		x.W.WriteHead(200, nil, headers("Content-Type", "text/plain"), int64(len(body)))
		x.W.Write(body)
	})
	resp, b := get(t, srv.url, "Accept-Encoding", "zstd")
	if resp.Header.Get("Content-Encoding") != "zstd" || !bytes.Equal(decode(t, "zstd", b), body) {
		t.Errorf("Content-Encoding %q, %d bytes", resp.Header.Get("Content-Encoding"), len(b))
	}
}

// Keep-alive: many requests over one connection, mixing codings, reuse the
// pooled writers and encoders without mixing their streams.
func TestPooledReuse(t *testing.T) {
	f := mustBuild(t, "")
	srv := serveChain(t, f, func(x *filter.Exchange) {
		n := 2000 + len(x.Req.Path)*100
		reply(x, 200, text(n), len(x.Req.Path)%2 == 0, "Content-Type", "text/plain")
	})
	codings := []string{"gzip", "br", "zstd", ""}
	for i := range 40 {
		path := "/" + strings.Repeat("p", i%7)
		c := codings[i%4]
		resp, b := get(t, srv.url+path, "Accept-Encoding", c)
		if got := decode(t, resp.Header.Get("Content-Encoding"), b); !bytes.Equal(got, text(2000+len(path)*100)) {
			t.Fatalf("request %d (%s): body differs", i, c)
		}
	}
}

// The proxy flushes whenever the backend's bytes pause. For a body of known
// length that must not cost ratio: the encoded size of 64 pieces, each
// flushed, stays close to that of the body written at once.
func TestFlushesOfKnownLengthKeepTheRatio(t *testing.T) {
	f := mustBuild(t, "")
	body := prose(64 << 10)
	srv := serveChain(t, f, func(x *filter.Exchange) {
		x.W.WriteHead(200, nil, headers("Content-Type", "application/json"), int64(len(body)))
		step := len(body)
		if x.Req.Query != nil {
			step = 1 << 10
		}
		for i := 0; i < len(body); i += step {
			x.W.Write(body[i:min(i+step, len(body))])
			x.W.Flush()
		}
		x.W.Finish(nil)
	})
	for _, coding := range []string{"gzip", "br", "zstd"} {
		_, once := get(t, srv.url+"/", "Accept-Encoding", coding)
		_, pieces := get(t, srv.url+"/?pieces", "Accept-Encoding", coding)
		if !bytes.Equal(decode(t, coding, pieces), body) {
			t.Fatalf("%s: body differs", coding)
		}
		if float64(len(pieces)) > 1.03*float64(len(once)) {
			t.Errorf("%s: %d bytes written in flushed pieces, %d at once: flushes cost ratio", coding, len(pieces), len(once))
		}
	}
}

// compress at the site and again on the route: the inner one encodes, the
// outer one sees Content-Encoding and leaves the body alone.
func TestTwoCompressFiltersEncodeOnce(t *testing.T) {
	outer, inner := mustBuild(t, "{algorithms: [gzip]}"), mustBuild(t, "{algorithms: [br]}")
	body := prose(20 << 10)
	srv := serveChain(t, outer, func(x *filter.Exchange) {
		filter.Chain(filter.HandlerFunc(func(x *filter.Exchange) {
			reply(x, 200, body, true, "Content-Type", "text/plain")
		}), inner).Serve(x)
	})
	resp, b := get(t, srv.url, "Accept-Encoding", "gzip, br")
	if ce := resp.Header.Values("Content-Encoding"); len(ce) != 1 || ce[0] != "br" || !bytes.Equal(decode(t, "br", b), body) {
		t.Errorf("Content-Encoding %q: want br once", ce)
	}
	if v := resp.Header.Values("Vary"); len(v) != 1 {
		t.Errorf("Vary %q: want Accept-Encoding once", v)
	}
}
