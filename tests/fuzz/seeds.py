#!/usr/bin/env python3
"""Writes starting inputs for the fuzz targets: OUTDIR/<target>/<name>.

Small hand-made seeds always; with a vectors directory (the real ClamAV-signed
test files) also the files themselves and the parts a target reads (header,
unpacked tar, .info, cdiff script). Nothing here is copied into the repository.

usage: seeds.py OUTDIR [VECTORS_DIR]
"""
import gzip
import hashlib
import io
import os
import struct
import sys
import tarfile
import zlib

out = sys.argv[1]
vectors = sys.argv[2] if len(sys.argv) > 2 and os.path.isdir(sys.argv[2]) else None


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def header(version=1, sigs=2, flevel=81, md5="X", dsig="X", stime=1624388302):
    line = "ClamAV-VDB:22 Jun 2021 14-58 -0400:%d:%d:%d:%s:%s:builder:%d" % (
        version, sigs, flevel, md5, dsig, stime)
    return line


def tar_of(members):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def info_for(members, hdr):
    lines = [hdr]
    for name, data in members:
        if name in ("COPYING",) or name.endswith(".info"):
            continue
        lines.append("%s:%d:%s" % (name, len(data), hashlib.sha256(data).hexdigest()))
    return ("\n".join(lines) + "\n").encode()


# --- hand-made ---------------------------------------------------------------
hdb = b"44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n"
ndb = b"Sig.One:0:*:414243\n"
members = [("COPYING", b"license\n"), ("test.hdb", hdb), ("test.ndb", ndb)]
hdr = header()
info = info_for(members, hdr)
info_signed = info + b"DSIG:" + b"a" * 342 + b"\n"
full = [("COPYING", b"license\n"), ("test.info", info)] + members[1:]
body_tar = tar_of(full)
body_gz = gzip.compress(body_tar, mtime=0)
cld = hdr.encode().ljust(512, b" ") + body_tar
cvd = header(md5=hashlib.md5(body_gz).hexdigest(), dsig="a" * 171).encode().ljust(512, b" ") + body_gz

put("fuzz_cvdhdr", "header", hdr.encode().ljust(512, b" "))
put("fuzz_cvdhdr", "line", hdr + "\n")
put("fuzz_cvdhdr", "cvd", cvd[:600])
put("fuzz_cvd", "plain.cld", cld)
put("fuzz_cvd", "gzip.cvd", cvd)
put("fuzz_tar", "body.tar", body_tar)
put("fuzz_dbscan", "plain.cld", cld)
put("fuzz_dbscan", "gzip.cvd", cvd)
put("fuzz_dbscan", "gzip.cld", hdr.encode().ljust(512, b" ") + body_gz)
put("fuzz_dbscan", "trailing.cld", hdr.encode().ljust(512, b" ") + body_gz + b"junk")
put("fuzz_dbscan", "body.tar", body_tar)
put("fuzz_tar", "empty", b"\0" * 1024)
put("fuzz_gz", "body.gz", body_gz)
put("fuzz_gz", "empty.gz", gzip.compress(b"", mtime=0))
put("fuzz_info", "unsigned.info", info)
put("fuzz_info", "signed.info", info_signed)

script = (b"OPEN test.hdb\nDEL 2 0123456789abcdef\nXCHG 3 fedcba9876543210 new:1:X\n"
          b"ADD 00000000000000000000000000000000:1:Added\nCLOSE\n"
          b"OPEN new.ndb\nADD A:0:*:41\nCLOSE\n"
          b"MOVE test.hdb test.ndb 1 44d8 2 0123\n"
          b"UNLINK test.cfg\n# comment\n")
put("fuzz_cdiff", "script", script)
put("fuzz_cdiff", "script-open-only", b"OPEN test.ndb\nADD x\n")
# fuzz_patch: a chain of scripts separated by NUL bytes.
put("fuzz_patch", "script", script)
put("fuzz_patch", "chain",
    b"OPEN test.hdb\nXCHG 1 44d8 first\nADD a\nCLOSE\nUNLINK test.cfg\n\0"
    b"OPEN test.hdb\nDEL 2 0123\nXCHG 1 first again\nCLOSE\nOPEN test.cfg\nADD back\nCLOSE\n\0"
    b"MOVE test.hdb test.ndb 1 again 2 a\nOPEN test.ndb\nXCHG 3 again last\nCLOSE\n")
put("fuzz_patch", "cycle", b"MOVE test.hdb test.ndb 1 4 1 4\n\0MOVE test.ndb test.hdb 1 S 1 S\n")
gz_script = gzip.compress(script, mtime=0)
put("fuzz_cdiff", "container",
    b"ClamAV-Diff:2:%d:" % len(script) + gz_script + b":" + b"b" * 342)

put("fuzz_signfile", "one-line", "#clamsign-1.0\n230::pkcs7-pem:MIIBAAYJKoZIhvcNAQcCoIIB\n")
put("fuzz_signfile", "two-lines",
    "#clamsign-1.0\n230:240:pkcs7-pem:AAAA\n\n# comment\n241::pkcs7-pem:MAA=\n")
put("fuzz_signfile", "bad-header", "#clamsign\n230::pkcs7-pem:AAAA\n")

put("fuzz_dnsinfo", "current", "0.103.8:59:26750:1700000000:1:90:49191:334\n1.4.6")
put("fuzz_dnsinfo", "collapsed", ":1.4.1::27000:1699990000:0:63:49191:335")
put("fuzz_dnsinfo", "per-db", "27000:1700000000\n1.5.0-rc")
put("fuzz_dnsinfo", "devel", "1.6.0:62:27000:1700000000:1\n1.6.0-devel-20250101")

put("fuzz_config", "basic",
    "# freshclam.conf\nDatabaseDirectory /var/lib/clamav\nUpdateLogFile /var/log/clamav/freshclam.log\n"
    "LogVerbose yes\nDatabaseOwner clamav\nDNSDatabaseInfo current.cvd.clamav.net\n"
    "DatabaseMirror database.clamav.net\nChecks 24\nMaxAttempts 5\nTestDatabases yes\n"
    "ExtraDatabase daily\nExcludeDatabase bytecode\nDatabaseCustomURL http://127.0.0.1/x.cvd\n"
    "ConnectTimeout 30\nReceiveTimeout 0\nNotifyClamd /etc/clamav/clamd.conf\n"
    "OnUpdateExecute echo %v\nHTTPProxyServer proxy\nHTTPProxyPort 3128\n")
put("fuzz_config", "deprecated", "Example\nAllowSupplementaryGroups yes\nScriptedUpdates no\n")

put("fuzz_clamdconf", "basic",
    "LocalSocket /run/clamav/clamd.ctl\nTCPSocket 3310\nTCPAddr 127.0.0.1\nTCPAddr ::1\n"
    "EnableReloadCommand yes\nLogFile /var/log/clamav/clamd.log\n")
put("fuzz_clamdconf", "tcp-only", "TCPSocket 3310\n# comment\nFixStaleSocket true\n")

state = (b"FreshClamData" + struct.pack("<I", 1) + b"0123e4567-e89b-42d3-a456-426614174000"[:36]
         + b"\0" + b"\0" * 7 + struct.pack("<q", 1700000000) + b"8c2e9b3f1a2b3c4d-AMS" + b"\0")
put("fuzz_state", "full", state)
put("fuzz_state", "short", state[:69])

now = struct.pack("<q", 784111777)
put("fuzz_retry_after", "delay", now + b"120")
put("fuzz_retry_after", "huge", now + b"9223372036854775807")
put("fuzz_retry_after", "imf", now + b"Sun, 06 Nov 1994 08:49:37 GMT")
put("fuzz_retry_after", "rfc850", now + b"Sunday, 06-Nov-94 08:49:37 GMT")
put("fuzz_retry_after", "asctime", now + b"Sun Nov  6 08:49:37 1994")
put("fuzz_retry_after", "year9999", struct.pack("<q", -(2 ** 63)) + b"Fri, 31 Dec 9999 23:59:59 GMT")
put("fuzz_retry_after", "end-of-time", struct.pack("<q", 2 ** 63 - 1) + b"Thursday, 01-Jan-70 00:00:00 GMT")

put("fuzz_vrecord", "two",
    "clamfresh-verified 1\n"
    "daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n"
    "main.cvd 1 -1.999999999 1.000000000 1 1 0 62\n")
put("fuzz_vrecord", "garbage",
    "clamfresh-verified 1\n"
    "daily.cvd 10 1700000000.000000005 1700000001.000000006 7 2049 1780000000 27000\n"
    "daily.cvd 010 1.5 x\n../x 1 1.000000000 1.000000000 1 1 1 1\n"
    "main.cvd 1 1.000000000 1.000000000 1 1 1 1")

put("fuzz_keys", "cv64-sig", b"TFd9RBeu6wZwfMrWGsGH9WOSs1j+3s+PD2fVTLwR8Qgv2QVF25EXnIfH4cKmKRDoqDCLE0P6Kk3K")
put("fuzz_keys", "cv64-zero", b"a")
put("fuzz_keys", "pem-garbage",
    b"-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAK\n-----END PUBLIC KEY-----\n")

# --- from the vectors ----------------------------------------------------------
patch_chain = []
if vectors:
    for fn in sorted(os.listdir(vectors)):
        p = os.path.join(vectors, fn)
        with open(p, "rb") as f:
            data = f.read()
        if fn.endswith(".cvd"):
            put("fuzz_cvd", fn, data)
            put("fuzz_dbscan", fn, data)
            put("fuzz_cvdhdr", fn + ".hdr", data[:512])
            try:
                raw = gzip.decompress(data[512:])
            except OSError:
                raw = data[512:]
            put("fuzz_gz", fn + ".gz", data[512:])
            put("fuzz_tar", fn + ".tar", raw)
            try:
                with tarfile.open(fileobj=io.BytesIO(raw)) as t:
                    for m in t.getmembers():
                        if m.name.endswith(".info"):
                            txt = t.extractfile(m).read()
                            put("fuzz_info", fn + ".info", txt)
                            put("fuzz_cvdhdr", fn + ".infoline", txt.split(b"\n")[0] + b"\n")
            except tarfile.TarError:
                pass
        elif fn.endswith(".cdiff"):
            put("fuzz_cdiff", fn, data)
            try:
                start = data.index(b":", data.index(b":", data.index(b":") + 1) + 1) + 1
                script_text = zlib.decompressobj(16 + 15).decompress(data[start:])
                put("fuzz_cdiff", fn + ".script", script_text)
                patch_chain.append(script_text)
            except (ValueError, zlib.error):
                pass
        elif fn.endswith(".sign"):
            put("fuzz_signfile", fn, data)
        elif fn.endswith(".crt"):
            put("fuzz_keys", fn, data)
if patch_chain:
    put("fuzz_patch", "vectors-chain", b"\0".join(patch_chain))
