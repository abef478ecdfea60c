package compress

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

var (
	refToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	refQ     = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)
)

// refChoose is a plain, slow reading of RFC 9110 §12.5.3 to check the
// allocation-free parser against. Fields are separated by "\n".
func refChoose(fields string, order []alg) int {
	if fields == "" {
		return -1
	}
	q := map[string]float64{}
	for _, field := range strings.Split(fields, "\n") {
		for _, elem := range strings.Split(field, ",") {
			elem = strings.Trim(elem, " \t")
			if elem == "" {
				continue
			}
			parts := strings.Split(elem, ";")
			name := strings.ToLower(strings.Trim(parts[0], " \t"))
			if !refToken.MatchString(name) {
				continue
			}
			w, bad := 1.0, false
			for _, p := range parts[1:] {
				p = strings.Trim(p, " \t")
				if len(p) >= 2 && strings.EqualFold(p[:2], "q=") {
					if !refQ.MatchString(p[2:]) {
						bad = true
						break
					}
					w = parseFloat(p[2:])
				}
			}
			if bad {
				continue
			}
			if name == "x-gzip" {
				name = "gzip"
			}
			if _, seen := q[name]; !seen {
				q[name] = w
			}
		}
	}
	best, bestQ := -1, 0.0
	for i, a := range order {
		w, ok := q[a.String()]
		if !ok {
			w = q["*"] // absent: 0
		}
		if w > bestQ+1e-9 {
			best, bestQ = i, w
		}
	}
	if id, ok := q["identity"]; ok && best >= 0 && id > bestQ+1e-9 {
		return -1
	}
	return best
}

func parseFloat(s string) float64 {
	v := float64(s[0] - '0')
	scale := 0.1
	for _, c := range s[min(2, len(s)):] {
		v += float64(c-'0') * scale
		scale /= 10
	}
	return v
}

func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{
		"gzip", "gzip, deflate, br, zstd", "br;q=0.5, gzip;q=0.8", "*;q=0", "identity;q=0",
		"gzip;q=0.5, identity", "x-gzip;q=0.001", "*, zstd;q=0\nbr;q=1.000", " , ;q=1, gzip ; Q=0.2",
		"gzip;q=1.5", "br;level=3;q=0.9", "zstd;q=", "\xff\x00gzip",
	} {
		f.Add(s)
	}
	orders := [][]alg{{algZstd, algBr, algGzip}, {algGzip}, {algGzip, algBr}}
	f.Fuzz(func(t *testing.T, s string) {
		var h []string
		if s != "" {
			for _, v := range strings.Split(s, "\n") {
				h = append(h, "Accept-Encoding", v)
			}
		}
		a := parseAccept(headers(h...))
		for _, order := range orders {
			got := a.choose(order)
			if want := refChoose(s, order); got != want {
				t.Fatalf("%q with order %v: chose %d, reference %d", s, order, got, want)
			}
		}
	})
}

// FuzzDecodeRequest feeds arbitrary bytes to the request-body decoders:
// whatever comes in, a read ends in the decoded data, a 400 or a 413 —
// never a panic, a hang, or more than the cap.
func FuzzDecodeRequest(f *testing.F) {
	for _, c := range []string{"gzip", "br", "zstd"} {
		f.Add(uint8(algOf(c)), encode(f, c, []byte(`{"hello":"world"}`)))
		f.Add(uint8(algOf(c)), encode(f, c, make([]byte, 100<<10))) // over the cap
	}
	f.Add(uint8(algGzip), []byte("\x1f\x8b\x08\x00garbage"))
	f.Add(uint8(algZstd), []byte("\x28\xb5\x2f\xfd\x00\x58\x00\x00"))
	pools := &decoderPools{}
	const maxOut = 64 << 10
	f.Fuzz(func(t *testing.T, coding uint8, data []byte) {
		d := &bodyDecoder{pools: pools, coding: alg(coding % uint8(numAlgs)), in: countReader{r: bytes.NewReader(data)}, maxOut: maxOut, ratio: 10}
		n, err := io.Copy(io.Discard, d)
		if n > maxOut {
			t.Fatalf("decoded %d bytes past the %d cap", n, maxOut)
		}
		if err != nil && err != errCorrupt && err != errTooLarge {
			t.Fatalf("error %v: want errCorrupt or errTooLarge", err)
		}
		var req exchange.Request
		d.restore(&req)
	})
}

func algOf(name string) alg {
	a, _ := algByName(name)
	return a
}
