#!/usr/bin/env bash
# Regenerates the reliability table in README.md from what the hostile test
# prints ("# reliability | CLASS | CHECKS | WHAT"): the numbers come from a run
# of the suite, not from a hand. Usage: scripts/reliability.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${CF_BUILD:-$here/build}}
[ -f "$build/CTestTestfile.cmake" ] || { echo "no configured build in $build (run scripts/test.sh first)" >&2; exit 2; }

out=$(cd "$build" && ctest -R '^e2e\.test_hostile$' -V 2>&1) || { printf '%s\n' "$out" | tail -40 >&2; exit 1; }
rows=$(printf '%s\n' "$out" | sed -n 's/^[0-9]*: # reliability | \(.*\) | \([0-9]*\) | \(.*\)$/| \1 | \2 | \3 |/p')
[ -n "$rows" ] || { echo "the hostile test printed no reliability rows" >&2; exit 1; }

table=$(printf '%s\n%s\n%s\n' '| class of fault or hostile input | checks | what each case verifies |' \
    '|---|---:|---|' "$rows")
python3 - "$here/README.md" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- reliability:begin -->", "<!-- reliability:end -->"
i, j = text.index(begin) + len(begin), text.index(end)
open(path, "w").write(text[:i] + "\n" + table + "\n" + text[j:])
PY
echo "README.md: reliability table updated from $build"
