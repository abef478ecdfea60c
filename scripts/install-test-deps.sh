#!/usr/bin/env bash
# Installs what the test suite needs and is missing, so that `make test` runs
# every test on a fresh Debian machine. Nothing here is skipped silently: a
# failed install fails the run.
set -euo pipefail
need=()
# (Each issue that adds a test dependency on a Debian package adds it here:
#  redis-server, pebble, chromium, ...)
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing test dependencies: ${need[*]}"
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
go mod download
