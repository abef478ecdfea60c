package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestZeroTimeoutsMeanNoLimit checks that 0, which the configuration defines
// as "no limit", is not taken as "already expired" anywhere on the path.
func TestZeroTimeoutsMeanNoLimit(t *testing.T) {
	t.Parallel()
	be := echoBackend(t, "zero")
	cfg := strings.Replace(oneUpstream(
		"limits: {read_header_timeout: 0, idle_timeout: 0, body_read_timeout: 0}",
		be.URL), "    targets:", "    timeouts: {response_header: 0, idle: 0}\n    targets:", 1)
	gh := startGatehouse(t, cfg)
	c := newClient(t)
	for i := 0; i < 3; i++ {
		resp, body := do(t, c, "POST", gh.URL(fmt.Sprintf("/zero/%d", i)), "", strings.NewReader("payload"))
		if resp.StatusCode != 200 || !strings.Contains(string(body), "zero") {
			t.Fatalf("request %d: %d %q, want 200 from the backend", i, resp.StatusCode, body)
		}
	}
}
