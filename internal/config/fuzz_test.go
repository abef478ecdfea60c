package config

import (
	"errors"
	"slices"
	"strings"
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
			for _, tg := range slices.Concat(u.Targets, u.Backup) {
				if tg.URL == nil || tg.URL.Host == "" || tg.Weight < 1 {
					t.Fatalf("accepted target %+v", tg)
				}
				kind, scheme := tg.Discovery()
				if kind == "" || u.Transport == "h2" && scheme != "https" || u.Transport == "h2c" && scheme != "http" {
					t.Fatalf("accepted target %s with transport %q", tg.URL, u.Transport)
				}
			}
			checkPool(t, u)
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

// checkPool checks the promises about an accepted upstream's pool settings.
func checkPool(t *testing.T, u *Upstream) {
	t.Helper()
	if !slices.Contains(transports(), u.Transport) || u.MaxIdlePerTarget < 0 || u.MaxConnsPerTarget < 0 || u.ResolveInterval <= 0 {
		t.Fatalf("accepted upstream %q: transport %q, max_idle %d, max_conns %d, resolve_interval %s",
			u.Name, u.Transport, u.MaxIdlePerTarget, u.MaxConnsPerTarget, u.ResolveInterval)
	}
	if a := u.Health.Active; a != nil {
		if !strings.HasPrefix(a.Path, "/") || a.Interval <= 0 || a.Timeout <= 0 || a.Timeout >= a.Interval ||
			a.Fall < 1 || a.Rise < 1 || len(a.ExpectStatus) == 0 {
			t.Fatalf("accepted active health %+v", *a)
		}
		for _, r := range a.ExpectStatus {
			if r.Lo < 100 || r.Lo > r.Hi || r.Hi > 599 {
				t.Fatalf("accepted expect_status %v", a.ExpectStatus)
			}
		}
	}
	if p := u.Health.Passive; p != nil && (p.MaxFails < 1 || p.Window <= 0 || p.Eject <= 0) {
		t.Fatalf("accepted passive health %+v", *p)
	}
	r := u.Retries
	if r.Attempts < 0 || r.Attempts > maxRetryAttempts || len(r.On) == 0 || r.Budget < 0 || r.Budget > 1 || r.MinRetriesPerSecond < 0 {
		t.Fatalf("accepted retries %+v", r)
	}
	for _, o := range r.On {
		switch {
		case o.Kind == RetryStatus && (o.Status < 400 || o.Status > 599),
			o.Kind != RetryStatus && (o.Status != 0 || !slices.Contains(retryKinds(), string(o.Kind))):
			t.Fatalf("accepted retry condition %+v", o)
		}
	}
	if tl := u.TLS; tl != nil && ((tl.CAFile != "") != (tl.RootCAs != nil) || (tl.CertFile != "") != (tl.Certificate != nil)) {
		t.Fatalf("accepted tls %+v without loading its files", *tl)
	}
}
