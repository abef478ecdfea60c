package observe

import (
	"strings"
	"testing"
)

func TestParseTraceparent(t *testing.T) {
	const ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct {
		v       string
		valid   bool
		sampled bool
	}{
		{ok, true, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, false},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", true, true}, // later versions: first fields
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", false, false},    // version 00 has nothing more
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, false},      // version ff is invalid
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, false},      // all-zero trace id
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, false},      // all-zero parent id
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false, false},      // uppercase
		{strings.Replace(ok, "-", "_", 1), false, false},
		{ok[:54], false, false},
		{"", false, false},
	} {
		sc, valid := parseTraceparent([]byte(c.v))
		if valid != c.valid || valid && sc.IsSampled() != c.sampled {
			t.Errorf("%q: valid=%v sampled=%v, want %v %v", c.v, valid, sc.IsSampled(), c.valid, c.sampled)
		}
	}
}

// FuzzTraceparent: any header value is parsed without panicking, and what
// is accepted prints back as the same trace and parent.
func FuzzTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-ever")
	f.Add("00--")
	f.Fuzz(func(t *testing.T, v string) {
		sc, ok := parseTraceparent([]byte(v))
		if !ok {
			return
		}
		if sc.TraceID().String() != v[3:35] || sc.SpanID().String() != v[36:52] {
			t.Fatalf("%q parsed as trace %s span %s", v, sc.TraceID(), sc.SpanID())
		}
	})
}
