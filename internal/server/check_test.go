package server

import (
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
)

// TestCheckRefusesUnenforcedSettings: a setting the runtime does not honour
// yet must be refused at load, never silently ignored.
func TestCheckRefusesUnenforcedSettings(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`listeners: [{addr: "127.0.0.1:0"}]
upstreams:
  app: {targets: ["http://127.0.0.1:9"], max_conns_per_target: 5}
sites: [{routes: [{upstream: app}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(cfg); err == nil || !strings.Contains(err.Error(), "max_conns_per_target") {
		t.Fatalf("Check = %v, want an error naming max_conns_per_target", err)
	}
}
