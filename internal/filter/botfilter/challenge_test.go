package botfilter

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestTokenIsBoundToNetworkUserAgentAndTime(t *testing.T) {
	s := newSigner(testSecret)
	now := time.Unix(1_800_000_000, 0)
	ip := netip.MustParseAddr("198.51.100.7")
	ua := []byte("Mozilla/5.0 HeadlessChrome")
	tok := []byte(s.token(now.Add(time.Hour), ip, ua))
	for _, c := range []struct {
		name string
		tok  []byte
		now  time.Time
		ip   string
		ua   string
		want bool
	}{
		{"same client", tok, now, "198.51.100.7", string(ua), true},
		{"same /24", tok, now, "198.51.100.200", string(ua), true},
		{"IPv4-mapped form of the same /24", tok, now, "::ffff:198.51.100.9", string(ua), true},
		{"other /24", tok, now, "198.51.101.7", string(ua), false},
		{"other user agent", tok, now, "198.51.100.7", "curl/8.0", false},
		{"expired", tok, now.Add(time.Hour), "198.51.100.7", string(ua), false},
		{"other secret", []byte(newSigner(bytes.Repeat([]byte("x"), 32)).token(now.Add(time.Hour), ip, ua)), now, "198.51.100.7", string(ua), false},
		{"expiry moved", bytes.Replace(tok, []byte("18000036"), []byte("18000099"), 1), now, "198.51.100.7", string(ua), false},
		{"mac flipped", append(append([]byte(nil), tok[:len(tok)-1]...), 'A'+(tok[len(tok)-1]-'A'+1)%26), now, "198.51.100.7", string(ua), false},
		{"empty", nil, now, "198.51.100.7", string(ua), false},
	} {
		if got := s.valid(c.tok, c.now, netip.MustParseAddr(c.ip), []byte(c.ua)); got != c.want {
			t.Errorf("%s: valid(%q) = %v, want %v", c.name, c.tok, got, c.want)
		}
	}
	v6 := s.token(now.Add(time.Hour), netip.MustParseAddr("2001:db8:1:2::1"), ua)
	if !s.valid([]byte(v6), now, netip.MustParseAddr("2001:db8:1:2:ffff::9"), ua) || s.valid([]byte(v6), now, netip.MustParseAddr("2001:db8:1:3::1"), ua) {
		t.Error("an IPv6 token must be valid across its /64 and only there")
	}
}

func TestParseTokenShape(t *testing.T) {
	good := newSigner(testSecret).token(time.Unix(1_800_000_000, 0), netip.MustParseAddr("192.0.2.1"), nil)
	if _, _, ok := parseToken([]byte(good)); !ok {
		t.Fatalf("parseToken(%q) refused our own token", good)
	}
	for _, bad := range []string{"", "1.", "1..AAAAAAAAAAAAAAAAAAAAAA", "2.1800000000.AAAAAAAAAAAAAAAAAAAAAA",
		"1.01800000000.AAAAAAAAAAAAAAAAAAAAAA", "1.18x0000000.AAAAAAAAAAAAAAAAAAAAAA", "1.1800000000.AAAAAAAAAAAAAAAAAAAAA",
		"1.1800000000.AAAAAAAAAAAAAAAAAAAAAA=", "1.99999999999999999999.AAAAAAAAAAAAAAAAAAAAAA", "1.1800000000.AAAAAAAAAAAAAAAAAAAAA+",
		"1.1800000000_AAAAAAAAAAAAAAAAAAAAAA"} {
		if _, _, ok := parseToken([]byte(bad)); ok {
			t.Errorf("parseToken(%q) accepted it", bad)
		}
	}
}

func TestCookieValue(t *testing.T) {
	h := exchange.Headers{
		{Name: []byte("Accept"), Value: []byte("*/*")},
		{Name: []byte("Cookie"), Value: []byte("a=1; gh=x; b=2")},
		{Name: []byte("cookie"), Value: []byte(` c = "quoted" ;gh2=late`)},
	}
	for name, want := range map[string]string{"a": "1", "gh": "x", "b": "2", "c": "quoted", "gh2": "late", "g": "", "x": ""} {
		got := h.Cookie(name)
		if string(got) != want || (want == "" && got != nil) {
			t.Errorf("cookieValue(%q) = %q, want %q", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { h.Cookie("gh2") }); n != 0 {
		t.Errorf("cookieValue allocates %v times", n)
	}
}

func TestPageCarriesTheTokenOnlyScrambled(t *testing.T) {
	tok := newSigner(testSecret).token(time.Unix(1_800_000_000, 0), netip.MustParseAddr("192.0.2.1"), nil)
	p := string(page("gh", tok, time.Hour, true))
	if strings.Contains(p, tok) || strings.Contains(p, tok[:len(tok)/2]) {
		t.Errorf("the token appears verbatim in the page")
	}
	for _, want := range []string{"Max-Age=3600", "Secure", "SameSite=Lax", "location.reload()", "<noscript>"} {
		if !strings.Contains(p, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if len(p) > 2048 {
		t.Errorf("challenge page is %d bytes; keep it small", len(p))
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add([]byte(newSigner(testSecret).token(time.Unix(1_800_000_000, 0), netip.MustParseAddr("192.0.2.1"), nil)))
	f.Add([]byte("1.1800000000.AAAAAAAAAAAAAAAAAAAAAA"))
	f.Add([]byte("1.99999999999999999999.AAAAAAAAAAAAAAAAAAAAAA"))
	f.Add([]byte("1."))
	f.Fuzz(func(t *testing.T, tok []byte) {
		exp, mac, ok := parseToken(tok)
		if !ok {
			return
		}
		// What parses has exactly the canonical shape: re-encoding gives it back.
		s := newSigner(testSecret)
		_ = s.valid(tok, time.Unix(0, 0), netip.MustParseAddr("192.0.2.1"), tok)
		if exp <= 0 || len(mac) != macLen {
			t.Fatalf("parseToken(%q) = %d, %x", tok, exp, mac)
		}
		if !bytes.HasPrefix(tok, []byte(tokenVersion)) || len(tok) > len(tokenVersion)+19+1+macB64Len {
			t.Fatalf("parseToken accepted %q", tok)
		}
	})
}

func FuzzCookieValue(f *testing.F) {
	f.Add("a=1; gh=x; b=2", "gh")
	f.Add(` c = "quoted" ;gh2=late`, "c")
	f.Add(`gh="`, "gh")
	f.Add(";;=;", "")
	f.Fuzz(func(t *testing.T, field, name string) {
		h := exchange.Headers{{Name: []byte("Cookie"), Value: []byte(field)}}
		v := h.Cookie(name)
		if v == nil {
			return
		}
		if !bytes.Contains([]byte(field), v) {
			t.Fatalf("cookieValue(%q, %q) = %q, not part of the field", field, name, v)
		}
		if bytes.IndexByte(v, ';') >= 0 {
			t.Fatalf("cookieValue(%q, %q) = %q spans a separator", field, name, v)
		}
	})
}
