package config

import (
	"errors"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that every error can be
// located in the file, and that what Parse accepts holds the promises the
// rest of the program relies on. Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fullConfig))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %#v is not a non-empty Errors", err)
			}
			for _, e := range errs {
				if e.Line <= 0 || e.Col <= 0 || e.File != "f.yaml" || e.Msg == "" {
					t.Fatalf("error without a place or a message: %+v", *e)
				}
			}
			return
		}
		if len(c.Listeners) == 0 {
			t.Fatal("accepted a configuration without listeners")
		}
		for name, u := range c.Upstreams {
			if u == nil || u.Name != name || len(u.Targets) == 0 {
				t.Fatalf("accepted upstream %q = %+v", name, u)
			}
			for _, tg := range u.Targets {
				if tg.URL == nil || tg.URL.Host == "" || tg.Weight < 1 {
					t.Fatalf("accepted target %+v", tg)
				}
			}
		}
		for _, s := range c.Sites {
			if len(s.Hosts) == 0 || len(s.Routes) == 0 {
				t.Fatalf("accepted site %+v", s)
			}
			for _, r := range s.Routes {
				actions := 0
				if r.Upstream != "" {
					actions++
					if c.Upstreams[r.Upstream] == nil {
						t.Fatalf("accepted undefined upstream %q", r.Upstream)
					}
				}
				if len(r.Split) > 0 {
					actions++
				}
				if r.Respond != nil {
					actions++
				}
				if r.Redirect != nil {
					actions++
				}
				if actions != 1 {
					t.Fatalf("accepted route with %d actions: %+v", actions, r)
				}
			}
		}
	})
}
