package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// oneUpstream is a config with one listener, an admin listener and every path routed to the targets.
func oneUpstream(extra string, targets ...string) string {
	return fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
admin:
  addr: {{ADMIN}}
shutdown_timeout: 5s
%s
upstreams:
  app:
    targets: [%s]
sites:
  - routes:
      - match: {path_prefix: /}
        upstream: app
`, extra, `"`+strings.Join(targets, `", "`)+`"`)
}

func TestRoundRobinAndServerHidden(t *testing.T) {
	t.Parallel()
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	gh := startGatehouse(t, oneUpstream("", a.URL, b.URL))
	c := newClient(t)
	var names []string
	for i := 0; i < 6; i++ {
		req, _ := http.NewRequest("GET", gh.URL("/rr"), nil)
		resp, s := doSeen(t, c, req)
		names = append(names, s.Name)
		if v := resp.Header.Values("Server"); !slices.Equal(v, []string{"gatehouse"}) {
			t.Errorf("Server headers %q, want exactly [gatehouse]", v)
		}
	}
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			t.Fatalf("round robin over two targets gave %v", names)
		}
	}
}

func TestHopByHopHeadersRemoved(t *testing.T) {
	t.Parallel()
	reqs := make(chan *rawMsg, 4)
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			m, err := readRawRequest(br)
			if err != nil {
				return
			}
			reqs <- m
			io.WriteString(c, "HTTP/1.1 200 OK\r\nServer: SecretBackend/9.9\r\nConnection: X-Resp-Hop\r\n"+
				"Connection: X-Resp-Hop2\r\nX-Resp-Hop: secret\r\nX-Resp-Hop2: secret\r\nX-Resp-Kept: yes\r\n"+
				"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: foo/1\r\nTrailer: X-Nope\r\n"+
				"Content-Length: 5\r\n\r\nhello")
		}
	})
	gh := startGatehouse(t, oneUpstream("", "http://"+be))
	c, br := dialRaw(t, gh.Addr())

	send(t, c, "GET /hop HTTP/1.1\r\nHost: site.test\r\nConnection: keep-alive, X-Foo\r\nConnection: X-Foo2\r\n"+
		"X-Foo: secret\r\nX-Foo2: secret\r\nX-Kept: yes\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"+
		"TE: trailers, deflate\r\nUpgrade: foo/1\r\n\r\n")
	c.SetReadDeadline(deadline5())
	head, err := readHead(br)
	if err != nil {
		t.Fatalf("reading response head: %v (%q)", err, head)
	}
	status, h := parseHead(head)
	body := make([]byte, 5)
	if _, err := io.ReadFull(br, body); err != nil || string(body) != "hello" || !strings.Contains(status, " 200") {
		t.Fatalf("response %q %q err %v", head, body, err)
	}
	m := <-reqs

	// Request side, as the backend saw it.
	for _, name := range []string{"X-Foo", "X-Foo2", "Keep-Alive", "Proxy-Connection", "Upgrade"} {
		if v := m.Header.Values(name); len(v) > 0 {
			t.Errorf("backend got hop-by-hop %s: %q", name, v)
		}
	}
	if strings.Contains(m.Head, "secret") {
		t.Errorf("backend request head carries a value of a Connection-named header:\n%s", m.Head)
	}
	if te := headerTokens(m.Header, "TE"); len(te) > 0 && !slices.Equal(te, []string{"trailers"}) {
		t.Errorf("backend got TE %q, want none or only trailers", te)
	}
	for _, tok := range headerTokens(m.Header, "Connection") {
		if tok != "keep-alive" && tok != "close" && tok != "te" {
			t.Errorf("backend got Connection token %q (Connection: %q)", tok, m.Header.Values("Connection"))
		}
	}
	if m.Header.Get("X-Kept") != "yes" {
		t.Errorf("end-to-end header X-Kept lost; backend head:\n%s", m.Head)
	}

	// Response side, as the client saw it.
	for _, name := range []string{"X-Resp-Hop", "X-Resp-Hop2", "Proxy-Connection", "Upgrade", "Trailer"} {
		if v := h.Values(name); len(v) > 0 {
			t.Errorf("client got hop-by-hop %s: %q", name, v)
		}
	}
	if slices.Contains(h.Values("Keep-Alive"), "timeout=5") {
		t.Errorf("client got the backend's Keep-Alive header")
	}
	for _, tok := range headerTokens(h, "Connection") {
		if tok != "keep-alive" && tok != "close" {
			t.Errorf("client got Connection token %q", tok)
		}
	}
	if strings.Contains(head, "secret") || strings.Contains(head, "SecretBackend") {
		t.Errorf("client response head leaks backend hop-by-hop values or Server:\n%s", head)
	}
	if h.Get("X-Resp-Kept") != "yes" || !slices.Equal(h.Values("Server"), []string{"gatehouse"}) {
		t.Errorf("want X-Resp-Kept: yes and Server: gatehouse; head:\n%s", head)
	}

	// A chunked request body reaches the backend with exactly one framing.
	send(t, c, "POST /hop HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	resp, _ := readResp(t, c, br, "POST")
	m = <-reqs
	if resp.StatusCode != 200 || string(m.Body) != "abcde" {
		t.Fatalf("chunked POST: status %d, backend body %q", resp.StatusCode, m.Body)
	}
	te, cl := m.Header.Values("Transfer-Encoding"), m.Header.Values("Content-Length")
	if !(len(cl) == 0 && slices.Equal(te, []string{"chunked"})) && !(len(te) == 0 && slices.Equal(cl, []string{"5"})) {
		t.Errorf("backend framing: Transfer-Encoding %q, Content-Length %q", te, cl)
	}
}

// An HTTP/1.0 client must not get the backend's Transfer-Encoding: chunked.
func TestTransferEncodingNotCopiedToHTTP10Client(t *testing.T) {
	t.Parallel()
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRawRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
		}
	})
	gh := startGatehouse(t, oneUpstream("", "http://"+be))
	c, br := dialRaw(t, gh.Addr())
	send(t, c, "GET /te HTTP/1.0\r\nHost: site.test\r\n\r\n")
	c.SetReadDeadline(deadline5())
	head, err := readHead(br)
	if err != nil {
		t.Fatalf("reading head: %v", err)
	}
	_, h := parseHead(head)
	if len(h.Values("Transfer-Encoding")) > 0 {
		t.Errorf("HTTP/1.0 client got Transfer-Encoding; head:\n%s", head)
	}
	var body []byte
	if cl := h.Get("Content-Length"); cl != "" {
		n, _ := strconv.Atoi(cl)
		body = make([]byte, n)
		_, err = io.ReadFull(br, body)
	} else {
		body, err = io.ReadAll(br)
	}
	if err != nil || string(body) != "hello world" {
		t.Errorf("HTTP/1.0 body %q (err %v), want the decoded %q", body, err, "hello world")
	}
}

func TestForwardedHeadersUntrustedClient(t *testing.T) {
	t.Parallel()
	e := echoBackend(t, "e")
	gh := startGatehouse(t, oneUpstream("", e.URL))
	c := newClient(t)

	req, _ := http.NewRequest("GET", gh.URL("/f"), nil)
	req.Host = "site.test"
	_, s := doSeen(t, c, req)
	checkForwarded(t, s, "127.0.0.1")

	// Spoofed values from a client that is not a trusted proxy are replaced.
	req, _ = http.NewRequest("GET", gh.URL("/f"), nil)
	req.Host = "site.test"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Forwarded-Host", "evil.test")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Forwarded", "for=203.0.113.7;host=evil.test;proto=https")
	_, s = doSeen(t, c, req)
	checkForwarded(t, s, "127.0.0.1")
	for name, vals := range s.Header {
		for _, v := range vals {
			if strings.Contains(v, "203.0.113.7") || strings.Contains(v, "evil.test") {
				t.Errorf("spoofed value kept for an untrusted client: %s: %q", name, v)
			}
		}
	}
}

func TestForwardedHeadersTrustedProxy(t *testing.T) {
	t.Parallel()
	e := echoBackend(t, "e")
	gh := startGatehouse(t, oneUpstream("trusted_proxies: [127.0.0.0/8]", e.URL))
	req, _ := http.NewRequest("GET", gh.URL("/f"), nil)
	req.Host = "site.test"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	_, s := doSeen(t, newClient(t), req)
	if got := strings.Join(s.Header.Values("X-Forwarded-For"), ", "); got != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want %q (kept and appended for a trusted proxy)", got, "203.0.113.7, 127.0.0.1")
	}
	if f := strings.Join(s.Header.Values("Forwarded"), ", "); !strings.Contains(f, "for=127.0.0.1") && !strings.Contains(f, `for="127.0.0.1"`) {
		t.Errorf("Forwarded %q lacks for=127.0.0.1", f)
	}
}

// checkForwarded checks X-Forwarded-* and the last Forwarded element for a plain-HTTP request to site.test.
func checkForwarded(t *testing.T, s seen, client string) {
	t.Helper()
	if got := strings.Join(s.Header.Values("X-Forwarded-For"), ", "); got != client {
		t.Errorf("X-Forwarded-For %q, want %q", got, client)
	}
	if got := s.Header.Values("X-Forwarded-Proto"); !slices.Equal(got, []string{"http"}) {
		t.Errorf("X-Forwarded-Proto %q, want http", got)
	}
	if got := s.Header.Values("X-Forwarded-Host"); !slices.Equal(got, []string{"site.test"}) {
		t.Errorf("X-Forwarded-Host %q, want site.test", got)
	}
	fw := strings.Join(s.Header.Values("Forwarded"), ", ")
	elems := strings.Split(fw, ",")
	params := map[string]string{}
	for _, p := range strings.Split(elems[len(elems)-1], ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok {
			params[strings.ToLower(k)] = strings.Trim(v, `"`)
		}
	}
	if params["for"] != client || params["host"] != "site.test" || params["proto"] != "http" {
		t.Errorf("Forwarded %q, want for=%s;host=site.test;proto=http", fw, client)
	}
}

func TestPreserveHost(t *testing.T) {
	t.Parallel()
	e := echoBackend(t, "e")
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
upstreams:
  keep: {targets: [%[1]s], preserve_host: true}
  target: {targets: [%[1]s], preserve_host: false}
sites:
  - routes:
      - {match: {path_prefix: /keep/}, upstream: keep}
      - {match: {path_prefix: /target/}, upstream: target}
`, e.URL))
	c := newClient(t)
	req, _ := http.NewRequest("GET", gh.URL("/keep/x"), nil)
	req.Host = "site.test"
	if _, s := doSeen(t, c, req); s.Host != "site.test" {
		t.Errorf("preserve_host: true sent Host %q, want site.test", s.Host)
	}
	req, _ = http.NewRequest("GET", gh.URL("/target/x"), nil)
	req.Host = "site.test"
	if _, s := doSeen(t, c, req); s.Host != strings.TrimPrefix(e.URL, "http://") {
		t.Errorf("preserve_host: false sent Host %q, want the target's %q", s.Host, strings.TrimPrefix(e.URL, "http://"))
	}
}

func TestStripPrefixAndHeaderRewrites(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Powered-By", "php/4")
		w.Header().Set("X-Resp-Set", "old")
		w.Header().Set("X-Resp-Add", "one")
		fmt.Fprintf(w, "%s|%s|%s|%s", r.RequestURI, r.Header.Get("X-From"), strings.Join(r.Header.Values("X-Add"), ","), r.Header.Get("X-Internal"))
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
upstreams:
  app: {targets: [%s]}
sites:
  - routes:
      - match: {path_prefix: /api/}
        strip_prefix: /api
        request_headers: {set: {X-From: gatehouse}, add: {X-Add: two}, remove: [X-Internal]}
        response_headers: {set: {X-Resp-Set: new}, add: {X-Resp-Add: two}, remove: [X-Powered-By]}
        upstream: app
`, be.URL))
	req, _ := http.NewRequest("GET", gh.URL("/api/users/7?x=1"), nil)
	req.Header.Set("X-From", "client")
	req.Header.Set("X-Add", "one")
	req.Header.Set("X-Internal", "secret")
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "/users/7?x=1|gatehouse|one,two|"; string(b) != want {
		t.Errorf("backend saw %q, want %q (uri|X-From|X-Add|X-Internal)", b, want)
	}
	if v := resp.Header.Values("X-Powered-By"); len(v) > 0 {
		t.Errorf("X-Powered-By not removed: %q", v)
	}
	if v := resp.Header.Values("X-Resp-Set"); !slices.Equal(v, []string{"new"}) {
		t.Errorf("X-Resp-Set %q, want [new]", v)
	}
	if v := resp.Header.Values("X-Resp-Add"); !slices.Equal(v, []string{"one", "two"}) {
		t.Errorf("X-Resp-Add %q, want [one two]", v)
	}
}

func TestQueryStringPreserved(t *testing.T) {
	t.Parallel()
	e := echoBackend(t, "e")
	gh := startGatehouse(t, oneUpstream("", e.URL))
	c, br := dialRaw(t, gh.Addr())
	const query = "a=1&b=%2F%2f&c=%7E~&d=+&e=%20&&f&g=h=i;j&k=%E2%9C%93&l=%25&m=/x?y&n=a,b:c@d!$'()*&"
	send(t, c, "GET /q?"+query+" HTTP/1.1\r\nHost: site.test\r\n\r\n")
	resp, b := readResp(t, c, br, "GET")
	var s seen
	if resp.StatusCode != 200 || json.Unmarshal(b, &s) != nil {
		t.Fatalf("status %d: %q", resp.StatusCode, b)
	}
	if s.URI != "/q?"+query {
		t.Errorf("request-target changed on the way:\n got  %s\n want %s", s.URI, "/q?"+query)
	}
}

func TestHeadAndBodylessStatuses(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(304)
		default:
			w.Header().Set("Content-Length", "1234")
			if r.Method != "HEAD" {
				w.Write([]byte(strings.Repeat("x", 1234)))
			}
		}
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, oneUpstream("", be.URL))
	c, br := dialRaw(t, gh.Addr())

	// Everything on one connection: a stray body byte would break the next response.
	send(t, c, "HEAD /doc HTTP/1.1\r\nHost: site.test\r\n\r\n")
	resp, b := readResp(t, c, br, "HEAD")
	if resp.StatusCode != 200 || resp.ContentLength != 1234 || len(b) != 0 {
		t.Errorf("HEAD: status %d, Content-Length %d, body %d bytes; want 200, 1234, 0", resp.StatusCode, resp.ContentLength, len(b))
	}
	for _, path := range []string{"/204", "/304"} {
		send(t, c, "GET "+path+" HTTP/1.1\r\nHost: site.test\r\n\r\n")
		resp, b = readResp(t, c, br, "GET")
		if strconv.Itoa(resp.StatusCode) != path[1:] || len(b) != 0 || len(resp.TransferEncoding) > 0 {
			t.Errorf("%s: status %d, body %q, Transfer-Encoding %q", path, resp.StatusCode, b, resp.TransferEncoding)
		}
		if path == "/204" && resp.Header.Get("Content-Length") != "" {
			t.Errorf("204 carries Content-Length %q", resp.Header.Get("Content-Length"))
		}
	}
	send(t, c, "GET /doc HTTP/1.1\r\nHost: site.test\r\n\r\n")
	resp, b = readResp(t, c, br, "GET")
	if resp.StatusCode != 200 || len(b) != 1234 {
		t.Errorf("GET after HEAD/204/304: status %d, %d body bytes; want 200 and 1234", resp.StatusCode, len(b))
	}
}
