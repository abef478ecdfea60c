package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestErrorsKeepPositions(t *testing.T) {
	_, err := Parse("x.yaml", []byte("listeners:\n  - addr: nope\n  - adr: :1\n"))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want Errors", err)
	}
	want := []Error{
		{File: "x.yaml", Line: 2, Col: 11, Path: "listeners[0].addr", Msg: `invalid address "nope": write host:port, like 127.0.0.1:8080 or :8080`},
		{File: "x.yaml", Line: 3, Col: 5, Path: "listeners[1].adr", Msg: `unknown field "adr" (did you mean "addr"?)`},
		{File: "x.yaml", Line: 3, Col: 5, Path: "listeners[1].addr", Msg: `addr is required (host:port, like 127.0.0.1:8080)`},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i := range want {
		if *errs[i] != want[i] {
			t.Errorf("error %d = %+v, want %+v", i, *errs[i], want[i])
		}
	}
}

func TestErrorString(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Col: 7, Path: "a.b", Msg: "bad"}, "f.yaml:3:7: a.b: bad"},
		{Error{File: "f.yaml", Line: 1, Col: 1, Msg: "empty configuration"}, "f.yaml:1:1: empty configuration"},
		{Error{File: "f.yaml", Msg: "no such file or directory"}, "f.yaml: no such file or directory"},
		{Error{Line: 2, Col: 3, Path: "x", Msg: "bad"}, "2:3: x: bad"},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	es := Errors{&cases[0].e, &cases[1].e}
	if got, want := es.Error(), "f.yaml:3:7: a.b: bad\nf.yaml:1:1: empty configuration"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

// A few lines of aliases can stand for a billion nodes; the decoder must
// give up quickly instead of building them.
func TestAliasBomb(t *testing.T) {
	many := func(alias string) string { return strings.Repeat(alias+", ", 99) + alias }
	text := "listeners: [{addr: \":1\"}]\n" +
		"upstreams: {a: {targets: [http://a:1]}}\n" +
		"sites: [&s {routes: [&r {split: [&e {upstream: a, weight: 1}, " + many("*e") + "]}, " + many("*r") + "]}, " + many("*s") + "]\n"
	start := time.Now()
	_, err := Parse("x.yaml", []byte(text))
	if err == nil || !strings.Contains(err.Error(), "too many alias expansions") {
		t.Fatalf("err = %v, want a too many alias expansions error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Parse took %v", d)
	}
}

func TestDecode(t *testing.T) {
	type settings struct {
		Rate  string        `yaml:"rate"`
		Burst int           `yaml:"burst"`
		Every time.Duration `yaml:"every"`
	}
	c := mustParse(t, `listeners: [{addr: ":1"}]
sites:
  - routes:
      - respond: {}
        middleware:
          - rate_limit: {rate: 100/s, burst: x, brust: 2}
`)
	m := c.Sites[0].Routes[0].Middleware[0]
	var s settings
	pos, err := Decode(c.File, m.Path, m.Settings, &s)
	want := "test.yaml:6:46: sites[0].routes[0].middleware[0].rate_limit.burst: expected an integer, got the string \"x\"\n" +
		"test.yaml:6:49: sites[0].routes[0].middleware[0].rate_limit.brust: unknown field \"brust\" (did you mean \"burst\"?)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if s.Rate != "100/s" {
		t.Errorf("Rate = %q, want 100/s", s.Rate)
	}
	if !pos.Has(m.Path+".rate") || pos.Has(m.Path+".every") {
		t.Errorf("positions = %v: want rate written and every absent", pos)
	}
	if got := pos.Of(m.Path + ".every"); got != (Pos{6, 25}) {
		t.Errorf("Of(absent field) = %v, want the settings' position 6:25", got)
	}
}
