package main

import (
	_ "embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
)

//go:embed demo.yaml
var demoConfig string

// cmdDemo starts two small backends that name themselves, and gatehouse in
// front of them with the embedded demo configuration.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "gatehouse demo takes no arguments")
		return 2
	}
	var addrs []string
	for _, name := range []string{"demo-backend-1", "demo-backend-2"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(stderr, "demo backend:", err)
			return 1
		}
		addrs = append(addrs, ln.Addr().String())
		go http.Serve(ln, demoBackend(name))
	}
	text := strings.NewReplacer("{backend1}", addrs[0], "{backend2}", addrs[1]).Replace(demoConfig)
	cfg, err := config.Parse("(demo)", []byte(text))
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, `gatehouse demo
  proxy:     http://127.0.0.1:8080/         round robin over the two demo backends (try it twice)
  hello:     http://127.0.0.1:8080/hello    answered by gatehouse itself
  old:       http://127.0.0.1:8080/old      a redirect
  admin:     http://127.0.0.1:9901/healthz  and /api/v1/upstreams
  backends:  http://%s and http://%s
  stop with Ctrl-C
`, addrs[0], addrs[1])
	return serve(cfg, func() (*config.Config, error) { return cfg, nil }, false, "", newLogger(stderr))
}

func demoBackend(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello from %s: %s %s (X-Forwarded-For: %s)\n", name, r.Method, r.URL.RequestURI(), r.Header.Get("X-Forwarded-For"))
	})
}
