package observe

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func testResourceSpans(names ...string) []*tracepb.ResourceSpans {
	var out []*tracepb.ResourceSpans
	for i, n := range names {
		out = append(out, &tracepb.ResourceSpans{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
				Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "svc"}}}}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
				TraceId: []byte("0123456789abcdef"), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, byte(i)}, Name: n,
				StartTimeUnixNano: 1, EndTimeUnixNano: 2, Kind: tracepb.Span_SPAN_KIND_SERVER}}}},
		})
	}
	return out
}

// The body is what a collector decodes as ExportTraceServiceRequest (the
// generated type of the OTLP protos, as a real collector uses).
func TestOTLPHTTPClientPostsExportRequest(t *testing.T) {
	want := testResourceSpans("GET", "POST")
	var got coltrace.ExportTraceServiceRequest
	var hdr http.Header
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hdr, path = r.Header.Clone(), r.URL.Path
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Errorf("collector cannot decode the export: %v", err)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	c := newOTLPHTTPClient(srv.URL+"/v1/traces", map[string]string{"Authorization": "Bearer k"}, 5*time.Second)
	defer c.Stop(context.Background())
	if err := c.UploadTraces(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, &coltrace.ExportTraceServiceRequest{ResourceSpans: want}) {
		t.Fatalf("collector got %v", &got)
	}
	if path != "/v1/traces" || hdr.Get("Content-Type") != "application/x-protobuf" || hdr.Get("Authorization") != "Bearer k" {
		t.Fatalf("path %q headers %v", path, hdr)
	}
}

func TestOTLPHTTPClientRetriesUnavailable(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	c := newOTLPHTTPClient(srv.URL, nil, 5*time.Second)
	defer c.Stop(context.Background())
	if err := c.UploadTraces(context.Background(), testResourceSpans("GET")); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Fatalf("%d attempts, want 2 (a 503 is retried)", n.Load())
	}
}

func TestOTLPHTTPClientGivesUp(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path == "/bad" {
			http.Error(w, "malformed", http.StatusBadRequest)
			return
		}
		w.Header().Set("Retry-After", "30")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	defer srv.Close()

	// A 400 is final: one attempt, the collector's message in the error.
	c := newOTLPHTTPClient(srv.URL+"/bad", nil, 5*time.Second)
	err := c.UploadTraces(context.Background(), testResourceSpans("GET"))
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "malformed") || n.Load() != 1 {
		t.Fatalf("err %v after %d attempts", err, n.Load())
	}
	c.Stop(context.Background())

	// A Retry-After longer than the timeout: the upload ends at the timeout.
	c = newOTLPHTTPClient(srv.URL+"/busy", nil, 200*time.Millisecond)
	defer c.Stop(context.Background())
	start := time.Now()
	if err := c.UploadTraces(context.Background(), testResourceSpans("GET")); err == nil {
		t.Fatal("429 until the timeout: no error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("upload took %v past its 200ms timeout", d)
	}
}

func TestOTLPHTTPClientStopEndsUpload(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // a collector that never answers
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newOTLPHTTPClient(srv.URL, nil, time.Minute)
	done := make(chan error, 1)
	go func() { done <- c.UploadTraces(context.Background(), testResourceSpans("GET")) }()
	time.Sleep(100 * time.Millisecond)
	c.Stop(context.Background())
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("stopped upload reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end the upload in flight")
	}
}

func TestOTLPTracesURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:4318":                 "http://127.0.0.1:4318/v1/traces",
		"http://127.0.0.1:4318/":                "http://127.0.0.1:4318/v1/traces",
		"https://otel.example:443/custom/path/": "https://otel.example:443/custom/path",
		"http://c:4318/a%20b?x=1#f":             "http://c:4318/a%20b",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := otlpTracesURL(u); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}
