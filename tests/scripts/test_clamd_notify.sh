#!/bin/bash
# NotifyClamd against a real clamd 1.4.6 (freshclam-behavior.md §6), over a Unix
# socket and over TCP:
#  A. cf_clamd_notify itself, through a small driver linked against the core
#     library at test time (only the clamd module is pulled in from the archive);
#  B. clamfresh end to end (update, then --daemon-notify).
# Both run on every fixture set (tests/lib/fixtures.sh). clamd loads only
# ClamAV-signed CVDs and CLDs, so on the own set it serves a one-line hash
# database (cf.hdb), which clamfresh updates through DatabaseCustomURL in part B;
# on the ClamAV-signed vectors it serves test.cvd and then the CLD clamfresh built.
. "${CF_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/harness.sh"
. "$CF_SOURCE_DIR/tests/lib/fixtures.sh"

cf_have_cmd clamd || [ -x /usr/sbin/clamd ] || cf_skip "clamd not installed (Debian package clamav-daemon)"
unset CVD_CERTS_DIR

EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
EICAR_HDB='44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature'
PLACEHOLDER_HDB='0123456789abcdef0123456789abcdef:1:Cf.Placeholder'

# clamd_db DIR: a database directory clamd can start with, for the current set;
# prints the regex of clamd's reload line for it.
clamd_db() {
    if [ "$FX_SET" = vectors ]; then
        cp "$FX/test-1.cvd" "$1/test.cvd"
        echo 'Database correctly reloaded \(0 signatures\)'
    else
        echo "$PLACEHOLDER_HDB" >"$1/cf.hdb"
        echo 'Database correctly reloaded \(1 signatures\)'
    fi
}

ran=0
cf_tmpdir T

# ---- A. the library call against real clamd
LIB="${CF_BINARY_DIR:-}/libclamfresh_core.a"
NOTIFY=
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
    read -r -a core_cflags <<<"$(cf_core_cflags)"
    if cc -std=c11 "${core_cflags[@]}" -I"$CF_SOURCE_DIR/include" -I"$CF_BINARY_DIR/include" -o "$T/notify" \
        "$T/notify.c" "$LIB" 2>"$T/cc.err"; then
        NOTIFY="$T/notify"
    else
        cat "$T/cc.err"
        cf_fail "cannot build the notification driver against $LIB"
    fi
else
    cf__say "SKIP part A: no C compiler or no $LIB (CF_BINARY_DIR)"
fi

part_a() {
    local mode db reload
    cf_tmpdir db
    reload=$(clamd_db "$db")
    for mode in unix tcp; do
        cf_start_clamd "$db" "$mode"
        cf_expect_exit 0 "$NOTIFY" "$CLAMD_CONF" 5
        cf_expect_out '^Clamd successfully notified about the update\.$'
        cf_expect_no 'ERROR|WARNING'
        cf_check "clamd ($mode) reloaded after the notification" cf_wait_log "$CLAMD_LOG" "$reload" 60
        cf_stop "$CLAMD_PID"
        # clamd is gone: the failure is reported, never a hang
        if [ "$mode" = unix ]; then
            cf_expect_exit 1 "$NOTIFY" "$CLAMD_CONF" 5
            cf_expect_err "^WARNING: Clamd was NOT notified: Can't connect to clamd through \\Q$CLAMD_SOCKET\\E: (No such file or directory|Connection refused)$"
        else
            cf_expect_exit 1 "$NOTIFY" "$CLAMD_CONF" 5
            cf_expect_err "^ERROR: NotifyClamd: Can't connect to clamd on 127\\.0\\.0\\.1:$CLAMD_PORT: Connection refused$"
        fi
    done
    # clamd's own strictness: an option clamd does not know makes the file unreadable
    cp "$CLAMD_CONF" "$T/bad.conf"
    echo "NoSuchClamdOption yes" >>"$T/bad.conf"
    cf_expect_exit 1 "$NOTIFY" "$T/bad.conf" 5
    cf_expect_err "^ERROR: NotifyClamd: Can't find or parse configuration file \\Q$T/bad.conf\\E$"
    if cf_have_cmd clamconf; then
        # and clamd's tools agree that it is unreadable
        rm -rf "$T/confdir"
        mkdir -p "$T/confdir"
        cp "$T/bad.conf" "$T/confdir/clamd.conf"
        cf_expect_exit 0 clamconf -c "$T/confdir"
        cf_expect_err 'Unknown option NoSuchClamdOption'
    fi
}

# ---- B. clamfresh end to end
fc_conf() { # DBDIR: the §10.1 common config
    cat <<CONF

    DatabaseMirror ${MIRROR_URL:-http://127.0.0.1:9}
    DNSDatabaseInfo no
    PidFile $T/freshclam.pid
    LogVerbose yes
    LogFileMaxSize 0
    LogTime yes
    DatabaseDirectory $1
    DatabaseOwner $(id -un)

CONF
}

# The vectors: test-1 (0 signatures) patched to the CLD of version 3 (11).
part_b_vectors() {
    local mode www dbdir f
    cf_tmpdir www
    cf_tmpdir dbdir
    cp "$FX/test-3.cvd" "$www/test.cvd"
    for f in test-3.cvd test-3.cvd.sign test-2.cdiff test-2.cdiff.sign test-3.cdiff test-3.cdiff.sign; do
        cp "$FX/$f" "$www/$f"
    done
    cf_start_mirror "$www"
    for mode in unix tcp; do
        rm -f "$dbdir"/test.cld "$dbdir"/freshclam.dat
        cp "$FX/test-1.cvd" "$dbdir/test.cvd"
        cp "$FX/test-1.cvd.sign" "$dbdir/"
        cf_start_clamd "$dbdir" "$mode"
        {
            fc_conf "$dbdir"
            cf_fixtures_conf
        } >"$T/freshclam.conf"
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
    cf_stop "$MIRROR_PID"
}

# The own set: clamd serves cf.hdb, which starts as a placeholder; clamfresh
# replaces it from DatabaseCustomURL file:// with EICAR's hash (libclamav's load
# test passes: a hash database carries no signature) and notifies, and clamd then
# detects EICAR: it loaded the file clamfresh installed.
part_b_own() {
    local mode src dbdir ans
    cf_tmpdir src
    echo "$EICAR_HDB" >"$src/cf.hdb"
    # newer than the placeholder, older than the copy clamfresh makes, which must
    # be strictly newer for the second run to find it up to date (§4.9)
    touch -d '-10 min' "$src/cf.hdb"
    printf '%s' "$EICAR" >"$T/eicar.txt"
    for mode in unix tcp; do
        cf_tmpdir dbdir
        clamd_db "$dbdir" >/dev/null
        touch -d '-1 hour' "$dbdir/cf.hdb"
        cf_start_clamd "$dbdir" "$mode"
        {
            fc_conf "$dbdir"
            echo "DatabaseCustomURL file://$src/cf.hdb"
            printf 'ExcludeDatabase %s\n' daily main bytecode
        } >"$T/freshclam.conf"
        ans=$(cf_clamd_cmd "nSCAN $T/eicar.txt\\n")
        cf_check "clamd ($mode) does not detect EICAR yet (answer: $ans)" test "$ans" = "$T/eicar.txt: OK"
        cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$T/freshclam.conf" --daemon-notify="$CLAMD_CONF"
        cf_expect_out 'Database test passed\.'
        cf_expect_out 'cf\.hdb updated \(version: custom database, sigs: 1\)'
        cf_expect_out 'Clamd successfully notified about the update\.'
        cf_check "clamd ($mode) reloaded the updated database" \
            cf_wait_log "$CLAMD_LOG" 'Database correctly reloaded \(1 signatures\)' 60
        ans=$(cf_clamd_cmd "nSCAN $T/eicar.txt\\n")
        cf_check "clamd ($mode) detects EICAR with the installed database (answer: $ans)" \
            test "$ans" = "$T/eicar.txt: Eicar-Test-Signature.UNOFFICIAL FOUND"
        # up to date: no notification (§6.1)
        cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$T/freshclam.conf" --daemon-notify="$CLAMD_CONF"
        cf_expect_out 'cf\.hdb is up-to-date'
        cf_expect_no 'Clamd successfully notified'
        cf_stop "$CLAMD_PID"
    done
}

have_b=0
if [ -x "${CLAMFRESH:-}" ] && "$CLAMFRESH" --help 2>&1 | grep -q -- '--daemon-notify'; then
    have_b=1
else
    cf__say "SKIP part B: clamfresh is not built or does not offer --daemon-notify"
fi

for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"
    if [ -n "$NOTIFY" ]; then
        ran=1
        part_a
    fi
    if [ "$have_b" = 1 ]; then
        ran=1
        "part_b_$FX_SET"
    fi
done

[ "$ran" = 1 ] || cf_skip "neither the driver nor clamfresh could be run"
