#!/usr/bin/env python3
"""Times a command for bench/run.sh: wall-clock time, CPU time (user + sys)
and peak resident memory of the command and every process it waited for,
from wait4(2)'s rusage (through SPAWN, bench/spawn.c).

    measure.py --spawn SPAWN --out FILE.json [--runs N] [--warmup N]
               [--prepare SHELL] [--check SHELL] [--env NAME=VALUE]... -- COMMAND [ARG...]

COMMAND runs directly (no shell: give "sh -c '...'" for a pipeline), with
stdout and stderr to FILE.json's .log. --prepare runs before every run,
--check after every run, both through sh and outside the timing; a failing
COMMAND or --check stops everything with exit 1 and the reason. The JSON
holds the median of the timed runs for wall and cpu (seconds), the largest
peak RSS seen (KiB), and every sample.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def sh(cmd, what):
    r = subprocess.run(["sh", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        out = r.stdout.decode(errors="replace").strip()
        sys.stderr.write(out + "\n")
        # The last line says why (e.g. which member differs): keep it on the
        # line run.sh reports.
        sys.exit("measure: %s failed (exit %d): %s" % (what, r.returncode, out.splitlines()[-1] if out else cmd))


def once(spawn, argv, env, log):
    # bench/spawn.c forks the command and reports wall time, CPU time and
    # peak RSS from wait4(2): a process forked from this Python would carry
    # Python's resident pages into its peak RSS (Linux keeps the high-water
    # mark across exec), and Python's own start of the child would be timed.
    res = log + ".res"
    with open(log, "ab") as out:
        p = subprocess.run([spawn, res] + argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    try:
        with open(res) as f:
            wall, cpu, maxrss, rc = f.read().split()
        return int(rc), float(wall), float(cpu), int(maxrss)
    except (OSError, ValueError):
        return p.returncode or 125, 0.0, 0.0, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--prepare")
    ap.add_argument("--check")
    ap.add_argument("--out", required=True)
    ap.add_argument("--spawn", required=True, help="the bench/spawn.c binary")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    argv = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not argv:
        sys.exit("measure: no command")
    env = dict(os.environ)
    for kv in a.env:
        k, _, v = kv.partition("=")
        env[k] = v
    log = os.path.splitext(a.out)[0] + ".log"
    open(log, "w").close()
    walls, cpus, rss = [], [], 0
    for i in range(a.warmup + a.runs):
        if a.prepare:
            sh(a.prepare, "prepare")
        rc, wall, cpu, maxrss = once(a.spawn, argv, env, log)
        if rc != 0:
            with open(log, errors="replace") as f:
                tail = f.read()[-2000:]
            sys.stderr.write(tail)
            sys.exit("measure: command failed (exit %d): %s" % (rc, " ".join(argv)))
        if a.check:
            sh(a.check, "check")
        if i >= a.warmup:
            walls.append(wall)
            cpus.append(cpu)
            rss = max(rss, maxrss)
    res = {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "rss_kib": rss,
           "walls": walls, "cpus": cpus, "command": argv}
    with open(a.out, "w") as f:
        json.dump(res, f)
    print("%.4f %.4f %d" % (res["wall"], res["cpu"], rss))


if __name__ == "__main__":
    main()
