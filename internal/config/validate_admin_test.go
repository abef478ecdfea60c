package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminAddressAndToken(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.token")
	os.WriteFile(good, []byte("  0123456789abcdef0123\n"), 0o600)
	short := filepath.Join(dir, "short.token")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	for _, c := range []struct{ admin, err string }{
		{`{addr: "127.0.0.1:9901"}`, ""},
		{`{addr: "[::1]:9901"}`, ""},
		{`{addr: "localhost:9901"}`, ""},
		{`{addr: ":9901"}`, `c.yaml:2:15: admin.addr: ":9901" is reachable from other machines: listen on 127.0.0.1 or ::1, or set admin.token_file`},
		{`{addr: "0.0.0.0:9901"}`, `admin.addr: "0.0.0.0:9901" is reachable from other machines`},
		{`{addr: "10.1.2.3:9901"}`, `is reachable from other machines`},
		{`{addr: "0.0.0.0:9901", token_file: "` + good + `"}`, ""},
		{`{addr: "127.0.0.1:9901", token_file: "` + short + `"}`, `admin.token_file: the token must be at least 16 characters`},
		{`{addr: "127.0.0.1:9901", token_file: "` + filepath.Join(dir, "none") + `"}`, `admin.token_file: cannot read it: no such file or directory`},
		{`{addr: "127.0.0.1:9901", token_file: ""}`, `admin.token_file: must not be empty`},
	} {
		cfg, err := Parse("c.yaml", []byte("listeners: [{addr: \"127.0.0.1:8080\"}]\nadmin: "+c.admin+"\n"))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("admin %s: %v", c.admin, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("admin %s: error %v, want %q", c.admin, err, c.err)
		case c.err == "" && strings.Contains(c.admin, "token_file") && cfg.Admin.Token != "0123456789abcdef0123":
			t.Errorf("admin %s: token %q", c.admin, cfg.Admin.Token)
		}
	}
}

func TestMetricsEnabledByDefault(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("listeners: [{addr: \"127.0.0.1:8080\"}]\n"))
	if err != nil || !cfg.Metrics.Enabled {
		t.Fatalf("metrics.enabled default: %v %v", err, cfg.Metrics.Enabled)
	}
	cfg, err = Parse("c.yaml", []byte("listeners: [{addr: \"127.0.0.1:8080\"}]\nmetrics: {enabled: false}\n"))
	if err != nil || cfg.Metrics.Enabled {
		t.Fatalf("metrics.enabled false: %v %v", err, cfg.Metrics.Enabled)
	}
}
