package h1

// Differential fuzzing against net/http: for any input, our engine and
// net/http must agree, except where we are stricter on purpose (each such rule
// is named, with the RFC text behind it, in the *Rule helpers below) or where
// net/http is stricter than the RFC in a way that is harmless for us
// (netHTTPStricter*). Run them with
//
//	go test -run='^$' -fuzz='^FuzzRequest$'  -fuzztime=3m ./internal/h1/
//	go test -run='^$' -fuzz='^FuzzResponse$' -fuzztime=3m ./internal/h1/
//	go test -run='^$' -fuzz='^FuzzChunked$'  -fuzztime=3m ./internal/h1/

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

const fuzzMaxHead = 64 << 10

// ---------------------------------------------------------------- requests

func FuzzRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 2*fuzzMaxHead {
			return
		}
		checkRequest(t, in)
	})
}

// oursRequest reads and parses in as the server does; with split, through a
// one-byte reader and a 16-byte bufio buffer, so that every line comes in
// fragments.
func oursRequest(in []byte, split bool) (*exchange.Request, error) {
	var br *bufio.Reader
	if split {
		br = bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(in)), 16)
	} else {
		br = bufio.NewReaderSize(bytes.NewReader(in), readBufSize)
	}
	head, err := ReadHead(br, nil, fuzzMaxHead)
	if err != nil {
		return nil, err
	}
	req := new(exchange.Request)
	return req, ParseRequest(head, req)
}

func checkRequest(t *testing.T, in []byte) {
	req, err := oursRequest(in, false)
	req2, err2 := oursRequest(in, true)
	if (err == nil) != (err2 == nil) || statusOf(err) != statusOf(err2) ||
		err == nil && (viewOf(req) != viewOf(req2) || !reflect.DeepEqual(fieldMap(req.Header), fieldMap(req2.Header))) {
		t.Fatalf("result depends on how the input is read: %v / %v for %q", err, err2, in)
	}

	hr, herr := http.ReadRequest(bufio.NewReader(bytes.NewReader(trimLeadingCRLF(in))))
	switch {
	case err != nil && herr != nil:
	case err != nil:
		if !deliberatelyStricter(in) {
			t.Fatalf("we refuse (%v) what net/http accepts, and no deliberate rule explains it:\n%q", err, in)
		}
	case herr != nil:
		if netHTTPStricterRequest(in) == "" {
			t.Fatalf("we accept what net/http refuses (%v):\n%q", herr, in)
		}
	default:
		if d := diffRequest(req, hr); d != "" {
			t.Fatalf("we and net/http parse differently: %s\n%q", d, in)
		}
	}
}

// trimLeadingCRLF drops the empty lines before a start line, which we skip as
// RFC 9112 §2.2 says a server SHOULD, and which http.ReadRequest does not.
func trimLeadingCRLF(in []byte) []byte {
	for bytes.HasPrefix(in, []byte("\r\n")) {
		in = in[2:]
	}
	return in
}

func fieldMap(h exchange.Headers) http.Header {
	m := http.Header{}
	for _, f := range h {
		k := http.CanonicalHeaderKey(string(f.Name))
		m[k] = append(m[k], string(f.Value))
	}
	return m
}

// normalizeLikeNetHTTP applies to our fields what net/http does to its
// Header: Host and Transfer-Encoding go to their own fields, duplicate
// Content-Lengths are folded into one, Trailer goes to Request.Trailer when
// chunked, and Pragma: no-cache implies Cache-Control: no-cache.
func normalizeLikeNetHTTP(m http.Header, chunked bool) {
	delete(m, "Host")
	delete(m, "Transfer-Encoding")
	if cl := m["Content-Length"]; len(cl) > 1 {
		m["Content-Length"] = cl[:1]
	}
	if chunked {
		delete(m, "Trailer")
		delete(m, "Content-Length")
	}
	if p := m["Pragma"]; len(p) > 0 && p[0] == "no-cache" && m["Cache-Control"] == nil {
		m["Cache-Control"] = []string{"no-cache"}
	}
}

func diffRequest(req *exchange.Request, hr *http.Request) string {
	var d []string
	add := func(what string, ours, theirs any) {
		d = append(d, fmt.Sprintf("%s: ours %q, net/http %q", what, fmt.Sprint(ours), fmt.Sprint(theirs)))
	}
	if string(req.Method) != hr.Method {
		add("method", req.Method, hr.Method)
	}
	target := string(req.Path)
	if req.HasQuery {
		target += "?" + string(req.Query)
	}
	want := hr.RequestURI
	if i := strings.Index(want, "://"); i >= 0 && !strings.HasPrefix(want, "/") {
		// absolute-form: we keep the origin-form part, "/" when empty.
		rest := want[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			want = rest[j:]
		} else {
			want = "/"
		}
	}
	if target != want {
		add("target", target, want)
	}
	if !strings.EqualFold(string(req.Host), hr.Host) {
		add("host", req.Host, hr.Host)
	}
	if m := min(hr.ProtoMinor, 1); req.ProtoMinor != m || hr.ProtoMajor != 1 {
		add("version", req.ProtoMinor, hr.Proto)
	}
	if req.ContentLength != hr.ContentLength {
		add("content length", req.ContentLength, hr.ContentLength)
	}
	if req.Chunked != (len(hr.TransferEncoding) > 0) {
		add("chunked", req.Chunked, hr.TransferEncoding)
	}
	if req.Close != hr.Close {
		add("close", req.Close, hr.Close)
	}
	ours := fieldMap(req.Header)
	normalizeLikeNetHTTP(ours, len(hr.TransferEncoding) > 0)
	if !reflect.DeepEqual(ours, hr.Header) {
		add("fields", ours, hr.Header)
	}
	return strings.Join(d, "; ")
}

// rawHead is a head split loosely, the way net/http reads it: lines end at
// LF, with one CR before it dropped.
type rawHead struct {
	head  []byte   // up to and including the empty line
	lines []string // start line and field lines, without line ends
}

func splitRawHead(in []byte) (rawHead, bool) {
	var h rawHead
	for start := 0; ; {
		i := bytes.IndexByte(in[start:], '\n')
		if i < 0 {
			return h, false
		}
		line := strings.TrimSuffix(string(in[start:start+i]), "\r")
		start += i + 1
		if line == "" && len(h.lines) > 0 {
			h.head = in[:start]
			return h, true
		}
		h.lines = append(h.lines, line)
	}
}

// field returns the OWS-trimmed values of the fields called name.
func (h rawHead) field(name string) []string {
	var vs []string
	for _, l := range h.lines[1:] {
		n, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(n, name) {
			vs = append(vs, strings.Trim(v, " \t"))
		}
	}
	return vs
}

// hostOK is the Host grammar we accept, written independently of validHost:
// a reg-name of letters, digits, '-', '.', '_' (possibly empty when a port
// follows), or an IP literal in brackets, then an optional port of up to 5 digits.
var hostRE = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9._-]*)(:[0-9]{0,5})?$`)

func hostOK(h string) bool { return h != "" && len(h) <= 255 && hostRE.MatchString(h) }

// deliberatelyStricter reports whether in (a request net/http accepts) breaks
// one of the rules by which we are stricter than net/http on purpose.
func deliberatelyStricter(in []byte) bool { return stricterRequestRule(in) != "" }

// lineEndingRule checks the line ends of a head: we take CRLF only.
func lineEndingRule(head []byte) string {
	for i, c := range head {
		switch {
		case c == '\n' && (i == 0 || head[i-1] != '\r'):
			// RFC 9112 §2.2: a recipient MAY accept a bare LF; we do not, since
			// a front-end that does not could frame the message differently.
			return "bare LF"
		case c == '\r' && (i+1 == len(head) || head[i+1] != '\n'):
			// RFC 9112 §2.2: a bare CR MUST be treated as invalid or replaced by SP.
			return "bare CR"
		}
	}
	return ""
}

// fieldLineRule checks one field line; net/http has already accepted it.
func fieldLineRule(l string) string {
	if l != "" && (l[0] == ' ' || l[0] == '\t') {
		// RFC 9112 §5.2: a server MUST reject obs-fold (or replace it by SP);
		// we reject, in requests and responses alike.
		return "obs-fold"
	}
	if n, _, _ := strings.Cut(l, ":"); strings.ContainsAny(n, " \t") {
		// RFC 9112 §5.1: whitespace between name and colon MUST be rejected
		// (net/http keeps "Name " as a separate, uncanonicalised field).
		return "whitespace before colon"
	}
	return ""
}

// stricterRequestRule names the deliberate strictness rule that in breaks,
// or returns "". in is assumed to be accepted by http.ReadRequest.
func stricterRequestRule(in []byte) string {
	in = trimLeadingCRLF(in)
	h, ok := splitRawHead(in)
	if !ok {
		return ""
	}
	if len(h.head) > fuzzMaxHead {
		return "head over the size limit (431/414)"
	}
	if r := lineEndingRule(h.head); r != "" {
		return r
	}
	method, rest, _ := strings.Cut(h.lines[0], " ")
	target, version, _ := strings.Cut(rest, " ")
	if !strings.HasPrefix(version, "HTTP/1.") {
		// RFC 9110 §2.5: we speak HTTP/1.x only; others get 505 (net/http's
		// ReadRequest leaves that to its server).
		return "HTTP version other than 1.x"
	}
	minor := int(version[7] - '0')

	var authority, path string
	absolute := false
	switch {
	case target == "*":
		if method != "OPTIONS" {
			// RFC 9112 §3.2.4: asterisk-form is only for server-wide OPTIONS.
			return "asterisk-form outside OPTIONS"
		}
		path = "*"
	case strings.HasPrefix(target, "/"):
		path, _, _ = strings.Cut(target, "?")
	default:
		var rest string
		switch lower := strings.ToLower(target); {
		case strings.HasPrefix(lower, "http://"):
			rest = target[7:]
		case strings.HasPrefix(lower, "https://"):
			rest = target[8:]
		default:
			// RFC 9112 §3.2: authority-form is for CONNECT, which a reverse
			// proxy does not serve; absolute-form only with http(s).
			return "request-target neither origin-form nor http(s) absolute-form"
		}
		i := strings.IndexAny(rest, "/?")
		if i < 0 {
			i = len(rest)
		}
		authority, rest = rest[:i], rest[i:]
		if strings.HasPrefix(rest, "?") {
			// RFC 3986 allows "http://a?q"; the engine points Path into the
			// head and has no "/" to point at in front of the query.
			return "absolute-form with a query but no path"
		}
		if !hostOK(authority) {
			return "absolute-form authority outside the host grammar we accept"
		}
		absolute = true
		path, _, _ = strings.Cut(rest, "?")
	}
	if strings.Contains(path, "#") {
		// RFC 9112 §3.2: a request-target has no fragment.
		return "fragment in the request-target"
	}

	for _, l := range h.lines[1:] {
		if r := fieldLineRule(l); r != "" {
			return r
		}
	}
	hosts, cls, tes := h.field("Host"), h.field("Content-Length"), h.field("Transfer-Encoding")
	if len(tes) > 0 && minor == 0 {
		// RFC 9112 §6.1: TE in HTTP/1.0 means faulty framing; net/http ignores
		// the field, we refuse the message.
		return "Transfer-Encoding in HTTP/1.0"
	}
	if len(tes) > 0 && len(cls) > 0 {
		// RFC 9112 §6.1/§11.2: "ought to be handled as an error"; the classic
		// CL.TE / TE.CL smuggling vector. net/http drops the Content-Length.
		return "Content-Length with Transfer-Encoding"
	}
	for _, cl := range cls {
		if len(cl) > 18 {
			return "Content-Length over 18 digits"
		}
	}
	if len(hosts) == 0 && !absolute && minor >= 1 {
		// RFC 9112 §3.2: MUST respond 400 to an HTTP/1.1 request without Host
		// (net/http's ReadRequest leaves that to its server).
		return "no Host in HTTP/1.1"
	}
	for _, host := range hosts {
		if !hostOK(host) {
			// Narrower than RFC 3986's reg-name: no pct-encoding, sub-delims,
			// userinfo or empty host; nothing a legitimate client sends, and each
			// a way to make routing and backends disagree on the host.
			return "Host outside the grammar we accept"
		}
	}
	if absolute && len(hosts) == 1 && !strings.EqualFold(authority, hosts[0]) {
		// RFC 9112 §3.2.2 says to ignore Host then; a proxy that routes by
		// one and forwards the other is confusable, so we refuse the mismatch.
		return "absolute-form authority differs from Host"
	}
	return ""
}

// netHTTPStricterRequest names the reason why net/http refuses a request we
// accept when we consider that difference harmless (and RFC-conformant on our
// side), or returns "".
func netHTTPStricterRequest(in []byte) string {
	h, ok := splitRawHead(trimLeadingCRLF(in))
	if !ok || len(h.lines) == 0 {
		return ""
	}
	return netHTTPStricterFields(h)
}

func netHTTPStricterFields(h rawHead) string {
	if tes := h.field("Transfer-Encoding"); len(tes) == 1 && strings.EqualFold(tes[0], "chunked") {
		for _, v := range h.field("Trailer") {
			for _, n := range strings.Split(v, ",") {
				switch http.CanonicalHeaderKey(strings.Trim(n, " \t")) {
				case "Content-Length", "Transfer-Encoding", "Trailer":
					// net/http refuses the announcement; RFC 9110 §6.6.2 puts no
					// such duty on a recipient, and Body drops those trailer fields.
					return "Trailer announces a framing field"
				}
			}
		}
	}
	if cls := h.field("Content-Length"); len(cls) > 1 {
		spelled := false
		for _, cl := range cls[1:] {
			if trimZeros(cl) != trimZeros(cls[0]) {
				return "" // different values: we must refuse too
			}
			spelled = spelled || cl != cls[0]
		}
		if spelled {
			// net/http compares the strings ("5" vs "05"); RFC 9110 §8.6 lets
			// a recipient use the one decimal value when they all agree.
			return "duplicate Content-Length spelled differently"
		}
	}
	return ""
}

func trimZeros(s string) string {
	if t := strings.TrimLeft(s, "0"); t != "" || s == "" {
		return t
	}
	return "0"
}

// --------------------------------------------------------------- responses

func FuzzResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 2*fuzzMaxHead {
			return
		}
		checkResponse(t, in)
	})
}

func oursResponse(in []byte, split bool) (*Response, error) {
	var br *bufio.Reader
	if split {
		br = bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(in)), 16)
	} else {
		br = bufio.NewReaderSize(bytes.NewReader(in), readBufSize)
	}
	head, err := ReadHead(br, nil, fuzzMaxHead)
	if err != nil {
		return nil, err
	}
	r := new(Response)
	return r, parseResponse(head, r)
}

func checkResponse(t *testing.T, in []byte) {
	r, err := oursResponse(in, false)
	r2, err2 := oursResponse(in, true)
	if (err == nil) != (err2 == nil) || statusOf(err) != statusOf(err2) ||
		err == nil && !reflect.DeepEqual(r, r2) {
		t.Fatalf("result depends on how the input is read: %v / %v for %q", err, err2, in)
	}

	hr, herr := http.ReadResponse(bufio.NewReader(bytes.NewReader(trimLeadingCRLF(in))), nil)
	switch {
	case err != nil && herr != nil:
	case err != nil:
		if rule := stricterResponseRule(in); rule == "" {
			t.Fatalf("we refuse (%v) what net/http accepts, and no deliberate rule explains it:\n%q", err, in)
		}
	case herr != nil:
		if netHTTPStricterResponse(in) == "" {
			t.Fatalf("we accept what net/http refuses (%v):\n%q", herr, in)
		}
		// Where net/http gives up on Transfer-Encoding, check our framing
		// against RFC 9112 §6.3 directly.
		if h, ok := splitRawHead(trimLeadingCRLF(in)); ok && r.ProtoMinor == 1 {
			if tes := h.field("Transfer-Encoding"); len(tes) > 0 {
				want := finalCodingIsChunked(tes)
				if r.Chunked != want || !r.Chunked && !r.Close {
					t.Fatalf("Transfer-Encoding %q framed as chunked=%v close=%v; RFC 9112 §6.3 says chunked=%v:\n%q",
						tes, r.Chunked, r.Close, want, in)
				}
			}
		}
	default:
		if d := diffResponse(r, hr); d != "" {
			t.Fatalf("we and net/http parse differently: %s\n%q", d, in)
		}
	}
}

func diffResponse(r *Response, hr *http.Response) string {
	var d []string
	add := func(what string, ours, theirs any) {
		d = append(d, fmt.Sprintf("%s: ours %q, net/http %q", what, fmt.Sprint(ours), fmt.Sprint(theirs)))
	}
	if r.Status != hr.StatusCode {
		add("status", r.Status, hr.StatusCode)
	}
	if _, reason, _ := strings.Cut(hr.Status, " "); string(r.Reason) != reason {
		add("reason", r.Reason, reason)
	}
	if m := min(hr.ProtoMinor, 1); r.ProtoMinor != m || hr.ProtoMajor != 1 {
		add("version", r.ProtoMinor, hr.Proto)
	}
	theirsChunked := len(hr.TransferEncoding) > 0
	// Framing as ClientConn.ReadResponse decides it for a GET.
	noBody := r.Status < 200 || r.Status == 204 || r.Status == 304
	closes := r.Close || !noBody && !r.Chunked && r.ContentLength < 0
	if r.ProtoMinor == 0 && r.Header.Has("Transfer-Encoding") {
		// HTTP/1.0 with Transfer-Encoding: net/http ignores the field, we
		// decode it; either way RFC 9112 §6.1 says the connection MUST close.
		if !closes {
			add("close (HTTP/1.0 with Transfer-Encoding)", closes, true)
		}
	} else {
		if !noBody {
			if r.Chunked != theirsChunked {
				add("chunked", r.Chunked, hr.TransferEncoding)
			}
			if r.ContentLength != hr.ContentLength {
				add("content length", r.ContentLength, hr.ContentLength)
			}
		}
		if closes != hr.Close {
			add("close", closes, hr.Close)
		}
	}
	ours := fieldMap(r.Header)
	normalizeLikeNetHTTP(ours, theirsChunked)
	if !reflect.DeepEqual(ours, hr.Header) {
		add("fields", ours, hr.Header)
	}
	return strings.Join(d, "; ")
}

var statusLineRE = regexp.MustCompile(`^HTTP/1\.[0-9] [1-5][0-9][0-9]( .*)?$`)

// stricterResponseRule names the deliberate strictness rule that in (a
// response net/http accepts) breaks, or returns "".
func stricterResponseRule(in []byte) string {
	h, ok := splitRawHead(trimLeadingCRLF(in))
	if !ok {
		return ""
	}
	if len(h.head) > fuzzMaxHead {
		return "head over the size limit"
	}
	if r := lineEndingRule(h.head); r != "" {
		return r
	}
	if !statusLineRE.MatchString(h.lines[0]) {
		// RFC 9112 §4: status-line = HTTP-version SP 3DIGIT SP [reason]; net/http
		// takes extra spaces, "+12", codes 000-999 and any major version.
		// (RFC 9110 §15: only 1xx-5xx are defined.)
		return "status line not HTTP/1.x SP 1xx-5xx [SP reason]"
	}
	if len(h.lines[0]) > 13 && !validValue([]byte(h.lines[0][13:])) {
		// RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ).
		return "control byte in the reason phrase"
	}
	for _, l := range h.lines[1:] {
		if r := fieldLineRule(l); r != "" {
			return r
		}
	}
	cls, tes := h.field("Content-Length"), h.field("Transfer-Encoding")
	if len(cls) > 0 && len(tes) > 0 {
		// RFC 9112 §6.3 item 3: a sign of response splitting, "ought to be
		// handled as an error"; net/http takes TE and drops Content-Length.
		return "Content-Length with Transfer-Encoding"
	}
	for _, cl := range cls {
		if len(cl) > 18 {
			return "Content-Length over 18 digits"
		}
	}
	return ""
}

// netHTTPStricterResponse names why net/http refuses a response we accept,
// when the difference is deliberate on our side, or returns "".
func netHTTPStricterResponse(in []byte) string {
	h, ok := splitRawHead(trimLeadingCRLF(in))
	if !ok || len(h.lines) == 0 {
		return ""
	}
	if tes := h.field("Transfer-Encoding"); len(tes) > 0 && !(len(tes) == 1 && strings.EqualFold(tes[0], "chunked")) {
		// net/http takes nothing but a single "chunked"; RFC 9112 §6.3 items 4
		// and 7: chunked as the final coding frames the body, any other coding
		// means the body runs until the connection closes, which is what we do.
		return "response Transfer-Encoding other than exactly chunked"
	}
	return netHTTPStricterFields(h)
}

// finalCodingIsChunked reports whether the last transfer coding listed in
// the fields is chunked, ignoring empty list elements (RFC 9110 §5.6.1).
func finalCodingIsChunked(fields []string) bool {
	last := ""
	for _, f := range fields {
		for _, c := range strings.Split(f, ",") {
			if c = strings.Trim(c, " \t"); c != "" {
				last = c
			}
		}
	}
	return strings.EqualFold(last, "chunked")
}

// ----------------------------------------------------------------- chunked

func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkChunked(t, in)
	})
}

func oursChunked(in []byte, split bool) ([]byte, error) {
	var r io.Reader = bytes.NewReader(in)
	if split {
		r = iotest.OneByteReader(r)
	}
	var b Body
	b.reset(bufio.NewReaderSize(r, readBufSize), bodyChunked, 0, 0, 4096)
	return io.ReadAll(&b)
}

func checkChunked(t *testing.T, in []byte) {
	data, err := oursChunked(in, false)
	data2, err2 := oursChunked(in, true)
	if err != err2 || err == nil && !bytes.Equal(data, data2) {
		t.Fatalf("result depends on how the input is read: %v / %v for %q", err, err2, in)
	}

	src := bytes.NewReader(in)
	br := bufio.NewReader(src)
	theirs, terr := io.ReadAll(httputil.NewChunkedReader(br))
	switch {
	case err == nil && terr != nil:
		if netHTTPStricterChunked(in, terr) == "" {
			t.Fatalf("we accept what net/http's chunked reader refuses (%v):\n%q", terr, in)
		}
	case err == nil:
		if !bytes.Equal(data, theirs) {
			t.Fatalf("we decode %q, net/http %q from\n%q", data, theirs, in)
		}
	case terr == nil:
		// net/http stops after the last chunk; if no trailer follows, the
		// body is complete for it and must be for us too.
		consumed := len(in) - br.Buffered() - src.Len()
		if bytes.HasPrefix(in[consumed:], []byte("\r\n")) && stricterChunkedRule(in) == "" {
			t.Fatalf("we refuse (%v after %q) what net/http decodes as %q, and no deliberate rule explains it:\n%q", err, data, theirs, in)
		}
	}
}

// chunkLines calls fn with each chunk-size line (without CRLF) of a chunked
// body that net/http decodes, up to the last chunk.
func chunkLines(in []byte, fn func(line string) string) string {
	for len(in) > 0 {
		i := bytes.Index(in, []byte("\r\n"))
		if i < 0 {
			return ""
		}
		line := string(in[:i])
		in = in[i+2:]
		if r := fn(line); r != "" {
			return r
		}
		hexPart, _, _ := strings.Cut(line, ";")
		size, err := strconv.ParseUint(strings.TrimRight(hexPart, " \t"), 16, 64)
		if err != nil || size == 0 || size+2 > uint64(len(in)) {
			return ""
		}
		in = in[size+2:]
	}
	return ""
}

// stricterChunkedRule names the deliberate rule by which we refuse a chunked
// body that net/http decodes, or returns "".
func stricterChunkedRule(in []byte) string {
	return chunkLines(in, func(line string) string {
		hexPart, ext, hasExt := strings.Cut(line, ";")
		if !hasExt && strings.TrimRight(hexPart, " \t") != hexPart {
			// RFC 9112 §7.1: chunk-size [chunk-ext] CRLF; whitespace is only
			// allowed (as BWS) before a ';'.
			return "whitespace after chunk-size without an extension"
		}
		if len(strings.TrimRight(hexPart, " \t")) > 15 {
			// A size of 2^60 or more, or that many leading zeros, is no real body.
			return "chunk-size over 15 hex digits"
		}
		if hasExt && !validValue([]byte(ext)) {
			// RFC 9112 §7.1.1: extensions are tokens and quoted-strings; we refuse
			// control bytes in them (net/http only refuses CR).
			return "control byte in a chunk extension"
		}
		return ""
	})
}

// netHTTPStricterChunked names why net/http refuses a chunked body we
// decode, when the difference is deliberate, or returns "".
func netHTTPStricterChunked(in []byte, terr error) string {
	if strings.Contains(terr.Error(), "too much non-data") {
		// net/http's guard against extension-padding; our overhead per chunk
		// is bounded by the bufio buffer instead.
		return "net/http chunk overhead limit"
	}
	return chunkLines(in, func(line string) string {
		if hexPart, _, hasExt := strings.Cut(line, ";"); hasExt && strings.TrimRight(hexPart, " \t") != hexPart {
			// RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS ext-name ... ); net/http
			// refuses the BWS before ';'.
			return "BWS before a chunk extension"
		}
		return ""
	})
}
