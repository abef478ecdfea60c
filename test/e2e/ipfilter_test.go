package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// replaceFile writes text to path the way deploy tools do (write, rename).
func replaceFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func TestIPFilter(t *testing.T) {
	denyFile := filepath.Join(t.TempDir(), "deny.txt")
	replaceFile(t, denyFile, "# blocked clients\n203.0.113.0/24\n")
	gh := startGatehouse(t, fmt.Sprintf(`listeners: [{addr: "{{LISTEN}}"}]
admin: {addr: "{{ADMIN}}"}
trusted_proxies: [127.0.0.1]
sites:
  - routes:
      - match: {path: /office}
        respond: {body: "ok\n"}
        middleware:
          - ip_filter: {allow: [10.0.0.0/8, "2001:db8::/32"], deny: [10.9.0.0/16]}
      - match: {path: /local}
        respond: {body: "ok\n"}
        middleware:
          - ip_filter: {allow: [127.0.0.1]}
      - respond: {body: "ok\n"}
        middleware:
          - ip_filter: {deny_file: %q, poll_interval: 100ms}
`, denyFile))
	c := newClient(t)
	for _, r := range []struct {
		path, xff string
		want      int
	}{
		{"/office", "10.1.2.3", 200},
		{"/office", "2001:db8::7", 200},
		{"/office", "10.9.0.1", 403},    // deny wins over allow
		{"/office", "192.0.2.1", 403},   // not on the allow list
		{"/office", "", 403},            // the peer 127.0.0.1 is not on it either
		{"/local", "", 200},             // the peer itself
		{"/local", "10.1.2.3", 403},     // behind a trusted proxy the client is 10.1.2.3
		{"/files", "203.0.113.9", 403},  // from the file
		{"/files", "198.51.100.1", 200}, // not in it
	} {
		resp := getFrom(t, c, gh, r.path, r.xff)
		if resp.StatusCode != r.want {
			t.Errorf("%s from %q: %d, want %d", r.path, r.xff, resp.StatusCode, r.want)
		}
	}

	// The file is followed without a reload; a broken version is logged and ignored.
	replaceFile(t, denyFile, "198.51.100.0/24\n")
	if !waitFor(5*time.Second, func() bool { return getFrom(t, c, gh, "/files", "198.51.100.1").StatusCode == 403 }) {
		t.Fatal("the new deny_file was not applied within 5s")
	}
	if resp := getFrom(t, c, gh, "/files", "203.0.113.9"); resp.StatusCode != 200 {
		t.Fatalf("a client removed from the file: %d", resp.StatusCode)
	}
	replaceFile(t, denyFile, "192.0.2.0/24\n192.0.2.999\n")
	if !waitFor(5*time.Second, func() bool { return strings.Contains(gh.stderr.String(), "list file rejected") }) {
		t.Fatalf("the broken file was not logged:\n%s", tail(gh.stderr.String(), 4000))
	}
	if !strings.Contains(gh.stderr.String(), `deny.txt:2: invalid IP address`) {
		t.Errorf("the log does not name the bad line:\n%s", tail(gh.stderr.String(), 4000))
	}
	if getFrom(t, c, gh, "/files", "198.51.100.1").StatusCode != 403 || getFrom(t, c, gh, "/files", "192.0.2.1").StatusCode != 200 {
		t.Fatal("a broken file replaced the last good list")
	}

	// A reload keeps the watcher and its list.
	gh.signal(syscall.SIGHUP)
	if !waitFor(5*time.Second, func() bool { return strings.Contains(gh.stderr.String(), "configuration reloaded") }) {
		t.Fatalf("no reload:\n%s", tail(gh.stderr.String(), 4000))
	}
	if getFrom(t, c, gh, "/files", "198.51.100.1").StatusCode != 403 {
		t.Fatal("after a reload the last good list was lost")
	}
	replaceFile(t, denyFile, "192.0.2.0/24\n")
	if !waitFor(5*time.Second, func() bool { return getFrom(t, c, gh, "/files", "192.0.2.1").StatusCode == 403 }) {
		t.Fatal("after a reload the file is no longer followed")
	}

	if n := metricLine(t, gh, `gatehouse_ipfilter_refused_total{middleware="sites[0].routes[0].middleware[0].ip_filter"}`); n != 3 {
		t.Errorf("/metrics: %v refusals on /office, want 3", n)
	}
	if !waitFor(5*time.Second, func() bool {
		for _, l := range accessLines(gh.stderr.String()) {
			if l["blocked"] == "ip_filter" && l["status"] == float64(403) {
				return true
			}
		}
		return false
	}) {
		t.Fatal("no access line with blocked=ip_filter")
	}
}

func TestIPFilterConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.txt")
	for _, c := range []struct{ mw, want string }{
		{`{allow: [10.0.0.0/33]}`, `:6:33: sites[0].routes[0].middleware[0].ip_filter.allow[0]: invalid IP prefix "10.0.0.0/33"`},
		{fmt.Sprintf(`{deny_file: %q}`, missing), `ip_filter.deny_file: stat ` + missing + `: no such file`},
		{`{}`, `ip_filter: needs at least one of allow, deny, allow_file, deny_file`},
	} {
		p := writeFile(t, "ip.yaml", fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
sites:
  - routes:
      - respond: {body: "ok\n"}
        middleware:
          - ip_filter: %s
`, c.mw))
		code, _, stderr := runCLI(t, "validate", "-c", p)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: validate exit %d, said:\n%s\nwant %s", c.mw, code, stderr, c.want)
		}
	}
}
