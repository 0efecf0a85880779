#!/usr/bin/env bash
# Installs what bench/run.sh needs: scripts/deps.sh's packages plus the
# benchmarks' own, in one pass, skipping those already present. Needs root (or sudo).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# GNU time is not used for timing (bench/spawn.c is) but is handy when reading
# the logs; sigtool (clamav) and libclamav-dev give ClamAV's own steps and
# the test-load program; dnsmasq, iproute2 and openssl the other rows; nginx
# serves the HTTP/2 row (TLS + http2).
exec "$here/../scripts/deps.sh" time clamav libclamav-dev dnsmasq-base iproute2 openssl nginx gcc python3 tar \
    gzip coreutils
