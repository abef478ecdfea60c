package botfilter

import (
	"regexp"
	"strings"
	"testing"
)

// The hand-written validators accept exactly what these expressions accept.
var (
	cookieNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	domainRE     = regexp.MustCompile(`^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)
)

var validatorSeeds = []string{
	"", ".", "a", "-", "_", "a.b", "a..b", ".a", "a.", "googlebot.com", "crawl.yahoo.net", "a-b.c_d",
	"-a.com", "a-.com", "A.com", "gatehouse_challenge", "x y", "é.com", "a\n", strings.Repeat("a", 63) + ".com",
	strings.Repeat("a", 64) + ".com", strings.Repeat("b", 64), strings.Repeat("b", 65), "1.2.3.4", "a.-b",
}

func TestValidatorsMatchTheirGrammar(t *testing.T) {
	for _, s := range validatorSeeds {
		if got, want := validDomain(s), domainRE.MatchString(s); got != want {
			t.Errorf("validDomain(%q) = %v, want %v", s, got, want)
		}
		if got, want := validCookieName(s), cookieNameRE.MatchString(s); got != want {
			t.Errorf("validCookieName(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzValidators(f *testing.F) {
	for _, s := range validatorSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validDomain(s), domainRE.MatchString(s); got != want {
			t.Errorf("validDomain(%q) = %v, want %v", s, got, want)
		}
		if got, want := validCookieName(s), cookieNameRE.MatchString(s); got != want {
			t.Errorf("validCookieName(%q) = %v, want %v", s, got, want)
		}
	})
}
