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

RTT = 0.1  # seconds added per round trip by the relay of row 4
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
    ("cdiff1", "1 cdiff (local V-1)"),
    ("cdiff30", "30 cdiffs (local V-30)"),
    ("uptodate", "up to date, DNS says current"),
    ("rtt0", "30 cdiffs via relay, 0 ms RTT"),
    ("rtt100", "30 cdiffs via relay, 100 ms RTT"),
    ("main", "main fresh install"),
    ("cdiff1_test", "1 cdiff, TestDatabases yes"),
]

BASELINES = [
    ("clamav.cdiff1", "ClamAV's steps, 1 cdiff: sigtool --unpack, --run-cdiff, tar"),
    ("clamav.cdiff30", "ClamAV's steps, 30 cdiffs: sigtool --unpack, 30 x --run-cdiff, tar"),
    ("clamav.loadtest", "freshclam's test load: cl_load of the new CLD"),
    ("clamav.loadtest_compile", "cl_load + cl_engine_compile (clamfresh's load test)"),
    ("floor.cp_sync", "floor: cp + sync of the CLD"),
    ("floor.sha256", "floor: openssl dgst -sha256 of the CLD"),
    ("main.untar", "main: tail -c +513 | gunzip | tar x"),
]


def row_cells(r, key):
    m = r.get(key)
    if not m:
        return None, ["SKIPPED: %s" % r.why(key), "", ""]
    return m, [secs(m["wall"]), secs(m["cpu"]), mib(m["rss_kib"])]


def targets(r, who, lines):
    g = lambda k: r.get("%s.%s" % (who, k))
    b = r.get
    out = []

    def target(text, ok, detail):
        out.append("- **%s** %s: %s" % ("MET" if ok else "MISSED", text, detail))

    def skipped(text, keys):
        # Row names are this binary's; names with a dot are baselines.
        full = [k if "." in k else "%s.%s" % (who, k) for k in keys]
        miss = [k for k in full if not b(k)]
        out.append("- **SKIPPED** %s: no %s (%s)" % (
            text, ", ".join(miss), "; ".join(r.why(k) for k in miss)))

    c1, c30 = g("cdiff1"), g("cdiff30")
    floor, steps1, steps30, load = b("floor.cp_sync"), b("clamav.cdiff1"), b("clamav.cdiff30"), b("clamav.loadtest")
    t = "1 cdiff <= 2x the cp+sync floor"
    if c1 and floor:
        target(t, c1["wall"] <= 2 * floor["wall"], "%s vs 2 x %s (%s the floor)" % (
            secs(c1["wall"]), secs(floor["wall"]), times(c1["wall"], floor["wall"])))
    else:
        skipped(t, ["cdiff1", "floor.cp_sync"])
    t = "1 cdiff >= 2x faster than ClamAV's own steps"
    if c1 and steps1:
        target(t, steps1["wall"] >= 2 * c1["wall"], "%s vs %s (%s faster)" % (
            secs(c1["wall"]), secs(steps1["wall"]), times(steps1["wall"], c1["wall"])))
    else:
        skipped(t, ["cdiff1", "clamav.cdiff1"])
    t = "1 cdiff >= 12x faster than ClamAV's steps plus the test load"
    if c1 and steps1 and load:
        tot = steps1["wall"] + load["wall"]
        target(t, tot >= 12 * c1["wall"], "%s vs %s + %s = %s (%s faster)" % (
            secs(c1["wall"]), secs(steps1["wall"]), secs(load["wall"]), secs(tot), times(tot, c1["wall"])))
    else:
        skipped(t, ["cdiff1", "clamav.cdiff1", "clamav.loadtest"])
    t = "30 cdiffs <= 1.5x the 1-cdiff time"
    if c1 and c30:
        target(t, c30["wall"] <= 1.5 * c1["wall"], "%s vs 1.5 x %s (%s)" % (
            secs(c30["wall"]), secs(c1["wall"]), times(c30["wall"], c1["wall"])))
    else:
        skipped(t, ["cdiff1", "cdiff30"])
    t = "30 cdiffs >= 15x faster than ClamAV's own steps"
    if c30 and steps30:
        target(t, steps30["wall"] >= 15 * c30["wall"], "%s vs %s (%s faster)" % (
            secs(c30["wall"]), secs(steps30["wall"]), times(steps30["wall"], c30["wall"])))
    else:
        skipped(t, ["cdiff30", "clamav.cdiff30"])
    t = "peak RSS <= 64 MiB for every update (TestDatabases no), main's fresh install included"
    keys = ["cdiff1", "cdiff30", "uptodate", "rtt0", "rtt100", "main"]
    have = [(k, g(k)) for k in keys if g(k)]
    if have:
        worst = max(have, key=lambda kv: kv[1]["rss_kib"])
        missing = [k for k in keys if not g(k)]
        target(t, worst[1]["rss_kib"] <= RSS_LIMIT_KIB and not missing,
               "largest %s (%s)%s" % (mib(worst[1]["rss_kib"]), worst[0],
                                      "; not measured: " + ", ".join(missing) if missing else ""))
    else:
        skipped(t, keys[:1])
    t = "up to date with DNS current: <= 20 ms and 0 HTTP requests"
    u = g("uptodate")
    if u:
        reqs = r.extra("%s.uptodate" % who, "requests")
        n = int(reqs) if reqs and reqs.isdigit() else -1
        target(t, u["wall"] <= UPTODATE_LIMIT and n == 0, "%s, %s HTTP requests" % (
            secs(u["wall"]), n if n >= 0 else "unknown"))
    else:
        skipped(t, ["uptodate"])
    t = "30 cdiffs at 100 ms RTT: <= 5 RTT beyond the zero-RTT time (HTTP/1.1)"
    z, h = g("rtt0"), g("rtt100")
    if z and h:
        extra = (h["wall"] - z["wall"]) / RTT
        target(t, extra <= 5, "%.1f RTT ((%s - %s) / 100 ms)" % (extra, secs(h["wall"]), secs(z["wall"])))
    else:
        skipped(t, ["rtt0", "rtt100"])
    t = "with TestDatabases yes: total <= test load alone + the 1-cdiff time"
    ct = g("cdiff1_test")
    if ct and c1 and load:
        lim = load["wall"] + c1["wall"]
        target(t, ct["wall"] <= lim, "%s vs %s + %s = %s" % (
            secs(ct["wall"]), secs(load["wall"]), secs(c1["wall"]), secs(lim)))
    else:
        skipped(t, ["cdiff1_test", "cdiff1", "clamav.loadtest"])
    lines.extend(out)


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    r = Results(argv[1])
    m = r.meta
    base = "base_bin" in m
    L = []
    L.append("# clamfresh benchmark results")
    L.append("")
    L.append("Made by `bench/run.sh` (see bench/README.md) on %s; scale %s, median of %s runs after a warm-up; "
             "whole run %s s." % (m.get("date"), m.get("scale"), m.get("runs"), m.get("elapsed")))
    L.append("")
    L.append("- machine: %s CPU(s), %s, %s, %s; load average at the end %s" % (
        m.get("nproc"), m.get("memory"), m.get("kernel"), m.get("cpu"), m.get("load")))
    L.append("- clamfresh: `%s`, commit %s" % (m.get("new_bin"), m.get("new_commit")))
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
    head = "| row | wall | CPU (user+sys) | peak RSS |"
    sep = "|---|---:|---:|---:|"
    if base:
        head += " base wall | base CPU | base peak RSS | wall new/base |"
        sep += "---:|---:|---:|---:|"
    L.append(head)
    L.append(sep)
    for key, label in ROWS:
        mnew, cells = row_cells(r, "new." + key)
        line = "| %s | %s |" % (label, " | ".join(cells))
        if base:
            mb, bcells = row_cells(r, "base." + key)
            ratio = times(mnew["wall"], mb["wall"]) if mnew and mb else ""
            line += " %s | %s |" % (" | ".join(bcells), ratio)
        L.append(line)
    z, h = r.get("new.rtt0"), r.get("new.rtt100")
    notes = []
    if z and h:
        notes.append("100 ms RTT: %.1f round trips beyond the zero-RTT time, (%s - %s) / 100 ms." % (
            (h["wall"] - z["wall"]) / RTT, secs(h["wall"]), secs(z["wall"])))
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
        L.append("| %s | %s |" % (label, " | ".join(cells)))
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
