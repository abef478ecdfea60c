package h1

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// heapInUse is the live heap once garbage and what sync.Pools hold (which
// two collections drop) are gone.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestServerIdleKeepAliveHoldsNoBuffers(t *testing.T) {
	// A connection parked between keep-alive requests gives its 8 KiB read
	// and write buffers back: what thousands of idle clients cost is the
	// connection's own state, not 16 KiB of buffers each.
	const conns = 200
	ts := startServer(t, handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
		w.WriteHead(200, nil, nil, 2)
		io.WriteString(w, "ok")
	}), defaultLimits())
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	var buf [512]byte
	roundTrip := func(c net.Conn) {
		t.Helper()
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		// Read straight from the socket: a client-side buffer would be
		// counted in this process's heap too.
		var got []byte
		for !bytes.HasSuffix(got, []byte("\r\n\r\nok")) {
			n, err := c.Read(buf[:])
			if err != nil {
				t.Fatalf("response %q: %v", got, err)
			}
			got = append(got, buf[:n]...)
		}
	}
	before := heapInUse()
	open := make([]net.Conn, 0, conns)
	for range conns {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		roundTrip(c)
		open = append(open, c)
	}
	time.Sleep(50 * time.Millisecond) // every server goroutine has parked
	perConn := (int64(heapInUse()) - int64(before)) / conns
	t.Logf("%d idle keep-alive connections: %d heap bytes each (client side included)", conns, perConn)
	if perConn > 8<<10 {
		t.Errorf("an idle keep-alive connection holds %d heap bytes, want under 8 KiB (no read or write buffer)", perConn)
	}
	for _, c := range open { // still served after the buffers went back
		roundTrip(c)
	}
}

func TestClientPooledConnHoldsNoBuffers(t *testing.T) {
	addr := blockingBackend(t, 0)
	tr := &Transport{Addr: addr, MaxIdle: 1, MaxHeader: 8 << 10, DialTimeout: time.Second}
	for i := range 3 {
		cc, err := tr.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cc.Reused != (i > 0) {
			t.Fatalf("request %d: reused %v", i, cc.Reused)
		}
		if err := sendGET(cc, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		resp, err := cc.ReadResponse(false)
		if err != nil || resp.Status != 200 {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
		var body strings.Builder
		if _, err := io.Copy(&body, cc.Body()); err != nil || body.String() != "hello" {
			t.Fatalf("request %d: body %q %v", i, body.String(), err)
		}
		cc.Release()
		if cc.br != nil || cc.bw != nil {
			t.Fatalf("request %d: the pooled connection kept its buffers", i)
		}
	}
	tr.CloseIdle(true)
}
