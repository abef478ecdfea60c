package observe

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Entry is what one request leaves in the access log. Byte slices point
// into the request and are only read while Log formats the line.
type Entry struct {
	Start           time.Time
	Client          []byte
	Method          []byte
	Host            []byte
	Path            []byte
	Query           []byte
	HasQuery        bool
	Proto           string // HTTP/1.1, HTTP/2.0, ...
	Status          int
	Bytes           int64 // response body bytes sent
	BytesIn         int64 // request body bytes read
	Duration        time.Duration
	Upstream        string
	UpstreamLatency time.Duration // request sent → response head; 0 when no backend answered
	Route           string
	RequestID       []byte
	TLS             string // TLS version, e.g. "1.3"; "" for plain connections
	Cache           string // filter.LogFields: cache outcome, identity, refusal
	User            string
	Blocked         string
	Header          exchange.Headers // the request's fields, for header:NAME
}

// Format says how an Entry becomes a line.
type Format struct {
	kind   string // json | combined | common
	fields []string
}

// NewFormat returns the format kind (json, combined or common); fields
// choose and order the json fields (nil: the default set). Both have been
// validated with the configuration.
func NewFormat(kind string, fields []string) *Format {
	if kind == "" {
		kind = "json"
	}
	return &Format{kind: kind, fields: fields}
}

// Append formats e as one line onto b.
func (f *Format) Append(b []byte, e *Entry) []byte {
	switch f.kind {
	case "combined", "common":
		return f.appendCLF(b, e)
	}
	b = append(b, `{"time":"`...)
	b = e.Start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"access"`...)
	if f.fields == nil {
		for _, name := range defaultFields {
			b = appendField(b, name, e, true)
		}
	} else {
		for _, name := range f.fields {
			if name != "time" {
				b = appendField(b, name, e, false)
			}
		}
	}
	return append(b, "}\n"...)
}

// defaultFields are written when access_log.fields is not set; the ones
// that are usually empty are left out when they are.
var defaultFields = []string{"client", "method", "host", "path", "query", "status", "bytes", "duration_ms",
	"upstream", "upstream_ms", "route", "request_id", "tls", "cache", "user", "blocked"}

// appendField writes `,"name":value`. With omitEmpty, optional fields that
// have nothing to say are skipped.
func appendField(b []byte, name string, e *Entry, omitEmpty bool) []byte {
	str := func(v string) []byte {
		if omitEmpty && v == "" {
			return b
		}
		return appendJSONString(appendKey(b, name), v)
	}
	switch name {
	case "client":
		return appendJSONString(appendKey(b, name), e.Client)
	case "method":
		return appendJSONString(appendKey(b, name), e.Method)
	case "host":
		return appendJSONString(appendKey(b, name), e.Host)
	case "path":
		return appendJSONString(appendKey(b, name), e.Path)
	case "query":
		if omitEmpty && !e.HasQuery {
			return b
		}
		return appendJSONString(appendKey(b, name), e.Query)
	case "proto":
		return str(e.Proto)
	case "status":
		return strconv.AppendInt(appendKey(b, name), int64(e.Status), 10)
	case "bytes":
		return strconv.AppendInt(appendKey(b, name), e.Bytes, 10)
	case "bytes_in":
		return strconv.AppendInt(appendKey(b, name), e.BytesIn, 10)
	case "duration_ms":
		return appendMillis(appendKey(b, name), e.Duration)
	case "upstream":
		return appendJSONString(appendKey(b, name), e.Upstream)
	case "upstream_ms":
		if e.UpstreamLatency == 0 {
			if omitEmpty {
				return b
			}
			return append(appendKey(b, name), "null"...)
		}
		return appendMillis(appendKey(b, name), e.UpstreamLatency)
	case "route":
		return appendJSONString(appendKey(b, name), e.Route)
	case "request_id":
		if omitEmpty && len(e.RequestID) == 0 {
			return b
		}
		return appendJSONString(appendKey(b, name), e.RequestID)
	case "tls":
		return str(e.TLS)
	case "cache":
		return str(e.Cache)
	case "user":
		return str(e.User)
	case "blocked":
		return str(e.Blocked)
	case "referer":
		return appendJSONString(appendKey(b, name), e.Header.Get("Referer"))
	case "user_agent":
		return appendJSONString(appendKey(b, name), e.Header.Get("User-Agent"))
	}
	if h, ok := strings.CutPrefix(name, "header:"); ok {
		v := e.Header.Get(h)
		b = appendJSONString(append(b, ','), name) // the key is "header:NAME", escaped like any string
		b = append(b, ':')
		if v == nil {
			return append(b, "null"...)
		}
		return appendJSONString(b, v)
	}
	return b
}

func appendKey(b []byte, name string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', 3, 64)
}

// appendCLF writes the NCSA common or combined format as nginx and Apache
// write it, so that existing log tooling reads it:
// client - user [time] "request line" status bytes ["referer" "user agent"].
func (f *Format) appendCLF(b []byte, e *Entry) []byte {
	b = appendCLFValue(b, hostOnly(e.Client), false)
	b = append(b, " - "...)
	b = appendCLFValue(b, e.User, false)
	b = append(b, " ["...)
	b = e.Start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "`...)
	b = appendCLFValue(b, e.Method, true)
	b = append(b, ' ')
	b = appendCLFValue(b, e.Path, true)
	if e.HasQuery {
		b = append(b, '?')
		b = appendCLFValue(b, e.Query, true)
	}
	b = append(b, ' ')
	b = append(b, e.Proto...)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.Bytes, 10)
	if f.kind == "combined" {
		b = append(b, ` "`...)
		b = appendCLFValue(b, e.Header.Get("Referer"), true)
		b = append(b, `" "`...)
		b = appendCLFValue(b, e.Header.Get("User-Agent"), true)
		b = append(b, '"')
	}
	return append(b, '\n')
}

// appendCLFValue writes v with control bytes, non-ASCII, quotes and
// backslashes as \xHH (nginx's escaping), so that no client can forge a
// field or a line; an empty value outside quotes is "-".
func appendCLFValue[T string | []byte](b []byte, v T, quoted bool) []byte {
	if len(v) == 0 && !quoted {
		return append(b, '-')
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// hostOnly drops the port of host:port or [v6]:port, as CLF logs addresses.
func hostOnly(addr []byte) []byte {
	if len(addr) > 0 && addr[0] == '[' {
		if i := bytes.IndexByte(addr, ']'); i > 0 {
			return addr[1:i]
		}
		return addr
	}
	if i := bytes.LastIndexByte(addr, ':'); i >= 0 && bytes.IndexByte(addr[:i], ':') < 0 {
		return addr[:i]
	}
	return addr
}
