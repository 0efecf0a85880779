#!/usr/bin/env bash
# Privileges and files of the real clamfresh started as root
# (freshclam-behavior.md §9.1, §9.3): it drops to DatabaseOwner before it touches
# the network, the log file or the database directory, so everything it
# creates belongs to that user with freshclam's modes; a directory that user
# cannot write fails at start-up (exit 2) naming the directory and the cause; a
# missing directory is created 0755 and handed to the user. Runs on every
# fixture set (tests/lib/fixtures.sh); the whole test needs root.
#
# The unprivileged user is "nobody" (present on every Debian system); the test
# creates no account.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
cf_is_root || cf_skip "needs root (privilege drop to DatabaseOwner)"
cf_require_cmd strace
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
unset CVD_CERTS_DIR

U=nobody
UID_U=$(id -u "$U" 2>/dev/null) || cf_skip "no user $U"
GID_U=$(id -g "$U")

cf_tmpdir WWW
cf_start_mirror "$WWW"

# The fixtures must be readable by $U: the trust keys are loaded after the drop.
fixtures_readable() {
    chmod -R a+rX "$FX"
    cf_check "fixtures readable by $U" su -s /bin/sh "$U" -c "test -r '$FX/certs' && test -r '$FX/test-1.cvd'"
}

# new_case OWNER: database directory owned by OWNER holding test-1 (owned by
# OWNER too); the mirror offers test-3 through two cdiffs, so the run builds a
# new file (test.cld). The log goes into $CASE/log, owned by $U.
new_case() {
    local owner=$1
    cf_tmpdir CASE
    DB="$CASE/db"
    mkdir "$DB" "$CASE/log" "$CASE/hook"
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    cp "$FX/test-1.cvd.sign" "$DB/"
    chown -R "$owner" "$DB"
    chown "$U" "$CASE/log" "$CASE/hook"
    rm -rf "${WWW:?}"/*
    cp "$FX/test-3.cvd" "$WWW/test.cvd"
    cp "$FX"/test-2.cdiff* "$FX"/test-3.cdiff* "$WWW/"
    LOG="$CASE/log/freshclam.log"
    CONF="$CASE/c.conf"
    {
        echo "DatabaseMirror $MIRROR_URL"
        echo "DatabaseDirectory $DB"
        echo "DatabaseOwner $U"
        echo "UpdateLogFile $LOG"
        echo "OnUpdateExecute id -u >$CASE/hook/uid"
        cf_fixtures_conf
    } >"$CONF"
}

fc() { cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$CONF" --update-db=test "${@:2}"; }

# owned_mode FILE MODE: FILE belongs to $U and has MODE.
owned_mode() {
    local got
    got=$(stat -c '%u:%g %a' "$1" 2>/dev/null)
    if [ "$got" = "$UID_U:$GID_U $2" ]; then
        cf_pass "$(basename "$1") owned by $U, mode $2"
    else
        cf_fail "$1: owner and mode '${got:-missing}', expected $UID_U:$GID_U $2"
    fi
}

# ---------------------------------------------------- a normal run as root
owner_run() {
    new_case "$U"
    fc 0
    cf_expect_out 'test\.cld updated \(version: 3'
    owned_mode "$DB/test.cld" 644
    owned_mode "$DB/freshclam.dat" 644
    owned_mode "$LOG" 640
    local f bad=
    for f in "$DB"/* "$DB"/.[!.]*; do
        [ -e "$f" ] || continue
        [ "$(stat -c %u "$f")" = "$UID_U" ] || bad="$bad $(basename "$f")"
    done
    cf_check "every file in the database directory belongs to $U (not:${bad:- none})" test -z "$bad"
    cf_check "no temporary left (.*.tmp, tmp.*)" bash -c "! ls -A '$DB' | grep -qE '\\.tmp\$|^tmp\\.'"
    cf_check "the old CVD was replaced" test ! -e "$DB/test.cvd"
    cf_check "OnUpdateExecute ran as $U" test "$(cat "$CASE/hook/uid" 2>/dev/null)" = "$UID_U"
    cf_check "the result verifies on the set's trust" cf_fixtures_verify "$DB/test.cld"

    # --user beats DatabaseOwner; root as the owner means no drop at all
    new_case root
    fc 0 --user=root
    cf_check "--user=root: test.cld belongs to root" test "$(stat -c %u "$DB/test.cld")" = 0
}

# ------------------------------------------- the drop comes before the network
drop_before_network() {
    new_case "$U"
    local trace="$CASE/strace.txt"
    cf_expect_exit 0 strace -f -o "$trace" -e trace=setuid,setgid,setgroups,connect \
        "$CLAMFRESH" --no-dns --config-file="$CONF" --update-db=test
    local su sg c
    su=$(grep -nE "setuid(32)?\\($UID_U\\) += 0" "$trace" | head -n 1 | cut -d: -f1)
    sg=$(grep -nE "setgid(32)?\\($GID_U\\) += 0" "$trace" | head -n 1 | cut -d: -f1)
    c=$(grep -nE "connect\\(.*sin_port=htons\\($MIRROR_PORT\\)" "$trace" | head -n 1 | cut -d: -f1)
    cf_check "strace saw setuid($UID_U) (line ${su:-none}) and a connect to the mirror (line ${c:-none})" \
        test -n "$su" -a -n "$c"
    if [ -n "$su" ] && [ -n "$c" ]; then
        cf_check "setuid($UID_U) precedes the first connect to the mirror" test "$su" -lt "$c"
    fi
    cf_check "setgid($GID_U) precedes setuid" test -n "$sg" -a "${sg:-0}" -lt "${su:-0}"
    cf_check "root is not regained after the drop" bash -c "! grep -E 'setuid(32)?\\(0\\) += 0' '$trace'"
}

# ----------------------------------- a directory the owner cannot write: exit 2
unwritable_dir() {
    new_case root
    chmod 755 "$DB"
    : >"$MIRROR_LOG"
    fc 2
    # clamfresh takes its directory lock first (install.h), so that is where it
    # fails, where freshclam says "Can't create freshclam.dat in <dir>"
    cf_expect_err "^ERROR: Can't open lock file \\Q$DB\\E/clamfresh\\.lock: Permission denied\$"
    cf_expect_out "^Hint: The database directory must be writable for UID $UID_U or GID $GID_U\$"
    cf_expect_no 'ClamAV update process started'
    cf_check "no request reached the mirror" test ! -s "$MIRROR_LOG"
    cf_check "the database was not touched" cmp -s "$FX/test-1.cvd" "$DB/test.cvd"
    cf_check "nothing was created in the directory" test "$(ls -A "$DB" | sort | tr '\n' ' ')" = "test-1.cvd.sign test.cvd "
}

# -------------------------------------------- a missing directory is created
missing_dir() {
    new_case "$U"
    rm -rf "$DB"
    fc 0
    cf_expect_out "^Creating missing database directory: \\Q$DB\\E\$"
    cf_expect_out "^Assigned ownership of database directory to user \"$U\"\\.\$"
    cf_expect_out 'test\.cvd updated \(version: 3'
    owned_mode "$DB" 755
    owned_mode "$DB/test.cvd" 644
    owned_mode "$DB/freshclam.dat" 644
    # the directory is created before logging starts: the message is terminal-only
    cf_check "the creation message is not in the log file" bash -c "! grep -q 'Creating missing database directory' '$LOG'"
}

# --------------------------------------------------- an unknown owner: exit 2
unknown_owner() {
    new_case root
    sed -i "s/^DatabaseOwner .*/DatabaseOwner cf-no-such-user/" "$CONF"
    : >"$MIRROR_LOG"
    fc 2
    cf_expect_err '^WARNING: Can.t get information about user cf-no-such-user\.$'
    cf_expect_err '^ERROR: Can.t get information about user cf-no-such-user\.$'
    cf_expect_err '^ERROR: Failed to switch to cf-no-such-user user\.$'
    cf_expect_err '^ERROR: Initialization error!$'
    cf_check "no request reached the mirror" test ! -s "$MIRROR_LOG"
}

for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"
    fixtures_readable
    owner_run
    drop_before_network
    unwritable_dir
    missing_dir
    unknown_owner
done
