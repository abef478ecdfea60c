package waf_test

// The CRS project's own regression tests (go-ftw YAML files, shipped in
// github.com/corazawaf/coraza-coreruleset/v4/tests as an embedded FS) are
// replayed through a real gatehouse server with the WAF at paranoia level 1
// in block mode, in front of a real backend that behaves like the CRS test
// backend (albedo). Each test's expected outcome — status, rule ids found or
// not found in the WAF's log, response text — is checked as go-ftw would.
//
// CI runs a fixed, deterministic sample (see loadCRSTests). GATEHOUSE_CRS_FULL=1
// runs all of them; GATEHOUSE_CRS_REPORT=FILE writes every failure with its
// category to FILE.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"gopkg.in/yaml.v3"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/server"
)

// ftwFile is one go-ftw YAML file.
type ftwFile struct {
	RuleID int       `yaml:"rule_id"`
	Tests  []ftwTest `yaml:"tests"`
}

type ftwTest struct {
	TestID int        `yaml:"test_id"`
	Desc   string     `yaml:"desc"`
	Stages []ftwStage `yaml:"stages"`
}

type ftwStage struct {
	Input  ftwInput  `yaml:"input"`
	Output ftwOutput `yaml:"output"`
}

type ftwInput struct {
	Method              *string   `yaml:"method"`
	URI                 *string   `yaml:"uri"`
	Version             *string   `yaml:"version"`
	Headers             yaml.Node `yaml:"headers"` // a mapping, kept in order
	Data                *string   `yaml:"data"`
	EncodedRequest      string    `yaml:"encoded_request"`
	AutocompleteHeaders *bool     `yaml:"autocomplete_headers"`
}

type ftwOutput struct {
	Status           yaml.Node `yaml:"status"` // an int or a list of ints
	ResponseContains string    `yaml:"response_contains"`
	LogContains      string    `yaml:"log_contains"`
	NoLogContains    string    `yaml:"no_log_contains"`
	ExpectError      bool      `yaml:"expect_error"`
	Log              struct {
		ExpectIDs    []int  `yaml:"expect_ids"`
		NoExpectIDs  []int  `yaml:"no_expect_ids"`
		MatchRegex   string `yaml:"match_regex"`
		NoMatchRegex string `yaml:"no_match_regex"`
	} `yaml:"log"`
}

// crsCase is one test of one file.
type crsCase struct {
	file   string
	ruleID int
	test   ftwTest
}

func (c crsCase) name() string { return fmt.Sprintf("%d-%d", c.ruleID, c.test.TestID) }

// loadCRSTests reads the tests of the embedded suite, in a fixed order.
// With sample, only the tests at positions 0, 6, 12 … of every 6th file, and
// of those only the tests of rules that keep returns true for (about 60
// tests; parsing all 318 files alone costs seconds under -race).
func loadCRSTests(t testing.TB, sample bool, keep func(ruleID int) bool) []crsCase {
	var files []string
	err := fs.WalkDir(crstests.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 300 {
		t.Fatalf("only %d CRS test files in the embedded suite", len(files))
	}
	sort.Strings(files)
	var out []crsCase
	for i, path := range files {
		if sample && i%6 != 0 {
			continue
		}
		b, err := fs.ReadFile(crstests.FS, path)
		if err != nil {
			t.Fatal(err)
		}
		var f ftwFile
		if err := yaml.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if sample && !keep(f.RuleID) {
			continue
		}
		for j, tc := range f.Tests {
			if !sample || j%6 == 0 {
				out = append(out, crsCase{file: path, ruleID: f.RuleID, test: tc})
			}
		}
	}
	return out
}

var (
	ruleStart = regexp.MustCompile(`(?m)^\s*Sec(Rule|Action)\b`)
	ruleIDRE  = regexp.MustCompile(`\bid:'?(\d+)`)
	ruleplRE  = regexp.MustCompile(`paranoia-level/(\d)`)
)

// ruleParanoia maps every CRS rule id to its paranoia level (1 when the
// rule has no paranoia-level tag).
func ruleParanoia(t testing.TB) map[int]int {
	out := map[int]int{}
	files, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("CRS rule files: %v (%d)", err, len(files))
	}
	for _, name := range files {
		b, err := fs.ReadFile(coreruleset.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		idx := ruleStart.FindAllStringIndex(s, -1)
		for i, at := range idx {
			end := len(s)
			if i+1 < len(idx) {
				end = idx[i+1][0]
			}
			chunk := s[at[0]:end]
			m := ruleIDRE.FindStringSubmatch(chunk)
			if m == nil {
				continue
			}
			id, _ := strconv.Atoi(m[1])
			pl := 1
			if p := ruleplRE.FindStringSubmatch(chunk); p != nil {
				pl, _ = strconv.Atoi(p[1])
			}
			if _, seen := out[id]; !seen {
				out[id] = pl
			}
		}
	}
	return out
}

// wafLog collects the WAF's log records (the server logs through it).
type wafLog struct {
	mu      sync.Mutex
	entries []string // one `[id "N"] [msg "..."] [data "..."]` line per matched rule
	ids     map[int]bool
}

func (l *wafLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *wafLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *wafLog) WithGroup(string) slog.Handler            { return l }

func (l *wafLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "waf" {
		return nil
	}
	var ids []string
	var msgs, data []string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "rules":
			ids = strings.Split(a.Value.String(), ",")
		case "messages":
			msgs, _ = a.Value.Any().([]string)
		case "data":
			data, _ = a.Value.Any().([]string)
		}
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, id := range ids {
		n, _ := strconv.Atoi(id)
		l.ids[n] = true
		msg, d := "", ""
		if i < len(msgs) && i < len(data) {
			msg, d = msgs[i], data[i]
		}
		l.entries = append(l.entries, fmt.Sprintf(`[id "%s"] [msg "%s"] [data "%s"]`, id, msg, d))
	}
	return nil
}

// take returns what was logged since the last call and forgets it.
func (l *wafLog) take() (map[int]bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids, text := l.ids, strings.Join(l.entries, "\n")
	l.ids, l.entries = map[int]bool{}, nil
	return ids, text
}

// crsGatehouse starts a gatehouse server with the WAF at paranoia level 1
// (block mode) in front of an albedo-like backend.
func crsGatehouse(t testing.TB) (addr string, log *wafLog) {
	backend := httptest.NewServer(http.HandlerFunc(albedo))
	t.Cleanup(backend.Close)
	cfg, err := config.Parse("crs.yaml", []byte(fmt.Sprintf(`listeners: [{addr: "127.0.0.1:0"}]
access_log: {enabled: false}
upstreams: {app: {targets: [%q]}}
sites:
  - routes:
      - upstream: app
        middleware: [{waf: {rules: crs, paranoia_level: 1, mode: block, inspect_response: true}}]
`, backend.URL)))
	if err != nil {
		t.Fatal(err)
	}
	log = &wafLog{ids: map[int]bool{}}
	srv, err := server.New(cfg, slog.New(log))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	for _, a := range srv.Addrs() {
		addr = a.String()
	}
	return addr, log
}

// albedo answers like the CRS test backend: POST /reflect describes the
// response to send, /base64/X answers X decoded, /anything echoes the body,
// everything else is a plain 200.
func albedo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "text/plain")
	switch {
	case r.URL.Path == "/reflect":
		var spec struct {
			Status      int               `json:"status"`
			Headers     map[string]string `json:"headers"`
			Body        string            `json:"body"`
			EncodedBody string            `json:"encodedBody"`
		}
		if json.Unmarshal(body, &spec) != nil || spec.Status < 0 || spec.Status >= 600 || spec.Status > 0 && spec.Status < 100 {
			w.WriteHeader(400)
			return
		}
		for k, v := range spec.Headers {
			w.Header().Add(k, v)
		}
		if spec.Status == 0 {
			spec.Status = 200
		}
		if spec.Body == "" && spec.EncodedBody != "" {
			b, _ := base64.StdEncoding.DecodeString(spec.EncodedBody)
			spec.Body = string(b)
		}
		w.WriteHeader(spec.Status)
		io.WriteString(w, spec.Body)
	case strings.HasPrefix(r.URL.Path, "/base64/"):
		b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/base64/"))
		w.Write(b)
	case r.URL.Path == "/anything":
		w.Write(body)
	default:
		io.WriteString(w, "Hello!")
	}
}

// rawRequest builds the bytes go-ftw would send for in.
func rawRequest(in *ftwInput) ([]byte, error) {
	if in.EncodedRequest != "" {
		return base64.StdEncoding.DecodeString(in.EncodedRequest)
	}
	method, uri, version := "GET", "/", "HTTP/1.1"
	if in.Method != nil {
		method = *in.Method
	}
	if in.URI != nil {
		uri = *in.URI
	}
	if in.Version != nil {
		version = *in.Version
	}
	data := ""
	if in.Data != nil {
		data = *in.Data
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s\r\n", method, uri, version)
	has := map[string]bool{}
	if in.Headers.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(in.Headers.Content); i += 2 {
			k, v := in.Headers.Content[i].Value, in.Headers.Content[i+1].Value
			has[strings.ToLower(k)] = true
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if in.AutocompleteHeaders == nil || *in.AutocompleteHeaders {
		if data != "" && !has["content-length"] && !has["transfer-encoding"] {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(data))
		}
		if !has["connection"] {
			b.WriteString("Connection: close\r\n")
		}
	}
	b.WriteString("\r\n")
	b.WriteString(data)
	return b.Bytes(), nil
}

// outcome is what one stage got.
type outcome struct {
	status int // 0: no response (connection error)
	body   string
	ids    map[int]bool
	log    string
}

func sendStage(addr string, in *ftwInput, log *wafLog) (outcome, error) {
	raw, err := rawRequest(in)
	if err != nil {
		return outcome{}, err
	}
	log.take()
	var o outcome
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return o, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(raw)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite() // a request that never ends gets its answer, not a timeout
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		o.status, o.body = resp.StatusCode, string(b)
	}
	// The WAF logs before the answer goes out; the log is complete now.
	o.ids, o.log = log.take()
	return o, nil
}

// check compares a stage's outcome with what the test expects; it returns
// why it failed, or "".
func check(out *ftwOutput, o outcome) string {
	if out.ExpectError {
		if o.status != 0 {
			return fmt.Sprintf("expected a connection error, got status %d", o.status)
		}
		return ""
	}
	var why []string
	if out.Status.Kind != 0 {
		var want []int
		if out.Status.Kind == yaml.SequenceNode {
			out.Status.Decode(&want)
		} else {
			var one int
			out.Status.Decode(&one)
			want = []int{one}
		}
		if !slices.Contains(want, o.status) {
			why = append(why, fmt.Sprintf("status %d, want %v", o.status, want))
		}
	}
	for _, id := range out.Log.ExpectIDs {
		if !o.ids[id] {
			why = append(why, fmt.Sprintf("rule %d not logged", id))
		}
	}
	for _, id := range out.Log.NoExpectIDs {
		if o.ids[id] {
			why = append(why, fmt.Sprintf("rule %d logged (false positive)", id))
		}
	}
	for _, m := range []struct {
		re   string
		want bool
		in   string
	}{
		{out.Log.MatchRegex, true, o.log}, {out.LogContains, true, o.log},
		{out.Log.NoMatchRegex, false, o.log}, {out.NoLogContains, false, o.log},
		{out.ResponseContains, true, o.body},
	} {
		if m.re == "" {
			continue
		}
		re, err := regexp.Compile(m.re)
		if err != nil {
			why = append(why, "bad regex in test: "+m.re)
			continue
		}
		if re.MatchString(m.in) != m.want {
			why = append(why, fmt.Sprintf("regex %q: match=%v, want %v (log: %q)", m.re, !m.want, m.want, clipLog(m.in)))
		}
	}
	if o.status == 0 && len(why) > 0 {
		why = append(why, "no response")
	}
	return strings.Join(why, "; ")
}

func clipLog(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
