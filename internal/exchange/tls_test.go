package exchange

import "testing"

func FuzzHeaderSafe(f *testing.F) {
	f.Add("CN=alice,O=Example")
	f.Add("CN=\x00\r\nX-Evil: 1")
	f.Add("CN=J\u00fcrgen")
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range headerSafe(s) {
			if c < 0x20 || c >= 0x7f {
				t.Fatalf("headerSafe(%q) kept byte %#x", s, c)
			}
		}
	})
}

func TestHeaderSafe(t *testing.T) {
	if got := string(headerSafe("CN=a\r\nb\u00e9")); got != `CN=a\0d\0ab\c3\a9` {
		t.Fatalf("got %q", got)
	}
}
