package compress

import (
	"bytes"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/h1"
)

// accepted is what one request's Accept-Encoding fields allow (RFC 9110
// §12.5.3): a qvalue in thousandths per coding gatehouse knows, -1 where the
// coding is not listed.
type accepted struct {
	q        [numAlgs]int16
	star     int16 // "*": every coding not listed by name
	identity int16
	present  bool // the request has at least one Accept-Encoding field
}

// parseAccept reads every Accept-Encoding field of h without allocating.
// Malformed elements are ignored one by one, as a list element that cannot
// be understood says nothing about the others.
func parseAccept(h exchange.Headers) accepted {
	a := accepted{star: -1, identity: -1}
	for i := range a.q {
		a.q[i] = -1
	}
	for i := range h {
		if !exchange.EqualFold(h[i].Name, "accept-encoding") {
			continue
		}
		a.present = true
		v := h[i].Value
		for len(v) > 0 {
			var elem []byte
			if j := bytes.IndexByte(v, ','); j >= 0 {
				elem, v = v[:j], v[j+1:]
			} else {
				elem, v = v, nil
			}
			a.element(elem)
		}
	}
	return a
}

// element records one "coding *( OWS ; OWS name=value )" list element.
func (a *accepted) element(e []byte) {
	e = exchange.TrimOWS(e)
	if len(e) == 0 {
		return // empty list elements are allowed and mean nothing (§5.6.1)
	}
	name := e
	var params []byte
	if j := bytes.IndexByte(e, ';'); j >= 0 {
		name, params = exchange.TrimOWS(e[:j]), e[j+1:]
	}
	if !h1.IsToken(name) { // "*" is a token too
		return
	}
	q := int16(1000)
	for len(params) > 0 {
		var p []byte
		if j := bytes.IndexByte(params, ';'); j >= 0 {
			p, params = exchange.TrimOWS(params[:j]), params[j+1:]
		} else {
			p, params = exchange.TrimOWS(params), nil
		}
		if len(p) >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=' {
			v, ok := parseQ(p[2:])
			if !ok {
				return
			}
			q = v
		}
		// Other parameters have no meaning for Accept-Encoding; a weight
		// is the only one defined (§12.4.2), so they are skipped.
	}
	slot := a.slot(name)
	if slot != nil && *slot < 0 { // the first mention of a coding counts
		*slot = q
	}
}

func (a *accepted) slot(name []byte) *int16 {
	switch {
	case len(name) == 1 && name[0] == '*':
		return &a.star
	case exchange.EqualFold(name, "identity"):
		return &a.identity
	case exchange.EqualFold(name, "gzip"), exchange.EqualFold(name, "x-gzip"):
		// x-gzip is gzip's old name (RFC 9110 §8.4.1.3).
		return &a.q[algGzip]
	case exchange.EqualFold(name, "br"):
		return &a.q[algBr]
	case exchange.EqualFold(name, "zstd"):
		return &a.q[algZstd]
	}
	return nil
}

// parseQ parses a qvalue (RFC 9110 §12.4.2): "0" ["." 0*3DIGIT] or
// "1" ["." 0*3("0")], in thousandths.
func parseQ(b []byte) (int16, bool) {
	if len(b) == 0 || len(b) > 5 || (b[0] != '0' && b[0] != '1') {
		return 0, false
	}
	v := int16(b[0]-'0') * 1000
	if len(b) == 1 {
		return v, true
	}
	if b[1] != '.' {
		return 0, false
	}
	scale := int16(100)
	for _, c := range b[2:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v += int16(c-'0') * scale
		scale /= 10
	}
	if v > 1000 {
		return 0, false
	}
	return v, true
}

// choose returns the index in order of the coding to use, or -1 for none.
// The highest qvalue wins and ties go to the earlier one in order (the
// operator's preference). A request without Accept-Encoding may take any
// coding by the letter of §12.5.3, but clients that say nothing are often
// ones that cannot decode, so none is used — as nginx and Caddy do.
func (a *accepted) choose(order []alg) int {
	if !a.present {
		return -1
	}
	best, bestQ := -1, int16(0)
	for i, c := range order {
		q := a.q[c]
		if q < 0 {
			q = a.star
		}
		if q > bestQ {
			best, bestQ = i, q
		}
	}
	// An explicit preference for no coding over every offered one is kept.
	if best >= 0 && a.identity > bestQ {
		return -1
	}
	// Nothing acceptable, even with identity;q=0: the answer goes out
	// unencoded anyway (§12.5.3 allows it, and it beats a 415 for a GET).
	return best
}
