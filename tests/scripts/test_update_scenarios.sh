#!/usr/bin/env bash
# freshclam's own mock-mirror suite (freshclam-behavior.md §10.3), scenarios
# 00-08, against the real clamfresh binary and the test mirror. Scenarios 02-08
# run on every fixture set (tests/lib/fixtures.sh): always on databases made
# here (test-1..6, own key and PKI, trusted through the config), and again on
# the real ClamAV-signed vectors when present. The vectors stop at version 3, so
# scenarios 06-08 use versions 1..3 on both sets ("6" of the original becomes
# "3"); 05 goes from 1 to the set's newest version (6 on the own set, as in
# freshclam's suite). 00 and 01 use no fixtures and run once.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
unset CVD_CERTS_DIR

cf_tmpdir WWW
cf_start_mirror "$WWW" --advertised-served

# A fresh database directory and config (§10.1 common config "C"), plus the
# lines that trust the current fixture set.
new_case() {
    cf_tmpdir CASE
    DB="$CASE/database"
    mkdir "$DB"
    rm -rf "${WWW:?}"/*
    CONF="$CASE/freshclam-test.conf"
    cat >"$CONF" <<EOF

    DatabaseMirror $MIRROR_URL
    DNSDatabaseInfo no
    PidFile $CASE/freshclam-test.pid
    LogVerbose yes
    LogFileMaxSize 0
    LogTime yes
    DatabaseDirectory $DB
    DatabaseOwner $(id -un)

EOF
    if [ -n "${FX_SET:-}" ]; then
        cf_fixtures_conf >>"$CONF"
        # As a ClamAV 1.5 engine (f-level 230), which reads .sign files, so the
        # scenarios see them asked for and installed whatever libclamav is here.
        echo "EngineFlevel 230" >>"$CONF"
    fi
}

fc() { cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$CONF" "${@:2}"; }

db_version() { # prints the version of test.cvd/test.cld in $DB
    local f
    for f in "$DB/test.cvd" "$DB/test.cld"; do
        [ -f "$f" ] && { head -c 512 "$f" | cut -d: -f3; return; }
    done
    echo none
}

expect_db() { # FILE VERSION
    if [ -f "$DB/$1" ] && [ "$(head -c 512 "$DB/$1" | cut -d: -f3)" = "$2" ]; then
        cf_pass "database is $1 version $2"
    else
        cf_fail "database should be $1 version $2, is $(ls "$DB") version $(db_version)"
    fi
}

local_test1() {
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    cp "$FX/test-1.cvd.sign" "$DB/"
}

# ------------------------------------------------ 00, 01: no fixtures needed

# 00 version
new_case
cat >"$CONF" <<EOF
DatabaseMirror http://127.0.0.1:8001
EOF
cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$CONF" -V
cf_expect_out '^ClamAV \d+\.\d+'

# 01 file copy (DatabaseCustomURL file://)
new_case
echo 'aa6b9c7e8ce2a5bc8bb5c0a5c4a3d5b7:68:Test.Sig' >"$WWW/clamav.hdb"
cat >>"$CONF" <<EOF
DatabaseCustomURL file://$WWW/clamav.hdb
ExcludeDatabase daily
ExcludeDatabase main
ExcludeDatabase bytecode
EOF
fc 0
cf_expect_out 'Downloading clamav.hdb'
cf_expect_out 'Database test passed.'
cf_expect_out 'clamav.hdb updated'

# ------------------------------------------------ 02-08 on each fixture set
scenarios() {
    local v
    # 02 http 403, then cool-down
    new_case
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    # the probe (Range) gets a header, the download gets 403
    echo '{"/test-3.cvd": {"status": 403}}' >"$CASE/faults"
    local good=$MIRROR_URL good_log=$MIRROR_LOG good_pid=$MIRROR_PID
    cf_start_mirror "$WWW" --advertised-served --faults "$CASE/faults"
    sed -i "s|DatabaseMirror .*|DatabaseMirror $MIRROR_URL|" "$CONF"
    fc 17 --update-db=test
    cf_expect_err 'FreshClam received error code 403'
    cf_expect_err 'Forbidden'
    fc 0 --update-db=test
    cf_expect_err 'FreshClam previously received error code 429 or 403'
    cf_expect_err 'You are still on cool-down until after'

    # 03 403 in daemon mode
    rm -f "$DB/freshclam.dat"
    fc 17 --update-db=test --daemon -F
    cf_expect_err 'FreshClam received error code 403'
    cf_expect_err 'Forbidden'
    cf_stop "$MIRROR_PID"

    # 04 http 429: exit 0
    new_case
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    echo '{"/test-3.cvd": {"status": 429, "retry_after": "60"}}' >"$CASE/faults"
    cf_start_mirror "$WWW" --advertised-served --faults "$CASE/faults"
    sed -i "s|DatabaseMirror .*|DatabaseMirror $MIRROR_URL|" "$CONF"
    fc 0 --update-db=test
    cf_expect_err 'FreshClam received error code 429'
    cf_expect_err 'You are on cool-down'
    cf_stop "$MIRROR_PID"
    # back to the well-behaved mirror for the rest
    MIRROR_URL=$good MIRROR_LOG=$good_log MIRROR_PID=$good_pid

    # 05 cdiff update, 1 -> newest
    new_case
    local_test1
    cp "$FX/test-$FX_TOP.cvd" "$WWW/test.cvd.advertised"
    for v in $(seq 2 "$FX_TOP"); do cp "$FX/test-$v.cdiff" "$FX/test-$v.cdiff.sign" "$WWW/"; done
    : >"$MIRROR_LOG"
    fc 0 --update-db=test
    cf_expect_out 'test.cld updated'
    cf_expect_no 'already up-to-date'
    expect_db test.cld "$FX_TOP"
    cf_check "every patch and its .sign asked once" \
        test "$(cf_mirror_count '"path": "/test-\d+\.cdiff(\.sign)?"')" = $((2 * (FX_TOP - 1)))
    cf_check "old CVD and its .sign removed" test ! -e "$DB/test.cvd" -a ! -e "$DB/test-1.cvd.sign"
    cf_check "no temporary left in the database directory" bash -c "! ls -A '$DB' | grep -q tmp"
    cf_check "the CLD verifies on the set's trust" cf_fixtures_verify "$DB/test.cld"
    if [ "$FX_SET" = vectors ] && command -v sigtool >/dev/null; then
        cf_check "sigtool accepts the CLD" bash -c "cd '$CASE' && mkdir -p st && cp '$DB/test.cld' st/ && sigtool --info st/test.cld | grep -q 'Verification OK'"
    fi

    # 06 partial update, one patch missing (run twice)
    new_case
    local_test1
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    cp "$FX"/test-2.cdiff* "$WWW/"
    : >"$MIRROR_LOG"
    fc 0 --update-db=test
    cf_expect_out 'Downloaded 1 patches for test, which is fewer than the 2 expected patches'
    cf_expect_out "We'll settle for this partial-update, at least for now"
    cf_expect_out 'test.cld updated'
    cf_expect_no 'already up-to-date'
    cf_check "missing patch asked MaxAttempts (3) times" test "$(cf_mirror_count '"path": "/test-3.cdiff"')" = 3
    fc 0 --update-db=test
    cf_expect_out "The database server doesn't have the latest patch"
    cf_expect_out 'The server will likely have updated if you check again in a few hours'
    cf_expect_no 'test.cld updated'
    cf_expect_no 'test.cvd updated'
    expect_db test.cld 2

    # 07 partial update, two behind with no patch: whole CVD
    new_case
    local_test1
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    cp "$FX/test-3.cvd" "$WWW/test.cvd.served"
    cp "$FX/test-3.cvd.sign" "$WWW/"
    fc 0 --update-db=test
    cf_expect_err 'Incremental update failed, trying to download test.cvd'
    cf_expect_out 'test.cvd updated'
    cf_expect_no 'test.cld updated'
    expect_db test.cvd 3
    cf_check ".sign installed beside the CVD" cmp -s "$DB/test-3.cvd.sign" "$FX/test-3.cvd.sign"

    # 07 zero-byte cdiff (three runs)
    new_case
    local_test1
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    : >"$WWW/test-2.cdiff"
    cp "$FX/test-2.cvd" "$WWW/test.cvd.served"
    cp "$FX/test-2.cvd.sign" "$WWW/"
    cp "$FX"/test-3.cdiff* "$WWW/"
    fc 0 --update-db=test
    cf_expect_out 'test.cvd updated \(version: 2'
    cf_expect_err 'Received an older test CVD than was advertised. Incremental updates either failed or '
    cf_expect_no 'already up-to-date'
    fc 0 --update-db=test
    cf_expect_out 'test.cld updated \(version: 3'
    cf_expect_no 'already up-to-date'
    cf_expect_no 'Received an older test CVD than was advertised'
    cf_expect_no 'Incremental update failed, trying to download test.cvd'
    fc 0 --update-db=test
    cf_expect_out 'database is up-to-date'
    cf_expect_no 'test.cld updated \(version: 3'
    cf_expect_no 'Incremental update failed'

    # 08 cdiff twice
    new_case
    local_test1
    cp "$FX/test-2.cvd" "$WWW/test.cvd.advertised"
    cp "$FX"/test-2.cdiff* "$WWW/"
    fc 0 --debug --update-db=test
    cf_expect_out 'test.cld updated'
    cf_expect_no 'already up-to-date'
    cp "$FX/test-3.cvd" "$WWW/test.cvd.advertised"
    cp "$FX"/test-3.cdiff* "$WWW/"
    fc 0 --debug --update-db=test
    cf_expect_out 'test.cld updated \(version: 3'
    expect_db test.cld 3
}

for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"
    scenarios
done
