package observe

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzJSONString checks that whatever a client puts in a path or host, the
// access log line stays one valid JSON value that decodes to the same text
// (invalid UTF-8 replaced).
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "/a b", "\"\\\n\r\t\x00", "\xff\xfe", "é/日本", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, []byte(s))
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %q: %v", s, out, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want && utf8.ValidString(s) {
			t.Fatalf("%q round-trips to %q", s, got)
		}
		if strings.ContainsAny(string(out), "\n\r") {
			t.Fatalf("%q encodes with a line break: %q", s, out)
		}
	})
}

func TestAccessLogWritesOneJSONLinePerEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := OpenAccessLog(path, NewFormat("json", nil))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		l.Log(&Entry{Start: time.Now(), Client: []byte("127.0.0.1:1"), Method: []byte("GET"), Host: []byte("h"),
			Path: []byte("/p\"\n"), Status: 200, Bytes: int64(i), Duration: time.Millisecond, Upstream: "127.0.0.1:2", Route: "r"})
	}
	l.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", n, err, sc.Bytes())
		}
		if m["msg"] != "access" || m["path"] != "/p\"\n" || m["bytes"] != float64(n) {
			t.Fatalf("line %d: %v", n, m)
		}
		n++
	}
	if n+int(l.Dropped()) != 100 || n == 0 {
		t.Fatalf("%d lines written, %d dropped, want 100 in all", n, l.Dropped())
	}
}
