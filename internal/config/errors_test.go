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
			name: "observability sections",
			text: `listeners: [{addr: "127.0.0.1:1"}]
access_log: {format: jsn, fields: [status, stauts, "header:bad name", status]}
request_id: {header: "X Request"}
tracing: {sample_ratio: 1.5, headers: {"a b": x}}
cluster: {redis: {db: -1}}
`,
			want: []string{
				`2:22: access_log.format: format must be json, combined or common, not "jsn" (did you mean "json"?)`,
				`2:35: access_log.fields: fields apply to format json only; combined and common have fixed fields`,
				`2:44: access_log.fields[1]: unknown field "stauts" (did you mean "status"?); fields: time, client, method, host, path, query, proto, status, bytes, bytes_in, duration_ms, upstream, upstream_ms, route, request_id, tls, cache, user, blocked, referer, user_agent, header:NAME`,
				`2:52: access_log.fields[2]: "header:bad name": header:NAME needs a header field name`,
				`2:71: access_log.fields[3]: field "status" is listed twice`,
				`3:22: request_id.header: "X Request" is not a header field name`,
				`4:10: tracing.otlp_endpoint: required: the OTLP/HTTP collector, e.g. http://127.0.0.1:4318`,
				`4:25: tracing.sample_ratio: sample_ratio must be between 0 and 1, got 1.5`,
				`4:40: tracing.headers["a b"]: "a b" is not a header field name`,
				`5:18: cluster.redis.addr: required: host:port of the Redis server`,
				`5:23: cluster.redis.db: must be 0 or more`,
			},
		},
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
      - htps://a:1
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
				`5:9: upstreams.a.targets[0]: scheme must be http, https, dns+http, dns+https, srv+http or srv+https, not "htps" (did you mean "https"?)`,
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
				`16:15: upstreams.a.targets[11].url: scheme must be http, https, dns+http, dns+https, srv+http or srv+https, not "ftp"`,
				`17:3: upstreams.b.targets: an upstream needs at least one target`,
				`18:16: upstreams.c.targets: an upstream needs at least one target`,
				`19:3: upstreams.d.targets: an upstream needs at least one target`,
			},
		},
		{
			name: "target schemes",
			text: `listeners: [{addr: ":1"}]
upstreams:
  a:
    targets:
      - dns+http://10.0.0.1:80
      - srv+http://_h._tcp.a:80
      - dns+https://bad_-.x
      - http://a:99999
      - srv+https://[::1]
      - "dns+http://a b"
      - "srv+http://_h._tcp.a:"
    resolve_interval: 0s
  b:
    targets: [http://a:1]
    resolve_interval: 10s
  c:
    targets: [http://a:1]
    backup: [{url: http://b:1, weight: 0}, ftp://x, ~, "http://b:"]
    max_idle_per_target: -1
    max_conns_per_target: -2
  d:
    targets: [srv+http://x]
    backup: [http://y:1]
    resolve_interval: 1m
`,
			want: []string{
				`5:9: upstreams.a.targets[0]: dns+http looks up a host name, and 10.0.0.1 is an address: write http://10.0.0.1:80`,
				`6:9: upstreams.a.targets[1]: srv+http takes no port: the SRV records give the ports; write srv+http://_h._tcp.a`,
				`7:9: upstreams.a.targets[2]: invalid host name "bad_-.x": dns+https looks it up in DNS`,
				`8:9: upstreams.a.targets[3]: invalid port "99999": write a number from 1 to 65535`,
				`9:9: upstreams.a.targets[4]: srv+https looks up a host name, and ::1 is an address: write https://[::1]`,
				`10:9: upstreams.a.targets[5]: invalid URL "dns+http://a b": invalid character " " in host name`,
				`11:9: upstreams.a.targets[6]: srv+http takes no port: the SRV records give the ports`,
				`12:23: upstreams.a.resolve_interval: resolve_interval must be positive`,
				`15:23: upstreams.b.resolve_interval: resolve_interval applies only to dns+http(s):// and srv+http(s):// targets`,
				`18:40: upstreams.c.backup[0].weight: weight must be between 1 and 1000, got 0`,
				`18:44: upstreams.c.backup[1]: scheme must be http, https, dns+http, dns+https, srv+http or srv+https, not "ftp"`,
				`18:53: upstreams.c.backup[2]: expected a URL or a mapping {url, weight}, got null`,
				`18:56: upstreams.c.backup[3]: the port after ":" is empty: write a port, or leave the colon out`,
				`19:26: upstreams.c.max_idle_per_target: max_idle_per_target must not be negative, got -1`,
				`20:27: upstreams.c.max_conns_per_target: max_conns_per_target must not be negative (0 means unlimited), got -2`,
			},
		},
		{
			name: "transport and tls",
			text: `listeners: [{addr: ":1"}]
upstreams:
  a:
    targets: [http://a:1, https://b:1]
    backup: [dns+http://c:1]
    transport: h2
  b:
    targets: [https://a:1, {url: "srv+https://_x._tcp.b"}, http://c:1]
    transport: h2c
  c:
    targets: [http://a:1]
    transport: http2
    tls: {server_name: "a b", cert_file: testdata/tls/client.pem}
  d:
    targets: [https://a:1]
    tls: {key_file: testdata/tls/client.key, ca_file: testdata/tls/missing.pem}
  e:
    targets: [https://a:1]
    tls: {ca_file: testdata/tls/client.key, cert_file: testdata/tls/client.pem, key_file: testdata/tls/other.key}
  f:
    targets: [https://a:1]
    tls: {ca_file: testdata, cert_file: testdata/tls/client.key, key_file: testdata/tls/client.key}
  g:
    targets: [https://a:1]
    tls: {ca_file: "", cert_file: testdata/tls/client.pem, key_file: testdata/tls/ca.pem, insecure_skip_verify: 1}
  h:
    targets: [https://a:1]
    tls: {ca_file: testdata/tls/bad.pem, cert_file: testdata/tls/bad.pem, key_file: testdata/tls/client.key, server_name: "a:443"}
  i:
    targets: [htp://a:1]
    tls: {}
    transport: H2
`,
			want: []string{
				`4:15: upstreams.a.targets[0]: transport: h2 (line 6) is HTTP/2 over TLS and needs https targets; for HTTP/2 without TLS use transport: h2c`,
				`5:14: upstreams.a.backup[0]: transport: h2 (line 6) is HTTP/2 over TLS and needs https targets; for HTTP/2 without TLS use transport: h2c`,
				`8:15: upstreams.b.targets[0]: transport: h2c (line 9) is HTTP/2 without TLS and needs http targets; for HTTP/2 over TLS use transport: h2`,
				`8:34: upstreams.b.targets[1].url: transport: h2c (line 9) is HTTP/2 without TLS and needs http targets; for HTTP/2 over TLS use transport: h2`,
				`12:16: upstreams.c.transport: unknown transport "http2": use h1, h2 or h2c`,
				`13:10: upstreams.c.tls: tls is set but no target uses https: write https:// (or dns+https://, srv+https://) targets, or remove tls`,
				`13:10: upstreams.c.tls.key_file: key_file is required with cert_file: the client certificate's private key`,
				`13:24: upstreams.c.tls.server_name: invalid server_name "a b": write a host name or an IP address, without a port`,
				`16:10: upstreams.d.tls.cert_file: cert_file is required with key_file: the client certificate`,
				`16:55: upstreams.d.tls.ca_file: cannot read ca_file "testdata/tls/missing.pem": no such file or directory`,
				`19:20: upstreams.e.tls.ca_file: ca_file "testdata/tls/client.key" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
				`19:91: upstreams.e.tls.key_file: key_file "testdata/tls/other.key" is not the key of the certificate in cert_file "testdata/tls/client.pem"`,
				`22:20: upstreams.f.tls.ca_file: cannot read ca_file "testdata": not a regular file`,
				`22:41: upstreams.f.tls.cert_file: cert_file "testdata/tls/client.key" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
				`25:20: upstreams.g.tls.ca_file: ca_file is empty: write the path of a PEM file`,
				`25:70: upstreams.g.tls.key_file: key_file "testdata/tls/ca.pem": found a certificate rather than a key in the PEM for the private key`,
				`25:113: upstreams.g.tls.insecure_skip_verify: expected true or false, got the integer 1`,
				`28:20: upstreams.h.tls.ca_file: ca_file "testdata/tls/bad.pem": certificate 1 does not parse: malformed certificate`,
				`28:53: upstreams.h.tls.cert_file: cert_file "testdata/tls/bad.pem": certificate 1 does not parse: malformed certificate`,
				`28:123: upstreams.h.tls.server_name: invalid server_name "a:443": write a host name or an IP address, without a port`,
				`30:15: upstreams.i.targets[0]: scheme must be http, https, dns+http, dns+https, srv+http or srv+https, not "htp" (did you mean "http"?)`,
				`32:16: upstreams.i.transport: unknown transport "H2" (did you mean "h2"?): use h1, h2 or h2c`,
			},
		},
		{
			name: "health checks",
			text: `listeners: [{addr: ":1"}]
upstreams:
  a:
    targets: [http://a:1]
    health:
      active:
        path: healthz
        interval: 0s
        timeout: 1s
        fall: 0
        rise: -1
        expect_status: "399-200"
        headers: {Host: x, "Bad Name": y}
        host: "::1"
      passive: {max_fails: 0, window: 0s, eject: forever}
  b:
    targets: [http://a:1]
    health:
      active: {interval: 1s, timeout: 1s, expect_status: 600, path: "/a b"}
      pasive: {}
  c:
    targets: [http://a:1]
    health: {active: {interval: 1s, expect_status: "2xx", host: "a:0"}, passive: {window: 1}}
  d:
    targets: [http://a:1]
    health: {active: {interval: soon, fall: x}, passive: []}
  e:
    targets: [http://a:1]
    health: {active: {interval: 1ns}}
  f:
    targets: [http://a:1]
    health: {active: true}
`,
			want: []string{
				`7:15: upstreams.a.health.active.path: path must start with "/", got "healthz"`,
				`8:19: upstreams.a.health.active.interval: interval must be positive`,
				`10:15: upstreams.a.health.active.fall: fall must be at least 1, got 0`,
				`11:15: upstreams.a.health.active.rise: rise must be at least 1, got -1`,
				`12:24: upstreams.a.health.active.expect_status: range "399-200" is backwards: write the lower code first, like 200-399`,
				`13:19: upstreams.a.health.active.headers.Host: the Host header of the checks goes in host, not in headers`,
				`13:28: upstreams.a.health.active.headers["Bad Name"]: invalid header name "Bad Name": a header name is a single word of letters, digits and -`,
				`14:15: upstreams.a.health.active.host: invalid host "::1": write a host name or an address, optionally with a port, like example.com or example.com:8080 (an IPv6 address goes in brackets: [::1])`,
				`15:28: upstreams.a.health.passive.max_fails: max_fails must be at least 1, got 0`,
				`15:39: upstreams.a.health.passive.window: window must be positive`,
				`15:50: upstreams.a.health.passive.eject: invalid duration "forever": write a number and a unit (ns, us, ms, s, m, h), like 250ms, 30s or 1h30m`,
				`19:39: upstreams.b.health.active.timeout: timeout (1s) must be shorter than interval (1s)`,
				`19:58: upstreams.b.health.active.expect_status: status 600 is out of range: status codes are from 100 to 599`,
				`19:69: upstreams.b.health.active.path: invalid path "/a b": a path has no spaces, control characters or #`,
				`20:7: upstreams.b.health.pasive: unknown field "pasive" (did you mean "passive"?)`,
				`23:52: upstreams.c.health.active.expect_status: invalid status list "2xx": write status codes and ranges separated by commas, like "200-399" or "200,204,300-399"`,
				`23:65: upstreams.c.health.active.host: invalid port "0" in host: write a number from 1 to 65535`,
				`23:91: upstreams.c.health.passive.window: a duration needs a unit: write 1s or 1ms, for example`,
				`26:33: upstreams.d.health.active.interval: invalid duration "soon": write a number and a unit (ns, us, ms, s, m, h), like 250ms, 30s or 1h30m`,
				`26:45: upstreams.d.health.active.fall: expected an integer, got the string "x"`,
				`26:58: upstreams.d.health.passive: expected a mapping, got a list`,
				`29:33: upstreams.e.health.active.interval: interval 1ns is too short to leave time for a check: timeout defaults to half the interval`,
				`32:22: upstreams.f.health.active: expected a mapping, got true`,
			},
		},
		{
			name: "retries",
			text: `listeners: [{addr: ":1"}]
upstreams:
  a:
    targets: [http://a:1]
    retries: {attempts: 11, on: [connect, Connect, 502, 502, 302, 600, "5xx", tiemout, ~, [x]], budget: 120%, min_retries_per_second: -1}
  b:
    targets: [http://a:1]
    retries: {attempts: -1, on: [], budget: "20"}
  c:
    targets: [http://a:1]
    retries: {on: connect, budget: -5%}
  d:
    targets: [http://a:1]
    retries: {budget: 0.2, attempts: 1.5, on: [0x1f6]}
  e:
    targets: [http://a:1]
    retries: [connect]
`,
			want: []string{
				`5:25: upstreams.a.retries.attempts: attempts must be between 0 (no retries) and 10, got 11`,
				`5:43: upstreams.a.retries.on[1]: unknown retry condition "Connect" (did you mean "connect"?): use connect, timeout, reset or a status code from 400 to 599`,
				`5:57: upstreams.a.retries.on[3]: 502 is listed twice`,
				`5:62: upstreams.a.retries.on[4]: cannot retry on status 302: use connect, timeout, reset or a status code from 400 to 599`,
				`5:67: upstreams.a.retries.on[5]: cannot retry on status 600: use connect, timeout, reset or a status code from 400 to 599`,
				`5:72: upstreams.a.retries.on[6]: unknown retry condition "5xx": use connect, timeout, reset or a status code from 400 to 599`,
				`5:79: upstreams.a.retries.on[7]: unknown retry condition "tiemout" (did you mean "timeout"?): use connect, timeout, reset or a status code from 400 to 599`,
				`5:88: upstreams.a.retries.on[8]: expected connect, timeout, reset or a status code, got null`,
				`5:91: upstreams.a.retries.on[9]: expected connect, timeout, reset or a status code, got a list`,
				`5:105: upstreams.a.retries.budget: percentage 120% is more than 100%`,
				`5:135: upstreams.a.retries.min_retries_per_second: min_retries_per_second must not be negative, got -1`,
				`8:25: upstreams.b.retries.attempts: attempts must be between 0 (no retries) and 10, got -1`,
				`8:33: upstreams.b.retries.on: on is empty: list what to retry on, like [connect, 502, 503, 504] (attempts: 0 turns retries off)`,
				`8:45: upstreams.b.retries.budget: invalid percentage "20": write a number and %, like 20% or 2.5%`,
				`11:19: upstreams.c.retries.on: expected a list of retry conditions (connect, timeout, reset or a status code), got the string "connect"`,
				`11:36: upstreams.c.retries.budget: percentage -5% must not be negative`,
				`14:23: upstreams.d.retries.budget: invalid percentage "0.2": write a number and %, like 20% or 2.5%`,
				`14:38: upstreams.d.retries.attempts: expected an integer, got the number 1.5`,
				`14:48: upstreams.d.retries.on[0]: unknown retry condition "0x1f6": use connect, timeout, reset or a status code from 400 to 599`,
				`17:14: upstreams.e.retries: expected a mapping, got a list`,
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
