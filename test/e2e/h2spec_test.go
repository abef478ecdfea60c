package e2e

import (
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// h2specFailures are the h2spec cases x/net/http2 (gatehouse's HTTP/2
// server) answers differently from what h2spec expects, on purpose:
//   - a SETTINGS frame repeating a setting is refused as a protocol error
//     (a defence against settings floods) rather than applied in order;
//   - a request with a connection-specific header, or TE other than
//     "trailers", gets a 400 response on its stream instead of a stream
//     reset. Either way it never reaches a backend.
var h2specFailures = map[string]bool{
	"http2/6.5.3: Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE":                                          true,
	"http2/8.1.2.2: Sends a HEADERS frame that contains the connection-specific header field":                     true,
	`http2/8.1.2.2: Sends a HEADERS frame that contains the TE header field with any value other than "trailers"`: true,
}

// h2specBin finds h2spec (installed by `make deps` with go install).
func h2specBin(t *testing.T) string {
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	out, err := exec.Command(goTool(), "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "h2spec")
		if fileExists(p) {
			return p
		}
	}
	t.Fatal("h2spec not found: run `make deps` (go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1)")
	return ""
}

// The h2spec HTTP/2 conformance suite against the TLS listener.
func TestH2Spec(t *testing.T) {
	t.Parallel()
	bin := h2specBin(t)
	f := newTLSFixture(t)
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    tls: {certificates: [%s]}
access_log: {enabled: false}
upstreams:
  app: {targets: [%s]}
sites: [{routes: [{upstream: app}]}]
`, f.cert(t, "a", "a.test"), echoBackend(t, "app").URL))
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	cmd := exec.Command(bin, "-h", "127.0.0.1", "-p", port(gh.Addr()), "-t", "-k", "-o", "5", "-j", report)
	out, _ := cmd.CombinedOutput() // exits 1 when any case fails
	m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no h2spec summary in:\n%s", tail(string(out), 4000))
	}
	total, _ := strconv.Atoi(string(m[1]))
	passed, _ := strconv.Atoi(string(m[2]))
	t.Logf("h2spec: %s", m[0])
	if total < 145 {
		t.Errorf("h2spec ran %d cases, want 145", total)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Suites []struct {
			Cases []struct {
				Package string    `xml:"package,attr"`
				Name    string    `xml:"classname,attr"`
				Error   *struct{} `xml:"error"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	var unexpected []string
	for _, s := range rep.Suites {
		for _, c := range s.Cases {
			if id := c.Package + ": " + c.Name; (c.Error != nil || c.Failure != nil) && !h2specFailures[id] {
				unexpected = append(unexpected, id)
			}
		}
	}
	if len(unexpected) > 0 || passed < total-len(h2specFailures) {
		t.Errorf("h2spec: %d of %d passed; unexpected failures %v\n%s", passed, total, unexpected, tail(string(out), 6000))
	}
}
