#!/usr/bin/env bash
# OnUpdateExecute / OnErrorExecute / OnOutdatedExecute through the real
# clamfresh (freshclam-behavior.md §7): when each hook runs, EXIT_<n>, the
# ignored status of an ordinary command, and %v. A hook here is a small shell
# script that appends one line to a marker file with what it saw in the
# database directory, so a check can tell that it ran once, after the new
# database was in place and the temporary directory gone.
#
# Runs on every fixture set (tests/lib/fixtures.sh). The OnOutdatedExecute part
# needs DNS: as root it runs clamfresh in a private network namespace with
# dnsmasq answering current.cvd.clamav.net with a ClamAV release 99.0.0 and
# the version-warning flag set; without root that part is skipped with a note.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
unset CVD_CERTS_DIR

# The engine version clamfresh reports (libclamav's, or its fallback): the
# OUTDATED warning names it.
cf_tmpdir T0
echo "DatabaseMirror http://127.0.0.1:9" >"$T0/v.conf"
ENGINE=$("$CLAMFRESH" --config-file="$T0/v.conf" -V | sed -n 's/^ClamAV \([^/]*\).*/\1/p')
[ -n "$ENGINE" ] || cf_abort "cannot read the engine version from clamfresh -V"

cf_tmpdir WWW
cf_start_mirror "$WWW"

# new_case [CONFIG LINES]: database directory with test-1, the mirror serves test-3 whole
# (ScriptedUpdates no keeps the run to one probe and one download), a hook
# script $HOOK and a config $CONF; @CASE@ in the extra lines is the case's
# directory.
new_case() {
    cf_tmpdir CASE
    DB="$CASE/db"
    mkdir "$DB"
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    cp "$FX/test-1.cvd.sign" "$DB/"
    rm -rf "${WWW:?}"/*
    cp "$FX/test-3.cvd" "$WWW/test.cvd"
    cp "$FX/test-3.cvd" "$WWW/test-3.cvd"
    cp "$FX/test-3.cvd.sign" "$WWW/"
    MARK="$CASE/marker"
    HOOK="$CASE/hook.sh"
    cat >"$HOOK" <<EOF
#!/bin/sh
# \$1: a label. Records the installed test database version and how many
# temporaries are in the database directory when the hook runs.
v=\$(head -c 512 "$DB/test.cvd" 2>/dev/null | cut -d: -f3)
t=\$(ls -A "$DB" | grep -c -e '\\.tmp\$' -e '^tmp\\.')
echo "\$1 version=\${v:-none} tmp=\$t args=\$2" >>"$MARK"
echo "HOOK-RAN \$1"
EOF
    chmod 755 "$HOOK"
    CONF="$CASE/c.conf"
    {
        echo "DatabaseMirror $MIRROR_URL"
        echo "DatabaseDirectory $DB"
        echo "DatabaseOwner $(id -un)"
        echo "ScriptedUpdates no"
        cf_fixtures_conf
        [ -n "${1:-}" ] && printf '%b\n' "$1" | sed "s|@CASE@|$CASE|g"
    } >"$CONF"
    return 0
}

fc() { cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$CONF" --update-db=test "${@:2}"; }

# marker_is TEXT...: the marker holds exactly these lines.
marker_is() {
    local want got
    want=$(printf '%s\n' "$@")
    got=$(cat "$MARK" 2>/dev/null)
    if [ "$got" = "$want" ]; then
        cf_pass "hook marker is: $(printf '%s | ' "$@")"
    else
        cf_fail "hook marker should be '$(printf '%s | ' "$@")', is '$(tr '\n' '|' <"$MARK" 2>/dev/null)'"
    fi
}

no_marker() {
    if [ -e "$MARK" ]; then
        cf_fail "$1: a hook ran: $(tr '\n' '|' <"$MARK")"
    else
        cf_pass "$1: no hook ran"
    fi
}

old_db_kept() { cf_check "old database kept byte for byte" cmp -s "$FX/test-1.cvd" "$DB/test.cvd"; }

# line_before FILE RE1 RE2: the first line matching RE1 comes before the first matching RE2.
line_before() {
    local a b
    a=$(grep -nP -- "$2" "$1" | head -n 1 | cut -d: -f1)
    b=$(grep -nP -- "$3" "$1" | head -n 1 | cut -d: -f1)
    [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]
}

# ------------------------------------------------------------ OnUpdateExecute
update_hooks() {
    new_case "OnUpdateExecute @CASE@/hook.sh update %v\nOnErrorExecute @CASE@/hook.sh error"
    fc 0
    cf_expect_out 'test.cvd updated \(version: 3'
    cf_expect_out '^HOOK-RAN update$'
    cf_check "the hook's output follows the update line" line_before "$CF_OUT" 'test.cvd updated' '^HOOK-RAN'
    # once, with version 3 already installed and no temporary left; %v stays literal
    marker_is "update version=3 tmp=0 args=%v"
    fc 0
    cf_expect_out 'test.cvd database is up-to-date \(version: 3'
    cf_expect_no 'HOOK-RAN'
    marker_is "update version=3 tmp=0 args=%v"

    # the command line option, EXIT_1: exit 1 after an update, 0 when up to date
    new_case
    fc 1 --on-update-execute=EXIT_1
    cf_expect_out 'test.cvd updated \(version: 3'
    cf_check "EXIT_1: the database was installed before exiting" \
        bash -c "[ \"\$(head -c 512 '$DB/test.cvd' | cut -d: -f3)\" = 3 ]"
    fc 0 --on-update-execute=EXIT_1
    cf_expect_out 'test.cvd database is up-to-date'
    # scanf rules: text after the number does not matter
    new_case
    fc 1 "--on-update-execute=EXIT_1 and some words"
    # the command line beats the config (first setting wins, §3.1)
    new_case "OnUpdateExecute EXIT_5"
    fc 1 --on-update-execute=EXIT_1
    new_case "OnUpdateExecute EXIT_5"
    fc 5
}

# ------------------------------------------------------------- OnErrorExecute
error_hooks() {
    # The mirror has no test.cvd: the probe fails with 404, exit 11.
    new_case "OnUpdateExecute @CASE@/hook.sh update"
    rm -f "$WWW"/test*
    : >"$MIRROR_LOG"
    fc 11 --stdout "--on-error-execute=$HOOK error %v; exit 3"
    cf_expect_out '^ERROR: Update failed\.$'
    cf_expect_out '^HOOK-RAN error$'
    cf_check "OnErrorExecute runs after 'Update failed.'" line_before "$CF_OUT" '^ERROR: Update failed\.$' '^HOOK-RAN error$'
    marker_is "error version=1 tmp=0 args=%v"
    cf_check "the run did reach the mirror" test "$(cf_mirror_count '"path": "/test.cvd"')" -ge 1
    old_db_kept

    # OnErrorExecute EXIT_0 turns the failure into success, messages unchanged
    new_case "OnErrorExecute EXIT_0\nOnUpdateExecute @CASE@/hook.sh update"
    rm -f "$WWW"/test*
    fc 0
    cf_expect_err 'ERROR: Database update process failed: HTTP GET failed'
    cf_expect_err 'ERROR: Update failed\.'
    no_marker "failed run with EXIT_0"
    old_db_kept
    # and EXIT_n for another n
    new_case "OnErrorExecute EXIT_42"
    rm -f "$WWW"/test*
    fc 42

    # not run on success or when up to date
    new_case "OnErrorExecute @CASE@/hook.sh error"
    fc 0
    fc 0
    no_marker "successful and up-to-date runs with OnErrorExecute"

    # failures before any update, once the config was read, run it too (§7):
    # a database selection error (9) ...
    new_case "OnErrorExecute @CASE@/hook.sh error"
    cf_expect_exit 9 "$CLAMFRESH" --no-dns --config-file="$CONF" --update-db=nosuchdb
    cf_expect_err '^ERROR: Requested database is not available: nosuchdb\.$'
    marker_is "error version=1 tmp=0 args="
    # ... and an initialisation error (2): the log file cannot be opened
    new_case "OnErrorExecute @CASE@/hook.sh error\nUpdateLogFile @CASE@/no/such/dir/f.log"
    fc 2
    cf_expect_out "^ERROR: Failed to open log file \Q$CASE/no/such/dir/f.log\E: No such file or directory$"
    marker_is "error version=1 tmp=0 args="
    # ... with EXIT_n deciding the status
    new_case "OnErrorExecute EXIT_0\nUpdateLogFile @CASE@/no/such/dir/f.log"
    fc 0
    # but not when the config itself cannot be read: there is no command yet
    new_case "OnErrorExecute @CASE@/hook.sh error\nNoSuchDirective yes"
    fc 2
    cf_expect_err "^ERROR: Parse error at \Q$CONF\E:\d+: Unknown option NoSuchDirective$"
    no_marker "unreadable config"
    # ... and a daemon that cannot start (its PID file cannot be written) runs
    # it as a daemon does: in the background, EXIT_n being an ordinary command
    new_case "OnErrorExecute @CASE@/hook.sh error\nPidFile @CASE@/no/such/dir/f.pid"
    fc 2 --daemon --foreground
    for _ in $(seq 1 100); do [ -s "$MARK" ] && break; sleep 0.05; done
    marker_is "error version=1 tmp=0 args="
}

# ------------------------------------------------ OnOutdatedExecute (DNS, root)
outdated_hooks() {
    local now rec
    now=$(date +%s)
    rec="99.0.0:62:27830:$now:1:90:49192:339"
    cf_netns_create
    export CF_SERVE_IN_NETNS=1
    new_case
    local www2=$WWW
    cf_tmpdir WWW
    cp "$FX/test-3.cvd" "$WWW/test.cvd"
    cp "$FX/test-3.cvd" "$WWW/test-3.cvd"
    cp "$FX/test-3.cvd.sign" "$WWW/"
    local host_mirror=$MIRROR_URL host_log=$MIRROR_LOG host_pid=$MIRROR_PID
    cf_start_mirror "$WWW"
    # DNSDatabaseInfo flag0.test answers the same release with the flag 0
    cf_start_dnsmasq_txt "current.cvd.clamav.net=$rec" "test.cvd.clamav.net=3:$now" \
        "flag0.test=99.0.0:62:27830:$now:0:90:49192:339"
    cat >"$CONF" <<EOF
DatabaseMirror $MIRROR_URL
DatabaseDirectory $DB
DatabaseOwner $(id -un)
ScriptedUpdates no
OnUpdateExecute $HOOK update %v
OnOutdatedExecute $HOOK outdated v=%v,%v
$(cf_fixtures_conf)
EOF
    # an update: OnUpdateExecute, then OnOutdatedExecute with the version
    cf_expect_exit 0 cf_netns_exec "$CLAMFRESH" --config-file="$CONF" --update-db=test
    cf_expect_out 'test.cvd updated \(version: 3'
    cf_expect_err '^WARNING: Your ClamAV installation is OUTDATED!$'
    cf_expect_err "^WARNING: Local version: \\Q$ENGINE\\E Recommended version: 99\\.0\\.0$"
    cf_expect_out "^DON'T PANIC! Read https://docs\\.clamav\\.net/manual/Installing\\.html$"
    # our fix of the upstream bug (src/hooks.c): the first %v is the version
    marker_is "update version=3 tmp=0 args=%v" "outdated version=3 tmp=0 args=v=99.0.0,%v"
    # up to date by DNS (no HTTP): OnOutdatedExecute alone
    rm -f "$MARK"
    cf_expect_exit 0 cf_netns_exec "$CLAMFRESH" --config-file="$CONF" --update-db=test
    cf_expect_out 'test.cvd database is up-to-date \(version: 3'
    marker_is "outdated version=3 tmp=0 args=v=99.0.0,%v"
    # never without DNS
    rm -f "$MARK"
    cf_expect_exit 0 cf_netns_exec "$CLAMFRESH" --no-dns --config-file="$CONF" --update-db=test
    cf_expect_out 'test.cvd database is up-to-date'
    cf_expect_no 'OUTDATED'
    no_marker "--no-dns run"
    # nor when the record's flag says not to warn
    sed -i '1i DNSDatabaseInfo flag0.test' "$CONF"
    cf_expect_exit 0 cf_netns_exec "$CLAMFRESH" --config-file="$CONF" --update-db=test -v
    cf_expect_out 'Querying flag0\.test'
    cf_expect_no 'OUTDATED'
    no_marker "record with version-warning flag 0"
    # EXIT_n in OnOutdatedExecute decides the exit status
    sed -i 's|^DNSDatabaseInfo.*|DNSDatabaseInfo current.cvd.clamav.net|' "$CONF"
    cf_expect_exit 3 cf_netns_exec "$CLAMFRESH" --config-file="$CONF" --update-db=test --on-outdated-execute=EXIT_3
    cf_stop "$DNSMASQ_PID"
    cf_stop "$MIRROR_PID"
    export CF_SERVE_IN_NETNS=0
    # shellcheck disable=SC2034 # read by the harness
    CF_NETNS=
    WWW=$www2 MIRROR_URL=$host_mirror MIRROR_LOG=$host_log MIRROR_PID=$host_pid
}

for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"
    update_hooks
    error_hooks
    if cf_is_root && cf_have_cmd ip dnsmasq; then
        outdated_hooks
    else
        cf__say "# SKIP (part): OnOutdatedExecute needs DNS: root, ip and dnsmasq (a private network namespace)"
    fi
done
