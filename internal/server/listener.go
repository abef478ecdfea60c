package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/h2"
)

// listener is one open address and the connections it accepted.
type listener struct {
	addr string
	h2c  bool
	ln   net.Listener
	srv  atomic.Pointer[h1.Server]
	h2s  atomic.Pointer[h2.Server]
	tls  atomic.Pointer[tlsServing] // nil: plaintext
	// guard holds the connection limits and PROXY protocol (protect.go).
	guard   *guard
	stopped atomic.Bool

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
	wg    sync.WaitGroup
}

type trackedConn struct {
	nc    net.Conn
	state h1.ConnState
}

func (s *Server) newListener(lc config.Listener, cfg *config.Config) (*listener, error) {
	ln, err := net.Listen("tcp", lc.Addr)
	if err != nil {
		return nil, err
	}
	l := &listener{addr: lc.Addr, h2c: lc.H2C, ln: ln, conns: map[*trackedConn]struct{}{}, guard: newGuard(lc)}
	l.setH2C(s, lc.H2C)
	if err := l.updateTLS(s, lc, cfg); err != nil {
		ln.Close()
		return nil, err
	}
	go l.accept(s)
	s.log.Info("listening", "addr", ln.Addr().String(), "h2c", lc.H2C, "tls", lc.TLS != nil)
	return l, nil
}

func (l *listener) accept(s *Server) {
	var delay time.Duration
	for {
		if !l.waitForRoom() {
			return
		}
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed", "addr", l.addr, "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		l.guard.open.Add(1)
		tcn := &trackedConn{nc: nc}
		l.mu.Lock()
		l.conns[tcn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			gone := func() {
				l.mu.Lock()
				delete(l.conns, tcn)
				l.mu.Unlock()
				l.guard.closed()
				l.wg.Done()
			}
			c, key, ok := l.guard.admit(nc, s.snap.Load().Limits.ReadHeaderTimeout)
			if !ok {
				nc.Close()
				gone()
				return
			}
			if ts := l.tls.Load(); ts != nil {
				ts.serve(c, &tcn.state)
				l.guard.release(key)
				gone()
				return
			}
			// A connection idle for long is parked without this goroutine:
			// the bookkeeping then happens when it ends.
			l.srv.Load().ServeConnParkable(c, &tcn.state, func() {
				l.guard.release(key)
				gone()
			})
		}()
	}
}

func (l *listener) stopAccepting() { l.stopped.Store(true); l.ln.Close() }

// drain closes idle connections now and busy ones after their response;
// what is still open when ctx ends is closed.
func (l *listener) drain(ctx context.Context) {
	if ts := l.tls.Swap(nil); ts != nil {
		go ts.close(ctx, true)
	}
	if h2s := l.h2s.Load(); h2s != nil {
		go h2s.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		l.mu.Lock()
		for c := range l.conns {
			if c.state.Drain() {
				c.nc.Close()
			}
		}
		l.mu.Unlock()
		select {
		case <-done:
			return
		case <-ctx.Done():
			l.mu.Lock()
			for c := range l.conns {
				c.state.Drain() // a parked connection gets a goroutine to end on
				c.nc.Close()
			}
			l.mu.Unlock()
			<-done
			return
		case <-tick.C:
		}
	}
}

// openNewListeners opens the addresses cfg has and we do not.
func (s *Server) openNewListeners(cfg *config.Config) error {
	var opened []*listener
	for _, lc := range cfg.Listeners {
		if cur, ok := s.listeners[lc.Addr]; ok {
			cur.guard.configure(lc)
			if err := cur.updateTLS(s, lc, cfg); err != nil {
				return err
			}
		}
		if cur, ok := s.listeners[lc.Addr]; ok && cur.h2c == lc.H2C {
			continue
		}
		if cur, ok := s.listeners[lc.Addr]; ok {
			// Same address, new protocol settings: switch in place.
			cur.setH2C(s, lc.H2C)
			continue
		}
		l, err := s.newListener(lc, cfg)
		if err != nil {
			for _, o := range opened {
				o.stopAccepting()
				o.closeTLS()
			}
			return err
		}
		opened = append(opened, l)
	}
	for _, l := range opened {
		s.listeners[l.addr] = l
	}
	return nil
}

func (l *listener) setH2C(s *Server, on bool) {
	l.h2c = on
	handler := &guardedHandler{s: s, g: l.guard}
	srv := &h1.Server{
		Handler: handler,
		Limits:  func() *h1.Limits { return &s.snap.Load().Limits },
		Log:     s.log,
	}
	if on {
		h2s := h2.New(handler, false, s.snap.Load().Limits.IdleTimeout)
		h2s.SetWriteTimeout(s.snap.Load().Limits.WriteTimeout)
		srv.H2C = h2s.ServeConn
		l.h2s.Store(h2s)
	}
	l.srv.Store(srv)
}

// closeRemovedListeners stops addresses cfg no longer has, letting their
// connections finish what they are doing.
func (s *Server) closeRemovedListeners(cfg *config.Config) {
	keep := map[string]bool{}
	for _, lc := range cfg.Listeners {
		keep[lc.Addr] = true
	}
	for addr, l := range s.listeners {
		if keep[addr] {
			continue
		}
		delete(s.listeners, addr)
		l.stopAccepting()
		s.log.Info("listener closed", "addr", addr)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), s.snap.Load().Config.ShutdownTimeout)
			defer cancel()
			l.drain(ctx)
		}()
	}
}

func (s *Server) closeListeners(m map[string]*listener) {
	for _, l := range m {
		l.stopAccepting()
	}
}
