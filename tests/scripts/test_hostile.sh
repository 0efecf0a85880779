#!/usr/bin/env bash
# Hostile mirrors, answers and local state against the real clamfresh binary,
# one scenario per class of fault (clamfresh(1), RELIABILITY). Every case checks
# what must never happen: a hang, a crash, another database or an older one
# installed, a cool-down longer than a day, a file read through a link, or an
# exit status of 0 where the update failed.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
export CLAMFRESH_RETRY_DELAY=0
unset CVD_CERTS_DIR

new_case() { # [EXTRA CONFIG LINE...]
    cf_tmpdir CASE
    DB="$CASE/db"
    WWW="$CASE/www"
    mkdir "$DB" "$WWW"
    echo '{}' >"$CASE/faults"
    CONF="$CASE/c.conf"
    {
        printf 'DatabaseMirror %s\nDatabaseDirectory %s\nDatabaseOwner %s\n' "${1:-MIRROR}" "$DB" "$(id -un)"
        cf_fixtures_conf
        echo "EngineFlevel 230"
    } >"$CONF"
}

serve() { # start the mirror over $WWW (with $CASE/faults) and point the config at it
    cf_start_mirror "$WWW" --advertised-served --faults "$CASE/faults"
    sed -i "s|^DatabaseMirror .*|DatabaseMirror $MIRROR_URL|" "$CONF"
}

run() { cf_expect_exit "$1" timeout 60 "$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" "${@:2}"; }

version_of() { head -c 512 "$1" | cut -d: -f3; }

# Each class's checks are counted and printed at the end as
# "# reliability | CLASS | CHECKS | WHAT THEY VERIFY", the rows of the
# reliability table (scripts/reliability.sh).
declare -A R_COUNT R_WHAT
R_ORDER=()
class() { # NAME WHAT
    R_CLASS=$1
    [ -n "${R_WHAT[$1]:-}" ] || R_ORDER+=("$1")
    R_WHAT[$1]=$2
    R_START=$CF__NCHECK
}
class_end() { R_COUNT[$R_CLASS]=$((${R_COUNT[$R_CLASS]:-0} + CF__NCHECK - R_START)); }
class_report() {
    local c
    for c in "${R_ORDER[@]}"; do
        printf '# reliability | %s | %s | %s\n' "$c" "${R_COUNT[$c]:-0}" "${R_WHAT[$c]}"
    done
}

# A header that advertises version $2, made from CVD $1 (only the probe reads it).
advertise() { # CVD VERSION OUT
    python3 - "$1" "$2" "$3" <<'PY'
import sys
head = open(sys.argv[1], 'rb').read(512).rstrip(b' ').split(b':')
head[2] = sys.argv[2].encode()
open(sys.argv[3], 'wb').write(b':'.join(head).ljust(512, b' '))
PY
}

for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"

    # --- identity: a validly signed database of another name is not installed
    class "identity" "a validly signed database of another name is refused: exit status, message, nothing installed"
    new_case
    cp "$FX/test-3.cvd" "$WWW/daily.cvd.advertised"
    cp "$FX/test-3.cvd" "$WWW/daily-3.cvd.served"
    cp "$FX/test-3.cvd" "$WWW/daily.cvd.served"
    serve
    run 7 --update-db=daily
    cf_expect_err 'is not the daily database: its manifest is test\.info'
    cf_check "identity: nothing installed as daily" bash -c "! ls '$DB' | grep -q '^daily\\.c[lv]d$'"

    class_end

    # --- version gap: an absurd advertised version costs no patch request
    class "version gap" "an advertised version 4294967295: no patch asked for, few requests, the newest file installed"
    new_case
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    advertise "$FX/test-3.cvd" 4294967295 "$WWW/test.cvd.advertised"
    cp "$FX/test-3.cvd" "$WWW/test.cvd.served"
    cp "$FX/test-3.cvd.sign" "$WWW/"
    serve
    run 0 --update-db=test
    cf_expect_out 'beyond the 300 patches a mirror keeps'
    # Only the next patch, asked in the probe's round before the version is known.
    cf_check "version gap: no .cdiff asked for but the next one" \
        test "$(cf_mirror_count '"path": "/test-(?!2\.cdiff)\d+\.cdiff')" = 0
    cf_check "version gap: at most 10 requests" test "$(wc -l <"$MIRROR_LOG")" -le 10
    cf_check "version gap: version 3 installed" test "$(version_of "$DB/test.cvd")" = 3

    class_end

    # --- Retry-After: no cool-down beyond a day, whatever the header says
    class "Retry-After" "Retry-After of 2^63-1 s, the year 9999 and 23 digits: exit 0 and a cool-down of at most 24 h"
    for ra in 9223372036854775807 "Fri, 31 Dec 9999 23:59:59 GMT" 99999999999999999999999; do
        new_case
        cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
        printf '{"/test.cvd": {"status": 429, "retry_after": "%s"}}\n' "$ra" >"$CASE/faults"
        serve
        run 0 --update-db=test
        run 0 --update-db=test
        until=$(grep -o 'cool-down until after: [0-9-]* [0-9:]*' "$CF_ERR" "$CF_OUT" | head -n1 | cut -d' ' -f4-)
        cf_check "Retry-After '$ra': cool-down ends within 24 h (until $until)" \
            bash -c "[ -n '$until' ] && [ \$(( \$(date -d '$until' +%s) - \$(date +%s) )) -le 86400 ]"
    done

    class_end

    # --- local state: a FIFO or a link as freshclam.dat neither hangs nor is read through
    class "local files" "freshclam.dat as a FIFO or a symbolic link: no hang, exit 2, the reason named, the link target untouched"
    new_case
    mkfifo "$DB/freshclam.dat"
    serve
    run 2 --update-db=test
    cf_expect_err 'freshclam\.dat is a FIFO, not a regular file'
    new_case
    echo "outside" >"$CASE/elsewhere"
    ln -s "$CASE/elsewhere" "$DB/freshclam.dat"
    serve
    run 2 --update-db=test
    cf_expect_err 'freshclam\.dat is a symbolic link'
    cf_check "local state: the link's target is untouched" test "$(cat "$CASE/elsewhere")" = outside

    class_end

    # --- a damaged local database at the advertised version is fetched again
    class "damaged local database" "a damaged database at the advertised version is found, fetched again, then trusted"
    new_case
    cp "$FX/test-3.cvd" "$DB/test.cvd"
    python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[-40]^=0x20; open(p,"wb").write(b)' \
        "$DB/test.cvd"
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    cp "$FX/test-3.cvd" "$WWW/test-3.cvd.served"
    cp "$FX/test-3.cvd.sign" "$WWW/"
    serve
    run 0 --update-db=test
    cf_expect_err 'test\.cvd is damaged \('
    cf_check "damaged local: replaced by the mirror's copy" cmp -s "$FX/test-3.cvd" "$DB/test.cvd"
    run 0 --update-db=test
    cf_expect_out 'test\.cvd database is up-to-date'
    cf_expect_no 'is damaged'

    class_end

    # --- a chain that does not apply is never half-installed
    class "patch chain" "a patch that does not apply: the whole file instead, byte-exact, no temporary left"
    new_case
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    cp "$FX/test-3.cdiff" "$WWW/test-2.cdiff" # the wrong patch under the right name
    cp "$FX/test-3.cdiff" "$FX/test-3.cdiff.sign" "$WWW/"
    cp "$FX/test-3.cvd" "$WWW/test-3.cvd.served"
    cp "$FX/test-3.cvd.sign" "$WWW/"
    serve
    run 0 --update-db=test
    cf_expect_err 'Incremental update failed, trying to download test\.cvd'
    cf_check "bad chain: the whole file, version 3" cmp -s "$FX/test-3.cvd" "$DB/test.cvd"
    cf_check "bad chain: no temporary left" bash -c "! ls -A '$DB' | grep -q tmp"
    class_end

done

# --- offline: a mirror whose name does not resolve is given up after one retry
# (exit 11, as freshclam when the version probe fails)
class offline "an unresolvable mirror: given up after one retry, in under 20 s, with freshclam's exit status"
if cf_is_root && cf_have_cmd ip; then
    cf_fixtures_use "${CF_FIXTURE_SETS[0]}"
    new_case "http://mirror.invalid"
    cf_netns_create
    start=$(date +%s)
    cf_expect_exit 11 cf_netns_exec timeout 60 "$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" \
        --update-db=test
    cf_expect_err 'cannot be reached \(.*\): the host cannot be resolved or the network is unreachable'
    cf_check "offline: over in less than 20 s ($(($(date +%s) - start)) s)" test $(($(date +%s) - start)) -lt 20
else
    cf__say "# SKIP offline case: needs root and ip (a network namespace without DNS)"
fi
class_end
class_report
