package h1

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// sock is what a connection's buffered reader reads from (and a backend
// connection's buffered writer writes to): the net.Conn, or, while the
// connection's goroutine runs inside syscall.RawConn.Read, the socket itself
// through read(2) and write(2).
//
// Why: net.Conn.Read resets the poller's readiness notice and tries read(2)
// before it parks, so on a keep-alive connection every request costs a read
// that fails with EAGAIN on each side of the proxy: the client has not sent
// its next request yet, the backend has not answered yet. Inside one
// RawConn.Read call the notice is not reset between reads, so after a short
// read (the kernel's buffer drained) the goroutine can park at once, as nginx
// does, and data that came in the meantime wakes it straight away. On the
// small-response benchmark those reads were two of six system calls per
// request.
type sock struct {
	nc net.Conn
	rc syscall.RawConn // nil when nc is not a plain TCP socket: never raw
	fd int
	// raw is set only by the connection's own goroutine, inside rc.Read.
	raw bool
	// drained: the last raw read found the kernel's buffer empty (EAGAIN,
	// or fewer bytes than asked for), so waiting need not read first.
	drained bool
}

// errAgain is a raw read that found nothing: the caller parks and retries.
var errAgain = errors.New("h1: socket would block")

func (s *sock) init(nc net.Conn) {
	s.nc, s.rc, s.raw, s.drained = nc, nil, false, false
	if tc, ok := nc.(*net.TCPConn); ok {
		s.rc, _ = tc.SyscallConn()
	}
}

func (s *sock) Read(p []byte) (int, error) {
	if !s.raw {
		return s.nc.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := rawIO(syscall.SYS_READ, s.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			s.drained = true
			return 0, errAgain
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0:
			return 0, io.EOF
		}
		s.drained = n < len(p)
		return n, nil
	}
}

// rawIO is read(2) or write(2) on a non-blocking socket without telling
// the scheduler: such a call never blocks, and one announced as a system
// call lets the runtime's monitor thread, which wakes every 20µs while it
// finds a processor in a system call, hand that processor to another
// thread. Under load that monitor took a tenth of the proxy's CPU time.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Write writes what the kernel takes at once, and leaves the rest to
// nc.Write, which waits for room under the connection's write deadline.
func (s *sock) Write(p []byte) (int, error) {
	if !s.raw {
		return s.nc.Write(p)
	}
	n := 0
	for n < len(p) {
		m, err := rawIO(syscall.SYS_WRITE, s.fd, p[n:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			break
		}
		if err != nil {
			return n, os.NewSyscallError("write", err)
		}
		n += m
	}
	if n < len(p) {
		m, err := s.nc.Write(p[n:])
		return n + m, err
	}
	return n, nil
}
