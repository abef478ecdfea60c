package observe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// otlpHTTPClient is the OTLP/HTTP (binary protobuf) transport under the
// SDK's otlptrace exporter, which turns spans into OTLP messages.
//
// Why not otlptracehttp: it wraps the spans in the collector package's
// ExportTraceServiceRequest, and that package also holds the gRPC service
// and its HTTP gateway, so importing it links google.golang.org/grpc,
// grpc-gateway and genproto (about 50 packages whose init functions alone
// fault ~5 MB of the binary into memory in every gatehouse process,
// tracing on or off; see opentelemetry-go issue 2579). That request message
// has a single field (1: repeated ResourceSpans), so it is framed here with
// protowire; the spans themselves are marshalled by the protobuf library.
type otlpHTTPClient struct {
	url     string
	headers map[string]string
	timeout time.Duration
	http    *http.Client

	// done is cancelled by Stop: uploads still in flight give up.
	done   context.Context
	cancel context.CancelFunc
}

// otlpRetryStatus are the answers the OTLP/HTTP spec says to retry.
func otlpRetryStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// maxOTLPResponse bounds how much of a collector's answer is read.
const maxOTLPResponse = 64 << 10

// otlpTracesURL is where spans are posted: the endpoint's path, or the
// OTLP/HTTP default /v1/traces when it has none (query and fragment are
// not part of an OTLP endpoint and are dropped).
func otlpTracesURL(endpoint *url.URL) string {
	u := *endpoint
	u.Path = strings.TrimSuffix(u.Path, "/")
	if u.Path == "" {
		u.Path = "/v1/traces"
	}
	u.RawPath, u.RawQuery, u.Fragment, u.ForceQuery = "", "", "", false
	return u.String()
}

func newOTLPHTTPClient(url string, headers map[string]string, timeout time.Duration) *otlpHTTPClient {
	done, cancel := context.WithCancel(context.Background())
	return &otlpHTTPClient{
		url:     url,
		headers: headers,
		timeout: timeout,
		// DefaultTransport: system roots for https, HTTPS_PROXY honoured,
		// idle connections kept for the next batch.
		http:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		done:   done,
		cancel: cancel,
	}
}

var _ otlptrace.Client = (*otlpHTTPClient)(nil)

func (c *otlpHTTPClient) Start(context.Context) error { return nil }

func (c *otlpHTTPClient) Stop(context.Context) error {
	c.cancel()
	c.http.CloseIdleConnections()
	return nil
}

// marshalExportRequest encodes ExportTraceServiceRequest{resource_spans: rs}.
func marshalExportRequest(rs []*tracepb.ResourceSpans) ([]byte, error) {
	var b []byte
	opts := proto.MarshalOptions{UseCachedSize: true}
	for _, r := range rs {
		n := opts.Size(r) // caches the sizes MarshalAppend then uses
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		var err error
		if b, err = opts.MarshalAppend(b, r); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// UploadTraces posts one batch, retrying what the spec calls retryable
// (429, 502, 503, 504, connection errors) until the timeout runs out.
func (c *otlpHTTPClient) UploadTraces(ctx context.Context, rs []*tracepb.ResourceSpans) error {
	body, err := marshalExportRequest(rs)
	if err != nil {
		return fmt.Errorf("otlp: marshal spans: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	defer context.AfterFunc(c.done, cancel)()
	delay := 250 * time.Millisecond
	for {
		retry, wait, err := c.post(ctx, body)
		if err == nil || !retry {
			return err
		}
		if wait <= 0 {
			wait = delay
			delay = min(2*delay, 4*time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// post sends body once; retry says whether another attempt may succeed,
// wait is the collector's Retry-After (0 if none).
func (c *otlpHTTPClient) post(ctx context.Context, body []byte) (retry bool, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "gatehouse OTLP exporter (otlptrace/"+otlptrace.Version()+")")
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return ctx.Err() == nil, 0, fmt.Errorf("otlp: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxOTLPResponse))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return false, 0, nil
	}
	err = fmt.Errorf("otlp: %s answered %s: %s", c.url, resp.Status, bytes.TrimSpace(msg))
	if !otlpRetryStatus(resp.StatusCode) {
		return false, 0, err
	}
	if s, e := strconv.Atoi(resp.Header.Get("Retry-After")); e == nil && s > 0 {
		wait = time.Duration(s) * time.Second
	}
	return true, wait, err
}
