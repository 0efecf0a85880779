#!/usr/bin/env bash
# A current local CVD without its detached .sign fetches it from the mirror
# when the engine reads .sign files (freshclam 1.5, behavior §4.6 item 6; an
# f-level 216 engine, like freshclam 1.4, asks for none) — but only keeps one that verifies
# against the certificates directory, since ClamAV 1.5 would refuse the CVD
# outright with a failing .sign beside it.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
export CLAMFRESH_RETRY_DELAY=0
unset CVD_CERTS_DIR

case_run() { # SIGN_SOURCE_FILE_OR_EMPTY [ENGINE_FLEVEL]
    cf_tmpdir CASE
    mkdir "$CASE/db" "$CASE/www"
    cp "$FX/test-3.cvd" "$CASE/db/test.cvd"
    cp "$FX/test-3.cvd" "$CASE/www/test.cvd"
    [ -n "$1" ] && cp "$1" "$CASE/www/test-3.cvd.sign"
    cf_start_mirror "$CASE/www"
    { printf 'DatabaseMirror %s\nDatabaseDirectory %s\nDatabaseOwner %s\n' "$MIRROR_URL" "$CASE/db" "$(id -un)"
      printf 'EngineFlevel %s\n' "${2:-230}"
      cf_fixtures_conf_loadtest; } >"$CASE/c.conf"
    cf_expect_exit 0 "$CLAMFRESH" --no-dns --config-file="$CASE/c.conf" "${FX_ARGS[@]}" --update-db=test
    cf_expect_out 'test\.cvd database is up-to-date \(version: 3'
    cf_stop "$MIRROR_PID"
}

for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"
    case_run "$FX/test-3.cvd.sign"
    cf_expect_out '^Downloaded missing CVD \.sign file test-3\.cvd\.sign$'
    cf_check "the .sign is stored beside the CVD" cmp -s "$FX/test-3.cvd.sign" "$CASE/db/test-3.cvd.sign"

    # A .sign that does not belong to this CVD is refused and not stored.
    case_run "$FX/test-2.cvd.sign"
    cf_expect_err "Not keeping test-3\\.cvd\\.sign from \\Q$MIRROR_URL\\E/test-3\\.cvd\\.sign"
    cf_check "the failing .sign is not stored" test ! -e "$CASE/db/test-3.cvd.sign"

    # None on the mirror: nothing to do, no noise.
    case_run ""
    cf_expect_no 'Downloaded missing'
    cf_check "no .sign appears" test ! -e "$CASE/db/test-3.cvd.sign"

    # An engine that reads no .sign files (f-level below 230, ClamAV 1.4)
    # never asks for one.
    case_run "$FX/test-3.cvd.sign" 216
    cf_expect_no 'Downloaded missing'
    cf_check "no .sign appears for an f-level 216 engine" test ! -e "$CASE/db/test-3.cvd.sign"
    cf_check "no .sign was requested for an f-level 216 engine" bash -c "! grep -q '\.sign' '$MIRROR_LOG'"
done
