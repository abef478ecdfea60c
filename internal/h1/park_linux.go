package h1

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A keep-alive connection that has waited ParkAfter for its next request is
// parked: its goroutine ends, its conn goes back to the pool, and an epoll
// instance of the Server's watches the socket. When bytes (or the client's
// FIN) come, a new goroutine takes the connection up again. A parked
// connection costs a small record instead of a goroutine stack and a conn:
// bench/compare.sh MODES=idle measured 2.9 KB per idle connection, against
// 22 KB before parking and buffer release (nginx: 0.5 KB). Go has no "call
// me when readable" for a net.Conn (golang/go#15735). Connections idle for
// less than ParkAfter, as on any busy keep-alive connection, never get here.
//
// The epoll instance is itself in Go's poller, so its goroutine parks like
// one on a socket. It also closes parked connections whose idle timeout has
// passed, and retires once none is left.

const canPark = true

// sweepEvery (or ParkAfter when shorter) bounds how late a parked
// connection's idle timeout is seen, and how soon one its owner closed is
// let go.
const sweepEvery = time.Second

type parker struct {
	srv  *Server
	f    *os.File // the epoll instance (f.Fd would make it blocking)
	epfd int
	rc   syscall.RawConn

	mu      sync.Mutex
	slots   []*parked // a slot's index and generation are the epoll token
	gens    []uint32
	free    []int32
	n       int
	retired bool

	// Used by the loop's goroutine only.
	events [64]syscall.EpollEvent
	ready  []*parked
}

// parked is a connection waiting in the parker.
type parked struct {
	p     *parker
	nc    net.Conn
	rc    syscall.RawConn
	st    *ConnState
	done  func()
	until time.Time // its idle timeout ends; zero: never
	slot  int32
	gen   uint32
	// taken is set by whichever of readiness, Drain, the sweep or a failed
	// park gets to the connection first; only that one acts on it.
	taken atomic.Bool
}

// parkerFor returns the Server's parker, starting one when there is none.
func (s *Server) parkerFor() (*parker, error) {
	s.parkMu.Lock()
	defer s.parkMu.Unlock()
	if s.parker != nil {
		return s.parker, nil
	}
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that os.NewFile puts it in Go's poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	p := &parker{srv: s, epfd: fd, f: os.NewFile(uintptr(fd), "h1-idle-epoll")}
	if p.rc, err = p.f.SyscallConn(); err != nil {
		p.f.Close()
		return nil, err
	}
	s.parker = p
	go p.loop()
	return p, nil
}

// Parked is how many of the Server's connections are parked now.
func (s *Server) Parked() int {
	s.parkMu.Lock()
	p := s.parker
	s.parkMu.Unlock()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// park hands the idle connection nc to the parker. It reports false when
// the connection must stay with its goroutine (no epoll here, or nc closed).
func (s *Server) park(nc net.Conn, rc syscall.RawConn, st *ConnState, done func(), until time.Time) bool {
	// A deadline passing while parked would fail the first read or write
	// after it; the new goroutine sets its own.
	if nc.SetDeadline(time.Time{}) != nil {
		return false
	}
	e := &parked{nc: nc, rc: rc, st: st, done: done, until: until}
	for {
		p, err := s.parkerFor()
		if err != nil {
			if !s.parkWarned.Swap(true) {
				s.Log.Warn("idle connections keep their goroutines", "err", err)
			}
			return false
		}
		p.mu.Lock()
		if p.retired {
			p.mu.Unlock()
			continue
		}
		// Under p.mu from the slot to st.parked: the loop, the sweep and
		// retire never see a connection half parked.
		ok := p.add(e)
		p.mu.Unlock()
		if !ok {
			return false
		}
		// Drain sets draining before it looks for a parked connection, and
		// add stores before this looks at draining: one of the two sees
		// the other.
		if st.draining.Load() {
			p.wake(e)
		}
		return true
	}
}

// add puts e in a free slot and in the epoll set; p.mu is held. It
// reports false, having undone the slot, when epoll refuses the socket.
func (p *parker) add(e *parked) bool {
	if k := len(p.free); k > 0 {
		e.slot = p.free[k-1]
		p.free = p.free[:k-1]
	} else {
		e.slot = int32(len(p.slots))
		p.slots = append(p.slots, nil)
		p.gens = append(p.gens, 0)
	}
	p.gens[e.slot]++
	e.p, e.gen = p, p.gens[e.slot]
	var ctlErr error
	err := e.rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{
			Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
			Fd:     e.slot, Pad: int32(e.gen),
		}
		ctlErr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil || ctlErr != nil {
		// ENOSPC (fs.epoll.max_user_watches) or ENOMEM, or nc closed.
		p.free = append(p.free, e.slot)
		return false
	}
	p.slots[e.slot] = e
	p.n++
	e.st.parked.Store(e)
	return true
}

func (p *parker) remove(e *parked) {
	p.mu.Lock()
	if p.slots[e.slot] == e {
		p.slots[e.slot] = nil
		p.free = append(p.free, e.slot)
		p.n--
	}
	p.mu.Unlock()
}

// take claims e for the caller and takes it out of the epoll set and the
// slots; it reports false when somebody else got to e first.
func (p *parker) take(e *parked) bool {
	if !e.taken.CompareAndSwap(false, true) {
		return false
	}
	// A closed connection has left the epoll set with its descriptor:
	// Control then fails, and there is nothing to delete.
	e.rc.Control(func(fd uintptr) {
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
	e.st.parked.CompareAndSwap(e, nil)
	p.remove(e)
	return true
}

// wake gives e a goroutine again (one that only closes it when the
// connection is draining: see resume).
func (p *parker) wake(e *parked) {
	if p.take(e) {
		go p.srv.resume(e.nc, e.st, e.done)
	}
}

// expire closes e: its idle timeout passed, or its owner closed it.
func (p *parker) expire(e *parked) {
	if p.take(e) {
		e.nc.Close()
		e.done()
	}
}

func (p *parker) loop() {
	collect := p.collect
	every := min(sweepEvery, p.srv.parkAfter())
	// The sweep keeps its pace however often connections wake.
	next := time.Now().Add(every)
	for {
		p.f.SetReadDeadline(next)
		err := p.rc.Read(collect)
		for i, e := range p.ready {
			p.wake(e)
			p.ready[i] = nil
		}
		p.ready = p.ready[:0]
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// Nothing but retiring closes the epoll instance: this is not
			// expected, and closing idle connections is always allowed.
			p.srv.Log.Error("idle connection poller failed: closing parked connections", "err", err)
			p.retire(true)
			return
		}
		if now := time.Now(); !now.Before(next) {
			if p.sweep() {
				return
			}
			next = now.Add(every)
		}
	}
}

// collect is the loop's RawConn.Read callback: it takes every readiness
// event waiting, and asks to park when there was none.
func (p *parker) collect(fd uintptr) bool {
	for {
		n, err := syscall.EpollWait(int(fd), p.events[:], 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		p.mu.Lock()
		for _, ev := range p.events[:n] {
			if int(ev.Fd) < len(p.slots) {
				if e := p.slots[ev.Fd]; e != nil && e.gen == uint32(ev.Pad) {
					p.ready = append(p.ready, e)
				}
			}
		}
		p.mu.Unlock()
		if n < len(p.events) {
			break
		}
	}
	return len(p.ready) > 0
}

// sweep closes the parked connections whose idle timeout has passed or
// whose owner has closed them, and retires the parker when it holds none.
func (p *parker) sweep() (retired bool) {
	now := time.Now()
	var out []*parked
	p.mu.Lock()
	for _, e := range p.slots {
		if e == nil {
			continue
		}
		if !e.until.IsZero() && !now.Before(e.until) || e.rc.Control(func(uintptr) {}) != nil {
			out = append(out, e)
		}
	}
	p.mu.Unlock()
	for _, e := range out {
		p.expire(e)
	}
	return p.retire(false)
}

// retire closes the epoll instance once no connection is parked (with all,
// after closing those that are); a later park starts a new parker.
func (p *parker) retire(all bool) bool {
	p.srv.parkMu.Lock()
	defer p.srv.parkMu.Unlock()
	for {
		p.mu.Lock()
		if p.n == 0 {
			break
		}
		if !all {
			p.mu.Unlock()
			return false
		}
		var rest []*parked
		for _, e := range p.slots {
			if e != nil {
				rest = append(rest, e)
			}
		}
		p.mu.Unlock()
		for _, e := range rest {
			p.expire(e)
		}
	}
	defer p.mu.Unlock()
	p.retired = true
	p.srv.parker = nil
	p.f.Close()
	return true
}
