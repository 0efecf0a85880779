#!/usr/bin/env bash
# Installs what bench/run.sh needs beyond scripts/deps.sh (which it runs
# first), skipping packages that are already present. Needs root (or sudo).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

"$here/../scripts/deps.sh"

# GNU time is not used for timing (bench/spawn.c is) but is handy when reading
# the logs; sigtool (clamav) and libclamav-dev give ClamAV's own steps and
# the test-load program; dnsmasq, iproute2 and openssl the other rows.
bench_pkgs=(time clamav libclamav-dev dnsmasq-base iproute2 openssl gcc python3 tar gzip coreutils)

missing=()
for p in "${bench_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "Installing for the benchmarks: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start services (clamd, freshclam) on this machine.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    added_policy=1
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ $added_policy -eq 1 ] && $SUDO rm -f "$policy"
exit 0
