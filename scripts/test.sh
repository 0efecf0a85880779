#!/usr/bin/env bash
# The one test command: installs missing dependencies, configures, builds with
# warnings as errors, and runs the whole suite (unit and end-to-end) under ctest.
# Usage: scripts/test.sh [ctest arguments...]   (e.g. -R cdiff)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${CF_BUILD:-$here/build}

"$here/scripts/deps.sh"
cmake -S "$here" -B "$build" -DCF_WERROR=ON ${CF_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"${CF_TEST_JOBS:-2}" "$@"
