#!/usr/bin/env bash
# Logging and terminal output of the real clamfresh (freshclam-behavior.md §8):
# the log file (UpdateLogFile and -l) with its 38-dash first line and every
# INFO/WARNING/ERROR line, DEBUG only when verbose; LogTime in the file and on
# the terminal; --quiet, --no-warnings and --stdout; the log file's fcntl lock
# held by another process (exit 2 with freshclam's four lines); LogFileMaxSize
# rotation; and syslog. Runs on every fixture set (tests/lib/fixtures.sh).
#
# Syslog needs a /dev/log socket. There is none in a bare container and a
# system logger is not ours to start, so as root the syslog runs happen in a
# private mount namespace whose /dev has a socket served by a small python3
# reader; without root (or unshare) that part is skipped with a note.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
export CLAMFRESH_RETRY_DELAY=0 # test-only: no 5 s sleeps between attempts
unset CVD_CERTS_DIR

DASHES=--------------------------------------
# C ctime() without its newline, as LogTime writes it (§8.2)
CTIME='[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}'

cf_tmpdir WWW
cf_start_mirror "$WWW"

# new_case [CONFIG LINES]: test-1 installed, the mirror serves test-3 whole;
# the log file is $LOG. @CASE@ in the extra lines is the case's directory.
new_case() {
    cf_tmpdir CASE
    DB="$CASE/db"
    mkdir "$DB"
    cp "$FX/test-1.cvd" "$DB/test.cvd"
    cp "$FX/test-1.cvd.sign" "$DB/"
    rm -rf "${WWW:?}"/*
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
    return 0
}

# break_mirror: the mirror loses test.cvd, so the next run fails (probe 404, exit 11).
break_mirror() { rm -f "$WWW"/test*; }

fc() { cf_expect_exit "$1" "$CLAMFRESH" --no-dns --config-file="$CONF" --update-db=test "${@:2}"; }

# file_has / file_lacks FILE REGEX
file_has() { cf_expect_file_match "$@"; }
file_lacks() {
    if grep -qP -- "$2" "$1" 2>/dev/null; then
        cf_fail "$(basename "$1") must not match /$2/: $(grep -P -- "$2" "$1" | head -n 3)"
    else
        cf_pass "$(basename "$1") has no /$2/"
    fi
}

# same_lines A B: the two files hold the same lines, in any order.
same_lines() {
    if diff <(sort "$1") <(sort "$2") >"$CASE/diff" 2>&1; then
        cf_pass "$3"
    else
        cf_fail "$3: $(head -n 10 "$CASE/diff" | tr '\n' '|')"
    fi
}

# ------------------------------------------------------------ the log file
log_file() {
    new_case
    fc 0
    cf_check "log file: first line is exactly 38 dashes" test "$(head -n 1 "$LOG")" = "$DASHES"
    cf_check "log file mode 0640 (minus umask 022)" test "$(stat -c %a "$LOG")" = 640
    file_has "$LOG" '^test\.cvd updated \(version: 3, sigs: \d+, f-level: \d+, builder: \w+\)$'
    file_has "$LOG" '^WARNING: DNS Update Info disabled\. Falling back to HTTP mode\.$'
    file_has "$LOG" '^ClamAV update process started at '
    file_lacks "$LOG" 'database version obtained using HTTP GET'
    # every terminal line (stdout and stderr) and nothing else, besides the dashes
    cat "$CF_OUT" "$CF_ERR" >"$CASE/terminal"
    tail -n +2 "$LOG" >"$CASE/logbody"
    same_lines "$CASE/logbody" "$CASE/terminal" "log file = every INFO and WARNING line of the terminal"
    # a failing run appends, with its ERROR lines
    break_mirror
    fc 11
    cf_check "second run appended (two dash lines)" test "$(grep -cx -- "$DASHES" "$LOG")" = 2
    file_has "$LOG" '^ERROR: Update failed\.$'
    file_has "$LOG" '^ERROR: Database update process failed: HTTP GET failed$'
    sed -n "/^ERROR: /p" "$CF_ERR" >"$CASE/errs"
    grep '^ERROR: ' "$LOG" >"$CASE/logerrs"
    same_lines "$CASE/logerrs" "$CASE/errs" "every ERROR line of the terminal is in the log file"

    # -l FILE beats UpdateLogFile; LogVerbose adds DEBUG lines to both
    new_case "LogVerbose yes"
    fc 0 -l "$CASE/other.log"
    cf_check "-l: UpdateLogFile not created" test ! -e "$LOG"
    cf_check "-l: first line is the dashes" test "$(head -n 1 "$CASE/other.log")" = "$DASHES"
    file_has "$CASE/other.log" '^test database version obtained using HTTP GET: 3$'
    file_has "$CASE/other.log" '^test\.cvd updated \(version: 3'
    cf_expect_out '^test database version obtained using HTTP GET: 3$'
    # the libcurl trace is stdout-only (§1.2): every log line is on the terminal
    cat "$CF_OUT" "$CF_ERR" >"$CASE/terminal"
    local missing
    missing=$(tail -n +2 "$CASE/other.log" | grep -vxFf "$CASE/terminal")
    cf_check "verbose log lines all appear on the terminal (missing: ${missing:-none})" test -z "$missing"
    # --log=FILE, the long form
    new_case
    fc 0 --log="$CASE/long.log"
    file_has "$CASE/long.log" '^test\.cvd updated \(version: 3'
}

# ------------------------------------------------------------------ LogTime
log_time() {
    new_case "LogTime yes"
    fc 0
    cf_check "LogTime: every log line is '<ctime> -> ...'" \
        bash -c "! grep -vP '^$CTIME -> ' '$LOG'"
    file_has "$LOG" "^$CTIME -> $DASHES\$"
    file_has "$LOG" "^$CTIME -> WARNING: DNS Update Info disabled\\. Falling back to HTTP mode\\.\$"
    file_has "$LOG" "^$CTIME -> test\\.cvd updated \\(version: 3"
    # on the terminal the prefix comes first
    cf_expect_err "^WARNING: $CTIME -> DNS Update Info disabled\\. Falling back to HTTP mode\\.\$"
    cf_expect_out "^$CTIME -> ClamAV update process started at $CTIME\$"
    cf_expect_out "^$CTIME -> test\\.cvd updated \\(version: 3"
    break_mirror
    fc 11
    cf_expect_err "^ERROR: $CTIME -> Update failed\\.\$"
    file_has "$LOG" "^$CTIME -> ERROR: Update failed\\.\$"
}

# ---------------------------------------------- --quiet, --no-warnings, --stdout
terminal_options() {
    new_case
    fc 0 --quiet
    cf_check "--quiet: nothing on stdout" test ! -s "$CF_OUT"
    cf_check "--quiet: nothing on stderr" test ! -s "$CF_ERR"
    file_has "$LOG" '^test\.cvd updated \(version: 3'
    file_has "$LOG" '^WARNING: DNS Update Info disabled'
    break_mirror
    fc 11 --quiet
    cf_check "--quiet failure: nothing on stdout" test ! -s "$CF_OUT"
    cf_expect_err '^ERROR: Update failed\.$'
    cf_check "--quiet failure: only ERROR lines on stderr" bash -c "! grep -v '^ERROR: ' '$CF_ERR'"
    file_has "$LOG" '^WARNING: remote_cvdhead: file not found: '
    file_has "$LOG" '^Trying to retrieve CVD header from '

    new_case
    fc 0 --no-warnings
    cf_expect_no 'WARNING'
    cf_expect_out '^test\.cvd updated \(version: 3'
    file_lacks "$LOG" 'WARNING'
    file_has "$LOG" '^test\.cvd updated \(version: 3'
    break_mirror
    fc 11 --no-warnings
    cf_expect_no 'WARNING'
    cf_expect_err '^ERROR: Update failed\.$'
    file_lacks "$LOG" 'WARNING'
    file_has "$LOG" '^ERROR: Update failed\.$'

    new_case
    fc 0 --stdout
    cf_check "--stdout: nothing on stderr" test ! -s "$CF_ERR"
    cf_expect_out '^WARNING: DNS Update Info disabled\. Falling back to HTTP mode\.$'
    cf_expect_out '^test\.cvd updated \(version: 3'
    break_mirror
    fc 11 --stdout
    cf_check "--stdout failure: nothing on stderr" test ! -s "$CF_ERR"
    cf_expect_out '^ERROR: Update failed\.$'
    cf_expect_out '^WARNING: remote_cvdhead: file not found: '
}

# ------------------------------------------------------------ the file lock
# hold_lock FILE: a python3 process takes freshclam's kind of lock (fcntl,
# whole file, exclusive) on FILE and keeps it until $CASE/release appears.
hold_lock() {
    python3 - "$1" "$CASE/locked" "$CASE/release" <<'EOF' &
import fcntl, os, sys, time
f = open(sys.argv[1], "a")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
open(sys.argv[2], "w").close()
end = time.time() + 120
while not os.path.exists(sys.argv[3]) and time.time() < end:
    time.sleep(0.05)
EOF
    HOLDER=$!
    CF__PIDS+=("$HOLDER")
    local _
    for _ in $(seq 1 200); do
        [ -e "$CASE/locked" ] && return 0
        kill -0 "$HOLDER" 2>/dev/null || break
        sleep 0.05
    done
    cf_abort "the lock holder did not take the lock on $1"
}

log_lock() {
    new_case
    hold_lock "$LOG"
    : >"$MIRROR_LOG"
    fc 2
    cf_check "lock: stdout is freshclam's line" test "$(cat "$CF_OUT")" = \
        "ERROR: Failed to lock the log file $LOG: Resource temporarily unavailable"
    cf_check "lock: stderr is freshclam's three lines" test "$(cat "$CF_ERR")" = \
        "$(printf 'ERROR: Problem with internal logger (UpdateLogFile = %s).\nERROR: initialize: libfreshclam init failed.\nERROR: Initialization error!' "$LOG")"
    cf_check "lock: no request reached the mirror" test ! -s "$MIRROR_LOG"
    cf_check "lock: the database was not touched" cmp -s "$FX/test-1.cvd" "$DB/test.cvd"
    cf_check "lock: nothing written to the locked file" test ! -s "$LOG"
    # -l on the same file meets the same lock
    fc 2 -l "$LOG"
    touch "$CASE/release"
    wait "$HOLDER" 2>/dev/null
    cf_stop "$HOLDER"
    fc 0
    cf_expect_out 'test\.cvd updated \(version: 3'
}

# ----------------------------------------------------------------- rotation
# prefill FILE BYTES: FILE holds BYTES bytes of old log lines.
prefill() {
    python3 -c 'import sys
n = int(sys.argv[2])
line = b"old line " + b"x" * 90 + b"\n"
open(sys.argv[1], "wb").write((line * (n // len(line) + 1))[:n - 1] + b"\n")' "$1" "$2"
}

# rotated DIR STEM: prints the one STEM-YYYYMMDD_HHMMSS.log in DIR.
rotated() { find "$1" -maxdepth 1 -regextype posix-extended -regex ".*/$2-[0-9]{8}_[0-9]{6}\\.log" | head -n 2; }

log_rotation() {
    local r before after
    new_case "LogFileMaxSize 2k"
    prefill "$LOG" 3000
    before=$(date +%Y%m%d_%H%M%S)
    fc 0
    after=$(date +%Y%m%d_%H%M%S)
    r=$(rotated "$CASE" freshclam)
    cf_check "rotated to freshclam-YYYYMMDD_HHMMSS.log (${r:-none})" test -n "$r" -a "$(echo "$r" | wc -l)" = 1
    if [ -n "$r" ]; then
        local stamp=${r##*/freshclam-}
        stamp=${stamp%.log}
        cf_check "rotation time $stamp lies within the run ($before..$after)" \
            bash -c "[[ ! '$stamp' < '$before' && ! '$stamp' > '$after' ]]"
        cf_check "the rotated file keeps the old lines" cmp -s <(head -c 3000 "$r") <(prefill "$CASE/ref" 3000; cat "$CASE/ref")
        # LogRotate is off: freshclam's two lines go to the old file first
        file_has "$r" '^Log size = 3000, max = 2048$'
        file_has "$r" '^WARNING: Log size limit met but log file rotation turned off\. Forcing log file rotation anyways\.$'
    fi
    cf_check "the new log file starts with the dashes" test "$(head -n 1 "$LOG")" = "$DASHES"
    file_has "$LOG" '^test\.cvd updated \(version: 3'
    file_lacks "$LOG" '^old line'

    # LogRotate yes: rotation without the warning; the name loses its last 4 characters
    new_case "LogFileMaxSize 2k\nLogRotate yes\nUpdateLogFile @CASE@/rot2.txt"
    sed -i "\|^UpdateLogFile $LOG\$|d" "$CONF"
    prefill "$CASE/rot2.txt" 2100
    fc 0
    r=$(rotated "$CASE" rot2)
    cf_check "rot2.txt rotated to rot2-YYYYMMDD_HHMMSS.log (${r:-none})" test -n "$r"
    [ -n "$r" ] && file_lacks "$r" 'Log size limit met'
    file_has "$CASE/rot2.txt" '^test\.cvd updated \(version: 3'

    # LogFileMaxSize 0: never rotated
    new_case "LogFileMaxSize 0"
    prefill "$LOG" 5000
    fc 0
    cf_check "LogFileMaxSize 0: no rotation" test -z "$(rotated "$CASE" freshclam)"
    file_has "$LOG" '^old line'
    file_has "$LOG" '^test\.cvd updated \(version: 3'

    # below the limit: no rotation
    new_case "LogFileMaxSize 1M"
    prefill "$LOG" 3000
    fc 0
    cf_check "below LogFileMaxSize: no rotation" test -z "$(rotated "$CASE" freshclam)"
}

# ------------------------------------------------------------------- syslog
have_syslog_ns() { cf_is_root && cf_have_cmd unshare mount; }

# syslog_run CMD...: runs CMD in a private mount namespace whose /dev/log is a
# datagram socket; the messages received land in $CASE/syslog.txt, one a line.
syslog_run() {
    : >"$CASE/syslog.txt"
    rm -f "$CASE/ready"
    cat >"$CASE/sl.sh" <<'EOF'
set -e
T=$1
shift
mkdir -p "$T/dev"
mount -t tmpfs -o mode=755 cfdev "$T/dev"
for n in null zero full random urandom tty; do
    touch "$T/dev/$n"
    mount --bind "/dev/$n" "$T/dev/$n"
done
ln -s /proc/self/fd "$T/dev/fd"
ln -s /proc/self/fd/0 "$T/dev/stdin"
ln -s /proc/self/fd/1 "$T/dev/stdout"
ln -s /proc/self/fd/2 "$T/dev/stderr"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[3], "w").close()
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        d = s.recv(65536)
        if d == b"\0END\0":
            break
        f.write(d.rstrip(b"\0\n") + b"\n")
' "$T/dev/log" "$T/syslog.txt" "$T/ready" </dev/null &
reader=$!
for i in $(seq 1 200); do
    [ -e "$T/ready" ] && break
    sleep 0.05
done
[ -e "$T/ready" ] || { echo "syslog reader did not start" >&2; exit 125; }
mount --rbind "$T/dev" /dev
set +e
"$@"
rc=$?
python3 -c 'import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"\0END\0", "/dev/log")'
wait "$reader"
exit $rc
EOF
    unshare -m --propagation private bash "$CASE/sl.sh" "$CASE" "$@"
}

log_syslog() {
    # LOG_LOCAL6 (22) by default: <182> INFO, <180> WARNING, <179> ERROR, <183> DEBUG
    new_case "LogSyslog yes"
    cf_expect_exit 0 syslog_run "$CLAMFRESH" --no-dns --config-file="$CONF" --update-db=test
    local S="$CASE/syslog.txt"
    file_has "$S" '^<182>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d freshclam\[\d+\]: test\.cvd updated \(version: 3, sigs: \d+'
    file_has "$S" '^<180>.* freshclam\[\d+\]: DNS Update Info disabled\. Falling back to HTTP mode\.$'
    file_has "$S" '^<182>.* freshclam\[\d+\]: ClamAV update process started at '
    file_lacks "$S" 'WARNING: |ERROR: '
    file_lacks "$S" "$DASHES"
    file_lacks "$S" '^<183>'
    cf_check "syslog: the same lines as the log file (without the dashes)" \
        test "$(sed 's/^<[0-9]*>[A-Z][a-z]* [ 0-9]*[0-9] [0-9:]* freshclam\[[0-9]*\]: //' "$S")" = \
        "$(tail -n +2 "$LOG" | sed 's/^WARNING: //; s/^ERROR: //')"
    # verbose: DEBUG at LOG_DEBUG; --no-warnings: no LOG_WARNING either
    cf_expect_exit 0 syslog_run "$CLAMFRESH" --no-dns --config-file="$CONF" --update-db=test -v --no-warnings
    file_has "$S" '^<183>.* freshclam\[\d+\]: test database version obtained using HTTP GET: 3$'
    file_has "$S" '^<182>.* freshclam\[\d+\]: test\.cvd database is up-to-date \(version: 3'
    file_lacks "$S" '^<180>'
    file_lacks "$S" 'freshclam\[\d+\]: [*<>] '
    break_mirror
    cf_expect_exit 11 syslog_run "$CLAMFRESH" --no-dns --config-file="$CONF" --update-db=test
    file_has "$S" '^<179>.* freshclam\[\d+\]: Update failed\.$'
    file_has "$S" '^<179>.* freshclam\[\d+\]: Database update process failed: HTTP GET failed$'
    file_has "$S" '^<180>.* freshclam\[\d+\]: Failed to get test database version information from server: '
    # another facility
    new_case "LogSyslog yes\nLogFacility LOG_MAIL"
    cf_expect_exit 0 syslog_run "$CLAMFRESH" --no-dns --config-file="$CONF" --update-db=test
    file_has "$CASE/syslog.txt" '^<22>.* freshclam\[\d+\]: test\.cvd updated'
    file_has "$CASE/syslog.txt" '^<20>.* freshclam\[\d+\]: DNS Update Info disabled'
}

log_facility_bad() {
    new_case "LogSyslog yes\nLogFacility LOG_NOPE"
    fc 2
    cf_expect_err '^ERROR: LogFacility: LOG_NOPE: No such facility\.$'
    # only read when LogSyslog is on
    new_case "LogFacility LOG_NOPE"
    fc 0
}

for set in "${CF_FIXTURE_SETS[@]}"; do
    cf_fixtures_use "$set"
    log_file
    log_time
    terminal_options
    log_lock
    log_rotation
    log_facility_bad
    if have_syslog_ns; then
        log_syslog
    else
        cf__say "# SKIP (part): syslog needs a /dev/log; the private one needs root, unshare and mount"
    fi
done
