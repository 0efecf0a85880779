#!/usr/bin/env bash
# Monitoring output of the real clamfresh against the local test mirror:
# --json (to a file and to stdout, always valid JSON), --metrics (Prometheus
# textfile, written atomically), --check-only (plugin verdict and exit code,
# thresholds, missing database, cool-down, and a database directory left
# byte-identical), and that freshclam's --check / --checks abbreviations keep
# their meaning next to --check-only.
#
# Databases: "main" is a copy of test-1 on both sides (current); "test" is
# test-1 locally and test-TOP on the mirror (behind by TOP-1 versions).
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
cf_require_cmd python3
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
unset CVD_CERTS_DIR

cf_fixtures_use own
cf_tmpdir WWW
cf_tmpdir FAULTDIR
FAULTS="$FAULTDIR/faults.json"
echo '{}' >"$FAULTS"
cf_start_mirror "$WWW" --faults "$FAULTS"

new_case() {
    cf_tmpdir CASE
    DB="$CASE/db"
    mkdir "$DB"
    rm -rf "${WWW:?}"/*
    cp "$FX/test-1.cvd" "$DB/main.cvd"
    cp "$FX/test-1.cvd" "$WWW/main.cvd"
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    cp "$FX/test-$FX_TOP.cvd" "$WWW/test.cvd"
    cp "$FX/test-$FX_TOP.cvd" "$WWW/test-$FX_TOP.cvd"
    cp "$FX/test-$FX_TOP.cvd.sign" "$WWW/"
    CONF="$CASE/c.conf"
    {
        echo "DatabaseMirror $MIRROR_URL"
        echo "DatabaseDirectory $DB"
        echo "DatabaseOwner $(id -un)"
        echo "ScriptedUpdates no"
        echo "ExcludeDatabase daily"
        echo "Bytecode no"
        echo "ExtraDatabase test"
        cf_fixtures_conf
    } >"$CONF"
    : >"$MIRROR_LOG"
}

fc() { cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$CONF" "${@:2}"; }

# py FILE EXPR: evaluates EXPR with d = the JSON in FILE; prints the result.
py() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
db = {x["name"]: x for x in d["databases"]}
print(eval(sys.argv[2]))
EOF
}

expect_py() {
    local got
    got=$(py "$1" "$2" 2>&1)
    if [ "$got" = "$3" ]; then
        cf_pass "json: $2 = $3"
    else
        cf_fail "json: $2 is '$got', expected '$3'"
    fi
}

# metric FILE SAMPLE: the value of the sample "name{labels}" in a textfile.
metric() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

expect_metric() {
    local got
    got=$(metric "$1" "$2")
    if [ "$got" = "$3" ]; then
        cf_pass "metric $2 = $3"
    else
        cf_fail "metric $2 is '$got', expected '$3'"
        cat "$1" >&2
    fi
}

# A textfile node_exporter accepts: HELP/TYPE before every family, samples
# "name{labels} value" with numeric values.
valid_prom() {
    python3 - "$1" <<'EOF'
import re, sys
typed = set()
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        typed.add(line.split()[2]); continue
    if line.startswith("# HELP "):
        continue
    m = re.fullmatch(r'([a-z_]+)(\{[a-z_]+="(?:[^"\\]|\\.)*"(?:,[a-z_]+="(?:[^"\\]|\\.)*")*\})? (-?[0-9.e+]+)', line)
    if not m or m.group(1) not in typed:
        sys.exit("bad line: " + line)
EOF
}

listing() { (cd "$1" && find . -printf '%p %s %m %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }

# --------------------------------------------------------------- update run
update_run() {
    new_case
    fc 0 --json="$CASE/run.json" --metrics="$CASE/m.prom"
    cf_check "human output is unchanged on stdout" grep -q "^test.cvd updated (version: $FX_TOP, " "$CF_OUT"
    cf_check "--json=FILE is valid JSON" python3 -m json.tool "$CASE/run.json" /dev/null
    expect_py "$CASE/run.json" 'd["exit_code"], d["exit_meaning"], d["mode"]' "(0, 'Success', 'update')"
    expect_py "$CASE/run.json" 'db["test"]["version_before"], db["test"]["version_after"], db["test"]["advertised"]' \
        "(1, $FX_TOP, $FX_TOP)"
    expect_py "$CASE/run.json" 'db["test"]["how"], db["test"]["outcome"]' \
        "('NAME-V.cvd', {'code': 0, 'text': 'Success'})"
    # The whole database came down (plus the header probe and its .sign).
    expect_py "$CASE/run.json" 'db["test"]["bytes"] >= '"$(stat -c %s "$FX/test-$FX_TOP.cvd")" True
    expect_py "$CASE/run.json" 'db["test"]["requests"] >= 2, db["main"]["how"], db["main"]["behind"]' \
        "(True, 'up-to-date', 0)"
    expect_py "$CASE/run.json" 'any(m["level"] == "info" and m["text"].startswith("test.cvd updated") for m in d["messages"])' True
    expect_py "$CASE/run.json" 'list(db)' "['main', 'test']"

    cf_check "metrics textfile is well-formed" valid_prom "$CASE/m.prom"
    expect_metric "$CASE/m.prom" 'clamfresh_database_version{database="test"}' "$FX_TOP"
    expect_metric "$CASE/m.prom" 'clamfresh_database_versions_behind{database="test"}' 0
    expect_metric "$CASE/m.prom" 'clamfresh_database_build_timestamp_seconds{database="test"}' \
        "$((1624388302 + FX_TOP * 7200))"
    expect_metric "$CASE/m.prom" 'clamfresh_update_method{database="test",method="NAME-V.cvd"}' 1
    expect_metric "$CASE/m.prom" 'clamfresh_update_method{database="main",method="up-to-date"}' 1
    expect_metric "$CASE/m.prom" 'clamfresh_last_run_exit_code' 0
    expect_metric "$CASE/m.prom" 'clamfresh_cooldown_until_timestamp_seconds' 0
    local ok
    ok=$(metric "$CASE/m.prom" clamfresh_last_success_timestamp_seconds)
    cf_check "last success is this run ($ok)" test "$ok" -ge "$(($(date +%s) - 120))"
    cf_check "no temporary left next to the textfile" test "$(find "$CASE" -maxdepth 1 -name '.m.prom*' | wc -l)" = 0

    # A failing run (mirror gone) keeps the last success and reports its code.
    rm -f "$WWW"/*
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    fc 11 --json="$CASE/fail.json" --metrics="$CASE/m.prom"
    expect_metric "$CASE/m.prom" 'clamfresh_last_run_exit_code' 11
    expect_metric "$CASE/m.prom" clamfresh_last_success_timestamp_seconds "$ok"
    cf_check "failed run: still valid JSON" python3 -m json.tool "$CASE/fail.json" /dev/null
    expect_py "$CASE/fail.json" 'd["exit_code"], d["exit_meaning"]' "(11, 'HTTP GET failed')"
    expect_py "$CASE/fail.json" 'any(m["level"] == "error" for m in d["messages"])' True

    # --json alone: the document is all of stdout, the human output moves to stderr.
    new_case
    fc 0 --json
    cf_check "--json: stdout is one valid JSON document" python3 -m json.tool "$CF_OUT" /dev/null
    cf_check "--json: the human lines are on stderr" grep -q "^test.cvd updated (version: $FX_TOP, " "$CF_ERR"
    expect_py "$CF_OUT" 'db["test"]["version_after"]' "$FX_TOP"
}

# ----------------------------------------------------------- --check-only
check_only() {
    local before after
    new_case
    before=$(listing "$DB")
    # test is TOP-1 behind: CRITICAL with the defaults (2, 5) when TOP-1 >= 5.
    fc 2 --check-only --metrics="$CASE/c.prom" --json="$CASE/c.json"
    cf_check "status line first, plugin style" grep -qP \
        "^CLAMFRESH CRITICAL - main 1 \\(current\\), test 1 \\($((FX_TOP - 1)) behind $FX_TOP\\) \\| main_behind=0;2;5 test_behind=$((FX_TOP - 1));2;5\$" \
        <(head -n 1 "$CF_OUT")
    cf_expect_out "^test: CRITICAL, local version 1, advertised $FX_TOP, behind $((FX_TOP - 1)), built "
    cf_expect_out '^main: OK, local version 1, advertised 1, behind 0, '
    expect_metric "$CASE/c.prom" 'clamfresh_database_versions_behind{database="test"}' "$((FX_TOP - 1))"
    expect_metric "$CASE/c.prom" 'clamfresh_database_version{database="test"}' 1
    expect_metric "$CASE/c.prom" 'clamfresh_last_run_exit_code' 2
    cf_check "check metrics are well-formed" valid_prom "$CASE/c.prom"
    expect_py "$CASE/c.json" 'd["mode"], d["exit_code"], d["exit_meaning"], db["test"]["behind"]' \
        "('check', 2, 'CRITICAL', $((FX_TOP - 1)))"
    cf_check "no download: only header probes reached the mirror" \
        test "$(cf_mirror_count '"range"')" = "$(wc -l <"$MIRROR_LOG")"
    after=$(listing "$DB")
    cf_check "--check-only leaves the database directory byte-identical" test "$before" = "$after"
    cf_check "--check-only creates no freshclam.dat" test ! -e "$DB/freshclam.dat"

    # Thresholds: behind TOP-1 is WARNING below the critical threshold, OK below both.
    fc 1 --check-only --warn-behind="$((FX_TOP - 1))" --crit-behind="$FX_TOP"
    cf_expect_out '^CLAMFRESH WARNING - '
    fc 0 --check-only --warn-behind="$FX_TOP" --crit-behind=99
    cf_expect_out '^CLAMFRESH OK - main 1 \(current\), test 1 \(5 behind 6\)'
    echo "OnErrorExecute touch $CASE/hook-ran" >>"$CONF"
    fc 3 --check-only --warn-behind=4 --crit-behind=3
    cf_expect_err 'crit-behind'
    cf_check "a bad check option runs no OnErrorExecute" test ! -e "$CASE/hook-ran"
    sed -i '/^OnErrorExecute/d' "$CONF"

    # A missing database is CRITICAL even when everything else is current.
    rm "$DB/test.cvd"
    before=$(listing "$DB")
    fc 2 --check-only --warn-behind=99 --crit-behind=99
    cf_expect_out '^CLAMFRESH CRITICAL - main 1 \(current\), test missing'
    cf_check "missing database: directory untouched" test "$before" = "$(listing "$DB")"

    # Cool-down (freshclam.dat written by a real run after a 429): WARNING, and
    # the check asks the CDN nothing while it lasts.
    new_case
    echo '{"/test.cvd": {"status": 429, "retry_after": "3600"}}' >"$FAULTS"
    fc 0 --json="$CASE/cd.json" --metrics="$CASE/cd.prom"
    local until
    until=$(py "$CASE/cd.json" 'd["cooldown_until"]')
    cf_check "update run: cool-down in JSON ($until)" test "$until" -gt "$(date +%s)"
    expect_metric "$CASE/cd.prom" clamfresh_cooldown_until_timestamp_seconds "$until"
    echo '{}' >"$FAULTS"
    : >"$MIRROR_LOG"
    before=$(listing "$DB")
    fc 1 --check-only --metrics="$CASE/cd2.prom" --json="$CASE/cd2.json"
    cf_expect_out '^CLAMFRESH WARNING - main 1 \(advertised version unknown\), test 1 \(advertised version unknown\), cool-down until '
    cf_expect_out '^cool-down: active until '
    cf_check "cool-down: no request to the mirror" test ! -s "$MIRROR_LOG"
    expect_metric "$CASE/cd2.prom" clamfresh_cooldown_until_timestamp_seconds "$until"
    expect_metric "$CASE/cd2.prom" clamfresh_last_run_exit_code 1
    expect_py "$CASE/cd2.json" 'd["cooldown_until"], d["exit_code"]' "($until, 1)"
    cf_check "cool-down check: directory untouched" test "$before" = "$(listing "$DB")"

    # No version information at all (mirror unreachable, no DNS): UNKNOWN.
    new_case
    rm -f "$WWW"/*
    fc 3 --check-only
    cf_expect_out '^CLAMFRESH UNKNOWN - main 1 \(advertised version unknown\)'
}

# ------------------------------------------------------------- daemon mode
daemon_metrics() {
    local pid
    new_case
    # Two cycles a second apart: the textfile follows every cycle.
    CLAMFRESH_DAEMON_INTERVAL=1 cf__bg "$CASE/daemon.out" "$CLAMFRESH" --no-dns --config-file="$CONF" \
        -d -F --metrics="$CASE/d.prom" --json="$CASE/d.json"
    pid=$CF__LASTPID
    cf_check "daemon: metrics after the first cycle" \
        cf_wait_log "$CASE/d.prom" "^clamfresh_database_version\\{database=\"test\"\\} $FX_TOP\$" 20
    expect_metric "$CASE/d.prom" clamfresh_last_run_exit_code 0
    # The first cycle fetched test; the next finds it current.
    cf_check "daemon: metrics rewritten by a later cycle" \
        cf_wait_log "$CASE/d.prom" "^clamfresh_update_method\\{database=\"test\",method=\"up-to-date\"\\} 1\$" 20
    cf_stop "$pid"
    cf_check "daemon: no --json document (a daemon has no single run)" test ! -e "$CASE/d.json"
}

# ---------------------------------------------------- option abbreviations
abbreviations() {
    new_case
    # --check is still freshclam's --checks (an abbreviation), not ambiguous.
    fc 2 --check=x
    cf_expect_err '^ERROR: Incorrect argument format for option --checks \(-c\)$'
    fc 2 --checks=x
    cf_expect_err '^ERROR: Incorrect argument format for option --checks \(-c\)$'
    # The new options are never abbreviations.
    fc 2 --check-o
    cf_expect_err "unrecognized option \`--check-o'"
    fc 2 --metric=x
    cf_expect_err "unrecognized option \`--metric=x'"
    # --checks=N with --check-only is accepted (Checks matters in daemon mode only).
    fc 0 --check-only --checks=3 --warn-behind=99 --crit-behind=99
}

update_run
check_only
daemon_metrics
abbreviations

