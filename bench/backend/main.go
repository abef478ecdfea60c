// Command backend is the tiny origin server used by bench/compare.sh.
//
// It serves two fixed bodies over HTTP/1.1 with keep-alive:
//
//	/small  100 bytes
//	/large  100 KiB (102400 bytes)
//	/1k     1 KiB (the cache-hit scenario of MODES=cache)
//
// Bodies and headers are pre-built once at start-up so the backend spends as
// little CPU as possible per request (it shares the machine with wrk and the
// proxy under test).
package main

import (
	"bytes"
	"flag"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"
)

func makeBody(n int) []byte {
	const pattern = "gatehouse-bench-0123456789abcdefghijklmnopqrstuvwxyz\n"
	b := bytes.Repeat([]byte(pattern), n/len(pattern)+1)
	return b[:n]
}

type fixed struct {
	body   []byte
	length []string
	ctype  []string
}

func newFixed(n int) *fixed {
	return &fixed{
		body:   makeBody(n),
		length: []string{strconv.Itoa(n)},
		ctype:  []string{"text/plain"},
	}
}

func (f *fixed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Assigning the pre-built slices directly avoids canonicalisation and
	// allocation in Header.Set.
	h["Content-Type"] = f.ctype
	h["Content-Length"] = f.length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(f.body)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	flag.Parse()

	mux := http.NewServeMux()
	mux.Handle("/small", newFixed(100))
	mux.Handle("/large", newFixed(100*1024))
	mux.Handle("/1k", newFixed(1024))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("backend: listen %s: %v", *listen, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Avoid h2c or other upgrades: this is a plain HTTP/1.1 origin.
	}
	log.Printf("backend: listening on %s", ln.Addr())
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatalf("backend: %v", err)
	}
}
