#!/usr/bin/env bash
# bench/compare.sh — compare gatehouse with nginx, HAProxy and Caddy as plain
# HTTP/1.1 reverse proxies in front of the same tiny backend, on this machine.
#
# Usage:  bench/compare.sh [--quick] [--tls] [--install] [--help]
#
#   --quick     smoke test: DURATION=3s ROUNDS=1 WARMUP=1s
#   --tls       every proxy terminates TLS (same ECDSA P-256 certificate, TLS 1.3)
#               and SIZES defaults to "https handshake h2": HTTPS keep-alive
#               (wrk), a new TLS handshake per request (wrk with
#               Connection: close) and HTTP/2 with 10 streams per connection
#               (h2load, Debian nghttp2-client)
#   --install   apt-get install whatever of wrk nginx-light haproxy caddy curl
#               is missing (otherwise a missing competitor is skipped)
#
# Environment (defaults in brackets):
#   DURATION     wrk duration of one measured run                 [10s]
#   ROUNDS       interleaved rounds; the table shows medians      [3]
#   CONNECTIONS  wrk connections (-c)                             [64]
#   THREADS      wrk threads (-t)                                 [2]
#   WARMUP       wrk duration of the one warm-up run per proxy    [2s]
#   H2_REQUESTS  requests of one h2load run (--tls scenario h2)   [200000; --quick 20000]
#   SIZES        scenarios to run, in order                       ["small large"]
#   PROXIES      proxies to run, in order                         ["gatehouse nginx haproxy caddy"]
#                add "direct" to also load the backend without any proxy,
#                "gatehouse-nometrics" for gatehouse with per-request metrics
#                off (--metrics=false), to measure what the metrics cost, and
#                gatehouse with one protection on its route (compare with
#                "gatehouse" for the cost of the protection):
#                  gh_rl       rate_limit, local store, one client at a rate it
#                              never reaches (every request counted, none refused)
#                  gh_rlredis  the same with store: redis (starts a redis-server;
#                              apt-get install redis-server)
#                  gh_ipf      ip_filter with a 10000-prefix deny list
#                  gh_waf      waf: the OWASP CRS at paranoia level 1, block mode
#                  gatehouse_protect  the listener and upstream protections
#                              (connection and request caps, upstream cap and
#                              queue, write timeout, minimum body rate, Via,
#                              rewrite_location), none tight enough to refuse
#                e.g. PROXIES="gatehouse gh_rl gh_rlredis gh_ipf nginx"
#   WORKERS      worker processes / threads given to each proxy   [nproc, i.e. 2 here]
#   GATEHOUSE_BIN  use this gatehouse binary instead of building ./cmd/gatehouse
#   NGINX_BIN, HAPROXY_BIN, CADDY_BIN  competitor binaries  [found on PATH]
#   RESULTS_DIR  if set, raw wrk outputs, results.tsv, logs and the
#                generated proxy configs are copied here
#   MODES        runs to do, in order                              ["plain"]
#                plain: the SIZES scenarios, proxies as they come
#                waf:   the SIZES scenarios with gatehouse, gh_waf and nginx
#                       (when in PROXIES): the WAF's cost, as a ratio of
#                       plain gatehouse's req/s and CPU per request
#                gzip:  responses compressed with gzip (scenario "text", a
#                       64 KiB JSON body, requested with Accept-Encoding: gzip):
#                       gatehouse `compress` vs nginx `gzip on` (and Caddy
#                       `encode`) at the same level; adds response bytes
#                cache: cache hits of a 1 KiB and a 100 KiB object
#                       (CACHE_SIZES x CACHE_PROXIES), every proxy caching
#                       200 answers 10 min: gatehouse `cache` vs nginx
#                       `proxy_cache` vs Varnish
#   GZIP_LEVEL   gzip level of the gzip mode, for every proxy        [1]
#                (1 is nginx's default gzip_comp_level)
#   CACHE_SIZES  scenarios of the cache mode                        ["cache_1k cache_100k"]
#   CACHE_PROXIES  proxies of the cache mode                        ["gatehouse nginx varnish"]
#                idle:  memory per idle keep-alive connection: IDLE_CONNS
#                       clients arrive at IDLE_RATE a second, each GETs
#                       /small once and stays connected and silent; the
#                       table shows the proxy's RSS growth per connection
#   IDLE_CONNS   connections of the idle mode                       [2000]
#   IDLE_RATE    new connections a second in the idle mode          [200]
#   VARNISHD_BIN Varnish binary for the cache mode                  [varnishd on PATH]
#
# See bench/README.md for what is measured and how to read the ratios.
#
# Layout of this script (to add scenarios such as TLS, h2, cache, compression):
#   * start_<proxy> NAME LISTEN_PORT BACKEND_PORT  writes that proxy's config
#     into $TMP/NAME and starts it as a non-daemonised background child; it must
#     call `track NAME PID` so the proxy is sampled and cleaned up.
#   * scenario_<name>  sets SC_PATH (request path), SC_LEN (expected body
#     length) and SC_SCHEME (http for now). A new scenario that needs another
#     proxy configuration (TLS, h2 ...) adds a setup step that starts the
#     proxies with different arguments, then reuses run_scenario.
#   * run_scenario NAME  checks, warms, runs ROUNDS interleaved rounds and
#     prints the table.
set -euo pipefail

# ---------------------------------------------------------------- options ---
INSTALL=0
QUICK=0
TLS=0
for arg in "$@"; do
	case "$arg" in
	--install) INSTALL=1 ;;
	--tls) TLS=1 ;;
	--quick) QUICK=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "compare.sh: unknown argument: $arg (try --help)" >&2
		exit 2
		;;
	esac
done

if ((QUICK)); then
	DURATION=3s
	ROUNDS=1
	WARMUP=1s
	H2_REQUESTS=${H2_REQUESTS:-20000}
fi
H2_REQUESTS=${H2_REQUESTS:-200000}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2s}
if ((TLS)); then
	SIZES=${SIZES:-https handshake h2}
else
	SIZES=${SIZES:-small large}
fi
PROXIES=${PROXIES:-gatehouse nginx haproxy caddy}
MODES=${MODES:-plain}
CACHE_SIZES=${CACHE_SIZES:-cache_1k cache_100k}
CACHE_PROXIES=${CACHE_PROXIES:-gatehouse nginx varnish}
IDLE_CONNS=${IDLE_CONNS:-2000}
IDLE_RATE=${IDLE_RATE:-200}
# START_PREFIX picks the set-up start_proxies uses: "" or "cache_" (MODES=cache).
START_PREFIX=
GZIP_LEVEL=${GZIP_LEVEL:-1}
# GZIP is 1 while the proxies are set up to compress (MODES=gzip).
GZIP=0
WRK_HEADERS=()
# Every proxy gets the same number of workers: nginx worker_processes, HAProxy
# nbthread, and GOMAXPROCS for the Go proxies (gatehouse, Caddy). We use all
# cores (2 on the reference machine); wrk and the backend share those cores.
WORKERS=${WORKERS:-$(nproc)}
GATEHOUSE_BIN=${GATEHOUSE_BIN:-}
RESULTS_DIR=${RESULTS_DIR:-}

[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || { echo "CONNECTIONS must be a positive integer" >&2; exit 2; }
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || { echo "WORKERS must be a positive integer" >&2; exit 2; }
[[ "$GZIP_LEVEL" =~ ^[1-9]$ ]] || { echo "GZIP_LEVEL must be 1 to 9" >&2; exit 2; }
# (the proxies' configurations here allow 4096 connections per worker)
[[ "$IDLE_CONNS" =~ ^[1-9][0-9]*$ ]] && ((IDLE_CONNS <= 4000)) || { echo "IDLE_CONNS must be 1 to 4000" >&2; exit 2; }
[[ "$IDLE_RATE" =~ ^[1-9][0-9]*$ ]] || { echo "IDLE_RATE must be a positive integer" >&2; exit 2; }
for m in $MODES; do
	[[ "$m" == plain || "$m" == gzip || "$m" == cache || "$m" == waf || "$m" == idle ]] ||
		{ echo "unknown mode in MODES: $m (plain, gzip, cache, waf, idle)" >&2; exit 2; }
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '%s\n' "$*" >&2; }
die() {
	printf 'compare.sh: FATAL: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------- cleanup ---
TMP=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
declare -A PID_OF=()   # proxy/backend name -> root pid
declare -a STARTED=()  # every pid we started, in order
SAMPLER_PID=
WRK_PID=

# descendants PID prints PID and all its descendants (one per line).
descendants() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		function walk(p,   n, a, i) { print p; n = split(kids[p], a, " "); for (i = 1; i <= n; i++) walk(a[i]) }
		END { walk(root) }'
}

kill_tree() {
	local root=$1 pids p i
	kill -0 "$root" 2>/dev/null || return 0
	pids=$(descendants "$root")
	kill -TERM "$root" 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		kill -0 "$root" 2>/dev/null || break
		sleep 0.1
	done
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait "$root" 2>/dev/null || true
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	if [[ -n "$SAMPLER_PID" ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
	if [[ -n "$WRK_PID" ]]; then kill_tree "$WRK_PID"; fi
	# Stop in reverse start order (proxies before the backend).
	for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
		kill_tree "${STARTED[i]}"
	done
	if [[ -n "$RESULTS_DIR" && -d "$TMP/results" ]]; then
		mkdir -p "$RESULTS_DIR"
		cp -r "$TMP/results/." "$RESULTS_DIR/"
		# Logs and generated configs, for checking what each proxy ran with.
		mkdir -p "$RESULTS_DIR/setup"
		(cd "$TMP" && find . -maxdepth 2 \( -name '*.log' -o -name '*.conf' -o -name '*.cfg' -o -name Caddyfile \) \
			-exec cp --parents {} "$RESULTS_DIR/setup/" \;) || true
		log "raw results copied to $RESULTS_DIR"
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

track() { # track NAME PID
	PID_OF[$1]=$2
	STARTED+=("$2")
}

# ------------------------------------------------------------ dependencies ---
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin # nginx and haproxy live in sbin
declare -A PKG_OF=([wrk]=wrk [nginx]=nginx-light [haproxy]=haproxy [caddy]=caddy [varnish]=varnish [curl]=curl [h2load]=nghttp2-client)
declare -A BIN_OF=([wrk]=wrk [curl]=curl [h2load]=h2load
	[nginx]=${NGINX_BIN:-nginx} [haproxy]=${HAPROXY_BIN:-haproxy} [caddy]=${CADDY_BIN:-caddy}
	[varnish]=${VARNISHD_BIN:-varnishd})

have() { command -v "$1" >/dev/null 2>&1; }
binpath() { command -v "$1"; }

if ((INSTALL)); then
	missing=()
	for tool in wrk curl nginx haproxy caddy h2load varnish; do
		have "${BIN_OF[$tool]}" || missing+=("${PKG_OF[$tool]}")
	done
	if ((${#missing[@]})); then
		log "installing: ${missing[*]}"
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
	else
		log "all tools already installed"
	fi
fi

have wrk || die "wrk is not installed (run with --install, or apt-get install wrk)"
have curl || die "curl is not installed (run with --install, or apt-get install curl)"
if ((TLS)); then
	have h2load || die "h2load is not installed (run with --install, or apt-get install nghttp2-client)"
	have openssl || die "openssl is not installed (apt-get install openssl)"
fi
command -v go >/dev/null || die "go is not installed"

ACTIVE=()
for p in $PROXIES; do
	case "$p" in
	gatehouse | gatehouse-nometrics | gatehouse_protect | direct | gh_rl | gh_ipf | gh_waf) ACTIVE+=("$p") ;;
	gh_rlredis)
		have redis-server || die "gh_rlredis needs redis-server (apt-get install redis-server)"
		ACTIVE+=("$p")
		;;
	nginx | haproxy | caddy)
		if have "${BIN_OF[$p]}"; then
			ACTIVE+=("$p")
		else
			echo "$p: not installed, skipped"
		fi
		;;
	*) die "unknown proxy in PROXIES: $p" ;;
	esac
done
((${#ACTIVE[@]})) || die "no proxy to benchmark"

# ------------------------------------------------------------------ ports ---
declare -A USED_PORT=()
# free_port sets FREE_PORT to a loopback TCP port nobody is using. It picks
# from 20000-29999, below the kernel's ephemeral range, so wrk's and the
# proxies' outgoing connections cannot grab it before the server binds.
# (No subshell: USED_PORT must remember what we handed out.)
free_port() {
	local -A inuse=()
	local line f hex port tries
	for f in /proc/net/tcp /proc/net/tcp6; do
		[[ -r "$f" ]] || continue
		while read -r _ line _; do
			hex=${line##*:}
			[[ "$hex" =~ ^[0-9A-Fa-f]+$ ]] && inuse[$((16#$hex))]=1
		done <"$f"
	done
	for ((tries = 0; tries < 500; tries++)); do
		port=$((20000 + RANDOM % 10000))
		[[ -n "${USED_PORT[$port]:-}" || -n "${inuse[$port]:-}" ]] && continue
		USED_PORT[$port]=1
		FREE_PORT=$port
		return 0
	done
	die "no free port found"
}

# wait_ready NAME PORT LOGFILE: wait until PORT accepts connections.
wait_ready() {
	local name=$1 port=$2 logf=$3 i
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "${PID_OF[$name]}" 2>/dev/null; then
			log "---- $name log ($logf) ----"
			cat "$logf" >&2 || true
			die "$name exited during start-up"
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	log "---- $name log ($logf) ----"
	cat "$logf" >&2 || true
	die "$name did not listen on 127.0.0.1:$port within 10s"
}

# ------------------------------------------------------------ the backend ---
build_backend() {
	log "building bench/backend"
	(cd "$REPO" && go build -o "$TMP/backend" ./bench/backend) || die "building bench/backend failed"
}

start_backend() { # start_backend PORT
	local port=$1
	GOMAXPROCS=$WORKERS "$TMP/backend" -listen "127.0.0.1:$port" >"$TMP/backend.log" 2>&1 &
	track backend $!
	wait_ready backend "$port" "$TMP/backend.log"
}

# ---------------------------------------------------------------- proxies ---
# Each start_<proxy> NAME LISTEN_PORT BACKEND_PORT starts one proxy listening
# on 127.0.0.1:LISTEN_PORT in front of 127.0.0.1:BACKEND_PORT.

# direct is no proxy at all: wrk talks to the backend itself. It shows the
# ceiling this machine allows (and what the backend alone costs).
start_direct() {
	local name=$1 port=$2 bport=$3
	PROXY_PORT[$name]=$bport
	PID_OF[$name]=${PID_OF[backend]}
}

# build_<proxy>, where defined, runs before anything is started.
build_gatehouse() {
	if [[ -n "$GATEHOUSE_BIN" ]]; then
		[[ -x "$GATEHOUSE_BIN" ]] || die "GATEHOUSE_BIN=$GATEHOUSE_BIN is not executable"
		log "gatehouse: using GATEHOUSE_BIN=$GATEHOUSE_BIN"
		return
	fi
	# Built as released (make build): static, without cgo.
	log "building gatehouse (CGO_ENABLED=0 go build ./cmd/gatehouse)"
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$TMP/gatehouse" ./cmd/gatehouse) ||
		die "building ./cmd/gatehouse failed (set PROXIES to leave gatehouse out, or GATEHOUSE_BIN to use a binary)"
	GATEHOUSE_BIN=$TMP/gatehouse
}

build_gatehouse_protect() { build_gatehouse; }

start_gatehouse_protect() {
	local name=$1 port=$2 bport=$3
	cat >"$TMP/$name.yaml" <<CONFIG
# generated by bench/compare.sh
listeners:
  - addr: 127.0.0.1:$port
    max_connections: 100000
    max_connections_per_ip: 100000
    max_requests_per_ip: 100000
access_log: {enabled: false}
limits: {write_timeout: 60s, min_body_rate: 1KiB}
send_via: true
upstreams:
  app:
    targets: [http://127.0.0.1:$bport]
    max_conns_per_target: 100000
    queue: {size: 1000, timeout: 1s}
    rewrite_location: true
sites:
  - routes:
      - upstream: app
CONFIG
	GOMAXPROCS=$WORKERS "$GATEHOUSE_BIN" run -c "$TMP/$name.yaml" >"$TMP/$name.log" 2>&1 &
	track "$name" $!
}

start_gatehouse() {
	# (not $TMP/$1: that is where build_gatehouse puts the binary)
	local name=$1 port=$2 bport=$3 d=$TMP/$1.d
	if ((TLS)); then
		mkdir -p "$d"
		cat >"$d/gatehouse.yaml" <<EOF
# generated by bench/compare.sh (--tls)
listeners:
  - addr: 127.0.0.1:$port
    tls: {certificates: [{cert_file: $CERT, key_file: $KEY}]}
access_log: {enabled: false}
upstreams:
  backend: {targets: [http://127.0.0.1:$bport]}
sites:
  - routes: [{upstream: backend}]
EOF
		GOMAXPROCS=$WORKERS "$GATEHOUSE_BIN" run -c "$d/gatehouse.yaml" >"$TMP/$name.log" 2>&1 &
	elif ((GZIP)); then
		# The same work as nginx's gzip below: gzip only, same level, same
		# minimum length, access log off.
		mkdir -p "$d"
		cat >"$d/gatehouse.conf" <<EOF
# generated by bench/compare.sh (MODES=gzip)
listeners: [{addr: "127.0.0.1:$port"}]
access_log: {enabled: false}
upstreams: {app: {targets: ["http://127.0.0.1:$bport"]}}
sites:
  - routes:
      - upstream: app
        middleware:
          - compress: {algorithms: [gzip], levels: {gzip: $GZIP_LEVEL}, min_bytes: 1024, types: [text/*, application/json]}
EOF
		GOMAXPROCS=$WORKERS "$GATEHOUSE_BIN" run -c "$d/gatehouse.conf" >"$TMP/$name.log" 2>&1 &
	else
		GOMAXPROCS=$WORKERS "$GATEHOUSE_BIN" proxy --listen "127.0.0.1:$port" --to "http://127.0.0.1:$bport" "${@:4}" \
			>"$TMP/$name.log" 2>&1 &
	fi
	track "$name" $!
}

# gatehouse-nometrics: the same binary without per-request metrics.
build_gatehouse-nometrics() { build_gatehouse; }
start_gatehouse-nometrics() { start_gatehouse "$@" --metrics=false; }

# The gh_* variants: gatehouse run -c with one middleware on the route, so
# that the difference with "gatehouse" is the cost of that protection.
build_gh_rl() { build_gatehouse; }
build_gh_rlredis() { build_gatehouse; }
build_gh_ipf() { build_gatehouse; }
build_gh_waf() { build_gatehouse; }

start_gh_variant() { # start_gh_variant NAME PORT BACKEND_PORT TOP MIDDLEWARE
	local name=$1 port=$2 bport=$3 top=$4 mw=$5 d=$TMP/$1
	mkdir -p "$d"
	cat >"$d/gatehouse.yaml" <<EOF
# generated by bench/compare.sh
listeners: [{addr: "127.0.0.1:$port"}]
access_log: {enabled: false}
$top
upstreams:
  backends: {targets: ["http://127.0.0.1:$bport"]}
sites:
  - routes:
      - upstream: backends
        middleware:
          - $mw
EOF
	GOMAXPROCS=$WORKERS "$GATEHOUSE_BIN" run -c "$d/gatehouse.yaml" >"$TMP/$name.log" 2>&1 &
	track "$name" $!
}

start_gh_waf() { start_gh_variant "$1" "$2" "$3" "" "waf: {rules: crs, paranoia_level: 1, mode: block}"; }

start_gh_rl() { start_gh_variant "$1" "$2" "$3" "" "rate_limit: {rate: 1000000000/s}"; }

start_gh_ipf() {
	local list i
	list=$(for ((i = 0; i < 10000; i++)); do printf '"10.%d.%d.0/24",' $((i >> 8)) $((i & 255)); done)
	start_gh_variant "$1" "$2" "$3" "" "ip_filter: {deny: [${list%,}]}"
}

start_gh_rlredis() {
	local rport
	free_port
	rport=$FREE_PORT
	redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
	track redis $!
	wait_ready redis "$rport" "$TMP/redis.log"
	start_gh_variant "$1" "$2" "$3" "cluster: {redis: {addr: \"127.0.0.1:$rport\"}}" \
		"rate_limit: {rate: 1000000/s, store: redis}"
}

start_nginx() {
	local name=$1 port=$2 bport=$3 d=$TMP/$1 user="" gz=""
	mkdir -p "$d"/{client_body,proxy,fastcgi,uwsgi,scgi}
	# As root, nginx drops worker privileges to "nobody", which could not
	# write the temp dirs under our private $TMP: keep workers as root.
	((EUID == 0)) && user="user root root;"
	# gzip_proxied any: compress proxied answers whatever the request's Via.
	if ((GZIP)); then
		gz="gzip on; gzip_comp_level $GZIP_LEVEL; gzip_min_length 1024; gzip_types application/json; gzip_proxied any; gzip_vary on;"
	fi
	cat >"$d/nginx.conf" <<EOF
# generated by bench/compare.sh
$user
daemon off;
master_process on;
worker_processes $WORKERS;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    $gz
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    upstream backend {
        server 127.0.0.1:$bport;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port$NGINX_TLS;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
	"$(binpath "${BIN_OF[nginx]}")" -p "$d" -e "$d/error.log" -c "$d/nginx.conf" >"$TMP/$name.log" 2>&1 &
	track "$name" $!
}

start_haproxy() {
	local name=$1 port=$2 bport=$3 d=$TMP/$1
	mkdir -p "$d"
	cat >"$d/haproxy.cfg" <<EOF
# generated by bench/compare.sh
global
    nbthread $WORKERS
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$port$HAPROXY_TLS
    default_backend be
backend be
    server s1 127.0.0.1:$bport
EOF
	# -db: stay in the foreground, no daemon, no master process.
	"$(binpath "${BIN_OF[haproxy]}")" -db -f "$d/haproxy.cfg" >"$TMP/$name.log" 2>&1 &
	track "$name" $!
}

start_caddy() {
	local name=$1 port=$2 bport=$3 d=$TMP/$1 enc=""
	mkdir -p "$d"/{home,config,data}
	if ((GZIP)); then
		enc="encode {
		gzip $GZIP_LEVEL
		minimum_length 1024
	}"
	fi
	# keepalive_idle_conns_per_host 64 matches nginx's `keepalive 64`.
	cat >"$d/Caddyfile" <<EOF
# generated by bench/compare.sh
{
	admin off
	auto_https off
	log default {
		output discard
	}
}
$CADDY_SCHEME://:$port {
	bind 127.0.0.1$CADDY_TLS
	$enc
	reverse_proxy 127.0.0.1:$bport {
		transport http {
			keepalive 2m
			keepalive_idle_conns_per_host 64
		}
	}
}
EOF
	# HOME/XDG_* point into $TMP so Caddy writes nothing under /root.
	HOME=$d/home XDG_CONFIG_HOME=$d/config XDG_DATA_HOME=$d/data GOMAXPROCS=$WORKERS \
		"$(binpath "${BIN_OF[caddy]}")" run --adapter caddyfile --config "$d/Caddyfile" >"$TMP/$name.log" 2>&1 &
	track "$name" $!
}

# ---------------------------------------------------------- cache proxies ---
# start_cache_<proxy> NAME LISTEN_PORT BACKEND_PORT: the same proxy with a
# cache in front of the backend, every 200 answer kept 10 minutes, 256 MiB
# (nginx keeps its cache in files, as it always does; they stay in the page
# cache).

# direct in the cache mode: the backend itself, the ceiling.
start_cache_direct() { start_direct "$@"; }

start_cache_gatehouse() {
	local name=$1 port=$2 bport=$3 d=$TMP/cache-$1
	mkdir -p "$d"
	cat >"$d/gatehouse.yaml" <<EOF
# generated by bench/compare.sh
listeners: [{addr: "127.0.0.1:$port"}]
access_log: {enabled: false}
upstreams:
  app: {targets: ["http://127.0.0.1:$bport"]}
sites:
  - routes:
      - upstream: app
        middleware: [{cache: {store: memory, max_bytes: 256MiB, default_ttl: 10m}}]
EOF
	GOMAXPROCS=$WORKERS "$GATEHOUSE_BIN" run -c "$d/gatehouse.yaml" >"$TMP/$name.log" 2>&1 &
	track "$name" $!
}

start_cache_nginx() {
	local name=$1 port=$2 bport=$3 d=$TMP/$1 user=""
	mkdir -p "$d"/{client_body,proxy,fastcgi,uwsgi,scgi,cache}
	((EUID == 0)) && user="user root root;"
	cat >"$d/nginx.conf" <<EOF
# generated by bench/compare.sh
$user
daemon off;
master_process on;
worker_processes $WORKERS;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    proxy_cache_path $d/cache levels=1:2 keys_zone=bench:10m max_size=256m inactive=60m use_temp_path=off;
    upstream backend {
        server 127.0.0.1:$bport;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_valid 200 10m;
            proxy_cache_lock on;
        }
    }
}
EOF
	"$(binpath "${BIN_OF[nginx]}")" -p "$d" -e "$d/error.log" -c "$d/nginx.conf" >"$TMP/$name.log" 2>&1 &
	track "$name" $!
}

start_cache_varnish() {
	local name=$1 port=$2 bport=$3 d=$TMP/$1 jail=()
	mkdir -p "$d"
	# As root, varnishd would switch to its own users, which cannot use our
	# private $TMP: -j none keeps it as it is.
	((EUID == 0)) && jail=(-j none)
	# -F: foreground. -b: the built-in VCL in front of one backend. -t: the
	# TTL of answers without Cache-Control (all of the backend's), 10 min.
	"$(binpath "${BIN_OF[varnish]}")" -F "${jail[@]}" -n "$d/varnish" -a "127.0.0.1:$port" -b "127.0.0.1:$bport" \
		-s malloc,256m -t 600 -p thread_pools="$WORKERS" >"$TMP/$name.log" 2>&1 &
	track "$name" $!
}

# -------------------------------------------------------------- scenarios ---
# scenario_<name> sets SC_PATH, SC_LEN and SC_SCHEME.
scenario_small() { SC_PATH=/small SC_LEN=100 SC_SCHEME=http SC_WRK_ARGS= SC_TOOL=wrk; }
scenario_large() { SC_PATH=/large SC_LEN=102400 SC_SCHEME=http SC_WRK_ARGS= SC_TOOL=wrk; }
# text: the compression run's body (MODES=gzip), 64 KiB of JSON.
scenario_text() { SC_PATH=/text SC_LEN=65536 SC_SCHEME=http SC_WRK_ARGS= SC_TOOL=wrk; }
# With --tls: HTTPS keep-alive; a full handshake per request; HTTP/2 streams.
scenario_https() { SC_PATH=/small SC_LEN=100 SC_SCHEME=https SC_WRK_ARGS= SC_TOOL=wrk; }
scenario_handshake() { SC_PATH=/small SC_LEN=100 SC_SCHEME=https SC_WRK_ARGS="-H Connection:close" SC_TOOL=wrk; }
scenario_h2() { SC_PATH=/small SC_LEN=100 SC_SCHEME=https SC_WRK_ARGS= SC_TOOL=h2load; }
# cache_1k, cache_100k: the cache mode's objects (MODES=cache).
scenario_cache_1k() { SC_PATH=/1k SC_LEN=1024 SC_SCHEME=http SC_WRK_ARGS= SC_TOOL=wrk; }
scenario_cache_100k() { SC_PATH=/large SC_LEN=102400 SC_SCHEME=http SC_WRK_ARGS= SC_TOOL=wrk; }

# ------------------------------------------------------------ measurement ---
# tree_rss_kb PID: summed VmRSS (KiB) of PID and all its descendants.
tree_rss_kb() {
	ps -e -o pid=,ppid=,rss= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1; rss[$1] = $3 }
		function walk(p,   n, a, i, s) { s = rss[p]; n = split(kids[p], a, " "); for (i = 1; i <= n; i++) s += walk(a[i]); return s }
		END { print walk(root) + 0 }'
}

CLK_TCK=$(getconf CLK_TCK)
# tree_cpu_ticks PID: utime+stime (clock ticks) of PID and its descendants.
tree_cpu_ticks() {
	local p files=()
	for p in $(descendants "$1"); do files+=("/proc/$p/stat"); done
	# Field 2 (comm) may hold spaces: drop everything up to the last ") ",
	# after which utime and stime are fields 12 and 13.
	{ cat "${files[@]}" 2>/dev/null || true; } | awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}

# sample_rss PID OUTFILE: every 200 ms, keep the peak tree RSS in OUTFILE.
sample_rss() {
	local root=$1 out=$2 max=0 kb
	[[ -f "$out" ]] && max=$(<"$out")
	while kill -0 "$root" 2>/dev/null; do
		kb=$(tree_rss_kb "$root")
		if ((kb > max)); then
			max=$kb
			echo "$max" >"$out"
		fi
		sleep 0.2
	done
}

# to_ms VALUE: wrk time (e.g. 850.00us, 1.23ms, 2.01s, 1.50m) -> milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (match(v, /us$/)) { printf "%.3f", substr(v, 1, RSTART - 1) / 1000; exit }
		if (match(v, /ms$/)) { printf "%.3f", substr(v, 1, RSTART - 1); exit }
		if (match(v, /s$/))  { printf "%.3f", substr(v, 1, RSTART - 1) * 1000; exit }
		if (match(v, /m$/))  { printf "%.3f", substr(v, 1, RSTART - 1) * 60000; exit }
		if (match(v, /h$/))  { printf "%.3f", substr(v, 1, RSTART - 1) * 3600000; exit }
		print "nan" }'
}

median() { # median NUMBERS...
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

ratio() { # ratio A B -> A/B with 2 decimals, or "-"
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == "" || b == "-" || b + 0 == 0 || a == "-") print "-"; else printf "%.2f", a / b }'
}

# check_proxy NAME: GET the scenario path, require 200 and SC_LEN body bytes.
# With GZIP=1: require Content-Encoding: gzip and SC_LEN bytes once decoded,
# and remember the encoded size in RESP_BYTES[NAME].
check_proxy() {
	local name=$1 url got code size
	url="$SC_SCHEME://127.0.0.1:${PROXY_PORT[$name]}$SC_PATH"
	if ((GZIP)); then
		local decoded
		got=$(curl -s -H 'Accept-Encoding: gzip' -D "$TMP/check.h" -o "$TMP/check.gz" --max-time 5 \
			-w '%{http_code} %{size_download}' "$url") || got="curl-failed $?"
		read -r code size <<<"$got"
		decoded=$(gzip -dc <"$TMP/check.gz" 2>/dev/null | wc -c) || decoded=0
		if [[ "$code" != 200 ]] || ! grep -qi '^content-encoding: gzip' "$TMP/check.h" || [[ "$decoded" != "$SC_LEN" ]]; then
			log "---- $name log ----"
			tail -n 30 "$TMP/$name.log" >&2 || true
			die "$name: GET $url (Accept-Encoding: gzip) returned status $code, $size bytes decoding to $decoded (want 200, gzip, $SC_LEN)"
		fi
		RESP_BYTES[$name]=$size
		log "check $name $SC_PATH: 200, gzip, $size bytes -> $decoded"
		return
	fi
	got=$(curl -sk -o /dev/null --max-time 5 -w '%{http_code} %{size_download}' "$url") || got="curl-failed $?"
	read -r code size <<<"$got"
	if [[ "$code" != 200 || "$size" != "$SC_LEN" ]]; then
		log "---- $name log ----"
		tail -n 30 "$TMP/$name.log" >&2 || true
		die "$name: GET $url returned status $code with $size body bytes (want 200 and $SC_LEN)"
	fi
	log "check $name $SC_PATH: 200, $size bytes"
}

# run_wrk NAME SCENARIO DURATION OUTFILE [RSSFILE]
# Appends "cpu_ticks: N" (CPU the proxy used during the run) to OUTFILE.
run_wrk() {
	local name=$1 sc=$2 dur=$3 out=$4 rssf=${5:-} url cpu0 cpu1
	url="$SC_SCHEME://127.0.0.1:${PROXY_PORT[$name]}$SC_PATH"
	cpu0=$(tree_cpu_ticks "${PID_OF[$name]}")
	if [[ -n "$rssf" ]]; then
		sample_rss "${PID_OF[$name]}" "$rssf" &
		SAMPLER_PID=$!
	fi
	# wrk runs in the background so that a signal reaches our trap at once
	# (bash defers traps while a foreground child runs).
	if [[ "${SC_TOOL:-wrk}" == h2load ]]; then
		run_h2load "$url" "$dur" "$out" &
	else
		# shellcheck disable=SC2086
		wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --latency "${WRK_HEADERS[@]}" ${SC_WRK_ARGS:-} "$url" >"$out" 2>&1 &
	fi
	WRK_PID=$!
	wait "$WRK_PID" || {
		cat "$out" >&2
		die "wrk failed against $name ($url)"
	}
	WRK_PID=
	cpu1=$(tree_cpu_ticks "${PID_OF[$name]}")
	echo "cpu_ticks: $((cpu1 - cpu0))" >>"$out"
	if [[ -n "$SAMPLER_PID" ]]; then
		# One last sample right at the end of the run, then stop sampling.
		local kb
		kb=$(tree_rss_kb "${PID_OF[$name]}")
		kill "$SAMPLER_PID" 2>/dev/null || true
		wait "$SAMPLER_PID" 2>/dev/null || true
		SAMPLER_PID=
		if [[ ! -s "$rssf" ]] || ((kb > $(<"$rssf"))); then echo "$kb" >"$rssf"; fi
	fi
	kill -0 "${PID_OF[$name]}" 2>/dev/null || die "$name died during the benchmark (log: $(tail -n 5 "$TMP/$name.log"))"
}

# run_h2load URL DURATION OUT: HTTP/2 load with h2load (10 streams per
# connection), its result written in wrk's format for parse_wrk: requests
# per second, the 99th percentile of its per-request log, errors. h2load's
# own duration mode (-D) sometimes never exits once the time is up, so it
# sends a fixed number of requests (H2_REQUESTS; a warm-up sends a tenth).
run_h2load() {
	local url=$1 dur=$2 out=$3 log=$3.reqlog n=$H2_REQUESTS
	[[ "$dur" == "$WARMUP" ]] && n=$((H2_REQUESTS / 10))
	timeout 300 h2load -t"$THREADS" -c"$CONNECTIONS" -m10 -n"$n" --log-file="$log" "$url" >"$out.h2load" 2>&1 || {
		cat "$out.h2load"
		return 1
	}
	awk '
		/^finished in/ { gsub(",", ""); secs = $3; rps = $4 }
		/^requests:/ { n = $2; bad = $10 + $12 }
		END { printf "Requests/sec: %s\n%d requests in %s\nNon-2xx or 3xx responses: %d\n", rps, n, secs, bad }' "$out.h2load" >"$out"
	# Column 3 of the log: microseconds from request to end of response.
	sort -n -k3,3 "$log" | awk '{ v[NR] = $3 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "     99%%   %.3fms\n", v[i] / 1000 }' >>"$out"
	rm -f "$log"
}

# parse_wrk FILE -> "RPS P99_MS ERRORS CPU_US_PER_REQUEST"
parse_wrk() {
	local f=$1 rps p99 errs cpu
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
	# "123456 requests in 10.00s, ..." and our own "cpu_ticks: N" line.
	cpu=$(awk -v hz="$CLK_TCK" '
		/ requests in / { n = $1 }
		/^cpu_ticks:/ { t = $2 }
		END { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "nan" }' "$f")
	p99=$(awk '$1 == "99%" { print $2 }' "$f")
	# Socket errors and non-2xx/3xx responses both count as errors.
	errs=$(awk '
		/Socket errors:/ { gsub(",", ""); for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i }
		/Non-2xx or 3xx responses:/ { s += $NF }
		END { print s + 0 }' "$f")
	[[ -n "$rps" && -n "$p99" ]] || {
		cat "$f" >&2
		die "could not parse wrk output $f"
	}
	echo "$rps $(to_ms "$p99") $errs $cpu"
}

# run_scenario NAME: check, warm up, ROUNDS interleaved rounds, print table.
run_scenario() {
	local sc=$1 n=${#ACTIVE[@]} r i name out res rps p99 errs cpu
	"scenario_$sc"
	mkdir -p "$TMP/results/$sc"
	local -A RPS=() P99=() ERRS=() CPU=()

	for name in "${ACTIVE[@]}"; do check_proxy "$name"; done

	for name in "${ACTIVE[@]}"; do
		log "warm-up $sc $name ($WARMUP)"
		run_wrk "$name" "$sc" "$WARMUP" "$TMP/results/$sc/warmup-$name.txt"
	done

	for ((r = 0; r < ROUNDS; r++)); do
		for ((i = 0; i < n; i++)); do
			# Rotate the order each round so drift (thermal, page cache,
			# whatever else runs) is spread over all proxies.
			name=${ACTIVE[(i + r) % n]}
			out=$TMP/results/$sc/round$((r + 1))-$name.txt
			run_wrk "$name" "$sc" "$DURATION" "$out" "$TMP/results/$sc/rss-$name"
			res=$(parse_wrk "$out")
			read -r rps p99 errs cpu <<<"$res"
			RPS[$name]="${RPS[$name]:-} $rps"
			CPU[$name]="${CPU[$name]:-} $cpu"
			P99[$name]="${P99[$name]:-} $p99"
			ERRS[$name]=$((${ERRS[$name]:-0} + errs))
			log "$(printf 'round %d/%d %-6s %-10s %10.0f req/s  p99 %8.3f ms  cpu %6.1f us/req  errors %s' \
				$((r + 1)) "$ROUNDS" "$sc" "$name" "$rps" "$p99" "$cpu" "$errs")"
		done
	done

	# Summary.
	local -A MRPS=() MP99=() MRSS=() MCPU=() MIDLE=()
	for name in "${ACTIVE[@]}"; do
		# shellcheck disable=SC2086
		MRPS[$name]=$(median ${RPS[$name]})
		# shellcheck disable=SC2086
		MP99[$name]=$(median ${P99[$name]})
		# shellcheck disable=SC2086
		MCPU[$name]=$(median ${CPU[$name]})
		MRSS[$name]=$(awk -v kb="$(cat "$TMP/results/$sc/rss-$name" 2>/dev/null || echo 0)" 'BEGIN { printf "%.1f", kb / 1024 }')
		MIDLE[$name]=$(awk -v kb="${IDLE_RSS[$name]:-0}" 'BEGIN { printf "%.1f", kb / 1024 }')
	done
	local ref_rps=- ref_p99=- ref_rss=- ref_cpu=- ref_idle=-
	if [[ -n "${MRPS[nginx]:-}" ]]; then
		ref_rps=${MRPS[nginx]} ref_p99=${MP99[nginx]} ref_rss=${MRSS[nginx]} ref_cpu=${MCPU[nginx]} ref_idle=${MIDLE[nginx]}
	fi

	echo
	local tool="wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
	[[ "${SC_TOOL:-wrk}" == h2load ]] && tool="h2load -t$THREADS -c$CONNECTIONS -m10 -n$H2_REQUESTS"
	if ((GZIP)); then
		echo "== $sc, gzip level $GZIP_LEVEL: GET $SC_PATH ($SC_LEN B body, Accept-Encoding: gzip), wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS round(s), $WORKERS workers/proxy, $(nproc) cores =="
	else
		echo "== $sc: GET $SC_SCHEME $SC_PATH ($SC_LEN B body) ${SC_WRK_ARGS:-}, $tool, $ROUNDS round(s), $WORKERS workers/proxy, $(nproc) cores =="
	fi
	local bytes_head="" ref_bytes=${RESP_BYTES[nginx]:--}
	((GZIP)) && bytes_head=$(printf ' %8s %7s' "resp B" "x nginx")
	printf '%-10s %9s %7s %9s %7s %8s %7s %8s %7s %11s %7s %6s%s\n' proxy "req/s" "x nginx" "p99 ms" "x nginx" \
		"RSS MiB" "x nginx" "idle MiB" "x nginx" "CPU us/req" "x nginx" errors "$bytes_head"
	for name in "${ACTIVE[@]}"; do
		local bytes_col=""
		((GZIP)) && bytes_col=$(printf ' %8s %7s' "${RESP_BYTES[$name]}" "$(ratio "${RESP_BYTES[$name]}" "$ref_bytes")")
		printf '%-10s %9.0f %7s %9.2f %7s %8s %7s %8s %7s %11.1f %7s %6s%s\n' "$name" \
			"${MRPS[$name]}" "$(ratio "${MRPS[$name]}" "$ref_rps")" \
			"${MP99[$name]}" "$(ratio "${MP99[$name]}" "$ref_p99")" \
			"${MRSS[$name]}" "$(ratio "${MRSS[$name]}" "$ref_rss")" \
			"${MIDLE[$name]}" "$(ratio "${MIDLE[$name]}" "$ref_idle")" \
			"${MCPU[$name]}" "$(ratio "${MCPU[$name]}" "$ref_cpu")" \
			"${ERRS[$name]}" "$bytes_col"
		local tsv_sc=$sc
		((GZIP)) && tsv_sc="$sc-gzip$GZIP_LEVEL"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tsv_sc" "$name" "${MRPS[$name]}" "${MP99[$name]}" "${MRSS[$name]}" \
			"${MCPU[$name]}" "${ERRS[$name]}" "${MIDLE[$name]}" >>"$TMP/results/results.tsv"
	done
	for name in "${ACTIVE[@]}"; do
		if [[ "$name" == gh_* && -n "${MRPS[gatehouse]:-}" ]]; then
			echo "$name: $(ratio "${MRPS[$name]}" "${MRPS[gatehouse]}") x the req/s of plain gatehouse, $(ratio "${MCPU[$name]}" "${MCPU[gatehouse]}") x its CPU per request"
		fi
	done
	echo
}

# run_idle: MODES=idle, for every proxy in ACTIVE in turn.
run_idle() {
	local name port before after ready ipid i
	echo
	echo "== idle: $IDLE_CONNS keep-alive connections at $IDLE_RATE/s, one GET /small each, then silent; $WORKERS workers/proxy, $(nproc) cores =="
	printf '%-10s %11s %11s %11s %7s\n' proxy "RSS MiB" "+idle MiB" "B per conn" "x nginx"
	local -A PER=() BEFORE=() AFTER=()
	for name in "${ACTIVE[@]}"; do
		port=${PROXY_PORT[$name]}
		# First requests bring in code pages: not the connections' cost.
		"$TMP/idleconns" -addr "127.0.0.1:$port" -n 50 -hold 1ms || die "$name: idle warm-up failed"
		sleep 0.5
		before=$(tree_rss_kb "${PID_OF[$name]}")
		ready=$TMP/idle-ready-$name
		"$TMP/idleconns" -addr "127.0.0.1:$port" -n "$IDLE_CONNS" -rate "$IDLE_RATE" -hold 300s -ready "$ready" &
		ipid=$!
		for ((i = 0; i < 2400; i++)); do
			[[ -e "$ready" ]] && break
			kill -0 "$ipid" 2>/dev/null || die "$name: idleconns failed"
			sleep 0.1
		done
		[[ -e "$ready" ]] || die "$name: $IDLE_CONNS connections not answered within 240s"
		# Every worker settles; gatehouse parks a connection idle for 1 s.
		sleep 2
		after=$(tree_rss_kb "${PID_OF[$name]}")
		kill "$ipid" 2>/dev/null || true
		wait "$ipid" 2>/dev/null || true
		BEFORE[$name]=$before AFTER[$name]=$after
		PER[$name]=$(((after - before) * 1024 / IDLE_CONNS))
		log "$name: RSS $before KiB, $after KiB with $IDLE_CONNS idle connections"
	done
	for name in "${ACTIVE[@]}"; do
		printf '%-10s %11s %11s %11s %7s\n' "$name" \
			"$(awk -v kb="${BEFORE[$name]}" 'BEGIN { printf "%.1f", kb / 1024 }')" \
			"$(awk -v kb="$((AFTER[$name] - BEFORE[$name]))" 'BEGIN { printf "%.1f", kb / 1024 }')" \
			"${PER[$name]}" "$(ratio "${PER[$name]}" "${PER[nginx]:--}")"
		printf 'idle\t%s\t-\t-\t%s\t-\t0\t%s\n' "$name" \
			"$(awk -v kb="${AFTER[$name]}" 'BEGIN { printf "%.1f", kb / 1024 }')" \
			"$(awk -v kb="${BEFORE[$name]}" 'BEGIN { printf "%.1f", kb / 1024 }')" >>"$TMP/results/results.tsv"
	done
	echo
}

# ------------------------------------------------------------------- main ---
declare -A PROXY_PORT=()
declare -A RESP_BYTES=() # encoded response size per proxy (MODES=gzip)
declare -A IDLE_RSS=()   # KiB of the process tree once listening, before any request

# start_proxies / stop_proxies: every proxy in ACTIVE, with the current mode's set-up.
start_proxies() {
	local name
	for name in "${ACTIVE[@]}"; do
		free_port
		PROXY_PORT[$name]=$FREE_PORT
		"start_$START_PREFIX$name" "$name" "${PROXY_PORT[$name]}" "$BACKEND_PORT"
		[[ -f "$TMP/$name.log" ]] || : >"$TMP/$name.log"
		wait_ready "$name" "${PROXY_PORT[$name]}" "$TMP/$name.log"
		# What the proxy holds before it has served anything (workers need a
		# moment to be forked): the floor under the peak RSS measured later.
		sleep 0.5
		IDLE_RSS[$name]=$(tree_rss_kb "${PID_OF[$name]}")
		log "$name on 127.0.0.1:${PROXY_PORT[$name]} (pid ${PID_OF[$name]}, idle RSS ${IDLE_RSS[$name]} KiB)"
	done
}

stop_proxies() {
	local name
	for name in "${ACTIVE[@]}"; do
		[[ "$name" == direct ]] || kill_tree "${PID_OF[$name]}"
	done
}

log "temp dir $TMP; proxies: ${ACTIVE[*]}; modes: $MODES; scenarios: $SIZES"
# Other work on the machine shows up as noise: say so up front.
read -r LOAD1 _ </proc/loadavg
if awk -v l="$LOAD1" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
	echo "WARNING: load average is $LOAD1 on $(nproc) cores before starting: something else is running; results will be noisy"
fi
for sc in $SIZES; do
	declare -F "scenario_$sc" >/dev/null || die "unknown scenario in SIZES: $sc"
done
NGINX_TLS="" HAPROXY_TLS="" CADDY_SCHEME=http CADDY_TLS=""
if ((TLS)); then
	CERT=$TMP/cert.pem KEY=$TMP/key.pem
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$KEY" -out "$CERT" 2>/dev/null ||
		die "openssl could not make a test certificate"
	cat "$CERT" "$KEY" >"$TMP/cert+key.pem"
	# Same policy everywhere: TLS 1.2-1.3 (clients pick 1.3), h2 and
	# http/1.1 by ALPN.
	NGINX_TLS=" ssl http2;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        #"
	HAPROXY_TLS=" ssl crt $TMP/cert+key.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2"
	CADDY_SCHEME=https
	CADDY_TLS="
	tls $CERT $KEY"
fi
if [[ " $MODES " == *" cache "* ]]; then
	for sc in $CACHE_SIZES; do
		declare -F "scenario_$sc" >/dev/null || die "unknown scenario in CACHE_SIZES: $sc"
	done
fi
build_backend
for name in "${ACTIVE[@]}"; do
	if declare -F "build_$name" >/dev/null; then "build_$name"; fi
done
if [[ " $MODES " == *" cache "* && " $CACHE_PROXIES " == *" gatehouse "* && -z "$GATEHOUSE_BIN" ]]; then build_gatehouse; fi

free_port
BACKEND_PORT=$FREE_PORT
start_backend "$BACKEND_PORT"
log "backend on 127.0.0.1:$BACKEND_PORT"

mkdir -p "$TMP/results"
printf 'scenario\tproxy\tmedian_rps\tmedian_p99_ms\tpeak_rss_mib\tmedian_cpu_us_per_req\terrors\tidle_rss_mib\n' >"$TMP/results/results.tsv"

ALL_ACTIVE=("${ACTIVE[@]}")
for mode in $MODES; do
	case "$mode" in
	plain)
		GZIP=0 WRK_HEADERS=()
		ACTIVE=("${ALL_ACTIVE[@]}")
		start_proxies
		for sc in $SIZES; do
			run_scenario "$sc"
		done
		;;
	waf)
		GZIP=0 WRK_HEADERS=()
		ACTIVE=(gatehouse gh_waf)
		for name in "${ALL_ACTIVE[@]}"; do [[ "$name" == nginx ]] && ACTIVE+=(nginx); done
		build_gatehouse
		start_proxies
		for sc in $SIZES; do
			run_scenario "$sc"
		done
		;;
	gzip)
		# The proxies that compress here: gatehouse, nginx (gzip on) and
		# Caddy (encode); HAProxy's compression (libslz) has no level to match.
		GZIP=1 WRK_HEADERS=(-H "Accept-Encoding: gzip")
		ACTIVE=()
		for name in "${ALL_ACTIVE[@]}"; do
			case "$name" in
			gatehouse | nginx | caddy) ACTIVE+=("$name") ;;
			*) log "$name: no gzip set-up, left out of MODES=gzip" ;;
			esac
		done
		((${#ACTIVE[@]})) || die "MODES=gzip needs gatehouse, nginx or caddy in PROXIES"
		start_proxies
		run_scenario text
		;;
	idle)
		GZIP=0 WRK_HEADERS=()
		ACTIVE=()
		for name in "${ALL_ACTIVE[@]}"; do [[ "$name" == direct ]] || ACTIVE+=("$name"); done
		((${#ACTIVE[@]})) || die "no proxy for MODES=idle"
		ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
		(cd "$REPO" && go build -o "$TMP/idleconns" ./bench/idleconns) || die "building bench/idleconns failed"
		start_proxies
		run_idle
		;;
	cache)
		GZIP=0 WRK_HEADERS=() START_PREFIX=cache_
		ACTIVE=()
		for name in $CACHE_PROXIES; do
			case "$name" in
			gatehouse | direct) ACTIVE+=("$name") ;;
			nginx | varnish)
				if have "${BIN_OF[$name]}"; then ACTIVE+=("$name"); else echo "$name: not installed, skipped"; fi
				;;
			*) die "unknown proxy in CACHE_PROXIES: $name (gatehouse, nginx, varnish, direct)" ;;
			esac
		done
		((${#ACTIVE[@]})) || die "no proxy for MODES=cache"
		start_proxies
		for sc in $CACHE_SIZES; do
			run_scenario "$sc"
		done
		START_PREFIX=
		;;
	esac
	stop_proxies
done
