package proxyproto

import (
	"io"
	"net"
	"net/netip"
	"syscall"
)

// Read reads the PROXY header that must open c and consumes exactly its
// bytes, so that what follows (HTTP, TLS) is left for the next reader. The
// caller bounds the wait with a read deadline on c. On a socket the header
// is peeked (MSG_PEEK) until complete and then read in one go; on other
// connections it is read a byte at a time.
func Read(c net.Conn) (Header, error) {
	var buf [v1Max]byte
	var n, have int
	var err error
	if sc, ok := c.(syscall.Conn); ok {
		n, have, err = peekHeader(sc, buf[:])
	} else {
		n, have, err = readHeader(c, buf[:])
	}
	if err != nil {
		return Header{}, err
	}
	var full []byte
	if n <= len(buf) {
		full = buf[:n]
	} else {
		full = make([]byte, n) // a v2 header with many TLVs
		copy(full, buf[:have])
	}
	if _, err := io.ReadFull(c, full[have:]); err != nil {
		return Header{}, err
	}
	h, m, err := Parse(full)
	if err == nil && m != n {
		err = errBad
	}
	return h, err
}

// peekHeader looks at the socket's waiting bytes without taking them until
// they hold enough to know the header's length. Bytes of a header that is
// not complete yet are all the header's, so they are taken (a peek would
// see them again and miss an end of stream behind them). It returns the
// header's length and how many of its bytes are in buf already.
func peekHeader(sc syscall.Conn, buf []byte) (need, have int, err error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			m, _, e := syscall.Recvfrom(int(fd), buf[have:], syscall.MSG_PEEK)
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return false
			case e != nil:
				perr = e
				return true
			case m == 0:
				perr = io.ErrUnexpectedEOF
				return true
			}
			var ok bool
			if need, ok, perr = Need(buf[:have+m]); ok {
				return true
			}
			if m, _, e = syscall.Recvfrom(int(fd), buf[have:have+m], 0); e != nil {
				perr = e
				return true
			}
			have += m
		}
	})
	if err == nil {
		err = perr
	}
	return need, have, err
}

// readHeader reads a byte at a time (never past the header) until the
// header's length is known; it returns that length and how many of its
// bytes are in buf already.
func readHeader(c net.Conn, buf []byte) (need, have int, err error) {
	for have < len(buf) {
		if _, err := io.ReadFull(c, buf[have:have+1]); err != nil {
			return 0, 0, err
		}
		have++
		if need, ok, err := Need(buf[:have]); ok {
			return need, have, err
		}
	}
	return 0, 0, errBad
}

// Conn is a connection whose client address came from a PROXY header.
type Conn struct {
	*net.TCPConn
	remote, local net.Addr
}

// NewConn wraps c to report h's addresses.
func NewConn(c *net.TCPConn, h Header) *Conn {
	return &Conn{TCPConn: c, remote: tcpAddr(h.Source), local: tcpAddr(h.Dest)}
}

func tcpAddr(ap netip.AddrPort) net.Addr { return net.TCPAddrFromAddrPort(ap) }

// RemoteAddr is the client the header named.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr is the address the client connected to, as the header says.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// TCP is the socket underneath, for splice(2).
func (c *Conn) TCP() *net.TCPConn { return c.TCPConn }
