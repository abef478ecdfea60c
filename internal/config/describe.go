package config

import (
	"reflect"

	"gopkg.in/yaml.v3"
)

// describe says what a value of type t is written as, for error messages.
func describe(t reflect.Type) string {
	switch t {
	case durationType:
		return "a duration (like 30s or 250ms)"
	case sizeType:
		return "a size (like 1024 or 64KiB)"
	case urlType:
		return "a URL"
	case regexpType:
		return "a regular expression"
	case prefixType:
		return "an IP address or prefix (like 10.0.0.0/8)"
	case targetType:
		return "a URL or a mapping {url, weight}"
	case middlewareType:
		return "a one-key mapping {NAME: {settings}}"
	case statusesType:
		return "status codes and ranges (like \"200-399\" or \"200,204\")"
	case ratioType:
		return "a percentage (like 20%)"
	case retryOnType:
		return "connect, timeout, reset or a status code"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list of " + plural(t.Elem())
	case reflect.Map:
		return "a mapping of " + plural(t.Elem())
	case reflect.Pointer:
		return describe(t.Elem())
	}
	return "a mapping"
}

func plural(t reflect.Type) string {
	switch t {
	case durationType:
		return "durations"
	case sizeType:
		return "sizes"
	case urlType:
		return "URLs"
	case regexpType:
		return "regular expressions"
	case prefixType:
		return "IP addresses or prefixes"
	case targetType:
		return "targets (URLs or {url, weight} mappings)"
	case middlewareType:
		return "one-key mappings {NAME: {settings}}"
	case statusesType:
		return "status code lists"
	case ratioType:
		return "percentages"
	case retryOnType:
		return "retry conditions (connect, timeout, reset or a status code)"
	}
	switch t.Kind() {
	case reflect.String:
		return "strings"
	case reflect.Bool:
		return "booleans"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integers"
	case reflect.Float64:
		return "numbers"
	case reflect.Slice:
		return "lists"
	case reflect.Pointer:
		return plural(t.Elem())
	}
	return "mappings"
}

// describeNode says what was written, quoting short scalars so the user can
// find them.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	switch n.ShortTag() {
	case "!!str":
		return "the string " + quote(v)
	case "!!int":
		return "the integer " + v
	case "!!float":
		return "the number " + v
	case "!!bool":
		return v
	case "!!null":
		return "null"
	}
	return n.ShortTag() + " " + quote(v)
}
