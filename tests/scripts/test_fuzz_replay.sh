#!/usr/bin/env bash
# The fuzz targets as a plain regression test: each target is built with the
# ordinary compiler and replay.c against the library just built, then fed its
# seeds (hand-made, plus the ClamAV vectors when present) and every input kept
# in tests/fuzz/regress/<target>/. No clang or libFuzzer needed.
set -euo pipefail
src=${CF_SOURCE_DIR:?CF_SOURCE_DIR not set}
work=$(mktemp -d /tmp/cf-fuzz-replay.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to write the seeds"; exit 77; }
FUZZ_WORK="$work" bash "$src/tests/fuzz/run.sh" replay
