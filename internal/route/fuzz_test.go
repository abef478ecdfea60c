package route

import (
	"bytes"
	"testing"
)

// FuzzNormalizePath checks that whatever a client sends, the path that route
// conditions see has no dot segments and no empty segments left to hide
// behind, so that a prefix condition cannot be bypassed.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//x//y", "/%2e%2e/admin", "/a%2Fb/..", "/./././", "/..", "/%", "/%zz/%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if len(p) == 0 || p[0] != '/' {
			return
		}
		out := normalizePath([]byte(p))
		if len(out) == 0 || out[0] != '/' {
			t.Fatalf("normalizePath(%q) = %q: not absolute", p, out)
		}
		inner := out
		if len(inner) > 1 {
			inner = bytes.TrimSuffix(inner, []byte("/"))
		}
		for _, seg := range bytes.Split(inner[1:], []byte("/")) {
			if len(inner) > 1 && (len(seg) == 0 || string(seg) == "." || string(seg) == "..") {
				t.Fatalf("normalizePath(%q) = %q: segment %q left", p, out, seg)
			}
		}
	})
}

// FuzzQueryValue checks the query scanner never panics and finds a key that
// is plainly present.
func FuzzQueryValue(f *testing.F) {
	f.Add("a=1&b=2", "b")
	f.Add("%zz=1&a+b=%20", "a b")
	f.Add("&&=&", "")
	f.Fuzz(func(t *testing.T, q, key string) {
		queryValue([]byte(q), []byte(key))
		if key != "" && !bytes.ContainsAny([]byte(key), "&=%+") {
			v, ok := queryValue([]byte(q+"&"+key+"=found"), []byte(key))
			if !ok {
				t.Fatalf("key %q not found in %q", key, q+"&"+key+"=found")
			}
			_ = v
		}
	})
}
