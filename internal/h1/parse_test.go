package h1

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

type reqView struct {
	Method, Path, Query string
	HasQuery            bool
	Host                string
	Minor               int
	CL                  int64
	Chunked, Close      bool
	Expect100           bool
	Upgrade             string
}

func viewOf(r *exchange.Request) reqView {
	return reqView{
		Method: string(r.Method), Path: string(r.Path), Query: string(r.Query), HasQuery: r.HasQuery,
		Host: string(r.Host), Minor: r.ProtoMinor, CL: r.ContentLength,
		Chunked: r.Chunked, Close: r.Close, Expect100: r.Expect100, Upgrade: string(r.Upgrade),
	}
}

func statusOf(err error) int {
	if e, ok := IsHeadError(err); ok {
		return e.Status
	}
	return -1
}

// parseRaw runs ReadHead and ParseRequest over raw, as the server does.
func parseRaw(raw string, max int) (*exchange.Request, error) {
	br := bufio.NewReaderSize(strings.NewReader(raw), readBufSize)
	head, err := ReadHead(br, nil, max)
	if err != nil {
		return nil, err
	}
	req := new(exchange.Request)
	if err := ParseRequest(head, req); err != nil {
		return nil, err
	}
	return req, nil
}

// get is a minimal valid request, for building variants.
func get(fields string) string { return "GET / HTTP/1.1\r\nHost: example.com\r\n" + fields + "\r\n" }

func TestParseRequestValid(t *testing.T) {
	base := reqView{Method: "GET", Path: "/", Host: "example.com", Minor: 1}
	with := func(f func(*reqView)) reqView { v := base; f(&v); return v }
	tests := []struct {
		name string
		raw  string
		want reqView
	}{
		{"minimal", get(""), base},
		{"browser GET", "GET /index.html?x=1&y HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n",
			with(func(v *reqView) { v.Path, v.Query, v.HasQuery = "/index.html", "x=1&y", true })},
		{"empty query", "GET /a? HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(func(v *reqView) { v.Path, v.HasQuery = "/a", true })},
		{"question mark in query", "GET /a?b?c=/d HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(func(v *reqView) { v.Path, v.Query, v.HasQuery = "/a", "b?c=/d", true })},
		{"lowercase method is a token", "get / HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(func(v *reqView) { v.Method = "get" })},
		{"extension method", "M-SEARCH! / HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(func(v *reqView) { v.Method = "M-SEARCH!" })},
		{"raw UTF-8 in path", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(func(v *reqView) { v.Path = "/caf\xc3\xa9" })},
		{"content length", "POST /f HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello",
			with(func(v *reqView) { v.Method, v.Path, v.CL = "POST", "/f", 5 })},
		{"content length leading zeros", get("Content-Length: 007\r\n"), with(func(v *reqView) { v.CL = 7 })},
		{"content length 18 digits", get("Content-Length: 999999999999999999\r\n"),
			with(func(v *reqView) { v.CL = 999999999999999999 })},
		{"duplicate equal content length", get("Content-Length: 5\r\nContent-Length: 5\r\n"), with(func(v *reqView) { v.CL = 5 })},
		{"chunked", get("Transfer-Encoding: chunked\r\n"), with(func(v *reqView) { v.Chunked, v.CL = true, -1 })},
		{"chunked any case, OWS", get("transfer-encoding: \t CHUNKED \t\r\n"), with(func(v *reqView) { v.Chunked, v.CL = true, -1 })},
		{"HTTP/1.0 without Host closes", "GET / HTTP/1.0\r\n\r\n",
			reqView{Method: "GET", Path: "/", Minor: 0, Close: true}},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			reqView{Method: "GET", Path: "/", Minor: 0}},
		{"HTTP/1.0 with Host and Content-Length", "POST / HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
			reqView{Method: "POST", Path: "/", Host: "a", CL: 3, Close: true}},
		{"Connection: close", get("Connection: close\r\n"), with(func(v *reqView) { v.Close = true })},
		{"close among tokens", get("Connection: keep-alive, Close\r\n"), with(func(v *reqView) { v.Close = true })},
		{"close in a second Connection field", get("Connection: te\r\nConnection: close\r\n"), with(func(v *reqView) { v.Close = true })},
		{"closed is not close", get("Connection: closed\r\n"), base},
		{"expect 100-continue", get("Expect: 100-Continue\r\nContent-Length: 1\r\n"),
			with(func(v *reqView) { v.Expect100, v.CL = true, 1 })},
		{"other expectation", get("Expect: 200-ok\r\n"), base},
		{"expect on HTTP/1.0 ignored", "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
			reqView{Method: "PUT", Path: "/", CL: 1, Close: true}},
		{"upgrade", get("Connection: Upgrade\r\nUpgrade: websocket\r\n"), with(func(v *reqView) { v.Upgrade = "websocket" })},
		{"upgrade without Connection: upgrade", get("Upgrade: websocket\r\n"), base},
		{"upgrade on HTTP/1.0 ignored", "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
			reqView{Method: "GET", Path: "/", Close: true}},
		{"absolute-form", "GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(func(v *reqView) { v.Path, v.Query, v.HasQuery = "/p", "q=1", true })},
		{"absolute-form without Host", "GET https://example.com:8443/p HTTP/1.1\r\n\r\n",
			with(func(v *reqView) { v.Path, v.Host = "/p", "example.com:8443" })},
		{"absolute-form empty path", "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", base},
		{"absolute-form case-insensitive scheme and host", "GET HTTP://EXAMPLE.com/ HTTP/1.1\r\nHost: example.COM\r\n\r\n",
			with(func(v *reqView) { v.Host = "example.COM" })},
		{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(func(v *reqView) { v.Method, v.Path = "OPTIONS", "*" })},
		{"HTTP/1.2 is served as 1.1", "GET / HTTP/1.2\r\nHost: example.com\r\n\r\n", base},
		{"one leading empty line", "\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", base},
		{"two leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", base},
		{"IPv6 host with port", "GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
			with(func(v *reqView) { v.Host = "[2001:db8::1]:8080" })},
		{"host OWS trimmed", "GET / HTTP/1.1\r\nHost:\t example.com \t\r\n\r\n", base},
		{"host with empty port", "GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n",
			with(func(v *reqView) { v.Host = "example.com:" })},
		{"obs-text in a value", get("X-Name: caf\xe9\r\n"), base},
		{"empty value", get("X-Empty:\r\n"), base},
		{"HTAB inside a value", get("X-Tab: a\tb\r\n"), base},
		{"Transfer_Encoding is just a field", get("Transfer_Encoding: chunked\r\n"), base},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseRaw(tc.raw, 64<<10)
			if err != nil {
				t.Fatalf("refused: %v (status %d)", err, statusOf(err))
			}
			if got := viewOf(req); got != tc.want {
				t.Errorf("parsed\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}

func TestParseRequestHeadersInOrder(t *testing.T) {
	req, err := parseRaw("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a:  2 \r\nCookie: c=1\r\nEmpty:\r\n\r\n", 1024)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"Host", "h"}, {"X-A", "1"}, {"x-a", "2"}, {"Cookie", "c=1"}, {"Empty", ""}}
	if len(req.Header) != len(want) {
		t.Fatalf("got %d fields, want %d", len(req.Header), len(want))
	}
	for i, w := range want {
		if string(req.Header[i].Name) != w[0] || string(req.Header[i].Value) != w[1] {
			t.Errorf("field %d = %q: %q, want %q: %q", i, req.Header[i].Name, req.Header[i].Value, w[0], w[1])
		}
	}
}

func TestParseRequestInvalid(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		status int
	}{
		// Request smuggling vectors: framing must be unambiguous.
		{"CL and TE", get("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400},
		{"TE and CL", get("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"), 400},
		{"differing duplicate CL", get("Content-Length: 5\r\nContent-Length: 6\r\n"), 400},
		{"CL list", get("Content-Length: 5, 5\r\n"), 400},
		{"CL sign", get("Content-Length: +5\r\n"), 400},
		{"CL negative", get("Content-Length: -1\r\n"), 400},
		{"CL hex", get("Content-Length: 0x5\r\n"), 400},
		{"CL inner space", get("Content-Length: 5 5\r\n"), 400},
		{"CL empty", get("Content-Length:\r\n"), 400},
		{"CL 19 digits", get("Content-Length: 1000000000000000000\r\n"), 400},
		{"CL overflow", get("Content-Length: 99999999999999999999999\r\n"), 400},
		{"CL unicode digit", get("Content-Length: \xd9\xa5\r\n"), 400},
		{"TE chunked, identity", get("Transfer-Encoding: chunked, identity\r\n"), 400},
		{"TE identity, chunked", get("Transfer-Encoding: identity, chunked\r\n"), 400},
		{"TE gzip, chunked", get("Transfer-Encoding: gzip, chunked\r\n"), 400},
		{"TE identity", get("Transfer-Encoding: identity\r\n"), 400},
		{"TE xchunked", get("Transfer-Encoding: xchunked\r\n"), 400},
		{"TE chunkedx", get("Transfer-Encoding: chunkedx\r\n"), 400},
		{"TE chunked;", get("Transfer-Encoding: chunked;\r\n"), 400},
		{"TE quoted", get("Transfer-Encoding: \"chunked\"\r\n"), 400},
		{"TE vertical tab", get("Transfer-Encoding: \x0bchunked\r\n"), 400},
		{"TE form feed", get("Transfer-Encoding: chunked\x0c\r\n"), 400},
		{"TE NBSP", get("Transfer-Encoding: \xa0chunked\r\n"), 400},
		{"TE NUL", get("Transfer-Encoding: chunked\x00\r\n"), 400},
		{"TE empty", get("Transfer-Encoding:\r\n"), 400},
		{"TE twice", get("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400},
		{"TE obs-fold", get("Transfer-Encoding:\r\n chunked\r\n"), 400},
		{"TE obs-fold tab", get("Transfer-Encoding: chunked\r\n\tx\r\n"), 400},
		{"TE space before colon", get("Transfer-Encoding : chunked\r\n"), 400},
		{"TE tab before colon", get("Transfer-Encoding\t: chunked\r\n"), 400},
		{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		// Line endings and bytes.
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400},
		{"bare LF in a field line", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400},
		{"bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
		{"leading bare LF", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bare CR in a value", get("X: a\rb\r\n"), 400},
		{"CR CR LF", get("X: a\r\r\n"), 400},
		{"bare CR in the request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bare CR line", get("\r\r\n"), 400},
		{"NUL in a value", get("X: a\x00b\r\n"), 400},
		{"DEL in a value", get("X: a\x7fb\r\n"), 400},
		{"NUL in the target", "GET /a\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"DEL in the target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"space before colon", get("Host : a\r\n"), 400},
		{"no colon", get("X-No-Colon\r\n"), 400},
		{"empty name", get(": v\r\n"), 400},
		{"bad name byte", get("X(y): z\r\n"), 400},
		{"obs-fold", get("X: a\r\n b\r\n"), 400},
		{"whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
		// Host.
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", get("Host: example.com\r\n"), 400},
		{"two Hosts on HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
		{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
		{"Host percent-encoded", "GET / HTTP/1.1\r\nHost: a%2eb\r\n\r\n", 400},
		{"Host bad port", "GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", 400},
		{"Host long port", "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", 400},
		{"Host unclosed IPv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
		{"Host junk after IPv6", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400},
		{"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"absolute-form with another Host", "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", 400},
		{"absolute-form with another port", "GET http://a.example:81/ HTTP/1.1\r\nHost: a.example\r\n\r\n", 400},
		{"absolute-form empty authority", "GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute-form userinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute-form query without path", "GET http://a?q HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute-form other scheme", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"authority-form", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 400},
		{"asterisk-form on GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		// Request line.
		{"invalid method char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"method with slash", "GET/ / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"non-ASCII method", "G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
		{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"tab in target", "GET /\t HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"four words", "GET / x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"no version (HTTP/0.9 simple request)", "GET /\r\n\r\n", 400},
		{"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"version without minor", "GET / HTTP/1\r\nHost: a\r\n\r\n", 400},
		{"version two-digit minor", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
		{"version letters", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
		{"HTTP/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
		{"HTTP/1.2 still needs Host", "GET / HTTP/1.2\r\n\r\n", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseRaw(tc.raw, 64<<10)
			if err == nil {
				t.Fatalf("accepted as %+v, want status %d", viewOf(req), tc.status)
			}
			if got := statusOf(err); got != tc.status {
				t.Errorf("error %q with status %d, want %d", err, got, tc.status)
			}
		})
	}
}

func TestParseRequestHTTP10CloseWins(t *testing.T) {
	req, err := parseRaw("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 1024)
	if err != nil {
		t.Fatal(err)
	}
	if !req.Close {
		t.Errorf("bug http10-close-and-keepalive: HTTP/1.0 with Connection: keep-alive, close parsed with Close=false")
	}
}

func TestParseRequestTokenOWSOnly(t *testing.T) {
	// U+0085 and U+00A0 are not OWS: "close\u0085" is not the token close.
	for _, raw := range []string{
		get("Connection: close\xc2\x85\r\n"),
		get("Connection: \xc2\xa0close\r\n"),
	} {
		req, err := parseRaw(raw, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if req.Close {
			t.Errorf("bug token-unicode-space: %q parsed with Close=true", raw)
		}
	}
}

func TestParseRequestMalformedPercent(t *testing.T) {
	for _, target := range []string{"/%zz", "/a%4", "/a%", "http://a/%g0"} {
		_, err := parseRaw("GET "+target+" HTTP/1.1\r\nHost: a\r\n\r\n", 1024)
		if err == nil {
			t.Errorf("bug path-bad-percent: target %q accepted", target)
		} else if statusOf(err) != 400 {
			t.Errorf("target %q: %v, want 400", target, err)
		}
	}
}

func TestReadHead(t *testing.T) {
	const req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := []struct {
		name   string
		raw    string
		max    int
		head   string // on success
		status int    // on a head error
		err    error  // other errors
	}{
		{"head only", req + "body", 1024, req, 0, nil},
		{"leading empty lines dropped", "\r\n\r\n" + req, 1024, req, 0, nil},
		{"exactly max", req, len(req), req, 0, nil},
		{"one byte over max in fields", req, len(req) - 1, "", 431, nil},
		{"long request line", "GET /" + strings.Repeat("a", 200) + " HTTP/1.1\r\nHost: a\r\n\r\n", 100, "", 414, nil},
		{"long field", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 200) + "\r\n\r\n", 100, "", 431, nil},
		{"many fields", "GET / HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", 50) + "\r\n", 100, "", 431, nil},
		{"long line longer than the bufio buffer", "GET /" + strings.Repeat("a", 3*readBufSize) + " HTTP/1.1\r\nHost: a\r\n\r\n", 64 << 10,
			"GET /" + strings.Repeat("a", 3*readBufSize) + " HTTP/1.1\r\nHost: a\r\n\r\n", 0, nil},
		{"empty input", "", 1024, "", 0, io.EOF},
		{"truncated head", "GET / HTTP/1.1\r\nHost: a\r\n", 1024, "", 0, io.EOF},
		{"truncated line", "GET / HTTP/1.1\r\nHo", 1024, "", 0, io.EOF},
		{"bare LF", "GET / HTTP/1.1\n\n", 1024, "", 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, oneByte := range []bool{false, true} {
				var r io.Reader = strings.NewReader(tc.raw)
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				br := bufio.NewReaderSize(r, readBufSize)
				head, err := ReadHead(br, make([]byte, 0, 16), tc.max)
				switch {
				case tc.status != 0:
					if statusOf(err) != tc.status {
						t.Errorf("oneByte=%v: err %v (status %d), want status %d", oneByte, err, statusOf(err), tc.status)
					}
				case tc.err != nil:
					if !errors.Is(err, tc.err) {
						t.Errorf("oneByte=%v: err %v, want %v", oneByte, err, tc.err)
					}
				default:
					if err != nil {
						t.Fatalf("oneByte=%v: %v", oneByte, err)
					}
					if string(head) != tc.head {
						t.Errorf("oneByte=%v: head %q, want %q", oneByte, head, tc.head)
					}
					rest, _ := io.ReadAll(br)
					if want := tc.raw[strings.Index(tc.raw, tc.head)+len(tc.head):]; string(rest) != want {
						t.Errorf("oneByte=%v: left %q on the reader, want %q", oneByte, rest, want)
					}
				}
			}
		})
	}
}

func TestReadHeadLeadingEmptyLinesBounded(t *testing.T) {
	// readLines means to skip "once or a few times" (its len(buf) > 8 check);
	// a hundred empty lines are not a few.
	_, err := parseRaw(strings.Repeat("\r\n", 100)+"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 64<<10)
	if err == nil {
		t.Errorf("bug leading-crlf-unbounded: 100 empty lines before the request line were skipped")
	}
}

func TestReadHeadReusesBuffer(t *testing.T) {
	raw := strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 3)
	br := bufio.NewReader(strings.NewReader(raw))
	buf := make([]byte, 0, 256)
	for i := 0; i < 3; i++ {
		head, err := ReadHead(br, buf, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if &head[0] != &buf[:1][0] {
			t.Errorf("request %d: head not read into the given buffer", i)
		}
	}
}

type respView struct {
	Minor, Status  int
	Reason         string
	CL             int64
	Chunked, Close bool
}

func parseRespRaw(raw string) (*Response, error) {
	br := bufio.NewReader(strings.NewReader(raw))
	head, err := ReadHead(br, nil, 64<<10)
	if err != nil {
		return nil, err
	}
	r := new(Response)
	return r, parseResponse(head, r)
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want respView
	}{
		{"200 OK", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", respView{1, 200, "OK", 5, false, false}},
		{"no framing", "HTTP/1.1 200 OK\r\n\r\n", respView{1, 200, "OK", -1, false, false}},
		{"missing reason", "HTTP/1.1 204\r\n\r\n", respView{1, 204, "", -1, false, false}},
		{"empty reason", "HTTP/1.1 404 \r\n\r\n", respView{1, 404, "", -1, false, false}},
		{"long reason", "HTTP/1.1 500 Internal\tServer  Error\xff\r\n\r\n", respView{1, 500, "Internal\tServer  Error\xff", -1, false, false}},
		{"1xx", "HTTP/1.1 100 Continue\r\n\r\n", respView{1, 100, "Continue", -1, false, false}},
		{"599", "HTTP/1.1 599 x\r\n\r\n", respView{1, 599, "x", -1, false, false}},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", respView{1, 200, "OK", -1, true, false}},
		{"chunked last", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", respView{1, 200, "OK", -1, true, false}},
		{"chunked in the last field", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", respView{1, 200, "OK", -1, true, false}},
		{"TE not chunked: until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", respView{1, 200, "OK", -1, false, true}},
		{"chunked not last: until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", respView{1, 200, "OK", -1, false, true}},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", respView{1, 200, "OK", 0, false, true}},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", respView{0, 200, "OK", 1, false, true}},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", respView{0, 200, "OK", 1, false, false}},
		{"HTTP/1.0 keep-alive and close", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", respView{0, 200, "OK", -1, false, true}},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", respView{1, 200, "OK", -1, false, false}},
		{"duplicate equal CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", respView{1, 200, "OK", 3, false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseRespRaw(tc.raw)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			got := respView{r.ProtoMinor, r.Status, string(r.Reason), r.ContentLength, r.Chunked, r.Close}
			if got != tc.want {
				t.Errorf("parsed %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseResponseReuse(t *testing.T) {
	r := new(Response)
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nX: 1\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
	} {
		head, err := ReadHead(bufio.NewReader(strings.NewReader(raw)), nil, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if err := parseResponse(head, r); err != nil {
			t.Fatal(err)
		}
	}
	if r.Chunked || r.Close || len(r.Header) != 0 || r.ContentLength != -1 || string(r.Reason) != "No Content" {
		t.Errorf("state of the first response leaked into the second: %+v", r)
	}
}

func TestParseResponseInvalid(t *testing.T) {
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"HTTP/1.1  200 OK\r\n\r\n",
		"HTTP/1.1 099 x\r\n\r\n",
		"HTTP/1.1 600 x\r\n\r\n",
		"HTTP/1.1 +20 x\r\n\r\n",
		"HTTP/1.1 2x0 x\r\n\r\n",
		"HTTP/1.1\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/0.9 200 OK\r\n\r\n",
		"HTTP/2 200 OK\r\n\r\n",
		"http/1.1 200 OK\r\n\r\n",
		"ICY 200 OK\r\n\r\n",
		"HTTP/1.1 200 O\x00K\r\n\r\n",
		"HTTP/1.1 200 O\rK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n",
		"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
	} {
		r, err := parseRespRaw(raw)
		if err == nil {
			t.Errorf("%q accepted as %+v", raw, *r)
			continue
		}
		if s := statusOf(err); s != 502 {
			t.Errorf("%q: %v with status %d, want 502", raw, err, s)
		}
	}
}

func TestParseResponseHTTP10TransferEncodingCloses(t *testing.T) {
	r, err := parseRespRaw("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")
	if err == nil && !r.Close {
		t.Errorf("bug http10-te-response: HTTP/1.0 response with Transfer-Encoding parsed with Close=false")
	}
}

func TestParseResponseEmptyListElements(t *testing.T) {
	for _, te := range []string{
		"Transfer-Encoding: chunked,\r\n",
		"Transfer-Encoding: gzip, chunked , \r\n",
		"Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n",
	} {
		r, err := parseRespRaw("HTTP/1.1 200 OK\r\n" + te + "\r\n")
		if err != nil {
			t.Fatalf("%q: %v", te, err)
		}
		if !r.Chunked {
			t.Errorf("bug te-empty-list-element: %q not taken as chunked", te)
		}
	}
}

// chunkedBody makes a chunked Body over raw (read through a one-byte reader
// when oneByte is set, to split every read).
func chunkedBody(raw string, limit int64, maxTrail int, oneByte bool) (*Body, *bufio.Reader) {
	var r io.Reader = strings.NewReader(raw)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	br := bufio.NewReaderSize(r, readBufSize)
	b := new(Body)
	b.reset(br, bodyChunked, 0, limit, maxTrail)
	return b, br
}

func TestBodyChunked(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		data     string
		trailers string // "Name: value|..."
		rest     string // left on the reader
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", "", ""},
		{"several chunks", "5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\nNEXT", "hello 0123456789", "", "NEXT"},
		{"upper and lower hex", "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", "01234567890123456789", "", ""},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", "", ""},
		{"empty body", "0\r\n\r\n", "", "", ""},
		{"extensions", "5;name=value\r\nhello\r\n5;a;b=\"q s\"\r\nworld\r\n0;last\r\n\r\n", "helloworld", "", ""},
		{"BWS before extension", "5 ;a\r\nhello\r\n0\t;b\r\n\r\n", "hello", "", ""},
		{"empty extension", "5;\r\nhello\r\n0\r\n\r\n", "hello", "", ""},
		{"trailers", "5\r\nhello\r\n0\r\nX-Sum: abc\r\nx-other:  two \r\n\r\nNEXT", "hello", "X-Sum: abc|x-other: two", "NEXT"},
		{"forbidden trailers dropped", "0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\nX-Ok: 1\r\nConnection: close\r\n\r\n", "", "X-Ok: 1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, oneByte := range []bool{false, true} {
				b, br := chunkedBody(tc.raw, 0, 1024, oneByte)
				data, err := io.ReadAll(b)
				if err != nil {
					t.Fatalf("oneByte=%v: %v after %q", oneByte, err, data)
				}
				if string(data) != tc.data {
					t.Errorf("oneByte=%v: body %q, want %q", oneByte, data, tc.data)
				}
				if !b.Done() {
					t.Errorf("oneByte=%v: Done() false after EOF", oneByte)
				}
				var tr []string
				for _, h := range b.Trailers {
					tr = append(tr, string(h.Name)+": "+string(h.Value))
				}
				if got := strings.Join(tr, "|"); got != tc.trailers {
					t.Errorf("oneByte=%v: trailers %q, want %q", oneByte, got, tc.trailers)
				}
				if rest, _ := io.ReadAll(br); string(rest) != tc.rest {
					t.Errorf("oneByte=%v: left %q, want %q", oneByte, rest, tc.rest)
				}
			}
		})
	}
}

func TestBodyChunkedIOTest(t *testing.T) {
	b, _ := chunkedBody("3\r\nabc\r\n1\r\nd\r\n4\r\nefgh\r\n0\r\n\r\n", 0, 1024, false)
	if err := iotest.TestReader(b, []byte("abcdefgh")); err != nil {
		t.Error(err)
	}
}

func TestBodyChunkedInvalid(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"not hex", "g\r\nx\r\n0\r\n\r\n", errBadChunk},
		{"empty size", "\r\nx\r\n0\r\n\r\n", errBadChunk},
		{"leading space", " 5\r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"trailing space without extension", "5 \r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"sign", "+5\r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"negative", "-1\r\nx\r\n0\r\n\r\n", errBadChunk},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", errBadChunk},
		{"CR CR LF after size", "5\r\r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"bare CR in extension", "5;a\rb\r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"NUL in extension", "5;a\x00\r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"junk after size", "5x\r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"16 hex digits", "1000000000000000\r\nx", errBadChunk},
		{"overflow", "ffffffffffffffffff\r\nx", errBadChunk},
		{"leading zeros beyond 15 digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"data longer than size", "5\r\nhelloX\r\n0\r\n\r\n", errBadChunk},
		{"LF only after data", "5\r\nhello\n0\r\n\r\n", errBadChunk},
		{"no CRLF after data", "5\r\nhello0\r\n\r\n", errBadChunk},
		{"truncated data", "5\r\nhel", io.ErrUnexpectedEOF},
		{"truncated after data", "5\r\nhello", io.ErrUnexpectedEOF},
		{"truncated after data CR", "5\r\nhello\r", io.ErrUnexpectedEOF},
		{"no last chunk", "5\r\nhello\r\n", io.ErrUnexpectedEOF},
		{"truncated size line", "5", io.ErrUnexpectedEOF},
		{"no end of trailers", "0\r\n", io.ErrUnexpectedEOF},
		{"truncated trailer", "0\r\nX: y\r\n", io.ErrUnexpectedEOF},
		{"trailer obs-fold", "0\r\nX: y\r\n z\r\n\r\n", errBadChunk},
		{"trailer bare LF", "0\r\nX: y\n\r\n", errBadChunk},
		{"trailer bare LF end", "0\r\n\n", errBadChunk},
		{"trailer without colon", "0\r\nXy\r\n\r\n", errBadChunk},
		{"trailer space before colon", "0\r\nX : y\r\n\r\n", errBadChunk},
		{"trailers too large", "0\r\nX: " + strings.Repeat("y", 200) + "\r\n\r\n", errBadChunk},
		{"size line longer than the buffer", "5;" + strings.Repeat("e", readBufSize) + "\r\nhello\r\n0\r\n\r\n", errBadChunk},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, oneByte := range []bool{false, true} {
				b, _ := chunkedBody(tc.raw, 0, 100, oneByte)
				data, err := io.ReadAll(b)
				if err != tc.want {
					t.Errorf("oneByte=%v: err %v after %q, want %v", oneByte, err, data, tc.want)
				}
				if b.Done() {
					t.Errorf("oneByte=%v: Done() true after an error", oneByte)
				}
				// The error sticks.
				if n, err2 := b.Read(make([]byte, 8)); n != 0 || err2 != err {
					t.Errorf("oneByte=%v: read after error gave %d, %v", oneByte, n, err2)
				}
			}
		})
	}
}

func TestBodyChunkedHugeSizeTruncated(t *testing.T) {
	// 15 hex digits is the most accepted; the size is taken and the body
	// simply ends early.
	b, _ := chunkedBody("fffffffffffffff\r\nabc", 0, 100, false)
	data, err := io.ReadAll(b)
	if err != io.ErrUnexpectedEOF || string(data) != "abc" {
		t.Errorf("got %q, %v; want \"abc\", unexpected EOF", data, err)
	}
}

func TestBodyLimit(t *testing.T) {
	raw := "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"
	b, _ := chunkedBody(raw, 10, 100, false)
	if data, err := io.ReadAll(b); err != nil || string(data) != "helloworld" {
		t.Errorf("limit equal to the size: %q, %v", data, err)
	}
	b, _ = chunkedBody(raw, 9, 100, false)
	data, err := io.ReadAll(b)
	if err != ErrBodyTooLarge {
		t.Fatalf("limit 9: %q, %v; want ErrBodyTooLarge", data, err)
	}
	if len(data) > 9 {
		t.Errorf("limit 9: %d bytes delivered", len(data))
	}
	if e, ok := IsHeadError(err); !ok || e.Status != 413 {
		t.Errorf("ErrBodyTooLarge is not a 413 *Error: %#v", err)
	}
	if _, err := b.Read(make([]byte, 1)); err != ErrBodyTooLarge {
		t.Errorf("error did not stick: %v", err)
	}
}

func TestBodyFixed(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("helloNEXT"))
	var b Body
	b.reset(br, bodyFixed, 5, 0, 0)
	if b.Remaining() != 5 {
		t.Errorf("Remaining %d, want 5", b.Remaining())
	}
	p := make([]byte, 3)
	if n, err := b.Read(p); n != 3 || err != nil {
		t.Fatalf("first read %d, %v", n, err)
	}
	if b.Remaining() != 2 {
		t.Errorf("Remaining %d, want 2", b.Remaining())
	}
	rest, err := io.ReadAll(&b)
	if err != nil || string(rest) != "lo" || !b.Done() {
		t.Errorf("rest %q, %v, done %v", rest, err, b.Done())
	}
	if next, _ := io.ReadAll(br); string(next) != "NEXT" {
		t.Errorf("read past the body: left %q", next)
	}

	b.reset(bufio.NewReader(strings.NewReader("abc")), bodyFixed, 10, 0, 0)
	data, err := io.ReadAll(&b)
	if err != io.ErrUnexpectedEOF || string(data) != "abc" {
		t.Errorf("short body: %q, %v; want \"abc\", unexpected EOF", data, err)
	}
	if b.Done() {
		t.Error("short body Done")
	}

	b.reset(bufio.NewReader(strings.NewReader("x")), bodyFixed, 0, 0, 0)
	if n, err := b.Read(make([]byte, 4)); n != 0 || err != io.EOF || !b.Done() {
		t.Errorf("zero length: %d, %v", n, err)
	}

	b.reset(bufio.NewReader(strings.NewReader("abcdef")), bodyFixed, 6, 0, 0)
	if err := iotest.TestReader(&b, []byte("abcdef")); err != nil {
		t.Error(err)
	}
}

func TestBodyNoneAndUntilClose(t *testing.T) {
	var b Body
	b.reset(bufio.NewReader(strings.NewReader("junk")), bodyNone, 0, 0, 0)
	if n, err := b.Read(make([]byte, 4)); n != 0 || err != io.EOF || !b.Done() || b.Remaining() != -1 {
		t.Errorf("no body: %d, %v", n, err)
	}
	b.reset(bufio.NewReader(iotest.HalfReader(strings.NewReader("all of it"))), bodyUntilClose, 0, 0, 0)
	if data, err := io.ReadAll(&b); err != nil || string(data) != "all of it" || !b.Done() {
		t.Errorf("until close: %q, %v", data, err)
	}
}

func TestBodyReuseClearsTrailers(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("0\r\nX: 1\r\n\r\n0\r\n\r\n"))
	var b Body
	b.reset(br, bodyChunked, 0, 0, 100)
	io.ReadAll(&b)
	if len(b.Trailers) != 1 {
		t.Fatalf("trailers %v", b.Trailers)
	}
	b.reset(br, bodyChunked, 0, 0, 100)
	if _, err := io.ReadAll(&b); err != nil {
		t.Fatal(err)
	}
	if len(b.Trailers) != 0 {
		t.Errorf("trailers of the previous body kept: %v", b.Trailers)
	}
}
