// Package ratelimit is the rate_limit middleware: GCRA buckets keyed by
// client address, header, query parameter or route (or a combination),
// held in memory (sharded, bounded) or in Redis so that a fleet shares one
// limit. Refusals are 429 with Retry-After and the IETF draft's RateLimit
// and RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers).
package ratelimit

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/cluster"
	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"gopkg.in/yaml.v3"
)

// settings are the fields of a rate_limit entry (docs/config.md).
type settings struct {
	Key          *yaml.Node `yaml:"key"`
	Rate         string     `yaml:"rate"`
	Burst        int64      `yaml:"burst"`
	Store        string     `yaml:"store"`
	OnStoreError string     `yaml:"on_store_error"`
	IPv4Prefix   int        `yaml:"ipv4_prefix"`
	IPv6Prefix   int        `yaml:"ipv6_prefix"`
	MaxKeys      int        `yaml:"max_keys"`
	Headers      bool       `yaml:"headers"`
	Name         string     `yaml:"name"`
}

// Filter is one rate_limit entry.
type Filter struct {
	keys      keySpec
	emission  int64 // ns between requests at the configured rate
	tolerance int64 // emission × burst: how far ahead of now a bucket may run
	headers   bool
	failOpen  bool
	policy    []byte // RateLimit-Policy value
	name      []byte // policy name, as an sf-string
	local     *localStore
	redis     *redisStore
	series    *series
}

// New builds a rate_limit filter (the middleware factory).
func New(b *filter.Build) (filter.Filter, error) {
	s := settings{Store: "local", OnStoreError: "allow", IPv4Prefix: 32, IPv6Prefix: 64, MaxKeys: 100_000, Headers: true}
	pos, err := b.Decode(&s)
	if err != nil {
		return nil, err
	}
	has := func(f string) bool { return pos.Has(b.Entry.Path + "." + f) }
	f := &Filter{headers: s.Headers}

	items, at, err := keyItems(s.Key)
	if err == nil {
		f.keys.parts, err = parseParts(items)
	}
	if err != nil {
		if at != nil {
			return nil, config.Errors{{File: b.Config.File, Line: at.Line, Col: at.Column, Path: b.Entry.Path + ".key", Msg: err.Error()}}
		}
		return nil, b.Errorf(pos, "key", "%v", err)
	}
	if !has("rate") {
		return nil, b.Errorf(pos, "rate", `required: COUNT/PERIOD, e.g. "100/s" or "6000/m"`)
	}
	rate, err := ParseRate(s.Rate)
	if err != nil {
		return nil, b.Errorf(pos, "rate", "%v", err)
	}
	burst := rate.Count
	if has("burst") {
		burst = s.Burst
	}
	em := rate.Emission()
	if burst < 1 || burst > maxBurst {
		return nil, b.Errorf(pos, "burst", "must be between 1 and %d", maxBurst)
	}
	if time.Duration(burst) > maxPeriod/em {
		return nil, b.Errorf(pos, "burst", "%d requests at %s take more than a year to refill", burst, s.Rate)
	}
	f.emission, f.tolerance = int64(em), int64(em)*burst

	usesIP := false
	for _, p := range f.keys.parts {
		usesIP = usesIP || p.kind == partClientIP
	}
	for _, c := range []struct {
		field    string
		v, limit int
	}{{"ipv4_prefix", s.IPv4Prefix, 32}, {"ipv6_prefix", s.IPv6Prefix, 128}} {
		if !has(c.field) {
			continue
		}
		if !usesIP {
			return nil, b.Errorf(pos, c.field, "only applies when key includes client_ip")
		}
		if c.v < 1 || c.v > c.limit {
			return nil, b.Errorf(pos, c.field, "must be between 1 and %d", c.limit)
		}
	}
	f.keys.ipv4Prefix, f.keys.ipv6Prefix = s.IPv4Prefix, s.IPv6Prefix

	if s.Name != "" && !validName(s.Name) {
		return nil, b.Errorf(pos, "name", "%q: use letters, digits, '-', '_' and '.' (at most 64)", s.Name)
	}
	policyName := s.Name
	if policyName == "" {
		policyName = "default"
	}
	f.name = []byte(strconv.Quote(policyName))
	f.policy = fmt.Appendf(nil, "%s;q=%d;w=%d", f.name, burst, ceilSeconds(time.Duration(f.tolerance)))

	switch s.OnStoreError {
	case "allow", "deny":
		f.failOpen = s.OnStoreError == "allow"
	default:
		return nil, b.Errorf(pos, "on_store_error", "%q: want allow (fail open) or deny (fail closed)", s.OnStoreError)
	}
	m, err := filter.Keep(b.State, "ratelimit.metrics", func() (*metrics, error) { return newMetrics(b.Metrics) })
	if err != nil {
		return nil, err
	}
	f.series, err = filter.Keep(b.State, "ratelimit.series|"+b.Entry.Path, func() (*series, error) { return m.series(b.Entry.Path), nil })
	if err != nil {
		return nil, err
	}
	ident := fmt.Sprintf("ratelimit|%s|%v|%d|%d|%d|%d|%s", b.Entry.Path, f.keys.parts, f.emission, f.tolerance, f.keys.ipv4Prefix, f.keys.ipv6Prefix, s.Name)
	switch s.Store {
	case "local":
		if has("on_store_error") {
			return nil, b.Errorf(pos, "on_store_error", "only applies to store: redis (the local store cannot fail)")
		}
		if s.MaxKeys < nShards || s.MaxKeys > 100_000_000 {
			return nil, b.Errorf(pos, "max_keys", "must be between %d and 100000000", nShards)
		}
		f.local, err = filter.Keep(b.State, fmt.Sprintf("%s|local|%d", ident, s.MaxKeys), func() (*localStore, error) {
			return newLocalStore(s.MaxKeys), nil
		})
		if err != nil {
			return nil, err
		}
	case "redis":
		if has("max_keys") {
			return nil, b.Errorf(pos, "max_keys", "only applies to store: local (Redis expires its own keys)")
		}
		client, err := cluster.Redis(b.State, b.Config.Cluster.Redis)
		if err != nil {
			return nil, b.Errorf(pos, "store", "%v", err)
		}
		id := s.Name
		if id == "" {
			id = b.Entry.Path
		}
		prefix := b.Config.Cluster.Redis.Prefix + "ratelimit:" + id + ":"
		f.redis, err = filter.Keep(b.State, fmt.Sprintf("%s|redis|%p|%s|%t", ident, client, prefix, f.failOpen), func() (*redisStore, error) {
			return &redisStore{client: client, prefix: prefix, log: b.Log, failOpen: f.failOpen}, nil
		})
		if err != nil {
			return nil, err
		}
	default:
		return nil, b.Errorf(pos, "store", "%q: want local or redis", s.Store)
	}
	return f, nil
}

// keyItems reads key: a string, or a list of strings; absent is client_ip.
func keyItems(n *yaml.Node) ([]string, *yaml.Node, error) {
	if n == nil {
		return []string{"client_ip"}, nil, nil
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		return []string{n.Value}, n, nil
	}
	if n.Kind == yaml.SequenceNode {
		items := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode || c.ShortTag() != "!!str" {
				return nil, c, fmt.Errorf("expected a string such as client_ip or header:X-Api-Key")
			}
			items = append(items, c.Value)
		}
		return items, n, nil
	}
	return nil, n, fmt.Errorf("expected a string or a list of strings, e.g. [client_ip, header:X-Api-Key]")
}

func validName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// ceilSeconds rounds d up to whole seconds: header fields count in
// seconds, and rounding down would invite a retry that fails.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

var (
	nameRateLimit   = []byte("RateLimit")
	namePolicy      = []byte("RateLimit-Policy")
	nameRetryAfter  = []byte("Retry-After")
	nameContentType = []byte("Content-Type")
	textPlain       = []byte("text/plain; charset=utf-8")
	body429         = []byte("429 Too Many Requests\n")
	body503         = []byte("503 Service Unavailable\n")
	one             = []byte("1")
)

// Serve counts the request against its bucket, then passes it on or
// refuses it.
func (f *Filter) Serve(x *filter.Exchange, next filter.Handler) {
	var arr [128]byte
	key := f.keys.appendKey(arr[:0], x)
	var d decision
	if f.local != nil {
		d = f.local.take(key, f.emission, f.tolerance)
	} else {
		var err error
		d, err = f.redis.take(x.Ctx, key, time.Duration(f.emission), time.Duration(f.tolerance))
		if err != nil {
			f.series.storeErrors.Inc()
			if f.failOpen {
				f.series.allowed.Inc()
				next.Serve(x)
				return
			}
			f.series.limited.Inc()
			x.Log.Blocked = "rate_limit:store_error"
			w := getWriter()
			w.hdrs = append(w.hdrs[:0], exchange.Header{Name: nameContentType, Value: textPlain}, exchange.Header{Name: nameRetryAfter, Value: one})
			reply(x, 503, w.hdrs, body503)
			putWriter(w)
			return
		}
	}
	w := getWriter()
	defer putWriter(w)
	w.val = append(w.val[:0], f.name...)
	w.val = append(w.val, ";r="...)
	w.val = strconv.AppendInt(w.val, max(d.remaining, 0), 10)
	w.val = append(w.val, ";t="...)
	w.val = strconv.AppendInt(w.val, ceilSeconds(d.reset), 10)
	if !d.allowed {
		f.series.limited.Inc()
		x.Log.Blocked = "rate_limit"
		w.retry = strconv.AppendInt(w.retry[:0], max(1, ceilSeconds(d.retry)), 10)
		w.hdrs = append(w.hdrs[:0],
			exchange.Header{Name: nameContentType, Value: textPlain},
			exchange.Header{Name: nameRetryAfter, Value: w.retry},
			exchange.Header{Name: namePolicy, Value: f.policy},
			exchange.Header{Name: nameRateLimit, Value: w.val})
		reply(x, 429, w.hdrs, body429)
		return
	}
	f.series.allowed.Inc()
	if !f.headers {
		next.Serve(x)
		return
	}
	w.ResponseWriter, w.policy = x.W, f.policy
	x.W = w
	next.Serve(x)
	x.W = w.ResponseWriter
}

// reply sends a refusal with a short body (none for HEAD).
func reply(x *filter.Exchange, status int, h exchange.Headers, body []byte) {
	if x.W.WriteHead(status, nil, h, int64(len(body))) == nil && string(x.Req.Method) != "HEAD" {
		x.W.Write(body)
	}
	x.W.Finish(nil)
}

// headerWriter adds the RateLimit fields to an allowed response. It is
// pooled: an allowed request costs no allocation.
type headerWriter struct {
	exchange.ResponseWriter
	policy []byte
	val    []byte // the RateLimit value of this request
	retry  []byte
	hdrs   exchange.Headers
}

var writers = sync.Pool{New: func() any {
	return &headerWriter{val: make([]byte, 0, 64), retry: make([]byte, 0, 16), hdrs: make(exchange.Headers, 0, 16)}
}}

func getWriter() *headerWriter { return writers.Get().(*headerWriter) }

func putWriter(w *headerWriter) {
	w.ResponseWriter, w.policy = nil, nil
	// Drop references into the finished request; slots past len were
	// cleared by the put that last used them.
	clear(w.hdrs)
	w.hdrs = w.hdrs[:0]
	writers.Put(w)
}

// WriteHead adds the fields to a copy of h: h may be shared by every
// request of a route (a fixed `respond`), so it is never appended to.
func (w *headerWriter) WriteHead(status int, reason []byte, h exchange.Headers, n int64) error {
	w.hdrs = append(w.hdrs[:0], h...)
	w.hdrs = append(w.hdrs, exchange.Header{Name: namePolicy, Value: w.policy}, exchange.Header{Name: nameRateLimit, Value: w.val})
	return w.ResponseWriter.WriteHead(status, reason, w.hdrs, n)
}

// ReadFrom keeps the engine's zero-copy path (splice): the body is not
// changed, only the head.
func (w *headerWriter) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// Hijack is forwarded explicitly so that the wrapper is transparent to upgrades.
func (w *headerWriter) Hijack() (net.Conn, io.Reader, error) { return w.ResponseWriter.Hijack() }

type writerOnly struct{ io.Writer }
