package waf_test

import (
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/server"
)

func TestSettingsAreValidated(t *testing.T) {
	for _, c := range []struct{ settings, want string }{
		{`{mode: audit}`, `.waf.mode: must be block or detect`},
		{`{paranoia_level: 5}`, `.waf.paranoia_level: must be 1, 2, 3 or 4`},
		{`{rules: owasp}`, `.waf.rules: must be crs or none`},
		{`{rules: none}`, `.waf.rules: rules: none needs directives`},
		{`{request_body_limit: 0}`, `.waf.request_body_limit: must be between 1 and 64MiB`},
		{`{request_body_over_limit: drop}`, `request_body_over_limit: must be reject or inspect_partial`},
		{`{exclude_paths: [static]}`, `exclude_paths[0]: must be a path starting with /`},
		{`{rules: none, directives: ["SecRule ARGS \"@rx a\" \"id:1,phase:2,deny,nosuchaction\""]}`, `.waf.directives: the rules do not load`},
		{`{colour: red}`, `colour`},
	} {
		cfg, err := config.Parse("g.yaml", []byte(`listeners: [{addr: "127.0.0.1:0"}]
sites:
  - routes:
      - respond: {body: hi}
        middleware:
          - waf: `+c.settings+"\n"))
		if err == nil {
			err = server.Check(cfg)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "g.yaml:6:") {
			t.Errorf("waf %s: %v, want a positioned error containing %q", c.settings, err, c.want)
		}
	}
}
