package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"testing"
)

// h2load (nghttp2's load generator) over TLS: HTTP/2 with many streams per
// connection, and HTTP/1.1 (--h1); every request must succeed.
func TestH2Load(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	be := echoBackend(t, "app")
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    tls: {certificates: [%s]}
access_log: {enabled: false}
upstreams:
  app: {targets: [%s]}
sites: [{routes: [{upstream: app}]}]
`, f.cert(t, "a", "127.0.0.1"), be.URL))
	for _, args := range [][]string{
		{"-n", "2000", "-c", "4", "-m", "16"},
		{"--h1", "-n", "1000", "-c", "4"},
	} {
		out, err := exec.Command("h2load", append(args, "https://"+gh.Addr()+"/load")...).CombinedOutput()
		m := regexp.MustCompile(`requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`).FindSubmatch(out)
		if err != nil || m == nil || string(m[1]) != string(m[3]) || string(m[4]) != "0" || string(m[5]) != "0" {
			t.Fatalf("h2load %v: %v\n%s", args, err, out)
		}
		if proto := regexp.MustCompile(`Application protocol: (\S+)`).FindSubmatch(out); proto == nil ||
			string(proto[1]) != map[bool]string{true: "http/1.1", false: "h2"}[args[0] == "--h1"] {
			t.Errorf("h2load %v: protocol %q", args, proto)
		}
	}
}
