#!/usr/bin/env bash
# clamfresh benchmarks at the sizes of ClamAV's real databases. One command:
#
#   bench/run.sh                              build this tree's clamfresh and measure it
#   CLAMFRESH=/path/clamfresh bench/run.sh    measure that binary
#   BASE_CLAMFRESH=/path/clamfresh ...        measure a second build side by side
#   BENCH_SCALE=0.1 bench/run.sh              a tenth of the data, for a quick check
#
# It installs what it needs (bench/deps.sh), builds cvdtool (and clamfresh
# unless CLAMFRESH is given) in Release mode, generates a daily database of
# ~2.1 M signatures in 31 versions with their signed cdiffs and a main of
# ~6.6 M signatures (once: cached in bench/.cache/data-SCALE), then measures
# every row against baselines taken in the same run and prints the table it
# also writes to bench/RESULTS.md, with the targets marked MET or MISSED.
# See bench/README.md for what each row and baseline is.
#
# Environment (all optional):
#   CLAMFRESH, BASE_CLAMFRESH  binaries to measure (default: build this tree)
#   BENCH_SCALE=1              data size relative to ClamAV's databases
#   BENCH_RUNS=3               timed runs per figure (median reported)
#   BENCH_WARMUP=1             untimed warm-up runs before them (the slowest
#                              baselines, 5 s or more a run at scale 1, skip it)
#   BENCH_REGEN=1              remake the data even when cached
#   BENCH_DATA_ONLY=1          stop once the data is ready
#   BENCH_RESULTS=FILE         where to write the table (default bench/RESULTS.md)
#   BENCH_ROWS=rtt,uptodate    only these groups of rows (cdiff, uptodate, rtt, main,
#                              test, baselines; default all), to iterate on one figure
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
SCALE=${BENCH_SCALE:-1}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-1}
RESULTS=${BENCH_RESULTS:-$here/RESULTS.md}
cache=$here/.cache
data=$cache/data-$SCALE
tools=$cache/tools
run=$cache/run
res=$run/res
T0=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Versions as in ClamAV's numbering; the local database is 1 or 30 behind.
TOP=27060
FIRST=$((TOP - 31)) # base of the chain: the first version built
MAIN_V=62
CHAIN=30

say() { printf '[%4ss] %s\n' $(($(date +%s) - T0)) "$*" >&2; }
die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}
gen() { python3 "$here/gen.py" "$@"; }

case $SCALE in
'' | *[!0-9.]* | *.*.*) die "BENCH_SCALE must be a positive number, not '$SCALE'" ;;
esac
python3 -c "import sys; sys.exit(0 if 0 < float(sys.argv[1]) <= 4 else 1)" "$SCALE" ||
    die "BENCH_SCALE must be in (0, 4]"
[ "$RUNS" -ge 1 ] 2>/dev/null || die "BENCH_RUNS must be a positive integer"
[ "$WARMUP" -ge 0 ] 2>/dev/null || die "BENCH_WARMUP must be a number >= 0"
ROWS_WANTED=$(printf '%s' "${BENCH_ROWS:-}" | tr ' ' ',')
for g in ${ROWS_WANTED//,/ }; do
    case $g in
    cdiff | uptodate | rtt | main | test | baselines) ;;
    *) die "BENCH_ROWS: unknown group '$g' (cdiff, uptodate, rtt, main, test, baselines)" ;;
    esac
done
# wanted GROUP: whether BENCH_ROWS selects that group of rows.
wanted() { [ -z "$ROWS_WANTED" ] || [[ ",$ROWS_WANTED," == *",$1,"* ]]; }

# ---------------------------------------------------------------- set-up
say "checking the packages the benchmarks need (bench/deps.sh)"
"$here/deps.sh"

say "building cvdtool$([ -z "${CLAMFRESH:-}" ] && echo " and clamfresh") (Release) in bench/build"
build=$here/build
if [ ! -f "$build/CMakeCache.txt" ] || ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$build/CMakeCache.txt"; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCF_BUILD_TESTS=OFF >/dev/null
fi
targets=(--target cvdtool)
[ -z "${CLAMFRESH:-}" ] && targets+=(--target clamfresh)
cmake --build "$build" -j"$(nproc)" "${targets[@]}" >/dev/null
CVDTOOL=$build/cvdtool
CLAMFRESH=${CLAMFRESH:-$build/clamfresh}
[ -x "$CLAMFRESH" ] || die "CLAMFRESH=$CLAMFRESH is not an executable"
[ -z "${BASE_CLAMFRESH:-}" ] || [ -x "$BASE_CLAMFRESH" ] || die "BASE_CLAMFRESH=$BASE_CLAMFRESH is not an executable"

say "building the timer, the test-load program and the ClamAV key shim"
mkdir -p "$tools"
cc_if_newer() {
    local out=$1 src=$2
    shift 2
    if [ ! -x "$out" ] || [ "$src" -nt "$out" ]; then
        gcc -O2 -Wall -Wextra -o "$out" "$src" "$@" || die "cannot compile $src"
    fi
}
cc_if_newer "$tools/spawn" "$here/spawn.c"
cc_if_newer "$tools/loadtest" "$here/loadtest.c" -lclamav
cc_if_newer "$tools/clamav-shim.so" "$here/clamav-shim.c" -shared -fPIC
SHIM=$tools/clamav-shim.so

# ---------------------------------------------------------------- data
# The stamp names everything the bytes depend on.
stamp="scale=$SCALE top=$TOP first=$FIRST main=$MAIN_V gen=$(sha256sum "$here/gen.py" | cut -c1-16) format=1"
if [ "${BENCH_REGEN:-0}" = 1 ] || [ ! -f "$data/stamp" ] || [ "$(cat "$data/stamp")" != "$stamp" ]; then
    say "generating the data in $data (once per scale; progress below)"
    rm -rf "$data"
    mkdir -p "$data/src" "$data/www" "$data/local" "$data/certs"
    "$CVDTOOL" keygen -o "$data/key" >/dev/null
    jobs=$(nproc)

    say "daily: version $FIRST (${SCALE} x 2.1 M signatures)"
    s=$data/src/$FIRST
    mkdir -p "$s"
    cp "$root/COPYING" "$s/"
    gen daily-init "$s" "$SCALE"
    printf '\n' >&2
    say "daily: the edits of versions $((FIRST + 1))..$TOP"
    for v in $(seq $((FIRST + 1)) "$TOP"); do
        # Hard links: an edited member is replaced (gen.py writes and renames),
        # the others are shared with the previous version.
        cp -al "$data/src/$((v - 1))" "$data/src/$v"
        gen daily-mutate "$data/src/$v" "$v"
        printf '.' >&2
    done
    printf '\n' >&2
    say "daily: building $((TOP - FIRST + 1)) signed CVDs ($jobs at a time)"
    # One version an hour, the newest an hour old, as a daily is published.
    now=$(date +%s)
    seq "$FIRST" "$TOP" | xargs -P "$jobs" -I{} sh -c '
        "$1" build "$2/src/$3" -o "$2/www/daily-$3.cvd" --name daily --version "$3" \
            --key "$2/key.key" --builder bench --time $(($4 - ($5 - $3 + 1) * 3600)) >/dev/null &&
            printf . >&2' sh "$CVDTOOL" "$data" {} "$now" "$TOP" ||
        die "cvdtool build failed"
    printf '\n' >&2
    say "daily: making the $((TOP - FIRST)) signed cdiffs with cvdtool diff"
    seq $((FIRST + 1)) "$TOP" | xargs -P "$jobs" -I{} sh -c '
        "$1" diff --trust-key "$2/key.pub" "$2/www/daily-$(($3 - 1)).cvd" "$2/www/daily-$3.cvd" \
            -o "$2/www/daily-$3.cdiff" --key "$2/key.key" >/dev/null && printf . >&2' \
        sh "$CVDTOOL" "$data" {} || die "cvdtool diff failed"
    printf '\n' >&2
    say "daily: the local databases (CLDs) at versions $((TOP - CHAIN)), $((TOP - 1)) and $TOP"
    for v in $((TOP - CHAIN)) $((TOP - 1)) "$TOP"; do
        "$CVDTOOL" apply --trust-key "$data/key.pub" "$data/www/daily-$((v - 1)).cvd" "$data/www/daily-$v.cdiff" \
            -o "$data/local/daily-$v.cld" >/dev/null || die "cvdtool apply failed for version $v"
    done
    gen members "$data/www/daily-$TOP.cvd" >"$data/daily-$TOP.members"
    gen lines "$data/src/$TOP" >"$data/daily.lines"
    gen treesize "$data/src/$TOP" >"$data/daily.bytes"
    # Only the newest CVD stays on the mirror, as on ClamAV's.
    for v in $(seq "$FIRST" $((TOP - 1))); do rm -f "$data/www/daily-$v.cvd"; done
    ln "$data/www/daily-$TOP.cvd" "$data/www/daily.cvd"
    rm -rf "$data/src"

    say "main: version $MAIN_V (${SCALE} x 6.6 M signatures)"
    s=$data/src-main
    mkdir -p "$s"
    cp "$root/COPYING" "$s/"
    gen main-init "$s" "$SCALE"
    printf '\n' >&2
    "$CVDTOOL" build "$s" -o "$data/www/main-$MAIN_V.cvd" --name main --version "$MAIN_V" \
        --key "$data/key.key" --builder bench --time $((now - 86400 * 30)) >/dev/null || die "cvdtool build (main) failed"
    ln "$data/www/main-$MAIN_V.cvd" "$data/www/main.cvd"
    gen members "$data/www/main-$MAIN_V.cvd" >"$data/main-$MAIN_V.members"
    gen lines "$s" >"$data/main.lines"
    gen treesize "$s" >"$data/main.bytes"
    rm -rf "$s"
    echo "$stamp" >"$data/stamp"
    say "data ready"
else
    say "using the cached data in $data"
fi
[ "${BENCH_DATA_ONLY:-0}" = 1 ] && exit 0

# ---------------------------------------------------------------- measuring
rm -rf "$run"
mkdir -p "$res" "$run/certs"
V=$TOP
KEY=$data/key.pub
LOCAL1=$data/local/daily-$((V - 1)).cld
LOCAL30=$data/local/daily-$((V - CHAIN)).cld
CURRENT=$data/local/daily-$V.cld
CDIFF1=("$data/www/daily-$V.cdiff")
CDIFF30=()
for v in $(seq $((V - CHAIN + 1)) "$V"); do CDIFF30+=("$data/www/daily-$v.cdiff"); done
NS=
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$NS" ]; then
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$NS" 2>/dev/null || true
        rm -rf "/etc/netns/$NS"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# measure KEY [measure.py options] -- COMMAND...: writes res/KEY.json, or
# res/KEY.skip with the reason when the command or its check fails.
MEASURE_WRAP=()
MEASURE_WARMUP=$WARMUP
measure() {
    local key=$1
    shift
    if "${MEASURE_WRAP[@]}" python3 "$here/measure.py" --spawn "$tools/spawn" --runs "$RUNS" --warmup "$MEASURE_WARMUP" \
        --out "$res/$key.json" "$@" \
        >/dev/null 2>"$res/$key.err"; then
        say "  $key: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.3f s wall, %.3f s CPU, %.1f MiB" % (d["wall"], d["cpu"], d["rss_kib"]/1024))' "$res/$key.json")"
        return 0
    fi
    tail -n 1 "$res/$key.err" | sed 's/^measure: //' >"$res/$key.skip"
    say "  $key FAILED: $(cat "$res/$key.skip") (log: $res/$key.log)"
    return 1
}
skip() {
    echo "$2" >"$res/$1.skip"
    say "  $1 SKIPPED: $2"
}

# wait_file FILE PID: waits until a server has written its port file.
wait_file() {
    local _
    for _ in $(seq 150); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# nginx_conf DIR LISTEN [HTTP_LINES [SERVER_LINES]]: DIR/nginx.conf, one worker
# as root (the data is in a private tree) serving $data/www on LISTEN, with its
# log, pid and temporary files in DIR.
nginx_conf() {
    local dir=$1 listen=$2 http_lines=${3:-} server_lines=${4:-}
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
include $root/tests/lib/nginx-private-main.conf;
user root root;
http {
    include $root/tests/lib/nginx-private-temp.conf;
    keepalive_requests 1000;
$http_lines
    server {
        listen $listen;
        root $data/www;
$server_lines
    }
}
EOF
}

# relay_start WHO NAME DIR UPSTREAM_PORT DELAY [PREFIX...]: bench/relay.py
# (run under PREFIX, e.g. ip netns exec NS) in front of UPSTREAM_PORT, adding
# DELAY seconds each way; RELAY_PORT is its port, or the row is skipped and
# the status is 1.
relay_start() {
    local who=$1 name=$2 dir=$3 upstream=$4 delay=$5
    shift 5
    "$@" python3 "$here/relay.py" --upstream "$upstream" --delay "$delay" \
        --port-file "$dir/$name.port" 2>"$dir/$name.err" &
    PIDS+=($!)
    if ! wait_file "$dir/$name.port" $!; then
        skip "$who.$name" "the relay did not start: $(tail -n 1 "$dir/$name.err")"
        return 1
    fi
    RELAY_PORT=$(cat "$dir/$name.port")
}

# A mirror of the data on 127.0.0.1, for the rows outside the namespace: the
# test suite's Python mirror (row 4c's relay forwards to it) and, as the
# mirror of rows 1, 2, 5 and 6 and of the baselines, nginx when it is
# installed (bench/deps.sh installs it). A real mirror answers a patch in
# well under a millisecond; the Python one takes several each, which the
# 30-patch row would measure too.
python3 "$root/tests/servers/mirror.py" --root "$data/www" --port-file "$run/mirror.port" \
    --log "$run/mirror.log" --keep-alive 2>"$run/mirror.err" &
PIDS+=($!)
wait_file "$run/mirror.port" $! || die "the test mirror did not start: $(cat "$run/mirror.err")"
MIRROR=http://127.0.0.1:$(cat "$run/mirror.port")
MIRROR_KIND="the test suite's Python mirror (tests/servers/mirror.py)"
if command -v nginx >/dev/null; then
    web=$run/web
    web_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    nginx_conf "$web" "127.0.0.1:$web_port" "    access_log $web/access.log;
    sendfile on;"
    nginx -p "$web" -e "$web/error.log" -c "$web/nginx.conf" </dev/null >"$web/nginx.out" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        if bash -c "exec 3<>/dev/tcp/127.0.0.1/$web_port" 2>/dev/null; then
            MIRROR=http://127.0.0.1:$web_port
            MIRROR_KIND="nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')"
            break
        fi
        sleep 0.1
    done
fi
say "mirror for rows 1, 2, 5, 6 and the baselines: $MIRROR_KIND at $MIRROR"

# The steady state of rows 1, 2 and 6: a local database that an earlier
# clamfresh run verified in full and recorded (clamfresh-verified.state), as
# every run after the first finds it. clamfresh itself makes it in the
# prepare step: a second mirror holds only the version pointer daily.version,
# saying the local version is current, so that run checks the file and
# records it. A row whose prepare did not record it fails loudly.
mkdir -p "$run/prev/v1" "$run/prev/v$CHAIN"
echo $((V - 1)) >"$run/prev/v1/daily.version"
echo $((V - CHAIN)) >"$run/prev/v$CHAIN/daily.version"
python3 "$root/tests/servers/mirror.py" --root "$run/prev" --port-file "$run/prev.port" \
    --log "$run/prev.log" 2>"$run/prev.err" &
PIDS+=($!)
wait_file "$run/prev.port" $! || die "the pointer mirror did not start: $(cat "$run/prev.err")"
PREV=http://127.0.0.1:$(cat "$run/prev.port")

# conf FILE DBDIR MIRROR_URL [LINE...]: a freshclam.conf trusting the bench key.
conf() {
    local f=$1 db=$2 url=$3
    shift 3
    {
        echo "DatabaseDirectory $db"
        echo "DatabaseOwner $(id -un)"
        echo "DatabaseMirror $url"
        echo "CVDPublicKey $KEY"
        echo "InfoPublicKey $KEY"
        echo "CdiffPublicKey $KEY"
        echo "CVDCertsDirectory $run/certs"
        echo "LogTime no"
        local l
        for l in "$@"; do echo "$l"; done
    } >"$f"
}

# The check after every clamfresh run: exactly one daily (or main) file,
# whose members are the generated version's, byte for byte.
cat >"$run/check-db.sh" <<'CHECK'
#!/bin/sh
# check-db.sh GEN DBDIR NAME EXPECTED
set -e
cld=$2/$3.cld
cvd=$2/$3.cvd
if [ -f "$cld" ] && [ -f "$cvd" ]; then echo "both $3.cld and $3.cvd are in $2"; exit 1; fi
if [ -f "$cld" ]; then f=$cld; elif [ -f "$cvd" ]; then f=$cvd; else echo "no $3.cld or $3.cvd in $2"; exit 1; fi
python3 "$1" same-members "$f" "$4"
CHECK
chmod +x "$run/check-db.sh"
check_db() { echo "$run/check-db.sh $here/gen.py $1 $2 $3"; }

q() { printf '%q' "$1"; }

# ---- clamfresh rows, for each binary
clamfresh_rows() {
    local who=$1 bin=$2 d=$run/$1
    mkdir -p "$d"
    say "[$who] $bin"
    local env=(--env CLAMFRESH_RETRY_DELAY=0)
    local upd=("$bin" --no-dns --quiet --update-db=daily)
    local reset1 reset30 verified1 verified30
    reset1="rm -rf $(q "$d/db") && mkdir $(q "$d/db") && cp $(q "$LOCAL1") $(q "$d/db/daily.cld") && sync $(q "$d/db/daily.cld")"
    reset30="rm -rf $(q "$d/db") && mkdir $(q "$d/db") && cp $(q "$LOCAL30") $(q "$d/db/daily.cld") && sync $(q "$d/db/daily.cld")"
    # verified VERSION: the local database checked and recorded by clamfresh (see PREV).
    conf "$d/prev1.conf" "$d/db" "$PREV/v1" "TestDatabases no"
    conf "$d/prev$CHAIN.conf" "$d/db" "$PREV/v$CHAIN" "TestDatabases no"
    verified() {
        local c=$d/prev1.conf
        [ "$1" = $((V - CHAIN)) ] && c=$d/prev$CHAIN.conf
        printf '%s' "{ $(q "$bin") --no-dns --quiet --update-db=daily --config-file=$(q "$c") >/dev/null 2>&1 || true; } && grep -q '^daily.cld .* $1\$' $(q "$d/db/clamfresh-verified.state")"
    }
    verified1="$reset1 && $(verified $((V - 1)))"
    verified30="$reset30 && $(verified $((V - CHAIN)))"

    if wanted cdiff; then
        say "[$who] row 1: 1 cdiff (local $((V - 1)), verified by an earlier run; mirror on 127.0.0.1, TestDatabases no)"
        conf "$d/1.conf" "$d/db" "$MIRROR" "TestDatabases no"
        measure "$who.cdiff1" "${env[@]}" --prepare "$verified1" \
            --check "$(check_db "$d/db" daily "$data/daily-$V.members")" \
            -- "${upd[@]}" --config-file="$d/1.conf" || true

        say "[$who] row 1b (informational): 1 cdiff, a local file no run has verified (first run: full check)"
        measure "$who.cdiff1_cold" "${env[@]}" --prepare "$reset1" \
            --check "$(check_db "$d/db" daily "$data/daily-$V.members")" \
            -- "${upd[@]}" --config-file="$d/1.conf" || true

        say "[$who] row 2: $CHAIN cdiffs (local $((V - CHAIN)), verified by an earlier run)"
        measure "$who.cdiff30" "${env[@]}" --prepare "$verified30" \
            --check "$(check_db "$d/db" daily "$data/daily-$V.members")" \
            -- "${upd[@]}" --config-file="$d/1.conf" || true
    fi

    if wanted test; then
        say "[$who] row 6: 1 cdiff with TestDatabases yes (libclamav test load; ClamAV key check shimmed)"
        conf "$d/6.conf" "$d/db" "$MIRROR" "TestDatabases yes"
        measure "$who.cdiff1_test" "${env[@]}" --env "LD_PRELOAD=$SHIM" --prepare "$verified1" \
            --check "$(check_db "$d/db" daily "$data/daily-$V.members")" \
            -- "${upd[@]}" --config-file="$d/6.conf" || true
    fi

    if wanted rtt; then
        rtt_dns_rows "$who" "$bin"
        # Informational: without DNS the version comes from the mirror, one
        # more round (header probe, pointer and next patch) before the patches.
        say "[$who] row 4c (informational): $CHAIN cdiffs, --no-dns, through a relay adding 0 and 100 ms of round trip"
        local delay port name
        for delay in 0 0.05; do
            name=rtt$([ "$delay" = 0 ] && echo 0 || echo 100)_nodns
            relay_start "$who" "$name" "$d" "$(cat "$run/mirror.port")" "$delay" || continue
            port=$RELAY_PORT
            conf "$d/$name.conf" "$d/db" "http://127.0.0.1:$port" "TestDatabases no"
            measure "$who.$name" "${env[@]}" --prepare "$reset30" \
                --check "$(check_db "$d/db" daily "$data/daily-$V.members")" \
                -- "${upd[@]}" --config-file="$d/$name.conf" || true
        done
    fi

    if wanted main; then
        say "[$who] row 5: main fresh install (no local database)"
        conf "$d/5.conf" "$d/db" "$MIRROR" "TestDatabases no"
        measure "$who.main" "${env[@]}" \
            --prepare "rm -rf $(q "$d/db") && mkdir $(q "$d/db") && sync" \
            --check "$(check_db "$d/db" main "$data/main-$MAIN_V.members")" \
            -- "$bin" --no-dns --quiet --update-db=main --config-file="$d/5.conf" || true
    fi

    wanted uptodate || return 0
    say "[$who] row 3: up to date, DNS says current (dnsmasq and a mirror in a network namespace)"
    if [ -z "$NS" ]; then
        skip "$who.uptodate" "$NS_WHY"
    else
        local nd=$run/ns-$who
        mkdir -p "$nd/db"
        cp "$CURRENT" "$nd/db/daily.cld"
        : >"$nd/mirror.log"
        ip netns exec "$NS" python3 "$root/tests/servers/mirror.py" --root "$data/www" \
            --port-file "$nd/mirror.port" --log "$nd/mirror.log" 2>"$nd/mirror.err" &
        PIDS+=($!)
        if ! wait_file "$nd/mirror.port" $!; then
            skip "$who.uptodate" "the mirror in the namespace did not start"
        else
            conf "$nd/3.conf" "$nd/db" "http://127.0.0.1:$(cat "$nd/mirror.port")" "TestDatabases no"
            # The timer itself runs in the namespace, so only clamfresh is timed.
            MEASURE_WRAP=(ip netns exec "$NS")
            measure "$who.uptodate" \
                --check "test ! -s $(q "$nd/mirror.log") || { echo 'the mirror got HTTP requests:'; head -c 300 $(q "$nd/mirror.log"); exit 1; }" \
                -- "$bin" --quiet --update-db=daily --config-file="$nd/3.conf" || true
            MEASURE_WRAP=()
            gen same-members "$nd/db/daily.cld" "$data/daily-$V.members" >/dev/null ||
                skip "$who.uptodate" "the database changed during the up-to-date runs"
            grep -q 'query\[TXT\] current.cvd.clamav.net' "$NS_DIR/dnsmasq.log" ||
                skip "$who.uptodate" "clamfresh never asked DNS (no TXT query in the dnsmasq log)"
            echo "$(wc -l <"$nd/mirror.log")" >"$res/$who.uptodate.requests"
        fi
    fi
}

# txt_queries: how many TXT queries dnsmasq has answered so far.
txt_queries() { grep -c 'query\[TXT\] current.cvd.clamav.net' "$NS_DIR/dnsmasq.log" || true; }

# rtt_dns_rows WHO BIN: the RTT rows as freshclam is usually run: DNS (local,
# not delayed, as a caching resolver would answer) gives the version, and only
# the patches travel, through relay.py, in the namespace of row 3. Over
# HTTP/1.1 the relay is in front of the plain-http mirror, over HTTP/2 in
# front of nginx (TLS + http2) serving the same directory.
rtt_dns_rows() {
    local who=$1 bin=$2
    local nd=$run/rtt-$who
    local delay name proto port url upstream n0 t0 runs=$((RUNS + WARMUP))
    local rows=(rtt0_h1 rtt100_h1 rtt0_h2 rtt100_h2)
    say "[$who] row 4a/4b: $CHAIN cdiffs, DNS says $V, through a relay adding 0 and 100 ms of round trip, HTTP/1.1 and HTTP/2"
    if [ -z "$NS" ]; then
        for name in "${rows[@]}"; do skip "$who.$name" "$NS_WHY"; done
        return 0
    fi
    mkdir -p "$nd"
    : >"$nd/mirror.log"
    ip netns exec "$NS" python3 "$root/tests/servers/mirror.py" --root "$data/www" --keep-alive \
        --port-file "$nd/mirror.port" --log "$nd/mirror.log" 2>"$nd/mirror.err" &
    PIDS+=($!)
    if ! wait_file "$nd/mirror.port" $!; then
        for name in "${rows[@]}"; do skip "$who.$name" "the mirror in the namespace did not start"; done
        return 0
    fi
    local reset30
    reset30="rm -rf $(q "$nd/db") && mkdir $(q "$nd/db") && cp $(q "$LOCAL30") $(q "$nd/db/daily.cld") && sync $(q "$nd/db/daily.cld")"
    for proto in h1 h2; do
        if [ "$proto" = h1 ]; then
            upstream=$(cat "$nd/mirror.port")
        elif [ -n "$H2_WHY" ]; then
            skip "$who.rtt0_h2" "$H2_WHY"
            skip "$who.rtt100_h2" "$H2_WHY"
            continue
        else
            upstream=$H2_PORT
        fi
        for delay in 0 0.05; do
            name=rtt$([ "$delay" = 0 ] && echo 0 || echo 100)_$proto
            relay_start "$who" "$name" "$nd" "$upstream" "$delay" ip netns exec "$NS" || continue
            port=$RELAY_PORT
            url=http://127.0.0.1:$port
            [ "$proto" = h2 ] && url=https://127.0.0.1:$port
            conf "$nd/$name.conf" "$nd/db" "$url" "TestDatabases no"
            n0=$(if [ "$proto" = h1 ]; then wc -l <"$nd/mirror.log"; else wc -l <"$H2_DIR/access.log"; fi)
            t0=$(txt_queries)
            MEASURE_WRAP=(ip netns exec "$NS")
            local env=(--env CLAMFRESH_RETRY_DELAY=0)
            [ "$proto" = h2 ] && env+=(--env "CURL_CA_BUNDLE=$H2_CA")
            measure "$who.$name" "${env[@]}" --prepare "$reset30" \
                --check "$(check_db "$nd/db" daily "$data/daily-$V.members")" \
                -- "$bin" --quiet --update-db=daily --config-file="$nd/$name.conf" || true
            MEASURE_WRAP=()
            [ -f "$res/$who.$name.json" ] || continue
            if [ "$(txt_queries)" -lt $((t0 + runs)) ]; then
                skip "$who.$name" "clamfresh did not ask DNS on every run ($(($(txt_queries) - t0)) TXT queries for $runs runs)"
                rm -f "$res/$who.$name.json"
                continue
            fi
            if [ "$proto" = h1 ]; then
                echo "$((($(wc -l <"$nd/mirror.log") - n0) / runs)) requests a run" >"$res/$who.$name.requests"
                continue
            fi
            # nginx writes a line when a request ends: give the last one a moment.
            sleep 0.3
            # What the log says about this row's runs: every request HTTP/2,
            # over how many connections.
            tail -n +$((n0 + 1)) "$H2_DIR/access.log" >"$nd/$name.access"
            local total h2 conns tls
            total=$(wc -l <"$nd/$name.access")
            h2=$(awk '$2 == "HTTP/2.0"' "$nd/$name.access" | wc -l)
            conns=$(awk '{print $1}' "$nd/$name.access" | sort -u | wc -l)
            tls=$(awk '{print $3}' "$nd/$name.access" | sort -u | tr '\n' ' ')
            if [ "$total" -eq 0 ] || [ "$h2" -ne "$total" ]; then
                skip "$who.$name" "not HTTP/2: nginx logged $h2 of $total requests as HTTP/2.0"
                rm -f "$res/$who.$name.json"
                continue
            fi
            echo "$((total / runs)) requests a run, all HTTP/2.0 (${tls% }) in nginx's log, $((conns / runs)) connection(s) a run" \
                >"$res/$who.$name.requests"
        done
    done
}

# h2_start: nginx in the namespace serving the data over TLS with http2 on
# H2_PORT, with a certificate from a CA made here (H2_CA); or H2_WHY says why not.
H2_WHY=''
H2_PORT=''
H2_DIR=$run/h2
H2_CA=
h2_start() {
    if ! command -v nginx >/dev/null; then
        H2_WHY="nginx is not installed (Debian package nginx)"
        return
    fi
    if ! nginx -V 2>&1 | grep -q -- '--with-http_v2_module'; then
        H2_WHY="this nginx has no http_v2_module"
        return
    fi
    if ! grep -qx HTTP2 <<<"$(curl-config --features 2>/dev/null || true)"; then
        H2_WHY="libcurl has no HTTP/2 (nghttp2)"
        return
    fi
    mkdir -p "$H2_DIR/tmp"
    if ! (
        cd "$H2_DIR" &&
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.pem \
                -subj "/CN=clamfresh bench CA" -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" &&
            openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=127.0.0.1" &&
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >srv.ext &&
            openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -set_serial "$RANDOM$RANDOM" -days 2 \
                -extfile srv.ext -out srv.pem
    ) >"$H2_DIR/pki.log" 2>&1; then
        H2_WHY="cannot make the certificates: $(tail -n 1 "$H2_DIR/pki.log")"
        return
    fi
    H2_CA=$H2_DIR/ca.pem
    # The namespace is private: any port is free there.
    H2_PORT=8443
    nginx_conf "$H2_DIR" "127.0.0.1:$H2_PORT ssl http2" \
        "    log_format conn '\$connection \$server_protocol \$ssl_protocol \$status \$request_uri';
    access_log $H2_DIR/access.log conn;" \
        "        # TLS 1.3, as ClamAV's CDN speaks: one round for the handshake
        # (Debian 12's nginx 1.22 offers at most TLS 1.2 unless told).
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate $H2_DIR/srv.pem;
        ssl_certificate_key $H2_DIR/srv.key;"
    : >"$H2_DIR/access.log"
    ip netns exec "$NS" nginx -p "$H2_DIR" -e "$H2_DIR/error.log" -c "$H2_DIR/nginx.conf" \
        </dev/null >"$H2_DIR/nginx.out" 2>&1 &
    PIDS+=($!)
    local _
    for _ in $(seq 100); do
        ip netns exec "$NS" bash -c "exec 3<>/dev/tcp/127.0.0.1/$H2_PORT" 2>/dev/null && return
        sleep 0.1
    done
    H2_WHY="nginx did not start: $(tail -n 1 "$H2_DIR/error.log" 2>/dev/null)"
}

# ---- the namespace with DNS for rows 3 and 4a/4b
NS_WHY=
if [ "$(id -u)" != 0 ]; then
    NS_WHY="needs root (network namespace, dnsmasq on port 53)"
elif ! command -v dnsmasq >/dev/null; then
    NS_WHY="dnsmasq is not installed"
else
    NS=cfbench$$
    NS_DIR=$run/ns
    mkdir -p "$NS_DIR"
    if ! ip netns add "$NS" 2>"$NS_DIR/err"; then
        NS_WHY="cannot create a network namespace: $(cat "$NS_DIR/err")"
        NS=
    else
        ip netns exec "$NS" ip link set lo up
        mkdir -p "/etc/netns/$NS"
        echo 'nameserver 127.0.0.1' >"/etc/netns/$NS/resolv.conf"
        printf '127.0.0.1 localhost\n' >"/etc/netns/$NS/hosts"
        # The record ClamAV publishes: version:main:daily:time:...:bytecode.
        txt="1.4.6:$MAIN_V:$V:$(date +%s):1:90:49192:339"
        ip netns exec "$NS" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
            --bind-interfaces --listen-address=127.0.0.1 --port=53 --user=root --group=root \
            --pid-file="$NS_DIR/dnsmasq.pid" --log-facility="$NS_DIR/dnsmasq.log" --log-queries \
            --txt-record="current.cvd.clamav.net,$txt" </dev/null >"$NS_DIR/dnsmasq.out" 2>&1 &
        PIDS+=($!)
        for _ in $(seq 100); do
            grep -qs 'started, version' "$NS_DIR/dnsmasq.log" && break
            sleep 0.1
        done
        if ! grep -qs 'started, version' "$NS_DIR/dnsmasq.log"; then
            NS_WHY="dnsmasq did not start: $(head -n 1 "$NS_DIR/dnsmasq.out")"
            cleanup
            NS=
            PIDS=()
        fi
    fi
fi

if [ -z "$NS" ]; then
    H2_WHY=$NS_WHY
elif wanted rtt; then
    say "starting nginx (TLS, http2) in the namespace for the HTTP/2 rows"
    h2_start
    [ -z "$H2_WHY" ] || say "  the HTTP/2 rows will be skipped: $H2_WHY"
fi

say "measuring with $RUNS timed runs per figure after $WARMUP warm-up run(s)"
clamfresh_rows new "$CLAMFRESH"
[ -n "${BASE_CLAMFRESH:-}" ] && clamfresh_rows base "$BASE_CLAMFRESH"

# ---- baselines
if wanted baselines; then
    say "baselines: ClamAV's own steps (sigtool, with the ClamAV key check shimmed), test load, floors"
    bd=$run/baseline
    mkdir -p "$bd"
    # clamav_steps FILE LOCAL CDIFF...: a script doing what freshclam does to apply
    # cdiffs: unpack the local database into a directory, run each cdiff in it,
    # pack the directory as the new CLD (a plain tar after the 512-byte header).
    clamav_steps() {
        local f=$1 local_db=$2 c
        shift 2
        {
            echo "set -e"
            echo "rm -rf $(q "$bd/w") && mkdir $(q "$bd/w") && cd $(q "$bd/w")"
            echo "LD_PRELOAD=$(q "$SHIM") sigtool --unpack=$(q "$local_db") >/dev/null"
            for c in "$@"; do echo "LD_PRELOAD=$(q "$SHIM") sigtool --run-cdiff=$(q "$c") >/dev/null"; done
            echo "{ head -c 512 $(q "$local_db"); tar -cf - daily.info \$(ls | grep -v '^daily.info\$'); } >$(q "$bd/new.cld")"
        } >"$f"
    }
    check_dir="python3 $(q "$here/gen.py") dir-members $(q "$bd/w") | diff -q - $(q "$data/daily-$V.members") >/dev/null"
    # The slow baselines run without a warm-up: their files are in the page cache
    # already (the rows above read them), and a warm-up would add minutes.
    MEASURE_WARMUP=0
    if command -v sigtool >/dev/null; then
        clamav_steps "$bd/steps1.sh" "$LOCAL1" "${CDIFF1[@]}"
        measure clamav.cdiff1 --check "$check_dir" -- sh "$bd/steps1.sh" || true
        clamav_steps "$bd/steps30.sh" "$LOCAL30" "${CDIFF30[@]}"
        measure clamav.cdiff30 --check "$check_dir" -- sh "$bd/steps30.sh" || true
    else
        skip clamav.cdiff1 "sigtool is not installed (Debian package clamav)"
        skip clamav.cdiff30 "sigtool is not installed (Debian package clamav)"
    fi
    measure clamav.loadtest --env "LD_PRELOAD=$SHIM" -- "$tools/loadtest" "$CURRENT" || true
    measure clamav.loadtest_compile --env "LD_PRELOAD=$SHIM" -- "$tools/loadtest" --compile "$CURRENT" || true
    # freshclam itself (Debian's 1.4), with the same shim, on the same mirror and
    # data: the whole update as ClamAV does it, download and install included.
    if command -v freshclam >/dev/null; then
        fd=$bd/freshclam
        mkdir -p "$fd"
        for t in no yes; do
            {
                echo "DatabaseDirectory $fd/db"
                echo "DatabaseOwner $(id -un)"
                echo "DatabaseMirror $MIRROR"
                echo "LogTime no"
                echo "MaxAttempts 1"
                echo "TestDatabases $t"
            } >"$fd/$t.conf"
        done
        fc=(freshclam --no-dns --quiet --update-db=daily)
        reset_to() { echo "rm -rf $(q "$fd/db") && mkdir $(q "$fd/db") && cp $(q "$1") $(q "$fd/db/daily.cld") && sync $(q "$fd/db/daily.cld")"; }
        measure freshclam.cdiff1 --env "LD_PRELOAD=$SHIM" --prepare "$(reset_to "$LOCAL1")" \
            --check "$(check_db "$fd/db" daily "$data/daily-$V.members")" -- "${fc[@]}" --config-file="$fd/no.conf" || true
        measure freshclam.cdiff30 --env "LD_PRELOAD=$SHIM" --prepare "$(reset_to "$LOCAL30")" \
            --check "$(check_db "$fd/db" daily "$data/daily-$V.members")" -- "${fc[@]}" --config-file="$fd/no.conf" || true
        measure freshclam.cdiff1_test --env "LD_PRELOAD=$SHIM" --prepare "$(reset_to "$LOCAL1")" \
            --check "$(check_db "$fd/db" daily "$data/daily-$V.members")" -- "${fc[@]}" --config-file="$fd/yes.conf" || true
        measure freshclam.main --env "LD_PRELOAD=$SHIM" --prepare "rm -rf $(q "$fd/db") && mkdir $(q "$fd/db") && sync" \
            --check "$(check_db "$fd/db" main "$data/main-$MAIN_V.members")" \
            -- freshclam --no-dns --quiet --update-db=main --config-file="$fd/no.conf" || true
        rm -rf "$fd/db"
    else
        for k in cdiff1 cdiff30 cdiff1_test main; do skip "freshclam.$k" "freshclam is not installed (Debian package clamav-freshclam)"; done
    fi

    MEASURE_WARMUP=$WARMUP
    measure floor.cp_sync --prepare "rm -f $(q "$bd/copy.cld")" \
        -- sh -c "cp $(q "$CURRENT") $(q "$bd/copy.cld") && sync $(q "$bd/copy.cld")" || true
    measure floor.sha256 -- openssl dgst -sha256 "$CURRENT" || true
    # For the up-to-date row: starting any program linked with Debian's libcurl
    # (whose dependencies - GnuTLS, Kerberos, LDAP, ... - are loaded and relocated).
    measure floor.curl_start -- curl --version || true
    measure main.untar --prepare "rm -rf $(q "$bd/m") && mkdir $(q "$bd/m")" \
        -- sh -c "tail -c +513 $(q "$data/www/main-$MAIN_V.cvd") | gunzip | tar -x -C $(q "$bd/m")" || true
    rm -rf "$bd/m" "$bd/w" "$bd/new.cld" "$bd/copy.cld"
fi

# ---------------------------------------------------------------- report
commit_of() {
    local bin=$1 dir src
    dir=$(dirname "$bin")
    src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$dir/CMakeCache.txt" 2>/dev/null || true)
    if [ -n "$src" ] && git -C "$src" rev-parse --short HEAD >/dev/null 2>&1; then
        echo "$(git -C "$src" rev-parse --short HEAD)$(git -C "$src" diff --quiet HEAD -- 2>/dev/null || echo '+dirty') ($src)"
    else
        echo "unknown (not built from a git tree)"
    fi
}
{
    echo "scale=$SCALE"
    echo "runs=$RUNS"
    echo "warmup=$WARMUP"
    echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "nproc=$(nproc)"
    echo "memory=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "load_start=$LOAD_START"
    echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "new_bin=$CLAMFRESH"
    echo "new_commit=$(commit_of "$CLAMFRESH")"
    if [ -n "${BASE_CLAMFRESH:-}" ]; then
        echo "base_bin=$BASE_CLAMFRESH"
        echo "base_commit=$(commit_of "$BASE_CLAMFRESH")"
    fi
    echo "daily_version=$V"
    echo "daily_lines=$(cat "$data/daily.lines")"
    echo "daily_bytes=$(cat "$data/daily.bytes")"
    echo "daily_members=$(wc -l <"$data/daily-$V.members")"
    echo "daily_cvd=$(stat -c %s "$data/www/daily-$V.cvd")"
    echo "daily_cld=$(stat -c %s "$CURRENT")"
    echo "cdiff_bytes=$(cat "${CDIFF30[@]}" | wc -c)"
    echo "main_lines=$(cat "$data/main.lines")"
    echo "main_bytes=$(cat "$data/main.bytes")"
    echo "main_cvd=$(stat -c %s "$data/www/main-$MAIN_V.cvd")"
    echo "mirror=$MIRROR_KIND"
    echo "elapsed=$(($(date +%s) - T0))"
} >"$res/meta"
python3 "$here/report.py" "$res" "$RESULTS"
say "written to $RESULTS"
