#!/usr/bin/env python3
"""Helpers of bench/run.sh: synthetic signature files and the numbers the
table is made of.

    gen.py init DIR LINES SEED        daily.{hdb,hsb,mdb,msb,ndb,ldb}, LINES in all
    gen.py mutate DIR SEED FRACTION   change FRACTION of the lines of every file
    gen.py bytes LOG                  body bytes in a mirror.py JSON log
    gen.py requests LOG               requests by kind in a mirror.py JSON log
    gen.py median JSON                median seconds of a hyperfine --export-json file
    gen.py median-list S1 S2 ...      median of numbers
    gen.py treesize DIR               total bytes of the regular files in DIR

Content is deterministic for a given seed, so every run measures the same data.
The lines have the shapes of real ClamAV signatures (.hdb MD5:size:name,
.ndb name:target:offset:hex-pattern, ...), but they are random: nothing
here would ever match a file.
"""
import json
import os
import random
import statistics
import sys


def hdb_line(rng, serial):
    return "%032x:%d:Bench.Hdb.Sig-%d-0" % (rng.getrandbits(128), rng.randrange(64, 5000000), serial)


def hsb_line(rng, serial):
    return "%064x:%d:Bench.Hsb.Sig-%d-0" % (rng.getrandbits(256), rng.randrange(64, 5000000), serial)


def mdb_line(rng, serial):
    return "%d:%032x:Bench.Mdb.Sig-%d-0" % (rng.randrange(512, 400000), rng.getrandbits(128), serial)


def msb_line(rng, serial):
    return "%d:%064x:Bench.Msb.Sig-%d-0" % (rng.randrange(512, 400000), rng.getrandbits(256), serial)


def ndb_line(rng, serial):
    pattern = "%0*x" % (2 * 56, rng.getrandbits(8 * 56))
    return "Bench.Ndb.Sig-%d-0:%d:*:%s" % (serial, rng.randrange(0, 8), pattern)


def ldb_line(rng, serial):
    subs = ";".join("%0*x" % (2 * 24, rng.getrandbits(8 * 24)) for _ in range(3))
    return "Bench.Ldb.Sig-%d-0;Engine:51-255,Target:1;0&1&2;%s" % (serial, subs)


# Several members, as in a real daily.cvd; the line shapes are those of each
# extension (hash, section hash, body pattern, logical signature).
MAKERS = {"daily.hdb": hdb_line, "daily.hsb": hsb_line, "daily.mdb": mdb_line,
          "daily.msb": msb_line, "daily.ndb": ndb_line, "daily.ldb": ldb_line}


def write_lines(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
        f.write("\n")
    os.replace(tmp, path)


def cmd_init(d, nlines, seed):
    rng = random.Random(seed)
    per = nlines // len(MAKERS)
    serial = 0
    for name, make in sorted(MAKERS.items()):
        lines = []
        for _ in range(per):
            serial += 1
            lines.append(make(rng, serial))
        write_lines(os.path.join(d, name), lines)


def cmd_mutate(d, seed, fraction):
    """Touches FRACTION of the lines of each file: 60% are replaced in place,
    20% deleted and as many new ones appended, the way a daily database is
    corrected and grows (a cdiff can only add lines at the end of a file)."""
    rng = random.Random(seed)
    serial = 10_000_000 + seed * 100_000
    for name, make in sorted(MAKERS.items()):
        path = os.path.join(d, name)
        with open(path) as f:
            lines = f.read().splitlines()
        touched = max(1, int(len(lines) * fraction))
        picks = rng.sample(range(len(lines)), touched)
        nrepl = touched * 6 // 10
        ndel = touched * 2 // 10
        for i in picks[:nrepl]:
            serial += 1
            lines[i] = make(rng, serial)
        dead = set(picks[nrepl:nrepl + ndel])
        lines = [l for i, l in enumerate(lines) if i not in dead]
        for _ in range(touched - nrepl - ndel):
            serial += 1
            lines.append(make(rng, serial))
        write_lines(path, lines)


def log_records(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    return recs


def cmd_bytes(path):
    print(sum(int(r.get("bytes") or 0) for r in log_records(path)))


def cmd_requests(path):
    kinds = {}
    for r in log_records(path):
        p = r.get("path", "")
        kind = ("cdiff.sign" if p.endswith(".cdiff.sign") else "cdiff" if p.endswith(".cdiff")
                else "cvd.sign" if p.endswith(".sign") else "cvd" if ".cvd" in p else "other")
        if r.get("range"):
            kind += " (range)"
        kinds[kind] = kinds.get(kind, 0) + 1
    print(", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())))


def cmd_median(path):
    with open(path) as f:
        data = json.load(f)
    print("%.6f" % data["results"][0]["median"])


def cmd_treesize(d):
    total = 0
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            total += os.path.getsize(p)
    print(total)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "init":
        cmd_init(args[0], int(args[1]), int(args[2]))
    elif cmd == "mutate":
        cmd_mutate(args[0], int(args[1]), float(args[2]))
    elif cmd == "bytes":
        cmd_bytes(args[0])
    elif cmd == "requests":
        cmd_requests(args[0])
    elif cmd == "median":
        cmd_median(args[0])
    elif cmd == "median-list":
        print("%.6f" % statistics.median(float(a) for a in args))
    elif cmd == "treesize":
        cmd_treesize(args[0])
    else:
        sys.exit("gen.py: unknown command %s" % cmd)


if __name__ == "__main__":
    main(sys.argv)
