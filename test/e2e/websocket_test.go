package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebSocketEchoThroughProxy(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(1 << 20)
		ctx := r.Context()
		for {
			typ, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if err := ws.Write(ctx, typ, append([]byte("echo:"), data...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(be.Close)
	gh := startGatehouse(t, oneUpstream("", be.URL))

	ctx := ctxTimeout(t, 20*time.Second)
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	ws, resp, err := websocket.Dial(ctx, "ws://"+gh.Addr()+"/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatalf("dial through gatehouse: %v", err)
	}
	defer ws.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ws.SetReadLimit(1 << 20)
	big := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	msgs := []struct {
		typ  websocket.MessageType
		data []byte
	}{
		{websocket.MessageText, []byte("hello")},
		{websocket.MessageBinary, []byte{0, 1, 2, 255}},
		{websocket.MessageText, []byte("second")},
		{websocket.MessageBinary, big},
		{websocket.MessageText, []byte("last")},
	}
	for i, m := range msgs {
		if err := ws.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		typ, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if typ != m.typ || !bytes.Equal(data, append([]byte("echo:"), m.data...)) {
			t.Fatalf("message %d: got type %v, %d bytes; want type %v, echo of %d bytes", i, typ, len(data), m.typ, len(m.data))
		}
	}
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close handshake: %v", err)
	}
}

// A raw Upgrade to a made-up protocol: 101, then bytes flow both ways.
func TestRawUpgradeTunnel(t *testing.T) {
	t.Parallel()
	heads := make(chan *rawMsg, 1)
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		m, err := readRawRequest(br)
		if err != nil {
			return
		}
		heads <- m
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout/1\r\nConnection: Upgrade\r\n\r\nwelcome\n")
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, strings.ToUpper(line)); err != nil {
				return
			}
		}
	})
	gh := startGatehouse(t, oneUpstream("", "http://"+be))
	c, br := dialRaw(t, gh.Addr())
	send(t, c, "GET /shout HTTP/1.1\r\nHost: site.test\r\nConnection: Upgrade\r\nUpgrade: shout/1\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("reading 101: %v", err)
	}
	if resp.StatusCode != 101 || !strings.EqualFold(resp.Header.Get("Upgrade"), "shout/1") {
		t.Fatalf("status %d, Upgrade %q; want 101 and shout/1", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	if !containsToken(headerTokens(resp.Header, "Connection"), "upgrade") {
		t.Errorf("101 response lacks Connection: Upgrade (RFC 9110 §7.8); headers %v", resp.Header)
	}
	m := <-heads
	if !strings.EqualFold(m.Header.Get("Upgrade"), "shout/1") || !containsToken(headerTokens(m.Header, "Connection"), "upgrade") {
		t.Errorf("backend did not get the upgrade request; head:\n%s", m.Head)
	}
	if line := readLineTimeout(t, br, 5*time.Second); line != "welcome\n" {
		t.Fatalf("greeting %q", line)
	}
	for i := 0; i < 5; i++ {
		send(t, c, fmt.Sprintf("ping %d\n", i))
		if line := readLineTimeout(t, br, 5*time.Second); line != fmt.Sprintf("PING %d\n", i) {
			t.Fatalf("round %d: got %q", i, line)
		}
	}
	// Closing our write side reaches the backend, which then closes: the tunnel ends.
	c.(*net.TCPConn).CloseWrite()
	expectClosed(t, c, br, 5*time.Second)
}

func containsToken(toks []string, want string) bool {
	for _, t := range toks {
		if t == want {
			return true
		}
	}
	return false
}
