package filter

import (
	"strconv"

	"github.com/gatehouse-proxy/gatehouse/internal/h1"
)

// KeyPath is the field path of a mapping key under parent (for Errorf),
// quoted the way the configuration decoder quotes keys that are not plain
// words: users.alice, users["a.b"].
func KeyPath(parent, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
			break
		}
	}
	if !plain {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	return parent + "." + key
}

// ValidHeaderName reports whether s can be a header field name (an RFC
// 9110 token), for filters that set headers named in their settings.
func ValidHeaderName(s string) bool { return h1.IsToken([]byte(s)) }
