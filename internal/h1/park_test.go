//go:build linux

package h1

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// parkServer serves with ServeConnParkable, as internal/server does; ended
// counts the connections whose done has run, twice the ones where it ran
// again.
type parkServer struct {
	addr         string
	srv          *Server
	ended, twice atomic.Int64
	mu           sync.Mutex
	conns        map[net.Conn]*ConnState
}

func startParkServer(t *testing.T, lim Limits, parkAfter time.Duration) *parkServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &parkServer{addr: ln.Addr().String(), conns: map[net.Conn]*ConnState{}}
	ps.srv = &Server{
		Handler: handlerFunc(func(r *exchange.Request, w exchange.ResponseWriter) {
			w.WriteHead(200, nil, nil, int64(len(r.Path)))
			w.Write(r.Path)
		}),
		Limits:    func() *Limits { return &lim },
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		ParkAfter: parkAfter,
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			st := new(ConnState)
			ps.mu.Lock()
			ps.conns[c] = st
			ps.mu.Unlock()
			wg.Add(1)
			var calls atomic.Int32
			go ps.srv.ServeConnParkable(c, st, func() {
				if calls.Add(1) > 1 {
					ps.twice.Add(1)
					return
				}
				ps.mu.Lock()
				delete(ps.conns, c)
				ps.mu.Unlock()
				ps.ended.Add(1)
				wg.Done()
			})
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		ps.mu.Lock()
		for c := range ps.conns {
			c.Close()
		}
		ps.mu.Unlock()
		wg.Wait()
		if n := ps.twice.Load(); n > 0 {
			t.Errorf("done ran twice for %d connections", n)
		}
	})
	return ps
}

func (ps *parkServer) parkedCount() int { return ps.srv.Parked() }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func getOK(t *testing.T, c net.Conn, br *bufio.Reader, path string) {
	t.Helper()
	send(t, c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != path {
		t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
	}
}

func TestParkedConnectionServesItsNextRequest(t *testing.T) {
	lim := defaultLimits()
	lim.IdleTimeout = 30 * time.Second
	ps := startParkServer(t, lim, 50*time.Millisecond)
	c, err := net.Dial("tcp", ps.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 3 {
		getOK(t, c, br, "/before-"+strconv.Itoa(i))
	}
	waitFor(t, "the connection to park", func() bool { return ps.parkedCount() == 1 })
	for i := range 3 { // woken, served, parked again: three times
		getOK(t, c, br, "/after-"+strconv.Itoa(i))
		waitFor(t, "the connection to park again", func() bool { return ps.parkedCount() == 1 })
	}
	if n := ps.ended.Load(); n != 0 {
		t.Fatalf("done ran %d times for a live connection", n)
	}
	// The client's FIN wakes the parked connection, which then ends.
	c.Close()
	waitFor(t, "done after the client closed", func() bool { return ps.ended.Load() == 1 })
	if n := ps.parkedCount(); n != 0 {
		t.Fatalf("%d connections still parked", n)
	}
}

// parkedClient is a connection to a new parkServer that answered one
// request and then parked.
func parkedClient(t *testing.T, lim Limits) (*parkServer, net.Conn, *bufio.Reader) {
	t.Helper()
	ps := startParkServer(t, lim, 50*time.Millisecond)
	c, br := (&testServer{addr: ps.addr}).dial(t)
	getOK(t, c, br, "/a")
	waitFor(t, "the connection to park", func() bool { return ps.parkedCount() == 1 })
	return ps, c, br
}

func TestParkedConnectionIdleTimeout(t *testing.T) {
	lim := defaultLimits()
	lim.IdleTimeout = 400 * time.Millisecond
	start := time.Now()
	ps, c, br := parkedClient(t, lim)
	expectClosed(t, c, br)
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("parked connection closed after %v, want about 400ms", d)
	}
	waitFor(t, "done", func() bool { return ps.ended.Load() == 1 })
}

func TestParkedConnectionDrain(t *testing.T) {
	ps, c, br := parkedClient(t, defaultLimits())
	ps.mu.Lock()
	var drained []bool
	for _, st := range ps.conns {
		drained = append(drained, st.Drain())
	}
	ps.mu.Unlock()
	if len(drained) != 1 || !drained[0] {
		t.Fatalf("Drain of a parked connection: %v, want [true] (it is idle)", drained)
	}
	// Unlike an owner, which would close it now, this one leaves it to the
	// connection's own goroutine.
	expectClosed(t, c, br)
	waitFor(t, "done", func() bool { return ps.ended.Load() == 1 })
}

func TestParkedConnectionClosedByItsOwner(t *testing.T) {
	// An owner that closes a parked connection without Drain (a forced
	// shutdown) still gets done, at the next sweep.
	ps, c, br := parkedClient(t, defaultLimits())
	ps.mu.Lock()
	for nc := range ps.conns {
		nc.Close()
	}
	ps.mu.Unlock()
	waitFor(t, "done", func() bool { return ps.ended.Load() == 1 })
	expectClosed(t, c, br)
	waitFor(t, "the parker to retire", func() bool {
		ps.srv.parkMu.Lock()
		defer ps.srv.parkMu.Unlock()
		return ps.srv.parker == nil
	})
}

func TestParkedConnectionsHaveNoGoroutines(t *testing.T) {
	const conns = 200
	ps := startParkServer(t, defaultLimits(), 50*time.Millisecond)
	base := runtime.NumGoroutine()
	open := make([]net.Conn, 0, conns)
	brs := make([]*bufio.Reader, 0, conns)
	for range conns {
		c, br := (&testServer{addr: ps.addr}).dial(t)
		getOK(t, c, br, "/a")
		open, brs = append(open, c), append(brs, br)
	}
	waitFor(t, "every connection to park", func() bool { return ps.parkedCount() == conns })
	if n := runtime.NumGoroutine() - base; n > 10 {
		t.Errorf("%d goroutines more with %d parked connections", n, conns)
	}
	for i, c := range open {
		getOK(t, c, brs[i], "/again")
	}
}

func TestParkingUnderChurn(t *testing.T) {
	// Requests come around the moment their connection parks: each must be
	// answered once, in order, whoever wins the race.
	lim := defaultLimits()
	lim.IdleTimeout = 2 * time.Second
	ps := startParkServer(t, lim, 10*time.Millisecond)
	var wg sync.WaitGroup
	conns := make([]net.Conn, 20)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", ps.addr)
			if err != nil {
				t.Error(err)
				return
			}
			conns[w] = c
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for i := range 25 {
				time.Sleep(time.Duration(rand.IntN(20000)) * time.Microsecond)
				path := "/" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
				if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
					t.Error(err)
					return
				}
				if body, err := readResp(br); err != nil || body != path {
					t.Errorf("got %q %v for %s", body, err, path)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := ps.ended.Load(); n != 0 {
		t.Fatalf("done ran %d times while every client was connected", n)
	}
}

func TestParkedIdleTimeoutWhileOthersWake(t *testing.T) {
	// Wake-ups coming more often than the sweep interval must not put the
	// sweep off: a parked connection still closes at its idle timeout.
	lim := defaultLimits()
	lim.IdleTimeout = 300 * time.Millisecond
	ps := startParkServer(t, lim, 50*time.Millisecond)
	idle, ibr := (&testServer{addr: ps.addr}).dial(t)
	getOK(t, idle, ibr, "/idle")
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 5 {
		c, br := (&testServer{addr: ps.addr}).dial(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each parks (idle 80 ms > 50 ms) and wakes every 80 ms,
			// 16 ms apart from the next: a wake-up every 16 ms.
			time.Sleep(time.Duration(w) * 16 * time.Millisecond)
			tick := time.NewTicker(80 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := io.WriteString(c, "GET /busy HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
					t.Error(err)
					return
				}
				if resp, err := readResp(br); err != nil || resp != "/busy" {
					t.Errorf("busy: %q %v", resp, err)
					return
				}
			}
		}()
	}
	idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := ibr.ReadByte()
	close(stop)
	wg.Wait()
	if err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF at its idle timeout", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("idle connection closed after %v, want about 300ms", d)
	}
}

// readResp is readResponse for a client goroutine, which may not call
// t.Fatal: it returns the body of a 200 answer, or an error.
func readResp(br *bufio.Reader) (string, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(body), err
}

func TestParkingRacesTheIdleTimeout(t *testing.T) {
	// An idle timeout just past ParkAfter: the sweep may take a connection
	// the moment it parks, while clients come and go. Each connection's
	// done must run once (startParkServer counts).
	lim := defaultLimits()
	lim.IdleTimeout = 2*time.Millisecond + 100*time.Microsecond
	ps := startParkServer(t, lim, 2*time.Millisecond)
	stop := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for time.Now().Before(stop) {
				c, err := net.Dial("tcp", ps.addr)
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	waitFor(t, "every connection to end", func() bool {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		return len(ps.conns) == 0
	})
}
