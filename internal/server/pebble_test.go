package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gatehouse-proxy/gatehouse/internal/testcert"
)

// pebble is a running Pebble ACME test server (Debian package pebble).
type pebble struct {
	dirURL  string
	mgmt    string
	rootPEM string // file trusting Pebble's own HTTPS certificate
	tlsCA   *testcert.CA
}

// startDNS answers A queries for every name with 127.0.0.1, so that
// Pebble's validation requests come to the test's listeners.
func startLoopbackDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				rr, _ := dns.NewRR(q.Name + " 1 IN A 127.0.0.1")
				m.Answer = append(m.Answer, rr)
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPebble runs /usr/bin/pebble validating on httpPort and tlsPort of
// 127.0.0.1, issuing certificates valid for validity.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebble {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		t.Fatal("pebble not installed (Debian package pebble; make deps installs it)")
	}
	dir := t.TempDir()
	p := &pebble{tlsCA: testcert.NewCA(t, "pebble HTTPS CA")}
	cf, kf := p.tlsCA.Issue(t, []string{"127.0.0.1", "localhost"}, testcert.Options{}).Write(t, dir, "pebble")
	p.rootPEM = filepath.Join(dir, "root.pem")
	testcert.WriteFile(t, p.rootPEM, p.tlsCA.PEM)
	listen, mgmt := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": cf, "privateKey": kf, "httpPort": httpPort, "tlsPort": tlsPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
		"certificateValidityPeriod": int(validity / time.Second),
	}})
	cfgFile := filepath.Join(dir, "pebble.json")
	testcert.WriteFile(t, cfgFile, cfg)
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", startLoopbackDNS(t))
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=0", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	out := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble output:\n%s", out.String())
		}
	})
	p.dirURL, p.mgmt = "https://"+listen+"/dir", mgmt
	client := p.client()
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := client.Get(p.dirURL)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble not ready: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

func (p *pebble) client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: p.tlsCA.Pool()}}}
}

// roots is the pool of Pebble's issuing root (it makes a new one per run).
func (p *pebble) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client().Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root: %q", b)
	}
	return pool
}
