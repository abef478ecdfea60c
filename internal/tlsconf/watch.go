package tlsconf

import (
	"context"
	"slices"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
)

// watch re-reads certificate files that changed on disk, every interval,
// until ctx ends. Polling (rather than inotify) also sees files replaced by
// a rename, on any file system, and costs two stat calls per certificate.
func (m *Manager) watch(ctx context.Context, every time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.checkFiles(ctx)
		}
	}
}

// checkFiles reloads the certificates whose files changed. A change that
// does not load (half-written file, key not matching yet, expired) is
// logged and the running certificate keeps serving; the next change is
// tried again.
func (m *Manager) checkFiles(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	set := m.certs.Load()
	entries := slices.Clone(set.entries)
	changed := false
	for i, e := range entries {
		st, err := stampOf(e.pair)
		if err != nil || st == e.stamp {
			continue
		}
		e.stamp = st
		cert, _, problem := config.LoadServerCertificate(e.pair.CertFile, e.pair.KeyFile, time.Now())
		if problem != "" {
			m.log.Error("certificate files changed but cannot be used; the previous certificate keeps serving", "problem", problem)
			continue
		}
		ne := &entry{pair: e.pair, stamp: st}
		ne.cert.Store(cert)
		e.stopStapling()
		m.startStapling(ne, m.settings.TLS.OCSPStapling)
		entries[i] = ne
		changed = true
		m.log.Info("certificate reloaded", "cert_file", e.pair.CertFile, "names", cert.Leaf.DNSNames, "not_after", cert.Leaf.NotAfter)
	}
	if changed {
		m.certs.Store(newCertSet(entries))
	}
}
