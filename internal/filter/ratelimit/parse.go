package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is Count requests per Period.
type Rate struct {
	Count  int64
	Period time.Duration
}

// Bounds that keep the GCRA arithmetic (nanoseconds in int64) far from
// overflow: emission interval × burst stays below a year.
const (
	maxCount  = 1_000_000_000
	maxPeriod = 366 * 24 * time.Hour
	maxBurst  = 1_000_000_000
)

// ParseRate reads "100/s", "6000/m", "10/h", "1000/d", or a count per a
// duration such as "5/10s" or "30/1m30s".
func ParseRate(s string) (Rate, error) {
	num, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, errors.New(`want COUNT/PERIOD, e.g. "100/s", "6000/m", "5/10s"`)
	}
	num, per = strings.TrimSpace(num), strings.TrimSpace(per)
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return Rate{}, fmt.Errorf("count %q is not a whole number", num)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > maxCount {
		return Rate{}, fmt.Errorf("count %q must be between 1 and %d", num, maxCount)
	}
	var d time.Duration
	switch per {
	case "s", "sec", "second":
		d = time.Second
	case "m", "min", "minute":
		d = time.Minute
	case "h", "hour":
		d = time.Hour
	case "d", "day":
		d = 24 * time.Hour
	default:
		if per == "" || per[0] < '0' || per[0] > '9' {
			return Rate{}, fmt.Errorf("period %q: want s, m, h, d or a duration such as 10s", per)
		}
		d, err = time.ParseDuration(per)
		if err != nil {
			return Rate{}, fmt.Errorf("period %q: want s, m, h, d or a duration such as 10s", per)
		}
	}
	if d <= 0 || d > maxPeriod {
		return Rate{}, fmt.Errorf("period %q must be more than 0 and at most 366 days", per)
	}
	if d/time.Duration(n) < 1 {
		return Rate{}, fmt.Errorf("%d per %v is more than one request per nanosecond", n, d)
	}
	return Rate{Count: n, Period: d}, nil
}

// Emission is the interval between requests at this rate (GCRA's T).
func (r Rate) Emission() time.Duration { return r.Period / time.Duration(r.Count) }

// partKind is what one component of a key is made of.
type partKind uint8

const (
	partClientIP partKind = iota + 1
	partRoute
	partHeader
	partQuery
)

// part is one component of a rate-limit key.
type part struct {
	kind partKind
	name string // header or query parameter name
}

func (p part) String() string {
	switch p.kind {
	case partClientIP:
		return "client_ip"
	case partRoute:
		return "route"
	case partHeader:
		return "header:" + p.name
	default:
		return "query:" + p.name
	}
}

// maxParts bounds a combined key: more would be a configuration mistake.
const maxParts = 8

// parsePart reads one key component: client_ip, route, header:NAME or query:NAME.
func parsePart(s string) (part, error) {
	switch s {
	case "client_ip":
		return part{kind: partClientIP}, nil
	case "route":
		return part{kind: partRoute}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == "header":
		if !isToken(name) {
			return part{}, fmt.Errorf("header name %q is not an HTTP token", name)
		}
		return part{kind: partHeader, name: name}, nil
	case ok && kind == "query":
		if name == "" || strings.ContainsAny(name, "&=#?% \t\r\n") || !printable(name) {
			return part{}, fmt.Errorf("query parameter name %q must be non-empty, printable, without & = # ? %% or spaces", name)
		}
		return part{kind: partQuery, name: name}, nil
	}
	return part{}, fmt.Errorf("unknown key %q: want client_ip, route, header:NAME or query:NAME", s)
}

// parseParts checks a list of key components: at least one, at most
// maxParts, none twice.
func parseParts(items []string) ([]part, error) {
	if len(items) == 0 {
		return nil, errors.New("needs at least one of client_ip, route, header:NAME, query:NAME")
	}
	if len(items) > maxParts {
		return nil, fmt.Errorf("at most %d components", maxParts)
	}
	out := make([]part, 0, len(items))
	seen := map[string]bool{}
	for _, it := range items {
		p, err := parsePart(it)
		if err != nil {
			return nil, err
		}
		// Header names are case-insensitive: header:X-A and header:x-a are one.
		id := strings.ToLower(p.String())
		if p.kind == partQuery {
			id = p.String()
		}
		if seen[id] {
			return nil, fmt.Errorf("%q is listed twice", it)
		}
		seen[id] = true
		out = append(out, p)
	}
	return out, nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] == 0x7f {
			return false
		}
	}
	return true
}
