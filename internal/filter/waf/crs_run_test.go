package waf_test

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// Under -race one WAF transaction costs ~50 ms of CPU, so CI runs a sample
// of about 60 tests of PL1 rules; the whole suite (4674 tests) runs with
// GATEHOUSE_CRS_FULL=1.

// Failure categories, from the most to the least excusable.
const (
	catParanoia = "paranoia>1"    // the test's rule runs only at a higher paranoia level
	catParser   = "parser"        // gatehouse's HTTP parser refused the request before the WAF saw it
	catRespBody = "response-body" // needs response body inspection, which the WAF does not do
	catOther    = "other"
)

// TestCRSRegressionSuite replays the CRS regression tests through gatehouse.
// A failure of a PL1 test that is neither refused by the parser nor a
// response-body test must be listed, with its reason, in
// testdata/crs-known-failures.txt; a listed test that passes must be removed.
func TestCRSRegressionSuite(t *testing.T) {
	full := os.Getenv("GATEHOUSE_CRS_FULL") == "1"
	pl := ruleParanoia(t)
	// The sample holds tests of PL1 rules only: the others are not expected
	// to fire at paranoia level 1.
	cases := loadCRSTests(t, !full, func(id int) bool { return pl[id] <= 1 })
	known := knownFailures(t)
	addr, log := crsGatehouse(t)

	start := time.Now()
	type result struct {
		c   crsCase
		cat string
		why string
	}
	var failed []result
	counts := map[string]int{}
	passPL1, runPL1, passHigher, runHigher := 0, 0, 0, 0
	for _, c := range cases {
		why, parserOnly := runCase(t, addr, c, log)
		higher := pl[c.ruleID] > 1
		if higher {
			runHigher++
			if why == "" {
				passHigher++
			}
		} else {
			runPL1++
			if why == "" {
				passPL1++
			}
		}
		if why == "" {
			if _, ok := known[c.name()]; ok {
				t.Errorf("%s passes now: remove it from testdata/crs-known-failures.txt", c.name())
			}
			continue
		}
		cat := catOther
		switch {
		case higher:
			cat = catParanoia
		case parserOnly:
			cat = catParser
		case strings.HasPrefix(c.file, "RESPONSE-"):
			cat = catRespBody
		}
		counts[cat]++
		failed = append(failed, result{c, cat, why})
		if cat == catOther {
			if _, ok := known[c.name()]; !ok {
				t.Errorf("CRS test %s (%s) fails: %s", c.name(), c.test.Desc, why)
			}
		}
	}
	t.Logf("CRS regression tests at paranoia level 1 (%d tests, full=%v, %v):", len(cases), full, time.Since(start).Round(time.Millisecond))
	t.Logf("  tests of PL1 rules: %d/%d pass; tests of PL2-4 rules: %d/%d pass (not expected to fire at PL1)", passPL1, runPL1, passHigher, runHigher)
	t.Logf("  failures by category: %v", counts)
	if path := os.Getenv("GATEHOUSE_CRS_REPORT"); path != "" {
		sort.Slice(failed, func(i, j int) bool { return failed[i].cat < failed[j].cat })
		var b strings.Builder
		for _, f := range failed {
			fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", f.cat, f.c.name(), f.why, f.c.test.Desc)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// runCase runs every stage of c and returns why it failed ("" when it
// passed), and whether every failing stage was refused by gatehouse's parser
// (a 4xx/5xx with nothing in the WAF's log).
func runCase(t *testing.T, addr string, c crsCase, log *wafLog) (string, bool) {
	var whys []string
	parserOnly := true
	for i := range c.test.Stages {
		st := &c.test.Stages[i]
		o, err := sendStage(addr, &st.Input, log)
		if err != nil {
			return "stage " + fmt.Sprint(i) + ": " + err.Error(), false
		}
		why := check(&st.Output, o)
		if why == "" {
			continue
		}
		whys = append(whys, why)
		if !(o.status >= 400 && len(o.ids) == 0) {
			parserOnly = false
		}
	}
	return strings.Join(whys, " | "), len(whys) > 0 && parserOnly
}

// knownFailures reads testdata/crs-known-failures.txt: "RULE-TEST reason".
func knownFailures(t *testing.T) map[string]string {
	f, err := os.Open("testdata/crs-known-failures.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, _ := strings.Cut(line, " ")
		out[name] = strings.TrimSpace(reason)
	}
	return out
}
