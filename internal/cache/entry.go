package cache

import (
	"bytes"
	"net/http"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Entry is one stored response. It is never modified once stored (a
// revalidation stores a new Entry), so hits read it without locks. Its
// header fields point into one backing array made when it was stored: a
// hit copies the slice headers, never the bytes.
type Entry struct {
	// Key is the store key: the URL, plus the selecting header values of
	// a variant (Vary).
	Key string
	// URL is scheme://host/path?query, for purges by URL and prefix.
	URL    string
	Status int
	// Header is what a hit sends (Age and Cache-Status are added per hit;
	// framing fields are left out).
	Header exchange.Headers
	Body   []byte

	// ResponseTime is when the response (or the 304 that refreshed it) was
	// received; CorrectedInitialAge is its age then (RFC 9111 §4.2.3).
	ResponseTime        time.Time
	CorrectedInitialAge time.Duration
	// Lifetime is the freshness lifetime (§4.2.1).
	Lifetime time.Duration

	ETag         []byte
	LastModified []byte
	lastMod      time.Time // parsed LastModified, zero when absent or bad

	// NoCache: every use must be validated first (§5.2.2.4).
	NoCache bool
	// NoStale: never served stale (must-revalidate, proxy-revalidate,
	// §4.2.4), unless a stale-* directive gives explicit permission.
	NoStale bool
	// AuthOK: may answer a request with Authorization (§3.5).
	AuthOK bool
	// SWR and SIE are the stale-while-revalidate and stale-if-error
	// windows (RFC 5861), -1 when absent.
	SWR, SIE time.Duration
	// Tags are the surrogate keys (Surrogate-Key, Cache-Tag) to purge by.
	Tags []string

	// VaryNames is set on the marker entry kept under a URL whose response
	// varies: the request fields that select a variant. varyID tells
	// variants of this marker from those of a marker it replaced, so that
	// an invalidated URL's old variants are never found again.
	VaryNames []string
	varyID    uint64

	weight uint32
}

// Age is the entry's current age (§4.2.3).
func (e *Entry) Age(now time.Time) time.Duration {
	return e.CorrectedInitialAge + max(0, now.Sub(e.ResponseTime))
}

// TTL is the remaining freshness: negative once stale.
func (e *Entry) TTL(now time.Time) time.Duration { return e.Lifetime - e.Age(now) }

// LastModifiedTime is the parsed Last-Modified (zero when absent or bad).
func (e *Entry) LastModifiedTime() time.Time { return e.lastMod }

// entryOverhead approximates the bytes an entry costs beyond its key,
// fields and body (the struct, its slices, the policy's node), so that
// max_bytes bounds the memory used, not just the payload.
const entryOverhead = 320

// Params are the settings of the route that stores a response.
type Params struct {
	// DefaultTTL is the freshness of responses without explicit
	// expiration, where heuristic freshness is allowed (§4.2.2); 0 uses
	// 10% of the time since Last-Modified (at most a day).
	DefaultTTL time.Duration
}

// Request is what of a request the storing rules look at.
type Request struct {
	Authorization bool
	Control       Control
	// Pragma: no-cache without Cache-Control (§5.4).
	PragmaNoCache bool
}

// heuristicMax caps the Last-Modified heuristic.
const heuristicMax = 24 * time.Hour

// Decision is whether and how a response may be stored.
type Decision struct {
	Store    bool
	Lifetime time.Duration
	Control  Control
	// Strip are fields stored responses must leave out (qualified
	// no-cache/private, Set-Cookie allowed that way).
	Strip []string
	// Vary lists the selecting fields (lower case); nil without Vary.
	Vary []string
}

// Decide applies RFC 9111 §3 (storing) and §4.2.1–4.2.2 (freshness
// lifetime) to a response to a GET request. now is when it arrived.
func Decide(req *Request, status int, h exchange.Headers, p Params, now time.Time) Decision {
	var d Decision
	if status < 200 || status == http.StatusPartialContent || status == http.StatusNotModified || http.StatusText(status) == "" {
		return d // §3: a final, understood status; partial content is not combined here
	}
	c := ParseControl(h)
	d.Control = c
	if req.Control.NoStore || c.NoStore || c.Private {
		return d // §3, §5.2.1.5, §5.2.2.5, §5.2.2.7 (shared cache)
	}
	if req.Authorization && !c.Public && !c.MustRevalidate && c.SMaxAge < 0 {
		return d // §3.5
	}
	setCookie := false
	var expires, date []byte
	hasExpires := false
	for i := range h {
		n := h[i].Name
		switch {
		case eq(n, "Vary"):
			for _, f := range splitList(h[i].Value) {
				if f == "*" {
					return d // §4.1: Vary: * never matches
				}
				d.Vary = appendLower(d.Vary, f)
			}
		case eq(n, "Set-Cookie"):
			setCookie = true
		case eq(n, "Expires"):
			hasExpires, expires = true, h[i].Value
		case eq(n, "Date"):
			date = h[i].Value
		}
	}
	d.Strip = append(append(d.Strip, c.NoCacheFields...), c.PrivateFields...)
	if setCookie && !listed(d.Strip, "Set-Cookie") {
		// One user's cookie must never reach another: a response that sets
		// one is passed through, unless the origin says the cookie is to be
		// left out of the stored copy (no-cache="Set-Cookie", §5.2.2.4).
		return d
	}
	dateT := now
	if t, err := http.ParseTime(string(date)); err == nil && date != nil {
		dateT = t
	}
	switch {
	case c.SMaxAge >= 0:
		d.Lifetime = c.SMaxAge
	case c.MaxAge >= 0:
		d.Lifetime = c.MaxAge
	case hasExpires:
		if t, err := http.ParseTime(string(expires)); err == nil {
			d.Lifetime = max(0, t.Sub(dateT))
		} // §5.3: an invalid Expires means already expired
	case c.Public || heuristicStatus(status):
		d.Lifetime = heuristic(h, dateT, p.DefaultTTL)
	default:
		return d // §3: nothing makes this status storable
	}
	d.Store = true
	return d
}

// heuristicStatus: the statuses §4.2.2 (RFC 9110 §15.1) allows heuristic
// freshness for.
func heuristicStatus(s int) bool {
	switch s {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

func heuristic(h exchange.Headers, date time.Time, def time.Duration) time.Duration {
	if def > 0 {
		return def
	}
	lm := h.Get("Last-Modified")
	if lm == nil {
		return 0
	}
	t, err := http.ParseTime(string(lm))
	if err != nil || !t.Before(date) {
		return 0
	}
	return min(date.Sub(t)/10, heuristicMax)
}

// NewEntry builds the entry to store for a response. requestTime is when
// the request was sent, responseTime when the head came back (§4.2.3).
func NewEntry(key, url string, status int, h exchange.Headers, body []byte, d *Decision, requestTime, responseTime time.Time) *Entry {
	e := &Entry{Key: key, URL: url, Status: status, Body: body, ResponseTime: responseTime, Lifetime: d.Lifetime}
	e.setHeader(h, d.Strip)
	e.applyControl(&d.Control)
	e.CorrectedInitialAge = initialAge(h, requestTime, responseTime)
	e.weigh()
	return e
}

// Merge304 returns the fields of e updated by a 304 Not Modified (RFC 9111
// §4.3.4): the 304's fields replace the stored ones of the same name. The
// caller decides on the result as on a new response and stores it with
// e's body.
func (e *Entry) Merge304(h exchange.Headers) exchange.Headers {
	merged := make(exchange.Headers, 0, len(e.Header)+len(h))
	for _, f := range e.Header {
		if !h.Has(string(f.Name)) {
			merged = append(merged, f)
		}
	}
	for _, f := range h {
		if !isFraming(f.Name) {
			merged = append(merged, f)
		}
	}
	return merged
}

func (e *Entry) applyControl(c *Control) {
	e.NoCache = c.NoCache
	e.NoStale = c.MustRevalidate || c.ProxyRevalidate || c.NoCache
	e.AuthOK = c.Public || c.MustRevalidate || c.SMaxAge >= 0
	e.SWR, e.SIE = c.StaleWhileRevalidate, c.StaleIfError
}

// setHeader copies the fields a hit sends into one backing array, and
// picks out the validators and surrogate keys.
func (e *Entry) setHeader(h exchange.Headers, strip []string) {
	size, n := 0, 0
	for _, f := range h {
		if keepField(f.Name, strip) {
			size += len(f.Name) + len(f.Value)
			n++
		}
	}
	buf := make([]byte, 0, size)
	e.Header = make(exchange.Headers, 0, n)
	for _, f := range h {
		if !keepField(f.Name, strip) {
			continue
		}
		s := len(buf)
		buf = append(buf, f.Name...)
		m := len(buf)
		buf = append(buf, f.Value...)
		name, value := buf[s:m:m], buf[m:len(buf):len(buf)]
		e.Header = append(e.Header, exchange.Header{Name: name, Value: value})
		switch {
		case eq(name, "ETag"):
			e.ETag = value
		case eq(name, "Last-Modified"):
			e.LastModified = value
			if t, err := http.ParseTime(string(value)); err == nil {
				e.lastMod = t
			}
		case eq(name, "Surrogate-Key"):
			e.Tags = appendSpaced(e.Tags, value)
		case eq(name, "Cache-Tag"):
			for _, t := range splitList(value) {
				e.Tags = append(e.Tags, t)
			}
		}
	}
}

// keepField leaves out what a hit must not repeat: framing (the engine
// writes it), Age (recomputed per hit), and the fields the origin asked
// to leave out.
func keepField(name []byte, strip []string) bool {
	if isFraming(name) || eq(name, "Age") {
		return false
	}
	for _, s := range strip {
		if eq(name, s) {
			return false
		}
	}
	return true
}

func isFraming(n []byte) bool {
	return eq(n, "Content-Length") || eq(n, "Transfer-Encoding") || eq(n, "Connection") || eq(n, "Keep-Alive")
}

// initialAge is corrected_initial_age of §4.2.3.
func initialAge(h exchange.Headers, requestTime, responseTime time.Time) time.Duration {
	apparent := time.Duration(0)
	if d := h.Get("Date"); d != nil {
		if t, err := http.ParseTime(string(d)); err == nil {
			apparent = max(0, responseTime.Sub(t))
		}
	}
	ageValue := time.Duration(0)
	if a := h.Get("Age"); a != nil {
		if s := seconds(exchange.TrimOWS(a), true, 0); s > 0 {
			ageValue = s
		}
	}
	corrected := ageValue + max(0, responseTime.Sub(requestTime))
	return max(apparent, corrected)
}

func (e *Entry) weigh() {
	w := entryOverhead + len(e.Key) + len(e.URL) + len(e.Body) + 24*len(e.Header)
	for _, f := range e.Header {
		w += len(f.Name) + len(f.Value)
	}
	for _, t := range e.Tags {
		w += len(t) + 16
	}
	for _, v := range e.VaryNames {
		w += len(v) + 16
	}
	e.weight = uint32(min(w, 1<<32-1))
}

// splitList splits a comma-separated field value into trimmed items.
func splitList(v []byte) []string {
	var out []string
	for len(v) > 0 {
		c := indexComma(v)
		var item []byte
		if c < 0 {
			item, v = v, nil
		} else {
			item, v = v[:c], v[c+1:]
		}
		if item = exchange.TrimOWS(item); len(item) > 0 {
			out = append(out, string(item))
		}
	}
	return out
}

// appendSpaced adds the space-separated keys of Surrogate-Key.
func appendSpaced(dst []string, v []byte) []string {
	for _, f := range bytes.Fields(v) {
		dst = append(dst, string(f))
	}
	return dst
}

func appendLower(dst []string, s string) []string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	for _, d := range dst {
		if d == string(b) {
			return dst
		}
	}
	return append(dst, string(b))
}

func listed(list []string, name string) bool {
	for _, s := range list {
		if eq([]byte(s), name) {
			return true
		}
	}
	return false
}
