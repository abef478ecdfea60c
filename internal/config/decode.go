package config

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The decoder walks yaml.Node trees itself instead of using yaml.Unmarshal,
// because Unmarshal stops at the first type error, cannot reject unknown
// fields with a position, and cannot tell an absent field from a zero one.

var (
	durationType   = reflect.TypeFor[time.Duration]()
	sizeType       = reflect.TypeFor[Size]()
	urlType        = reflect.TypeFor[*url.URL]()
	regexpType     = reflect.TypeFor[*regexp.Regexp]()
	prefixType     = reflect.TypeFor[netip.Prefix]()
	targetType     = reflect.TypeFor[Target]()
	middlewareType = reflect.TypeFor[Middleware]()
	nodeType       = reflect.TypeFor[*yaml.Node]()
	posType        = reflect.TypeFor[Pos]()
	statusesType   = reflect.TypeFor[StatusRanges]()
	ratioType      = reflect.TypeFor[Ratio]()
	retryOnType    = reflect.TypeFor[RetryOn]()
)

type decoder struct {
	file string
	errs Errors
	// pos records where each value was written, by path. A path is present
	// only if the field was written with a non-null value, which is how
	// defaults tell "absent" from "written as zero".
	pos Positions
	// bad holds the paths whose value could not be decoded, so validation
	// does not pile a second, confusing error on the same spot.
	bad map[string]bool
	// expanding holds the anchors whose aliases are being decoded, to stop
	// on `&a {<<: *a}`, which yaml.v3 happily builds as a cyclic tree.
	expanding map[*yaml.Node]bool
	// budget bounds the number of nodes visited, so a small file of nested
	// aliases ("billion laughs") cannot make us decode a huge tree.
	budget     int
	overBudget bool
}

func newDecoder(file string, root *yaml.Node) *decoder {
	return &decoder{
		file:      file,
		pos:       Positions{},
		bad:       map[string]bool{},
		expanding: map[*yaml.Node]bool{},
		budget:    10000 + 10*countNodes(root),
	}
}

// countNodes counts the nodes written in the file, not following aliases.
func countNodes(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

func nodePos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func (d *decoder) errorAt(p Pos, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: p.Line, Col: p.Col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// fail reports a value that could not be decoded.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.errorAt(nodePos(n), path, format, args...)
}

func (d *decoder) mismatch(n *yaml.Node, t reflect.Type, path string) {
	d.fail(n, path, "expected %s, got %s", describe(t), describeNode(n))
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// value decodes n into v. A null node leaves v as it is: `admin:` with
// nothing after it means the same as no admin at all.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		d.alias(n, path, func(target *yaml.Node) { d.value(target, v, path) })
		return
	}
	if !d.spend(n, path) {
		return
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if isNull(n) {
		return // keep the zero value (or default): null is "not written"
	}
	d.pos[path] = nodePos(n)
	d.into(n, v, path)
}

// spend takes one node from the budget, reporting (once) when it runs out.
func (d *decoder) spend(n *yaml.Node, path string) bool {
	if d.budget--; d.budget >= 0 {
		return true
	}
	if !d.overBudget {
		d.overBudget = true
		d.fail(n, path, "too many alias expansions: the file expands to too large a configuration")
		// What was decoded so far is a fragment; checking it would only
		// add noise to the one error that matters.
		d.bad[""] = true
	}
	return false
}

// alias calls f with the node that alias n refers to, unless that node is
// already being decoded (the alias sits inside its own anchor).
func (d *decoder) alias(n *yaml.Node, path string, f func(*yaml.Node)) {
	target := n.Alias
	if target == nil || d.expanding[target] {
		d.fail(n, path, "alias *%s refers to a value that contains it", n.Value)
		return
	}
	d.expanding[target] = true
	defer delete(d.expanding, target)
	f(target)
}

func (d *decoder) into(n *yaml.Node, v reflect.Value, path string) {
	switch v.Type() {
	case durationType:
		if dur, ok := d.duration(n, path); ok {
			v.SetInt(int64(dur))
		}
		return
	case sizeType:
		if size, ok := d.size(n, path); ok {
			v.SetInt(int64(size))
		}
		return
	case urlType:
		if u, ok := d.url(n, path); ok {
			v.Set(reflect.ValueOf(u))
		}
		return
	case regexpType:
		if re, ok := d.regexp(n, path); ok {
			v.Set(reflect.ValueOf(re))
		}
		return
	case prefixType:
		if p, ok := d.prefix(n, path); ok {
			v.Set(reflect.ValueOf(p))
		}
		return
	case targetType:
		d.target(n, v.Addr().Interface().(*Target), path)
		return
	case middlewareType:
		d.middleware(n, v.Addr().Interface().(*Middleware), path)
		return
	case nodeType:
		v.Set(reflect.ValueOf(n))
		return
	case statusesType:
		if r, ok := d.statusRanges(n, path); ok {
			v.Set(reflect.ValueOf(r))
		}
		return
	case ratioType:
		if r, ok := d.ratio(n, path); ok {
			v.SetFloat(float64(r))
		}
		return
	case retryOnType:
		if r, ok := d.retryOn(n, path); ok {
			v.Set(reflect.ValueOf(r))
		}
		return
	}

	switch v.Kind() {
	case reflect.String:
		if s, ok := d.str(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.mismatch(n, v.Type(), path)
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := d.integer(n, path)
		if !ok {
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "%d is out of range", i)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		// A ratio or a weight: 0.25, 1, 1e-3. NaN and infinities are no
		// setting anyone means.
		if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!float" || n.ShortTag() == "!!int") {
			f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
			if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				v.SetFloat(f)
				return
			}
		}
		d.mismatch(n, v.Type(), path)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.into(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.list(n, v, path)
	case reflect.Map:
		d.dict(n, v, path)
	default:
		// Only reachable if someone adds a field of a type this decoder
		// does not know; say so rather than silently ignoring the value.
		d.fail(n, path, "internal error: cannot decode into %s", v.Type())
	}
}

// str accepts any plain scalar, so `query: {debug: 1}` or `min_version: 1.2`
// mean what they look like instead of failing on YAML's typing.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
			return n.Value, true
		}
	}
	d.mismatch(n, reflect.TypeFor[string](), path)
	return "", false
}

func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			// YAML integers may be written 0x1F, 0o17, 0b101 or 1_000.
			i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
			if err != nil {
				d.fail(n, path, "%s is out of range", n.Value)
				return 0, false
			}
			return i, true
		case "!!float":
			// yaml.v3 types integers too big for int64 as floats.
			if strings.Trim(n.Value, "+-0123456789") == "" {
				d.fail(n, path, "%s is out of range", n.Value)
				return 0, false
			}
		}
	}
	d.mismatch(n, reflect.TypeFor[int](), path)
	return 0, false
}

func (d *decoder) list(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.mismatch(n, v.Type(), path)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := indexPath(path, i)
		target := item
		if item.Kind == yaml.AliasNode && item.Alias != nil {
			target = item.Alias
		}
		if isNull(target) {
			// A null field means "absent", but a null list item would be
			// a zero value the rest of the program cannot use.
			d.mismatch(item, v.Type().Elem(), ip)
			continue
		}
		d.value(item, s.Index(i), ip)
	}
	v.Set(s)
}

// structFields maps the yaml names of t's fields to their indexes. Fields
// without a yaml tag or tagged "-" are not read from the file.
func structFields(t reflect.Type) (index map[string]int, names []string) {
	index = map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		index[name] = i
		names = append(names, name)
	}
	return index, names
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, v.Type(), path)
		return
	}
	index, names := structFields(v.Type())
	for _, p := range d.pairs(n, path, "field") {
		fp := fieldPath(path, p.key.Value)
		i, ok := index[p.key.Value]
		if !ok {
			d.errorAt(nodePos(p.key), fp, "unknown field %q%s", p.key.Value, suggest(p.key.Value, names))
			continue
		}
		d.value(p.val, v.Field(i), fp)
	}
	if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
		f.Set(reflect.ValueOf(nodePos(n)))
	}
}

// dict decodes string-keyed mappings. Entries whose values are structs
// learn their name and position from the key (Upstream.Name, Upstream.Pos).
func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, v.Type(), path)
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.fail(n, path, "internal error: cannot decode into %s", t)
		return
	}
	elem := t.Elem()
	named := elem.Kind() == reflect.Pointer && elem.Elem().Kind() == reflect.Struct
	noun := "key"
	if named {
		noun = strings.ToLower(elem.Elem().Name())
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	for _, p := range d.pairs(n, path, noun) {
		kp := keyPath(path, p.key.Value)
		ev := reflect.New(elem).Elem()
		d.value(p.val, ev, kp)
		// An entry is where its key is: that is what a message about the
		// entry (a bad header name, an upstream without targets) points at,
		// and `app:` with no value still defines app.
		d.pos[kp] = nodePos(p.key)
		if named {
			if ev.IsNil() {
				ev.Set(reflect.New(elem.Elem()))
			}
			s := ev.Elem()
			if f := s.FieldByName("Name"); f.IsValid() && f.Kind() == reflect.String {
				f.SetString(p.key.Value)
			}
			if f := s.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
				f.Set(reflect.ValueOf(nodePos(p.key)))
			}
		}
		v.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(t.Key()), ev)
	}
}

type pair struct{ key, val *yaml.Node }

// pairs lists the entries of mapping n with merge keys (`<<: *base`)
// expanded, reporting duplicate and non-scalar keys. As in YAML 1.1, keys
// written in n override merged ones, and earlier merges override later.
func (d *decoder) pairs(n *yaml.Node, path, noun string) []pair {
	var own, merged []pair
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "expected a %s name, got %s", noun, describeNode(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, path, noun)...)
			continue
		}
		if prev, dup := first[k.Value]; dup {
			d.errorAt(nodePos(k), keyPath(path, k.Value), "duplicate %s %q (first defined at line %d)", noun, k.Value, prev.Line)
			continue
		}
		first[k.Value] = k
		own = append(own, pair{k, val})
	}
	for _, p := range merged {
		if _, dup := first[p.key.Value]; !dup {
			first[p.key.Value] = p.key
			own = append(own, p)
		}
	}
	return own
}

func (d *decoder) merge(n *yaml.Node, path, noun string) []pair {
	if n.Kind == yaml.SequenceNode {
		var ps []pair
		for _, item := range n.Content {
			ps = append(ps, d.mergeOne(item, path, noun)...)
		}
		return ps
	}
	return d.mergeOne(n, path, noun)
}

func (d *decoder) mergeOne(n *yaml.Node, path, noun string) []pair {
	if !d.spend(n, path) {
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		var ps []pair
		d.alias(n, path, func(target *yaml.Node) { ps = d.mergeOne(target, path, noun) })
		return ps
	case yaml.MappingNode:
		return d.pairs(n, path, noun)
	}
	d.fail(n, path, "a merge (<<) needs a mapping or a list of mappings, got %s", describeNode(n))
	return nil
}

func (d *decoder) target(n *yaml.Node, t *Target, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if u, ok := d.url(n, path); ok {
			t.URL = u
		}
		t.Pos = nodePos(n)
	case yaml.MappingNode:
		d.structure(n, reflect.ValueOf(t).Elem(), path)
	default:
		d.mismatch(n, targetType, path)
	}
}

// middleware keeps the settings as a node: each filter decodes its own
// fields with Decode when it is built, so this package need not know them.
func (d *decoder) middleware(n *yaml.Node, m *Middleware, path string) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, middlewareType, path)
		return
	}
	switch count := len(n.Content) / 2; {
	case count == 0:
		d.fail(n, path, "a middleware entry is a one-key mapping {NAME: {settings}}; found no name")
		return
	case count > 1:
		var keys []string
		for i := 0; i < len(n.Content) && len(keys) < 4; i += 2 {
			keys = append(keys, quote(n.Content[i].Value))
		}
		if count > len(keys) {
			keys = append(keys, "more")
		}
		d.fail(n, path, "a middleware entry is a one-key mapping {NAME: {settings}}; found %d keys (%s): indent the settings under the name",
			count, joinAnd(keys))
		return
	}
	k := n.Content[0]
	if k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode || k.Value == "" {
		d.fail(k, path, "expected a middleware name, got %s", describeNode(k))
		return
	}
	m.Pos = nodePos(n)
	m.Name = k.Value
	m.Path = keyPath(path, k.Value)
	m.Settings = n.Content[1]
}
