package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Raw opens an HTTP/2 connection over TLS and sends the preface and an
// empty SETTINGS, for tests that write frames by hand.
func (f *tlsFixture) h2Raw(t *testing.T, addr string) (*tls.Conn, *http2.Framer) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: "a.test", RootCAs: f.ca.Pool(), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q", p)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	return c, fr
}

func encodeHeaders(fields ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return buf.Bytes()
}

// readUntilGoAway reads frames until a GOAWAY or the end of the
// connection; it returns the GOAWAY's code (or -1) and the server's
// MAX_CONCURRENT_STREAMS setting.
func readUntilGoAway(fr *http2.Framer) (code int, maxStreams uint32) {
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			return -1, maxStreams
		}
		switch fm := frame.(type) {
		case *http2.SettingsFrame:
			if v, ok := fm.Value(http2.SettingMaxConcurrentStreams); ok {
				maxStreams = v
			}
		case *http2.GoAwayFrame:
			return int(fm.ErrCode), maxStreams
		}
	}
}

// Rapid reset (CVE-2023-44487): streams opened and reset at once, without
// end, get the connection closed with ENHANCE_YOUR_CALM; the backend sees a
// bounded number of them, and other clients are still served.
func TestH2RapidReset(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	var hits atomic.Int64
	release := make(chan struct{})
	unblock := onceCloser(release)
	defer unblock()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			hits.Add(1)
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    tls: {certificates: [%s]}
upstreams:
  app: {targets: [%s]}
sites: [{routes: [{upstream: app}]}]
`, f.cert(t, "a", "a.test"), be.URL))
	c, fr := f.h2Raw(t, gh.Addr())
	result := make(chan [2]int, 1)
	go func() {
		code, ms := readUntilGoAway(fr)
		result <- [2]int{code, int(ms)}
	}()
	block := encodeHeaders(":method", "GET", ":scheme", "https", ":authority", "a.test", ":path", "/slow")
	const attempts = 5000
	sent := 0
	for i := range attempts {
		id := uint32(2*i + 1)
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
			fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
		sent++
	}
	var r [2]int
	select {
	case r = <-result:
	case <-time.After(15 * time.Second):
		t.Fatal("the connection was neither closed nor sent GOAWAY")
	}
	c.Close()
	if r[1] != 250 {
		t.Errorf("MAX_CONCURRENT_STREAMS = %d, want 250", r[1])
	}
	if r[0] != int(http2.ErrCodeEnhanceYourCalm) {
		t.Errorf("GOAWAY code %d after %d streams, want ENHANCE_YOUR_CALM", r[0], sent)
	}
	if n := hits.Load(); n > 300 {
		t.Errorf("the backend saw %d of the reset requests; want at most ~250", n)
	}
	unblock()
	resp, body := do(t, f.httpsClient(t, gh.Addr(), true), "GET", "https://a.test/fast", "", nil)
	if resp.StatusCode != 200 || string(body) != "ok" || resp.ProtoMajor != 2 {
		t.Fatalf("after the flood: %d %q %s", resp.StatusCode, body, resp.Proto)
	}
}

// CONTINUATION flood (CVE-2024-27316): a header block that never ends is
// cut once it passes limits.max_header_bytes, not buffered without end.
func TestH2ContinuationFlood(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    tls: {certificates: [%s]}
limits: {max_header_bytes: 16KiB}
sites: [{routes: [{respond: {}}]}]
`, f.cert(t, "a", "a.test")))
	_, fr := f.h2Raw(t, gh.Addr())
	result := make(chan int, 1)
	go func() { code, _ := readUntilGoAway(fr); result <- code }()
	pad := encodeHeaders("x-pad", strings.Repeat("a", 1000))
	err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1,
		BlockFragment: encodeHeaders(":method", "GET", ":scheme", "https", ":authority", "a.test", ":path", "/")})
	// 256KiB is 16 times the limit: the server must have given up by then.
	for sent := 0; err == nil && sent < 256<<10 && len(result) == 0; sent += len(pad) {
		err = fr.WriteContinuation(1, false, pad)
	}
	select {
	case code := <-result:
		if code != int(http2.ErrCodeProtocol) {
			t.Errorf("GOAWAY code %d, want PROTOCOL_ERROR", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection took 256KiB of CONTINUATION frames and is still open")
	}
}
