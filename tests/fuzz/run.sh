#!/usr/bin/env bash
# Builds and runs the fuzz targets of tests/fuzz/ against the library sources.
#
#   run.sh [fuzz]   clang + libFuzzer + ASan + UBSan; every target runs for
#                   $FUZZ_SECONDS (30) seconds from a seeded corpus; any crash,
#                   leak, sanitizer report or broken property fails the run.
#   run.sh build    only build the libFuzzer binaries.
#   run.sh replay   no clang needed: build each target with replay.c using $CC
#                   (default cc) and feed it the seeds and tests/fuzz/regress/<target>/;
#                   uses $CF_BINARY_DIR/libclamfresh_core.a when it exists.
#
# Environment: FUZZ_TARGETS ("fuzz_tar fuzz_cvd", default all), FUZZ_SECONDS,
# FUZZ_JOBS (targets fuzzed at once, default 1), FUZZ_WORK (scratch directory,
# default a new one under /tmp, kept for inspection), CF_VECTORS (shared
# vectors; $CF_VECTORS/clamav seeds the corpora), FUZZ_REPLAY_CRASHES=1 (replay
# also replays tests/fuzz/crashes/<target>-*, the open findings).
# Debian packages for fuzz mode: clang, libclang-rt-14-dev (plus the build deps).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:-fuzz}
secs=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-1}
work=${FUZZ_WORK:-$(mktemp -d /tmp/cf-fuzz.XXXXXX)}
mkdir -p "$work"
libs="-lssl -lcrypto -lcurl -lz -ltar -lcares -ldl -lpthread"

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    targets=$FUZZ_TARGETS
else
    targets=$(cd "$here" && ls fuzz_*.c | sed 's/\.c$//' | tr '\n' ' ')
fi

vectors=""
if [[ -n "${CF_VECTORS:-}" && -d "$CF_VECTORS/clamav" ]]; then
    vectors="$CF_VECTORS/clamav"
elif [[ -d "$root/../shared/vectors/clamav" ]]; then
    vectors="$root/../shared/vectors/clamav"
fi

version_header() {
    mkdir -p "$work/gen/clamfresh"
    local v
    v=$(sed -n 's/^project(clamfresh VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
    sed "s/@PROJECT_VERSION@/${v:-0.0.0}/g" "$root/include/clamfresh/version.h.in" \
        >"$work/gen/clamfresh/version.h"
}

# Compiles the library layers (src/<layer>/*.c, not the programs) into
# $1/libcore.a with compiler $2 and flags $3.
build_core() {
    local dir=$1 cc=$2 flags=$3 objs=() pids=() f o
    mkdir -p "$dir"
    for f in "$root"/src/*/*.c; do
        case $f in "$root"/src/clamfresh/* | "$root"/src/cvdtool/*) continue ;; esac
        o="$dir/$(basename "${f%.c}").o"
        objs+=("$o")
        # shellcheck disable=SC2086
        $cc $flags -I"$root/src/format" -c "$f" -o "$o" &
        pids+=($!)
        if (( ${#pids[@]} >= 2 )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
    done
    for p in "${pids[@]}"; do wait "$p"; done
    rm -f "$dir/libcore.a"
    ar rcs "$dir/libcore.a" "${objs[@]}"
}

seed() {
    rm -rf "$work/seeds"
    python3 "$here/seeds.py" "$work/seeds" "$vectors"
}

common="-std=c11 -D_GNU_SOURCE -g -I$root/include -I$work/gen"

build_fuzz() {
    command -v clang >/dev/null || { echo "run.sh: clang is required (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
    version_header
    local san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    echo "run.sh: building the library with clang in $work/fuzzobj"
    build_core "$work/fuzzobj" clang "$common -O1 $san -fsanitize=fuzzer-no-link"
    mkdir -p "$work/bin"
    for t in $targets; do
        # shellcheck disable=SC2086
        clang $common -O1 $san -fsanitize=fuzzer "$here/$t.c" "$work/fuzzobj/libcore.a" $libs -o "$work/bin/$t"
    done
    echo "run.sh: built $(echo $targets | wc -w) targets in $work/bin"
}

fuzz_one() {
    local t=$1 extra=()
    mkdir -p "$work/corpus/$t" "$work/seeds/$t" "$work/artifacts"
    # freshclam.conf warnings go to stderr for every deprecated option seen.
    [[ $t == fuzz_config ]] && extra+=(-close_fd_mask=2)
    "$work/bin/$t" "$work/corpus/$t" "$work/seeds/$t" -max_total_time="$secs" \
        -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 -print_pcs=0 \
        -artifact_prefix="$work/artifacts/$t-" "${extra[@]}" >"$work/$t.log" 2>&1
}

run_fuzz() {
    build_fuzz
    seed
    local failed=() running=() names=() t i
    for t in $targets; do
        echo "run.sh: fuzzing $t for ${secs}s"
        fuzz_one "$t" &
        running+=($!)
        names+=("$t")
        if (( ${#running[@]} >= jobs )); then
            wait "${running[0]}" || failed+=("${names[0]}")
            running=("${running[@]:1}"); names=("${names[@]:1}")
        fi
    done
    for i in "${!running[@]}"; do
        wait "${running[$i]}" || failed+=("${names[$i]}")
    done
    for t in $targets; do
        local st
        st=$(grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$work/$t.log" |
            sed 's/stat:://' | tr -s ' \n' ' ')
        local cov
        cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/$t.log" | tail -1)
        echo "run.sh: $t: $cov $st"
    done
    if (( ${#failed[@]} )); then
        for t in "${failed[@]}"; do
            echo "run.sh: $t FAILED; log $work/$t.log, inputs:" >&2
            ls "$work/artifacts/$t-"* 2>/dev/null >&2 || true
            grep -m5 -E 'ERROR: |SUMMARY|property failed' "$work/$t.log" >&2 || true
        done
        echo "0 passed, ${#failed[@]} failed" 
        exit 1
    fi
    echo "$(echo $targets | wc -w) passed, 0 failed"
}

run_replay() {
    local cc=${CC:-cc} lib core_flags="$common -O1" inc
    version_header
    if [[ -n "${CF_BINARY_DIR:-}" && -f "$CF_BINARY_DIR/libclamfresh_core.a" ]]; then
        lib="$CF_BINARY_DIR/libclamfresh_core.a"
        inc="-I$CF_BINARY_DIR/include"
    else
        echo "run.sh: building the library with $cc in $work/replayobj"
        build_core "$work/replayobj" "$cc" "$core_flags"
        lib="$work/replayobj/libcore.a"
        inc=""
    fi
    # A library built with CF_SANITIZE needs the sanitizer runtimes at link time.
    # (grep -c reads all of nm's output: with pipefail, grep -q could fail the test on SIGPIPE.)
    if [[ $(nm "$lib" 2>/dev/null | grep -c '__asan_' || true) != 0 ]]; then
        common="$common -fsanitize=address,undefined -fno-sanitize-recover=all"
    fi
    seed
    mkdir -p "$work/replay"
    local passed=0 nfailed=0 t
    local -a dirs
    for t in $targets; do
        # shellcheck disable=SC2086
        $cc $common $inc -O1 "$here/replay.c" "$here/$t.c" "$lib" $libs -o "$work/replay/$t"
        dirs=("$work/seeds/$t")
        [[ -d "$here/regress/$t" ]] && dirs+=("$here/regress/$t")
        if [[ "${FUZZ_REPLAY_CRASHES:-0}" == 1 ]]; then
            for f in "$here/crashes/$t"-*; do [[ -f $f ]] && dirs+=("$f"); done
        fi
        if "$work/replay/$t" "${dirs[@]}" >"$work/replay/$t.log" 2>&1; then
            echo "run.sh: replay $t: $(tail -1 "$work/replay/$t.log")"
            passed=$((passed + 1))
        else
            echo "run.sh: replay $t FAILED:" >&2
            tail -20 "$work/replay/$t.log" >&2
            nfailed=$((nfailed + 1))
        fi
    done
    echo "$passed passed, $nfailed failed"
    (( nfailed == 0 ))
}

case $mode in
fuzz) run_fuzz ;;
build) build_fuzz ;;
replay) run_replay ;;
*) echo "usage: $0 [fuzz|build|replay]" >&2; exit 2 ;;
esac
