package filter

import "github.com/gatehouse-proxy/gatehouse/internal/h1"

// ValidHeaderName reports whether s can be a header field name (an RFC
// 9110 token), for filters that set headers named in their settings.
func ValidHeaderName(s string) bool { return h1.IsToken([]byte(s)) }
