#!/usr/bin/env bash
# Mirror mode under kill -9: a mirror run killed at any one of its publishing
# system calls never leaves an alias (NAME.cvd, NAME.version, current.txt)
# naming a file that is missing, and never leaves a half-written file under a
# name a client may fetch; the next run then converges to upstream's newest
# versions with the same invariants.
#
# How: one traced run (strace -f -y) lists every call of the run that changes
# the mirror directory: rename/renameat/renameat2, link/linkat, unlink/unlinkat,
# fsync/fdatasync, open/openat for writing, write/pwrite64/writev on its files,
# ftruncate ... Then, for each such call, a run from the same starting directory
# is killed there with strace's fault injection (-e inject=SYSCALL:signal=KILL:
# when=N, N counting every call of that kind the process makes) and the
# directory is checked. Since the kill happens on entry to the call, the
# checks see the directory as it is between any two publishing steps, which
# is also what clients of a live mirror see during a normal run.
#
# Scenario (MirrorKeepPatches 2, so a run really prunes): the mirror holds
# main 2, daily 3 and bytecode 2; upstream has moved on to daily 5 and
# bytecode 5 (main unchanged: the up-to-date path rewrites only its pointer).
# Part 1 kills that update everywhere; part 2 starts from what the update,
# killed just before current.txt is replaced, leaves, and kills the run that
# finishes it everywhere. Part 0 shows the checker catches each breach.
# Needs strace with -e inject (Debian 12: strace 6.1) and ptrace.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/fixtures.sh"

[ -x "$CLAMFRESH" ] || cf_skip "clamfresh not built"
[ -x "$CVDTOOL" ] || cf_skip "cvdtool not built"
cf_require_cmd strace python3
export CLAMFRESH_RETRY_DELAY=0 # test-only: no sleeps between attempts
unset CVD_CERTS_DIR

# ---------------------------------------------------------------- can we trace and inject here?
cf_tmpdir W
W=$(cd -P "$W" && pwd) # strace -y prints resolved paths
if ! strace -o /dev/null true 2>"$W/probe.err"; then
    cf_skip "strace cannot trace here (ptrace not permitted?): $(head -n 2 "$W/probe.err" | tr '\n' ' ')"
fi
{
    strace -o /dev/null -e trace=exit_group -e inject=exit_group:signal=KILL:when=1 true
    probe_rc=$?
} 2>"$W/probe.err"
if [ "$probe_rc" != 137 ]; then
    cf_skip "this strace cannot kill at a chosen call (-e inject=...:signal=KILL; exit $probe_rc):" \
        "$(head -n 2 "$W/probe.err" | tr '\n' ' ')"
fi

KEEP=2
DBS=(main daily bytecode)
TOP=5 # upstream's newest version of every database
BEFORE=(main=2 daily=3 bytecode=2)
AFTER=(main=2 daily=5 bytecode=5)

# ---------------------------------------------------------------- fixtures
# The key and PKI of the self-made fixture set (tests/lib/fixtures.sh), and
# small databases main, daily and bytecode, versions 1..TOP, with a cdiff to
# each version from the one before and a valid .sign beside every file.
cf_tmpdir FX
cf_fixtures_own "$FX" || cf_abort "cannot build the self-made fixtures"
build_db() { # DB
    local db=$1 v i s
    for v in $(seq 1 "$TOP"); do
        s="$FX/src/$db-$v"
        mkdir -p "$s"
        echo "clamfresh mirror crash test database" >"$s/COPYING"
        for i in $(seq 1 $((8 + v))); do
            printf '%032x:%d:Cf.Crash.%s-%d\n' "$((i * 7919 + v))" "$((60 + i))" "$db" "$i"
        done >"$s/$db.hdb"
        "$CVDTOOL" build "$s" -o "$FX/$db-$v.cvd" --name "$db" --key "$FX/key.key" --version "$v" \
            --builder clamfresh --time "$(($(date +%s) - (10 - v) * 3600))" >>"$FX/build.log" 2>&1 || return 1
        if [ "$v" -gt 1 ]; then
            "$CVDTOOL" diff --trust-key "$FX/key.pub" "$FX/$db-$((v - 1)).cvd" "$FX/$db-$v.cvd" \
                -o "$FX/$db-$v.cdiff" --key "$FX/key.key" >>"$FX/build.log" 2>&1 || return 1
        fi
    done
    for s in "$FX/$db"-*.cvd "$FX/$db"-*.cdiff; do
        "$CVDTOOL" sign "$s" --cert "$FX/pki/sign.crt" --key "$FX/pki/sign.key" -o "$s.sign" \
            >>"$FX/build.log" 2>&1 || return 1
    done
}
for db in "${DBS[@]}"; do
    build_db "$db" || {
        cat "$FX/build.log" >&2
        cf_abort "cannot build the $db fixtures"
    }
done

cf_tmpdir UP
publish_up() { # DB=VERSION...: upstream serves these versions, every older file stays
    local a db v n
    for a in "$@"; do
        db=${a%%=*}
        v=${a#*=}
        cp "$FX/$db-$v.cvd" "$UP/$db.cvd"
        for n in $(seq 1 "$v"); do
            cp "$FX/$db-$n.cvd" "$FX/$db-$n.cvd.sign" "$UP/"
            [ "$n" -gt 1 ] && cp "$FX/$db-$n.cdiff" "$FX/$db-$n.cdiff.sign" "$UP/"
        done
    done
}
publish_up "${BEFORE[@]}"
cf_start_mirror "$UP"

M="$W/m" # the mirror directory, always at this path (the nginx snippet names it)
mkdir "$M" "$W/mdb"
cat >"$W/mirror.conf" <<EOF
DatabaseMirror $MIRROR_URL
DatabaseDirectory $W/mdb
DatabaseOwner $(id -un)
MirrorKeepPatches $KEEP
EngineFlevel 230
EOF
MIRROR_ARGS=(--no-dns --config-file="$W/mirror.conf" --trust-key="$FX/key.pub" --cvdcertsdir="$FX/certs")
for db in "${DBS[@]}"; do MIRROR_ARGS+=(--update-db="$db"); done
MIRROR_ARGS+=(--mirror="$M")

# ---------------------------------------------------------------- the checker
# crashcheck.py plan TRACE DIR          the publishing calls of a traced run:
#                                       "SYSCALL N WHAT" (N-th call of that kind)
# crashcheck.py check DIR FX KEEP PRISTINE [--trace TRACE OUT] DB=FLOOR... [--final DB=V...]
#                                       the invariants (one line per breach);
#                                       with --trace, WHAT of the call the
#                                       traced run was killed at goes to OUT
cat >"$W/crashcheck.py" <<'EOF'
import os, re, sys

CALL = re.compile(r"^(\d+)\s+(\w+)\((.*?)(?:\) += (.*)| <unfinished \.\.\.>)$")
FD_CALLS = {"write", "pwrite64", "writev", "pwritev", "pwritev2", "fsync", "fdatasync", "ftruncate",
            "fallocate", "sync_file_range", "syncfs", "copy_file_range", "sendfile"}
OPEN_CALLS = {"open", "openat", "openat2", "creat"}


def under(path, d):
    return path == d or path.startswith(d + "/")


def paths_of(args):
    """Absolute paths an argument list names (strace -y), relative ones joined to their dirfd."""
    out = []
    for m in re.finditer(r'(?:<([^<>]*)>(?:, "((?:[^"\\]|\\.)*)")?)|"((?:[^"\\]|\\.)*)"', args):
        fdpath, rel, plain = m.group(1), m.group(2), m.group(3)
        if fdpath is not None:
            if rel is not None:
                out.append(rel if rel.startswith("/") else os.path.join(fdpath, rel))
            else:
                out.append(fdpath)
        elif plain is not None and plain.startswith("/"):
            out.append(plain)
    return out


def tidy(path):
    # temporaries have random names; keep what they stand for
    path = re.sub(r"\.[A-Za-z0-9_-]{6,}\.tmp$", ".*.tmp", path)
    return re.sub(r"\.tmp\.[A-Za-z0-9_-]{6,}$", ".tmp.*", path)


def publishing(name, args, d):
    """WHAT the call does to the mirror directory d, or None when it does nothing there."""
    if name in FD_CALLS:
        m = re.match(r"\d+<([^<>]*)>", args)
        ps = [m.group(1)] if m else []
    elif name in OPEN_CALLS:
        if name != "creat" and not re.search(r"O_CREAT|O_WRONLY|O_RDWR|O_TRUNC", args):
            return None
        ps = paths_of(args)[:2]
    else:
        ps = paths_of(args)
    ps = [tidy(p[len(d) + 1:] or ".") for p in ps if under(p, d)]
    if not ps:
        return None
    if name in OPEN_CALLS:
        ps = ps[-1:]
    return name + " " + " -> ".join(ps)


def calls(trace):
    for line in open(trace, errors="replace"):
        m = CALL.match(line.rstrip("\n"))
        if m:
            yield m.group(1), m.group(2), m.group(3), m.group(4)


def plan(trace, d):
    count = {}
    for pid, name, args, _ in calls(trace):
        count[(pid, name)] = n = count.get((pid, name), 0) + 1
        what = publishing(name, args, d)
        if what:
            print(name, n, what)


def killed(trace, d):
    last = None
    for pid, name, args, ret in calls(trace):
        if ret is not None and ret.strip() == "?":
            last = publishing(name, args, d) or name + " (outside the mirror directory)"
    return last or "(no call was interrupted)"


def hdr_version(data):
    if len(data) < 512 or not data.startswith(b"ClamAV-VDB:"):
        return None
    f = data[:512].split(b":")
    return int(f[2]) if len(f) > 2 and f[2].isdigit() else None


def check(d, fx, keep, pristine, rest):
    keep = int(keep)
    if rest[:1] == ["--trace"]:
        with open(rest[2], "w") as f:
            print(killed(rest[1], d), file=f)
        rest = rest[3:]
    final = "--final" in rest
    cut = rest.index("--final") if final else len(rest)
    floors = {k: int(v) for k, v in (a.split("=") for a in rest[:cut])}
    want = {k: int(v) for k, v in (a.split("=") for a in rest[cut + 1 :])}
    bad = []
    names = set(os.listdir(d))

    def read(n, where=d):
        with open(os.path.join(where, n), "rb") as f:
            return f.read()

    def fixture(n):
        p = os.path.join(fx, n)
        return read(n, fx) if os.path.isfile(p) else None

    # every versioned name holds upstream's bytes, whole
    temps = []
    for n in sorted(names):
        m = re.fullmatch(r"([a-z]+)-(\d+)\.(cvd|cdiff)(\.sign)?", n)
        if m:
            ref = fixture(n)
            if m.group(1) not in floors or ref is None:
                bad.append("%s: not a file upstream has" % n)
            elif read(n) != ref:
                bad.append("%s: %d bytes that are not upstream's %d (half-written?)" % (n, len(read(n)), len(ref)))
        elif n.startswith(".") and n.endswith(".tmp") or n.startswith(".") and ".tmp." in n:
            temps.append(n)
        elif n == "nginx-clamfresh-mirror.conf":
            if read(n) != read(n, pristine):
                bad.append("%s: differs from the one the directory had" % n)
        elif n in ("current.txt", "clamfresh.lock") or re.fullmatch(r"[a-z]+\.(cvd|version)", n):
            pass
        else:
            bad.append("%s: unexpected file" % n)

    def window(db, v, who):
        """What a client told version v (by who) fetches: NAME-v.cvd, and the patches of the window."""
        for n in ["%s-%d.cvd" % (db, v), "%s-%d.cvd.sign" % (db, v)] + [
            "%s-%d.cdiff%s" % (db, k, s) for k in range(max(2, v - keep + 1), v + 1) for s in ("", ".sign")
        ]:
            if n not in names:
                bad.append("%s names %s version %d but %s is missing" % (who, db, v, n))

    cvdv = {}
    for db, floor in floors.items():
        n = db + ".cvd"
        if n not in names:
            bad.append("%s is missing" % n)
            continue
        data = read(n)
        v = hdr_version(data)
        if v is None:
            bad.append("%s has no readable header (%d bytes)" % (n, len(data)))
            continue
        cvdv[db] = v
        if v < floor:
            bad.append("%s went back from version %d to %d" % (n, floor, v))
        ref = fixture("%s-%d.cvd" % (db, v))
        if ref is None or data != ref:
            bad.append("%s (version %d) is not upstream's %s-%d.cvd byte for byte" % (n, v, db, v))
        window(db, v, n)

        n = db + ".version"
        if n not in names:
            bad.append("%s is missing" % n)
            continue
        text = read(n).decode("latin-1")
        m = re.fullmatch(r"(\d+):(\d+)\n", text)
        if not m:
            bad.append("%s is not 'V:T\\n': %r" % (n, text))
            continue
        pv = int(m.group(1))
        if pv < floor:
            bad.append("%s went back from version %d to %d" % (n, floor, pv))
        if pv > v:
            bad.append("%s says %d but %s.cvd is version %d" % (n, pv, db, v))
        window(db, pv, n)
        if final and (v != want[db] or pv != want[db]):
            bad.append("%s.cvd/%s say %d/%d after the rerun, upstream has %d" % (db, n, v, pv, want[db]))

    if "current.txt" not in names:
        bad.append("current.txt is missing")
    else:
        text = read("current.txt").decode("latin-1")
        m = re.fullmatch(r"([^:\n]*):(\d+):(\d+):(\d+):0:(\d+):(\d+):(\d+)\n", text)
        if not m:
            bad.append("current.txt is not a version record: %r" % text)
        else:
            slot = {"main": 2, "daily": 3, "safebrowsing": 6, "bytecode": 7}
            for db, floor in floors.items():
                if db not in slot:
                    continue
                cv = int(m.group(slot[db]))
                who = "current.txt"
                if cv < floor:
                    bad.append("%s went back from %s %d to %d" % (who, db, floor, cv))
                if cv and db in cvdv and cvdv[db] < cv:
                    bad.append("%s says %s %d but %s.cvd is version %d" % (who, db, cv, db, cvdv[db]))
                if cv:
                    window(db, cv, who)
                if final and cv != want[db]:
                    bad.append("%s says %s %d after the rerun, upstream has %d" % (who, db, cv, want[db]))

    if final:
        if temps:
            bad.append("temporaries left after the rerun: " + " ".join(temps))
        expect = {"current.txt", "clamfresh.lock", "nginx-clamfresh-mirror.conf"}
        for db, v in want.items():
            expect |= {db + ".cvd", db + ".version", "%s-%d.cvd" % (db, v), "%s-%d.cvd.sign" % (db, v)}
            expect |= {"%s-%d.cdiff%s" % (db, k, s) for k in range(max(2, v - keep + 1), v + 1) for s in ("", ".sign")}
        extra = sorted(names - expect - set(temps))
        if extra:
            bad.append("not pruned after the rerun: " + " ".join(extra))
    for b in dict.fromkeys(bad):
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "plan":
        plan(*args)
    elif cmd == "check":
        sys.exit(check(args[0], args[1], args[2], args[3], args[4:]))
    else:
        sys.exit("usage: crashcheck.py plan|check ...")
EOF
# The interpreter itself, not a version manager's wrapper script: it starts
# twice per kill point.
PY=$(python3 -c 'import sys; print(sys.executable)') && [ -x "$PY" ] || PY=python3
CHECK=("$PY" "$W/crashcheck.py")

# ---------------------------------------------------------------- the starting directory
cf_expect_exit 0 "$CLAMFRESH" "${MIRROR_ARGS[@]}" || cf_abort "the first mirror run failed"
cf_check "the starting directory holds ${BEFORE[*]} and passes the checks" \
    "${CHECK[@]}" check "$M" "$FX" "$KEEP" "$M" "${BEFORE[@]}" --final "${BEFORE[@]}"
mkdir "$W/old"
cp -a "$M" "$W/old/m"
cp -a "$W/mdb" "$W/old/mdb"
publish_up "${AFTER[@]}"

# ---------------------------------------------------------------- 0. the checker can fail
# breach_case WHAT REGEX SHELL-SNIPPET: the starting directory, damaged by the
# snippet (run inside a copy of it), must be reported as REGEX.
breach_case() {
    rm -rf "$W/bad"
    cp -a "$W/old/m" "$W/bad"
    (cd "$W/bad" && bash -c "$3") || cf_abort "cannot damage a copy for: $1"
    if "${CHECK[@]}" check "$W/bad" "$FX" "$KEEP" "$W/old/m" "${BEFORE[@]}" >"$W/breach"; then
        cf_fail "the checker misses $1"
    elif grep -qP -- "$2" "$W/breach"; then
        cf_pass "the checker reports $1"
    else
        cf_fail "the checker reports $1, but not as /$2/: $(head -n 2 "$W/breach" | paste -sd ';' -)"
    fi
}
breach_case "a half-written cdiff" '^daily-3\.cdiff: 100 bytes that are not upstream' 'truncate -s 100 daily-3.cdiff'
breach_case "current.txt naming a pruned version" 'current\.txt names daily version 3 but daily-3\.cvd is missing' \
    'rm daily-3.cvd'
breach_case "NAME.version ahead of NAME.cvd" 'daily\.version says 4 but daily\.cvd is version 3' \
    'echo 4:1 >daily.version'
breach_case "a missing .sign of the window" 'bytecode-2\.cdiff\.sign is missing' 'rm bytecode-2.cdiff.sign'
breach_case "NAME.cvd differing from NAME-V.cvd" 'daily\.cvd \(version 3\) is not upstream' \
    'cp --remove-destination daily-3.cvd daily.cvd && echo x >>daily.cvd'
breach_case "a half-written NAME.version" 'main\.version is not' 'printf 2: >main.version'
breach_case "a database going back" 'bytecode\.cvd went back from version 2 to 1' \
    "cp --remove-destination '$FX/bytecode-1.cvd' bytecode.cvd"

TRACED=rename,renameat,renameat2,link,linkat,symlink,symlinkat,unlink,unlinkat,rmdir,mkdir,mkdirat
TRACED=$TRACED,fsync,fdatasync,syncfs,sync_file_range,open,openat,openat2,creat,write,pwrite64,writev
TRACED=$TRACED,pwritev,pwritev2,ftruncate,truncate,fallocate,copy_file_range,sendfile

# kill_everywhere START: the mirror and database directories are reset from
# START/m and START/mdb before every run; one traced run lists the publishing
# calls, then a run is killed at each and the directory checked, then rerun.
kill_everywhere() {
    local start=$1 call n what rc landed at summary
    local -A tried=() broken=()
    restore() {
        rm -rf "$M" "$W/mdb"
        cp -a "$start/m" "$M"
        cp -a "$start/mdb" "$W/mdb"
    }
    restore
    {
        strace -f -y -qq -s 64 -o "$W/ref.trace" -e trace="$TRACED" "$CLAMFRESH" "${MIRROR_ARGS[@]}" \
            >"$W/ref.out" 2>&1
        rc=$?
    } 2>>"$W/strace.err"
    cf_check "the traced reference run succeeds (exit $rc)" test "$rc" = 0
    cf_check "the reference run converges to ${AFTER[*]}" \
        "${CHECK[@]}" check "$M" "$FX" "$KEEP" "$start/m" "${BEFORE[@]}" --final "${AFTER[@]}"
    "${CHECK[@]}" plan "$W/ref.trace" "$M" >"$W/plan"
    cf_check "the reference run makes publishing calls ($(wc -l <"$W/plan") found)" test -s "$W/plan"

    while read -r call n what; do
        restore
        {
            strace -f -y -qq -s 64 -o "$W/kill.trace" -e trace="$call" -e inject="$call":signal=KILL:when="$n" \
                "$CLAMFRESH" "${MIRROR_ARGS[@]}" >"$W/kill.out" 2>&1
            rc=$?
        } 2>>"$W/strace.err"
        tried[$call]=$((${tried[$call]:-0} + 1))
        at="$call #$n ($what)"
        if [ "$rc" != 137 ]; then
            cf_fail "killed at $at: the run was not killed (exit $rc); its calls differ from the reference run"
            continue
        fi
        if "${CHECK[@]}" check "$M" "$FX" "$KEEP" "$start/m" --trace "$W/kill.trace" "$W/landed" \
            "${BEFORE[@]}" >"$W/breach"; then
            cf_pass "killed at $at: every alias names whole files"
        else
            cf_fail "killed at $at: $(head -n 3 "$W/breach" | paste -sd ';' -)$([ "$(wc -l <"$W/breach")" -gt 3 ] &&
                echo " ... ($(wc -l <"$W/breach") breaches)")"
            broken[$call]=$((${broken[$call]:-0} + 1))
        fi
        landed=$(cat "$W/landed")
        case $landed in
        "$what") ;;
        "$call "*) cf__say "# note: $call #$n landed on '$landed'; the reference run had '$what' there" ;;
        *) cf_fail "killed at $at: the kill landed on '$landed', not in the mirror directory" ;;
        esac
        "$CLAMFRESH" "${MIRROR_ARGS[@]}" >"$W/rerun.out" 2>&1
        rc=$?
        if [ "$rc" = 0 ] &&
            "${CHECK[@]}" check "$M" "$FX" "$KEEP" "$start/m" "${BEFORE[@]}" --final "${AFTER[@]}" >"$W/breach"; then
            cf_pass "killed at $at: the next run converges to ${AFTER[*]}"
        else
            cf_fail "killed at $at: the next run (exit $rc): $(head -n 3 "$W/breach" | paste -sd ';' -)"
            tail -n 5 "$W/rerun.out" >&2
        fi
    done <"$W/plan"

    summary=
    for call in $(printf '%s\n' "${!tried[@]}" | sort); do
        summary="$summary $call=${tried[$call]}${broken[$call]:+ (${broken[$call]} broke an invariant)}"
    done
    cf__say "# ${CF_LABEL:-}: kill points tried per system call:$summary"
}

# ---------------------------------------------------------------- 1. a run that publishes and prunes
CF_LABEL=update
kill_everywhere "$W/old"

# ---------------------------------------------------------------- 2. a run that finishes a killed one
# The directory a run following the rules leaves when killed just before it
# replaces current.txt: every new file and alias of daily and bytecode in
# place, current.txt still naming the old versions, nothing pruned, and the
# temporary of the new current.txt half-written. The next run finds every
# database up to date and still has current.txt and the prune to do, in an
# order that must keep the same invariants.
CF_LABEL=resume
mkdir "$W/half"
cp -a "$W/old/m" "$W/half/m"
cp -a "$W/old/mdb" "$W/half/mdb"
for a in "${AFTER[@]}"; do
    db=${a%%=*}
    v=${a#*=}
    [ -e "$W/half/m/$db-$v.cvd" ] && continue
    for n in $(seq $((v > KEEP ? v - KEEP + 1 : 2)) "$v"); do
        cp "$FX/$db-$n.cdiff" "$FX/$db-$n.cdiff.sign" "$W/half/m/"
    done
    cp "$FX/$db-$v.cvd.sign" "$FX/$db-$v.cvd" "$W/half/m/"
    ln -f "$W/half/m/$db-$v.cvd" "$W/half/m/$db.cvd"
    printf '%s:%s\n' "$v" "$(date +%s)" >"$W/half/m/$db.version"
done
printf '0:2:5:' >"$W/half/m/.current.txt.Rb7TnW2e.tmp"
cf_check "the half-published directory keeps the invariants itself" \
    "${CHECK[@]}" check "$W/half/m" "$FX" "$KEEP" "$W/old/m" "${BEFORE[@]}"
kill_everywhere "$W/half"
