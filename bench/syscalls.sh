#!/usr/bin/env bash
# bench/syscalls.sh — system calls and context switches per proxied request,
# gatehouse next to nginx, counted by the kernel (perf stat tracepoints), so
# the figures hardly depend on what else the machine is doing.
#
# Usage: bench/syscalls.sh     (needs perf from Debian's linux-perf, wrk,
#                               and nginx for the comparison row)
# Environment: DURATION [4s, whole seconds], CONNECTIONS [64], GATEHOUSE_BIN [build it]
set -euo pipefail

DURATION=${DURATION:-4s}
CONNECTIONS=${CONNECTIONS:-64}
REPO=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/gatehouse-syscalls.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

for tool in perf wrk curl; do
	command -v "$tool" >/dev/null || { echo "syscalls.sh: $tool not found" >&2; exit 1; }
done
if ! perf stat -e syscalls:sys_enter_read true >/dev/null 2>&1; then
	echo "syscalls.sh: perf cannot read syscall tracepoints here (try as root)" >&2
	exit 1
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$1/small" && return 0
		sleep 0.1
	done
	echo "syscalls.sh: nothing answers on port $1" >&2
	exit 1
}

(cd "$REPO" && go build -o "$TMP/backend" ./bench/backend)
if [[ -z "${GATEHOUSE_BIN:-}" ]]; then
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$TMP/gatehouse" ./cmd/gatehouse) # as make build does
	GATEHOUSE_BIN=$TMP/gatehouse
fi

BPORT=$(free_port)
GOMAXPROCS=2 "$TMP/backend" -listen "127.0.0.1:$BPORT" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$BPORT"

GPORT=$(free_port)
GOMAXPROCS=2 "$GATEHOUSE_BIN" proxy --listen "127.0.0.1:$GPORT" --to "http://127.0.0.1:$BPORT" >"$TMP/gatehouse.log" 2>&1 &
GPID=$!
PIDS+=("$GPID")
wait_port "$GPORT"

declare -A TARGET=([gatehouse]="$GPORT:$GPID")
ORDER=(gatehouse)
if command -v nginx >/dev/null; then
	NPORT=$(free_port)
	mkdir -p "$TMP/nginx"
	user=""
	((EUID == 0)) && user="user root root;"
	cat >"$TMP/nginx/nginx.conf" <<EOF
$user
daemon off;
worker_processes 2;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx;
    proxy_temp_path $TMP/nginx;
    upstream backend { server 127.0.0.1:$BPORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NPORT;
        location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
	nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" &
	PIDS+=($!)
	wait_port "$NPORT"
	TARGET[nginx]="$NPORT:$!"
	ORDER+=(nginx)
fi

EVENTS=read,recvfrom,write,writev,epoll_wait,epoll_pwait,futex,nanosleep
PERF_EVENTS=context-switches
for e in ${EVENTS//,/ }; do PERF_EVENTS+=",syscalls:sys_enter_$e"; done

printf '%-10s %9s' proxy requests
for e in ${EVENTS//,/ } ctx-switch; do printf ' %11s' "$e"; done
printf '   (per request)\n'
for name in "${ORDER[@]}"; do
	port=${TARGET[$name]%%:*} root=${TARGET[$name]##*:}
	pids=$(ps -e -o pid=,ppid= | awk -v r="$root" '$1 == r || $2 == r { printf "%s%s", sep, $1; sep = "," }')
	wrk -t2 -c"$CONNECTIONS" -d1s "http://127.0.0.1:$port/small" >/dev/null
	# perf counts over the whole wrk run, and a little idle time around it.
	perf stat -x, -e "$PERF_EVENTS" -p "$pids" -o "$TMP/$name.perf" -- sleep $((${DURATION%s} + 1)) &
	perfpid=$!
	sleep 0.3
	n=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:$port/small" | awk '/requests in/ { print $1 }')
	wait "$perfpid"
	printf '%-10s %9s' "$name" "$n"
	for e in ${EVENTS//,/ } context-switches; do
		ev=$e
		[[ $e == context-switches ]] || ev=syscalls:sys_enter_$e
		c=$(awk -F, -v ev="$ev" '$3 == ev { print $1 }' "$TMP/$name.perf")
		awk -v c="${c:-0}" -v n="$n" 'BEGIN { printf " %11.2f", (c ~ /^[0-9]+$/ ? c : 0) / n }'
	done
	printf '\n'
done
