#!/usr/bin/env python3
"""Synthetic ClamAV-shaped databases for bench/run.sh, and checks of what an
update installed.

    gen.py daily-init DIR SCALE        the members of a daily database
    gen.py daily-mutate DIR VERSION    one day of edits: a few hundred ADD, DEL
                                       and XCHG lines over 4 to 9 members
    gen.py main-init DIR SCALE         the members of a main database
    gen.py members FILE                "NAME SIZE SHA256" of every member of a
                                       CVD or CLD (plain or gzip tar body)
    gen.py dir-members DIR             the same for the files of a directory
    gen.py same-members FILE EXPECTED  exit 1, naming the first difference,
                                       unless FILE's members equal EXPECTED
                                       (a "members" listing)
    gen.py treesize DIR                total bytes of the files in DIR
    gen.py lines DIR                   total lines of the files in DIR

At SCALE 1 a daily has about 2.1 million signature lines in 21 signature
members (about 162 MiB) and a main about 6.6 million lines (about 445 MiB),
the sizes of ClamAV's own databases. Content is deterministic: the same
SCALE and VERSION always give the same bytes, so the cache can be trusted
and every run measures the same data.

Every line has the syntax of its extension, so libclamav loads all of them
(the test-load baseline needs that), but the hashes and patterns are random:
nothing here matches a real file.
"""
import gzip
import hashlib
import os
import random
import sys
import tarfile

PLATFORMS = ("Win", "Doc", "Html", "Js", "Unix", "Andr", "Osx", "Xls", "Pdf", "Email", "Java",
             "Txt", "Multios", "Vbs", "Ps1", "Rtf")
CATEGORIES = ("Trojan", "Malware", "Downloader", "Dropper", "Exploit", "Phishing", "Adware",
              "Ransomware", "Packed", "Worm", "Virus", "Coinminer", "Spyware", "Keylogger",
              "Backdoor", "Infostealer")
FAMILIES = ("Agent", "Generic", "Emotet", "Zbot", "Ursnif", "Razy", "Dridex", "Tofsee", "Nanocore",
            "Remcos", "Lokibot", "Formbook", "Qakbot", "Zusy", "Mirai", "Gafgyt", "Kryptik",
            "Xmrig", "Sality", "Ramnit", "Expiro", "Upatre", "Fareit", "Zeus", "Bladabindi",
            "Cerber", "Locky", "Gandcrab", "Trickbot", "Azorult", "AgentTesla", "Redline", "Vidar",
            "Bifrost", "Tinba", "Gozi", "Nymaim", "Hancitor", "Valyria", "Wacatac")
FTM_TYPES = ("CL_TYPE_MSEXE", "CL_TYPE_ZIP", "CL_TYPE_PDF", "CL_TYPE_HTML", "CL_TYPE_GRAPHICS",
             "CL_TYPE_RAR", "CL_TYPE_7Z", "CL_TYPE_MSOLE2", "CL_TYPE_RTF", "CL_TYPE_ELF")


class Namer:
    """ClamAV-style names (Win.Trojan.Agent-6923146-0), unique by serial."""

    def __init__(self, rng, first):
        self.rng = rng
        self.serial = first

    def __call__(self):
        self.serial += 1
        r = self.rng
        return "%s.%s.%s-%d-%d" % (PLATFORMS[r.randrange(len(PLATFORMS))],
                                   CATEGORIES[r.randrange(len(CATEGORIES))],
                                   FAMILIES[r.randrange(len(FAMILIES))], self.serial,
                                   0 if r.random() < 0.9 else r.randrange(1, 4))


def hexs(r, nbytes):
    return "%0*x" % (2 * nbytes, r.getrandbits(8 * nbytes))


def size(r):
    # File sizes: mostly tens of KiB to a few MiB.
    return int(2 ** r.uniform(9, 23))


# One function per extension: (rng, namer) -> a line without its newline.
def l_md5(r, n):
    return "%s:%d:%s" % (hexs(r, 16), size(r), n())


def l_sha256(r, n):
    return "%s:%d:%s" % (hexs(r, 32), size(r), n())


def l_sect_md5(r, n):
    return "%d:%s:%s" % (r.randrange(512, 400000), hexs(r, 16), n())


def l_sect_sha256(r, n):
    return "%d:%s:%s" % (r.randrange(512, 400000), hexs(r, 32), n())


def body_pattern(r, lo, hi):
    # Hex with the odd wildcard, as body signatures have.
    parts = [hexs(r, r.randrange(lo, hi))]
    if r.random() < 0.3:
        parts.append("??" * r.randrange(1, 4))
        parts.append(hexs(r, r.randrange(4, 16)))
    return "".join(parts)


def l_ndb(r, n):
    target = r.randrange(0, 8)
    roll = r.random()
    # EP-relative offsets exist only for executables (target 1: PE).
    offset = "*" if roll < 0.6 or (roll < 0.8 and target != 1) else \
        "EP+%d" % r.randrange(0, 512) if roll < 0.8 else "%d" % r.randrange(0, 4096)
    return "%s:%d:%s:%s" % (n(), target, offset, body_pattern(r, 12, 48))


def l_ldb(r, n):
    k = r.randrange(2, 6)
    subs = ";".join(body_pattern(r, 8, 40) for _ in range(k))
    expr = "&".join(str(i) for i in range(k)) if r.random() < 0.7 else \
        "(%s)&%d" % ("|".join(str(i) for i in range(k - 1)), k - 1)
    return "%s;Engine:81-255,Target:%d;%s;%s" % (n(), r.randrange(0, 8), expr, subs)


def l_cdb(r, n):
    return "%s:CL_TYPE_ZIP:*:%s[0-9]{%d}\\.exe:*:*:*:*:*:*" % (n(), "".join(
        r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randrange(5, 14))), r.randrange(2, 6))


def l_crb(r, n):
    return "%s;0;%s;%s;%s;010001;1;0;0;;Revoked certificate" % (n(), hexs(r, 20), hexs(r, 20), hexs(r, 256))


def l_idb(r, n):
    # The icon hash is a list of fields libclamav range-checks: the icon size
    # (32), then per metric average values and x/y positions inside the icon.
    xy = lambda: "%02x%02x" % (r.randrange(0, 29), r.randrange(0, 29))
    h = ["20"]
    h += ["%03x%s" % (r.randrange(0, 4073), xy()) for _ in range(6)]  # colour, grey
    h += ["%02x%s" % (r.randrange(0, 256), xy()) for _ in range(12)]  # bright, dark, edge, noedge
    h.append("10101010")  # spread
    return "%s:ICONS%d:GROUP%d:%s" % (n(), r.randrange(1, 20), r.randrange(1, 20), "".join(h))


def l_ign2(r, n):
    return n()


def l_ftm(r, n):
    return "0:%d:%s:Bench magic %d:CL_TYPE_ANY:%s:%d" % (r.randrange(0, 64), hexs(r, r.randrange(4, 12)),
                                                         n.serial, r.choice(FTM_TYPES), 80)


def host(r):
    return "%s%d.%s" % ("".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randrange(4, 12))),
                        r.randrange(1, 1000), r.choice(("com", "net", "org", "de", "co.uk")))


def l_pdb(r, n):
    n()
    return "H:%s" % host(r)


def l_wdb(r, n):
    n()
    h = host(r)
    return "M:%s:%s" % ("www." + h, h)


MAKERS = {"hdb": l_md5, "hdu": l_md5, "fp": l_md5, "hsb": l_sha256, "hsu": l_sha256, "sfp": l_sha256,
          "mdb": l_sect_md5, "mdu": l_sect_md5, "msb": l_sect_sha256, "msu": l_sect_sha256,
          "ndb": l_ndb, "ndu": l_ndb, "ldb": l_ldb, "ldu": l_ldb, "cdb": l_cdb, "crb": l_crb,
          "idb": l_idb, "ign2": l_ign2, "ftm": l_ftm, "pdb": l_pdb, "wdb": l_wdb}

# Lines per member at SCALE 1, after the composition of ClamAV's databases.
DAILY = {"hsb": 700000, "hdb": 640000, "mdb": 420000, "msb": 15000, "ndb": 70000, "ldb": 28000,
         "hdu": 25000, "hsu": 30000, "mdu": 12000, "msu": 3000, "ndu": 8000, "ldu": 6000,
         "fp": 9000, "sfp": 4000, "cdb": 3000, "crb": 400, "idb": 2500, "ign2": 2000, "ftm": 150,
         "pdb": 600, "wdb": 2500}
MAIN = {"hdb": 3900000, "mdb": 1900000, "hsb": 500000, "msb": 30000, "ndb": 150000, "ldb": 25000,
        "cdb": 5000, "fp": 20000, "sfp": 5000, "idb": 5000, "crb": 300, "ign2": 1000, "wdb": 2000,
        "pdb": 1000, "ftm": 100}
# Weights for the members a day of edits touches (the big hash members most).
EDIT_WEIGHTS = {"hsb": 30, "hdb": 25, "mdb": 12, "ndb": 10, "ldb": 10, "msb": 3, "hdu": 3, "hsu": 3,
                "fp": 3, "sfp": 2, "cdb": 2, "idb": 1, "ign2": 3, "ftm": 1, "wdb": 2, "pdb": 1,
                "mdu": 1, "msu": 1, "ndu": 2, "ldu": 2, "crb": 1}


def write_lines(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
        f.write("\n")
    os.replace(tmp, path)


def init(d, prefix, table, scale, seed, first_serial):
    rng = random.Random(seed)
    namer = Namer(rng, first_serial)
    for ext in sorted(table):
        count = max(1, int(round(table[ext] * scale)))
        make = MAKERS[ext]
        write_lines(os.path.join(d, "%s.%s" % (prefix, ext)), [make(rng, namer) for _ in range(count)])
        sys.stderr.write(".")
        sys.stderr.flush()


def cmd_daily_mutate(d, version):
    """A day of a daily database: 4 to 9 members edited, about 200-300 lines
    in all; most new signatures are appended, some are dropped or corrected
    in place (a cdiff's ADD appends, DEL and XCHG address a line)."""
    rng = random.Random(version * 7919)
    namer = Namer(rng, 20_000_000 + version * 10_000)
    exts = list(EDIT_WEIGHTS)
    chosen = set()
    want = rng.randrange(4, 10)
    while len(chosen) < want:
        chosen.add(rng.choices(exts, weights=[EDIT_WEIGHTS[e] for e in exts])[0])
    budget = rng.randrange(200, 320)
    for i, ext in enumerate(sorted(chosen)):
        path = os.path.join(d, "daily.%s" % ext)
        with open(path) as f:
            lines = f.read().splitlines()
        ops = max(3, budget // len(chosen) + rng.randrange(-10, 11))
        make = MAKERS[ext]
        n_del = min(len(lines) // 4, ops * 15 // 100)
        n_xchg = min(len(lines) // 4, ops * 15 // 100)
        picks = rng.sample(range(len(lines)), n_del + n_xchg)
        for j in picks[:n_xchg]:
            lines[j] = make(rng, namer)
        dead = set(picks[n_xchg:])
        if dead:
            lines = [l for j, l in enumerate(lines) if j not in dead]
        lines.extend(make(rng, namer) for _ in range(ops - n_del - n_xchg))
        write_lines(path, lines)


def open_body(path):
    """The tar stream of a CVD or CLD: after the 512-byte header, gzip or plain."""
    f = open(path, "rb")
    f.seek(512)
    magic = f.read(2)
    f.seek(512)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")
    return f


def file_members(path):
    out = {}
    with open_body(path) as body:
        with tarfile.open(fileobj=body, mode="r|") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                h = hashlib.sha256()
                src = tar.extractfile(m)
                while True:
                    b = src.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
                out[m.name.lstrip("./")] = (m.size, h.hexdigest())
    return out


def dir_members(d):
    out = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if not os.path.isfile(p):
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
        out[name] = (os.path.getsize(p), h.hexdigest())
    return out


def print_members(m):
    for name in sorted(m):
        print("%s %d %s" % (name, m[name][0], m[name][1]))


def cmd_same_members(path, expected):
    want = {}
    with open(expected) as f:
        for line in f:
            name, sz, digest = line.split()
            want[name] = (int(sz), digest)
    try:
        got = file_members(path)
    except (OSError, EOFError, tarfile.TarError) as e:
        sys.exit("%s: cannot read its members: %s" % (path, e))
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing:
        sys.exit("%s: member %s is missing" % (path, missing[0]))
    if extra:
        sys.exit("%s: unexpected member %s" % (path, extra[0]))
    for name in sorted(want):
        if got[name] != want[name]:
            sys.exit("%s: member %s differs (%d bytes, sha256 %s; expected %d bytes, %s)" %
                     (path, name, got[name][0], got[name][1], want[name][0], want[name][1]))


def treesize(d):
    return sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d)
               if os.path.isfile(os.path.join(d, n)))


def lines(d):
    total = 0
    for n in os.listdir(d):
        p = os.path.join(d, n)
        if os.path.isfile(p) and n != "COPYING":
            with open(p, "rb") as f:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return total


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "daily-init":
        init(args[0], "daily", DAILY, float(args[1]), 1, 1_000_000)
    elif cmd == "daily-mutate":
        cmd_daily_mutate(args[0], int(args[1]))
    elif cmd == "main-init":
        init(args[0], "main", MAIN, float(args[1]), 2, 5_000_000)
    elif cmd == "members":
        print_members(file_members(args[0]))
    elif cmd == "dir-members":
        print_members(dir_members(args[0]))
    elif cmd == "same-members":
        cmd_same_members(args[0], args[1])
    elif cmd == "treesize":
        print(treesize(args[0]))
    elif cmd == "lines":
        print(lines(args[0]))
    else:
        sys.exit("gen.py: unknown command %s" % cmd)


if __name__ == "__main__":
    main(sys.argv)
