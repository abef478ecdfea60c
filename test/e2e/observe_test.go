package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// headerEcho answers with the request's X-Request-ID and traceparent.
func headerEcho(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ids=%s\ntraceparent=%s\ntracestate=%s\n", strings.Join(r.Header.Values("X-Request-ID"), ","),
			r.Header.Get("traceparent"), r.Header.Get("tracestate"))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRequestIDGeneratedOrKeptAndLogged(t *testing.T) {
	backend := headerEcho(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
access_log: {output: %q, fields: [status, path, request_id]}
upstreams: {app: {targets: [%q]}}
sites: [{routes: [{upstream: app}]}]
`, logPath, backend.URL))
	c := newClient(t)
	get := func(path string, ids ...string) string {
		req, _ := http.NewRequest("GET", gh.URL(path), nil)
		for _, id := range ids {
			req.Header.Add("X-Request-ID", id)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "ids=")
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	gen1, gen2 := get("/new"), get("/new2")
	if !hex32.MatchString(gen1) || gen1 == gen2 {
		t.Errorf("generated ids %q, %q: want distinct 32-hex ids", gen1, gen2)
	}
	if got := get("/kept", "client-id-1.2"); got != "client-id-1.2" {
		t.Errorf("well-formed incoming id became %q, want it kept", got)
	}
	for _, bad := range [][]string{{"bad id with spaces"}, {"a", "b"}, {strings.Repeat("x", 129)}} {
		if got := get("/replaced", bad...); !hex32.MatchString(got) {
			t.Errorf("incoming %q reached the backend as %q: want exactly one fresh id", bad, got)
		}
	}
	var lines []map[string]any
	waitFor(5*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		lines = jsonLines(string(b))
		return len(lines) >= 6
	})
	if len(lines) < 6 {
		t.Fatalf("%d access lines, want 6", len(lines))
	}
	if lines[0]["request_id"] != gen1 || lines[2]["request_id"] != "client-id-1.2" || len(lines[0]) != 6 {
		t.Errorf("access log lines %v: want the ids the backend saw, and only time/level/msg/status/path/request_id", lines[:3])
	}
}

func TestCombinedLogAndSIGUSR1Reopen(t *testing.T) {
	backend := headerEcho(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
access_log: {output: %q, format: combined}
upstreams: {app: {targets: [%q]}}
sites: [{routes: [{upstream: app}]}]
`, logPath, backend.URL))
	c := newClient(t)
	req, _ := http.NewRequest("GET", gh.URL("/before?x=1"), nil)
	req.Header.Set("User-Agent", `agent "quoted"`)
	req.Header.Set("Referer", "http://ref.test/")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	clf := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /before\?x=1 HTTP/1\.1" 200 \d+ "http://ref\.test/" "agent \\x22quoted\\x22"$`)
	var content string
	if !waitFor(5*time.Second, func() bool { b, _ := os.ReadFile(logPath); content = string(b); return strings.Contains(content, "\n") }) {
		t.Fatal("no access line written")
	}
	if line := strings.TrimSuffix(content, "\n"); !clf.MatchString(line) {
		t.Errorf("combined line %q does not match %s", line, clf)
	}

	// logrotate: move the file away, signal, and the next lines go to a new file.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	gh.signal(syscall.SIGUSR1)
	if !waitFor(5*time.Second, func() bool {
		resp, err := c.Get(gh.URL("/after"))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "GET /after")
	}) {
		t.Fatalf("after SIGUSR1 no line reached the new file; stderr:\n%s", tail(gh.stderr.String(), 2000))
	}
	old, _ := os.ReadFile(logPath + ".1")
	if strings.Contains(string(old), "/after") && !strings.Contains(string(old), "/before") {
		t.Errorf("rotated file lost its lines: %q", old)
	}
}

// otlpReceiver is a minimal OTLP/HTTP trace collector: it decodes the
// protobuf exports the way a real collector does and keeps the spans.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	srv   *httptest.Server
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	o := &otlpReceiver{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected", 400)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		o.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				o.spans = append(o.spans, ss.Spans...)
			}
		}
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *otlpReceiver) find(traceID string) *tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.spans {
		if fmt.Sprintf("%x", s.TraceId) == traceID {
			return s
		}
	}
	return nil
}

func TestTracingPropagatesAndExportsSpans(t *testing.T) {
	backend := headerEcho(t)
	otlp := newOTLPReceiver(t)
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
tracing: {otlp_endpoint: %q, sample_ratio: 1, service_name: edge-test}
upstreams: {app: {targets: [%q]}}
sites: [{routes: [{match: {path_prefix: /}, upstream: app}]}]
`, otlp.srv.URL, backend.URL))
	c := newClient(t)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("GET", gh.URL("/traced"), nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	req.Header.Set("tracestate", "vendor=opaque")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`traceparent=00-([0-9a-f]{32})-([0-9a-f]{16})-01\ntracestate=vendor=opaque`).FindStringSubmatch(string(body))
	if m == nil || m[1] != traceID || m[2] == parentID {
		t.Fatalf("backend saw %q: want the same trace, gatehouse's span as parent, tracestate kept", body)
	}
	var span *tracepb.Span
	if !waitFor(10*time.Second, func() bool { span = otlp.find(traceID); return span != nil }) {
		t.Fatal("no span for the trace reached the OTLP receiver in 10s")
	}
	if fmt.Sprintf("%x", span.SpanId) != m[2] || fmt.Sprintf("%x", span.ParentSpanId) != parentID || span.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("span id %x parent %x kind %v: want id %s (sent to the backend), parent %s, server kind", span.SpanId, span.ParentSpanId, span.Kind, m[2], parentID)
	}
	attrs := map[string]string{}
	for _, kv := range span.Attributes {
		if _, isInt := kv.Value.Value.(*commonpb.AnyValue_IntValue); isInt {
			attrs[kv.Key] = fmt.Sprint(kv.Value.GetIntValue())
		} else {
			attrs[kv.Key] = kv.Value.GetStringValue()
		}
	}
	if attrs["url.path"] != "/traced" || attrs["http.response.status_code"] != "200" {
		t.Errorf("span attributes %v: want url.path /traced and status 200", attrs)
	}

	// Without a traceparent, a new trace starts and the backend still gets one.
	resp, body = do(t, c, "GET", gh.URL("/fresh"), "", nil)
	if !regexp.MustCompile(`traceparent=00-[0-9a-f]{32}-[0-9a-f]{16}-01`).Match(body) {
		t.Errorf("no traceparent reached the backend for an untraced request: %q", body)
	}
	// A malformed traceparent is replaced, not forwarded.
	req, _ = http.NewRequest("GET", gh.URL("/bad"), nil)
	req.Header.Set("traceparent", "00-XYZ-bad-01")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "XYZ") {
		t.Errorf("a malformed traceparent was forwarded: %q", body)
	}
}
