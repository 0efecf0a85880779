#!/usr/bin/env python3
"""Test mirror for clamfresh: serves a directory over HTTP/1.1 on loopback,
logs one JSON line per request and misbehaves on demand.

    python3 mirror.py --root DIR --port-file F [--port N] [--log F] [--faults F]
                      [--ignore-range] [--no-ims] [--advertised-served] [--keep-alive]
                      [--tls-cert F --tls-key F [--client-ca F]] [--proxy-auth USER:PASS]

The chosen port is written to --port-file (atomically) once the socket listens.

TLS: --tls-cert/--tls-key serve HTTPS instead of HTTP (the handshake runs in
the connection's own thread); --client-ca additionally requires a client
certificate signed by that CA. A failed handshake is logged as a line with
"tls_error" (and no method).

Proxy: a request in absolute-URI form ("GET http://127.0.0.1:P/x HTTP/1.1") is
forwarded to that origin when it is another port on loopback, and answered
from --root like any other request otherwise (any host name: nothing leaves
loopback). "CONNECT host:port" opens a byte tunnel, to loopback targets only
(else 403). With --proxy-auth USER:PASS, or a
fault {"proxy_auth": "USER:PASS"} on the URL path (CONNECT: on "host:port"),
such requests must carry "Proxy-Authorization: Basic base64(USER:PASS)", else
407 with "Proxy-Authenticate: Basic realm=...". Requests in origin form are
served from --root as usual and never need proxy credentials.

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
  {"proxy_auth": "USER:PASS"}      proxy requests for that path need these credentials
Keys combine (e.g. delay + status).

Log (--log F, else stderr): one JSON object per request, written before the
body is sent: time, method, path, query, range, headers (the request's
If-Modified-Since, User-Agent, Cache-Control, Pragma, Range, Connection, Accept,
Accept-Encoding when present), status, bytes (body bytes sent), file (served
file relative to the root), fault (the fault applied), stall/close (true when
the body was cut off on purpose), tls (true on an HTTPS connection),
client_cert (the client certificate's subject CN, when one was presented),
proxy (true for an absolute-URI or CONNECT request), connect (true for
CONNECT), target ("host:port" a proxy request went to), proxy_credentials
(the decoded "USER:PASS" of Proxy-Authorization, null without one),
proxy_auth_ok (false when required credentials were missing or wrong).
A forwarded request is logged once the origin's status line has arrived
(status is the origin's), a CONNECT once the tunnel is up or refused.
"""
import argparse
import base64
import binascii
import email.utils
import ipaddress
import json
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Captive portal</title></head>"
             b"<body><p>Please log in to continue.</p></body></html>\n")
LOGGED_HEADERS = ("If-Modified-Since", "User-Agent", "Cache-Control", "Pragma",
                  "Range", "Connection", "Accept", "Accept-Encoding", "Host",
                  "Proxy-Authorization", "Proxy-Connection")
# Not passed on when forwarding a proxy request (hop-by-hop, RFC 9110 7.6.1).
HOP_HEADERS = {"connection", "proxy-connection", "proxy-authorization", "keep-alive",
               "te", "trailer", "transfer-encoding", "upgrade"}
PROXY_REALM = "clamfresh-test-proxy"


class Mirror:
    def __init__(self, args):
        self.root = os.path.realpath(args.root)
        self.log_path = args.log
        self.faults_path = args.faults
        self.ignore_range = args.ignore_range
        self.keep_alive = args.keep_alive
        self.ims = not args.no_ims
        self.advertised_served = args.advertised_served
        self.proxy_auth = args.proxy_auth
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


def is_loopback(host):
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def basic_credentials(value):
    """Decoded "USER:PASS" of a "Basic ..." header value, or None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(token.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def readable(sock, timeout):
    """True when sock has bytes (or EOF) to read; TLS-buffered bytes count."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


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
        # A whole response may leave the connection open (--keep-alive); a
        # cut-off one never does.
        keep = self.mirror.keep_alive and after is None
        if not keep:
            self.send_header("Connection", "close")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        data = body if send_bytes is None else body[:send_bytes]
        if self.command == "HEAD":
            data = b""
        self.close_connection = not keep
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

    def new_rec(self, path, query):
        self.logged = False
        self.rec = {
            "time": time.time(), "method": self.command, "path": path,
            "query": query, "range": self.headers.get("Range"),
            "headers": {h: self.headers.get(h) for h in LOGGED_HEADERS if self.headers.get(h) is not None},
        }
        if isinstance(self.connection, ssl.SSLSocket):
            self.rec["tls"] = True
            cn = client_cn(self.connection)
            if cn is not None:
                self.rec["client_cert"] = cn

    def fault_for(self, key):
        n = self.mirror.count(key)
        fault = self.mirror.faults().get(key) or {}
        if "times" in fault and n > int(fault["times"]):
            fault = {}
        if fault:
            self.rec["fault"] = fault
        return fault

    def proxy_denied(self, fault):
        """Checks proxy credentials; sends 407 and returns True when they fail."""
        creds = basic_credentials(self.headers.get("Proxy-Authorization"))
        self.rec["proxy_credentials"] = creds
        want = fault.get("proxy_auth") or self.mirror.proxy_auth
        if want is None:
            return False
        ok = creds == want
        self.rec["proxy_auth_ok"] = ok
        if ok:
            return False
        body = b"<html><body><h1>407 Proxy Authentication Required</h1></body></html>\n"
        self.send_body(407, body, "text/html",
                       {"Proxy-Authenticate": 'Basic realm="%s"' % PROXY_REALM})
        return True

    def do_GET(self):
        m = self.mirror
        parts = urlsplit(self.path)
        path = parts.path
        self.new_rec(path, parts.query)
        fault = self.fault_for(path)
        if parts.scheme:
            # Proxy request: credentials first, then forward to a loopback
            # origin; any other host is answered from --root (so tests can use
            # made-up host names without anything leaving loopback).
            port = parts.port or 80
            self.rec["proxy"] = True
            self.rec["connect"] = False
            self.rec["target"] = "%s:%d" % (parts.hostname, port)
            if self.proxy_denied(fault):
                return
            if (parts.scheme.lower() == "http" and is_loopback(parts.hostname)
                    and port != self.server.server_address[1]):
                return self.proxy_forward(parts.hostname, port, parts)
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
        size = os.path.getsize(fpath)
        status = 200
        start, length = 0, size
        if rng_hdr is not None:
            r = parse_range(rng_hdr, size)
            if r is None:
                extra["Content-Range"] = "bytes */%d" % size
                return self.send_body(416, b"", extra=extra)
            status = 206
            extra["Content-Range"] = "bytes %d-%d/%d" % (r[0], r[1], size)
            start, length = r[0], r[1] + 1 - r[0]
        # Only the bytes asked for are read: a probe of a large file stays cheap.
        with open(fpath, "rb") as f:
            f.seek(start)
            data = f.read(length)
        self.rec["file"] = os.path.relpath(fpath, m.root)
        if "truncate" in fault:
            data = data[:int(fault["truncate"])]
        if "stall_after" in fault:
            return self.send_body(status, data, extra=extra, send_bytes=int(fault["stall_after"]), after="stall")
        if "close_after" in fault:
            return self.send_body(status, data, extra=extra, send_bytes=int(fault["close_after"]), after="close")
        return self.send_body(status, data, extra=extra)


    # ------------------------------------------------------------ proxy mode

    def proxy_forward(self, host, port, parts):
        """Forwards an absolute-URI request to its loopback origin."""
        try:
            up = socket.create_connection((host.strip("[]"), port), timeout=10)
        except OSError as e:
            self.rec["proxy_error"] = str(e)
            return self.send_body(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>\n", "text/html")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        lines = ["%s %s HTTP/1.1" % (self.command, target)]
        for k, v in self.headers.items():
            if k.lower() not in HOP_HEADERS:
                lines.append("%s: %s" % (k, v))
        lines.append("Connection: close")
        self.close_connection = True
        try:
            up.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            self.relay(up, log_status=True)
        finally:
            up.close()
            self.finish_log()

    def do_CONNECT(self):
        authority = self.path
        host, _, port = authority.rpartition(":")
        self.new_rec(authority, "")
        self.rec["proxy"] = True
        self.rec["connect"] = True
        self.rec["target"] = authority
        fault = self.fault_for(authority)
        if self.proxy_denied(fault):
            return
        try:
            port = int(port)
        except ValueError:
            port = -1
        if not is_loopback(host) or not 0 < port < 65536:
            return self.send_body(403, b"<html><body><h1>proxy: loopback only</h1></body></html>\n",
                                  "text/html")
        try:
            up = socket.create_connection((host.strip("[]"), port), timeout=10)
        except OSError as e:
            self.rec["proxy_error"] = str(e)
            return self.send_body(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>\n", "text/html")
        self.close_connection = True
        self.rec["status"] = 200
        self.finish_log()
        try:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            self.relay(up, log_status=False)
        except OSError:
            pass
        finally:
            up.close()

    def relay(self, up, log_status):
        """Copies bytes both ways between the client and up until one side
        closes or the server stops. With log_status, the log line is written
        (with the origin's status) once the origin's headers have arrived."""
        client = self.connection
        head = b""
        up.settimeout(None)
        while not self.mirror.stop.is_set():
            if readable(up, 0):
                try:
                    data = up.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                if log_status and not self.logged:
                    head += data
                    if b"\r\n\r\n" not in head and len(head) < 65536:
                        continue
                    status_line = head.split(b"\r\n", 1)[0].split()
                    if len(status_line) >= 2 and status_line[1].isdigit():
                        self.rec["status"] = int(status_line[1])
                    self.finish_log()
                    data, head = head, b""
                try:
                    client.sendall(data)
                except OSError:
                    break
                continue
            if readable(client, 0):
                try:
                    data = client.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                try:
                    up.sendall(data)
                except OSError:
                    break
                continue
            select.select([up, client], [], [], 0.2)
        if head:
            # the origin closed before its headers were complete: pass on what came
            self.finish_log()
            try:
                client.sendall(head)
            except OSError:
                pass


def client_cn(conn):
    try:
        cert = conn.getpeercert()
    except (ValueError, OSError):
        return None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return ""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A client may open up to 16 connections at once (ConcurrentDownloads):
    # the default backlog of 5 would drop SYNs, which come back a second later.
    request_queue_size = 64
    ssl_context = None
    mirror = None

    def finish_request(self, request, client_address):
        if self.ssl_context is None:
            return super().finish_request(request, client_address)
        # The handshake runs here, in the connection's thread, so a client that
        # never completes it cannot block the accept loop.
        request.settimeout(10)
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.mirror.log({"time": time.time(), "client": "%s:%d" % client_address[:2],
                             "tls_error": str(e)})
            return
        conn.settimeout(None)
        try:
            super().finish_request(conn, client_address)
        finally:
            try:
                conn.close()
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--log")
    ap.add_argument("--faults")
    ap.add_argument("--ignore-range", action="store_true", help="answer Range requests with 200 and the whole file")
    ap.add_argument("--keep-alive", action="store_true",
                    help="keep connections open after whole responses (HTTP/1.1 persistent connections)")
    ap.add_argument("--no-ims", action="store_true", help="ignore If-Modified-Since (never 304)")
    ap.add_argument("--advertised-served", action="store_true",
                    help="for *.cvd: Range requests serve NAME.advertised, plain GETs NAME.served, when present")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    ap.add_argument("--client-ca", help="require a client certificate issued by this PEM CA")
    ap.add_argument("--proxy-auth", metavar="USER:PASS",
                    help="proxy requests (absolute URI, CONNECT) need these Basic credentials")
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        ap.error("--client-ca needs --tls-cert/--tls-key")

    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.load_verify_locations(cafile=args.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED

    mirror = Mirror(args)
    Handler.mirror = mirror
    httpd = Server((args.bind, args.port), Handler)
    httpd.ssl_context = ctx
    httpd.mirror = mirror

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
