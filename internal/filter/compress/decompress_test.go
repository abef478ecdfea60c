package compress

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// encode compresses b with coding, as a client would.
func encode(t testing.TB, coding string, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w, _ = gzip.NewWriterLevel(&out, gzip.BestSpeed)
	case "br":
		w = brotli.NewWriterLevel(&out, 1)
	case "zstd":
		zw, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// zeros is a decompression bomb: n zero bytes, encoded.
func zeros(t testing.TB, coding string, n int) []byte {
	return encode(t, coding, make([]byte, n))
}

// bodyServer answers with what the handler read from the request body:
// its length in X-Got, Content-Encoding as seen in X-CE, or the status the
// proxy would answer a failed read with.
func bodyServer(t testing.TB, settings string) *chainServer {
	return serveChain(t, mustBuild(t, settings), func(x *filter.Exchange) {
		n, err := io.Copy(io.Discard, x.Req.Body)
		if err != nil {
			status := 500
			if e, ok := h1.IsHeadError(err); ok {
				status = e.Status
			}
			reply(x, status, nil, true)
			return
		}
		reply(x, 200, nil, true, "X-Got", strconv.FormatInt(n, 10), "X-CE", string(x.Req.Header.Get("Content-Encoding")),
			"X-CL", strconv.FormatInt(x.Req.ContentLength, 10))
	})
}

func post(t testing.TB, url, coding string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	if coding != "" {
		req.Header.Set("Content-Encoding", coding)
	}
	resp, _ := do(t, req)
	return resp
}

func TestDecompressRequests(t *testing.T) {
	srv := bodyServer(t, "{decompress_requests: true, max_decompressed_bytes: 2MiB, max_ratio: 50}")
	plain := text(300 << 10)
	for _, coding := range []string{"gzip", "br", "zstd"} {
		resp := post(t, srv.url, coding, encode(t, coding, plain))
		if resp.StatusCode != 200 || resp.Header.Get("X-Got") != strconv.Itoa(len(plain)) || resp.Header.Get("X-CE") != "" || resp.Header.Get("X-CL") != "-1" {
			t.Errorf("%s: %d got %s bytes, Content-Encoding %q, length %s", coding, resp.StatusCode, resp.Header.Get("X-Got"), resp.Header.Get("X-CE"), resp.Header.Get("X-CL"))
		}
		// Over the size cap (ratio within bounds: random-ish text).
		big := text(9 << 18)
		if resp := post(t, srv.url, coding, encode(t, coding, big)); resp.StatusCode != 413 {
			t.Errorf("%s: %d quarter-MiB decoded body: status %d, want 413", coding, len(big)>>18, resp.StatusCode)
		}
		// A bomb: 1.5 MiB of zeros is under the size cap, but over the ratio.
		if resp := post(t, srv.url, coding, zeros(t, coding, 3<<19)); resp.StatusCode != 413 {
			t.Errorf("%s: bomb: status %d, want 413", coding, resp.StatusCode)
		}
		// Small and very regular: the ratio is not applied below 1 MiB.
		if resp := post(t, srv.url, coding, zeros(t, coding, 512<<10)); resp.StatusCode != 200 {
			t.Errorf("%s: 512 KiB of zeros: status %d, want 200", coding, resp.StatusCode)
		}
		// Garbage claiming the coding.
		if resp := post(t, srv.url, coding, []byte("this is not compressed at all, not even a little")); resp.StatusCode != 400 {
			t.Errorf("%s: garbage: status %d, want 400", coding, resp.StatusCode)
		}
		// Truncated stream.
		enc := encode(t, coding, plain)
		if resp := post(t, srv.url, coding, enc[:len(enc)/2]); resp.StatusCode != 400 {
			t.Errorf("%s: truncated: status %d, want 400", coding, resp.StatusCode)
		}
	}
	// Left alone: unknown and stacked codings, identity, no body.
	for _, ce := range []string{"deflate", "gzip, br", "identity"} {
		resp := post(t, srv.url, ce, []byte("as is"))
		if resp.StatusCode != 200 || resp.Header.Get("X-Got") != "5" || resp.Header.Get("X-CE") != ce {
			t.Errorf("Content-Encoding %q: %d got %s, CE %q", ce, resp.StatusCode, resp.Header.Get("X-Got"), resp.Header.Get("X-CE"))
		}
	}
}

func TestDecompressOffLeavesBodies(t *testing.T) {
	srv := bodyServer(t, "")
	enc := encode(t, "gzip", text(10000))
	resp := post(t, srv.url, "gzip", enc)
	if resp.Header.Get("X-Got") != strconv.Itoa(len(enc)) || resp.Header.Get("X-CE") != "gzip" {
		t.Errorf("decompress_requests off: got %s bytes, CE %q", resp.Header.Get("X-Got"), resp.Header.Get("X-CE"))
	}
}
