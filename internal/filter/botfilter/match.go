package botfilter

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// uaList is a list of user-agent patterns, compiled once per configuration:
// "~REGEX" is a regular expression, anything else a case-sensitive
// substring. All substrings share one pass per pattern; the regular
// expressions are combined into a single one so that a request costs one
// regexp match however long the list.
type uaList struct {
	subs [][]byte
	re   *regexp.Regexp
}

func compileUAList(patterns []string) (*uaList, int, error) {
	l := &uaList{}
	var res []string
	for i, p := range patterns {
		if p == "" || p == "~" {
			return nil, i, fmt.Errorf("empty pattern")
		}
		if r, ok := strings.CutPrefix(p, "~"); ok {
			if _, err := regexp.Compile(r); err != nil {
				return nil, i, fmt.Errorf("bad regular expression: %v", err)
			}
			res = append(res, "(?:"+r+")")
			continue
		}
		l.subs = append(l.subs, []byte(p))
	}
	if len(res) > 0 {
		l.re = regexp.MustCompile(strings.Join(res, "|"))
	}
	return l, -1, nil
}

// match reports whether ua matches any pattern (a nil list matches nothing).
func (l *uaList) match(ua []byte) bool {
	if l == nil {
		return false
	}
	for _, s := range l.subs {
		if bytes.Contains(ua, s) {
			return true
		}
	}
	return l.re != nil && l.re.Match(ua)
}

func (l *uaList) empty() bool { return l == nil || len(l.subs) == 0 && l.re == nil }
