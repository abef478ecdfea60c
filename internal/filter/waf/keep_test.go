package waf

import (
	"io"
	"log/slog"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
)

func build(t *testing.T, settings string, prev *filter.State) (*Filter, *filter.State) {
	t.Helper()
	cfg, err := config.Parse("k.yaml", []byte(`listeners: [{addr: "127.0.0.1:0"}]
sites:
  - routes:
      - respond: {body: hi}
        middleware: [{waf: `+settings+`}]
`))
	if err != nil {
		t.Fatal(err)
	}
	st := filter.NewState(prev)
	f, err := New(&filter.Build{Config: cfg, Entry: cfg.Sites[0].Routes[0].Middleware[0], Log: slog.New(slog.NewTextHandler(io.Discard, nil)), State: st})
	if err != nil {
		t.Fatal(err)
	}
	return f.(*Filter), st
}

// Compiling the CRS is slow: a reload that keeps the settings keeps the
// compiled rules; one that changes what goes into them compiles anew.
func TestCompiledRulesAreKeptAcrossReloads(t *testing.T) {
	// rules: none keeps the test fast; the CRS is kept the same way (the key
	// is the whole directive text), and BenchmarkCompileCRS measures it.
	rule := `directives: ["SecRule ARGS \"@rx evil\" \"id:1,phase:2,deny,log\""]`
	f1, s1 := build(t, "{rules: none, "+rule+"}", nil)
	f2, s2 := build(t, "{rules: none, exclude_paths: [/x/], "+rule+"}", s1) // not part of the rules
	if f2.eng != f1.eng {
		t.Fatal("same rule settings after a reload: the compiled rules were not kept")
	}
	s2.Retire(s1)
	f3, s3 := build(t, "{rules: none, mode: detect, "+rule+"}", s2)
	if f3.eng == f2.eng {
		t.Fatal("mode changed but the old rules were kept")
	}
	s3.Retire(s2)
	s3.Close()
}

// An exclusion must not be a way around the WAF: a path that a backend
// could normalise out of the excluded prefix is inspected.
func TestExcludedPathsCannotBeEscaped(t *testing.T) {
	f := &Filter{exclude: [][]byte{[]byte("/static/")}}
	for path, want := range map[string]bool{
		"/static/app.js":            true,
		"/static/img/logo.png":      true,
		"/static":                   false,
		"/staticx/a":                false,
		"/static/../admin":          false,
		"/static/./a":               false,
		"/static/%2e%2e/admin":      false,
		"/static/%2E%2e/admin":      false,
		"/static/..%2fadmin":        false,
		"/static/%2fadmin":          false,
		"/static/..\\admin":         false,
		"/static/%5c..%5cadmin":     false,
		"/static/%252e%252e/admin":  false,
		"/static/a%20b.css":         true,
		"/static/trailing%":         true,
		"/static/half%2":            true,
		"/admin?x=/static/":         false,
		"/static/.well-known/x.txt": false, // dot segments are never trusted
	} {
		if got := f.excluded([]byte(path)); got != want {
			t.Errorf("excluded(%q) = %v, want %v", path, got, want)
		}
	}
}
