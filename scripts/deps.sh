#!/usr/bin/env bash
# Installs what clamfresh needs to build and to run its whole test suite on
# Debian 12, skipping packages that are already present. Needs root (or sudo).
# Usage: scripts/deps.sh [MORE_PACKAGES...]
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config libssl-dev libcurl4-openssl-dev libc-ares-dev libtar-dev
            zlib1g-dev libcmocka-dev)
# Real servers and tools the end-to-end tests drive: a mirror (python3), DNS (dnsmasq in a
# network namespace), a caching proxy (nginx), clamd and ClamAV's own tools for interop.
test_pkgs=(python3 iproute2 dnsmasq-base nginx-light clamav clamav-daemon dnsutils curl openssl
           strace procps clang-format cppcheck shellcheck)
# Packaging and integration (test_units, test_package): offline unit checks,
# the completion framework, and building and linting the .deb.
test_pkgs+=(systemd bash-completion debhelper dpkg-dev fakeroot lintian)

missing=()
# Extra packages named on the command line (bench/deps.sh) go in the same pass.
for p in "${build_pkgs[@]}" "${test_pkgs[@]}" "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start services (clamd, freshclam, nginx) on the build machine.
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
