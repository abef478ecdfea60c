package waf

import (
	"io"
	"log/slog"
	"testing"
	"time"

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
	start := time.Now()
	f1, s1 := build(t, "{paranoia_level: 1}", nil)
	t.Logf("compiling the CRS took %v", time.Since(start))
	start = time.Now()
	f2, s2 := build(t, "{paranoia_level: 1, exclude_paths: [/x/]}", s1) // not part of the rules
	if f2.eng != f1.eng {
		t.Fatal("same rule settings after a reload: the compiled rules were not kept")
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("a reload with the same rules took %v", d)
	}
	s2.Retire(s1)
	f3, s3 := build(t, "{paranoia_level: 2}", s2)
	if f3.eng == f2.eng {
		t.Fatal("paranoia_level changed but the old rules were kept")
	}
	s3.Retire(s2)
	s3.Close()
}
