package authmetrics

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/prometheus/client_golang/prometheus"
)

// series returns "middleware/result=value" for every gatehouse_auth_total series.
func series(t *testing.T, reg *prometheus.Registry) string {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_auth_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var l []string
			for _, lp := range m.GetLabel() {
				l = append(l, lp.GetValue())
			}
			out = append(out, strings.Join(l, "/")+"="+strconv.FormatFloat(m.GetCounter().GetValue(), 'f', -1, 64))
		}
	}
	return strings.Join(out, " ")
}

func TestCountsAndKeepsAcrossReloads(t *testing.T) {
	reg := prometheus.NewRegistry()
	build := func(st *filter.State) *filter.Build {
		return &filter.Build{Config: &config.Config{}, State: st, Metrics: reg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	s1 := filter.NewState(nil)
	jwt, err := For(build(s1), "jwt")
	if err != nil {
		t.Fatal(err)
	}
	basic, err := For(build(s1), "basic_auth") // same collector, second filter
	if err != nil {
		t.Fatal(err)
	}
	jwt.Allowed()
	jwt.Refused("jwt:expired")
	jwt.Refused("jwt:expired")
	basic.Refused("basic_auth:bad_credentials")
	basic.Refused("")
	if got, want := series(t, reg), "basic_auth/allowed=0 basic_auth/answered=1 basic_auth/bad_credentials=1 jwt/allowed=1 jwt/expired=2"; got != want {
		t.Fatalf("series %q, want %q", got, want)
	}
	// A reload keeps the collector (no duplicate registration) and its counts.
	s2 := filter.NewState(s1)
	jwt2, err := For(build(s2), "jwt")
	if err != nil {
		t.Fatal(err)
	}
	s2.Retire(s1)
	jwt2.Allowed()
	if got := series(t, reg); !strings.Contains(got, "jwt/allowed=2") {
		t.Errorf("after a reload: %q, want jwt/allowed=2", got)
	}
	// A configuration without authentication unregisters it.
	s3 := filter.NewState(s2)
	s3.Retire(s2)
	if got := series(t, reg); got != "" {
		t.Errorf("series %q left after the collector was dropped", got)
	}
	var none *Counter
	none.Allowed()
	none.Refused("x") // a nil Counter counts nothing, without panicking
}
