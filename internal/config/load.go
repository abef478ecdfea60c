package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Load reads, decodes and validates the configuration file at path. Any
// error it returns is an Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// The path is already the error's first word; do not repeat it.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data)
}

// Parse decodes and validates a configuration; file names it in errors and
// in Config.File. On failure the error is an Errors holding every problem
// found, ordered by position, and the Config is nil.
func Parse(file string, data []byte) (*Config, error) {
	root, errs := parseYAML(file, data)
	if errs != nil {
		return nil, errs
	}
	sum := sha256.Sum256(data)
	cfg := &Config{File: file, Hash: hex.EncodeToString(sum[:])}
	d := newDecoder(file, root)
	d.value(root, reflect.ValueOf(cfg).Elem(), "")
	applyDefaults(cfg, d.pos)
	errs = append(d.errs, validate(file, cfg, d.pos, d.bad)...)
	if len(errs) > 0 {
		return nil, errs.tidy()
	}
	return cfg, nil
}

// Decode decodes n into v (a pointer) with the same strict rules as the
// configuration file: unknown fields are errors, durations and sizes take
// units, and every error names FILE:LINE:COL and a path starting at path.
// Filters use it on Middleware.Settings with Config.File and
// Middleware.Path. The Positions it returns tell where each value was
// written (and, by absence, which fields were not), for the caller's own
// defaults and validation. The error, if any, is an Errors.
func Decode(file, path string, n *yaml.Node, v any) (Positions, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("config.Decode: v must be a non-nil pointer")
	}
	if n == nil {
		return Positions{}, nil
	}
	d := newDecoder(file, n)
	d.value(n, rv.Elem(), path)
	if len(d.errs) > 0 {
		return d.pos, d.errs.tidy()
	}
	return d.pos, nil
}

// Positions maps field paths (sites[0].routes[1].upstream) to where their
// values were written. Fields that were absent or null have no entry.
type Positions map[string]Pos

// Has reports whether the field at path was written (and not null).
func (p Positions) Has(path string) bool {
	_, ok := p[path]
	return ok
}

// Of returns where the value at path was written or, for an absent field,
// where its closest written ancestor was: "addr is required" is reported at
// the listener that lacks it. It is the zero Pos only if nothing was written.
func (p Positions) Of(path string) Pos {
	for {
		if pos, ok := p[path]; ok {
			return pos
		}
		if path == "" {
			return Pos{}
		}
		path = parentPath(path)
	}
}

// tidy sorts errors by position and keeps one of each message per place.
// Repeats come from aliases: an anchored value used in ten places is
// decoded ten times, under ten paths, but is fixed once, where it is written.
func (es Errors) tidy() Errors {
	es.sortByPosition()
	type key struct {
		file      string
		line, col int
		msg       string
	}
	out := es[:0]
	seen := map[key]bool{}
	for _, e := range es {
		k := key{e.File, e.Line, e.Col, e.Msg}
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// parseYAML returns the root node of the single document in data.
func parseYAML(file string, data []byte) (root *yaml.Node, errs Errors) {
	defer func() {
		// yaml.v3 reports syntax errors by panicking internally and
		// recovering; should a bug let a panic through, a reload must
		// reject the file, not crash the proxy.
		if r := recover(); r != nil {
			root, errs = nil, Errors{{File: file, Line: 1, Col: 1, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, Errors{{File: file, Line: 1, Col: 1, Msg: "empty configuration"}}
		}
		return nil, Errors{syntaxError(file, data, err)}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, Errors{{File: file, Line: max(1, doc.Line), Col: max(1, doc.Column), Msg: "empty configuration"}}
	}
	root = doc.Content[0]

	// yaml.v3 silently ignores all documents after the first; another one
	// is most likely a configuration pasted twice. Empty ones are harmless.
	for {
		var next yaml.Node
		switch err := dec.Decode(&next); {
		case err == io.EOF:
			return root, nil
		case err != nil:
			return nil, Errors{syntaxError(file, data, err)}
		case len(next.Content) > 0 && !isNull(next.Content[0]):
			p := nodePos(next.Content[0])
			return nil, Errors{{File: file, Line: p.Line, Col: p.Col, Msg: "a configuration file holds a single YAML document; remove the second one (after ---)"}}
		}
	}
}

// syntaxError turns yaml.v3's "yaml: line N: msg" into an Error. yaml.v3
// gives no column, and no line for problems on the first line or with the
// bytes themselves, which we then find ourselves.
func syntaxError(file string, data []byte, err error) *Error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok && !strings.Contains(rest, "\n") {
		n, text, found := strings.Cut(rest, ": ")
		line, convErr := strconv.Atoi(n)
		if found && convErr == nil && line > 0 && n[0] != '+' {
			return &Error{File: file, Line: line, Col: 1, Msg: "invalid YAML: " + text}
		}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if anchor, ok := cutAround(msg, "unknown anchor '", "' referenced"); ok && !strings.Contains(anchor, "\n") {
		if i := bytes.Index(data, []byte("*"+anchor)); i >= 0 {
			line, col := lineCol(data, i)
			return &Error{File: file, Line: line, Col: col, Msg: "invalid YAML: " + msg}
		}
	}
	line, col := badByte(data)
	return &Error{File: file, Line: line, Col: col, Msg: "invalid YAML: " + msg}
}

// cutAround returns what s holds between prefix and suffix.
func cutAround(s, prefix, suffix string) (string, bool) {
	s, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", false
	}
	return strings.CutSuffix(s, suffix)
}

// badByte finds the first character YAML does not allow (invalid UTF-8 or
// a control character), or else points at the start of the file.
func badByte(data []byte) (line, col int) {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1,
			r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r == 0x7f, r >= 0x80 && r <= 0x9f && r != 0x85, r == 0xfffe, r == 0xffff:
			return lineCol(data, i)
		}
		i += size
	}
	return 1, 1
}

// lineCol converts a byte offset to a 1-based line and column, counting
// columns in characters as yaml.v3 does.
func lineCol(data []byte, offset int) (line, col int) {
	before := data[:offset]
	line = 1 + bytes.Count(before, []byte("\n"))
	if i := bytes.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return line, 1 + utf8.RuneCount(before)
}
