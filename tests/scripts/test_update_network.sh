#!/usr/bin/env bash
# The product against real servers: bad answers from the mirror leave the old
# database untouched with freshclam's exit codes and a message naming the URL;
# a real clamd reloads what clamfresh installed (Unix socket and TCP); daemon
# mode runs two cycles and obeys its signals; and, in a private network
# namespace, a DNS-driven update goes around a stale nginx cache by asking
# cache-proof names.
#
# Everything runs on every fixture set (tests/lib/fixtures.sh): always on
# databases made here (trusted with --trust-key and --cvdcertsdir), and again on
# the ClamAV-signed vectors when present. clamd loads only ClamAV-signed CVDs and
# CLDs, so on the own set its reload is shown with a database it can load: a
# one-line hash database that clamfresh updates through DatabaseCustomURL.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
export CLAMFRESH_RETRY_DELAY=0
unset CVD_CERTS_DIR

new_case() { # [extra config lines]
    cf_tmpdir CASE
    DB="$CASE/db"
    WWW="$CASE/www"
    mkdir "$DB" "$WWW"
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    cp "$FX/test-1.cvd.sign" "$DB/"
    CONF="$CASE/c.conf"
    printf 'DatabaseMirror MIRROR\nDatabaseDirectory %s\nDatabaseOwner %s\n' "$DB" "$(id -un)" >"$CONF"
    cf_fixtures_conf_loadtest >>"$CONF"
    [ -n "${1:-}" ] && printf '%b\n' "$1" >>"$CONF"
    return 0
}
use_mirror() { sed -i "s|^DatabaseMirror .*|DatabaseMirror $1|" "$CONF"; }
fc() { cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test "${@:2}"; }
old_db_kept() { cf_check "old database kept byte for byte" cmp -s "$FX/test-1.cvd" "$DB/test.cvd"; }

# ------------------------------------------------------------- bad inputs
# Two versions behind with no cdiff: the whole database is needed, and the
# versioned name test-3.cvd is the one that misbehaves.
bad_case() { # FAULT_JSON EXPECTED_EXIT [config]
    new_case "${3:-}"
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    cp "$FX/test-3.cvd" "$WWW/test-3.cvd"
    echo "{\"/test-3.cvd\": $1}" >"$CASE/faults"
    cf_start_mirror "$WWW" --advertised-served --faults "$CASE/faults"
    use_mirror "$MIRROR_URL"
    fc "$2"
}
bad_inputs() {
    bad_case '{"truncate": 5000}' 7
    cf_expect_err "Verification: .*\\Q$MIRROR_URL/test-3.cvd\\E"
    cf_expect_err 'Update failed for database: test'
    old_db_kept
    cf_stop "$MIRROR_PID"
    bad_case '{"empty": true}' 6
    cf_expect_err "\\Q$MIRROR_URL/test-3.cvd\\E: the server sent an empty file"
    old_db_kept
    cf_stop "$MIRROR_PID"
    bad_case '{"html": true}' 7
    cf_expect_err "Can't read CVD header of new test.cvd database from \\Q$MIRROR_URL/test-3.cvd\\E"
    old_db_kept
    cf_stop "$MIRROR_PID"
    bad_case '{"stall_after": 1000}' 5 'ReceiveTimeout 2\nStallTimeout 2\nMaxAttempts 1'
    cf_expect_err "\\Q$MIRROR_URL/test-3.cvd\\E"
    old_db_kept
    cf_stop "$MIRROR_PID"
    new_case
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    python3 - "$FX/test-3.cvd" "$WWW/test-3.cvd" <<'EOF'
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
    cf_stop "$MIRROR_PID"
}

# ------------------------------------------------------------- clamd reload
have_clamd() { cf_have_cmd clamd || [ -x /usr/sbin/clamd ]; }

# The vectors: clamd reloads the CLD clamfresh built from ClamAV's cdiffs.
clamd_reload_vectors() {
    local mode
    for mode in unix tcp; do
        new_case
        cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
        cp "$FX"/test-2.cdiff* "$FX"/test-3.cdiff* "$WWW/"
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
        cf_stop "$MIRROR_PID"
    done
}

# The own set: clamd would refuse a CVD/CLD signed by our key, so it watches a
# hash database that clamfresh replaces (DatabaseCustomURL file://). It starts
# with a placeholder signature; after the notification it must know EICAR's
# hash, which only the updated file carries.
clamd_reload_own() {
    local mode src ans
    for mode in unix tcp; do
        cf_tmpdir CASE
        DB="$CASE/db"
        src="$CASE/src"
        mkdir "$DB" "$src"
        echo '0123456789abcdef0123456789abcdef:1:Cf.Placeholder' >"$DB/cf.hdb"
        touch -d '-1 hour' "$DB/cf.hdb"
        echo '44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature' >"$src/cf.hdb"
        # newer than the placeholder, older than the copy clamfresh makes, which
        # must be strictly newer for the second run to find it up to date (§4.9)
        touch -d '-10 min' "$src/cf.hdb"
        printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$CASE/eicar.txt"
        cf_start_clamd "$DB" "$mode"
        CONF="$CASE/c.conf"
        cat >"$CONF" <<EOF
DatabaseMirror http://127.0.0.1:9
DatabaseDirectory $DB
DatabaseOwner $(id -un)
DatabaseCustomURL file://$src/cf.hdb
ExcludeDatabase daily
ExcludeDatabase main
ExcludeDatabase bytecode
NotifyClamd $CLAMD_CONF
EOF
        ans=$(cf_clamd_cmd "nSCAN $CASE/eicar.txt\\n")
        cf_check "clamd ($mode) does not know EICAR before the update (answer: $ans)" test "$ans" = "$CASE/eicar.txt: OK"
        cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$CONF"
        cf_expect_out 'cf.hdb updated \(version: custom database, sigs: 1\)'
        cf_expect_out 'Clamd successfully notified about the update.'
        cf_check "clamd ($mode) reloaded the updated hash database" \
            cf_wait_log "$CLAMD_LOG" 'Database correctly reloaded \(1 signatures\)' 60
        ans=$(cf_clamd_cmd "nSCAN $CASE/eicar.txt\\n")
        cf_check "clamd ($mode) detects with the signature clamfresh installed (answer: $ans)" \
            test "$ans" = "$CASE/eicar.txt: Eicar-Test-Signature.UNOFFICIAL FOUND"
        # up to date: clamd is not bothered
        cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$CONF"
        cf_expect_out 'cf.hdb is up-to-date'
        cf_expect_no 'Clamd successfully notified'
        cf_stop "$CLAMD_PID"
    done
}

# ------------------------------------------------------------- daemon mode
daemon_cycles() {
    new_case "Checks 24\nUpdateLogFile CASE/fresh.log\nPidFile CASE/fresh.pid"
    sed -i "s|CASE|$CASE|g" "$CONF"
    cp "$FX/test-2.cvd" "$WWW/test.cvd.advertised"
    cp "$FX"/test-2.cdiff* "$WWW/"
    cf_start_mirror "$WWW" --advertised-served
    use_mirror "$MIRROR_URL"
    CLAMFRESH_DAEMON_INTERVAL=2 "$CLAMFRESH" -d -F --no-dns --config-file="$CONF" "${FX_ARGS[@]}" \
        --update-db=test >"$CASE/daemon.out" 2>&1 &
    local dpid=$!
    CF__PIDS+=("$dpid")
    cf_check "cycle 1 installs version 2" cf_wait_log "$CASE/fresh.log" 'test.cld updated \(version: 2' 20
    cf_check "PID file holds the daemon's PID" bash -c "[ \"\$(cat '$CASE/fresh.pid')\" = $dpid ]"
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    cp "$FX"/test-3.cdiff* "$WWW/"
    cf_check "cycle 2 (after the interval) installs version 3" cf_wait_log "$CASE/fresh.log" 'test.cld updated \(version: 3' 20
    kill -USR1 "$dpid"
    cf_check "SIGUSR1 wakes it" cf_wait_log "$CASE/fresh.log" 'Received signal: wake up' 10
    kill -HUP "$dpid"
    cf_check "SIGHUP reopens the log" cf_wait_log "$CASE/fresh.log" 'Received signal: re-opening log file' 10
    sleep 0.5
    kill -TERM "$dpid"
    wait "$dpid"
    cf_check "SIGTERM: exit 0" test $? = 0
    cf_expect_file_match "$CASE/fresh.log" 'Update process terminated'
    cf_check "PID file removed" test ! -e "$CASE/fresh.pid"
    cf_check "the result verifies on the set's trust" cf_fixtures_verify "$DB/test.cld"
    cf_stop "$MIRROR_PID"
}

# ------------------------------------------- DNS + stale cache in a namespace
dns_stale_cache() {
    new_case
    cf_netns_create
    export CF_SERVE_IN_NETNS=1
    cp "$FX/test-1.cvd" "$WWW/test.cvd"
    cf_start_mirror "$WWW"
    cf_start_nginx_cache "$MIRROR_URL"
    # the cache now holds version 1
    cf_netns_exec python3 -c 'import sys,urllib.request;urllib.request.urlopen(sys.argv[1]).read()' \
        "$PROXY_URL/test.cvd"
    cp "$FX/test-3.cvd" "$WWW/test.cvd"
    cp "$FX/test-3.cvd.sign" "$WWW/"
    local cached
    cached=$(cf_netns_exec python3 -c 'import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1]).read()[:512].split(b":")[2].decode())' "$PROXY_URL/test.cvd")
    cf_check "the cache serves the stale test.cvd (version $cached)" test "$cached" = 1
    cf_start_dnsmasq_txt "current.cvd.clamav.net=$(cf_txt_now 1.4.6 62 27830)" "test.cvd.clamav.net=3:$(date +%s)"
    rm -f "$DB/test.cvd" "$DB/test-1.cvd.sign"
    use_mirror "$PROXY_URL"
    # The dynamic loader's log of the files it maps: libcurl is opened at the
    # first request and never by a run that sends none.
    local ld=$CASE/ld
    cf_expect_exit 0 cf_netns_exec env LD_DEBUG=files LD_DEBUG_OUTPUT="$ld-update" \
        "$CLAMFRESH" --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test
    cf_expect_out 'test.cvd updated \(version: 3'
    cf_check "libcurl was opened for the download" grep -qs 'file=libcurl' "$ld-update".*
    cf_expect_no 'Trying to retrieve CVD header'
    cf_check "installed version 3 despite the stale cache" bash -c "[ \"\$(head -c 512 '$DB/test.cvd' | cut -d: -f3)\" = 3 ]"
    cf_check "asked the cache-busting name" grep -q 'version=3' "$MIRROR_LOG"
    local before
    before=$(wc -l <"$MIRROR_LOG")
    cf_expect_exit 0 cf_netns_exec env LD_DEBUG=files LD_DEBUG_OUTPUT="$ld-current" \
        "$CLAMFRESH" --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test
    cf_expect_out 'test.cvd database is up-to-date \(version: 3'
    cf_check "up to date by DNS: no request reached the mirror" test "$(wc -l <"$MIRROR_LOG")" = "$before"
    cf_check "up to date by DNS: the loader logged the run" ls "$ld-current".*
    cf_check "up to date by DNS: libcurl was never opened" bash -c '! grep -qs "file=libcurl" "$1".*' _ "$ld-current"
    cf_stop "$DNSMASQ_PID"
    cf_stop "$PROXY_PID"
    cf_stop "$MIRROR_PID"
    export CF_SERVE_IN_NETNS=0
    # shellcheck disable=SC2034 # read by the harness
    CF_NETNS=
}

for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"
    bad_inputs
    if have_clamd; then
        "clamd_reload_$FX_SET"
    else
        cf_fail "clamd not installed: the reload test could not run"
    fi
    daemon_cycles
    if cf_is_root && cf_have_cmd ip dnsmasq nginx; then
        dns_stale_cache
    else
        cf__say "# SKIP (part): DNS + stale cache needs root, ip, dnsmasq and nginx"
    fi
done
