#!/usr/bin/env bash
# clamfresh benchmarks: one command, no arguments. Builds clamfresh and cvdtool
# in Release mode into bench/build, makes a large synthetic signed database and
# a chain of cdiffs with cvdtool (cached in bench/work), and prints each figure
# as a ratio against a baseline measured in the same run on this machine.
# See bench/README.md for what every figure means.
#
# Environment (all optional):
#   BENCH_LINES=300000     signature lines in the database
#   BENCH_PATCHES=20       length of the cdiff chain
#   BENCH_CHANGE=0.01      fraction of lines each version changes
#   BENCH_RUNS=5           timed runs per command (median reported)
#   BENCH_REGEN=1          rebuild the fixtures even when cached
#   BENCH_NO_HYPERFINE=1   time with date(1) even when hyperfine is installed
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$here/build
work=$here/work
gen="python3 $here/gen.py"

LINES=${BENCH_LINES:-300000}
PATCHES=${BENCH_PATCHES:-20}
CHANGE=${BENCH_CHANGE:-0.01}
RUNS=${BENCH_RUNS:-5}
SLOW_RUNS=$(((RUNS + 1) / 2)) # for the commands that take seconds each
LAST=$((PATCHES + 1))         # versions 1 .. LAST
T0=$(date +%s)

say() { printf '== %s\n' "$*" >&2; }
die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- tools
for t in cmake python3 gzip tar sha256sum tail; do
    command -v "$t" >/dev/null || die "$t is required"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is required for peak memory (Debian package: time)"
have_hyperfine=0
[ "${BENCH_NO_HYPERFINE:-0}" != 1 ] && command -v hyperfine >/dev/null && have_hyperfine=1

# ---------------------------------------------------------------- build
if [ ! -f "$build/CMakeCache.txt" ] || ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$build/CMakeCache.txt"; then
    say "configuring a Release build in $build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCF_BUILD_TESTS=OFF >/dev/null
fi
say "building clamfresh and cvdtool (Release)"
cmake --build "$build" -j"$(nproc)" --target clamfresh cvdtool >/dev/null
CVDTOOL=$build/cvdtool
CLAMFRESH=$build/clamfresh

# ---------------------------------------------------------------- fixtures
fx=$work/fixtures
stamp="lines=$LINES patches=$PATCHES change=$CHANGE format=2"
if [ "${BENCH_REGEN:-0}" = 1 ] || [ ! -f "$fx/stamp" ] || [ "$(cat "$fx/stamp")" != "$stamp" ]; then
    say "making fixtures: $LINES lines, $PATCHES cdiffs changing $CHANGE of the lines each"
    rm -rf "$fx"
    mkdir -p "$fx/src" "$fx/www"
    "$CVDTOOL" keygen -o "$fx/bench" >/dev/null
    cp "$root/COPYING" "$fx/src/"
    $gen init "$fx/src" "$LINES" 1
    # Fixed build times keep the fixtures identical from one generation to the next.
    t=1700000000
    for v in $(seq 1 "$LAST"); do
        [ "$v" -gt 1 ] && $gen mutate "$fx/src" "$v" "$CHANGE"
        "$CVDTOOL" build "$fx/src" -o "$fx/www/daily-$v.cvd" --name daily --version "$v" \
            --key "$fx/bench.key" --builder bench --time $((t + v * 3600)) >/dev/null
        if [ "$v" -gt 1 ]; then
            "$CVDTOOL" diff --trust-key "$fx/bench.pub" "$fx/www/daily-$((v - 1)).cvd" "$fx/www/daily-$v.cvd" \
                -o "$fx/www/daily-$v.cdiff" --key "$fx/bench.key" --script "$fx/daily-$v.script" >/dev/null
            # Only the first and the last CVD are needed from here on.
            [ "$v" -gt 2 ] && rm -f "$fx/www/daily-$((v - 1)).cvd"
        fi
        printf '.' >&2
    done
    printf '\n' >&2
    mv "$fx/www/daily-1.cvd" "$fx/base.cvd"
    cp "$fx/www/daily-$LAST.cvd" "$fx/www/daily.cvd"
    # The source of the last version, for the rebuild-from-scratch baseline.
    echo "$stamp" >"$fx/stamp"
else
    say "using cached fixtures in $fx ($stamp)"
fi
BASE=$fx/base.cvd
NEWCVD=$fx/www/daily-$LAST.cvd
CDIFFS=()
SCRIPTS=()
for v in $(seq 2 "$LAST"); do
    CDIFFS+=("$fx/www/daily-$v.cdiff")
    SCRIPTS+=("$fx/daily-$v.script")
done

run=$work/run
rm -rf "$run"
mkdir -p "$run"

db_bytes=$($gen treesize "$fx/src")
cvd_bytes=$(stat -c %s "$NEWCVD")
cdiff_bytes=0
for f in "${CDIFFS[@]}"; do cdiff_bytes=$((cdiff_bytes + $(stat -c %s "$f"))); done

# ---------------------------------------------------------------- helpers
# median_time NAME PREPARE COMMAND RUNS: median wall-clock seconds of COMMAND
# (run by sh -c), PREPARE run before each run and not timed.
median_time() {
    local name=$1 prepare=$2 cmd=$3 runs=$4
    if [ "$have_hyperfine" = 1 ]; then
        hyperfine --style none --warmup 1 --runs "$runs" --prepare "$prepare" \
            --export-json "$run/$name.json" "$cmd" >/dev/null 2>"$run/$name.err" ||
            {
                cat "$run/$name.err" >&2
                die "$name failed: $cmd"
            }
        $gen median "$run/$name.json"
    else
        local samples=() n s e
        sh -c "$prepare"
        sh -c "$cmd" >/dev/null 2>&1 || die "$name failed: $cmd"
        for ((n = 0; n < runs; n++)); do
            sh -c "$prepare"
            s=$(date +%s.%N)
            sh -c "$cmd" >/dev/null 2>&1 || die "$name failed: $cmd"
            e=$(date +%s.%N)
            samples+=("$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$s" "$e")")
        done
        $gen median-list "${samples[@]}"
    fi
}

# peak_kib COMMAND...: maximum resident set size of COMMAND in KiB.
peak_kib() {
    /usr/bin/time -f %M -o "$run/time.out" "$@" >/dev/null 2>"$run/peak.err" || {
        cat "$run/peak.err" >&2
        return 1
    }
    tail -n 1 "$run/time.out"
}

rows=()
# row FIGURE OURS BASELINE RATIO
row() { rows+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"); }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.2f' % (a / b) if b else 'n/a')" "$1" "$2"; }
secs() { python3 -c "import sys; print('%.3f s' % float(sys.argv[1]))" "$1"; }
mib() { python3 -c "import sys; print('%.1f MiB' % (float(sys.argv[1]) / 1048576))" "$1"; }
notes=()
note() { notes+=("$*"); }

q() { printf '%q' "$1"; }

# ------------------------------------------ (1) verifying and unpacking a CVD
say "(1) unpacking and verifying a CVD"
ex=$run/extract
base_cmd="tail -c +513 $(q "$NEWCVD") | gzip -dc | tar -x -C $(q "$ex") && sha256sum $(q "$ex")/* >/dev/null"
prep="rm -rf $(q "$ex") && mkdir -p $(q "$ex")"
t_raw=$(median_time raw_unpack "$prep" "$base_cmd" "$RUNS")
t_verify=$(median_time verify "true" "$(q "$CVDTOOL") verify -q --trust-key $(q "$fx/bench.pub") $(q "$NEWCVD")" "$RUNS")
t_unpack=$(median_time unpack "$prep" "$(q "$CVDTOOL") unpack --trust-key $(q "$fx/bench.pub") $(q "$NEWCVD") $(q "$ex")" "$RUNS")
row "cvdtool verify (CVD, $(mib "$cvd_bytes"))" "$(secs "$t_verify")" "$(secs "$t_raw") tail|gzip|tar+sha256sum" "$(ratio "$t_verify" "$t_raw")"
row "cvdtool unpack (CVD)" "$(secs "$t_unpack")" "$(secs "$t_raw") tail|gzip|tar+sha256sum" "$(ratio "$t_unpack" "$t_raw")"

# ------------------------------------------ (2) base + the cdiff chain
say "(2) producing version $LAST from version 1 and $PATCHES cdiffs"
out=$run/apply.cld
apply_cmd="$(q "$CVDTOOL") apply --trust-key $(q "$fx/bench.pub") $(q "$BASE")"
for f in "${CDIFFS[@]}"; do apply_cmd+=" $(q "$f")"; done
apply_cmd+=" -o $(q "$out")"
t_apply=$(median_time apply "rm -f $(q "$out")" "$apply_cmd" "$SLOW_RUNS")
"$CVDTOOL" verify -q --trust-key "$fx/bench.pub" "$out" || die "cvdtool apply produced a CLD that does not verify"

# ClamAV's own patcher, when it accepts our files. sigtool checks a .cdiff
# against ClamAV's key, so our signed cdiffs are refused; the plain scripts
# (which sigtool runs without any signature check) are the closest it gets.
sig_ok=0
if command -v sigtool >/dev/null; then
    sd=$run/sigtool
    rm -rf "$sd" && mkdir -p "$sd"
    (cd "$sd" && tail -c +513 "$BASE" | gzip -dc | tar -x)
    if (cd "$sd" && sigtool --run-cdiff="${CDIFFS[0]}") >"$run/sigtool.out" 2>&1; then
        sig_kind=".cdiff"
        sig_files=("${CDIFFS[@]}")
        sig_ok=1
    else
        why=$(grep -m1 -i 'error' "$run/sigtool.out" || true)
        note "sigtool --run-cdiff refuses our signed .cdiff files (${why:-non-zero exit}): it only trusts ClamAV's key; timed on the unsigned scripts instead."
        rm -rf "$sd" && mkdir -p "$sd"
        (cd "$sd" && tail -c +513 "$BASE" | gzip -dc | tar -x)
        if (cd "$sd" && cp "${SCRIPTS[0]}" . && sigtool --run-cdiff="$(basename "${SCRIPTS[0]}")") >"$run/sigtool.out" 2>&1; then
            sig_kind="script"
            sig_files=("${SCRIPTS[@]}")
            sig_ok=1
        else
            note "skipped: sigtool --run-cdiff also fails on the plain scripts: $(head -n 1 "$run/sigtool.out")"
        fi
    fi
else
    note "skipped: sigtool baseline (sigtool not installed; Debian package clamav)"
fi
if [ "$sig_ok" = 1 ]; then
    # The whole job sigtool can do: unpack the base with tar, run every patch in
    # order, pack the result as an uncompressed tar (what a CLD body is).
    chain=$run/sigtool-chain.sh
    {
        echo "set -e"
        echo "rm -rf $(q "$sd") && mkdir -p $(q "$sd") && cd $(q "$sd")"
        echo "tail -c +513 $(q "$BASE") | gzip -dc | tar -x"
        for f in "${sig_files[@]}"; do
            if [ "$sig_kind" = script ]; then
                echo "cp $(q "$f") . && sigtool --run-cdiff=$(q "$(basename "$f")") >/dev/null && rm -f $(q "$(basename "$f")")"
            else
                echo "sigtool --run-cdiff=$(q "$f") >/dev/null"
            fi
        done
        echo "tar -cf ../sigtool.tar ."
    } >"$chain"
    t_sig=$(median_time sigtool_chain "true" "sh $(q "$chain")" "$SLOW_RUNS")
    # Same result? Compare the signature files (the .info differs only in its DSIG line).
    same=yes
    mkdir -p "$run/applied"
    "$CVDTOOL" unpack --trust-key "$fx/bench.pub" "$out" "$run/applied" >/dev/null
    for f in "$run/applied"/*; do
        case $f in *.info) continue ;; esac
        cmp -s "$f" "$sd/$(basename "$f")" || same="no ($(basename "$f") differs)"
    done
    row "cvdtool apply, $PATCHES cdiffs" "$(secs "$t_apply")" "$(secs "$t_sig") sigtool ($sig_kind, unsigned)" "$(ratio "$t_apply" "$t_sig")"
    note "sigtool's result equals cvdtool apply's: $same."
fi
t_build=$(median_time rebuild "rm -f $(q "$run/rebuilt.cvd")" \
    "$(q "$CVDTOOL") build $(q "$fx/src") -o $(q "$run/rebuilt.cvd") --name daily --version $LAST --key $(q "$fx/bench.key")" \
    "$SLOW_RUNS")
row "cvdtool apply, $PATCHES cdiffs" "$(secs "$t_apply")" "$(secs "$t_build") cvdtool build v$LAST" "$(ratio "$t_apply" "$t_build")"

# ------------------------------------------ (3) peak memory of cvdtool apply
say "(3) peak memory"
k_apply=$(sh -c "exec /usr/bin/time -f %M -o $(q "$run/time.out") $apply_cmd" >/dev/null 2>&1 && tail -n 1 "$run/time.out") ||
    die "cvdtool apply failed under /usr/bin/time"
row "cvdtool apply peak RSS" "$(mib $((k_apply * 1024)))" "$(mib "$db_bytes") database (unpacked)" "$(ratio $((k_apply * 1024)) "$db_bytes")"

# ------------------------------------------ (3, 4) clamfresh updates from a local mirror
say "(3, 4) clamfresh updates from a local mirror"
mirror_pid=
declare -A bytes rss reqs
stop_mirror() {
    if [ -n "$mirror_pid" ]; then
        kill "$mirror_pid" 2>/dev/null || true
        wait "$mirror_pid" 2>/dev/null || true
        mirror_pid=
    fi
}
trap stop_mirror EXIT

update_bench() {
    local port why
    python3 "$root/tests/servers/mirror.py" --root "$fx/www" --port-file "$run/port" --log "$run/mirror.log" &
    mirror_pid=$!
    for _ in $(seq 100); do
        [ -s "$run/port" ] && break
        sleep 0.1
    done
    [ -s "$run/port" ] || {
        echo "the test mirror did not start"
        return 1
    }
    port=$(cat "$run/port")
    mkdir -p "$run/certs" "$run/db0"
    cp "$BASE" "$run/db0/daily.cvd"
    for mode in cdiff full; do
        {
            echo "DatabaseDirectory $run/db-$mode"
            echo "DatabaseOwner $(id -un)"
            echo "DatabaseMirror http://127.0.0.1:$port"
            echo "CVDCertsDirectory $run/certs"
            # The load test would time libclamav, not clamfresh.
            echo "TestDatabases no"
            [ "$mode" = full ] && echo "ScriptedUpdates no"
            echo "MaxAttempts 1"
        } >"$run/$mode.conf"
    done
    reset() { echo "rm -rf $(q "$run/db-$1") && cp -r $(q "$run/db0") $(q "$run/db-$1")"; }
    cmd() { echo "$(q "$CLAMFRESH") --no-dns --quiet --config-file=$(q "$run/$1.conf") --update-db=daily --trust-key=$(q "$fx/bench.pub")"; }

    # One counted run of each: result, bytes on the wire, peak memory.
    for mode in cdiff full; do
        sh -c "$(reset "$mode")"
        : >"$run/mirror.log"
        if ! CLAMFRESH_RETRY_DELAY=0 /usr/bin/time -f %M -o "$run/time-$mode.out" \
            sh -c "exec $(cmd "$mode")" >"$run/update-$mode.out" 2>&1; then
            why=$(grep -m1 'ERROR' "$run/update-$mode.out" || tail -n 1 "$run/update-$mode.out")
            echo "clamfresh update via $mode failed: $why"
            return 1
        fi
        local want=cld
        [ "$mode" = full ] && want=cvd
        [ -f "$run/db-$mode/daily.$want" ] || {
            echo "clamfresh update via $mode left no daily.$want"
            return 1
        }
        "$CVDTOOL" info "$run/db-$mode/daily.$want" | grep -q "^Version: $LAST\$" || {
            echo "clamfresh update via $mode did not reach version $LAST"
            return 1
        }
        bytes[$mode]=$($gen bytes "$run/mirror.log")
        reqs[$mode]=$($gen requests "$run/mirror.log")
        rss[$mode]=$(tail -n 1 "$run/time-$mode.out")
    done
    t_upd_cdiff=$(CLAMFRESH_RETRY_DELAY=0 median_time upd_cdiff "$(reset cdiff)" "$(cmd cdiff)" "$SLOW_RUNS")
    t_upd_full=$(CLAMFRESH_RETRY_DELAY=0 median_time upd_full "$(reset full)" "$(cmd full)" "$SLOW_RUNS")
    stop_mirror
}

if update_bench >"$run/skip.reason"; then
    row "clamfresh update v1->v$LAST, cdiffs: time" "$(secs "$t_upd_cdiff")" "$(secs "$t_upd_full") full download" "$(ratio "$t_upd_cdiff" "$t_upd_full")"
    row "  peak RSS" "$(mib $((rss[cdiff] * 1024)))" "$(mib $((rss[full] * 1024))) full download" "$(ratio "${rss[cdiff]}" "${rss[full]}")"
    row "  bytes transferred" "$(mib "${bytes[cdiff]}")" "$(mib "${bytes[full]}") full download" "$(ratio "${bytes[cdiff]}" "${bytes[full]}")"
    note "requests, cdiff route: ${reqs[cdiff]}"
    note "requests, full route:  ${reqs[full]}"
else
    stop_mirror
    note "skipped: clamfresh updates: $(head -n 1 "$run/skip.reason")"
fi

# ---------------------------------------------------------------- report
printf '\nclamfresh benchmarks, %s, %s CPU(s), %s\n' "$(uname -m)" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf 'database: %s lines, %s unpacked, CVD %s; %s cdiffs, %s in all\n' "$LINES" "$(mib "$db_bytes")" \
    "$(mib "$cvd_bytes")" "$PATCHES" "$(mib "$cdiff_bytes")"
printf 'timing: median of %s runs (%s for the slow ones), %s\n\n' "$RUNS" "$SLOW_RUNS" \
    "$([ "$have_hyperfine" = 1 ] && echo hyperfine || echo 'date +%s.%N')"
printf '%-42s %14s   %-44s %6s\n' "figure" "ours" "baseline" "ratio"
printf '%-42s %14s   %-44s %6s\n' "------" "----" "--------" "-----"
for r in "${rows[@]}"; do
    IFS=$'\t' read -r a b c d <<<"$r"
    printf '%-42s %14s   %-44s %6s\n' "$a" "$b" "$c" "$d"
done
printf '\nratio = ours / baseline: below 1 means faster, smaller or fewer bytes.\n'
for n in "${notes[@]}"; do printf -- '- %s\n' "$n"; done
printf '(whole run: %ss)\n' $(($(date +%s) - T0))
