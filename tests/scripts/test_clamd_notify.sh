#!/bin/bash
# NotifyClamd against a real clamd 1.4.6 (freshclam-behavior.md §6), over a Unix
# socket and over TCP:
#  A. cf_clamd_notify itself, through a small driver linked against the core
#     library at test time (only the clamd module is pulled in from the archive);
#  B. clamfresh end to end (update, then --daemon-notify) once clamfresh offers
#     --daemon-notify; until then that part is skipped with a message.
. "${CF_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/harness.sh"

cf_have_cmd clamd || [ -x /usr/sbin/clamd ] || cf_skip "clamd not installed (Debian package clamav-daemon)"
[ -f "$CF_VECTORS/clamav/test-1.cvd" ] || cf_skip "ClamAV test vectors absent ($CF_VECTORS/clamav)"

ran=0
cf_tmpdir T
cf_tmpdir DB
cp "$CF_VECTORS/clamav/test-1.cvd" "$DB/test.cvd"

# ---- A. the library call against real clamd
LIB="${CF_BINARY_DIR:-}/libclamfresh_core.a"
if [ -f "$LIB" ] && cf_have_cmd cc; then
    cat >"$T/notify.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>

#include "clamfresh/clamd.h"

/* Prints the notes as freshclam would on a terminal; exit 0 when notified. */
int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    cf_clamd_result r;
    cf_err e = {0};
    cf_code rc = cf_clamd_notify(argv[1], atoi(argv[2]), &r, &e);
    for (size_t i = 0; i < r.notes.n; i++) {
        const cf_note *n = &r.notes.item[i];
        if (n->level == CF_NOTE_ERROR)
            fprintf(stderr, "ERROR: %s\n", n->text);
        else if (n->level == CF_NOTE_WARN)
            fprintf(stderr, "WARNING: %s\n", n->text);
        else
            printf("%s\n", n->text);
    }
    return rc == CF_OK ? 0 : 1;
}
CEOF
    if cc -std=c11 -I"$CF_SOURCE_DIR/include" -I"$CF_BINARY_DIR/include" -o "$T/notify" \
        "$T/notify.c" "$LIB" 2>"$T/cc.err"; then
        ran=1
        for mode in unix tcp; do
            cf_start_clamd "$DB" "$mode"
            cf_expect_exit 0 "$T/notify" "$CLAMD_CONF" 5
            cf_expect_out '^Clamd successfully notified about the update\.$'
            cf_expect_no 'ERROR|WARNING'
            cf_check "clamd ($mode) reloaded after the notification" \
                cf_wait_log "$CLAMD_LOG" 'Database correctly reloaded \(0 signatures\)' 60
            cf_stop "$CLAMD_PID"
            # clamd is gone: the failure is reported, never a hang
            if [ "$mode" = unix ]; then
                cf_expect_exit 1 "$T/notify" "$CLAMD_CONF" 5
                cf_expect_err "^WARNING: Clamd was NOT notified: Can't connect to clamd through \\Q$CLAMD_SOCKET\\E: (No such file or directory|Connection refused)$"
            else
                cf_expect_exit 1 "$T/notify" "$CLAMD_CONF" 5
                cf_expect_err "^ERROR: NotifyClamd: Can't connect to clamd on 127\\.0\\.0\\.1:$CLAMD_PORT: Connection refused$"
            fi
        done
        # clamd's own strictness: an option clamd does not know makes the file unreadable
        cp "$CLAMD_CONF" "$T/bad.conf"
        echo "NoSuchClamdOption yes" >>"$T/bad.conf"
        cf_expect_exit 1 "$T/notify" "$T/bad.conf" 5
        cf_expect_err "^ERROR: NotifyClamd: Can't find or parse configuration file \\Q$T/bad.conf\\E$"
        if cf_have_cmd clamconf; then
            # and clamd's tools agree that it is unreadable
            mkdir -p "$T/confdir"
            cp "$T/bad.conf" "$T/confdir/clamd.conf"
            cf_expect_exit 0 clamconf -c "$T/confdir"
            cf_expect_err 'Unknown option NoSuchClamdOption'
        fi
    else
        cat "$T/cc.err"
        cf_fail "cannot build the notification driver against $LIB"
    fi
else
    cf__say "SKIP part A: no C compiler or no $LIB (CF_BINARY_DIR)"
fi

# ---- B. clamfresh end to end
if [ -x "${CLAMFRESH:-}" ] && "$CLAMFRESH" --help 2>&1 | grep -q -- '--daemon-notify'; then
    ran=1
    V="$CF_VECTORS/clamav"
    cf_tmpdir WWW
    cf_tmpdir DBDIR
    cp "$V/test-1.cvd" "$DBDIR/test.cvd"
    cp "$V/test-1.cvd.sign" "$DBDIR/test-1.cvd.sign"
    cp "$V/test-3.cvd" "$WWW/test.cvd"
    for f in test-3.cvd test-3.cvd.sign test-2.cdiff test-2.cdiff.sign test-3.cdiff test-3.cdiff.sign; do
        cp "$V/$f" "$WWW/$f"
    done
    cf_start_mirror "$WWW"
    for mode in unix tcp; do
        rm -f "$DBDIR"/test.cld
        cp "$V/test-1.cvd" "$DBDIR/test.cvd"
        cf_start_clamd "$DBDIR" "$mode"
        cat >"$T/freshclam.conf" <<CONF

    DatabaseMirror $MIRROR_URL
    DNSDatabaseInfo no
    PidFile $T/freshclam.pid
    LogVerbose yes
    LogFileMaxSize 0
    LogTime yes
    DatabaseDirectory $DBDIR
    DatabaseOwner $(id -un)

CONF
        cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$T/freshclam.conf" --update-db=test \
            --daemon-notify="$CLAMD_CONF"
        cf_expect_out 'test\.cld updated'
        cf_expect_out 'Clamd successfully notified about the update\.'
        # test-1 has 0 signatures, the updated CLD (version 3) has some: clamd loaded ours
        cf_check "clamd ($mode) reloaded the updated database" \
            cf_wait_log "$CLAMD_LOG" 'Database correctly reloaded \([1-9][0-9]* signatures\)' 60
        # up to date: no notification (§6.1)
        cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$T/freshclam.conf" --update-db=test \
            --daemon-notify="$CLAMD_CONF"
        cf_expect_no 'Clamd successfully notified'
        cf_stop "$CLAMD_PID"
    done
else
    cf__say "SKIP part B: clamfresh does not offer --daemon-notify yet"
fi

[ "$ran" = 1 ] || cf_skip "neither the driver nor clamfresh could be run"
