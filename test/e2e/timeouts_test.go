package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestZeroTimeoutsMeanNoLimit checks that 0, which the configuration defines
// as "no limit", is not taken as "already expired" anywhere on the path.
func TestZeroTimeoutsMeanNoLimit(t *testing.T) {
	t.Parallel()
	be := echoBackend(t, "zero")
	cfg := strings.Replace(oneUpstream(
		"limits: {read_header_timeout: 0, idle_timeout: 0, body_read_timeout: 0}",
		be.URL), "    targets:", "    timeouts: {response_header: 0, idle: 0}\n    targets:", 1)
	gh := startGatehouse(t, cfg)
	c := newClient(t)
	for i := 0; i < 3; i++ {
		resp, body := do(t, c, "POST", gh.URL(fmt.Sprintf("/zero/%d", i)), "", strings.NewReader("payload"))
		if resp.StatusCode != 200 || !strings.Contains(string(body), "zero") {
			t.Fatalf("request %d: %d %q, want 200 from the backend", i, resp.StatusCode, body)
		}
	}
}

// TestTimeoutsDoNotOutliveTheirExchange checks that the response-header and
// request-head deadlines of one exchange do not linger on a kept-alive
// backend connection, nor on a tunnel: a later upload and a WebSocket that
// lives past those timeouts must be unaffected.
func TestTimeoutsDoNotOutliveTheirExchange(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			ws, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer ws.CloseNow()
			for {
				typ, data, err := ws.Read(r.Context())
				if err != nil {
					return
				}
				ws.Write(r.Context(), typ, data)
			}
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d", r.Method, len(body))
	}))
	t.Cleanup(be.Close)
	cfg := strings.Replace(oneUpstream("limits: {read_header_timeout: 300ms}", be.URL),
		"    targets:", "    timeouts: {response_header: 300ms}\n    targets:", 1)
	gh := startGatehouse(t, cfg)
	c := newClient(t)
	if resp, body := do(t, c, "GET", gh.URL("/a"), "", nil); resp.StatusCode != 200 {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	time.Sleep(700 * time.Millisecond) // past both timeouts
	resp, body := do(t, c, "POST", gh.URL("/b"), "", strings.NewReader("12345"))
	if resp.StatusCode != 200 || string(body) != "POST 5" {
		t.Fatalf("upload on the kept-alive connection after a pause: %d %q, want 200 \"POST 5\"", resp.StatusCode, body)
	}

	ctx := ctxTimeout(t, 10*time.Second)
	ws, _, err := websocket.Dial(ctx, "ws://"+gh.Addr()+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	for i := 0; i < 2; i++ {
		time.Sleep(700 * time.Millisecond)
		if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
			t.Fatalf("write %d after a pause: %v", i, err)
		}
		if _, data, err := ws.Read(ctx); err != nil || string(data) != "ping" {
			t.Fatalf("read %d after a pause: %q %v (the tunnel kept an HTTP deadline)", i, data, err)
		}
	}
}
