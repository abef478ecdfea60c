package forwardauth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/filtertest"
)

func TestServe(t *testing.T) {
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		if r.Header.Get("Cookie") == "ok" {
			w.Header().Set("X-User", "u1")
			w.Header().Set("X-Other", "no")
			return
		}
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Reason", "expired")
		w.WriteHeader(403)
		fmt.Fprint(w, "go away")
	}))
	defer srv.Close()
	f := filtertest.MustBuild(t, New, "forward_auth", fmt.Sprintf(`{url: %q, copy_request_headers: [cookie], copy_response_headers: [x-user], user_header: X-User}`, srv.URL))

	r := filtertest.Serve(f, "/p", "Cookie", "ok", "X-User", "forged", "Authorization", "not copied")
	if !r.Passed || r.Log.User != "u1" {
		t.Fatalf("passed=%v log %+v", r.Passed, r.Log)
	}
	if got := r.Request.Header; string(got.Get("X-User")) != "u1" || len(got) != 3 || got.Has("X-Other") {
		t.Errorf("forwarded headers %q", got)
	}
	if seen.Get("Authorization") != "" || seen.Get("X-User") != "" || seen.Get("X-Forwarded-For") != "192.0.2.7" || seen.Get("X-Forwarded-Uri") != "/p" {
		t.Errorf("the service saw %v", seen)
	}

	r = filtertest.Serve(f, "/p", "Cookie", "bad")
	if r.Passed || r.Status != 403 || r.Body.String() != "go away" || r.Get("X-Reason") != "expired" {
		t.Fatalf("refusal: passed=%v %d %q %q", r.Passed, r.Status, r.Body.String(), r.Header)
	}
	for _, h := range []string{"Connection", "X-Hop", "Keep-Alive", "Content-Length"} {
		if r.Header.Has(h) {
			t.Errorf("the refusal kept %s", h)
		}
	}
	req := &exchange.Request{Method: []byte("HEAD"), Path: []byte("/"), Body: strings.NewReader("")}
	req.Header.Add([]byte("Cookie"), []byte("bad"))
	if r = filtertest.ServeRequest(f, req); r.Status != 403 || r.Body.Len() != 0 {
		t.Errorf("HEAD refusal: %d with %d body bytes", r.Status, r.Body.Len())
	}
}

func TestAllHeadersCopiedByDefault(t *testing.T) {
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	defer srv.Close()
	f := filtertest.MustBuild(t, New, "forward_auth", fmt.Sprintf(`{url: %q}`, srv.URL))
	r := filtertest.Serve(f, "/", "Authorization", "Bearer x", "Connection", "close", "Te", "trailers", "X-Forwarded-For", "6.6.6.6", "Content-Length", "5")
	if !r.Passed {
		t.Fatal("refused")
	}
	if seen.Get("Authorization") != "Bearer x" || seen.Get("Te") != "" || seen.Get("X-Forwarded-For") != "192.0.2.7" || seen.Get("Content-Length") != "" {
		t.Errorf("the service saw %v", seen)
	}
}

func TestConfigErrors(t *testing.T) {
	for settings, want := range map[string]string{
		`{}`:                                  "m.forward_auth.url: url must be",
		`{url: "http://u:p@auth/"}`:           "without credentials",
		`{url: "http://auth/", timeout: -1s}`: "must not be negative",
		`{url: "http://auth/", copy_request_headers: ["a:b"]}`: "copy_request_headers[0]",
		`{url: "http://auth/", user_header: "a b"}`:            "m.forward_auth.user_header",
	} {
		if _, err := filtertest.Build(t, New, "forward_auth", settings, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", settings, err, want)
		}
	}
}

func BenchmarkForwardAuth(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-User", "u") }))
	defer srv.Close()
	f := filtertest.MustBuild(b, New, "forward_auth", fmt.Sprintf(`{url: %q, copy_response_headers: [X-User]}`, srv.URL))
	req := &exchange.Request{Method: []byte("GET"), Path: []byte("/"), Host: []byte("h")}
	req.Header.Add([]byte("Cookie"), []byte("s=1"))
	hdr := req.Header
	w := &filtertest.Writer{}
	next := filter.HandlerFunc(func(*filter.Exchange) {})
	b.ReportAllocs()
	for b.Loop() {
		req.Header = hdr[:1]
		x := filter.Exchange{Req: req, W: w, Ctx: b.Context()}
		f.Serve(&x, next)
	}
}
