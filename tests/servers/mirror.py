#!/usr/bin/env python3
"""Test mirror for clamfresh: serves a directory over HTTP/1.1 on loopback,
logs one JSON line per request and misbehaves on demand.

    python3 mirror.py --root DIR --port-file F [--port N] [--log F] [--faults F]
                      [--ignore-range] [--no-ims] [--advertised-served]

The chosen port is written to --port-file (atomically) once the socket listens.

Faults (--faults F, JSON, re-read on every request) are keyed by URL path
("/daily.cvd"; the query string is not part of the key):
  {"status": 403}                  reply with that status and a small HTML body
  {"status": 429, "retry_after": "60"}   ... plus a Retry-After header
  {"html": true}                   200 with an HTML page instead of the file
  {"stall_after": N}               send headers and N body bytes, then hang
  {"close_after": N}               announce the full length, send N bytes, close
  {"truncate": N}                  serve the first N bytes with a matching length
  {"empty": true}                  200 with an empty body
  {"delay": S}                     sleep S seconds before answering
  {"times": K}                     the fault applies to the first K requests of
                                   that path only, then the file is served normally
  {"headers": {"cf-ray": "..."}}   extra response headers
Keys combine (e.g. delay + status).

Log (--log F, else stderr): one JSON object per request, written before the
body is sent: time, method, path, query, range, headers (the request's
If-Modified-Since, User-Agent, Cache-Control, Pragma, Range, Connection, Accept,
Accept-Encoding when present), status, bytes (body bytes sent), file (served
file relative to the root), fault (the fault applied), stall/close (true when
the body was cut off on purpose).
"""
import argparse
import email.utils
import json
import os
import signal
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Captive portal</title></head>"
             b"<body><p>Please log in to continue.</p></body></html>\n")
LOGGED_HEADERS = ("If-Modified-Since", "User-Agent", "Cache-Control", "Pragma",
                  "Range", "Connection", "Accept", "Accept-Encoding")


class Mirror:
    def __init__(self, args):
        self.root = os.path.realpath(args.root)
        self.log_path = args.log
        self.faults_path = args.faults
        self.ignore_range = args.ignore_range
        self.ims = not args.no_ims
        self.advertised_served = args.advertised_served
        self.lock = threading.Lock()
        self.counts = {}      # path -> requests seen (for "times")
        self.stop = threading.Event()

    def faults(self):
        if not self.faults_path:
            return {}
        try:
            with open(self.faults_path, "rb") as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def count(self, path):
        with self.lock:
            self.counts[path] = self.counts.get(path, 0) + 1
            return self.counts[path]

    def log(self, rec):
        line = json.dumps(rec, sort_keys=True) + "\n"
        with self.lock:
            if self.log_path:
                with open(self.log_path, "a") as f:
                    f.write(line)
            else:
                sys.stderr.write(line)


def parse_range(value, size):
    """Single "bytes=A-B" / "bytes=A-" / "bytes=-N" range -> (start, end) or None."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    a, _, b = value[6:].strip().partition("-")
    try:
        if a == "":
            n = int(b)
            return (max(0, size - n), size - 1) if n > 0 else None
        start = int(a)
        end = int(b) if b else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "clamfresh-test-mirror/1"
    mirror = None  # set in main

    def log_message(self, fmt, *args):  # the JSON log replaces the default one
        pass

    def send_body(self, status, body, ctype="application/octet-stream", extra=None,
                  length=None, send_bytes=None, after=None):
        """Send a complete response; send_bytes limits what is written
        (for close_after/stall_after), after is "stall" or "close"."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Connection", "close")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        data = body if send_bytes is None else body[:send_bytes]
        if self.command == "HEAD":
            data = b""
        self.close_connection = True
        self.rec["status"] = status
        self.rec["bytes"] = len(data)
        if after:
            self.rec[after] = True
        # Logged before the body goes out, so a client that has read the whole
        # response always finds its line in the log.
        self.finish_log()
        self.end_headers()
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass
        if after == "stall":
            # Hang until the client gives up (EOF/reset) or the server stops.
            self.connection.settimeout(0.2)
            while not self.mirror.stop.is_set():
                try:
                    if self.connection.recv(1) == b"":
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
            return

    def finish_log(self):
        if not self.logged:
            self.logged = True
            self.mirror.log(self.rec)

    def resolve(self, path, ranged):
        """Map a URL path to a file under root, or None."""
        name = unquote(path).lstrip("/")
        if not name or name.startswith(".") or "/.." in "/" + name or "\0" in name:
            return None
        if self.mirror.advertised_served and name.endswith(".cvd"):
            alt = name + (".advertised" if ranged else ".served")
            cand = os.path.join(self.mirror.root, alt)
            if os.path.isfile(cand):
                return cand
        full = os.path.realpath(os.path.join(self.mirror.root, name))
        if not full.startswith(self.mirror.root + os.sep) or not os.path.isfile(full):
            return None
        return full

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        m = self.mirror
        parts = urlsplit(self.path)
        path = parts.path
        self.logged = False
        self.rec = {
            "time": time.time(), "method": self.command, "path": path,
            "query": parts.query, "range": self.headers.get("Range"),
            "headers": {h: self.headers.get(h) for h in LOGGED_HEADERS if self.headers.get(h) is not None},
        }
        n = m.count(path)
        fault = m.faults().get(path) or {}
        if "times" in fault and n > int(fault["times"]):
            fault = {}
        if fault:
            self.rec["fault"] = fault
        extra = dict(fault.get("headers") or {})
        if "delay" in fault:
            time.sleep(float(fault["delay"]))

        if "status" in fault and int(fault["status"]) != 200:
            status = int(fault["status"])
            if "retry_after" in fault:
                extra["Retry-After"] = str(fault["retry_after"])
            body = b"<html><body><h1>%d</h1></body></html>\n" % status
            return self.send_body(status, body, "text/html", extra)
        if fault.get("html"):
            return self.send_body(200, HTML_PAGE, "text/html", extra)
        if fault.get("empty"):
            return self.send_body(200, b"", extra=extra)

        rng_hdr = None if m.ignore_range else self.headers.get("Range")
        fpath = self.resolve(path, rng_hdr is not None)
        if fpath is None:
            return self.send_body(404, b"<html><body><h1>404 Not Found</h1></body></html>\n",
                                  "text/html", extra)
        st = os.stat(fpath)
        mtime = int(st.st_mtime)
        extra["Last-Modified"] = email.utils.formatdate(mtime, usegmt=True)
        ims = self.headers.get("If-Modified-Since")
        if m.ims and ims:
            try:
                since = email.utils.parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                since = None
            if since is not None and mtime <= since:
                # A 304 carries no body and no Content-Length of the file.
                self.send_response(304)
                self.send_header("Connection", "close")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.close_connection = True
                self.rec["status"] = 304
                self.rec["bytes"] = 0
                self.finish_log()
                self.end_headers()
                return
        with open(fpath, "rb") as f:
            data = f.read()
        status = 200
        if rng_hdr is not None:
            r = parse_range(rng_hdr, len(data))
            if r is None:
                extra["Content-Range"] = "bytes */%d" % len(data)
                return self.send_body(416, b"", extra=extra)
            status = 206
            extra["Content-Range"] = "bytes %d-%d/%d" % (r[0], r[1], len(data))
            data = data[r[0]:r[1] + 1]
        self.rec["file"] = os.path.relpath(fpath, m.root)
        if "truncate" in fault:
            data = data[:int(fault["truncate"])]
        if "stall_after" in fault:
            return self.send_body(status, data, extra=extra, send_bytes=int(fault["stall_after"]), after="stall")
        if "close_after" in fault:
            return self.send_body(status, data, extra=extra, send_bytes=int(fault["close_after"]), after="close")
        return self.send_body(status, data, extra=extra)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--log")
    ap.add_argument("--faults")
    ap.add_argument("--ignore-range", action="store_true", help="answer Range requests with 200 and the whole file")
    ap.add_argument("--no-ims", action="store_true", help="ignore If-Modified-Since (never 304)")
    ap.add_argument("--advertised-served", action="store_true",
                    help="for *.cvd: Range requests serve NAME.advertised, plain GETs NAME.served, when present")
    args = ap.parse_args()

    mirror = Mirror(args)
    Handler.mirror = mirror
    httpd = Server((args.bind, args.port), Handler)

    def on_term(signum, frame):
        mirror.stop.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % httpd.server_address[1])
    os.replace(tmp, args.port_file)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
