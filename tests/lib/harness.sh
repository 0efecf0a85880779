# shellcheck shell=bash
# End-to-end test harness. Every tests/scripts/test_*.sh sources this file:
#
#   . "$CF_SOURCE_DIR/tests/lib/harness.sh"     (or a path relative to the script)
#
# It starts real servers on loopback (test mirror, nginx cache, dnsmasq in a
# private network namespace, clamd), remembers every PID, namespace and
# directory, and one EXIT trap stops and removes all of them, also when a test
# fails or is interrupted. The trap prints "N passed, M failed" and sets the
# exit status: 1 when an assertion failed, 77 when the test was skipped
# (ctest's SKIP_RETURN_CODE), otherwise the script's own status.
#
# Regexes in the cf_expect_* helpers are Perl-compatible (grep -P), close to the
# Python regexes of freshclam's own test suite (freshclam-behavior.md §10.1).
#
# Environment: CLAMFRESH, CVDTOOL, CF_VECTORS, CF_SOURCE_DIR, CF_BINARY_DIR
# (set by ctest); CF_KEEP=1 keeps the temporary files for inspection.
# CF_LABEL, when set (fixtures.sh sets it to the fixture set), prefixes every
# check's line, so a failure says which variant it belongs to.

if [ -n "${CF__HARNESS_LOADED:-}" ]; then
    return 0
fi
CF__HARNESS_LOADED=1

: "${CF_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${CF_VECTORS:=$CF_SOURCE_DIR/../shared/vectors}"
export CF_SOURCE_DIR CF_VECTORS

CF__PASS=0
CF__FAIL=0
CF__NCHECK=0
CF__PIDS=()
CF__NETNS=()
CF__SKIPPED=0
# One private base directory per test script; short, so Unix socket paths stay
# far below the 108-byte limit.
CF__BASE=$(mktemp -d "${TMPDIR:-/tmp}/cfh.XXXXXX") || {
    echo "harness: cannot create a temporary directory" >&2
    exit 1
}
chmod 755 "$CF__BASE"
CF__SEQ=0
CF_OUT="$CF__BASE/stdout"
CF_ERR="$CF__BASE/stderr"
CF_LAST_EXIT=
: >"$CF_OUT"
: >"$CF_ERR"

# ---------------------------------------------------------------- reporting

cf__say() { printf '%s\n' "$*"; }

cf_pass() {
    CF__NCHECK=$((CF__NCHECK + 1))
    CF__PASS=$((CF__PASS + 1))
    cf__say "ok $CF__NCHECK - ${CF_LABEL:+[$CF_LABEL] }$*"
}

# cf_fail MSG: records a failed assertion (the test goes on).
cf_fail() {
    CF__NCHECK=$((CF__NCHECK + 1))
    CF__FAIL=$((CF__FAIL + 1))
    cf__say "not ok $CF__NCHECK - ${CF_LABEL:+[$CF_LABEL] }$*"
}

# cf_skip MSG: the test cannot run here; exit 77 (after clean-up).
cf_skip() {
    cf__say "SKIP: $*"
    CF__SKIPPED=1
    exit 77
}

# cf_abort MSG: the test cannot go on (a server did not start): fail and stop.
cf_abort() {
    cf_fail "$*"
    exit 1
}

cf_is_root() { [ "$(id -u)" = 0 ]; }

cf_have_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || return 1
    done
}

cf_require_root() {
    cf_is_root || cf_skip "needs root (network namespaces, dnsmasq on port 53)"
}

# cf_require_cmd CMD...: skip unless every command exists.
# Compiler flags a test program linked against the core library needs: the
# sanitizers' when the build under test has them (CF_SANITIZE=ON).
cf_core_cflags() {
    if grep -q '^CF_SANITIZE:BOOL=ON' "$CF_BINARY_DIR/CMakeCache.txt" 2>/dev/null; then
        echo "-fsanitize=address,undefined"
    fi
}

cf_require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || cf_skip "command not found: $c"
    done
}

# ---------------------------------------------------------------- clean-up

cf__stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        # a zombie child of ours counts as gone once reaped
        if [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ]; then
            break
        fi
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# cf_stop PID: stops one server started by the harness (TERM, then KILL).
cf_stop() {
    local pid=$1 i
    cf__stop_pid "$pid"
    for i in "${!CF__PIDS[@]}"; do
        [ "${CF__PIDS[$i]}" = "$pid" ] && unset "CF__PIDS[$i]"
    done
    return 0
}

cf__cleanup() {
    local rc=$? pid ns
    trap - EXIT INT TERM HUP
    for pid in "${CF__PIDS[@]}"; do
        cf__stop_pid "$pid"
    done
    for ns in "${CF__NETNS[@]}"; do
        # anything still running in the namespace was started by this test
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    if [ "${CF_KEEP:-0}" = 1 ]; then
        cf__say "kept $CF__BASE"
    else
        rm -rf "$CF__BASE"
    fi
    echo "$CF__PASS passed, $CF__FAIL failed"
    if [ "$CF__FAIL" -gt 0 ]; then
        exit 1
    fi
    if [ "$CF__SKIPPED" = 1 ]; then
        exit 77
    fi
    exit "$rc"
}
trap cf__cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------- files and processes

# cf_tmpdir [VAR]: creates a private directory (removed at exit) and stores its
# path in VAR (default CF_TMP). Not meant for $(...): it must run in this shell.
cf_tmpdir() {
    local var=${1:-CF_TMP} d
    CF__SEQ=$((CF__SEQ + 1))
    d="$CF__BASE/t$CF__SEQ"
    mkdir -m 755 "$d" || cf_abort "cannot create $d"
    printf -v "$var" '%s' "$d"
}

# Runs a command in the test namespace when CF_SERVE_IN_NETNS=1.
cf__ns() {
    if [ "${CF_SERVE_IN_NETNS:-0}" = 1 ]; then
        [ -n "${CF_NETNS:-}" ] || cf_abort "CF_SERVE_IN_NETNS=1 but no namespace (cf_netns_create)"
        ip netns exec "$CF_NETNS" "$@"
    else
        "$@"
    fi
}

# cf__bg LOGFILE CMD...: starts CMD in the background (in the namespace when
# CF_SERVE_IN_NETNS=1), records its PID in CF__LASTPID.
cf__bg() {
    local log=$1
    shift
    if [ "${CF_SERVE_IN_NETNS:-0}" = 1 ]; then
        [ -n "${CF_NETNS:-}" ] || cf_abort "CF_SERVE_IN_NETNS=1 but no namespace (cf_netns_create)"
        # ip netns exec execs the command, so $! is the server itself
        ip netns exec "$CF_NETNS" "$@" </dev/null >>"$log" 2>&1 &
    else
        "$@" </dev/null >>"$log" 2>&1 &
    fi
    CF__LASTPID=$!
    CF__PIDS+=("$CF__LASTPID")
}

# cf_wait_log FILE REGEX TIMEOUT_S: waits until FILE has a line matching REGEX.
cf_wait_log() {
    local file=$1 re=$2 timeout=${3:-10} end
    end=$((SECONDS + timeout))
    while [ "$SECONDS" -le "$end" ]; do
        if [ -f "$file" ] && grep -qP -- "$re" "$file" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Waits until a TCP port accepts connections (in the serving namespace).
cf__wait_port() {
    local port=$1 timeout=${2:-10} pid=${3:-} end
    end=$((SECONDS + timeout))
    while [ "$SECONDS" -le "$end" ]; do
        if cf__ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# A TCP port that was free a moment ago (nginx and clamd cannot report the port
# they chose, so callers retry when the bind fails).
cf__free_port() {
    cf__ns python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- test mirror

# cf_start_mirror ROOT [mirror.py args...]: serves ROOT with tests/servers/mirror.py.
# Sets MIRROR_URL (http://127.0.0.1:PORT), MIRROR_PORT, MIRROR_LOG (JSON lines,
# one per request), MIRROR_PID.
cf_start_mirror() {
    local root=$1 dir
    shift
    local py="$CF_SOURCE_DIR/tests/servers/mirror.py"
    [ -f "$py" ] || cf_abort "mirror not found: $py"
    cf_tmpdir dir
    MIRROR_LOG="$dir/requests.jsonl"
    : >"$MIRROR_LOG"
    cf__bg "$dir/mirror.err" python3 "$py" --root "$root" --port-file "$dir/port" \
        --log "$MIRROR_LOG" "$@"
    MIRROR_PID=$CF__LASTPID
    local end=$((SECONDS + 15))
    while [ ! -s "$dir/port" ]; do
        kill -0 "$MIRROR_PID" 2>/dev/null || {
            cat "$dir/mirror.err" >&2
            cf_abort "mirror exited before listening"
        }
        [ "$SECONDS" -le "$end" ] || cf_abort "mirror did not publish its port"
        sleep 0.05
    done
    MIRROR_PORT=$(tr -dc 0-9 <"$dir/port")
    MIRROR_URL="http://127.0.0.1:$MIRROR_PORT"
    export MIRROR_URL MIRROR_LOG MIRROR_PORT MIRROR_PID
}

# cf_mirror_count REGEX: number of mirror log lines matching REGEX.
cf_mirror_count() {
    grep -cP -- "$1" "$MIRROR_LOG" 2>/dev/null || true
}

# ---------------------------------------------------------------- nginx cache

# cf_start_nginx_cache UPSTREAM_URL [LOCATION_LINES]: nginx as a caching
# reverse proxy that caches 200/206 for 30 days whatever the upstream says
# (TESTING.md), with an X-Cache-Status header (HIT/MISS); LOCATION_LINES are
# added to its location block. Its access log has CF_NGINX_LOG_FORMAT. Sets
# PROXY_URL, PROXY_PORT, PROXY_DIR, PROXY_LOG (access log), PROXY_PID.
cf_start_nginx_cache() {
    local upstream=${1%/} extra=${2:-}
    cf_start_nginx_site \
        "    proxy_cache_path @DIR@/cache levels=1:2 keys_zone=fc:1m max_size=200m inactive=30d use_temp_path=off;" \
        "        location / {
            proxy_pass $upstream;
            proxy_cache fc;
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
            proxy_cache_valid 200 206 30d;
            add_header X-Cache-Status \$upstream_cache_status always;
$extra
        }"
    PROXY_URL=$NGINX_URL
    PROXY_PORT=$NGINX_PORT
    PROXY_DIR=$NGINX_DIR
    PROXY_LOG=$NGINX_LOG
    PROXY_PID=$NGINX_PID
    export PROXY_URL PROXY_PORT PROXY_DIR PROXY_LOG PROXY_PID
}

# ---------------------------------------------------------------- network namespace and DNS

# cf_netns_create: a private network namespace (name unique per test) with lo up
# and its own resolv.conf pointing at 127.0.0.1. Sets CF_NETNS. Skips the test
# when namespaces are unavailable.
cf_netns_create() {
    cf_is_root || cf_skip "network namespaces need root"
    cf_have_cmd ip || cf_skip "ip not found (Debian package iproute2)"
    local ns
    ns="cf$$x$RANDOM"
    ip netns add "$ns" 2>"$CF__BASE/netns.err" || {
        cat "$CF__BASE/netns.err" >&2
        cf_skip "cannot create a network namespace here"
    }
    CF__NETNS+=("$ns")
    CF_NETNS=$ns
    export CF_NETNS
    ip netns exec "$ns" ip link set lo up || cf_abort "cannot bring up lo in $ns"
    mkdir -p "/etc/netns/$ns"
    echo 'nameserver 127.0.0.1' >"/etc/netns/$ns/resolv.conf"
    # c-ares and glibc also read these; keep them minimal and inside the namespace
    printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$ns/hosts"
}

# cf_netns_exec CMD...: runs CMD inside the test namespace (which sees its own
# resolv.conf). Works with functions' callers: cf_expect_exit 0 cf_netns_exec ...
cf_netns_exec() {
    [ -n "${CF_NETNS:-}" ] || cf_abort "cf_netns_exec without cf_netns_create"
    ip netns exec "$CF_NETNS" "$@"
}

# cf_txt_now VERSIONS...: a current.cvd.clamav.net-style record with the current time,
# e.g. cf_txt_now 1.4.6 62 27830 -> "1.4.6:62:27830:<now>:1:90:49192:339".
cf_txt_now() {
    printf '%s:%s:%s:%s:1:90:49192:339' "${1:-1.4.6}" "${2:-62}" "${3:-27830}" "$(date +%s)"
}

# cf_start_dnsmasq_txt NAME=VALUE...: dnsmasq on 127.0.0.1:53 inside the test
# namespace (created if needed) answering TXT NAME with VALUE (a comma in VALUE
# starts a new character-string, as in dnsmasq). Sets DNSMASQ_LOG, DNSMASQ_PID.
cf_start_dnsmasq_txt() {
    local arg
    for arg in "$@"; do
        case $arg in
        *=*) ;;
        *) cf_abort "cf_start_dnsmasq_txt: expected NAME=VALUE, got '$arg'" ;;
        esac
    done
    cf_dnsmasq_serve "$@"
}

# ---------------------------------------------------------------- clamd

# cf_start_clamd DBDIR [tcp]: Debian's clamd with a private config: LocalSocket in
# a private directory, or with "tcp" TCPSocket on a free port and TCPAddr
# 127.0.0.1. Waits until it answers PING. Sets CLAMD_CONF, CLAMD_LOG, CLAMD_PID,
# CLAMD_SOCKET (Unix) or CLAMD_PORT (TCP).
cf_start_clamd() {
    local db=$1 mode=${2:-unix} dir port
    cf_have_cmd clamd || [ -x /usr/sbin/clamd ] || cf_skip "clamd not installed (Debian package clamav-daemon)"
    local clamd
    clamd=$(command -v clamd || echo /usr/sbin/clamd)
    cf_tmpdir dir
    mkdir -p "$dir/tmp"
    CLAMD_CONF="$dir/clamd.conf"
    CLAMD_LOG="$dir/clamd.log"
    CLAMD_SOCKET=
    CLAMD_PORT=
    for _ in 1 2 3 4 5; do
        : >"$CLAMD_LOG"
        {
            echo "DatabaseDirectory $db"
            echo "Foreground yes"
            echo "LogFile $CLAMD_LOG"
            echo "LogTime yes"
            echo "PidFile $dir/clamd.pid"
            echo "TemporaryDirectory $dir/tmp"
            if cf_is_root; then echo "User root"; fi
            if [ "$mode" = tcp ]; then
                port=$(cf__free_port)
                echo "TCPSocket $port"
                echo "TCPAddr 127.0.0.1"
            else
                echo "LocalSocket $dir/clamd.sock"
            fi
        } >"$CLAMD_CONF"
        cf__bg "$dir/clamd.out" "$clamd" -c "$CLAMD_CONF"
        CLAMD_PID=$CF__LASTPID
        if [ "$mode" = tcp ]; then
            CLAMD_PORT=$port
        else
            CLAMD_SOCKET="$dir/clamd.sock"
        fi
        local end=$((SECONDS + 90))
        while [ "$SECONDS" -le "$end" ] && kill -0 "$CLAMD_PID" 2>/dev/null; do
            if [ "$(cf_clamd_cmd 'nPING\n' 2>/dev/null)" = PONG ]; then
                export CLAMD_CONF CLAMD_LOG CLAMD_PID CLAMD_SOCKET CLAMD_PORT
                return 0
            fi
            sleep 0.2
        done
        cf_stop "$CLAMD_PID"
        # only a lost race for the TCP port is worth another try
        if [ "$mode" != tcp ] || ! grep -qi 'bind\|in use' "$CLAMD_LOG" "$dir/clamd.out" 2>/dev/null; then
            break
        fi
    done
    cat "$CLAMD_LOG" "$dir/clamd.out" >&2 2>/dev/null
    cf_abort "clamd did not start (config $CLAMD_CONF)"
}

# cf_clamd_cmd BYTES: sends BYTES (printf escapes, e.g. 'RELOAD\0' or 'nPING\n')
# to the clamd started last and prints its answer without the terminator.
cf_clamd_cmd() {
    cf__ns python3 - "$1" "${CLAMD_SOCKET:-}" "${CLAMD_PORT:-}" <<'EOF'
import socket, sys
payload = sys.argv[1].encode("latin-1").decode("unicode_escape").encode("latin-1")
path, port = sys.argv[2], sys.argv[3]
if path:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
else:
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
s.sendall(payload)
out = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        out += b
        if out.endswith(b"\n") or out.endswith(b"\0"):
            break
except socket.timeout:
    pass
sys.stdout.write(out.rstrip(b"\0\n").decode("latin-1"))
EOF
}

# ---------------------------------------------------------------- assertions

# cf_expect_exit CODE CMD...: runs CMD, stdout to $CF_OUT and stderr to $CF_ERR
# (fresh files per call), and checks its exit status. CF_LAST_EXIT holds it.
cf_expect_exit() {
    local want=$1
    shift
    CF__SEQ=$((CF__SEQ + 1))
    CF_OUT="$CF__BASE/out.$CF__SEQ"
    CF_ERR="$CF__BASE/err.$CF__SEQ"
    CF__LASTCMD="$*"
    "$@" >"$CF_OUT" 2>"$CF_ERR"
    CF_LAST_EXIT=$?
    if [ "$CF_LAST_EXIT" = "$want" ]; then
        cf_pass "exit $want: $*"
        return 0
    fi
    cf_fail "exit $CF_LAST_EXIT, expected $want: $*"
    cf__show_output
    return 1
}

cf__show_output() {
    cf__say "---- stdout (last 30 lines) ----"
    tail -n 30 "$CF_OUT" >&2
    cf__say "---- stderr (last 30 lines) ----"
    tail -n 30 "$CF_ERR" >&2
    cf__say "--------------------------------"
}

# cf_expect_out REGEX / cf_expect_err REGEX: the last command's stdout / stderr
# has a match.
cf_expect_out() {
    if grep -qP -- "$1" "$CF_OUT"; then
        cf_pass "stdout matches /$1/"
    else
        cf_fail "stdout does not match /$1/ (${CF__LASTCMD:-})"
        cf__show_output
    fi
}

cf_expect_err() {
    if grep -qP -- "$1" "$CF_ERR"; then
        cf_pass "stderr matches /$1/"
    else
        cf_fail "stderr does not match /$1/ (${CF__LASTCMD:-})"
        cf__show_output
    fi
}

# cf_expect_no REGEX: neither stream of the last command matches.
cf_expect_no() {
    if grep -qP -- "$1" "$CF_OUT" "$CF_ERR"; then
        cf_fail "output matches /$1/ but must not (${CF__LASTCMD:-})"
        grep -nP -- "$1" "$CF_OUT" "$CF_ERR" >&2
    else
        cf_pass "output has no /$1/"
    fi
}

# cf_check DESCRIPTION CMD...: passes when CMD succeeds (its output is not captured).
cf_check() {
    local desc=$1
    shift
    if "$@"; then
        cf_pass "$desc"
    else
        cf_fail "$desc (command: $*)"
    fi
}

# cf_expect_file_match FILE REGEX: FILE has a line matching REGEX.
cf_expect_file_match() {
    if grep -qP -- "$2" "$1" 2>/dev/null; then
        cf_pass "$(basename "$1") matches /$2/"
    else
        cf_fail "$1 does not match /$2/"
        tail -n 20 "$1" >&2 2>/dev/null
    fi
}

# ---------------------------------------------------------------- nginx sites with counted logs

# The access-log format of cf_start_nginx_site, one line per request:
#   METHOD URI "ARGS" STATUS BODY_BYTES CACHE_STATUS
# (CACHE_STATUS is HIT/MISS/... on a caching proxy, "-" elsewhere; empty
# values are logged as "-"). cf_nginx_tally reads it.
CF_NGINX_LOG_FORMAT='$request_method $uri "$args" $status $body_bytes_sent $upstream_cache_status'

# cf_start_nginx_site HTTP_LINES SERVER_LINES: nginx from a private directory
# with one server on a free port of 127.0.0.1 (in the serving namespace when
# CF_SERVE_IN_NETNS=1). HTTP_LINES go into the http block, SERVER_LINES into
# the server block after its listen line; @DIR@ in either is the private
# directory. The access log uses CF_NGINX_LOG_FORMAT. Sets NGINX_URL,
# NGINX_PORT, NGINX_DIR, NGINX_LOG, NGINX_PID.
cf_start_nginx_site() {
    local http_lines=$1 server_lines=$2 dir port user_line=""
    cf_have_cmd nginx || cf_skip "nginx not installed (Debian package nginx-light)"
    cf_tmpdir dir
    mkdir -p "$dir/tmp" "$dir/cache"
    cf_is_root && user_line="user root root;"
    http_lines=${http_lines//@DIR@/$dir}
    server_lines=${server_lines//@DIR@/$dir}
    for _ in 1 2 3 4 5; do
        port=$(cf__free_port)
        cat >"$dir/nginx.conf" <<NGINX
daemon off;
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 512; }
http {
    log_format cf_count '$CF_NGINX_LOG_FORMAT';
    access_log $dir/access.log cf_count;
    include $CF_SOURCE_DIR/tests/lib/nginx-private-temp.conf;
    keepalive_requests 10000;
$http_lines
    server {
        listen 127.0.0.1:$port;
$server_lines
    }
}
NGINX
        : >"$dir/access.log"
        cf__bg "$dir/nginx.out" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
        NGINX_PID=$CF__LASTPID
        if cf__wait_port "$port" 10 "$NGINX_PID"; then
            NGINX_PORT=$port
            NGINX_URL="http://127.0.0.1:$port"
            NGINX_DIR=$dir
            NGINX_LOG="$dir/access.log"
            return 0
        fi
        cf_stop "$NGINX_PID"
        grep -q 'Address already in use' "$dir/error.log" "$dir/nginx.out" 2>/dev/null || break
    done
    cat "$dir/error.log" "$dir/nginx.out" >&2 2>/dev/null
    cf_abort "nginx did not start (config $dir/nginx.conf)"
}

# cf_start_nginx_origin DIR: nginx serving a mirror directory made by
# `clamfresh --mirror=DIR`, with the snippet that mirror mode wrote there
# (nginx-clamfresh-mirror.conf) included in its server block. Sets ORIGIN_URL,
# ORIGIN_LOG, ORIGIN_PID.
cf_start_nginx_origin() {
    local root=$1
    [ -s "$root/nginx-clamfresh-mirror.conf" ] || cf_abort "no nginx snippet in $root (run the mirror first)"
    cf_start_nginx_site "" "        root $root;
        include $root/nginx-clamfresh-mirror.conf;"
    ORIGIN_URL=$NGINX_URL
    ORIGIN_LOG=$NGINX_LOG
    ORIGIN_PID=$NGINX_PID
    export ORIGIN_URL ORIGIN_LOG ORIGIN_PID
}

# cf_start_nginx_shared_cache UPSTREAM_URL: the caching proxy of
# cf_start_nginx_cache (200/206 kept 30 days whatever the upstream says) with
# proxy_cache_lock on, so that simultaneous misses of one name make one
# upstream request, as a site proxy in front of a fleet does, and byte ranges
# served from the cache also when the upstream does not announce them
# (tests/servers/mirror.py sends no Accept-Ranges); its access log
# has CF_NGINX_LOG_FORMAT (with the cache status). Sets PROXY_URL, PROXY_PORT,
# PROXY_DIR, PROXY_LOG, PROXY_PID.
cf_start_nginx_shared_cache() {
    cf_start_nginx_cache "$1" "            proxy_cache_lock on;
            proxy_cache_lock_timeout 60s;
            proxy_force_ranges on;"
}

# cf_nginx_lines LOG: number of lines in an access log (an offset for cf_nginx_tally).
cf_nginx_lines() {
    if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

# cf_nginx_tally LOG [FROM [TO]]: counts the requests of a CF_NGINX_LOG_FORMAT
# log after line FROM (default 0) up to line TO (default: the end) and prints
# "REQUESTS BULK_BYTES ALL_BYTES HITS": BULK_BYTES are the body bytes of 2xx
# answers for databases, patches and signatures (*.cvd, *.cld, *.cdiff,
# *.sign), the bytes a cache is there to save.
cf_nginx_tally() {
    local log=$1 from=${2:-0} to=${3:-}
    [ -n "$to" ] || to=$(cf_nginx_lines "$log")
    awk -v from="$from" -v to="$to" '
        NR > from && NR <= to {
            n++; all += $5
            if ($4 ~ /^2/ && $2 ~ /\.(cvd|cld|cdiff|sign)$/) bulk += $5
            if ($6 == "HIT") hits++
        }
        END { printf "%d %d %d %d\n", n, bulk, all, hits }' "$log"
}

# ---------------------------------------------------------------- DNS that changes

# cf_dnsmasq_serve RECORD...: (re)starts the namespace's dnsmasq (created with
# the namespace when needed) so that it answers exactly RECORDs: NAME=VALUE is a
# TXT record as in cf_start_dnsmasq_txt, NAME@ADDRESS an A record. A dnsmasq
# started earlier by this function is stopped first, so a test can publish new
# records between rounds. Sets DNSMASQ_LOG, DNSMASQ_PID.
cf_dnsmasq_serve() {
    cf_have_cmd dnsmasq || cf_skip "dnsmasq not installed (Debian package dnsmasq-base)"
    [ -n "${CF_NETNS:-}" ] || cf_netns_create
    local dir arg args=() end
    if [ -n "${CF__DNSMASQ_SERVED:-}" ]; then
        cf_stop "$CF__DNSMASQ_SERVED"
        CF__DNSMASQ_SERVED=
    fi
    cf_tmpdir dir
    for arg in "$@"; do
        case $arg in
        *=*) args+=("--txt-record=${arg%%=*},${arg#*=}") ;;
        *@*) args+=("--host-record=${arg%%@*},${arg#*@}") ;;
        *) cf_abort "cf_dnsmasq_serve: expected NAME=TEXT or NAME@ADDRESS, got '$arg'" ;;
        esac
    done
    DNSMASQ_LOG="$dir/dnsmasq.log"
    : >"$DNSMASQ_LOG"
    end=$((SECONDS + 10))
    while :; do
        ip netns exec "$CF_NETNS" dnsmasq --keep-in-foreground --conf-file=/dev/null \
            --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 --port=53 \
            --user=root --group=root --pid-file="$dir/dnsmasq.pid" \
            --log-facility="$DNSMASQ_LOG" --log-queries "${args[@]}" \
            </dev/null >>"$dir/dnsmasq.out" 2>&1 &
        DNSMASQ_PID=$!
        CF__PIDS+=("$DNSMASQ_PID")
        cf_wait_log "$DNSMASQ_LOG" 'started, version' 5 && break
        cf_stop "$DNSMASQ_PID"
        # the previous instance's socket may linger for a moment
        if [ "$SECONDS" -gt "$end" ]; then
            cat "$dir/dnsmasq.out" "$DNSMASQ_LOG" >&2
            cf_abort "dnsmasq did not start"
        fi
        sleep 0.2
    done
    CF__DNSMASQ_SERVED=$DNSMASQ_PID
    export DNSMASQ_LOG DNSMASQ_PID
}
