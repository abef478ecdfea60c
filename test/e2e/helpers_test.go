// Package e2e holds black-box end-to-end tests: they build the gatehouse
// binary once, start it with configurations written by each test, and talk to
// it over loopback only, with real backends started in the test.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ghBin is the gatehouse binary built by TestMain.
var ghBin string

// raceBuild is true when the binary was built with -race (GATEHOUSE_E2E_RACE=1);
// memory assertions are skipped then.
var raceBuild = os.Getenv("GATEHOUSE_E2E_RACE") == "1"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := 1
	if err := buildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building gatehouse failed:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildBinary(dir string) error {
	if bin := os.Getenv("GATEHOUSE_E2E_BIN"); bin != "" { // a prebuilt binary instead
		ghBin = bin
		return nil
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	ghBin = filepath.Join(dir, "gatehouse")
	args := []string{"build", "-o", ghBin}
	if raceBuild {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/gatehouse")
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// logBuf collects a process's output; safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// proc is one running gatehouse process.
type proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	cfgPath string
	ports   map[string]string // placeholder name -> 127.0.0.1:PORT
	stdout  *logBuf
	stderr  *logBuf
	done    chan struct{}
	exit    int // exit code, valid once done is closed (-1: killed by a signal)
}

var placeholderRE = regexp.MustCompile(`\{\{([A-Z0-9_]+)\}\}`)

// expand fills every {{NAME}} placeholder of tmpl with a free 127.0.0.1:PORT,
// the same one for the same name for the life of the process.
func (p *proc) expand(tmpl string) string {
	return placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[2 : len(m)-2]
		if _, ok := p.ports[name]; !ok {
			// The kernel may hand the same just-freed port out twice: the
			// placeholders of one process must differ.
			addr := freeAddr(p.t)
			for slices.Contains(slices.Collect(maps.Values(p.ports)), addr) {
				addr = freeAddr(p.t)
			}
			p.ports[name] = addr
		}
		return p.ports[name]
	})
}

// writeConfig expands tmpl and replaces the config file atomically (write + rename).
func (p *proc) writeConfig(tmpl string) {
	p.t.Helper()
	tmp := p.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(p.expand(tmpl)), 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, p.cfgPath); err != nil {
		p.t.Fatal(err)
	}
}

// Addr is the first listener ({{LISTEN}}); Port(name) any other placeholder.
func (p *proc) Addr() string            { return p.ports["LISTEN"] }
func (p *proc) Admin() string           { return p.ports["ADMIN"] }
func (p *proc) Port(name string) string { return p.ports[name] }
func (p *proc) URL(path string) string  { return "http://" + p.Addr() + path }
func (p *proc) Pid() int                { return p.cmd.Process.Pid }

// startGatehouse runs `gatehouse run -c FILE [extra...]` with tmpl expanded and
// waits until {{LISTEN}} accepts and, when the config has {{ADMIN}}, GET /healthz
// answers 200. It retries with new ports if one was taken in the meantime.
func startGatehouse(t testing.TB, tmpl string, extra ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		p := newProc(t, filepath.Join(dir, "gatehouse.yaml"))
		p.writeConfig(tmpl)
		args := append([]string{"run", "-c", p.cfgPath}, extra...)
		err := p.start(args, p.Addr(), p.Admin())
		if err == nil {
			return p
		}
		if attempt < 3 && strings.Contains(p.stderr.String(), "address already in use") {
			continue
		}
		t.Fatalf("gatehouse did not start: %v\nconfig:\n%s\nstderr:\n%s", err, p.expand(tmpl), p.stderr.String())
	}
}

func newProc(t testing.TB, cfgPath string) *proc {
	return &proc{t: t, cfgPath: cfgPath, ports: map[string]string{}, stdout: &logBuf{}, stderr: &logBuf{}, done: make(chan struct{})}
}

// start launches the binary with args and waits (10 s at most) until addr accepts
// TCP and, if admin is not empty, admin's /healthz answers 200.
func (p *proc) start(args []string, addr, admin string) error {
	p.cmd = exec.Command(ghBin, args...)
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() {
		p.cmd.Wait()
		p.exit = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	p.t.Cleanup(func() {
		p.stop()
		if p.t.Failed() {
			out := tail(p.stderr.String(), 8192)
			p.t.Logf("gatehouse %v stderr:\n%s", args, out)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("exited with code %d before it was ready", p.exit)
		default:
		}
		if ready(addr, admin) {
			return nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return errors.New("not ready after 10s")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func ready(addr, admin string) bool {
	if addr != "" {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	if admin != "" {
		cl := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: time.Second}
		resp, err := cl.Get("http://" + admin + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	return true
}

// stop sends SIGTERM, then kills after 5 s; it returns once the process is gone.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits up to d for the process to exit and returns its exit code.
func (p *proc) waitExit(d time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.exit, true
	case <-time.After(d):
		return 0, false
	}
}

// waitFor polls cond every 25 ms for at most d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// jsonLines returns every line of s that parses as a JSON object.
func jsonLines(s string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// accessLines returns the access log entries of s (lines with "msg":"access").
func accessLines(s string) []map[string]any {
	var out []map[string]any
	for _, m := range jsonLines(s) {
		if m["msg"] == "access" {
			out = append(out, m)
		}
	}
	return out
}

// vmHWM is the peak resident set size of pid in bytes.
func vmHWM(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// newClient is an HTTP/1.1 client that never uses an environment proxy,
// never asks for compression and never follows redirects.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends a request (host "" keeps the URL's host) and returns the response with its body read.
func do(t testing.TB, c *http.Client, method, url, host string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

// ctxTimeout is a context bounded by d and cancelled at the end of the test.
func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// onceCloser closes ch at most once (to release blocked backends on any path).
func onceCloser(ch chan struct{}) func() {
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// readLineTimeout reads one line from br, failing the test after d.
func readLineTimeout(t testing.TB, br *bufio.Reader, d time.Duration) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() { s, err := br.ReadString('\n'); ch <- res{s, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("reading line: %v (got %q)", r.err, r.s)
		}
		return r.s
	case <-time.After(d):
		t.Fatalf("no line within %v", d)
		return ""
	}
}

func deadline5() time.Time { return time.Now().Add(5 * time.Second) }

func newGet(url string) (*http.Request, error) { return http.NewRequest("GET", url, nil) }

// tail is the end of s, at most n bytes, with every line cut to 400 bytes.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "…"
		}
	}
	s = strings.Join(lines, "\n")
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
