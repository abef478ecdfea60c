package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Errors is every problem found in one configuration file. Parse and Load
// return it as their error so that `gatehouse validate` can print them all,
// one per line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortByPosition orders errors as a reader meets them in the file; errors
// from decoding and from validation are found in different passes.
func (es Errors) sortByPosition() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Col, b.Col)
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

// fieldPath, indexPath and keyPath build the field paths shown in errors
// (sites[0].routes[2].upstream, upstreams.app.targets[0]). Decoder and
// validator must build them the same way, since positions are looked up by
// path.
func fieldPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// KeyPath is the path of mapping key under parent, as the decoder writes
// it (filters use it to position errors about their own mapping fields).
func KeyPath(parent, key string) string { return keyPath(parent, key) }

// keyPath quotes keys that would make the path ambiguous, such as header
// names containing dots.
func keyPath(parent, key string) string {
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
	return fieldPath(parent, key)
}

// parentPath strips the last element of a path: a.b[2] -> a.b -> a -> "".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		// The bracket may hold a quoted key containing '[' or '.', so find
		// the opening bracket that starts the quoted or numeric element.
		if i := strings.LastIndex(path, "[\""); i >= 0 && strings.HasSuffix(path, "\"]") {
			return path[:i]
		}
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// isUnder reports whether path is base itself or one of its descendants.
func isUnder(path, base string) bool {
	if !strings.HasPrefix(path, base) {
		return false
	}
	rest := path[len(base):]
	return rest == "" || base == "" || rest[0] == '.' || rest[0] == '['
}

// suggest returns ` (did you mean "x"?)` when one of the candidates is close
// enough to what was written to be the likely intent, else "".
func suggest(got string, candidates []string) string {
	if len(got) > 64 {
		return "" // not a typo; and keeps the quadratic distance cheap
	}
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(normalizeName(got), normalizeName(c))
		if d < bestDist || bestDist < 0 {
			best, bestDist = c, d
		}
	}
	if best == "" || bestDist > max(1, min(3, len(best)/3)) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// normalizeName makes pathPrefix, path-prefix and PATH_PREFIX all distance 0
// from path_prefix, since those are the usual ways of misspelling a field.
func normalizeName(s string) string {
	s = strings.ToLower(s)
	return strings.NewReplacer("_", "", "-", "").Replace(s)
}

// editDistance counts the insertions, deletions, substitutions and swaps of
// adjacent letters that turn a into b (optimal string alignment distance):
// swapped letters are the most common typo, so they count as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// joinAnd renders "a, b and c" for messages; joinOr "a, b or c".
func joinAnd(items []string) string { return join(items, "and") }
func joinOr(items []string) string  { return join(items, "or") }

func join(items []string, conj string) string {
	switch len(items) {
	case 0:
		return "none"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + conj + " " + items[len(items)-1]
}

// Suggest is suggest for the packages that check names of their own
// (middleware names, say): ` (did you mean "x"?)` or "".
func Suggest(got string, candidates []string) string { return suggest(got, candidates) }
