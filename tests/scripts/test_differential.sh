#!/usr/bin/env bash
# Differential test: Debian's real freshclam (1.4.x) and clamfresh run side by
# side on identical fresh copies of each scenario (same config text apart from
# DatabaseDirectory and the mirror URL, same database directory contents, same
# mirror contents, each program against its own fresh tests/servers/mirror.py),
# and what scripts and administrators observe is compared:
#
#   * the exit status,
#   * the final database state (test.cvd / test.cld and its header version,
#     or the custom database file),
#   * a list of key messages per scenario (freshclam-behavior.md §8.6) that
#     must hold for freshclam (else the scenario's premise is wrong) and then
#     must hold for clamfresh too.
#
# A difference counts as a failure unless it is one of the deliberate ones of
# clamfresh(1), listed in ALLOW below with the man page sentence; an allowed
# difference is asserted exactly (clamfresh must show precisely the documented
# behaviour, not merely "something else").
#
# Only ClamAV-signed data is accepted by freshclam, so this uses the real
# vectors of $CF_VECTORS/clamav and skips (77) without them or without
# freshclam. The DNS scenarios need root (network namespace + dnsmasq) and are
# left out otherwise. Every config has MaxAttempts 1 (freshclam sleeps 5 s
# between attempts) and TestDatabases yes (both load-test with libclamav).
# Each scenario (each run of a multi-run one) prints a table line, and the
# whole table is repeated at the end:
#   scenario | freshclam exit | clamfresh exit | db freshclam | db clamfresh | verdict
# CF_DIFF_VERBOSE=1 shows both programs' output for every run, not only for
# failures; CF_KEEP=1 keeps the scenario directories (each has a "name" file).
. "$(dirname "$0")/../lib/harness.sh"

[ -x "${CLAMFRESH:-}" ] || cf_skip "clamfresh not built"
FRESHCLAM=$(command -v freshclam) || cf_skip "freshclam not installed (Debian package clamav-freshclam)"
VEC="$CF_VECTORS/clamav"
for f in test-1.cvd test-2.cvd test-3.cvd test-2.cdiff test-3.cdiff clamav-test.crt \
    test-1.cvd.sign test-2.cvd.sign test-3.cvd.sign test-2.cdiff.sign test-3.cdiff.sign; do
    [ -f "$VEC/$f" ] || cf_skip "ClamAV-signed vector $VEC/$f is absent (freshclam accepts only ClamAV-signed data)"
done
"$FRESHCLAM" -V 2>/dev/null | grep -q '^ClamAV 1\.4\.' ||
    echo "# note: this test was written against freshclam 1.4.6; found: $("$FRESHCLAM" -V 2>&1 | head -n1)"

# Both programs get the same certificates directory; freshclam 1.4 ignores it.
cf_tmpdir CERTS
cp "$VEC/clamav-test.crt" "$CERTS/"
export CVD_CERTS_DIR=$CERTS
unset CLAMFRESH_RETRY_DELAY

# ------------------------------------------------------------------ allowed differences
# Key: "SCENARIO|ASPECT" where ASPECT is "exit", "state", "extra requests" or a
# message check as written in the scenario. Value: what clamfresh must show
# instead (exit status, database state, the requests it makes beyond
# freshclam's, or "absent"/"present" for a message check).
declare -A ALLOW=(
    # clamfresh(1), HOW CLAMFRESH FETCHES, "Never older": "A downloaded database
    # whose version is not newer than the installed one is never installed; the
    # local copy is kept and the mismatch is reported. (freshclam installs an
    # older-than-advertised copy and then tries again.)"
    ["older than local|state"]="test.cvd:2"
    ["older than local|out:^test\\.cvd updated \\(version: 1,"]="absent"
    ["older than local|out:^Database test passed\\."]="absent"
    ["older than local|err:Received an older test CVD than was advertised\\. Incremental updates either failed"]="absent"

    # Not (yet) in clamfresh(1): a 403 or 429 answer to the version probe.
    # freshclam 1.4.6 parses the error page as a CVD header ("Malformed CVD
    # header", exit 11) although it does record the cool-down (its next run is
    # on cool-down, as the run-2 rows show). clamfresh treats the probe like
    # every other request: 403 = exit 17 with the CDN help text, 429 = exit 0
    # with the rate-limit text -- what freshclam's own exit-code table promises
    # for "HTTP 403 on any request" and what its suite expects of a 403.
    ["403 on the probe run 1|exit"]="17"
    ["403 on the probe run 1|err:remote_cvdhead: Malformed CVD header"]="absent"
    ["403 on the probe run 1|no:FreshClam received error code 403"]="present"
    ["403 on the probe run 1|err:^ERROR: Database update process failed: HTTP GET failed"]="absent"
    ["429 on the probe run 1|exit"]="0"
    ["429 on the probe run 1|err:remote_cvdhead: Malformed CVD header"]="absent"
    ["429 on the probe run 1|no:FreshClam received error code 429"]="present"
    ["429 on the probe run 1|err:^ERROR: Update failed\\."]="absent"

    # clamfresh(1), "Learning the version without DNS": beside the header probe
    # the mirror's version pointer and the next patch are asked; a mirror with
    # neither gets one HEAD for the next versioned file.
    ["up to date|extra requests"]="/test-4.cdiff /test-4.cvd /test.version?r=RUN"
    ["up to date, no local .sign|extra requests"]="/test-4.cdiff /test-4.cvd /test.version?r=RUN"
)

# ------------------------------------------------------------------ scenario plumbing

ROWS=()
SC=
SCD=
RUN=0
# Per-program results (p = f for freshclam, c for clamfresh), set through
# printf -v by start_scenario and run_both: RC_p, OUT_p, ERR_p, URL_p, LOG_p, PID_p.
RC_f='' RC_c='' OUT_f='' OUT_c='' PID_f='' PID_c=''

# new_scenario NAME [RUNS]: a fresh scenario directory with www/ (mirror
# contents), seed/ (database directory contents) and conf.extra (config
# lines). With RUNS > 1 every run has its own table line ("NAME run N").
new_scenario() {
    SC=$1
    SC_RUNS=${2:-1}
    cf_tmpdir SCD
    echo "$SC" >"$SCD/name" # for CF_KEEP=1 inspection
    WWW="$SCD/www"
    SEED="$SCD/seed"
    mkdir "$WWW" "$SEED"
    echo '{}' >"$SCD/faults"
    : >"$SCD/conf.extra"
    MIRROR_KIND=DatabaseMirror
    MIRROR_FIXED=
    RUN=0
    RUN_LABEL=
    SC_DIFF=()
    SC_ALLOWED=()
    cf__say "# ---- scenario: $SC"
}

# start_scenario: per program p in f (freshclam) and c (clamfresh): its own copy
# of seed/ as database directory, of www/ and of the faults, its own mirror and
# config. Identical contents: copies keep the mtimes.
start_scenario() {
    local p
    for p in f c; do
        mkdir "$SCD/$p"
        cp -a "$SEED" "$SCD/$p/db"
        cp -a "$WWW" "$SCD/$p/www"
        cp "$SCD/faults" "$SCD/$p/faults"
        if [ -n "$MIRROR_FIXED" ]; then
            printf -v "URL_$p" '%s' "$MIRROR_FIXED"
            printf -v "LOG_$p" '%s' "$SCD/$p/none.jsonl"
            : >"$SCD/$p/none.jsonl"
        else
            cf_start_mirror "$SCD/$p/www" --advertised-served --faults "$SCD/$p/faults"
            printf -v "URL_$p" '%s' "$MIRROR_URL"
            printf -v "LOG_$p" '%s' "$MIRROR_LOG"
            printf -v "PID_$p" '%s' "$MIRROR_PID"
        fi
        local url_var="URL_$p"
        {
            echo "$MIRROR_KIND ${!url_var}"
            echo "DatabaseDirectory $SCD/$p/db"
            echo "DatabaseOwner $(id -un)"
            echo "LogTime no"
            echo "TestDatabases yes"
            echo "MaxAttempts 1"
            cat "$SCD/conf.extra"
        } >"$SCD/$p/conf"
    done
}

stop_scenario() {
    [ -n "${PID_f:-}" ] && cf_stop "$PID_f"
    [ -n "${PID_c:-}" ] && cf_stop "$PID_c"
    PID_f=
    PID_c=
}

# run_both ARGS...: runs freshclam, then clamfresh, each with its own config
# and ARGS; RC_f/RC_c, OUT_f/ERR_f, OUT_c/ERR_c hold the results. With
# RUN_PREFIX set (an array), the commands run under it (e.g. ip netns exec).
RUN_PREFIX=()
run_both() {
    local p prog
    RUN=$((RUN + 1))
    for p in f c; do
        prog=$FRESHCLAM
        [ $p = c ] && prog=$CLAMFRESH
        local out="$SCD/$p/out.$RUN" err="$SCD/$p/err.$RUN"
        "${RUN_PREFIX[@]}" "$prog" --config-file="$SCD/$p/conf" "$@" >"$out" 2>"$err" </dev/null
        printf -v "RC_$p" '%s' "$?"
        printf -v "OUT_$p" '%s' "$out"
        printf -v "ERR_$p" '%s' "$err"
    done
    RUN_LABEL=
    [ "$SC_RUNS" -gt 1 ] && RUN_LABEL="run $RUN"
    cf__say "#   run $RUN: $* -> freshclam $RC_f, clamfresh $RC_c"
}

# db_state DIR: "test.cvd:V", "test.cld:V", both joined by "+", the custom
# database as "clamav.hdb:<lines>", or "none".
db_state() {
    local dir=$1 f s=()
    for f in test.cvd test.cld; do
        [ -f "$dir/$f" ] && s+=("$f:$(head -c 512 "$dir/$f" | cut -d: -f3)")
    done
    [ -f "$dir/clamav.hdb" ] && s+=("clamav.hdb:$(wc -l <"$dir/clamav.hdb")")
    if [ ${#s[@]} = 0 ]; then
        echo none
    else
        local IFS=+
        echo "${s[*]}"
    fi
}

# differ ASPECT FRESHCLAM_VALUE CLAMFRESH_VALUE: records an agreement, an
# allowed difference (clamfresh shows exactly the allowed value) or a failure.
differ() {
    local aspect=$1 fv=$2 cv=$3 key="$SC${RUN_LABEL:+ $RUN_LABEL}|$1"
    if [ "$fv" = "$cv" ]; then
        if [ -n "${ALLOW[$key]+set}" ]; then
            cf_fail "$SC: $aspect: both '$fv', but clamfresh(1) documents a difference here (expected '${ALLOW[$key]}')"
            SC_DIFF+=("$aspect")
        else
            cf_pass "$SC: $aspect: both '$fv'"
        fi
    elif [ -n "${ALLOW[$key]+set}" ] && [ "${ALLOW[$key]}" = "$cv" ]; then
        cf_pass "$SC: $aspect: documented difference: freshclam '$fv', clamfresh '$cv'"
        SC_ALLOWED+=("$aspect")
    else
        cf_fail "$SC: $aspect: freshclam '$fv', clamfresh '$cv'${ALLOW[$key]+ (documented: '${ALLOW[$key]}')}"
        SC_DIFF+=("$aspect")
    fi
}

# matches p SPEC: 0 when program p's last output satisfies SPEC:
#   out:RE   stdout has a match     err:RE   stderr has a match
#   no:RE    neither stream matches
matches() {
    local p=$1 spec=$2 o e
    o="OUT_$p"
    e="ERR_$p"
    case $spec in
    out:*) grep -qP -- "${spec#out:}" "${!o}" ;;
    err:*) grep -qP -- "${spec#err:}" "${!e}" ;;
    no:*) ! grep -qP -- "${spec#no:}" "${!o}" "${!e}" ;;
    *) cf_abort "bad message check '$spec'" ;;
    esac
}

show_outputs() {
    local p
    for p in f c; do
        local o="OUT_$p" e="ERR_$p"
        cf__say "#   ---- $([ $p = f ] && echo freshclam || echo clamfresh) stdout / stderr"
        sed 's/^/#   | /' "${!o}" "${!e}"
    done
}

# compare SPEC...: exit status, database state and each message check of the
# last run.
compare() {
    local spec fm cm bad=0
    differ exit "$RC_f" "$RC_c"
    differ state "$(db_state "$SCD/f/db")" "$(db_state "$SCD/c/db")"
    for spec in "$@"; do
        fm=absent
        cm=absent
        if [ "${spec%%:*}" = no ]; then
            matches f "$spec" || fm=present
            matches c "$spec" || cm=present
        else
            matches f "$spec" && fm=present
            matches c "$spec" && cm=present
        fi
        local want=present
        [ "${spec%%:*}" = no ] && want=absent
        if [ "$fm" != "$want" ]; then
            cf_fail "$SC: freshclam does not satisfy '$spec' (the scenario's premise is wrong)"
            bad=1
        fi
        differ "$spec" "$fm" "$cm"
    done
    if [ ${#SC_DIFF[@]} -gt 0 ] || [ $bad = 1 ] || [ "${CF_DIFF_VERBOSE:-0}" = 1 ]; then
        show_outputs
    fi
    return 0
}

# req_list p: program p's requests, one per line: "PATH[?QUERY][ [RANGE]]".
req_list() {
    local log="LOG_$1"
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    q = "?" + j["query"] if j.get("query") else ""
    r = " [" + j["range"] + "]" if j.get("range") else ""
    print("%s%s%s" % (j.get("path"), q, r))' "${!log}"
}

# requests p [REGEX]: number of requests program p's mirror saw (matching REGEX).
requests() {
    if [ -n "${2:-}" ]; then
        req_list "$1" | grep -cP -- "$2" || true
    else
        req_list "$1" | wc -l
    fi
}

# extra_requests: clamfresh's requests beyond freshclam's (as a multiset),
# joined by spaces, or "none".
extra_requests() {
    python3 -c '
import collections, sys
f = collections.Counter(open(sys.argv[1]).read().split())
c = collections.Counter(open(sys.argv[2]).read().split())
print(" ".join(sorted((c - f).elements())) or "none")' <(req_list f | tr ' ' '_') \
        <(req_list c | tr ' ' '_' | sed -E 's/\?r=[0-9a-f]+/?r=RUN/')
}

request_summary() {
    local p
    for p in f c; do
        cf__say "#   requests $([ $p = f ] && echo freshclam || echo clamfresh): $(req_list $p | paste -sd, - | sed 's/,/, /g')"
    done
}

# row: the scenario's table line (printed now and again at the end).
row() {
    local verdict=same
    if [ ${#SC_DIFF[@]} -gt 0 ]; then
        verdict="DIFF: ${SC_DIFF[*]}"
    elif [ ${#SC_ALLOWED[@]} -gt 0 ]; then
        verdict="documented difference (${#SC_ALLOWED[@]} aspects)"
    fi
    local line
    line=$(printf '%-34s | %3s | %3s | %-14s | %-14s | %s' "$SC${RUN_LABEL:+ $RUN_LABEL}" "$RC_f" "$RC_c" \
        "$(db_state "$SCD/f/db")" "$(db_state "$SCD/c/db")" "$verdict")
    ROWS+=("$line")
    cf__say "# $line"
    SC_DIFF=()
    SC_ALLOWED=()
}

cdiffs() { # VERSIONS...: test-V.cdiff with .sign into www/
    local v
    for v in "$@"; do cp "$VEC/test-$v.cdiff" "$VEC/test-$v.cdiff.sign" "$WWW/"; done
}
local_cvd() { # V [nosign]: test-V.cvd as the local test.cvd
    cp "$VEC/test-$1.cvd" "$SEED/test.cvd"
    [ "${2:-}" = nosign ] || cp "$VEC/test-$1.cvd.sign" "$SEED/"
}
faults_all() { # JSON PATH...: the same fault on every PATH
    local f=$1 p sep=
    shift
    {
        printf '{'
        for p in "$@"; do
            printf '%s"%s": %s' "$sep" "$p" "$f"
            sep=', '
        done
        printf '}\n'
    } >"$SCD/faults"
}
# The names either program may ask for when updating test from 1 to 3.
TEST_PATHS=(/test.cvd /test-3.cvd /test-2.cdiff /test-3.cdiff /test-2.cdiff.sign /test-3.cdiff.sign /test-3.cvd.sign)
# Every file a mirror with test.cvd (version 3) only does not have.
ABSENT_PATHS=(/test-3.cvd /test-2.cdiff /test-3.cdiff /test-2.cdiff.sign /test-3.cdiff.sign /test-3.cvd.sign)

# compare_extra: clamfresh's requests beyond freshclam's, as a
# compared aspect (freshclam's own value is "none" by definition).
compare_extra() {
    differ "extra requests" none "$(extra_requests)"
}

# freshclam 1.4 names the patch function downloadPatch, 1.5 and clamfresh
# downloadPatchAndApply (freshclam-behavior.md §11): both spellings match.
PATCH_FAIL="downloadPatch(?:AndApply)?: Can't download"

# ================================================================== scenarios
# Every official-database scenario updates only "test" (--update-db=test),
# the vectors' database, as freshclam's own suite does.
UPD=(--no-dns --update-db=test)

# ---- up to date: local 3 (with its .sign), mirror 3. No download, and
# clamfresh asks nothing freshclam does not.
new_scenario "up to date"
local_cvd 3
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
cp "$VEC/test-3.cvd.sign" "$WWW/"
start_scenario
run_both "${UPD[@]}"
compare 'out:^test\.cvd database is up-to-date \(version: 3, sigs: 11, f-level: 81, builder: raynman\)' \
    'no:test\.c[lv]d updated' 'no:^ERROR'
request_summary
compare_extra
row
stop_scenario

# ---- the same without the local .sign (a 1.4 installation): an f-level 216
# engine reads no .sign files, so clamfresh asks for none either (with a 1.5
# engine it fetches the missing one, as freshclam 1.5 does: test_sign_fetch).
new_scenario "up to date, no local .sign"
local_cvd 3 nosign
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
cp "$VEC/test-3.cvd.sign" "$WWW/"
start_scenario
run_both "${UPD[@]}"
compare 'out:^test\.cvd database is up-to-date \(version: 3,' 'no:test\.c[lv]d updated' \
    'no:Downloaded missing CVD \.sign file test-3\.cvd\.sign'
request_summary
compare_extra
row
stop_scenario

# ---- cdiff update 1 -> 3
new_scenario "cdiff update 1-3"
local_cvd 1
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
cdiffs 2 3
start_scenario
run_both "${UPD[@]}"
compare 'out:test database available for update \(local version: 1, remote version: 3\)' \
    'out:^test\.cld updated \(version: 3, sigs: 11, f-level: 81, builder: raynman\)' \
    'out:^Database test passed\.' 'no:already up-to-date' 'no:^ERROR'
request_summary
row
stop_scenario

# ---- partial update: local 1, advertised 3, only test-2.cdiff; then run again
new_scenario "partial update" 2
local_cvd 1
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
cdiffs 2
start_scenario
run_both "${UPD[@]}"
compare 'out:Downloaded 1 patches for test, which is fewer than the 2 expected patches\.' \
    "out:We'll settle for this partial-update, at least for now\\." \
    'out:^test\.cld updated \(version: 2,' 'no:already up-to-date'
request_summary
row
run_both "${UPD[@]}"
compare "out:The database server doesn't have the latest patch for the test database \\(version 3\\)\\. The server will likely have updated if you check again in a few hours\\." \
    'no:test\.c[lv]d updated'
row
stop_scenario

# ---- missing last patch while one behind: local 2, advertised 3, no cdiff.
# With MaxAttempts 1 the patch failure is an ERROR line in both.
new_scenario "missing last patch"
local_cvd 2
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
start_scenario
run_both "${UPD[@]}"
compare "out:The database server doesn't have the latest patch for the test database \\(version 3\\)" \
    'no:test\.c[lv]d updated' "err:^ERROR: $PATCH_FAIL test-3\\.cdiff from " \
    'no:Update failed'
request_summary
row
stop_scenario

# ---- two behind, no cdiffs: full download
new_scenario "2 behind, no cdiffs"
local_cvd 1
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
start_scenario
run_both "${UPD[@]}"
compare 'err:^WARNING: Incremental update failed, trying to download test\.cvd' \
    'out:^test\.cvd updated \(version: 3, sigs: 11, f-level: 81, builder: raynman\)' \
    'out:^Database test passed\.' 'no:test\.cld updated'
request_summary
row
stop_scenario

# ---- zero-byte cdiff: local 1, advertised 3, empty test-2.cdiff -> full download
new_scenario "zero-byte cdiff"
local_cvd 1
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
cdiffs 3
: >"$WWW/test-2.cdiff"
start_scenario
run_both "${UPD[@]}"
compare 'out:^Empty script test-2\.cdiff, need to download entire database' \
    'out:^test\.cvd updated \(version: 3,' 'no:test\.cld updated' 'no:Incremental update failed'
request_summary
row
stop_scenario

# ---- a bad full CVD (2 behind, no cdiffs): truncated, garbage, HTML
for bad in truncated garbage html; do
    new_scenario "bad full CVD: $bad"
    local_cvd 1
    cp "$VEC/test-3.cvd" "$WWW/test.cvd.advertised"
    case $bad in
    truncated) head -c 5000 "$VEC/test-3.cvd" >"$WWW/test.cvd.served" ;;
    garbage) head -c 9483 /dev/urandom >"$WWW/test.cvd.served" ;;
    html) printf '<!DOCTYPE html>\n<html><head><title>Captive portal</title></head><body><p>Please log in.</p></body></html>\n' \
        >"$WWW/test.cvd.served" ;;
    esac
    start_scenario
    run_both "${UPD[@]}"
    compare 'err:^ERROR: Verification: ' 'err:^ERROR: Update failed for database: test' \
        'err:^ERROR: Database update process failed: Invalid or corrupted CVD/CLD database' \
        'err:^ERROR: Update failed\.' 'out:^Giving up on ' 'no:test\.c[lv]d updated'
    request_summary
    row
    stop_scenario
done

# ---- served CVD older than advertised but newer than local: installed by both
new_scenario "older than advertised"
local_cvd 1
cp "$VEC/test-3.cvd" "$WWW/test.cvd.advertised"
cp "$VEC/test-2.cvd" "$WWW/test.cvd.served"
start_scenario
run_both "${UPD[@]}"
compare 'out:^test\.cvd updated \(version: 2,' \
    "err:^WARNING: Received an older test CVD than was advertised\\. Incremental updates either failed or are disabled, so we'll have to settle for a slightly out-of-date database\\." \
    'no:Update failed'
request_summary
row
stop_scenario

# ---- served CVD older than local (local 2, advertised 3, empty test-3.cdiff,
# served 1): freshclam installs version 1, clamfresh keeps 2 and says so (ALLOW).
new_scenario "older than local"
local_cvd 2
cp "$VEC/test-3.cvd" "$WWW/test.cvd.advertised"
cp "$VEC/test-1.cvd" "$WWW/test.cvd.served"
: >"$WWW/test-3.cdiff"
start_scenario
run_both "${UPD[@]}"
compare 'out:^test\.cvd updated \(version: 1,' 'out:^Database test passed\.' \
    'err:Received an older test CVD than was advertised\. Incremental updates either failed' \
    'no:Update failed'
if matches c 'err:served version 1, advertised 3; keeping test\.cvd \(version 2\)'; then
    cf_pass "$SC: clamfresh reports the mismatch and keeps version 2"
else
    cf_fail "$SC: clamfresh does not report 'served version 1, advertised 3; keeping test.cvd (version 2)'"
    SC_DIFF+=("mismatch report")
fi
request_summary
row
stop_scenario

# ---- 403 on every request including the probe, then the next run
new_scenario "403 on the probe" 2
local_cvd 1
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
cdiffs 2 3
faults_all '{"status": 403}' "${TEST_PATHS[@]}"
start_scenario
run_both "${UPD[@]}"
compare 'err:^ERROR: Update failed\.' 'no:test\.c[lv]d updated' \
    'err:remote_cvdhead: Malformed CVD header' 'no:FreshClam received error code 403' \
    'err:^ERROR: Database update process failed: HTTP GET failed'
if matches c 'err:^ERROR: Database update process failed: Forbidden; Blocked by CDN'; then
    cf_pass "$SC: clamfresh reports the block"
else
    cf_fail "$SC: clamfresh does not report 'Forbidden; Blocked by CDN'"
    SC_DIFF+=("403 report")
fi
request_summary
row
run_both "${UPD[@]}"
compare 'err:FreshClam previously received error code 429 or 403 from the ClamAV Content Delivery Network \(CDN\)\.' \
    'err:You are still on cool-down until after: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d' 'no:^ERROR'
row
stop_scenario

# ---- 429 on every request including the probe, then the next run
new_scenario "429 on the probe" 2
local_cvd 1
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
cdiffs 2 3
faults_all '{"status": 429, "retry_after": "3600"}' "${TEST_PATHS[@]}"
start_scenario
run_both "${UPD[@]}"
compare 'err:^ERROR: Update failed\.' 'no:test\.c[lv]d updated' \
    'err:remote_cvdhead: Malformed CVD header' 'no:FreshClam received error code 429'
if matches c 'err:You are on cool-down until after: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d'; then
    cf_pass "$SC: clamfresh reports the cool-down"
else
    cf_fail "$SC: clamfresh does not report the cool-down"
    SC_DIFF+=("429 report")
fi
request_summary
row
n_f=$(requests f)
n_c=$(requests c)
run_both "${UPD[@]}"
compare 'err:FreshClam previously received error code 429 or 403' \
    'err:You are still on cool-down until after: ' 'no:^ERROR'
differ "requests on cool-down" "$(($(requests f) - n_f))" "$(($(requests c) - n_c))"
row
stop_scenario

# ---- a mirror that answers 403 for files it does not have (an object store
# without list rights): freshclam falls back from the patches to test.cvd and
# never asks for test-3.cvd. Neither is a CDN block: no cool-down.
new_scenario "403 for absent files" 2
local_cvd 1
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
faults_all '{"status": 403}' "${ABSENT_PATHS[@]}"
start_scenario
run_both "${UPD[@]}"
compare 'out:^test\.cvd updated \(version: 3,' 'no:FreshClam received error code 403' \
    "err:$PATCH_FAIL test-2\\.cdiff" 'err:Incremental update failed, trying to download test\.cvd' \
    'no:Update failed'
request_summary
row
run_both "${UPD[@]}"
compare 'out:^test\.cvd database is up-to-date \(version: 3,' 'no:cool-down'
row
stop_scenario

# ---- 429 on the patches only: freshclam takes it as a failed patch (no
# cool-down) and downloads test.cvd.
new_scenario "429 on the patches"
local_cvd 1
cp "$VEC/test-3.cvd" "$WWW/test.cvd"
cdiffs 2 3
faults_all '{"status": 429, "retry_after": "3600"}' /test-2.cdiff /test-3.cdiff
start_scenario
run_both "${UPD[@]}"
compare 'out:^test\.cvd updated \(version: 3,' 'no:FreshClam received error code 429' 'no:cool-down' \
    'err:Incremental update failed, trying to download test\.cvd'
request_summary
row
stop_scenario

# ---- 404 on the probe (the mirror has nothing)
new_scenario "404 on the probe"
local_cvd 1
start_scenario
run_both "${UPD[@]}"
compare 'err:remote_cvdhead: file not found: http://127\.0\.0\.1:\d+/test\.cvd' \
    'err:Failed to get test database version information from server: ' \
    'err:^ERROR: check_for_new_database_version: Failed to find test database using server ' \
    'err:^ERROR: Database update process failed: HTTP GET failed' 'err:^ERROR: Update failed\.'
request_summary
row
stop_scenario

# ---- connection refused (a port nobody listens on)
new_scenario "connection refused"
local_cvd 1
MIRROR_FIXED="http://127.0.0.1:$(cf__free_port)"
start_scenario
run_both "${UPD[@]}"
compare "err:remote_cvdhead: Download failed \\(7\\) .*Message: Couldn't connect to server" \
    'err:^ERROR: Database update process failed: HTTP GET failed' 'err:^ERROR: Update failed\.'
row

# ---- --update-db with an unknown name
new_scenario "--update-db=nosuch"
MIRROR_FIXED="http://127.0.0.1:$(cf__free_port)"
start_scenario
run_both --no-dns --update-db=nosuch
compare 'err:^ERROR: Requested database is not available: nosuch\.' 'no:^ClamAV update process started'
row

# ---- -V
new_scenario "-V"
local_cvd 3
MIRROR_FIXED="http://127.0.0.1:$(cf__free_port)"
start_scenario
run_both --no-dns -V
compare 'out:^ClamAV \d+\.\d+\.\d+'
differ stdout "$(cat "$OUT_f")" "$(cat "$OUT_c")"
row

# ---- DatabaseCustomURL file://...hdb (official databases excluded); twice
new_scenario "custom URL file:// hdb" 2
echo 'aa6b9c7e8ce2a5bc8bb5c0a5c4a3d5b7:68:Cf.Test.Hdb' >"$WWW/clamav.hdb"
touch -d '2 hours ago' "$WWW/clamav.hdb"
start_scenario
# each program reads its own copy of the source file
for p in f c; do
    printf 'DatabaseCustomURL file://%s/www/clamav.hdb\nExcludeDatabase daily\nExcludeDatabase main\nExcludeDatabase bytecode\n' \
        "$SCD/$p" >>"$SCD/$p/conf"
done
run_both --no-dns
compare 'out:^Downloading clamav\.hdb \[100%\]' 'out:^Database test passed\.' \
    'out:^clamav\.hdb updated \(version: custom database, sigs: 1\)' 'no:^ERROR'
row
run_both --no-dns
compare 'out:^clamav\.hdb is up-to-date \(version: custom database\)' 'no:clamav\.hdb updated'
row
stop_scenario

# ---- PrivateMirror serving a .cld (built here by freshclam from the real
# cdiffs). clamfresh asks for patches first (clamfresh(1): "With PrivateMirror,
# patches are still tried first when ScriptedUpdates is on; a private mirror
# without them is answered by a quiet fall-back to the whole file"), so the
# requests are not compared; it also checks the CLD's signed manifest.
new_scenario "PrivateMirror .cld"
cf_tmpdir MKCLD
mkdir "$MKCLD/www" "$MKCLD/db"
cp "$VEC/test-3.cvd" "$MKCLD/www/test.cvd"
cp "$VEC/test-2.cdiff" "$VEC/test-3.cdiff" "$MKCLD/www/"
cp "$VEC/test-1.cvd" "$MKCLD/db/test.cvd"
cf_start_mirror "$MKCLD/www"
printf 'DatabaseMirror %s\nDatabaseDirectory %s\nDatabaseOwner %s\nMaxAttempts 1\n' \
    "$MIRROR_URL" "$MKCLD/db" "$(id -un)" >"$MKCLD/conf"
"$FRESHCLAM" --no-dns --config-file="$MKCLD/conf" --update-db=test >"$MKCLD/log" 2>&1
cf_stop "$MIRROR_PID"
[ -f "$MKCLD/db/test.cld" ] || {
    cat "$MKCLD/log"
    cf_abort "freshclam did not build test.cld for the PrivateMirror scenario"
}
cp "$MKCLD/db/test.cld" "$WWW/"
local_cvd 1
MIRROR_KIND=PrivateMirror
start_scenario
run_both --update-db=test
compare 'err:^WARNING: DNS Update Info disabled\. Falling back to HTTP mode\.' \
    'out:^Trying to retrieve CVD header from http://127\.0\.0\.1:\d+/test\.cld' \
    'out:^test\.cld updated \(version: 3, sigs: 11, f-level: 81, builder: raynman\)' \
    'out:^Database test passed\.' 'no:^(ERROR|WARNING: (?!DNS Update Info))'
request_summary
row
stop_scenario

# ---- DNS (root only), in a private network namespace with dnsmasq: both take
# the version from test.cvd.clamav.net's TXT record and make no probe.
if cf_is_root && cf_have_cmd ip dnsmasq; then
    cf_start_dnsmasq_txt "current.cvd.clamav.net=$(cf_txt_now 1.4.6 62 27830)" \
        "test.cvd.clamav.net=3:$(date +%s)"
    no_probe() {
        differ "probe requests" "$(requests f '\[bytes=')" "$(requests c '\[bytes=')"
    }
    dns_start() {
        CF_SERVE_IN_NETNS=1 start_scenario
        RUN_PREFIX=(ip netns exec "$CF_NETNS")
    }

    # up to date by DNS alone: no request at all
    new_scenario "DNS: up to date"
    local_cvd 3
    cp "$VEC/test-3.cvd" "$WWW/test.cvd"
    dns_start
    run_both --update-db=test
    compare 'out:^test\.cvd database is up-to-date \(version: 3,' 'no:Trying to retrieve CVD header' \
        'no:DNS Update Info disabled' 'no:Invalid DNS reply' 'no:^ERROR'
    differ "requests" "$(requests f)" "$(requests c)"
    row
    stop_scenario

    # The mirror's own test.cvd is version 2: a program that probed anyway
    # would stop at 2 instead of 3.
    new_scenario "DNS: cdiff update, no probe"
    local_cvd 1
    cp "$VEC/test-2.cvd" "$WWW/test.cvd"
    cdiffs 2 3
    dns_start
    run_both --update-db=test
    compare 'out:test database available for update \(local version: 1, remote version: 3\)' \
        'out:^test\.cld updated \(version: 3,' 'no:Trying to retrieve CVD header' 'no:^ERROR'
    no_probe
    request_summary
    row
    stop_scenario

    # 403 on every download (freshclam's own test 02: the block comes with a
    # download, not the probe), then the next run is on cool-down.
    new_scenario "DNS: 403 on every download" 2
    local_cvd 1
    cp "$VEC/test-3.cvd" "$WWW/test.cvd"
    cdiffs 2 3
    faults_all '{"status": 403}' "${TEST_PATHS[@]}"
    dns_start
    run_both --update-db=test
    compare 'err:^WARNING: FreshClam received error code 403 from the ClamAV Content Delivery Network \(CDN\)\.' \
        'err:^WARNING: You are on cool-down until after: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d' \
        'err:^ERROR: Database update process failed: Forbidden; Blocked by CDN' 'err:^ERROR: Update failed\.' \
        'no:test\.c[lv]d updated'
    request_summary
    row
    run_both --update-db=test
    compare 'err:FreshClam previously received error code 429 or 403' \
        'err:You are still on cool-down until after: ' 'no:^ERROR'
    row
    stop_scenario

    # 429 on every download: exit 0 and a cool-down, then the next run
    new_scenario "DNS: 429 on every download" 2
    local_cvd 1
    cp "$VEC/test-3.cvd" "$WWW/test.cvd"
    cdiffs 2 3
    faults_all '{"status": 429, "retry_after": "3600"}' "${TEST_PATHS[@]}"
    dns_start
    run_both --update-db=test
    compare 'err:^WARNING: FreshClam received error code 429 from the ClamAV Content Delivery Network \(CDN\)\.' \
        'err:^WARNING: You are on cool-down until after: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d' \
        'no:test\.c[lv]d updated' 'no:Update failed'
    request_summary
    row
    n_f=$(requests f)
    n_c=$(requests c)
    run_both --update-db=test
    compare 'err:FreshClam previously received error code 429 or 403' \
        'err:You are still on cool-down until after: ' 'no:^ERROR'
    differ "requests on cool-down" "$(($(requests f) - n_f))" "$(($(requests c) - n_c))"
    row
    stop_scenario
    RUN_PREFIX=()
else
    echo "SKIP part (DNS scenarios): need root, ip and dnsmasq"
fi

cf__say ""
cf__say "# $(printf '%-34s | %3s | %3s | %-14s | %-14s | %s' scenario fc cf 'db freshclam' 'db clamfresh' verdict)"
for r in "${ROWS[@]}"; do cf__say "# $r"; done
