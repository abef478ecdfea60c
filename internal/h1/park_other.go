//go:build !linux

package h1

import (
	"net"
	"syscall"
	"time"
)

// Parking idle connections needs epoll (park_linux.go); elsewhere they keep
// their goroutines.

const canPark = false

type parker struct{}

type parked struct{ p *parker }

func (p *parker) wake(*parked) {}

// Parked is how many of the Server's connections are parked: none here.
func (s *Server) Parked() int { return 0 }

func (s *Server) park(net.Conn, syscall.RawConn, *ConnState, func(), time.Time) bool { return false }
