package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Client speaks HTTP/3 to addr (UDP) whatever the URL's host.
func (f *tlsFixture) h3Client(t *testing.T, addr string) *http.Client {
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool()},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
		},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// protocols: [h1, h2, h3] serves HTTP/3 on the same port over UDP, to the
// same routes, and HTTP/1.1 and HTTP/2 responses advertise it.
func TestHTTP3(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	be := echoBackend(t, "app")
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    protocols: [h1, h2, h3]
    tls: {certificates: [%s]}
upstreams:
  app: {targets: [%s]}
sites:
  - hosts: [a.test]
    hsts: {max_age: 1h}
    routes: [{upstream: app}]
`, f.cert(t, "a", "a.test"), be.URL))
	altSvc := `h3=":` + port(gh.Addr()) + `"; ma=86400`
	for _, h2 := range []bool{false, true} {
		resp, _ := do(t, f.httpsClient(t, gh.Addr(), h2), "GET", "https://a.test/", "", nil)
		if got := resp.Header.Values("Alt-Svc"); len(got) != 1 || got[0] != altSvc {
			t.Errorf("h2=%v: Alt-Svc %q, want %q", h2, got, altSvc)
		}
	}
	c := f.h3Client(t, gh.Addr())
	for i := range 3 {
		req, _ := http.NewRequest("POST", fmt.Sprintf("https://a.test/h3/%d?x=y", i), strings.NewReader("hello over quic"))
		req.Header.Set("X-Test", "yes")
		resp, s := doSeen(t, c, req)
		if resp.ProtoMajor != 3 || resp.Header.Get("Server") != "gatehouse" || resp.Header.Get("Strict-Transport-Security") != "max-age=3600" {
			t.Errorf("response %s %v", resp.Proto, resp.Header)
		}
		if s.URI != fmt.Sprintf("/h3/%d?x=y", i) || s.Method != "POST" || s.BodyLen != 15 || s.Header.Get("X-Test") != "yes" ||
			s.Header.Get("X-Forwarded-Proto") != "https" || s.Header.Get("X-Forwarded-Host") != "a.test" {
			t.Errorf("backend saw %+v", s)
		}
	}
}
