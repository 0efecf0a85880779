#!/usr/bin/env bash
# Start-up and configuration of the real clamfresh (freshclam-behavior.md §1-§3,
# §4.8): -V with and without a daily database, --help without a config,
# freshclam's exact texts and exit codes for config problems, --list-mirrors,
# and PrivateMirror: a CLD served by a private mirror is installed once it
# passes its signed manifest, a tampered one is refused with the old database
# kept, and names under clamav.net are rejected. Runs on every fixture set
# (tests/lib/fixtures.sh).
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
[ -x "$CVDTOOL" ] || cf_skip "cvdtool not built"
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
unset CVD_CERTS_DIR

cf_tmpdir WWW
cf_start_mirror "$WWW"

new_case() {
    cf_tmpdir CASE
    DB="$CASE/db"
    mkdir "$DB"
    CONF="$CASE/c.conf"
    {
        echo "DatabaseMirror $MIRROR_URL"
        echo "DatabaseDirectory $DB"
        echo "DatabaseOwner $(id -un)"
        cf_fixtures_conf
    } >"$CONF"
    : >"$MIRROR_LOG"
}

no_network() { cf_check "no request reached the mirror" test ! -s "$MIRROR_LOG"; }

# hdr FILE N: header field N (1-based, §0) of a CVD/CLD.
hdr() { head -c 512 "$1" | cut -d: -f"$2"; }

# ctime_of SECONDS: C ctime() of SECONDS in local time, without the newline.
ctime_of() { LC_ALL=C date -d "@$1" '+%a %b %e %H:%M:%S %Y'; }

# ------------------------------------------------------------------ -V
version() {
    local engine v2 t2 v3 t3
    new_case
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CONF" -V
    cf_check "-V without a daily database: exactly 'ClamAV <version>'" \
        grep -qxP 'ClamAV \d+\.\d+\.\d+[^/\s]*' "$CF_OUT"
    cf_check "-V prints one line" test "$(wc -l <"$CF_OUT")" = 1
    engine=$(sed -n 's/^ClamAV //p' "$CF_OUT")
    no_network
    # -V reads only the header of daily.cvd / daily.cld
    cp "$FX/test-2.cvd" "$DB/daily.cvd"
    v2=$(hdr "$FX/test-2.cvd" 3)
    t2=$(hdr "$FX/test-2.cvd" 9)
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CONF" --version
    cf_check "-V with daily.cvd: 'ClamAV $engine/$v2/$(ctime_of "$t2")'" \
        test "$(cat "$CF_OUT")" = "ClamAV $engine/$v2/$(ctime_of "$t2")"
    # a higher daily.cld wins
    cp "$FX/test-3.cvd" "$DB/daily.cld"
    v3=$(hdr "$FX/test-3.cvd" 3)
    t3=$(hdr "$FX/test-3.cvd" 9)
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CONF" -V
    cf_check "-V with a newer daily.cld: 'ClamAV $engine/$v3/...'" \
        test "$(cat "$CF_OUT")" = "ClamAV $engine/$v3/$(ctime_of "$t3")"
    # ... and a higher daily.cvd wins over a lower daily.cld
    cp "$FX/test-3.cvd" "$DB/daily.cvd"
    cp "$FX/test-2.cvd" "$DB/daily.cld"
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CONF" -V
    cf_check "-V: the higher version wins whatever the extension" \
        test "$(cat "$CF_OUT")" = "ClamAV $engine/$v3/$(ctime_of "$t3")"
    # --datadir beats DatabaseDirectory
    cf_tmpdir OTHER
    cp "$FX/test-2.cvd" "$OTHER/daily.cvd"
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CONF" --datadir="$OTHER" -V
    cf_check "-V --datadir: reads that directory's daily" \
        test "$(cat "$CF_OUT")" = "ClamAV $engine/$v2/$(ctime_of "$t2")"
    # a daily that is not a database is ignored
    echo "not a database" >"$OTHER/daily.cvd"
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CONF" --datadir="$OTHER" -V
    cf_check "-V with an unreadable daily header: plain 'ClamAV $engine'" test "$(cat "$CF_OUT")" = "ClamAV $engine"
    # -V is answered after the config: a missing config still fails
    cf_expect_exit 2 "$CLAMFRESH" --config-file="$CASE/missing.conf" -V
    cf_expect_err "^ERROR: Can't open/parse the config file \\Q$CASE/missing.conf\\E\$"
    no_network
}

# ---------------------------------------------------------------- --help
help() {
    new_case
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CASE/missing.conf" --help
    cf_expect_out '^\s+Clam AntiVirus: Database Updater \d+\.\d+'
    cf_expect_out '^\s+--update-db=DBNAME\s'
    # The built-in default (settings.c, clamfresh.conf(5)), not an older one.
    cf_expect_out 'ConcurrentDownloads N \(parallel cdiff downloads, 1\.\.16, default 8\)'
    cf_check "--help: nothing on stderr (the config is not read)" test ! -s "$CF_ERR"
    cf_expect_exit 0 "$CLAMFRESH" -h --config-file="$CASE/missing.conf"
    cf_expect_out 'Clam AntiVirus: Database Updater'
    no_network
}

# --------------------------------------------------------- config problems
config_errors() {
    new_case
    # an explicit config file that does not exist
    cf_expect_exit 2 "$CLAMFRESH" --config-file="$CASE/nothere.conf"
    cf_check "missing config: exactly freshclam's line" \
        test "$(cat "$CF_ERR")" = "ERROR: Can't open/parse the config file $CASE/nothere.conf"
    cf_check "missing config: nothing on stdout" test ! -s "$CF_OUT"

    # an Example line (after leading blanks) is fatal
    printf '\n    Example\n' >>"$CONF"
    cf_expect_exit 2 "$CLAMFRESH" --config-file="$CONF"
    cf_check "Example: freshclam's two lines" test "$(cat "$CF_ERR")" = \
        "$(printf "ERROR: Please edit the example config file %s\nERROR: Can't open/parse the config file %s" "$CONF" "$CONF")"

    # an unknown directive, with file and line; clamd's LogFile is unknown here too
    new_case
    local n
    printf '# a comment\n\n  FooBar yes\n' >>"$CONF"
    n=$(grep -n 'FooBar' "$CONF" | cut -d: -f1)
    cf_expect_exit 2 "$CLAMFRESH" --config-file="$CONF"
    cf_expect_err "^ERROR: Parse error at \\Q$CONF\\E:$n: Unknown option FooBar\$"
    cf_expect_err "^ERROR: Can't open/parse the config file \\Q$CONF\\E\$"
    new_case
    echo "LogFile $CASE/x.log" >>"$CONF"
    n=$(grep -n '^LogFile' "$CONF" | cut -d: -f1)
    cf_expect_exit 2 "$CLAMFRESH" --config-file="$CONF"
    cf_expect_err "^ERROR: Parse error at \\Q$CONF\\E:$n: Unknown option LogFile\$"
    # names are case-sensitive
    new_case
    echo "databasedirectory $DB" >>"$CONF"
    cf_expect_exit 2 "$CLAMFRESH" --config-file="$CONF"
    cf_expect_err 'Unknown option databasedirectory$'
    # a name without a value; a bad value
    new_case
    echo "Checks" >>"$CONF"
    n=$(grep -n '^Checks' "$CONF" | cut -d: -f1)
    cf_expect_exit 2 "$CLAMFRESH" --config-file="$CONF"
    cf_expect_err "^ERROR: Missing argument for option at \\Q$CONF\\E:$n\$"
    new_case
    echo "MaxAttempts many" >>"$CONF"
    cf_expect_exit 2 "$CLAMFRESH" --config-file="$CONF"
    cf_expect_err '^ERROR: Incorrect argument format for option MaxAttempts$'
    # no mirror at all: exit 9
    new_case
    sed -i '/^DatabaseMirror/d' "$CONF"
    cf_expect_exit 9 "$CLAMFRESH" --config-file="$CONF"
    cf_expect_err '^ERROR: No DatabaseMirror or PrivateMirror servers set in freshclam config file\.$'
    cf_expect_err '^ERROR: Unable to find DatabaseMirror or PrivateMirror option\(s\) that specify database server FQDNs\.$'
    no_network
    # an unknown command-line option
    new_case
    cf_expect_exit 2 "$CLAMFRESH" --config-file="$CONF" --bogus
    cf_expect_err '^ERROR: Unknown option passed$'
    cf_expect_err "^ERROR: Can't parse command line options\$"
    no_network
}

# ---------------------------------------------------------- --list-mirrors
list_mirrors() {
    new_case
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CONF" --list-mirrors
    cf_check "--list-mirrors: freshclam's deprecation warning, alone" test "$(cat "$CF_ERR")" = \
        "WARNING: Deprecated option --list-mirrors. Individual mirrors are no longer tracked, as official signature distribution is now done through the CloudFlare CDN."
    cf_check "--list-mirrors: nothing on stdout" test ! -s "$CF_OUT"
    no_network
    cf_check "--list-mirrors: nothing written to the database directory" test -z "$(ls -A "$DB")"
}

# ----------------------------------------------------------- PrivateMirror
# tamper SRC DST: DST is the CLD SRC with one letter of a signature member's
# content changed (tar structure intact), so only the signed manifest can tell.
tamper() {
    python3 - "$1" "$2" <<'EOF'
import io, sys, tarfile
d = bytearray(open(sys.argv[1], "rb").read())
tf = tarfile.open(fileobj=io.BytesIO(bytes(d[512:])), mode="r:")
for m in tf.getmembers():
    if m.isfile() and m.size > 0 and m.name != "COPYING" and not m.name.endswith(".info"):
        off = 512 + m.offset_data
        for i in range(off, off + m.size):
            if 0x61 <= d[i] <= 0x7a or 0x41 <= d[i] <= 0x5a:
                d[i] ^= 0x20
                break
        else:
            continue
        break
else:
    sys.exit("no member to tamper with")
open(sys.argv[2], "wb").write(d)
EOF
}

private_mirror() {
    local trust=() cld="$CASE/test-3.cld"
    new_case
    [ "$FX_SET" = own ] && trust=(--trust-key "$FX/key.pub")
    cld="$CASE/test-3.cld"
    if ! "$CVDTOOL" apply "${trust[@]}" --certsdir "$FX_CERTS" "$FX/test-1.cvd" "$FX/test-2.cdiff" \
        "$FX/test-3.cdiff" -o "$cld" >"$CASE/apply.log" 2>&1; then
        cf_fail "cvdtool apply could not build the CLD: $(tail -n 3 "$CASE/apply.log")"
        return
    fi
    rm -rf "${WWW:?}"/*
    cp "$cld" "$WWW/test.cld"
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    cp "$FX/test-1.cvd.sign" "$DB/"
    # no scheme: http:// (§3.2)
    sed -i "s|^DatabaseMirror .*|PrivateMirror ${MIRROR_URL#http://}|" "$CONF"
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CONF" --update-db=test
    cf_expect_err '^WARNING: DNS Update Info disabled\. Falling back to HTTP mode\.$'
    cf_expect_out "^Trying to retrieve CVD header from \\Q$MIRROR_URL/test.cld\\E\$"
    cf_expect_out '^test\.cld updated \(version: 3, '
    cf_check "the private mirror's CLD installed byte for byte" cmp -s "$cld" "$DB/test.cld"
    cf_check "the old test.cvd and its .sign removed" test ! -e "$DB/test.cvd" -a ! -e "$DB/test-1.cvd.sign"
    cf_check "no DNS, no probe of test.cvd" bash -c "! grep -q '\"path\": \"/test.cvd\"' '$MIRROR_LOG'"
    cf_expect_no 'WARNING: .*cdiff'
    cf_check "the installed CLD verifies on the set's trust" cf_fixtures_verify "$DB/test.cld"
    # up to date on the second run
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CONF" --update-db=test
    cf_expect_out '^test\.cld database is up-to-date \(version: 3, '

    # a tampered CLD (one letter of a signature file changed): refused, old database kept
    new_case
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    rm -rf "${WWW:?}"/*
    tamper "$cld" "$WWW/test.cld" || cf_abort "could not tamper with $cld"
    cf_check "the tampered CLD differs from the good one" bash -c "! cmp -s '$cld' '$WWW/test.cld'"
    sed -i "s|^DatabaseMirror .*|PrivateMirror $MIRROR_URL|" "$CONF"
    cf_expect_exit 7 "$CLAMFRESH" --config-file="$CONF" --update-db=test
    # refused by the signed .info manifest (the member's hash), not by the tar layer
    cf_expect_err "^ERROR: Verification: \\S+: .* but \\S+\\.info says .*\\Q$MIRROR_URL/test.cld\\E"
    cf_expect_err '^ERROR: Update failed for database: test$'
    cf_expect_err '^ERROR: Database update process failed: Invalid or corrupted CVD/CLD database$'
    cf_check "old test.cvd kept byte for byte" cmp -s "$FX/test-1.cvd" "$DB/test.cvd"
    cf_check "no test.cld installed" test ! -e "$DB/test.cld"

    # a private mirror without a CLD: the CVD, after freshclam's warning
    new_case
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    rm -rf "${WWW:?}"/*
    cp "$FX/test-3.cvd" "$WWW/test.cvd"
    cp "$FX/test-3.cvd.sign" "$WWW/"
    sed -i "s|^DatabaseMirror .*|PrivateMirror $MIRROR_URL|" "$CONF"
    cf_expect_exit 0 "$CLAMFRESH" --config-file="$CONF" --update-db=test
    cf_expect_err "^WARNING: remote_cvdhead: file not found: \\Q$MIRROR_URL/test.cld\\E\$"
    cf_expect_out '^test\.cvd updated \(version: 3, '

    # PrivateMirror beats DatabaseMirror; names under clamav.net are refused (exit 9)
    new_case
    printf 'PrivateMirror %s\n' "mirror.ClamAV.NET" >>"$CONF"
    cf_expect_exit 9 "$CLAMFRESH" --config-file="$CONF" --update-db=test
    cf_check "PrivateMirror under clamav.net: freshclam's line" \
        grep -qx 'ERROR: The PrivateMirror config option may not include servers under \*\.clamav\.net\.' "$CF_ERR"
    no_network
}

# The database-free checks run once, with the first set's config lines.
first=1
for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"
    if [ "$first" = 1 ]; then
        help
        config_errors
        list_mirrors
        first=0
    fi
    version
    private_mirror
done
