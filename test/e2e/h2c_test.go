package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// h2cClient speaks HTTP/2 with prior knowledge over plain TCP.
func h2cClient(t *testing.T) *http.Client {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func TestH2CListener(t *testing.T) {
	t.Parallel()
	const streams = 8
	var arrived atomic.Int32
	all := make(chan struct{})
	var once sync.Once
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/barrier":
			// Answer only once all streams are in flight: proves they are concurrent.
			if arrived.Add(1) == streams {
				once.Do(func() { close(all) })
			}
			select {
			case <-all:
				fmt.Fprintf(w, "together %s", r.URL.RawQuery)
			case <-time.After(5 * time.Second):
				fmt.Fprintf(w, "alone %s", r.URL.RawQuery)
			case <-r.Context().Done():
			}
		case "/post":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d %s", len(b), sha256Hex(b))
		default:
			fmt.Fprintf(w, "hello from backend, path %s", r.URL.Path)
		}
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    h2c: true
admin: {addr: "{{ADMIN}}"}
upstreams:
  app: {targets: ["%s"]}
sites:
  - routes:
      - {match: {path_prefix: /}, upstream: app}
`, be.URL))
	c := h2cClient(t)

	resp, body := do(t, c, "GET", gh.URL("/one"), "", nil)
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(body) != "hello from backend, path /one" {
		t.Fatalf("h2c GET: proto %s status %d body %q", resp.Proto, resp.StatusCode, body)
	}

	t.Run("concurrent streams", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, streams)
		for i := 0; i < streams; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Get(gh.URL(fmt.Sprintf("/barrier?i=%d", i)))
				if err != nil {
					errs <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := fmt.Sprintf("together i=%d", i); resp.ProtoMajor != 2 || string(b) != want {
					errs <- fmt.Sprintf("stream %d: proto %s, body %q, want %q", i, resp.Proto, b, want)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("POST bodies", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 4)
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := bytes.Repeat([]byte{byte('a' + i)}, 64<<10<<i) // 64 KiB .. 512 KiB
				resp, err := c.Post(gh.URL("/post"), "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					errs <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := fmt.Sprintf("%d %s", len(body), sha256Hex(body)); string(b) != want {
					errs <- fmt.Sprintf("POST %d: got %q, want %q", i, b, want)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("HTTP/1.1 still served", func(t *testing.T) {
		resp, body := do(t, newClient(t), "GET", gh.URL("/h1"), "", nil)
		if resp.ProtoMajor != 1 || string(body) != "hello from backend, path /h1" {
			t.Errorf("HTTP/1.1 on the h2c listener: proto %s body %q", resp.Proto, body)
		}
	})
}
