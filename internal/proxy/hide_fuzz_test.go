package proxy

import (
	"bytes"
	"net/url"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// FuzzRewriteLocation feeds backend-controlled Location and Refresh values
// to the rewriters: no input may crash them, and a rewritten URL always
// points at the client-facing host.
func FuzzRewriteLocation(f *testing.F) {
	for _, s := range []string{
		"http://10.0.0.5:8080/base/x?y#z", "//10.0.0.5:8080", "https://[fd00::1]:8443/", "http://u:p@10.0.0.5:8080/",
		"5; url=http://10.0.0.5:8080/a", "0;URL='http://10.0.0.5:8080/q'", "http://10.0.0.5:8080/base", "/rel", "",
	} {
		f.Add(s)
	}
	u, _ := url.Parse("http://10.0.0.5:8080/base")
	pool := &upstream.Pool{Targets: []*upstream.Target{{Backend: &upstream.Backend{Addr: "10.0.0.5:8080"}, URL: u, Prefix: []byte("/base")}}}
	req := &exchange.Request{Host: []byte("www.example.com")}
	f.Fuzz(func(t *testing.T, v string) {
		if out := rewriteLocation([]byte(v), req, []byte("/app"), pool); out != nil && !bytes.HasPrefix(out, []byte("http://www.example.com/app")) {
			t.Fatalf("rewriteLocation(%q) = %q", v, out)
		}
		if out := rewriteRefresh([]byte(v), req, nil, pool); out != nil && !bytes.Contains(out, []byte("http://www.example.com/")) {
			t.Fatalf("rewriteRefresh(%q) = %q", v, out)
		}
	})
}
