// Command backend is the tiny origin server used by bench/compare.sh.
//
// It serves two fixed bodies over HTTP/1.1 with keep-alive:
//
//	/small  100 bytes
//	/large  100 KiB (102400 bytes)
//	/text   64 KiB of JSON records (65536 bytes), for the compression run:
//	        random common words, which gzip shrinks about 3:1 like a real
//	        API answer (the /large pattern would shrink 100:1)
//
// Bodies and headers are pre-built once at start-up so the backend spends as
// little CPU as possible per request (it shares the machine with wrk and the
// proxy under test).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
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

// makeRecords returns n bytes of JSON lines made of random common words,
// the same on every run (fixed seed).
func makeRecords(n int) []byte {
	words := strings.Fields(`the of and to in is was that for on it with as his he be by at are from this had not or
have an they which one you were her all she there would their we him been has when who will more no if out so said
what up its about into than them can only other new some could time these two may then do first any my now such like
our over man me even most made after also did many before must through back years where much your way well down
request response server client proxy cache header body status error value system user account order payment invoice`)
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for id := 0; b.Len() < n; id++ {
		fmt.Fprintf(&b, `{"id":%d,"user":"%s_%d","score":%d.%02d,"text":"`, id,
			words[r.IntN(len(words))], r.IntN(10000), r.IntN(1000), r.IntN(100))
		for range 8 + r.IntN(24) {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString("\"}\n")
	}
	return b.Bytes()[:n]
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
	text := newFixed(64 * 1024)
	text.body, text.ctype = makeRecords(64*1024), []string{"application/json"}
	mux.Handle("/text", text)
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
