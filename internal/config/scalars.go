package config

import (
	"errors"
	"math/big"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// scalarText returns the text of a scalar that may stand for a duration,
// size, URL, ... Mappings, lists and booleans never do.
func (d *decoder) scalarText(n *yaml.Node, t reflect.Type, path string) (string, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float":
			return n.Value, true
		}
	}
	d.mismatch(n, t, path)
	return "", false
}

func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.scalarText(n, durationType, path)
	if !ok {
		return 0, false
	}
	if n.ShortTag() != "!!str" {
		// A bare number has no unit: 30 could mean seconds or milliseconds,
		// so only 0, which is the same in every unit, is accepted.
		if strings.Trim(s, "+-0._") == "" {
			return 0, true
		}
		d.fail(n, path, "a duration needs a unit: write %ss or %sms, for example", s, s)
		return 0, false
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.fail(n, path, "invalid duration %q: write a number and a unit (ns, us, ms, s, m, h), like 250ms, 30s or 1h30m", s)
		return 0, false
	}
	if dur < 0 {
		d.fail(n, path, "duration %s must not be negative", s)
		return 0, false
	}
	return dur, true
}

// sizeUnits are matched case-insensitively: "kb" and "KB" are both 1000,
// "kib" and "KiB" both 1024, as people write both.
func sizeUnit(u string) (int64, bool) {
	switch strings.ToLower(u) {
	case "", "b":
		return 1, true
	case "kb":
		return 1000, true
	case "kib":
		return 1 << 10, true
	case "mb":
		return 1000 * 1000, true
	case "mib":
		return 1 << 20, true
	case "gb":
		return 1000 * 1000 * 1000, true
	case "gib":
		return 1 << 30, true
	}
	return 0, false
}

func (d *decoder) size(n *yaml.Node, path string) (Size, bool) {
	s, ok := d.scalarText(n, sizeType, path)
	if !ok {
		return 0, false
	}
	if n.ShortTag() == "!!int" {
		// Keep YAML's integer forms (0x10, 1_000) for plain byte counts.
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
		switch {
		case err != nil:
			d.fail(n, path, "size %s is too large", s)
			return 0, false
		case i < 0:
			d.fail(n, path, "size %s must not be negative", s)
			return 0, false
		}
		return Size(i), true
	}
	size, err := ParseSize(s)
	if err != nil {
		d.fail(n, path, "%s", err)
		return 0, false
	}
	return size, true
}

// ParseSize reads a byte count: 1024, "64KiB", "1.5MB", "2 gib".
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, "_", ""))
	if strings.HasPrefix(s, "-") {
		return 0, errors.New("size " + s + " must not be negative")
	}
	s = strings.TrimPrefix(s, "+")
	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(s)
	}
	num, unit := s[:end], strings.TrimSpace(s[end:])
	if !isDecimal(num) {
		return 0, errors.New("invalid size " + quote(s) + ": write a number of bytes, optionally with a unit, like 1024, 64KiB or 1.5MB")
	}
	mult, ok := sizeUnit(unit)
	if !ok {
		return 0, errors.New("invalid size " + quote(s) + ": unknown unit " + quote(unit) + " (use B, KB, KiB, MB, MiB, GB or GiB)")
	}
	// Exact rational arithmetic, so that 1.1MB is 1100000 and not off by a
	// float rounding error.
	r, _ := new(big.Rat).SetString(num)
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, errors.New("size " + s + " is not a whole number of bytes")
	}
	if !r.Num().IsInt64() {
		return 0, errors.New("size " + s + " is too large")
	}
	return Size(r.Num().Int64()), nil
}

// isDecimal accepts 12 and 1.5 but not "", ".5", "1." or "1.2.3".
func isDecimal(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	digits := func(p string) bool {
		return p != "" && strings.Trim(p, "0123456789") == ""
	}
	return digits(whole) && (!dot || digits(frac))
}

func (d *decoder) url(n *yaml.Node, path string) (*url.URL, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.mismatch(n, urlType, path)
		return nil, false
	}
	if strings.TrimSpace(n.Value) == "" {
		d.fail(n, path, "the URL is empty")
		return nil, false
	}
	u, err := url.Parse(n.Value)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		hint := ""
		if !strings.Contains(n.Value, "://") {
			hint = " (is the scheme, like http://, missing?)"
		}
		d.fail(n, path, "invalid URL %s: %v%s", quote(n.Value), err, hint)
		return nil, false
	}
	return u, true
}

func (d *decoder) regexp(n *yaml.Node, path string) (*regexp.Regexp, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return nil, false
	}
	re, err := compileRegexp(s)
	if err != nil {
		d.fail(n, path, "%s", err)
		return nil, false
	}
	return re, true
}

// compileRegexp words the error for people: Go's message repeats the
// pattern after "error parsing regexp:", which reads poorly after a path.
func compileRegexp(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(s)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			msg := "invalid regular expression " + quote(s) + ": " + se.Code.String()
			if se.Expr != "" && se.Expr != s {
				msg += " at " + quote(se.Expr)
			}
			return nil, errors.New(msg)
		}
		return nil, errors.New("invalid regular expression " + quote(s) + ": " + err.Error())
	}
	return re, nil
}

// prefix accepts a bare address as the prefix holding only it, since
// "trusted_proxies: [10.0.0.1]" is the natural way to write one proxy.
func (d *decoder) prefix(n *yaml.Node, path string) (netip.Prefix, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.mismatch(n, prefixType, path)
		return netip.Prefix{}, false
	}
	p, err := ParsePrefix(n.Value)
	if err != nil {
		d.fail(n, path, "%s", err)
		return netip.Prefix{}, false
	}
	return p, true
}

// ParsePrefix reads "10.0.0.0/8", "::1/128" or a bare address ("10.1.2.3"
// is 10.1.2.3/32). Host bits are cleared: 10.1.2.3/8 is 10.0.0.0/8.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("invalid IP prefix " + quote(s) + ": write an address and a prefix length, like 10.0.0.0/8 or 2001:db8::/32")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.New("invalid IP address " + quote(s) + ": write an address or a prefix, like 192.0.2.1 or 10.0.0.0/8")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// quote quotes s for a message, shortening what would drown the message.
func quote(s string) string {
	if len(s) > 80 {
		cut := 77
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strconv.Quote(s)
}

// statusRanges accepts "200-399", "200,204,300-399" or a bare code (200).
func (d *decoder) statusRanges(n *yaml.Node, path string) (StatusRanges, bool) {
	s, ok := d.scalarText(n, statusesType, path)
	if !ok {
		return nil, false
	}
	r, err := ParseStatusRanges(s)
	if err != nil {
		d.fail(n, path, "%s", err)
		return nil, false
	}
	return r, true
}

// ParseStatusRanges reads status codes and ranges separated by commas:
// "200-399", "200,204,300-399", "404". Codes are from 100 to 599, and a
// range is written low-high.
func ParseStatusRanges(s string) (StatusRanges, error) {
	const forms = `write status codes and ranges separated by commas, like "200-399" or "200,204,300-399"`
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no status codes: " + forms)
	}
	var r StatusRanges
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
		if !isRange {
			hi = lo
		}
		l, errL := statusCode(lo)
		h, errH := statusCode(hi)
		switch {
		case errL != nil || errH != nil:
			return nil, errors.New("invalid status list " + quote(s) + ": " + forms)
		case l < 100 || l > 599:
			return nil, errors.New("status " + lo + " is out of range: status codes are from 100 to 599")
		case h < 100 || h > 599:
			return nil, errors.New("status " + hi + " is out of range: status codes are from 100 to 599")
		case l > h:
			return nil, errors.New("range " + quote(part) + " is backwards: write the lower code first, like " + hi + "-" + lo)
		}
		r = append(r, StatusRange{Lo: l, Hi: h})
	}
	return r, nil
}

// statusCode reads 1 to 3 decimal digits (a longer number is out of range,
// not a syntax error, but cannot be a code either).
func statusCode(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, errors.New("not a number")
	}
	if len(s) > 3 {
		return 1000, nil
	}
	return strconv.Atoi(s)
}

// ratio reads a percentage from 0% to 100%: "20%", "2.5%". A bare number
// is refused, since 0.2 could mean 0.2% or 20%.
func (d *decoder) ratio(n *yaml.Node, path string) (Ratio, bool) {
	s, ok := d.scalarText(n, ratioType, path)
	if !ok {
		return 0, false
	}
	num, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	num = strings.TrimSpace(num)
	if strings.HasPrefix(num, "-") && isDecimal(num[1:]) {
		d.fail(n, path, "percentage %s must not be negative", s)
		return 0, false
	}
	if !pct || !isDecimal(num) {
		d.fail(n, path, "invalid percentage %s: write a number and %%, like 20%% or 2.5%%", quote(s))
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f > 100 {
		d.fail(n, path, "percentage %s is more than 100%%", strings.TrimSpace(s))
		return 0, false
	}
	return Ratio(f / 100), true
}

// retryKinds are the failures retries.on may name besides status codes.
func retryKinds() []string { return []string{"connect", "timeout", "reset"} }

// retryOn reads connect, timeout, reset, or a status code (502 or "502").
func (d *decoder) retryOn(n *yaml.Node, path string) (RetryOn, bool) {
	const forms = "use connect, timeout, reset or a status code from 400 to 599"
	s, ok := d.scalarText(n, retryOnType, path)
	if !ok {
		return RetryOn{}, false
	}
	s = strings.TrimSpace(s)
	if code, err := statusCode(s); err == nil {
		if code < 400 || code > 599 {
			d.fail(n, path, "cannot retry on status %s: %s", s, forms)
			return RetryOn{}, false
		}
		return RetryOn{Kind: RetryStatus, Status: code}, true
	}
	for _, k := range retryKinds() {
		if s == k {
			return RetryOn{Kind: RetryKind(k)}, true
		}
	}
	d.fail(n, path, "unknown retry condition %s%s: %s", quote(s), suggest(s, retryKinds()), forms)
	return RetryOn{}, false
}
