package observe

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

func sampleEntry() *Entry {
	return &Entry{
		Start:  time.Date(2026, 11, 26, 8, 30, 1, 0, time.FixedZone("", -7*3600)),
		Client: []byte("192.0.2.7:51234"), Method: []byte("GET"), Host: []byte("example.test"),
		Path: []byte("/a\"b"), Query: []byte("q=1"), HasQuery: true, Proto: "HTTP/1.1",
		Status: 200, Bytes: 1234, Duration: 1500 * time.Microsecond, Upstream: "127.0.0.1:9001",
		UpstreamLatency: 1200 * time.Microsecond, Route: "sites[0].routes[0]", RequestID: []byte("abc123"),
		Header: exchange.Headers{
			{Name: []byte("Referer"), Value: []byte("https://ref.test/")},
			{Name: []byte("User-Agent"), Value: []byte("curl/8 \"x\"\x01")},
			{Name: []byte("X-Tenant"), Value: []byte("t1")},
		},
	}
}

func TestCombinedAndCommonAreNCSALines(t *testing.T) {
	e := sampleEntry()
	got := string(NewFormat("combined", nil).Append(nil, e))
	want := `192.0.2.7 - - [26/Nov/2026:08:30:01 -0700] "GET /a\x22b?q=1 HTTP/1.1" 200 1234 "https://ref.test/" "curl/8 \x22x\x22\x01"` + "\n"
	if got != want {
		t.Errorf("combined:\n got %s\nwant %s", got, want)
	}
	e.User = "alice"
	e.Client = []byte("[2001:db8::1]:443")
	got = string(NewFormat("common", nil).Append(nil, e))
	want = `2001:db8::1 - alice [26/Nov/2026:08:30:01 -0700] "GET /a\x22b?q=1 HTTP/1.1" 200 1234` + "\n"
	if got != want {
		t.Errorf("common:\n got %s\nwant %s", got, want)
	}
}

func TestJSONDefaultAndChosenFields(t *testing.T) {
	e := sampleEntry()
	var m map[string]any
	line := NewFormat("json", nil).Append(nil, e)
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	for k, v := range map[string]any{"path": "/a\"b", "query": "q=1", "request_id": "abc123", "upstream_ms": 1.2, "status": 200.0} {
		if m[k] != v {
			t.Errorf("default json %s = %v, want %v (line %s)", k, m[k], v, line)
		}
	}
	if _, ok := m["cache"]; ok {
		t.Errorf("empty optional field written: %s", line)
	}

	line = NewFormat("json", []string{"status", "header:X-Tenant", "header:X-Missing", "user_agent", "upstream_ms", "cache"}).Append(nil, e)
	m = nil
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	want := map[string]any{"time": m["time"], "level": "INFO", "msg": "access", "status": 200.0, "header:X-Tenant": "t1",
		"header:X-Missing": nil, "user_agent": "curl/8 \"x\"\x01", "upstream_ms": 1.2, "cache": ""}
	if len(m) != len(want) {
		t.Errorf("chosen fields: got %v, want exactly %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("chosen json %s = %v, want %v", k, m[k], v)
		}
	}
}

func TestReopenFollowsLogrotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := OpenAccessLog(path, NewFormat("common", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e := sampleEntry()
	l.Log(e)
	waitFor(t, func() bool { b, _ := os.ReadFile(path); return len(b) > 0 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Log(e) // still to the moved file: nothing reopened yet
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	e.Status = 404
	l.Log(e)
	waitFor(t, func() bool { b, _ := os.ReadFile(path); return strings.Contains(string(b), " 404 ") })
	old, _ := os.ReadFile(path + ".1")
	if n := strings.Count(string(old), "\n"); n != 2 || strings.Contains(string(old), " 404 ") {
		t.Errorf("rotated file has %d lines (%q), want the 2 written before Reopen", n, old)
	}

	// A reopen that fails keeps the old file.
	os.Remove(path)
	os.Mkdir(path, 0o755)
	if err := l.Reopen(); err == nil {
		t.Error("Reopen onto a directory succeeded")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
