#!/usr/bin/env python3
"""The table of bench/run.sh: reads the measurements in RESDIR (KEY.json from
measure.py, KEY.skip with a reason, meta with the machine and the data) and
prints the rows, the baselines and the targets, MET or MISSED, as Markdown
on stdout and into OUT.

    report.py RESDIR OUT
"""
import json
import os
import sys

RTT = 0.1  # seconds added per round trip by the relay of rows 4a-4c
RTT_LIMIT_H1 = 5  # round trips beyond the zero-RTT time, DNS giving the version
RTT_LIMIT_H2 = 3
RSS_LIMIT_KIB = 64 * 1024
UPTODATE_LIMIT = 0.020


class Results:
    def __init__(self, d):
        self.d = d
        self.meta = {}
        with open(os.path.join(d, "meta")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                self.meta[k] = v

    def get(self, key):
        p = os.path.join(self.d, key + ".json")
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f)
        return None

    def why(self, key):
        p = os.path.join(self.d, key + ".skip")
        if os.path.exists(p):
            with open(p) as f:
                return f.read().strip() or "no reason given"
        return "not measured"

    def extra(self, key, name):
        p = os.path.join(self.d, "%s.%s" % (key, name))
        if os.path.exists(p):
            with open(p) as f:
                return f.read().strip()
        return None


def secs(x):
    return "%.3f s" % x if x >= 0.1 else "%.1f ms" % (x * 1000)


def mib(kib):
    return "%.1f MiB" % (kib / 1024.0)


def mib_b(b):
    return "%.1f MiB" % (int(b) / 1048576.0)


def times(a, b):
    return "%.2fx" % (a / b) if b else "n/a"


ROWS = [
    ("cdiff1", "1 cdiff (local V-1, verified by an earlier run)"),
    ("cdiff1_cold", "1 cdiff, local never verified: full check (informational)"),
    ("cdiff30", "30 cdiffs (local V-30, verified by an earlier run)"),
    ("uptodate", "up to date, DNS says current"),
    ("rtt0_h1", "30 cdiffs via relay, DNS, HTTP/1.1, 0 ms RTT"),
    ("rtt100_h1", "30 cdiffs via relay, DNS, HTTP/1.1, 100 ms RTT"),
    ("rtt0_h2", "30 cdiffs via relay, DNS, HTTP/2 (TLS), 0 ms RTT"),
    ("rtt100_h2", "30 cdiffs via relay, DNS, HTTP/2 (TLS), 100 ms RTT"),
    ("rtt0_nodns", "30 cdiffs via relay, --no-dns, HTTP/1.1, 0 ms RTT (informational)"),
    ("rtt100_nodns", "30 cdiffs via relay, --no-dns, HTTP/1.1, 100 ms RTT (informational)"),
    ("main", "main fresh install"),
    ("cdiff1_test", "1 cdiff, TestDatabases yes"),
]

BASELINES = [
    ("clamav.cdiff1", "ClamAV's steps, 1 cdiff: sigtool --unpack, --run-cdiff, tar"),
    ("clamav.cdiff30", "ClamAV's steps, 30 cdiffs: sigtool --unpack, 30 x --run-cdiff, tar"),
    ("clamav.loadtest", "freshclam's test load: cl_load of the new CLD"),
    ("clamav.loadtest_compile", "cl_load + cl_engine_compile (clamfresh's load test)"),
    ("freshclam.cdiff1", "freshclam 1.4 itself, 1 cdiff (TestDatabases no)"),
    ("freshclam.cdiff30", "freshclam 1.4 itself, 30 cdiffs (TestDatabases no)"),
    ("freshclam.cdiff1_test", "freshclam 1.4 itself, 1 cdiff, TestDatabases yes"),
    ("freshclam.main", "freshclam 1.4 itself, main fresh install"),
    ("floor.cp_sync", "floor: cp + sync of the CLD"),
    ("floor.sha256", "floor: openssl dgst -sha256 of the CLD"),
    ("floor.curl_start", "floor for the up-to-date row: curl --version (loading Debian's libcurl)"),
    ("main.untar", "main: tail -c +513 | gunzip | tar x"),
]


def ratios(r, who, key):
    """Short comparisons of a row with the baselines of the same run."""
    m = r.get("%s.%s" % (who, key))
    if not m:
        return ""
    w = m["wall"]
    b = lambda k: (r.get(k) or {}).get("wall")
    parts = []
    fc = b("freshclam.%s" % key)
    if fc:
        parts.append("freshclam takes %s as long" % times(fc, w))
    if key == "cdiff1_cold":
        if b("floor.cp_sync"):
            parts.append("%s the cp+sync floor" % times(w, b("floor.cp_sync")))
    if key == "cdiff1":
        if b("floor.cp_sync"):
            parts.append("%s the cp+sync floor" % times(w, b("floor.cp_sync")))
        if b("clamav.cdiff1"):
            parts.append("ClamAV's steps take %s as long" % times(b("clamav.cdiff1"), w))
        if b("clamav.cdiff1") and b("clamav.loadtest"):
            parts.append("steps + test load %s" % times(b("clamav.cdiff1") + b("clamav.loadtest"), w))
    elif key == "cdiff30":
        c1 = (r.get("%s.cdiff1" % who) or {}).get("wall")
        if c1:
            parts.append("%s the 1-cdiff time" % times(w, c1))
        if b("clamav.cdiff30"):
            parts.append("ClamAV's steps take %s as long" % times(b("clamav.cdiff30"), w))
    elif key == "uptodate":
        n = r.extra("%s.uptodate" % who, "requests")
        parts.append("%s HTTP requests" % (n if n is not None else "?"))
    elif key.startswith("rtt"):
        if key.startswith("rtt100"):
            z = (r.get("%s.rtt0%s" % (who, key[6:])) or {}).get("wall")
            if z:
                parts.append("%+.1f RTT over 0 ms" % ((w - z) / RTT))
        n = r.extra("%s.%s" % (who, key), "requests")
        if n:
            parts.append(n)
    elif key == "main":
        if b("main.untar"):
            parts.append("%s gunzip | tar x" % times(w, b("main.untar")))
    elif key == "cdiff1_test":
        c1 = (r.get("%s.cdiff1" % who) or {}).get("wall")
        if c1 and b("clamav.loadtest"):
            parts.append("%s (test load + 1 cdiff)" % times(w, b("clamav.loadtest") + c1))
    return "; ".join(parts)


def cell(text):
    return text.replace("|", "\\|")


def row_cells(r, key):
    m = r.get(key)
    if not m:
        return None, ["SKIPPED: %s" % r.why(key), "", ""]
    return m, [secs(m["wall"]), secs(m["cpu"]), mib(m["rss_kib"])]


def noise(z, h):
    """A warning when the runs of the two RTT rows spread more than the
    difference between them: then the round trips are hidden in noise (or
    behind CPU work) and the figure says little."""
    spread = max(max(m["walls"]) - min(m["walls"]) for m in (z, h))
    if spread > abs(h["wall"] - z["wall"]):
        return (" - inconclusive: the runs of these rows spread over %s (%.0f RTT), more than the difference;"
                " the 30-cdiff update is CPU-bound here (%s CPU) and hides the round trips" % (
                    secs(spread), spread / RTT, secs(z["cpu"])))
    return ""


def targets(r, who, lines):
    """One line per target: MET or MISSED on wall time (what the targets
    say); timed targets also say how they fare on CPU time, which a machine
    shared with other work disturbs much less."""
    g = lambda k: r.get("%s.%s" % (who, k))
    b = r.get

    def line(text, keys, judge, cpu=True):
        full = [k if "." in k else "%s.%s" % (who, k) for k in keys]
        ms = [b(k) for k in full]
        if not all(ms):
            miss = [k for k, m in zip(full, ms) if not m]
            lines.append("- **SKIPPED** %s: no %s (%s)" % (text, ", ".join(miss), "; ".join(r.why(k) for k in miss)))
            return
        ok, detail = judge("wall", *ms)
        out = "- **%s** %s: %s" % ({True: "MET", False: "MISSED", None: "INCONCLUSIVE"}[ok], text, detail)
        if cpu:
            cok, cdetail = judge("cpu", *ms)
            out += "; on CPU time %s (%s)" % ("met" if cok else "missed", cdetail)
        lines.append(out)

    line("1 cdiff <= 2x the cp+sync floor", ["cdiff1", "floor.cp_sync"],
         lambda f, c1, fl: (c1[f] <= 2 * fl[f], "%s vs 2 x %s, %s the floor" % (
             secs(c1[f]), secs(fl[f]), times(c1[f], fl[f]))))
    line("1 cdiff >= 2x faster than ClamAV's own steps", ["cdiff1", "clamav.cdiff1"],
         lambda f, c1, st: (st[f] >= 2 * c1[f], "%s vs %s, theirs / ours = %s" % (
             secs(c1[f]), secs(st[f]), times(st[f], c1[f]))))
    line("1 cdiff >= 12x faster than ClamAV's steps plus the test load",
         ["cdiff1", "clamav.cdiff1", "clamav.loadtest"],
         lambda f, c1, st, ld: (st[f] + ld[f] >= 12 * c1[f], "%s vs %s + %s, theirs / ours = %s" % (
             secs(c1[f]), secs(st[f]), secs(ld[f]), times(st[f] + ld[f], c1[f]))))
    line("30 cdiffs <= 1.5x the 1-cdiff time", ["cdiff30", "cdiff1"],
         lambda f, c30, c1: (c30[f] <= 1.5 * c1[f], "%s vs 1.5 x %s, %s" % (
             secs(c30[f]), secs(c1[f]), times(c30[f], c1[f]))))
    line("30 cdiffs >= 15x faster than ClamAV's own steps", ["cdiff30", "clamav.cdiff30"],
         lambda f, c30, st: (st[f] >= 15 * c30[f], "%s vs %s, theirs / ours = %s" % (
             secs(c30[f]), secs(st[f]), times(st[f], c30[f]))))

    keys = ["cdiff1", "cdiff1_cold", "cdiff30", "uptodate", "rtt0_h1", "rtt100_h1", "rtt0_h2", "rtt100_h2", "main"]
    have = [(k, g(k)) for k in keys if g(k)]
    text = "peak RSS <= 64 MiB for every update (TestDatabases no), main's fresh install included"
    if have:
        worst = max(have, key=lambda kv: kv[1]["rss_kib"])
        missing = [k for k in keys if not g(k)]
        lines.append("- **%s** %s: largest %s (%s)%s" % (
            "MET" if worst[1]["rss_kib"] <= RSS_LIMIT_KIB and not missing else "MISSED", text,
            mib(worst[1]["rss_kib"]), worst[0], "; not measured: " + ", ".join(missing) if missing else ""))
    else:
        line(text, keys[:1], None)

    reqs = r.extra("%s.uptodate" % who, "requests")
    n = int(reqs) if reqs and reqs.isdigit() else -1
    line("up to date with DNS current: <= 20 ms and 0 HTTP requests", ["uptodate"],
         lambda f, u: (u[f] <= UPTODATE_LIMIT and n == 0, "%s, %s HTTP requests" % (
             secs(u[f]), n if n >= 0 else "unknown")))
    for proto, label, limit in (("h1", "HTTP/1.1", RTT_LIMIT_H1), ("h2", "HTTP/2", RTT_LIMIT_H2)):
        line("30 cdiffs at 100 ms RTT, DNS giving the version: <= %d RTT beyond the zero-RTT time (%s)" % (
            limit, label), ["rtt0_" + proto, "rtt100_" + proto],
             lambda f, z, h, limit=limit: (None if noise(z, h) else (h[f] - z[f]) / RTT <= limit,
                                           "%.1f RTT, (%s - %s) / 100 ms%s" % (
                                               (h[f] - z[f]) / RTT, secs(h[f]), secs(z[f]), noise(z, h))),
             cpu=False)
    line("with TestDatabases yes: total <= test load alone + the 1-cdiff time",
         ["cdiff1_test", "clamav.loadtest", "cdiff1"],
         lambda f, ct, ld, c1: (ct[f] <= ld[f] + c1[f], "%s vs %s + %s = %s" % (
             secs(ct[f]), secs(ld[f]), secs(c1[f]), secs(ld[f] + c1[f]))))


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    r = Results(argv[1])
    m = r.meta
    base = "base_bin" in m
    L = []
    L.append("# clamfresh benchmark results")
    L.append("")
    L.append("Made by `bench/run.sh` (see bench/README.md) on %s; scale %s; each figure the median of %s runs "
             "after %s warm-up run(s) (none for ClamAV's steps and the test loads); whole run %s s." % (
                 m.get("date"), m.get("scale"), m.get("runs"), m.get("warmup", "1"), m.get("elapsed")))
    L.append("")
    L.append("- machine: %s CPU(s), %s, %s, %s; load average (1, 5, 15 min) at the start %s, at the end %s" % (
        m.get("nproc"), m.get("memory"), m.get("kernel"), m.get("cpu"), m.get("load_start"), m.get("load")))
    L.append("- clamfresh: `%s`, commit %s" % (m.get("new_bin"), m.get("new_commit")))
    if m.get("mirror"):
        L.append("- mirror of rows 1, 2, 5, 6 and the baselines: %s on 127.0.0.1" % m.get("mirror"))
    if base:
        L.append("- base clamfresh: `%s`, commit %s" % (m.get("base_bin"), m.get("base_commit")))
    L.append("- daily: version %s, %s signature lines in %s members, %s unpacked, CVD %s, CLD %s; "
             "30 cdiffs, %s in all (%.1f KiB each)" % (
                 m.get("daily_version"), "{:,}".format(int(m.get("daily_lines", 0))), m.get("daily_members"),
                 mib_b(m.get("daily_bytes", 0)), mib_b(m.get("daily_cvd", 0)), mib_b(m.get("daily_cld", 0)),
                 mib_b(m.get("cdiff_bytes", 0)), int(m.get("cdiff_bytes", 0)) / 30.0 / 1024))
    L.append("- main: %s signature lines, %s unpacked, CVD %s" % (
        "{:,}".format(int(m.get("main_lines", 0))), mib_b(m.get("main_bytes", 0)), mib_b(m.get("main_cvd", 0))))
    L.append("")
    L.append("## clamfresh")
    L.append("")
    head = "| row | wall | CPU (user+sys) | peak RSS | against the baselines |"
    sep = "|---|---:|---:|---:|---|"
    if base:
        head += " base wall | base CPU | base peak RSS | wall new/base |"
        sep += "---:|---:|---:|---:|"
    L.append(head)
    L.append(sep)
    for key, label in ROWS:
        mnew, cells = row_cells(r, "new." + key)
        line = "| %s | %s | %s |" % (cell(label), " | ".join(cell(c) for c in cells), cell(ratios(r, "new", key)))
        if base:
            mb, bcells = row_cells(r, "base." + key)
            ratio = times(mnew["wall"], mb["wall"]) if mnew and mb else ""
            line += " %s | %s |" % (" | ".join(cell(c) for c in bcells), ratio)
        L.append(line)
    notes = []
    for suffix, what in (("h1", "DNS, HTTP/1.1"), ("h2", "DNS, HTTP/2"),
                         ("nodns", "--no-dns, HTTP/1.1, informational: no target")):
        z, h = r.get("new.rtt0_" + suffix), r.get("new.rtt100_" + suffix)
        if z and h:
            notes.append("100 ms RTT (%s): %.1f round trips beyond the zero-RTT time, (%s - %s) / 100 ms%s." % (
                what, (h["wall"] - z["wall"]) / RTT, secs(h["wall"]), secs(z["wall"]), noise(z, h)))
    reqs = r.extra("new.uptodate", "requests")
    if reqs is not None:
        notes.append("Up to date: %s HTTP requests reached the mirror." % reqs)
    for n in notes:
        L.append("")
        L.append(n)
    L.append("")
    L.append("## Baselines (same run, same machine, same data)")
    L.append("")
    L.append("| baseline | wall | CPU (user+sys) | peak RSS |")
    L.append("|---|---:|---:|---:|")
    for key, label in BASELINES:
        _, cells = row_cells(r, key)
        L.append("| %s | %s |" % (cell(label), " | ".join(cell(c) for c in cells)))
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("clamfresh (`%s`):" % m.get("new_bin"))
    L.append("")
    targets(r, "new", L)
    if base:
        L.append("")
        L.append("base clamfresh (`%s`):" % m.get("base_bin"))
        L.append("")
        targets(r, "base", L)
    L.append("")
    text = "\n".join(L)
    with open(argv[2], "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv)
