package cache

import (
	"bytes"
	"net/http"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/cache"
	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// notModified evaluates the client's conditionals against e (RFC 9111
// §4.3.2, RFC 9110 §13.1.2–13.1.3, §13.2.2): If-None-Match wins over
// If-Modified-Since; only 200 responses are compared.
func notModified(info *reqInfo, e *cache.Entry) bool {
	if e.Status != http.StatusOK {
		return false
	}
	if info.ifNoneMatch != nil {
		return etagListMatches(info.ifNoneMatch, e.ETag, false)
	}
	if info.ifModifiedSince != nil {
		lm := e.LastModifiedTime()
		if lm.IsZero() {
			return false
		}
		t, err := http.ParseTime(string(info.ifModifiedSince))
		return err == nil && !lm.After(t)
	}
	return false
}

// etagListMatches: "*" or a list of entity tags, compared weakly (If-None-
// Match) or strongly.
func etagListMatches(list, etag []byte, strong bool) bool {
	if t := exchange.TrimOWS(list); len(t) == 1 && t[0] == '*' {
		return etag != nil || !strong
	}
	if etag == nil {
		return false
	}
	for len(list) > 0 {
		var item []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			item, list = list, nil
		}
		if etagEqual(exchange.TrimOWS(item), etag, strong) {
			return true
		}
	}
	return false
}

// etagEqual compares entity tags (RFC 9110 §8.8.3.2).
func etagEqual(a, b []byte, strong bool) bool {
	aw, bw := bytes.HasPrefix(a, []byte("W/")), bytes.HasPrefix(b, []byte("W/"))
	if strong && (aw || bw) {
		return false
	}
	if aw {
		a = a[2:]
	}
	if bw {
		b = b[2:]
	}
	return len(a) >= 2 && a[0] == '"' && bytes.Equal(a, b)
}

// ifRangeHolds: without If-Range the range applies; with it, only when the
// validator matches strongly (RFC 9110 §13.1.5).
func ifRangeHolds(v []byte, e *cache.Entry) bool {
	if v == nil {
		return true
	}
	v = exchange.TrimOWS(v)
	if len(v) > 0 && (v[0] == '"' || bytes.HasPrefix(v, []byte("W/"))) {
		return e.ETag != nil && etagEqual(v, e.ETag, true)
	}
	t, err := http.ParseTime(string(v))
	lm := e.LastModifiedTime()
	return err == nil && !lm.IsZero() && lm.Equal(t) && lm.Truncate(time.Second).Equal(lm)
}

// parseRange reads a single byte range of a body of size n (RFC 9110
// §14.1.2). ok is false when the header is to be ignored (malformed, not
// bytes, several ranges: a full 200 answers those); start is -1 when the
// range cannot be satisfied (416).
func parseRange(v []byte, n int64) (start, end int64, ok bool) {
	v = exchange.TrimOWS(v)
	if len(v) < 6 || !exchange.EqualFold(v[:6], "bytes=") {
		return 0, 0, false
	}
	v = exchange.TrimOWS(v[6:])
	if bytes.IndexByte(v, ',') >= 0 {
		return 0, 0, false
	}
	dash := bytes.IndexByte(v, '-')
	if dash < 0 {
		return 0, 0, false
	}
	first, last := v[:dash], v[dash+1:]
	if len(first) == 0 {
		// Suffix range: the last N bytes.
		suffix, good := digits(last)
		if !good {
			return 0, 0, false
		}
		if suffix == 0 || n == 0 {
			return -1, 0, true
		}
		return max(0, n-suffix), n - 1, true
	}
	s, good := digits(first)
	if !good {
		return 0, 0, false
	}
	e := n - 1
	if len(last) > 0 {
		if e, good = digits(last); !good || e < s {
			return 0, 0, false
		}
		e = min(e, n-1)
	}
	if s >= n {
		return -1, 0, true
	}
	return s, e, true
}

// digits parses a non-negative decimal, refusing anything else and
// saturating instead of overflowing.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<62)/10 {
			n = 1 << 62
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
