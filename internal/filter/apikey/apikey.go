// Package apikey is the api_key middleware: a request must carry, in a
// header, one of the keys whose SHA-256 digests are listed in a keys file.
// Only digests are stored, so the file grants nothing to whoever reads it.
//
// The presented key is never compared with anything: its SHA-256 digest is
// looked up in a map of the listed digests. The lookup's timing depends on
// that digest alone, which an attacker cannot steer toward a stored one
// (that would take a SHA-256 preimage), so timing reveals nothing about the
// keys, at any number of keys (a byte-by-byte compare of keys would leak
// their prefixes; a constant-time scan of every digest costs O(keys)).
package apikey

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/authmetrics"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/filewatch"
)

type settings struct {
	Header     string `yaml:"header"`
	KeysFile   string `yaml:"keys_file"`
	NameHeader string `yaml:"name_header"`
}

// keys maps the digest of each key to its name.
type keys map[[32]byte]string

// Filter is one api_key entry.
type Filter struct {
	header     string
	nameHeader string
	nameBytes  []byte
	challenge  string
	file       *filewatch.File[keys]
	m          *authmetrics.Counter
}

// New builds an api_key filter from its settings.
func New(b *filter.Build) (filter.Filter, error) {
	var s settings
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	if s.Header == "" {
		s.Header = "X-API-Key"
	}
	if !filter.ValidHeaderName(s.Header) {
		return nil, b.Errorf(pos, "header", "%q is not a valid header name", s.Header)
	}
	if s.NameHeader != "" && !filter.ValidHeaderName(s.NameHeader) {
		return nil, b.Errorf(pos, "name_header", "%q is not a valid header name", s.NameHeader)
	}
	if strings.EqualFold(s.NameHeader, s.Header) {
		return nil, b.Errorf(pos, "name_header", "name_header must differ from header")
	}
	if s.KeysFile == "" {
		return nil, b.Errorf(pos, "keys_file", "keys_file is required: a file of NAME:SHA256HEX lines")
	}
	data, err := filewatch.ReadFile(s.KeysFile)
	if err != nil {
		return nil, b.Errorf(pos, "keys_file", "%v", err)
	}
	set, err := parseKeys(data)
	if err != nil {
		return nil, b.Errorf(pos, "keys_file", "%s: %v", s.KeysFile, err)
	}
	w, err := filter.Keep(b.State, "api_key.keys_file:"+s.KeysFile, func() (*filewatch.File[keys], error) {
		return filewatch.Watch(s.KeysFile, filewatch.Interval, parseKeys, b.Log), nil
	})
	if err != nil {
		return nil, err
	}
	w.Store(set, data)
	m, err := authmetrics.For(b, "api_key")
	if err != nil {
		return nil, err
	}
	return &Filter{
		m:          m,
		header:     s.Header,
		nameHeader: s.NameHeader,
		nameBytes:  []byte(s.NameHeader),
		challenge:  `APIKey header="` + s.Header + `"`,
		file:       w,
	}, nil
}

// parseKeys reads `NAME:SHA256HEX` lines; blank lines and # comments are
// skipped.
func parseKeys(data []byte) (keys, error) {
	out := keys{}
	names := map[string]bool{}
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name, digest, ok := strings.Cut(line, ":")
		name, digest = strings.TrimSpace(name), strings.TrimSpace(digest)
		if !ok || name == "" {
			return nil, fmt.Errorf("line %d: want NAME:SHA256HEX", n+1)
		}
		for _, c := range []byte(name) {
			if c <= 0x20 || c == 0x7f {
				return nil, fmt.Errorf("line %d: key name %q contains a space or a control character", n+1, name)
			}
		}
		var d [32]byte
		if len(digest) != 64 {
			return nil, fmt.Errorf("line %d: %q is not a SHA-256 digest (64 hex digits); the file holds digests, never keys (make one with: printf %%s KEY | sha256sum)", n+1, name)
		}
		if _, err := hex.Decode(d[:], []byte(digest)); err != nil {
			return nil, fmt.Errorf("line %d: %q: the digest is not hexadecimal", n+1, name)
		}
		if names[name] {
			return nil, fmt.Errorf("line %d: key name %q is listed twice", n+1, name)
		}
		if _, dup := out[d]; dup {
			return nil, fmt.Errorf("line %d: the digest of %q is listed twice", n+1, name)
		}
		names[name] = true
		out[d] = name
	}
	return out, nil
}

// Serve lets the request through when it carries a listed key.
func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	if f.nameHeader != "" {
		x.Req.Header.Del(f.nameHeader)
	}
	var v []byte
	n := 0
	for i := range x.Req.Header {
		if exchange.EqualFold(x.Req.Header[i].Name, f.header) {
			if n == 0 {
				v = x.Req.Header[i].Value
			}
			n++
		}
	}
	switch {
	case n == 0 || len(v) == 0:
		x.Log.Blocked = "api_key:no_key"
	case n > 1:
		x.Log.Blocked = "api_key:malformed"
	default:
		sum := sha256.Sum256(v)
		name, ok := f.file.Load()[sum]
		if ok {
			// The key is the client's secret: the backend gets its name.
			x.Req.Header.Del(f.header)
			if f.nameHeader != "" {
				x.Req.Header.Add(f.nameBytes, []byte(name))
			}
			x.Log.User = name
			f.m.Allowed()
			next.Serve(x)
			return
		}
		x.Log.Blocked = "api_key:unknown_key"
	}
	f.m.Refused(x.Log.Blocked)
	filter.Reply(x, 401, filter.StatusText(401), "WWW-Authenticate", f.challenge)
}
