#!/usr/bin/env bash
# bench/auth.sh — what authentication costs per request: wrk against one
# gatehouse with four routes in front of bench/backend (/small, 100 bytes):
# no filter, basic_auth (bcrypt cost 10), jwt (RS256, JWKS file) and
# api_key, and against nginx with auth_basic on the same bcrypt hash (nginx
# checks the hash on every request; gatehouse remembers verified
# credentials). Every run sends the same valid credentials.
#
# Usage: bench/auth.sh        Environment: DURATION [10s], CONNECTIONS [64],
#        THREADS [2], WORKERS [nproc], NGINX_BIN [nginx on PATH]
# Needs wrk, nginx, openssl, python3 (to mint the RS256 token), go.
set -euo pipefail
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-$(nproc)}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
REPO=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "auth.sh: nothing listens on $1" >&2
	exit 1
}

(cd "$REPO" && go build -o "$TMP/gatehouse" ./cmd/gatehouse && go build -o "$TMP/backend" ./bench/backend)
GOMAXPROCS=$WORKERS "$TMP/backend" -listen 127.0.0.1:19301 >"$TMP/backend.log" 2>&1 &
PIDS+=($!)

# Credentials: a bcrypt hash, an RSA key with its JWKS and a token, an API key.
HASH=$(printf 'bench-pw\n' | "$TMP/gatehouse" hash-password --cost 10)
BASIC="Basic $(printf 'bench:bench-pw' | base64)"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/rsa.pem" 2>/dev/null
read -r JWKS TOKEN < <(python3 - "$TMP/rsa.pem" <<'PY'
import base64, json, subprocess, sys, time
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = sys.argv[1]
txt = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], capture_output=True, text=True).stdout
n = bytes.fromhex(txt.strip().split("=", 1)[1])
jwks = json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "n": b64(n), "e": "AQAB"}]}, separators=(",", ":"))
head = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
body = b64(json.dumps({"sub": "bench", "scope": "read", "exp": int(time.time()) + 3600}).encode())
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=(head + "." + body).encode(), capture_output=True).stdout
print(jwks, head + "." + body + "." + b64(sig))
PY
)
echo "$JWKS" >"$TMP/jwks.json"
printf 'bench:%s\n' "$(printf 'bench-key' | sha256sum | cut -d' ' -f1)" >"$TMP/keys"
printf 'bench:%s\n' "$HASH" >"$TMP/htpasswd"

cat >"$TMP/gatehouse.yaml" <<EOF
listeners: [{addr: "127.0.0.1:19302"}]
access_log: {enabled: false}
upstreams: {be: {targets: ["http://127.0.0.1:19301"]}}
sites:
  - routes:
      - {match: {path_prefix: /none/}, strip_prefix: /none, upstream: be}
      - match: {path_prefix: /basic/}
        strip_prefix: /basic
        upstream: be
        middleware: [{basic_auth: {users_file: "$TMP/htpasswd"}}]
      - match: {path_prefix: /jwt/}
        strip_prefix: /jwt
        upstream: be
        middleware: [{jwt: {jwks_file: "$TMP/jwks.json", require: {scope: read}, forward_claims: {sub: X-User}}}]
      - match: {path_prefix: /key/}
        strip_prefix: /key
        upstream: be
        middleware: [{api_key: {keys_file: "$TMP/keys"}}]
EOF
GOMAXPROCS=$WORKERS "$TMP/gatehouse" run -c "$TMP/gatehouse.yaml" >"$TMP/gatehouse.log" 2>&1 &
PIDS+=($!)

mkdir -p "$TMP/nginx"
user=""
((EUID == 0)) && user="user root root;"
cat >"$TMP/nginx/nginx.conf" <<EOF
$user
daemon off;
worker_processes $WORKERS;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx; proxy_temp_path $TMP/nginx;
    fastcgi_temp_path $TMP/nginx; uwsgi_temp_path $TMP/nginx; scgi_temp_path $TMP/nginx;
    upstream be { server 127.0.0.1:19301; keepalive 64; }
    server {
        listen 127.0.0.1:19303;
        location / {
            auth_basic "bench";
            auth_basic_user_file $TMP/htpasswd;
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
"$NGINX_BIN" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx.log" 2>&1 &
PIDS+=($!)
wait_port 19301
wait_port 19302
wait_port 19303

run() { # run NAME URL [HEADER]
	local name=$1 url=$2 hdr=${3:-}
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' ${hdr:+-H "$hdr"} "$url")
	[[ $code == 200 ]] || { echo "auth.sh: $name answered $code" >&2; exit 1; }
	wrk -t"$THREADS" -c"$CONNECTIONS" -d2s ${hdr:+-H "$hdr"} "$url" >/dev/null
	local out rps
	out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency ${hdr:+-H "$hdr"} "$url")
	rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	printf '%-28s %12s req/s   p99 %-10s %s\n' "$name" "$rps" "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
		"$(grep -o 'Socket errors.*' <<<"$out" || true)"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $WORKERS workers per proxy, /small (100 B)"
run "gatehouse, no auth" http://127.0.0.1:19302/none/small
run "gatehouse basic_auth" http://127.0.0.1:19302/basic/small "Authorization: $BASIC"
run "gatehouse jwt RS256" http://127.0.0.1:19302/jwt/small "Authorization: Bearer $TOKEN"
run "gatehouse api_key" http://127.0.0.1:19302/key/small "X-API-Key: bench-key"
# nginx runs crypt() on every request: with bcrypt it manages a few dozen
# requests a second, and wrk's connections mostly time out waiting.
run "nginx auth_basic (bcrypt)" http://127.0.0.1:19303/small "Authorization: $BASIC"
