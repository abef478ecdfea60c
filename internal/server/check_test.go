package server

import (
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
)

// TestCheckAcceptsConnectionCap: max_conns_per_target, once refused at load
// because nothing enforced it, is enforced now (upstream/limit.go) and so
// accepted, with its queue.
func TestCheckAcceptsConnectionCap(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`listeners: [{addr: "127.0.0.1:0"}]
upstreams:
  app: {targets: ["http://127.0.0.1:9"], max_conns_per_target: 5, queue: {size: 10, timeout: 1s}}
sites: [{routes: [{upstream: app}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(cfg); err != nil {
		t.Fatalf("Check = %v", err)
	}
}
