package ratelimit

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/s", "6000/m", "10/hour", "1/d", "5/10s", "30/1m30s", "0/s", "1/0s", "x/s", "10/", "1e3/s", "10/1h1h", "1000000000/1s", " 7 / 7m "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.Count < 1 || r.Count > maxCount || r.Period <= 0 || r.Period > maxPeriod || r.Emission() < 1 {
			t.Fatalf("ParseRate(%q) accepted %+v", s, r)
		}
		again, err := ParseRate(fmt.Sprintf("%d/%s", r.Count, r.Period))
		if err != nil || again != r {
			t.Fatalf("ParseRate(%q) = %+v, but its own form gives %+v, %v", s, r, again, err)
		}
	})
}

// FuzzKey checks the key parser and, for keys it accepts, that the query
// lookup agrees with net/url on which value a request carries.
func FuzzKey(f *testing.F) {
	for _, s := range [][2]string{
		{"client_ip", ""}, {"query:key", "key=a%20b&x=1"}, {"query:a b", "a+b=1"}, {"header:X-Api-Key,route", ""},
		{"query:k", "k=%zz&k=2"}, {"query:k", "%6b=v"}, {"client_ip,client_ip", ""}, {"query:", "=x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, spec, query string) {
		parts, err := parseParts(strings.Split(spec, ","))
		if err != nil {
			return
		}
		for _, p := range parts {
			if p.kind != partQuery {
				continue
			}
			got := appendQuery(nil, []byte(query), p.name)
			vals, perr := url.ParseQuery(query)
			if perr != nil || strings.Contains(query, ";") {
				continue // net/url refuses what we read leniently
			}
			want := []byte{markAbsent}
			if v, ok := vals[p.name]; ok {
				want = append([]byte{markPresent}, v[0]...)
				want = append(want, byte(len(v[0]))) // uvarint of a short length
				if len(v[0]) >= 0x80 {
					continue
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("query %q, name %q: key %q, net/url says %q", query, p.name, got, want)
			}
		}
	})
}
