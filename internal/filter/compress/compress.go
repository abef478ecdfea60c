// Package compress is the `compress` middleware: responses are encoded with
// zstd, brotli or gzip as the client's Accept-Encoding allows (RFC 9110
// §12.5.3), streaming as they come, and request bodies sent encoded may be
// decoded for the backend, behind a guard against decompression bombs.
package compress

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/klauspost/compress/zstd"
)

// Settings are the fields of a `compress:` entry.
type Settings struct {
	Algorithms []string    `yaml:"algorithms"` // in order of preference
	Level      string      `yaml:"level"`      // fastest | default | better | best
	Levels     Levels      `yaml:"levels"`     // numeric level per coding, over level
	MinBytes   config.Size `yaml:"min_bytes"`
	Types      []string    `yaml:"types"`

	DecompressRequests   bool        `yaml:"decompress_requests"`
	MaxDecompressedBytes config.Size `yaml:"max_decompressed_bytes"`
	MaxRatio             int         `yaml:"max_ratio"`
}

// Levels overrides the level of one coding with the library's own number.
type Levels struct {
	Gzip int `yaml:"gzip"`
	Br   int `yaml:"br"`
	Zstd int `yaml:"zstd"`
}

// Defaults.
const (
	defaultMinBytes             = 1024
	defaultMaxDecompressedBytes = 16 << 20
	defaultMaxRatio             = 100
)

var defaultAlgorithms = []string{"zstd", "br", "gzip"}

// DefaultTypes are the media types compressed when `types` is not given:
// text and the structured formats around it, as Caddy's and nginx's
// common configurations list them. Images, audio, video, archives and
// fonts in WOFF are compressed already and gain nothing.
var DefaultTypes = []string{
	"text/*",
	"application/json", "application/ld+json", "application/manifest+json", "application/problem+json",
	"application/geo+json", "application/vnd.api+json", "application/x-ndjson",
	"application/javascript", "application/x-javascript", "application/ecmascript",
	"application/xml", "application/xhtml+xml", "application/atom+xml", "application/rss+xml",
	"application/problem+xml", "image/svg+xml",
	"application/wasm", "application/graphql-response+json",
	"application/x-yaml", "application/yaml", "application/toml",
	"font/ttf", "font/otf", "application/vnd.ms-fontobject", "image/x-icon", "image/bmp",
}

// mediaType is one entry of `types`: an exact type, or "major/*".
type mediaType struct {
	s     string // lower case; "text/" for "text/*"
	major bool
}

// Filter is one configured `compress` entry.
type Filter struct {
	order    []alg // the configured codings, by preference
	pools    [numAlgs]*encPool
	minBytes int64
	types    []mediaType
	writers  sync.Pool

	decompress bool
	maxOut     int64
	maxRatio   int64
	decoders   *decoderPools
}

// New is the middleware factory.
func New(b *filter.Build) (filter.Filter, error) {
	var s Settings
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	f := &Filter{minBytes: defaultMinBytes}

	names := s.Algorithms
	if !pos.Has(b.Entry.Path + ".algorithms") {
		names = defaultAlgorithms
	} else if len(names) == 0 {
		return nil, b.Errorf(pos, "algorithms", "list at least one of zstd, br, gzip (or remove the middleware)")
	}
	for i, n := range names {
		a, ok := algByName(n)
		if !ok {
			return nil, b.Errorf(pos, "algorithms["+strconv.Itoa(i)+"]", "unknown coding %q; use zstd, br or gzip", n)
		}
		if slices.Contains(f.order, a) {
			return nil, b.Errorf(pos, "algorithms["+strconv.Itoa(i)+"]", "%s is listed twice", n)
		}
		f.order = append(f.order, a)
	}

	level := s.Level
	if level == "" {
		level = "default"
	}
	levels, ok := namedLevels[level]
	if !ok {
		return nil, b.Errorf(pos, "level", "level %q: use fastest, default, better or best (a number for one coding goes in levels: {gzip: 6})", s.Level)
	}
	for _, l := range [...]struct {
		a alg
		v int
	}{{algZstd, s.Levels.Zstd}, {algBr, s.Levels.Br}, {algGzip, s.Levels.Gzip}} {
		a, v := l.a, l.v
		if !pos.Has(b.Entry.Path + ".levels." + a.String()) {
			continue
		}
		if r := levelRange[a]; v < r[0] || v > r[1] {
			return nil, b.Errorf(pos, "levels."+a.String(), "%s level must be %d to %d", a, r[0], r[1])
		}
		levels[a] = v
	}
	if pos.Has(b.Entry.Path + ".min_bytes") {
		if s.MinBytes > 1<<20 {
			return nil, b.Errorf(pos, "min_bytes", "at most 1MiB (this much of a body is held before deciding)")
		}
		f.minBytes = int64(s.MinBytes)
	}

	types := s.Types
	if !pos.Has(b.Entry.Path + ".types") {
		types = DefaultTypes
	}
	for i, t := range types {
		mt, err := parseMediaType(t)
		if err != nil {
			return nil, b.Errorf(pos, "types["+strconv.Itoa(i)+"]", "%v", err)
		}
		f.types = append(f.types, mt)
	}

	f.decompress = s.DecompressRequests
	f.maxOut = defaultMaxDecompressedBytes
	f.maxRatio = defaultMaxRatio
	if pos.Has(b.Entry.Path + ".max_decompressed_bytes") {
		if s.MaxDecompressedBytes <= 0 {
			return nil, b.Errorf(pos, "max_decompressed_bytes", "must be more than 0")
		}
		f.maxOut = int64(s.MaxDecompressedBytes)
	}
	if pos.Has(b.Entry.Path + ".max_ratio") {
		if s.MaxRatio < 2 {
			return nil, b.Errorf(pos, "max_ratio", "must be at least 2")
		}
		f.maxRatio = int64(s.MaxRatio)
	}
	if !f.decompress {
		for _, field := range []string{"max_decompressed_bytes", "max_ratio"} {
			if pos.Has(b.Entry.Path + "." + field) {
				return nil, b.Errorf(pos, field, "has no effect without decompress_requests: true")
			}
		}
	} else {
		f.decoders, _ = filter.Keep(b.State, "compress/dec", func() (*decoderPools, error) { return &decoderPools{}, nil })
	}
	// Pools last: a configuration that fails makes none.
	for _, a := range f.order {
		// Encoders are kept across reloads: the same coding and level in
		// any route shares one pool of warm encoders.
		lvl := levels[a]
		if a == algZstd {
			// zstd levels map onto four encoder speeds: one pool per speed.
			lvl = int(zstd.EncoderLevelFromZstd(lvl))
		}
		key := fmt.Sprintf("compress/enc/%s/%d", a, lvl)
		p, err := filter.Keep(b.State, key, func() (*encPool, error) { return newEncPool(a, levels[a]) })
		if err != nil {
			return nil, b.Errorf(pos, "level", "%s: %v", a, err)
		}
		f.pools[a] = p
	}

	f.writers.New = func() any { return newRW(f) }
	return f, nil
}

func algByName(n string) (alg, bool) {
	for a, name := range algNames {
		if strings.EqualFold(n, name) {
			return alg(a), true
		}
	}
	return 0, false
}

// parseMediaType checks one `types` entry: "type/subtype" or "type/*".
func parseMediaType(t string) (mediaType, error) {
	s := strings.ToLower(strings.TrimSpace(t))
	major, minor, ok := strings.Cut(s, "/")
	if !ok || major == "" || minor == "" || major == "*" || strings.ContainsAny(s, " ;,\t") || strings.Count(s, "/") != 1 {
		return mediaType{}, fmt.Errorf("%q is not a media type: write type/subtype or type/*", t)
	}
	if minor == "*" {
		return mediaType{s: major + "/", major: true}, nil
	}
	if strings.Contains(minor, "*") {
		return mediaType{}, fmt.Errorf("%q: a wildcard stands for the whole subtype only (type/*)", t)
	}
	return mediaType{s: s}, nil
}

// Serve encodes the response of the rest of the chain when it should, and
// decodes the request body first when configured to.
func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	var dec *bodyDecoder
	if f.decompress {
		dec = f.decodeRequest(x.Req)
	}
	w := f.writers.Get().(*rw)
	w.reset(x.W, x.Req, dec)
	inner := x.W
	x.W = w
	next.Serve(x)
	x.W = inner
	// A handler that wrote its whole answer without Finish (the engine ends
	// the response after the chain returns) still needs the encoder's end.
	w.complete()
	w.release()
	f.writers.Put(w)
	if dec != nil {
		dec.restore(x.Req)
	}
}
