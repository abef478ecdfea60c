package cache

import "testing"

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=5-", "bytes=1-0", "bytes=0-1,2-3", "items=1-2", "bytes=99999999999999999999999-", "bytes= 1 - 2"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, s string, n int64) {
		if n < 0 {
			n = -n
		}
		start, end, ok := parseRange([]byte(s), n)
		if ok && start >= 0 && (start > end || end >= n) {
			t.Fatalf("%q of %d: %d-%d outside the body", s, n, start, end)
		}
	})
}

func FuzzETagList(f *testing.F) {
	for _, s := range []string{`"a"`, `W/"a", "b"`, `*`, `W/`, `"`, `,,`} {
		f.Add(s, `"a"`)
	}
	f.Fuzz(func(t *testing.T, list, etag string) {
		strong := etagListMatches([]byte(list), []byte(etag), true)
		weak := etagListMatches([]byte(list), []byte(etag), false)
		if strong && !weak {
			t.Fatalf("%q vs %q: a strong match must be a weak one", list, etag)
		}
	})
}
