package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gateBackend answers /slow only once release is called (counting the
// requests held), everything else at once.
func gateBackend(t *testing.T) (*httptest.Server, func(), *atomic.Int32) {
	gate := make(chan struct{})
	release := onceCloser(gate)
	var held atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow") {
			held.Add(1)
			defer held.Add(-1)
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	t.Cleanup(func() { release(); srv.Close() })
	return srv, release, &held
}

// clientFrom is an HTTP client whose connections come from local address
// ip (any 127.0.0.0/8 address works on loopback): a second client machine.
func clientFrom(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{Proxy: nil, DialContext: d.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

func dialFrom(t *testing.T, ip, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func getStatus(c *http.Client, url string) (int, http.Header, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

// TestFloodingClientDoesNotStarveOthers: one address holding many slow
// requests gets 429 beyond max_requests_per_ip, and a connection beyond
// max_connections_per_ip is closed, while another address is served.
func TestFloodingClientDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	be, gate, held := gateBackend(t)
	gh := startGatehouse(t, strings.Replace(oneUpstream("", be.URL), "  - addr: {{LISTEN}}\n",
		"  - addr: {{LISTEN}}\n    max_requests_per_ip: 3\n    max_connections_per_ip: 12\n", 1))
	flood := clientFrom(t, "127.0.0.1")
	var wg sync.WaitGroup
	var ok, tooMany atomic.Int32
	var retryAfter atomic.Value
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, h, err := getStatus(flood, gh.URL(fmt.Sprintf("/slow/%d", i)))
			switch {
			case err != nil:
				t.Errorf("flood request: %v", err)
			case st == 200:
				ok.Add(1)
			case st == 429:
				tooMany.Add(1)
				retryAfter.Store(h.Get("Retry-After"))
			default:
				t.Errorf("flood request: status %d", st)
			}
		}()
	}
	if !waitFor(5*time.Second, func() bool { return held.Load() == 3 && tooMany.Load() == 7 }) {
		t.Fatalf("held %d at the backend and %d refused, want 3 and 7", held.Load(), tooMany.Load())
	}
	if ra, _ := retryAfter.Load().(string); ra != "1" {
		t.Errorf("429 Retry-After %q, want 1", ra)
	}
	// Another client is served while the flood holds its allowance.
	other := clientFrom(t, "127.0.0.2")
	if st, _, err := getStatus(other, gh.URL("/fast")); err != nil || st != 200 {
		t.Fatalf("other client: %d %v, want 200", st, err)
	}
	gate()
	wg.Wait()
	if ok.Load() != 3 {
		t.Errorf("%d flood requests served, want 3", ok.Load())
	}

	// Connections: 12 idle ones from one address; the 13th is closed at
	// once, another address still gets in, and a freed slot is reusable.
	var conns []net.Conn
	for i := 0; i < 12; i++ {
		c, br := dialFrom(t, "127.0.0.1", gh.Addr())
		// A request answered proves the connection was admitted (the
		// accept order of concurrent connections is not the dial order).
		send(t, c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, _ := readResp(t, c, br, "GET"); resp.StatusCode != 200 {
			t.Fatalf("connection %d: %d", i, resp.StatusCode)
		}
		conns = append(conns, c)
	}
	c, br := dialFrom(t, "127.0.0.1", gh.Addr())
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF && !isReset(err) {
		t.Fatalf("13th connection from one address: read %v, want it closed", err)
	}
	if st, _, err := getStatus(other, gh.URL("/fast")); err != nil || st != 200 {
		t.Fatalf("other client with the first one at its connection cap: %d %v", st, err)
	}
	conns[0].Close()
	if !waitFor(5*time.Second, func() bool {
		st, _, err := getStatus(flood, gh.URL("/fast"))
		return err == nil && st == 200
	}) {
		t.Fatal("a closed connection's slot was not given back")
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}

// TestMaxConnectionsStopsAccepting: at max_connections the listener stops
// accepting; the next connection waits in the backlog and is served once
// a slot frees, and idle keep-alive connections are closed to make room.
func TestMaxConnectionsStopsAccepting(t *testing.T) {
	t.Parallel()
	be, gate, held := gateBackend(t)
	gh := startGatehouse(t, strings.Replace(oneUpstream("", be.URL), "  - addr: {{LISTEN}}\n", "  - addr: {{LISTEN}}\n    max_connections: 3\n", 1))
	// Three busy connections fill the listener.
	var busy []net.Conn
	var brs []*bufio.Reader
	for i := 0; i < 3; i++ {
		c, br := dialRaw(t, gh.Addr())
		send(t, c, fmt.Sprintf("GET /slow/%d HTTP/1.1\r\nHost: x\r\n\r\n", i))
		busy, brs = append(busy, c), append(brs, br)
	}
	if !waitFor(5*time.Second, func() bool { return held.Load() == 3 }) {
		t.Fatalf("%d requests reached the backend, want 3", held.Load())
	}
	// The fourth connects (the kernel's backlog) but is not served yet.
	c4, br4 := dialRaw(t, gh.Addr())
	send(t, c4, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	c4.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	if _, err := br4.Peek(1); err == nil {
		t.Fatal("a fourth connection was served over max_connections: 3")
	}
	// The held responses end; their connections go idle and one is closed
	// to let the fourth in.
	gate()
	for i := range busy {
		if resp, _ := readResp(t, busy[i], brs[i], "GET"); resp.StatusCode != 200 {
			t.Fatalf("held request %d: %d", i, resp.StatusCode)
		}
	}
	if resp, body := readResp(t, c4, br4, "GET"); resp.StatusCode != 200 || string(body) != "ok /fast" {
		t.Fatalf("fourth connection: %d %q", resp.StatusCode, body)
	}
}

// TestSlowUpstreamDoesNotBlockOthers: a pool whose only target is capped by
// max_conns_per_target holds 2 requests, queues 2 for a moment and refuses
// the rest with 503 + Retry-After, while another pool serves normally; a
// queued request gets the slot a finished one frees.
func TestSlowUpstreamDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	slow, gate, held := gateBackend(t)
	fast := echoBackend(t, "fast")
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
shutdown_timeout: 2s
upstreams:
  slow:
    targets: [%s]
    max_conns_per_target: 2
    queue: {size: 2, timeout: 400ms}
  waits:
    targets: [%s]
    max_conns_per_target: 1
    queue: {size: 1, timeout: 10s}
  fast:
    targets: [%s]
sites:
  - routes:
      - {match: {path_prefix: /slow}, upstream: slow}
      - {match: {path_prefix: /wait}, strip_prefix: /wait, upstream: waits}
      - {upstream: fast}
`, slow.URL, slow.URL, fast.URL))
	c := newClient(t)
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	var busyRetry atomic.Value
	start := time.Now()
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, h, err := getStatus(clientFrom(t, "127.0.0.1"), gh.URL(fmt.Sprintf("/slow/%d", i)))
			if err != nil {
				t.Errorf("slow request: %v", err)
				return
			}
			if st == 503 {
				busyRetry.Store(h.Get("Retry-After"))
			}
			statuses <- st
		}()
	}
	if !waitFor(5*time.Second, func() bool { return held.Load() == 2 && len(statuses) == 6 }) {
		t.Fatalf("held %d, answered %d; want 2 held and 6 refused (4 at once, 2 after the queue timeout)", held.Load(), len(statuses))
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("queued requests refused after %v, before the queue timeout", d)
	}
	// The other pool is unaffected.
	for i := 0; i < 5; i++ {
		if resp, _ := do(t, c, "GET", gh.URL("/other"), "", nil); resp.StatusCode != 200 {
			t.Fatalf("fast pool: %d while the slow one is full", resp.StatusCode)
		}
	}
	if ra, _ := busyRetry.Load().(string); ra != "1" {
		t.Errorf("503 Retry-After %q, want 1", ra)
	}
	for i := 0; i < 6; i++ {
		if st := <-statuses; st != 503 {
			t.Errorf("refused slow request: %d, want 503", st)
		}
	}

	// A queued request takes the slot of one that finishes (the gate is
	// still shut: /wait/slow holds the one slot of "waits").
	first := make(chan int, 1)
	go func() { st, _, _ := getStatus(clientFrom(t, "127.0.0.1"), gh.URL("/wait/slow/a")); first <- st }()
	if !waitFor(5*time.Second, func() bool { return held.Load() == 3 }) {
		t.Fatal("the waits pool's request did not reach the backend")
	}
	second := make(chan int, 1)
	go func() { st, _, _ := getStatus(clientFrom(t, "127.0.0.1"), gh.URL("/wait/fast")); second <- st }()
	time.Sleep(200 * time.Millisecond)
	select {
	case st := <-second:
		t.Fatalf("second request answered %d while the only slot was held", st)
	default:
	}
	gate()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, ch := range []chan int{first, second} {
		select {
		case st := <-ch:
			if st != 200 {
				t.Errorf("status %d, want 200", st)
			}
		case <-ctx.Done():
			t.Fatal("a request did not finish")
		}
	}
	wg.Wait()
}

// TestRequestsPerIPCountsHTTP2Streams: max_requests_per_ip counts the
// streams of one HTTP/2 connection like separate requests.
func TestRequestsPerIPCountsHTTP2Streams(t *testing.T) {
	t.Parallel()
	be, gate, held := gateBackend(t)
	gh := startGatehouse(t, strings.Replace(oneUpstream("", be.URL), "  - addr: {{LISTEN}}\n",
		"  - addr: {{LISTEN}}\n    h2c: true\n    max_requests_per_ip: 2\n", 1))
	c := h2cClient(t)
	var wg sync.WaitGroup
	var tooMany atomic.Int32
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(gh.URL(fmt.Sprintf("/slow/%d", i)))
			if err != nil {
				t.Errorf("stream %d: %v", i, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Errorf("stream %d went over HTTP/%d", i, resp.ProtoMajor)
			}
			if resp.StatusCode == 429 {
				tooMany.Add(1)
			}
		}()
	}
	if !waitFor(5*time.Second, func() bool { return held.Load() == 2 && tooMany.Load() == 3 }) {
		t.Errorf("held %d, refused %d; want 2 and 3", held.Load(), tooMany.Load())
	}
	gate()
	wg.Wait()
}
