package tlsconf

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxOCSPResponse bounds what is read from a responder (real ones are ~1-2KB).
const maxOCSPResponse = 64 << 10

// startStapling fetches OCSP staples for e in the background when its
// certificate names a responder and stapling is on. Call with m.mu held.
func (m *Manager) startStapling(e *entry, on bool) {
	cert := e.cert.Load()
	if !on || len(cert.Leaf.OCSPServer) == 0 {
		return
	}
	if len(cert.Certificate) < 2 {
		m.log.Warn("OCSP stapling skipped: the cert_file holds no issuer certificate after the certificate", "cert_file", e.pair.CertFile)
		return
	}
	issuer, err := x509.ParseCertificate(cert.Certificate[1])
	if err != nil {
		m.log.Warn("OCSP stapling skipped: the issuer certificate does not parse", "cert_file", e.pair.CertFile, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	e.stop = cancel
	m.wg.Add(1)
	go m.staple(ctx, e, cert.Leaf, issuer)
}

func (e *entry) stopStapling() {
	if e.stop != nil {
		e.stop()
	}
}

// staple keeps e's staple fresh: it fetches a response, staples it, and
// fetches the next one halfway to its nextUpdate. An unreachable responder
// is retried with backoff; meanwhile the certificate is served without a
// staple once the last one expires (clients then ask the responder
// themselves or soft-fail, as when no staple is sent at all).
func (m *Manager) staple(ctx context.Context, e *entry, leaf, issuer *x509.Certificate) {
	defer m.wg.Done()
	retry := m.timing.OCSPRetryMin
	var staleAt time.Time // when the staple being served expires
	for {
		wait := retry
		resp, raw, err := m.fetchOCSP(ctx, leaf, issuer)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			m.log.Warn("OCSP responder unavailable; will retry", "cert_file", e.pair.CertFile, "responder", leaf.OCSPServer[0], "err", err, "retry_in", retry)
			retry = min(2*retry, m.timing.OCSPRetryMax)
			if !staleAt.IsZero() && time.Now().After(staleAt) {
				m.setStaple(e, nil)
				staleAt = time.Time{}
			}
		default:
			retry = m.timing.OCSPRetryMin
			m.setStaple(e, raw)
			staleAt = resp.NextUpdate
			wait = refreshIn(resp, time.Now(), m.timing.OCSPRetryMin)
			m.log.Info("OCSP staple updated", "cert_file", e.pair.CertFile, "next_update", resp.NextUpdate, "refresh_in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// refreshIn is when to fetch again: halfway through the response's
// validity, not sooner than floor; a response without nextUpdate is
// refreshed hourly.
func refreshIn(r *ocsp.Response, now time.Time, floor time.Duration) time.Duration {
	if r.NextUpdate.IsZero() {
		return max(time.Hour, floor)
	}
	half := r.ThisUpdate.Add(r.NextUpdate.Sub(r.ThisUpdate) / 2)
	return max(half.Sub(now), floor)
}

// setStaple replaces e's certificate with a copy carrying raw.
func (m *Manager) setStaple(e *entry, raw []byte) {
	c := *e.cert.Load()
	c.OCSPStaple = raw
	e.cert.Store(&c)
}

var errNotGood = errors.New("certificate not reported good")

// fetchOCSP asks the responder about leaf and checks the answer: signed for
// this certificate by its issuer, status good, not expired.
func (m *Manager) fetchOCSP(ctx context.Context, leaf, issuer *x509.Certificate) (*ocsp.Response, []byte, error) {
	body, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, m.timing.OCSPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", leaf.OCSPServer[0], bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	res, err := m.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, nil, fmt.Errorf("responder answered %s", res.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxOCSPResponse+1))
	if err != nil {
		return nil, nil, err
	}
	if len(raw) > maxOCSPResponse {
		return nil, nil, errors.New("response larger than 64KiB")
	}
	r, err := ocsp.ParseResponseForCert(raw, leaf, issuer)
	if err != nil {
		return nil, nil, err
	}
	if r.Status != ocsp.Good {
		if r.Status == ocsp.Revoked {
			return nil, nil, fmt.Errorf("%w: REVOKED at %s", errNotGood, r.RevokedAt.UTC())
		}
		return nil, nil, fmt.Errorf("%w: status unknown", errNotGood)
	}
	if !r.NextUpdate.IsZero() && time.Now().After(r.NextUpdate) {
		return nil, nil, errors.New("response already expired")
	}
	return r, raw, nil
}
