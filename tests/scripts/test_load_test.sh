#!/usr/bin/env bash
# TestDatabases through the installed libclamav (freshclam-behavior.md §4.7): a
# database the engine refuses is not installed (exit 8, "Database test FAILED.",
# the old file kept byte for byte), one it accepts is ("Database test passed.").
# The self-made set shows the refusal for free: libclamav trusts only ClamAV's
# keys, so it rejects a manifest signed with ours even though clamfresh's own
# checks (with --trust-key) accept it. A broken custom database shows it too.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
ldconfig -p 2>/dev/null | grep -q 'libclamav\.so' || cf_skip "libclamav is not installed: no engine to load with"
export CLAMFRESH_RETRY_DELAY=0
unset CVD_CERTS_DIR

run_case() { # SET EXPECTED_EXIT [clamfresh options]
    cf_fixtures_use "$1"
    cf_tmpdir CASE
    mkdir "$CASE/db" "$CASE/www"
    cp "$FX/test-1.cvd" "$CASE/db/test.cvd"
    cp "$FX/test-3.cvd" "$CASE/www/test-3.cvd"
    cp "$FX/test-3.cvd" "$CASE/www/test.cvd"
    cf_start_mirror "$CASE/www"
    printf 'DatabaseMirror %s\nDatabaseDirectory %s\nDatabaseOwner %s\nTestDatabases yes\nScriptedUpdates no\n' \
        "$MIRROR_URL" "$CASE/db" "$(id -un)" >"$CASE/c.conf"
    cf_expect_exit "$2" "$CLAMFRESH" --no-dns --config-file="$CASE/c.conf" "${FX_ARGS[@]}" --update-db=test "${@:3}"
    cf_expect_out "Testing database: '.*test\\.cvd' \\.\\.\\."
    cf_stop "$MIRROR_PID"
}

run_case own 8
cf_expect_err 'Database load exited with "Test failed"'
cf_expect_err '^ERROR: Database test FAILED\.$'
cf_expect_err 'Database update process failed: Test failed'
cf_expect_no 'test\.cvd updated'
cf_check "old database kept byte for byte" cmp -s "$FX/test-1.cvd" "$CASE/db/test.cvd"
cf_check "nothing left behind" test -z "$(find "$CASE/db" -mindepth 1 -maxdepth 1 ! -name clamfresh.lock \
    ! -name freshclam.dat ! -name "clamfresh-*.state" ! -name test.cvd)"

# --debug turns on libclamav's own debug output in the load test, as freshclam does.
run_case own 8 --debug
cf_expect_err 'Stderr output from database load : LibClamAV debug: '

if [ -f "$CF_VECTORS/clamav/test-1.cvd" ]; then
    run_case vectors 0
    cf_expect_out '^Database test passed\.$'
    cf_expect_out 'test\.cvd updated \(version: 3'
fi

# A custom database the engine cannot parse fails at once with 8 (§4.9).
cf_fixtures_use own
cf_tmpdir CASE
mkdir "$CASE/db"
printf 'Broken.Signature:this is not a valid body\n' >"$CASE/broken.ndb"
printf 'DatabaseMirror http://127.0.0.1:9\nDatabaseDirectory %s\nDatabaseOwner %s\nDatabaseCustomURL file://%s\n' \
    "$CASE/db" "$(id -un)" "$CASE/broken.ndb" >"$CASE/c.conf"
cf_expect_exit 8 "$CLAMFRESH" --no-dns --config-file="$CASE/c.conf" --update-db=custom
cf_expect_err 'Database test FAILED'
cf_check "the broken custom database was not installed" test ! -e "$CASE/db/broken.ndb"

# The engine facts cache: an update run keeps libclamav's version beside the
# databases and later runs with the same library file take it from there (so
# an up-to-date run never opens libclamav); read-only runs (-V) use it but
# never write it; a changed library identity is not trusted, and the load test
# still opens the real library with a cache present.
cf_fixtures_use own
cf_tmpdir CASE
mkdir "$CASE/db"
printf 'DatabaseMirror http://127.0.0.1:9\nDatabaseDirectory %s\nDatabaseOwner %s\nMaxAttempts 1\n' \
    "$CASE/db" "$(id -un)" >"$CASE/c.conf"
facts="$CASE/db/clamfresh-engine.state"
cf_expect_exit 0 "$CLAMFRESH" --config-file="$CASE/c.conf" -V
cf_check "-V writes no engine facts" test ! -e "$facts"
"$CLAMFRESH" --no-dns --config-file="$CASE/c.conf" --update-db=test >/dev/null 2>&1
cf_check "an update run caches the engine facts beside the databases" test -s "$facts"
real=$(sed -n 7p "$facts")
cf_expect_exit 0 "$CLAMFRESH" --config-file="$CASE/c.conf" -V
cf_check "the cached version is libclamav's ($real)" grep -q "ClamAV $real" "$CF_OUT"
sed -i '7s/.*/9.8.7/' "$facts"
cf_expect_exit 0 "$CLAMFRESH" --config-file="$CASE/c.conf" -V
cf_expect_out '^ClamAV 9\.8\.7'
sed -i '3s/^[0-9]*/1/' "$facts" # another device: the library changed
cf_expect_exit 0 "$CLAMFRESH" --config-file="$CASE/c.conf" -V
cf_expect_out "^ClamAV $real"
cf_check "-V left the stale cache alone" test "$(sed -n 7p "$facts")" = 9.8.7
"$CLAMFRESH" --no-dns --config-file="$CASE/c.conf" --update-db=test >/dev/null 2>&1
cf_check "an update run rewrote the cache from the library" test "$(sed -n 7p "$facts")" = "$real"
if [ -f "$CF_VECTORS/clamav/test-1.cvd" ]; then
    cf_fixtures_use vectors
    mkdir "$CASE/www"
    cp "$FX/test-1.cvd" "$CASE/db/test.cvd"
    cp "$FX/test-3.cvd" "$CASE/www/test-3.cvd"
    cp "$FX/test-3.cvd" "$CASE/www/test.cvd"
    cf_start_mirror "$CASE/www"
    printf 'DatabaseMirror %s\nDatabaseDirectory %s\nDatabaseOwner %s\nTestDatabases yes\nScriptedUpdates no\n' \
        "$MIRROR_URL" "$CASE/db" "$(id -un)" >"$CASE/c2.conf"
    cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$CASE/c2.conf" "${FX_ARGS[@]}" --update-db=test
    cf_expect_out '^Database test passed\.$'
    cf_check "the load test ran with the cache present" test "$(sed -n 7p "$facts")" = "$real"
    cf_stop "$MIRROR_PID"
fi
