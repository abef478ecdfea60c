// Command idleconns is the client of bench/compare.sh's MODES=idle: it opens
// -n keep-alive connections to a proxy on loopback, one after the other at
// -rate a second as clients arrive, sends one GET on each and reads its
// answer, then keeps them all open and silent so that the proxy's memory per
// idle connection can be measured.
//
// It touches the file named by -ready once every connection has been
// answered, and exits after -hold (or on SIGTERM), closing them.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "", "proxy address, host:port on loopback")
	n := flag.Int("n", 2000, "connections to open")
	path := flag.String("path", "/small", "path to GET on each connection")
	hold := flag.Duration("hold", 30*time.Second, "how long to keep the connections open")
	ready := flag.String("ready", "", "file to create once every connection has been answered")
	rate := flag.Int("rate", 0, "new connections a second (0: as fast as they are answered)")
	flag.Parse()
	if err := run(*addr, *n, *rate, *path, *hold, *ready); err != nil {
		log.Fatal("idleconns: ", err)
	}
}

func run(addr string, n, rate int, path string, hold time.Duration, ready string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	// Benchmarks send traffic only to this machine.
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: not a loopback address", addr)
	}
	if n < 1 || n > 50000 || rate < 0 || hold <= 0 || hold > 10*time.Minute {
		return fmt.Errorf("-n must be 1..50000, -rate not negative and -hold within 10m")
	}
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for i := range n {
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		conns = append(conns, c)
		if err := exchange(c, req); err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
	}
	if ready != "" {
		if err := os.WriteFile(ready, []byte(fmt.Sprintln(n)), 0o644); err != nil {
			return err
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case <-time.After(hold):
	}
	return nil
}

// exchange sends one request and reads its whole answer, which must be a
// keep-alive 200.
func exchange(c net.Conn, req []byte) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(req); err != nil {
		return err
	}
	// The reader is dropped afterwards: no bytes may follow the answer.
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != 200 || resp.Close {
		return fmt.Errorf("answer %s, close %v: want a keep-alive 200", resp.Status, resp.Close)
	}
	return nil
}
