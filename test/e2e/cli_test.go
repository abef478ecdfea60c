package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runCLI runs the binary to completion (10 s at most) and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ghBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %v did not finish within 10s", args)
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("gatehouse %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateGoodConfig(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "good.yaml", `listeners:
  - addr: 127.0.0.1:18080
admin: {addr: 127.0.0.1:19901}
trusted_proxies: [10.0.0.0/8]
shutdown_timeout: 5s
limits: {read_header_timeout: 2s, max_header_bytes: 32KiB, max_body_bytes: 10MiB}
upstreams:
  app:
    targets: ["http://127.0.0.1:9001", {url: "http://127.0.0.1:9002", weight: 3}]
    timeouts: {connect: 1s, response_header: 10s}
sites:
  - hosts: [example.test, "*.example.test"]
    routes:
      - match: {path_prefix: /api/, methods: [GET, POST]}
        strip_prefix: /api
        upstream: app
      - match: {path: /ping}
        respond: {status: 200, body: "pong\n"}
      - match: {path_regex: '^/old/'}
        redirect: {to: "https://{host}{uri}", status: 308}
`)
	code, stdout, stderr := runCLI(t, "validate", "-c", p)
	if code != 0 {
		t.Errorf("validate of a good file: exit %d, want 0\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

func TestValidateBadConfigReportsEveryError(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "bad.yaml", `listeners:
  - addr: 127.0.0.1:18080
shutdown_timeout: 5 parsecs
trusted_proxies: [10.0.0.0/33]
bogus: true
upstreams:
  app:
    targets: ["http://127.0.0.1:9001"]
sites:
  - routes:
      - match: {path_prefix: /}
        upstream: nosuch
`)
	code, _, stderr := runCLI(t, "validate", "-c", p)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, e := range []struct {
		line int
		word string
	}{{3, "shutdown_timeout"}, {4, "trusted_proxies"}, {5, "bogus"}, {12, "upstream"}} {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(p) + fmt.Sprintf(`:%d:\d+: .*%s`, e.line, e.word))
		if !re.MatchString(stderr) {
			t.Errorf("no error line %s:%d:COL: …%s… in stderr:\n%s", p, e.line, e.word, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, "version")
	if code != 0 || strings.TrimSpace(stdout) == "" {
		t.Errorf("version: exit %d, stdout %q, stderr %q; want 0 and a version on stdout", code, stdout, stderr)
	}
}

func TestProxyCommandRoundRobin(t *testing.T) {
	t.Parallel()
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	listen := freeAddr(t)
	p := newProc(t, "")
	if err := p.start([]string{"proxy", "--listen", listen, "--to", a.URL, "--to", b.URL}, listen, ""); err != nil {
		t.Fatalf("proxy did not start: %v\n%s", err, p.stderr.String())
	}
	c := newClient(t)
	var names []string
	for i := 0; i < 4; i++ {
		req, _ := newGet("http://" + listen + "/x")
		_, s := doSeen(t, c, req)
		names = append(names, s.Name)
	}
	if names[0] == names[1] || names[0] != names[2] || names[1] != names[3] {
		t.Errorf("proxy --to a --to b answered from %v, want alternating", names)
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:9901"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("demo needs %s, which is taken on this machine: %v", addr, err)
		}
		l.Close()
	}
	p := newProc(t, "")
	if err := p.start([]string{"demo"}, "127.0.0.1:8080", "127.0.0.1:9901"); err != nil {
		t.Fatalf("demo did not start: %v\nstdout: %s\nstderr: %s", err, p.stdout.String(), p.stderr.String())
	}
	c := newClient(t)
	var bodies []string
	for i := 0; i < 4; i++ {
		resp, body := do(t, c, "GET", "http://127.0.0.1:8080/", "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("demo answered %d %q", resp.StatusCode, body)
		}
		bodies = append(bodies, string(body))
	}
	if bodies[0] == bodies[1] || bodies[0] != bodies[2] || bodies[1] != bodies[3] {
		t.Errorf("demo replies do not alternate between two backends: %q", bodies)
	}
}
