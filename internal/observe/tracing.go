package observe

import (
	"context"
	"encoding/hex"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracer makes one server span per request, child of the client's W3C
// traceparent when it sent one, exports them over OTLP/HTTP in batches,
// and hands the backend a traceparent naming gatehouse's span as parent.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

// TracingConfig is what NewTracer needs (config.Tracing, already validated).
type TracingConfig struct {
	Endpoint    string
	SampleRatio float64
	ServiceName string
	Headers     map[string]string
	Version     string
}

// NewTracer starts the exporter. Spans are queued and sent in batches by a
// goroutine of the SDK: a slow or absent collector costs dropped spans,
// never request latency.
func NewTracer(c TracingConfig) (*Tracer, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlptrace.New(context.Background(), newOTLPHTTPClient(otlpTracesURL(u), c.Headers, 5*time.Second))
	if err != nil {
		return nil, err
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", c.ServiceName),
		attribute.String("service.version", c.Version),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
	)
	return &Tracer{provider: tp, tracer: tp.Tracer("gatehouse")}, nil
}

// Close flushes the spans still queued (for up to five seconds).
func (t *Tracer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t.provider.Shutdown(ctx)
}

// Span is one request's span.
type Span struct {
	span trace.Span
	// traceparent is the value sent to the backend; it lives as long as the
	// request's header slice refers to it.
	traceparent [55]byte
}

var spanPool = sync.Pool{New: func() any { return new(Span) }}

// Start begins req's span and rewrites its traceparent header so that the
// backend's spans become children of gatehouse's. tracestate passes through.
// The Span must be ended with End once the response is done.
func (t *Tracer) Start(req *exchange.Request) *Span {
	sp := spanPool.Get().(*Span)
	ctx := context.Background()
	if parent, ok := parseTraceparent(req.Header.Get("traceparent")); ok {
		if ts := req.Header.Get("tracestate"); ts != nil {
			if st, err := trace.ParseTraceState(string(ts)); err == nil {
				parent = parent.WithTraceState(st)
			}
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	_, sp.span = t.tracer.Start(ctx, string(req.Method), trace.WithSpanKind(trace.SpanKindServer))
	sc := sp.span.SpanContext()
	if !sc.IsValid() {
		return sp
	}
	b := sp.traceparent[:0]
	b = append(b, "00-"...)
	tid, sid := sc.TraceID(), sc.SpanID()
	b = hex.AppendEncode(b, tid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sid[:])
	b = append(b, '-')
	b = append(b, hexDigits[sc.TraceFlags()>>4], hexDigits[sc.TraceFlags()&0xf])
	req.Header.Del("traceparent")
	req.Header.Add(traceparentName, b)
	return sp
}

var traceparentName = []byte("traceparent")

// End finishes the span with what happened; sp is not used again.
func (sp *Span) End(req *exchange.Request, route, upstream string, status int) {
	s := sp.span
	sp.span = nil
	defer spanPool.Put(sp)
	if s.IsRecording() {
		attrs := []attribute.KeyValue{
			attribute.String("http.request.method", string(req.Method)),
			attribute.String("url.path", string(req.Path)),
			attribute.String("server.address", string(req.Host)),
			attribute.String("network.protocol.version", strings.TrimPrefix(req.Proto(), "HTTP/")),
			attribute.String("client.address", req.RemoteAddr.Addr().String()),
			attribute.Int("http.response.status_code", status),
			attribute.String("gatehouse.route", route),
		}
		if upstream != "" {
			attrs = append(attrs, attribute.String("gatehouse.upstream.target", upstream))
		}
		if len(req.ID) > 0 {
			attrs = append(attrs, attribute.String("gatehouse.request_id", string(req.ID)))
		}
		s.SetAttributes(attrs...)
		if status >= 500 {
			s.SetStatus(codes.Error, "")
		}
	}
	s.End()
}

// parseTraceparent reads a W3C traceparent (version 00, and later versions
// by their first four fields, as the spec asks); anything malformed is
// ignored and the request starts a new trace.
func parseTraceparent(v []byte) (trace.SpanContext, bool) {
	if len(v) < 55 || (len(v) > 55 && (v[55] != '-' || v[0] == '0' && v[1] == '0')) {
		return trace.SpanContext{}, false
	}
	if v[2] != '-' || v[35] != '-' || v[52] != '-' || string(v[:2]) == "ff" {
		return trace.SpanContext{}, false
	}
	var ver [1]byte
	var tid trace.TraceID
	var sid trace.SpanID
	var flags [1]byte
	if !decodeLowerHex(ver[:], v[0:2]) || !decodeLowerHex(tid[:], v[3:35]) || !decodeLowerHex(sid[:], v[36:52]) || !decodeLowerHex(flags[:], v[53:55]) {
		return trace.SpanContext{}, false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true})
	return sc, sc.IsValid()
}

// decodeLowerHex decodes src into dst; the spec allows lowercase only.
func decodeLowerHex(dst, src []byte) bool {
	for _, c := range src {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, src)
	return err == nil
}
