package filter

import (
	"errors"
	"strings"
	"testing"
)

type tag string

func (t tag) Serve(x *Exchange, next Handler) {
	x.Log.Blocked += string(t)
	if strings.HasSuffix(string(t), "!") {
		return // answers itself: the rest of the chain must not run
	}
	next.Serve(x)
}

func TestChainRunsInOrderAndStops(t *testing.T) {
	final := HandlerFunc(func(x *Exchange) { x.Log.Blocked += "end" })
	var x Exchange
	Chain(final, tag("a"), tag("b")).Serve(&x)
	if x.Log.Blocked != "abend" {
		t.Fatalf("ran %q, want abend", x.Log.Blocked)
	}
	x.Reset()
	Chain(final, tag("a"), tag("b!"), tag("c")).Serve(&x)
	if x.Log.Blocked != "ab!" {
		t.Fatalf("ran %q, want ab! (stopped at b)", x.Log.Blocked)
	}
	x.Reset()
	Chain(final).Serve(&x)
	if x.Log.Blocked != "end" {
		t.Fatalf("empty chain ran %q", x.Log.Blocked)
	}
}

type closer struct{ closed int }

func (c *closer) Close() error { c.closed++; return nil }

func TestStateKeepsAcrossBuildsAndClosesTheRest(t *testing.T) {
	s1 := NewState(nil)
	a, _ := Keep(s1, "a", func() (*closer, error) { return &closer{}, nil })
	b, _ := Keep(s1, "b", func() (*closer, error) { return &closer{}, nil })
	if again, _ := Keep(s1, "a", func() (*closer, error) { return &closer{}, nil }); again != a {
		t.Fatal("Keep made a second object for the same key in one build")
	}

	s2 := NewState(s1)
	a2, _ := Keep(s2, "a", func() (*closer, error) { return &closer{}, nil })
	c, _ := Keep(s2, "c", func() (*closer, error) { return &closer{}, nil })
	if a2 != a {
		t.Fatal("the next build did not take over a")
	}
	s2.Retire(s1)
	if a.closed != 0 || b.closed != 1 || c.closed != 0 {
		t.Fatalf("after Retire closed a=%d b=%d c=%d, want 0 1 0", a.closed, b.closed, c.closed)
	}

	// A failed build closes only what it created.
	s3 := NewState(s2)
	Keep(s3, "a", func() (*closer, error) { return &closer{}, nil })
	d, _ := Keep(s3, "d", func() (*closer, error) { return &closer{}, nil })
	if _, err := Keep(s3, "e", func() (*closer, error) { return nil, errors.New("no") }); err == nil {
		t.Fatal("Keep swallowed the create error")
	}
	s3.Discard()
	if a.closed != 0 || d.closed != 1 {
		t.Fatalf("after Discard closed a=%d d=%d, want 0 1", a.closed, d.closed)
	}
	s2.Close()
	if a.closed != 1 || c.closed != 1 {
		t.Fatalf("after Close closed a=%d c=%d, want 1 1", a.closed, c.closed)
	}
}
