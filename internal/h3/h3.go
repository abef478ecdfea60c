// Package h3 serves HTTP/3 over QUIC with github.com/quic-go/quic-go/http3
// and hands every request to the same handler as the other engines, through
// the net/http adapter of package h2.
package h3

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
	"github.com/gatehouse-proxy/gatehouse/internal/h2"
)

// Limits bound what one client may do.
type Limits struct {
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	MaxHeaderBytes   int
	MaxStreams       int64 // concurrent request streams per connection; default 250
}

// Server is HTTP/3 on one UDP socket.
type Server struct {
	srv  *http3.Server
	pc   net.PacketConn
	done chan struct{}
}

// Listen opens addr (UDP) and serves HTTP/3 on it with the certificates
// and policy of tlsConf (whose NextProtos are replaced by h3).
func Listen(addr string, tlsConf *tls.Config, handler h1.Handler, l Limits) (*Server, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	if l.MaxStreams <= 0 {
		l.MaxStreams = 250
	}
	s := &Server{pc: pc, done: make(chan struct{})}
	s.srv = &http3.Server{
		TLSConfig: tlsConf,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var info *exchange.TLSInfo
			if r.TLS != nil {
				info = exchange.NewTLSInfo(*r.TLS)
			}
			h2.ServeHTTP(handler, w, r, info)
		}),
		MaxHeaderBytes: l.MaxHeaderBytes,
		IdleTimeout:    l.IdleTimeout,
		QUICConfig: &quic.Config{
			HandshakeIdleTimeout: l.HandshakeTimeout,
			MaxIdleTimeout:       l.IdleTimeout,
			MaxIncomingStreams:   l.MaxStreams,
		},
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(pc)
	}()
	return s, nil
}

// Addr is the UDP address served.
func (s *Server) Addr() net.Addr { return s.pc.LocalAddr() }

// Shutdown stops new requests, lets running ones finish until ctx ends,
// then closes the socket.
func (s *Server) Shutdown(ctx context.Context) {
	s.srv.Shutdown(ctx)
	s.srv.Close()
	s.pc.Close()
	<-s.done
}
