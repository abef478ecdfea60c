package botfilter_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/server"
)

func TestSettingsAreValidated(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("too short"), 0o600)
	for _, c := range []struct{ settings, want string }{
		{`{}`, `bot_filter: bot_filter has nothing to do`},
		{`{deny_user_agents: ["~(unclosed"]}`, `deny_user_agents[0]: bad regular expression`},
		{`{deny_user_agents: [""]}`, `deny_user_agents[0]: empty pattern`},
		{`{verified_crawlers: [{user_agent: Googlebot}]}`, `verified_crawlers[0].rdns_suffixes: a verified crawler needs`},
		{`{verified_crawlers: [{user_agent: Googlebot, rdns_suffixes: ["bad domain!"]}]}`, `rdns_suffixes[0]: "bad domain!" is not a domain name`},
		{`{verified_crawlers: [{user_agent: G, rdns_suffixes: [g.com]}], resolver: nowhere}`, `resolver: must be host:port`},
		{`{deny_user_agents: [x], lookup_timeout: 0s}`, `lookup_timeout: must be between`},
		{`{challenge: true}`, `challenge.secret_file: the challenge needs a secret`},
		{`{challenge: {secret_file: ` + short + `}}`, `the secret is 9 bytes`},
		{`{challenge: {secret_file: /nonexistent/key}}`, `challenge.secret_file: cannot read the secret`},
		{`{challenge: {secret_file: ` + short + `, clients: some}}`, `challenge.clients: must be suspect or all`},
		{`{challenge: {secret_file: ` + short + `, cookie_name: "a b"}}`, `challenge.cookie_name: must be`},
		{`{challenge: {secret_file: ` + short + `, ttl: 1s}}`, `challenge.ttl: must be between 1m and 720h`},
		{`{challenge: {colour: red}}`, `colour`},
	} {
		cfg, err := config.Parse(filepath.Join(dir, "g.yaml"), []byte(`listeners: [{addr: "127.0.0.1:0"}]
sites:
  - routes:
      - respond: {body: hi}
        middleware:
          - bot_filter: `+c.settings+"\n"))
		if err == nil {
			err = server.Check(cfg)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "g.yaml:6:") {
			t.Errorf("bot_filter %s: %v, want a positioned error containing %q", c.settings, err, c.want)
		}
	}
}
