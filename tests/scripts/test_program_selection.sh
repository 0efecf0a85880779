#!/usr/bin/env bash
# Which databases the real clamfresh updates, and what it prunes
# (freshclam-behavior.md §4.1, §4.9): the standard list and its order,
# ExcludeDatabase, Bytecode no, ExtraDatabase, --update-db (no pruning),
# freshclam's exit codes and messages for a bad selection, the prune of
# unwanted files (terminal-only message), and DatabaseCustomURL file:// copies.
# Runs on every fixture set (tests/lib/fixtures.sh).
#
# The mirror log shows which databases were asked for. daily, main and bytecode
# are copies of the set's test-1.cvd on both sides, so they are up to date
# after one header probe each (a header is all the decision reads); "test"
# is the database that really gets updated (1 -> 3).
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
unset CVD_CERTS_DIR

cf_tmpdir WWW
cf_start_mirror "$WWW"

# new_case [CONFIG LINES]: local daily/main/bytecode (version 1) and test-1;
# the mirror has the same standard three and test-3.
new_case() {
    local db
    cf_tmpdir CASE
    DB="$CASE/db"
    mkdir "$DB"
    rm -rf "${WWW:?}"/*
    for db in daily main bytecode; do
        cp "$FX/test-1.cvd" "$DB/$db.cvd"
        cp "$FX/test-1.cvd.sign" "$DB/$db-1.cvd.sign"
        cp "$FX/test-1.cvd" "$WWW/$db.cvd"
    done
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    cp "$FX/test-1.cvd.sign" "$DB/"
    cp "$FX/test-3.cvd" "$WWW/test.cvd"
    cp "$FX/test-3.cvd" "$WWW/test-3.cvd"
    cp "$FX/test-3.cvd.sign" "$WWW/"
    LOG="$CASE/freshclam.log"
    CONF="$CASE/c.conf"
    {
        echo "DatabaseMirror $MIRROR_URL"
        echo "DatabaseDirectory $DB"
        echo "DatabaseOwner $(id -un)"
        echo "ScriptedUpdates no"
        echo "UpdateLogFile $LOG"
        cf_fixtures_conf
        [ -n "${1:-}" ] && printf '%b\n' "$1" | sed "s|@CASE@|$CASE|g"
    } >"$CONF"
    : >"$MIRROR_LOG"
    return 0
}

fc() { cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$CONF" "${@:2}"; }

# asked: the databases whose header was probed, in order, space-separated.
asked() {
    python3 - "$MIRROR_LOG" <<'EOF'
import json, sys
out = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("range") and r.get("path", "").endswith(".cvd"):
        out.append(r["path"].lstrip("/")[:-4])
print(" ".join(out))
EOF
}

expect_asked() {
    local got
    got=$(asked)
    if [ "$got" = "$1" ]; then
        cf_pass "databases asked, in order: $1"
    else
        cf_fail "databases asked should be '$1', were '$got'"
    fi
}

no_network() { cf_check "no request reached the mirror" test ! -s "$MIRROR_LOG"; }

# ------------------------------------------------------------- the selection
selection() {
    # standard list in freshclam's order, then ExtraDatabase
    new_case "ExtraDatabase test"
    fc 0
    expect_asked "daily main bytecode test"
    cf_expect_out '^daily\.cvd database is up-to-date \(version: 1, '
    cf_expect_out '^main\.cvd database is up-to-date \(version: 1, '
    cf_expect_out '^bytecode\.cvd database is up-to-date \(version: 1, '
    cf_expect_out '^test\.cvd updated \(version: 3, '
    cf_expect_no 'Pruning'

    # ExcludeDatabase (case-insensitive) and Bytecode no
    new_case "ExcludeDatabase MAIN\nBytecode no\nExtraDatabase test"
    fc 0
    expect_asked "daily test"
    cf_expect_no '^main\.cvd database|^bytecode\.cvd database'

    # an unknown ExtraDatabase is a warning, not an error
    new_case "ExcludeDatabase daily\nExcludeDatabase main\nExcludeDatabase bytecode\nExtraDatabase test\nExtraDatabase nosuchdb"
    fc 0
    cf_expect_err '^WARNING: Desired optional database "nosuchdb" is not available\.$'
    expect_asked "test"

    # --update-db: exactly these, in command-line order; the config's lists do not matter
    new_case "ExcludeDatabase daily\nBytecode no"
    fc 0 --update-db=test --update-db=daily --update-db=bytecode
    expect_asked "test daily bytecode"

    # bad selections: exit 9 before any network use
    new_case
    fc 9 --update-db=test --update-db=nosuchdb
    cf_check "unknown --update-db: freshclam's two lines" test "$(cat "$CF_ERR")" = \
        "$(printf '%s\n' 'ERROR: Requested database is not available: nosuchdb.' \
            'ERROR: Failed to select specific databases from available official databases.')"
    no_network
    fc 9 --update-db=Daily
    cf_expect_err '^ERROR: Requested database is not available: Daily\.$'
    fc 9 --update-db=custom
    cf_check "custom without URLs: freshclam's line" test "$(cat "$CF_ERR")" = \
        'ERROR: --update-db=custom requires at least one DatabaseCustomURL in freshclam.conf'
    no_network

    # everything excluded, no custom URL: exit 16
    new_case "ExcludeDatabase daily\nExcludeDatabase Main\nExcludeDatabase bytecode"
    fc 16
    cf_expect_err '^ERROR: perform_database_update: No databases requested\.$'
    no_network
    new_case "ExcludeDatabase daily\nExcludeDatabase main\nBytecode no"
    fc 16
}

# -------------------------------------------------------------------- pruning
pruning() {
    local f
    new_case "ExcludeDatabase main\nBytecode no\nExtraDatabase test"
    for f in x.cvd.bak old.cld safebrowsing.cvd unwanted.cvd.tmp daily-extra.cvd notes.txt; do
        echo "not a database" >"$DB/$f"
    done
    fc 0
    for f in main.cvd main-1.cvd.sign bytecode.cvd bytecode-1.cvd.sign x.cvd.bak old.cld safebrowsing.cvd \
        unwanted.cvd.tmp; do
        cf_expect_out "^Pruning unwanted or deprecated database file \\Q$f\\E\\.\$"
        cf_check "$f pruned" test ! -e "$DB/$f"
    done
    # kept: the selected databases (and what their base name covers), non-database files
    for f in daily.cvd daily-1.cvd.sign daily-extra.cvd notes.txt freshclam.dat; do
        cf_check "$f kept" test -e "$DB/$f"
    done
    cf_expect_no 'Pruning unwanted or deprecated database file (daily|test|notes|freshclam)'
    cf_check "prune messages are terminal-only (not in the log file)" bash -c "! grep -q Pruning '$LOG'"
    cf_check "pruning happens before any download (message precedes the first probe)" bash -c \
        "[ \$(grep -n 'Pruning' '$CF_OUT' | head -n1 | cut -d: -f1) -lt \$(grep -n 'Trying to retrieve' '$CF_OUT' | head -n1 | cut -d: -f1) ]"
    expect_asked "daily test"

    # --update-db: no pruning at all
    new_case "ExcludeDatabase main\nBytecode no"
    echo "not a database" >"$DB/x.cvd.bak"
    fc 0 --update-db=test
    cf_expect_no 'Pruning'
    for f in x.cvd.bak main.cvd bytecode.cvd; do
        cf_check "--update-db: $f kept" test -e "$DB/$f"
    done
}

# ---------------------------------------------------- DatabaseCustomURL file://
custom_urls() {
    local src sigs
    new_case "ExcludeDatabase daily\nExcludeDatabase main\nExcludeDatabase bytecode"
    src="$CASE/src"
    mkdir "$src"
    cp "$FX/test-3.cvd" "$src/test.cvd"
    printf '# three hash signatures\n%s\n%s\n%s\n' \
        '44d88612fea8a8f36de82e1278abb02f:68:Cf.Custom-1' \
        '0123456789abcdef0123456789abcdef:10:Cf.Custom-2' \
        'fedcba9876543210fedcba9876543210:20:Cf.Custom-3' >"$src/cf.hdb"
    # older than the copies the run makes, which must be strictly newer (§4.9)
    touch -d '-10 min' "$src/test.cvd" "$src/cf.hdb"
    printf 'DatabaseCustomURL file://%s\nDatabaseCustomURL file://%s\n' "$src/test.cvd" "$src/cf.hdb" >>"$CONF"
    rm -f "$DB/test.cvd" "$DB/test-1.cvd.sign"
    sigs=$(head -c 512 "$FX/test-3.cvd" | cut -d: -f4)
    fc 0
    cf_expect_out '^Downloading test\.cvd \[100%\]$'
    cf_expect_out "^test\\.cvd updated \\(version: custom database, sigs: $sigs\\)\$"
    cf_expect_out '^Downloading cf\.hdb \[100%\]$'
    cf_expect_out '^cf\.hdb updated \(version: custom database, sigs: 3\)$'
    cf_check "test.cvd copied byte for byte" cmp -s "$src/test.cvd" "$DB/test.cvd"
    cf_check "cf.hdb copied byte for byte" cmp -s "$src/cf.hdb" "$DB/cf.hdb"
    cf_check "custom databases processed in config order" bash -c \
        "[ \$(grep -n 'Downloading test.cvd' '$CF_OUT' | cut -d: -f1) -lt \$(grep -n 'Downloading cf.hdb' '$CF_OUT' | cut -d: -f1) ]"
    no_network
    # up to date: the local copies are newer than the sources
    fc 0
    cf_expect_out '^test\.cvd is up-to-date \(version: custom database\)$'
    cf_expect_out '^cf\.hdb is up-to-date \(version: custom database\)$'
    cf_expect_no 'Downloading'
    # a newer source is copied again
    cp "$FX/test-2.cvd" "$src/test.cvd"
    touch -d '+1 min' "$src/test.cvd"
    fc 0
    cf_expect_out '^Downloading test\.cvd \[100%\]$'
    cf_expect_out '^cf\.hdb is up-to-date'
    cf_check "the newer source replaced the copy" cmp -s "$src/test.cvd" "$DB/test.cvd"
    # --update-db=custom: the custom URLs only
    new_case "DatabaseCustomURL file://$src/cf.hdb"
    fc 0 --update-db=custom
    cf_expect_out '^cf\.hdb updated \(version: custom database, sigs: 3\)$'
    no_network
    cf_expect_no 'Pruning'
    # a missing source: exit 14 with freshclam's line
    new_case "DatabaseCustomURL file://@CASE@/nothere.hdb\nExcludeDatabase daily\nExcludeDatabase main\nExcludeDatabase bytecode"
    fc 14
    cf_expect_out "^DatabaseCustomURL: file \\Q$CASE/nothere.hdb\\E missing\$"
}

for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"
    selection
    pruning
    custom_urls
done
