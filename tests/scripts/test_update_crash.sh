#!/usr/bin/env bash
# Crash safety and mutual exclusion: clamfresh killed (SIGKILL, injected with
# strace) at its first rename, at each fsync and at a write leaves the old
# database present and valid, and the next run cleans up and succeeds; two runs
# at once on one database directory do not interleave.
# Runs on every fixture set (tests/lib/fixtures.sh): databases made here, and the
# ClamAV-signed vectors when present. Validity is checked with cvdtool on the
# set's trust, and on the vectors also with sigtool (clamav) as a second opinion.
# Needs strace (Debian package strace).
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
cf_require_cmd strace
export CLAMFRESH_RETRY_DELAY=0
unset CVD_CERTS_DIR

new_case() {
    cf_tmpdir CASE
    DB="$CASE/db"
    mkdir "$DB"
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    cp "$FX/test-1.cvd.sign" "$DB/"
    CONF="$CASE/c.conf"
    printf 'DatabaseMirror %s\nDatabaseDirectory %s\nDatabaseOwner %s\n' "$MIRROR_URL" "$DB" "$(id -un)" >"$CONF"
    cf_fixtures_conf_loadtest >>"$CONF"
    [ -n "${1:-}" ] && printf '%s\n' "$1" >>"$CONF"
    # a first run with nothing to do creates freshclam.dat, so the counted
    # renames/fsyncs below are those of the database install
    # (with the patches out of sight: they would rightly prove a v1 header stale)
    cp "$FX/test-1.cvd" "$WWW/test.cvd.advertised"
    mkdir -p "$WWW/.held"
    mv "$WWW"/test-*.cdiff* "$WWW/.held/" 2>/dev/null
    "$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test >/dev/null 2>&1
    mv "$WWW"/.held/* "$WWW/" 2>/dev/null
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
}

# db_valid: the database in $DB (CVD or CLD) is whole and verifies on the set's
# trust (and with sigtool on the vectors).
db_valid() {
    local f d
    for f in "$DB/test.cvd" "$DB/test.cld"; do
        [ -f "$f" ] || continue
        d="$CASE/check.$RANDOM"
        mkdir "$d" && cp "$f" "$d/"
        cf_fixtures_verify "$d/$(basename "$f")" || return 1
        if [ "$FX_SET" = vectors ] && cf_have_cmd sigtool; then
            sigtool --info "$d/$(basename "$f")" 2>&1 | grep -q 'Verification OK' || return 1
        fi
        return 0
    done
    return 1
}

leftovers() { find "$DB" -mindepth 1 -maxdepth 1 \( -name '*.tmp' -o -name 'tmp.*' \) -printf '%f\n'; }

crash_and_lock() {
    local inj call n FIRST good good_pid
    cf_tmpdir WWW
    cp "$FX"/test-2.cdiff* "$FX"/test-3.cdiff* "$WWW/"
    cf_start_mirror "$WWW" --advertised-served
    good=$MIRROR_URL
    good_pid=$MIRROR_PID

    for inj in rename:1 fsync:1 fsync:2 fsync:3 fsync:4 write:1 pwrite64:1; do
        call=${inj%%:*}
        n=${inj##*:}
        new_case
        cf_expect_exit 137 strace -f -o /dev/null -e trace="$call" -e inject="$call":signal=SIGKILL:when="$n" \
            "$CLAMFRESH" --quiet --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test
        cf_check "killed at $call #$n: a valid database is in place" db_valid
        cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test
        cf_check "after $call #$n: the next run leaves no temporary behind" test -z "$(leftovers)"
        if [ -f "$DB/test.cld" ] && [ "$(head -c 512 "$DB/test.cld" | cut -d: -f3)" = 3 ] && [ ! -e "$DB/test.cvd" ]; then
            cf_pass "after $call #$n: the next run brought the database to version 3"
        else
            cf_fail "after $call #$n: expected test.cld version 3 only, have: $(ls "$DB")"
        fi
        cf_check "after $call #$n: the result verifies" db_valid
    done

    # The kill at the first rename leaves the old CVD itself in place, untouched.
    new_case
    cf_expect_exit 137 strace -f -o /dev/null -e trace=rename -e inject=rename:signal=SIGKILL:when=1 \
        "$CLAMFRESH" --quiet --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test
    cf_check "old test.cvd byte for byte" cmp -s "$FX/test-1.cvd" "$DB/test.cvd"
    cf_check "the killed run left its temporary (to be cleaned)" test -n "$(leftovers)"

    # Two runs at once: the second waits at most LockTimeout and says who holds it.
    new_case "LockTimeout 1"
    echo '{"/test-2.cdiff": {"delay": 4}}' >"$CASE/faults"
    cf_start_mirror "$WWW" --advertised-served --faults "$CASE/faults"
    sed -i "s|DatabaseMirror .*|DatabaseMirror $MIRROR_URL|" "$CONF"
    "$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test >"$CASE/first.out" 2>&1 &
    FIRST=$!
    for _ in $(seq 1 50); do
        [ "$(cat "$DB/clamfresh.lock" 2>/dev/null)" = "$FIRST" ] && break
        sleep 0.1
    done
    cf_expect_exit 2 "$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test
    cf_expect_err "Another clamfresh or freshclam update is running in \\Q$DB\\E \\(lock held by PID $FIRST\\); giving up after 1 seconds\\."
    wait "$FIRST"
    cf_check "the first run finished its update (exit 0)" test $? = 0
    cf_check "the first run installed version 3" grep -q 'test.cld updated (version: 3' "$CASE/first.out"
    cf_stop "$MIRROR_PID"
    MIRROR_URL=$good

    # With a longer bound the second run waits for the first and then finds it done.
    new_case "LockTimeout 20"
    echo '{"/test-2.cdiff": {"delay": 2}}' >"$CASE/faults"
    cf_start_mirror "$WWW" --advertised-served --faults "$CASE/faults"
    sed -i "s|DatabaseMirror .*|DatabaseMirror $MIRROR_URL|" "$CONF"
    "$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test >"$CASE/first.out" 2>&1 &
    FIRST=$!
    sleep 0.5
    cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$CONF" "${FX_ARGS[@]}" --update-db=test
    cf_expect_out 'test.cld database is up-to-date \(version: 3'
    wait "$FIRST"
    cf_stop "$MIRROR_PID"
    cf_stop "$good_pid"
}

for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"
    crash_and_lock
done
