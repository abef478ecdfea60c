package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func accessConfig(backend, output string) string {
	return fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
access_log: {enabled: true, output: "%s"}
upstreams:
  app: {targets: ["%s"]}
sites:
  - hosts: [log.test]
    routes:
      - {match: {path_prefix: /app/}, upstream: app}
`, output, backend)
}

// sendLogged sends three requests from known client ports and returns what each should log.
func sendLogged(t *testing.T, gh *proc) map[string]map[string]any {
	want := map[string]map[string]any{}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/app/one", ""}, {"POST", "/app/two", "posted"}, {"GET", "/missing", ""},
	} {
		c, br := dialRaw(t, gh.Addr())
		req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: log.test\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", r.method, r.path, len(r.body), r.body)
		send(t, c, req)
		resp, body := readResp(t, c, br, r.method)
		want[r.path] = map[string]any{"client": c.LocalAddr().String(), "method": r.method, "status": float64(resp.StatusCode), "bytes": float64(len(body))}
	}
	return want
}

func checkAccessLines(t *testing.T, read func() string, want map[string]map[string]any, backend string) {
	t.Helper()
	var lines []map[string]any
	mine := func() []map[string]any {
		var out []map[string]any
		for _, l := range accessLines(read()) {
			if l["host"] == "log.test" {
				out = append(out, l)
			}
		}
		return out
	}
	if !waitFor(5*time.Second, func() bool { lines = mine(); return len(lines) >= len(want) }) {
		t.Fatalf("%d access lines for host log.test after 5s, want %d; output:\n%s", len(lines), len(want), read())
	}
	byPath := map[string]int{}
	for _, l := range lines {
		path, _ := l["path"].(string)
		byPath[path]++
		w, ok := want[path]
		if !ok {
			t.Errorf("access line for unexpected path: %v", l)
			continue
		}
		if l["level"] != "INFO" {
			t.Errorf("level %v, want INFO", l["level"])
		}
		if ts, _ := l["time"].(string); ts == "" {
			t.Errorf("no time in %v", l)
		} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("time %q is not RFC 3339: %v", ts, err)
		}
		for k, v := range w {
			if l[k] != v {
				t.Errorf("%s: %s = %v (%T), want %v", path, k, l[k], l[k], v)
			}
		}
		if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
			t.Errorf("%s: duration_ms %v, want a number >= 0", path, l["duration_ms"])
		}
		if _, ok := l["route"].(string); !ok {
			t.Errorf("%s: route %v, want a string", path, l["route"])
		}
		if strings.HasPrefix(path, "/app/") && l["upstream"] != backend {
			t.Errorf("%s: upstream %v, want %s", path, l["upstream"], backend)
		}
	}
	for path := range want {
		if byPath[path] != 1 {
			t.Errorf("%d access lines for %s, want exactly 1", byPath[path], path)
		}
	}
}

func logBackend(t *testing.T) (*httptest.Server, string) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "logged response "+r.URL.Path)
	}))
	t.Cleanup(be.Close)
	return be, strings.TrimPrefix(be.URL, "http://")
}

func TestAccessLogToStderr(t *testing.T) {
	t.Parallel()
	be, addr := logBackend(t)
	gh := startGatehouse(t, accessConfig(be.URL, "stderr"))
	want := sendLogged(t, gh)
	checkAccessLines(t, gh.stderr.String, want, addr)
}

func TestAccessLogToFile(t *testing.T) {
	t.Parallel()
	be, addr := logBackend(t)
	file := filepath.Join(t.TempDir(), "access.log")
	gh := startGatehouse(t, accessConfig(be.URL, file))
	want := sendLogged(t, gh)
	checkAccessLines(t, func() string { b, _ := os.ReadFile(file); return string(b) }, want, addr)
	for _, l := range accessLines(gh.stderr.String()) {
		if l["host"] == "log.test" {
			t.Errorf("access line on stderr although output is a file: %v", l)
		}
	}
}
