package apikey

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/filtertest"
)

func digest(k string) string { s := sha256.Sum256([]byte(k)); return hex.EncodeToString(s[:]) }

func keysFile(t testing.TB, text string) string {
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseKeys(t *testing.T) {
	ks, err := parseKeys([]byte("# comment\n\nci:" + digest("a") + "\r\n  ops : " + strings.ToUpper(digest("b")) + "\n"))
	if err != nil || len(ks) != 2 || ks[sha256.Sum256([]byte("a"))] != "ci" || ks[sha256.Sum256([]byte("b"))] != "ops" {
		t.Fatalf("parseKeys: %v %v", ks, err)
	}
	for in, want := range map[string]string{
		"ci:secret-key":                           "line 1: \"ci\" is not a SHA-256 digest",
		digest("a"):                               "want NAME:SHA256HEX",
		"ci:" + strings.Repeat("g", 64):           "not hexadecimal",
		"a b:" + digest("a"):                      "space or a control character",
		"a:" + digest("a") + "\na:" + digest("b"): "line 2: key name \"a\" is listed twice",
		"a:" + digest("a") + "\nb:" + digest("a"): "line 2: the digest of \"b\" is listed twice",
	} {
		if _, err := parseKeys([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseKeys(%q) = %v, want %q", in, err, want)
		}
	}
}

func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("ci:" + digest("a") + "\n# x\n"))
	f.Add([]byte("a:b:c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := parseKeys(data)
		if err != nil {
			return
		}
		for _, name := range ks {
			if name == "" || strings.ContainsAny(name, " \t\r\n:") {
				t.Fatalf("accepted key name %q", name)
			}
		}
	})
}

func TestServe(t *testing.T) {
	f := filtertest.MustBuild(t, New, "api_key", fmt.Sprintf(`{keys_file: %q, name_header: X-Client}`, keysFile(t, "ci:"+digest("k1")+"\n")))
	r := filtertest.Serve(f, "/", "X-Api-Key", "k1", "X-Client", "admin", "Other", "1")
	if !r.Passed || r.Log.User != "ci" {
		t.Fatalf("k1: passed=%v log %+v", r.Passed, r.Log)
	}
	if got := r.Request.Header; got.Has("X-Api-Key") || string(got.Get("X-Client")) != "ci" || len(got) != 2 {
		t.Errorf("forwarded headers %q", got)
	}
	for _, kv := range [][]string{nil, {"X-Api-Key", ""}, {"X-Api-Key", "k2"}, {"x-api-key", "k1", "X-API-KEY", "k1"}} {
		r := filtertest.Serve(f, "/", kv...)
		if r.Passed || r.Status != 401 || r.Get("WWW-Authenticate") != `APIKey header="X-API-Key"` {
			t.Errorf("%q: passed=%v %d %q", kv, r.Passed, r.Status, r.Get("WWW-Authenticate"))
		}
	}
}

func TestConfigErrors(t *testing.T) {
	good := keysFile(t, "ci:"+digest("k")+"\n")
	for settings, want := range map[string]string{
		`{}`: "m.api_key.keys_file: keys_file is required",
		fmt.Sprintf(`{keys_file: %q, header: "X Key"}`, good):            `m.api_key.header: "X Key" is not a valid header name`,
		fmt.Sprintf(`{keys_file: %q, name_header: x-api-key}`, good):     "name_header must differ",
		fmt.Sprintf(`{keys_file: %q}`, keysFile(t, "ci:plaintextkey\n")): "is not a SHA-256 digest",
	} {
		if _, err := filtertest.Build(t, New, "api_key", settings, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", settings, err, want)
		}
	}
}

func BenchmarkAPIKey(b *testing.B) {
	var text strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&text, "k%d:%s\n", i, digest(fmt.Sprint("key-", i)))
	}
	f := filtertest.MustBuild(b, New, "api_key", fmt.Sprintf(`{keys_file: %q}`, keysFile(b, text.String())))
	req := &exchange.Request{Method: []byte("GET"), Path: []byte("/")}
	req.Header.Add([]byte("X-API-Key"), []byte("key-500"))
	hdr := req.Header
	w := &filtertest.Writer{}
	next := filter.HandlerFunc(func(*filter.Exchange) {})
	b.ReportAllocs()
	for b.Loop() {
		req.Header = hdr[:1]
		x := filter.Exchange{Req: req, W: w}
		f.Serve(&x, next)
	}
}
