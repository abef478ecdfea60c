package server

import (
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"gopkg.in/yaml.v3"
)

// redacted stands in for a secret in GET /api/v1/config.
const redacted = "[redacted]"

// sensitiveWords mark a field or key whose value is never shown, wherever
// it is (filter settings and header names included): passwords, secrets,
// tokens, keys, credentials and user tables. They are matched in the name
// lower-cased without '-' and '_' (X-Api-Key, api_key and apiKey alike).
// Names ending in _file are paths, shown.
var sensitiveWords = []string{"password", "passwd", "secret", "token", "credential", "private", "apikey", "accesskey",
	"authorization", "cookie", "users", "htpasswd", "signingkey", "hmac"}

func sensitive(name string) bool {
	n := strings.ToLower(name)
	if strings.HasSuffix(n, "_file") {
		return false
	}
	n = strings.NewReplacer("-", "", "_", "").Replace(n)
	for _, w := range sensitiveWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactedConfig renders the running configuration with the names of the
// file (yaml field names) and secrets replaced by "[redacted]".
func redactedConfig(c *config.Config) any {
	return map[string]any{"file": c.File, "hash": c.Hash, "config": toJSON(reflect.ValueOf(*c))}
}

var (
	durationT = reflect.TypeFor[time.Duration]()
	urlT      = reflect.TypeFor[*url.URL]()
	regexpT   = reflect.TypeFor[*regexp.Regexp]()
	prefixT   = reflect.TypeFor[netip.Prefix]()
	statusT   = reflect.TypeFor[config.StatusRanges]()
	retryOnT  = reflect.TypeFor[config.RetryOn]()
	mwT       = reflect.TypeFor[config.Middleware]()
	ratioT    = reflect.TypeFor[config.Ratio]()
)

// toJSON converts a configuration value into plain JSON values.
func toJSON(v reflect.Value) any {
	switch v.Type() {
	case durationT:
		return time.Duration(v.Int()).String()
	case urlT:
		if v.IsNil() {
			return nil
		}
		return v.Interface().(*url.URL).Redacted()
	case regexpT:
		if v.IsNil() {
			return nil
		}
		return v.Interface().(*regexp.Regexp).String()
	case prefixT:
		return v.Interface().(netip.Prefix).String()
	case statusT:
		return v.Interface().(config.StatusRanges).String()
	case retryOnT:
		return v.Interface().(config.RetryOn).String()
	case ratioT:
		return strconv.FormatFloat(v.Float()*100, 'f', -1, 64) + "%"
	case mwT:
		m := v.Interface().(config.Middleware)
		return map[string]any{m.Name: nodeJSON(m.Settings)}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return toJSON(v.Elem())
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			if sensitive(name) {
				if !v.Field(i).IsZero() {
					out[name] = redacted
				}
				continue
			}
			if j := toJSON(v.Field(i)); !empty(j) {
				out[name] = j
			}
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		iter := v.MapRange()
		for iter.Next() {
			k := fmt.Sprint(iter.Key().Interface())
			if sensitive(k) {
				out[k] = redacted
				continue
			}
			out[k] = toJSON(iter.Value())
		}
		return out
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toJSON(v.Index(i))
		}
		return out
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	return fmt.Sprint(v.Interface())
}

// empty tells the values left out of the rendering to keep it readable:
// what is not set (nil, "", empty lists and maps). Zeros and false stay.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// nodeJSON converts a filter's settings (still YAML) the same way, keys
// named like secrets redacted.
func nodeJSON(n *yaml.Node) any {
	return nodeJSONDepth(n, 0)
}

// nodeJSONDepth stops at a depth no real setting reaches, so that aliases
// (which config loading bounds too) cannot make it loop.
func nodeJSONDepth(n *yaml.Node, depth int) any {
	if n == nil || depth > 32 {
		return nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			return nodeJSONDepth(n.Content[0], depth+1)
		}
	case yaml.AliasNode:
		return nodeJSONDepth(n.Alias, depth+1)
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if sensitive(k) {
				out[k] = redacted
				continue
			}
			out[k] = nodeJSONDepth(n.Content[i+1], depth+1)
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			out[i] = nodeJSONDepth(c, depth+1)
		}
		return out
	case yaml.ScalarNode:
		var v any
		if n.Decode(&v) == nil {
			return v
		}
		return n.Value
	}
	return nil
}
