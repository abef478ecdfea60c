package config

import (
	"errors"
	"strings"
	"testing"
)

// Each case lists every error the text must produce, exactly, in order: a
// wrong line, column, path or message, a missing error or an extra one all
// fail the test.
func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "no listeners",
			text: "sites: [{routes: [{respond: {}}]}]\n",
			want: []string{
				`1:1: listeners: at least one listener is required, like: listeners: [{addr: 127.0.0.1:8080}]`,
			},
		},
		{
			name: "empty listeners",
			text: "shutdown_timeout: 1s\nlisteners: []\n",
			want: []string{
				`2:12: listeners: at least one listener is required, like: listeners: [{addr: 127.0.0.1:8080}]`,
			},
		},
		{
			name: "listener addresses",
			text: `listeners:
  - h2c: true
  - addr: localhost
  - addr: 127.0.0.1:99999
  - addr: 127.0.0.1:8080
  - addr: 127.0.0.1:8080
  - addr: bad host:80
  - addr: 127.0.0.1:0
  - addr: 127.0.0.1:0
`,
			want: []string{
				`2:5: listeners[0].addr: addr is required (host:port, like 127.0.0.1:8080)`,
				`3:11: listeners[1].addr: invalid address "localhost": write host:port, like 127.0.0.1:8080 or :8080`,
				`4:11: listeners[2].addr: invalid port "99999": write a number from 0 to 65535`,
				`6:11: listeners[4].addr: address "127.0.0.1:8080" is already used by listeners[3] (line 5)`,
				`7:11: listeners[5].addr: invalid host "bad host": write an IP address or a host name`,
			},
		},
		{
			name: "admin address",
			text: "listeners: [{addr: \":8080\"}]\nadmin: {addr: 0.0.0.0}\n",
			want: []string{
				`2:15: admin.addr: invalid address "0.0.0.0": write host:port, like 127.0.0.1:8080 or :8080`,
			},
		},
		{
			name: "admin without addr",
			text: "listeners: [{addr: \":8080\"}]\nadmin: {}\n",
			want: []string{
				`2:8: admin.addr: addr is required (host:port, like 127.0.0.1:8080)`,
			},
		},
		{
			name: "admin on a listener's address",
			text: "listeners: [{addr: \":8080\"}]\nadmin:\n  addr: :8080\n",
			want: []string{
				`3:9: admin.addr: address ":8080" is already used by listeners[0] (line 1)`,
			},
		},
		{
			name: "targets",
			text: `listeners: [{addr: ":1"}]
upstreams:
  a:
    targets:
      - https://a:1
      - localhost:9001
      - http://
      - http://u:p@a:1
      - http://a:1/?x=1
      - http://a:1/#top
      - {url: http://a:1, weight: 0}
      - {url: http://a:1, weight: 1001}
      - {weight: 2}
      - "http://[::1"
      - 127.0.0.1:9001
      - {url: ftp://a:1}
  b: {}
  c: {targets: []}
  d:
`,
			want: []string{
				`5:9: upstreams.a.targets[0]: scheme must be http, not "https"`,
				`6:9: upstreams.a.targets[1]: the URL has no scheme: write http://localhost:9001`,
				`7:9: upstreams.a.targets[2]: the URL has no host: write http://HOST:PORT`,
				`8:9: upstreams.a.targets[3]: the URL must not contain a user name or password`,
				`9:9: upstreams.a.targets[4]: the URL must not contain a query (?...)`,
				`10:9: upstreams.a.targets[5]: the URL must not contain a fragment (#...)`,
				`11:35: upstreams.a.targets[6].weight: weight must be between 1 and 1000, got 0`,
				`12:35: upstreams.a.targets[7].weight: weight must be between 1 and 1000, got 1001`,
				`13:9: upstreams.a.targets[8].url: url is required`,
				`14:9: upstreams.a.targets[9]: invalid URL "http://[::1": missing ']' in host`,
				`15:9: upstreams.a.targets[10]: invalid URL "127.0.0.1:9001": first path segment in URL cannot contain colon (is the scheme, like http://, missing?)`,
				`16:15: upstreams.a.targets[11].url: scheme must be http, not "ftp"`,
				`17:3: upstreams.b.targets: an upstream needs at least one target`,
				`18:16: upstreams.c.targets: an upstream needs at least one target`,
				`19:3: upstreams.d.targets: an upstream needs at least one target`,
			},
		},
		{
			name: "balance and hash_key",
			text: `listeners: [{addr: ":1"}]
upstreams:
  a: {targets: [http://a:1], balance: roundrobin}
  b: {targets: [http://a:1], hash_key: uri}
  c: {targets: [http://a:1], balance: hash, hash_key: "header:"}
  d: {targets: [http://a:1], balance: hash, hash_key: ip}
  e: {targets: [http://a:1], balance: hash, hash_key: cookie:sid}
  "my app": {targets: [http://a:1]}
`,
			want: []string{
				`3:39: upstreams.a.balance: unknown balance "roundrobin" (did you mean "round_robin"?): use round_robin, weighted_round_robin, least_conn, random, p2c, ewma, hash or first`,
				`4:40: upstreams.b.hash_key: hash_key applies only to balance: hash`,
				`5:55: upstreams.c.hash_key: invalid hash_key "header:": header needs a name, like header:X-User`,
				`6:55: upstreams.d.hash_key: invalid hash_key "ip": use client_ip, uri, header:NAME or cookie:NAME`,
				`8:3: upstreams["my app"]: invalid upstream name "my app": use letters, digits, '.', '_' and '-'`,
			},
		},
		{
			name: "duplicate keys",
			text: `listeners: [{addr: ":1"}]
upstreams:
  app: {targets: [http://a:1]}
  app: {targets: [http://b:1]}
sites:
  - routes:
      - respond: {status: 200, status: 201, headers: {X-A: a, X-A: b}}
listeners: []
`,
			want: []string{
				`4:3: upstreams.app: duplicate upstream "app" (first defined at line 3)`,
				`7:32: sites[0].routes[0].respond.status: duplicate field "status" (first defined at line 7)`,
				`7:63: sites[0].routes[0].respond.headers.X-A: duplicate key "X-A" (first defined at line 7)`,
				`8:1: listeners: duplicate field "listeners" (first defined at line 1)`,
			},
		},
		{
			name: "wrong types",
			text: `listeners: {addr: ":1"}
shutdown_timeout: 30
trusted_proxies: 10.0.0.0/8
limits: {read_header_timeout: -1s, idle_timeout: forever, max_header_bytes: 12XB, max_body_bytes: -5}
access_log: {enabled: "yes"}
upstreams:
  a: {targets: http://a:1}
  b: [http://a:1]
  c: {targets: [http://a:1], preserve_host: 1, timeouts: [1s]}
sites:
  - hosts: {a: b}
    routes:
      - match: {methods: GET, path_regex: "(", client_ip: [10.0.0.0/33, "fe80::1%eth0", 1]}
        respond: {status: "200"}
      - match: {path_regex: "a(?P<x"}
        respond: {status: 2.5}
  - routes: {}
`,
			want: []string{
				`1:12: listeners: expected a list of mappings, got a mapping`,
				`2:19: shutdown_timeout: a duration needs a unit: write 30s or 30ms, for example`,
				`3:18: trusted_proxies: expected a list of IP addresses or prefixes, got the string "10.0.0.0/8"`,
				`4:31: limits.read_header_timeout: duration -1s must not be negative`,
				`4:50: limits.idle_timeout: invalid duration "forever": write a number and a unit (ns, us, ms, s, m, h), like 250ms, 30s or 1h30m`,
				`4:77: limits.max_header_bytes: invalid size "12XB": unknown unit "XB" (use B, KB, KiB, MB, MiB, GB or GiB)`,
				`4:99: limits.max_body_bytes: size -5 must not be negative`,
				`5:23: access_log.enabled: expected true or false, got the string "yes"`,
				`7:16: upstreams.a.targets: expected a list of targets (URLs or {url, weight} mappings), got the string "http://a:1"`,
				`8:6: upstreams.b: expected a mapping, got a list`,
				`9:45: upstreams.c.preserve_host: expected true or false, got the integer 1`,
				`9:58: upstreams.c.timeouts: expected a mapping, got a list`,
				`11:12: sites[0].hosts: expected a list of strings, got a mapping`,
				`13:26: sites[0].routes[0].match.methods: expected a list of strings, got the string "GET"`,
				`13:43: sites[0].routes[0].match.path_regex: invalid regular expression "(": missing closing )`,
				`13:60: sites[0].routes[0].match.client_ip[0]: invalid IP prefix "10.0.0.0/33": write an address and a prefix length, like 10.0.0.0/8 or 2001:db8::/32`,
				`13:73: sites[0].routes[0].match.client_ip[1]: invalid IP address "fe80::1%eth0": write an address or a prefix, like 192.0.2.1 or 10.0.0.0/8`,
				`13:89: sites[0].routes[0].match.client_ip[2]: expected an IP address or prefix (like 10.0.0.0/8), got the integer 1`,
				`14:27: sites[0].routes[0].respond.status: expected an integer, got the string "200"`,
				`15:29: sites[0].routes[1].match.path_regex: invalid regular expression "a(?P<x": invalid named capture at "(?P<x"`,
				`16:27: sites[0].routes[1].respond.status: expected an integer, got the number 2.5`,
				`17:13: sites[1].routes: expected a list of mappings, got a mapping`,
			},
		},
		{
			name: "unknown fields",
			text: `listeners: [{addr: ":1"}]
tls: {}
sites:
  - routes:
      - match: {path_prefx: /a, PathRegex: x}
        upstreams: app
`,
			want: []string{
				`2:1: tls: unknown field "tls"`,
				`5:9: sites[0].routes[0]: a route needs exactly one of upstream, split, respond, redirect; found none`,
				`5:17: sites[0].routes[0].match.path_prefx: unknown field "path_prefx" (did you mean "path_prefix"?)`,
				`5:33: sites[0].routes[0].match.PathRegex: unknown field "PathRegex" (did you mean "path_regex"?)`,
				`6:9: sites[0].routes[0].upstreams: unknown field "upstreams" (did you mean "upstream"?)`,
			},
		},
		{
			name: "sites and hosts",
			text: `listeners: [{addr: ":1"}]
sites:
  - hosts: [example.test, "*.example.test", ""]
    routes: []
  - hosts: [a.*.test, "*", "Example.TEST", "ex ample", "a.test:80", "*.1.2.3.4", "*.example.test", "c.test", "C.test"]
    routes: [{respond: {}}]
  - routes: [{respond: {}}]
  - hosts: []
    routes: [{respond: {}}]
  - hosts: [b.test]
`,
			want: []string{
				`3:45: sites[0].hosts[2]: a host pattern must not be empty: write a host name (example.com), a wildcard (*.example.com) or *`,
				`4:13: sites[0].routes: a site needs at least one route`,
				`5:13: sites[1].hosts[0]: invalid host pattern "a.*.test": a wildcard must be the whole first label, like *.example.com`,
				`5:28: sites[1].hosts[2]: host "example.test" is already served by sites[0] (line 3); a host belongs to one site`,
				`5:44: sites[1].hosts[3]: invalid host pattern "ex ample": write a host name (example.com), a wildcard (*.example.com) or *`,
				`5:56: sites[1].hosts[4]: invalid host pattern "a.test:80": leave the port out, sites match the host name only`,
				`5:69: sites[1].hosts[5]: invalid host pattern "*.1.2.3.4": write a host name (example.com), a wildcard (*.example.com) or *`,
				`5:82: sites[1].hosts[6]: host "*.example.test" is already served by sites[0] (line 3); a host belongs to one site`,
				`5:110: sites[1].hosts[8]: host "c.test" is listed twice`,
				`7:5: sites[2].hosts: host "*" is already served by sites[1] (line 5); a host belongs to one site`,
				`8:12: sites[3].hosts: hosts is empty: leave it out, or write ["*"], to match any host`,
				`10:5: sites[4].routes: a site needs at least one route`,
			},
		},
		{
			name: "route actions",
			text: `listeners: [{addr: ":1"}]
upstreams:
  app: {targets: [http://a:1]}
  api: {targets: [http://a:1]}
sites:
  - routes:
      - match: {path: /}
      - upstream: app
        respond: {body: x}
      - {upstream: app, split: [], redirect: {to: /}}
      - upstream: aap
      - upstream: nope
      - upstream: ""
      - split: [{upstream: app, weight: -1}, {upstream: ap, weight: 0}, {weight: 1}]
      - split: [{upstream: app, weight: 0}, {upstream: api, weight: 0}]
      - split: [{upstream: app}]
      - respond: {status: 600}
      - redirect: {status: 302}
      - redirect: {to: "https://{hots}{uri}", status: 200}
`,
			want: []string{
				`7:9: sites[0].routes[0]: a route needs exactly one of upstream, split, respond, redirect; found none`,
				`9:18: sites[0].routes[1].respond: a route needs exactly one of upstream, split, respond, redirect; found upstream and respond`,
				`10:32: sites[0].routes[2].split: a route needs exactly one of upstream, split, respond, redirect; found upstream, split and redirect`,
				`10:32: sites[0].routes[2].split: split needs at least one entry, like [{upstream: app, weight: 90}, {upstream: canary, weight: 10}]`,
				`11:19: sites[0].routes[3].upstream: upstream "aap" is not defined (did you mean "app"?)`,
				`12:19: sites[0].routes[4].upstream: upstream "nope" is not defined; the upstreams are api and app`,
				`13:19: sites[0].routes[5].upstream: the upstream name is empty`,
				`14:41: sites[0].routes[6].split[0].weight: weight must be between 0 and 1000000, got -1`,
				`14:57: sites[0].routes[6].split[1].upstream: upstream "ap" is not defined (did you mean "api"?)`,
				`14:73: sites[0].routes[6].split[2].upstream: upstream is required`,
				`15:16: sites[0].routes[7].split: the split weights add up to 0: at least one must be positive`,
				`16:17: sites[0].routes[8].split[0].weight: weight is required (0 sends this upstream no traffic)`,
				`17:27: sites[0].routes[9].respond.status: status must be between 100 and 599, got 600`,
				`18:19: sites[0].routes[10].redirect.to: to is required: the URL to redirect to, like https://{host}{uri}`,
				`19:24: sites[0].routes[11].redirect.to: unknown placeholder {hots} (did you mean "host"?): use {host}, {path}, {uri}, {query} or {scheme}`,
				`19:55: sites[0].routes[11].redirect.status: status must be 301, 302, 303, 307 or 308, got 200`,
			},
		},
		{
			name: "no upstreams section",
			text: "listeners: [{addr: \":1\"}]\nsites: [{routes: [{upstream: app}]}]\n",
			want: []string{
				`2:30: sites[0].routes[0].upstream: upstream "app" is not defined: there is no upstreams section`,
			},
		},
		{
			name: "match and headers",
			text: `listeners: [{addr: ":1"}]
sites:
  - routes:
      - match: {path: api, path_prefix: /api}
        respond: {}
      - match: {path_prefix: api/, methods: ["GET POST"], headers: {"Bad Name": x, X-A: "~[", X-B: "a\nb"}, query: {q: "~("}}
        strip_prefix: api
        respond: {headers: {X-C: "a\rb"}}
        request_headers: {set: {"X:Y": v}, remove: ["a b"]}
        response_headers: {add: {X-D: "a\0b", x-d: c}}
`,
			want: []string{
				`4:23: sites[0].routes[0].match.path: path must start with "/", got "api"`,
				`4:41: sites[0].routes[0].match.path_prefix: use only one of path, path_prefix and path_regex; found path and path_prefix`,
				`6:30: sites[0].routes[1].match.path_prefix: path_prefix must start with "/", got "api/"`,
				`6:46: sites[0].routes[1].match.methods[0]: invalid method "GET POST": a method is a single word, like GET`,
				`6:69: sites[0].routes[1].match.headers["Bad Name"]: invalid header name "Bad Name": a header name is a single word of letters, digits and -`,
				`6:84: sites[0].routes[1].match.headers.X-A: invalid regular expression "[": missing closing ]`,
				`6:95: sites[0].routes[1].match.headers.X-B: a header value must not contain CR, LF or NUL characters`,
				`6:117: sites[0].routes[1].match.query.q: invalid regular expression "(": missing closing )`,
				`7:23: sites[0].routes[1].strip_prefix: strip_prefix must start with "/", got "api"`,
				`8:29: sites[0].routes[1].respond.headers.X-C: a header value must not contain CR, LF or NUL characters`,
				`9:33: sites[0].routes[1].request_headers.set["X:Y"]: invalid header name "X:Y": a header name is a single word of letters, digits and -`,
				`9:53: sites[0].routes[1].request_headers.remove[0]: invalid header name "a b": a header name is a single word of letters, digits and -`,
				`10:34: sites[0].routes[1].response_headers.add.X-D: a header value must not contain CR, LF or NUL characters`,
				`10:47: sites[0].routes[1].response_headers.add.x-d: header "x-d" is also written as "X-D": header names are case-insensitive`,
			},
		},
		{
			name: "limits and access log",
			text: "listeners: [{addr: \":1\"}]\nlimits: {max_header_bytes: 512}\naccess_log: {output: \"\"}\n",
			want: []string{
				`2:28: limits.max_header_bytes: max_header_bytes must be between 1KiB and 16MiB, got 512`,
				`3:22: access_log.output: output must not be empty: write stderr, stdout or a file path`,
			},
		},
		{
			name: "max_header_bytes too large",
			text: "listeners: [{addr: \":1\"}]\nlimits:\n  max_header_bytes: 17MiB\n",
			want: []string{
				`3:21: limits.max_header_bytes: max_header_bytes must be between 1KiB and 16MiB, got 17825792`,
			},
		},
		{
			name: "middleware entries",
			text: `listeners: [{addr: ":1"}]
sites:
  - middleware:
      - rate_limit:
        rate: 100/s
      - {}
      - compress
      - [a]
    routes: [{respond: {}}]
`,
			want: []string{
				`4:9: sites[0].middleware[0]: a middleware entry is a one-key mapping {NAME: {settings}}; found 2 keys ("rate_limit" and "rate"): indent the settings under the name`,
				`6:9: sites[0].middleware[1]: a middleware entry is a one-key mapping {NAME: {settings}}; found no name`,
				`7:9: sites[0].middleware[2]: expected a one-key mapping {NAME: {settings}}, got the string "compress"`,
				`8:9: sites[0].middleware[3]: expected a one-key mapping {NAME: {settings}}, got a list`,
			},
		},
		{
			name: "alias cycle",
			text: "listeners: [{addr: \":1\"}]\nlimits: &x {<<: *x}\n",
			want: []string{
				`2:17: limits: alias *x refers to a value that contains it`,
			},
		},
		{
			name: "merge of a scalar",
			text: "listeners: [{addr: \":1\"}]\nlimits: {<<: 5}\n",
			want: []string{
				`2:14: limits: a merge (<<) needs a mapping or a list of mappings, got the integer 5`,
			},
		},
		{
			name: "not a mapping",
			text: "- listeners\n",
			want: []string{
				`1:1: expected a mapping, got a list`,
			},
		},
		{name: "empty file", text: "", want: []string{`1:1: empty configuration`}},
		{name: "only comments", text: "# nothing\n\n  # here\n", want: []string{`1:1: empty configuration`}},
		{name: "only null", text: "~\n", want: []string{`1:1: empty configuration`}},
		{
			name: "syntax error",
			text: "listeners:\n  - addr: :1\n sites: x\n",
			want: []string{`2:1: invalid YAML: did not find expected key`},
		},
		{
			name: "tab indentation",
			text: "listeners:\n\t- addr: :1\n",
			want: []string{`2:1: invalid YAML: found character that cannot start any token`},
		},
		{
			name: "control character",
			text: "listeners: [{addr: \":1\"}]\nshutdown_timeout: 1\x01s\n",
			want: []string{`2:20: invalid YAML: control characters are not allowed`},
		},
		{
			name: "invalid UTF-8",
			text: "listeners: [{addr: \":1\"}]\n# caf\xe9\n",
			want: []string{`2:6: invalid YAML: incomplete UTF-8 octet sequence`},
		},
		{
			name: "null list item",
			text: "listeners: [{addr: \":1\"}]\ntrusted_proxies: [10.0.0.0/8, ~]\n",
			want: []string{`2:31: trusted_proxies[1]: expected an IP address or prefix (like 10.0.0.0/8), got null`},
		},
		{
			name: "unknown anchor",
			text: "listeners: [{addr: \":1\"}]\nlimits: *nope\n",
			want: []string{`2:9: invalid YAML: unknown anchor 'nope' referenced`},
		},
		{
			name: "document after an empty one",
			text: "listeners: [{addr: \":1\"}]\n---\n---\nfoo: 1\n",
			want: []string{`4:1: a configuration file holds a single YAML document; remove the second one (after ---)`},
		},
		{
			name: "two documents",
			text: "listeners: [{addr: \":1\"}]\n---\nlisteners: [{addr: \":2\"}]\n",
			want: []string{`3:1: a configuration file holds a single YAML document; remove the second one (after ---)`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.text))
			var got []string
			if err != nil {
				var errs Errors
				if !errors.As(err, &errs) {
					t.Fatalf("error is a %T, want Errors", err)
				}
				for _, line := range strings.Split(err.Error(), "\n") {
					got = append(got, strings.TrimPrefix(line, "x.yaml:"))
				}
			}
			for i := range max(len(got), len(tc.want)) {
				g, w := "(none)", "(none)"
				if i < len(got) {
					g = got[i]
				}
				if i < len(tc.want) {
					w = tc.want[i]
				}
				if g != w {
					t.Errorf("error %d:\n got %s\nwant %s", i, g, w)
				}
			}
		})
	}
}
