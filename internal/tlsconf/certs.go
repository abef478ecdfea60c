package tlsconf

import (
	"context"
	"crypto/tls"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
)

// entry is one certificate as served. Its tls.Certificate is replaced as a
// whole when an OCSP staple arrives, so handshakes never see a half-built one.
type entry struct {
	pair  config.CertPair
	cert  atomic.Pointer[tls.Certificate]
	stamp stamp              // of the files when they were read
	stop  context.CancelFunc // stops its OCSP refresher; nil when there is none
}

// stamp tells whether a file changed since it was read.
type stamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func stampOf(p config.CertPair) (stamp, error) {
	cf, err := os.Stat(p.CertFile)
	if err != nil {
		return stamp{}, err
	}
	kf, err := os.Stat(p.KeyFile)
	if err != nil {
		return stamp{}, err
	}
	return stamp{cf.ModTime(), kf.ModTime(), cf.Size(), kf.Size()}, nil
}

// certSet finds the certificate for a server name. It is immutable: a
// change builds a new one.
type certSet struct {
	entries []*entry
	exact   map[string]*entry
	wild    map[string]*entry // "example.com" for a certificate of "*.example.com"
	def     *entry
}

// newCertSet indexes entries by the names of their certificates. For a name
// in several certificates the first listed wins; the default is the one
// marked default, else the first.
func newCertSet(entries []*entry) *certSet {
	s := &certSet{entries: entries, exact: map[string]*entry{}, wild: map[string]*entry{}}
	for _, e := range entries {
		leaf := e.cert.Load().Leaf
		names := leaf.DNSNames
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		for _, n := range names {
			n = strings.ToLower(n)
			m, key := s.exact, n
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				m, key = s.wild, rest
			}
			if _, taken := m[key]; !taken {
				m[key] = e
			}
		}
		if e.pair.Default && s.def == nil {
			s.def = e
		}
	}
	if s.def == nil && len(entries) > 0 {
		s.def = entries[0]
	}
	return s
}

// match returns the certificate for name: an exact name first, then a
// wildcard covering it (one label, as in RFC 6125), else nil.
func (s *certSet) match(name string) *entry {
	if name == "" {
		return nil
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if e := s.exact[name]; e != nil {
		return e
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		return s.wild[parent]
	}
	return nil
}

// get returns the certificate for name, or the default.
func (s *certSet) get(name string) *tls.Certificate {
	e := s.match(name)
	if e == nil {
		e = s.def
	}
	if e == nil {
		return nil
	}
	return e.cert.Load()
}
