# The product against real servers: bad answers from the mirror leave the old
# database untouched with freshclam's exit codes and a message naming the URL;
# a real clamd reloads the CLD we built (Unix socket and TCP); daemon mode runs
# two cycles and obeys its signals; and, in a private network namespace, a
# DNS-driven update goes around a stale nginx cache by asking cache-proof names.
. "$(dirname "$0")/../lib/harness.sh"

V=$CF_VECTORS/clamav
[ -f "$V/test-1.cvd" ] || cf_skip "ClamAV vectors not present"
[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
export CLAMFRESH_RETRY_DELAY=0

cf_tmpdir CERTS
cp "$V/clamav-test.crt" "$CERTS/"

new_case() { # [extra config lines]
    cf_tmpdir CASE
    DB="$CASE/db"
    WWW="$CASE/www"
    mkdir "$DB" "$WWW"
    cp "$V/test-1.cvd" "$DB/test.cvd"
    cp "$V/test-1.cvd.sign" "$DB/"
    CONF="$CASE/c.conf"
    printf 'DatabaseMirror MIRROR\nDatabaseDirectory %s\nDatabaseOwner %s\n' "$DB" "$(id -un)" >"$CONF"
    [ -n "${1:-}" ] && printf '%b\n' "$1" >>"$CONF"
    return 0
}
use_mirror() { sed -i "s|^DatabaseMirror .*|DatabaseMirror $1|" "$CONF"; }
fc() { cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$CONF" --cvdcertsdir="$CERTS" --update-db=test "${@:2}"; }
old_db_kept() { cf_check "old database kept byte for byte" cmp -s "$V/test-1.cvd" "$DB/test.cvd"; }

# ------------------------------------------------------------- bad inputs
# Two versions behind with no cdiff: the whole database is needed, and the
# versioned name test-3.cvd is the one that misbehaves.
bad_case() { # FAULT_JSON EXPECTED_EXIT [config]
    new_case "${3:-}"
    cp "$V/test-3.cvd" "$WWW/test.cvd.advertised"
    cp "$V/test-3.cvd" "$WWW/test-3.cvd"
    echo "{\"/test-3.cvd\": $1}" >"$CASE/faults"
    cf_start_mirror "$WWW" --advertised-served --faults "$CASE/faults"
    use_mirror "$MIRROR_URL"
    fc "$2"
}
bad_case '{"truncate": 5000}' 7
cf_expect_err "Verification: .*\\Q$MIRROR_URL/test-3.cvd\\E"
cf_expect_err 'Update failed for database: test'
old_db_kept
bad_case '{"empty": true}' 6
cf_expect_err "\\Q$MIRROR_URL/test-3.cvd\\E: the server sent an empty file"
old_db_kept
bad_case '{"html": true}' 7
cf_expect_err "Can't read CVD header of new test.cvd database from \\Q$MIRROR_URL/test-3.cvd\\E"
old_db_kept
bad_case '{"stall_after": 1000}' 5 'ReceiveTimeout 2\nStallTimeout 2\nMaxAttempts 1'
cf_expect_err "\\Q$MIRROR_URL/test-3.cvd\\E"
old_db_kept
new_case
cp "$V/test-3.cvd" "$WWW/test.cvd.advertised"
python3 - "$V/test-3.cvd" "$WWW/test-3.cvd" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[-100] ^= 0x55
open(sys.argv[2], "wb").write(d)
EOF
cf_start_mirror "$WWW" --advertised-served
use_mirror "$MIRROR_URL"
fc 7
cf_expect_err "Verification: .*\\Q$MIRROR_URL/test-3.cvd\\E"
old_db_kept

# ------------------------------------------------------------- clamd reload
if cf_have_cmd clamd || [ -x /usr/sbin/clamd ]; then
    for mode in unix tcp; do
        new_case
        cp "$V/test-3.cvd" "$WWW/test.cvd.advertised"
        cp "$V"/test-2.cdiff* "$V"/test-3.cdiff* "$WWW/"
        cf_start_mirror "$WWW" --advertised-served
        use_mirror "$MIRROR_URL"
        cf_start_clamd "$DB" "$mode"
        echo "NotifyClamd $CLAMD_CONF" >>"$CONF"
        fc 0
        cf_expect_out 'test.cld updated \(version: 3'
        cf_expect_out 'Clamd successfully notified about the update.'
        if cf_wait_log "$CLAMD_LOG" 'Database correctly reloaded' 60; then
            cf_pass "clamd ($mode) reloaded the CLD we built"
        else
            cf_fail "clamd ($mode) did not reload: $(tail -n 5 "$CLAMD_LOG")"
        fi
        # up to date: clamd is not bothered
        fc 0
        cf_expect_no 'Clamd successfully notified'
        cf_stop "$CLAMD_PID"
    done
else
    cf_fail "clamd not installed: the reload test could not run"
fi

# ------------------------------------------------------------- daemon mode
new_case "Checks 24\nUpdateLogFile CASE/fresh.log\nPidFile CASE/fresh.pid"
sed -i "s|CASE|$CASE|g" "$CONF"
cp "$V/test-2.cvd" "$WWW/test.cvd.advertised"
cp "$V"/test-2.cdiff* "$WWW/"
cf_start_mirror "$WWW" --advertised-served
use_mirror "$MIRROR_URL"
CLAMFRESH_DAEMON_INTERVAL=2 "$CLAMFRESH" -d -F --no-dns --config-file="$CONF" --cvdcertsdir="$CERTS" \
    --update-db=test >"$CASE/daemon.out" 2>&1 &
DPID=$!
CF__PIDS+=("$DPID")
cf_check "cycle 1 installs version 2" cf_wait_log "$CASE/fresh.log" 'test.cld updated \(version: 2' 20
cf_check "PID file holds the daemon's PID" bash -c "[ \"\$(cat '$CASE/fresh.pid')\" = $DPID ]"
cp "$V/test-3.cvd" "$WWW/test.cvd.advertised"
cp "$V"/test-3.cdiff* "$WWW/"
cf_check "cycle 2 (after the interval) installs version 3" cf_wait_log "$CASE/fresh.log" 'test.cld updated \(version: 3' 20
kill -USR1 "$DPID"
cf_check "SIGUSR1 wakes it" cf_wait_log "$CASE/fresh.log" 'Received signal: wake up' 10
kill -HUP "$DPID"
cf_check "SIGHUP reopens the log" cf_wait_log "$CASE/fresh.log" 'Received signal: re-opening log file' 10
sleep 0.5
kill -TERM "$DPID"
wait "$DPID"
cf_check "SIGTERM: exit 0" test $? = 0
cf_expect_file_match "$CASE/fresh.log" 'Update process terminated'
cf_check "PID file removed" test ! -e "$CASE/fresh.pid"

# ------------------------------------------- DNS + stale cache in a namespace
if cf_is_root && cf_have_cmd ip dnsmasq nginx; then
    new_case
    cf_netns_create
    export CF_SERVE_IN_NETNS=1
    cp "$V/test-1.cvd" "$WWW/test.cvd"
    cf_start_mirror "$WWW"
    cf_start_nginx_cache "$MIRROR_URL"
    fetch() { cf_netns_exec python3 -c 'import sys,urllib.request;sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read()[:512])' "$1"; }
    fetch "$PROXY_URL/test.cvd" >/dev/null # the cache now holds version 1
    cp "$V/test-3.cvd" "$WWW/test.cvd"
    cp "$V/test-3.cvd.sign" "$WWW/"
    cf_check "the cache serves the stale test.cvd" bash -c "[ \"\$(fetch_out=\$(ip netns exec $CF_NETNS python3 -c 'import urllib.request;print(urllib.request.urlopen(\"$PROXY_URL/test.cvd\").read()[:512].split(b\":\")[2].decode())'); echo \$fetch_out)\" = 1 ]"
    cf_start_dnsmasq_txt "current.cvd.clamav.net=$(cf_txt_now 1.4.6 62 27830)" "test.cvd.clamav.net=3:$(date +%s)"
    rm -f "$DB/test.cvd" "$DB/test-1.cvd.sign"
    use_mirror "$PROXY_URL"
    cf_expect_exit 0 cf_netns_exec "$CLAMFRESH" --config-file="$CONF" --cvdcertsdir="$CERTS" --update-db=test
    cf_expect_out 'test.cvd updated \(version: 3'
    cf_expect_no 'Trying to retrieve CVD header'
    cf_check "installed version 3 despite the stale cache" bash -c "[ \"\$(head -c 512 '$DB/test.cvd' | cut -d: -f3)\" = 3 ]"
    cf_check "asked the cache-busting name" grep -q 'version=3' "$MIRROR_LOG"
    before=$(wc -l <"$MIRROR_LOG")
    cf_expect_exit 0 cf_netns_exec "$CLAMFRESH" --config-file="$CONF" --cvdcertsdir="$CERTS" --update-db=test
    cf_expect_out 'test.cvd database is up-to-date \(version: 3'
    cf_check "up to date by DNS: no request reached the mirror" test "$(wc -l <"$MIRROR_LOG")" = "$before"
    export CF_SERVE_IN_NETNS=0
fi
