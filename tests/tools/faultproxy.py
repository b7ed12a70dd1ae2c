#!/usr/bin/python3
"""faultproxy.py - an HTTP proxy in front of s3rver that injects the failures S3 clients
must survive, for tests/integration/s3faults.sh. Python 3 standard library only.

  faultproxy.py --upstream http://127.0.0.1:PORT --port-file F --mode MODE
                [--first N | --share P [--seed S]] [--methods GET,HEAD] [--match TEXT]
                [--stall SECONDS] [--rate BYTES_PER_S] [--after BYTES] [--log FILE]
                [--control FILE]

Modes (applied to the requests selected by --first/--share, --methods and --match (a
text the request's path and query must contain, e.g. "partNumber=" for the part uploads of
a multipart upload); every other request is forwarded untouched):
  none          forward everything
  503 / 500     answer with that status and an S3 <Error> (ServiceUnavailable / InternalError)
  slowdown      503 with the S3 error code SlowDown
  403           403 with the S3 error code AccessDenied (not transient: never retried)
  reset         read the request, then reset the connection (TCP RST) without answering
  stall-before  read the request, then say nothing for --stall seconds, then close
  stall-mid     forward, send the headers and --after bytes of the body, stall, close
  reset-mid     forward, send the headers and --after bytes of the body, then reset
  slow-body     forward, sending the body at --rate bytes/s
  corrupt-body  forward, with the body's byte number --after (0-based) inverted: a reply
                whose headers (ETag, length) are right and whose bytes are not
  multipart-etag  forward, showing every ETag as AWS S3 shows a multipart upload's
                ("<32 hex>-3"; s3rver gives a multipart object the MD5 of its whole body):
                in ETag headers and listing bodies; If-Match / If-None-Match are mapped
                back before forwarding
  mix           each selected request gets one of 500, 503, slowdown, reset, stall-mid,
                reset-mid, chosen by --seed (stall-mid and reset-mid only for GET)

--control FILE changes the fault at run time (tests/integration/faults-*.sh): while FILE
exists, each request reads it, one "--option value" per word as on the command line
(--mode, --share, --first, --seed, --methods, --match, --stall, --after, --rate); options it does
not name keep their command-line values. Without FILE, the command line applies.

It listens on --bind (default 127.0.0.1) on --port (default: a free one) and writes the port to --port-file once ready.
A forwarded reply without an x-amz-request-id header (s3rver sends none) gets
"x-amz-request-id: faultproxy-NUMBER", as S3 would send one.
Each request is logged to --log as one line "TIME NUMBER METHOD PATH?QUERY FAULT" (FAULT is
"none" for a request forwarded untouched).
"""
import argparse
import http.client
import re
import http.server
import random
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

ARGS = None
LOCK = threading.Lock()
COUNT = 0
LOGF = None

ERRORS = {
    "503": (503, "ServiceUnavailable", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "403": (403, "AccessDenied", "Access Denied"),
}
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


def log(msg):
    if LOGF:
        with LOCK:
            LOGF.write("%.3f %s\n" % (time.time(), msg))
            LOGF.flush()


BASE = None
PARSER = None


def current():
    """The options in force for the next request: --control FILE's, over the command line's."""
    if not BASE.control:
        return BASE
    try:
        with open(BASE.control) as f:
            words = f.read().split()
    except OSError:
        return BASE
    try:
        a = PARSER.parse_args(words, namespace=argparse.Namespace(**vars(BASE)))
    except SystemExit:
        log("bad control file: %s" % " ".join(words))
        return BASE
    if isinstance(a.methods, str):
        a.methods = [m for m in a.methods.upper().split(",") if m]
    return a


def selected(a, n, method, path):
    """Whether request number n (1-based) gets the fault, under options a."""
    if a.mode == "none":
        return False
    if a.methods and method not in a.methods:
        return False
    if a.match and a.match not in path:
        return False
    if a.first is not None:
        return n <= a.first
    if a.share is not None:
        return random.Random(a.seed * 1000003 + n).random() < a.share
    return True


MIX = ["500", "503", "slowdown", "reset", "stall-mid", "reset-mid"]


def pick(a, n, method, path):
    """The fault request n gets under options a ('none' for none)."""
    if not selected(a, n, method, path):
        return "none"
    if a.mode != "mix":
        return a.mode
    choices = MIX if method == "GET" else MIX[:4]
    return random.Random(a.seed * 7919 + n).choice(choices)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"

    def log_message(self, fmt, *args):  # quiet: we keep our own log
        pass

    def _reset(self):
        """Close with RST (SO_LINGER 0)."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _handle(self):
        global COUNT
        method = self.command
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with LOCK:
            COUNT += 1
            n = COUNT
        a = current()
        fault = pick(a, n, method, self.path)
        log("%d %s %s %s" % (n, method, self.path, fault))

        if fault in ERRORS:
            status, code, msg = ERRORS[fault]
            xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                   "<Message>%s</Message><RequestId>faultproxy-%d</RequestId></Error>"
                   % (code, msg, n)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("x-amz-request-id", "faultproxy-%d" % n)
            self.send_header("Content-Length", str(len(xml) if method != "HEAD" else 0))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(xml)
            return
        if fault == "reset":
            self._reset()
            return
        if fault == "stall-before":
            time.sleep(a.stall)
            self.close_connection = True
            return

        up = urllib.parse.urlsplit(ARGS.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        mp = fault == "multipart-etag"
        if mp:
            headers = {k: (re.sub(r'([0-9a-fA-F]{32})-3', r'\1', v)
                           if k.lower() in ("if-match", "if-none-match") else v)
                       for k, v in headers.items()}
        try:
            conn.request(method, self.path, body=body if (body or method in ("PUT", "POST")) else None,
                         headers=headers)
            resp = conn.getresponse()
        except OSError as e:
            log("%d upstream failed: %s" % (n, e))
            self._reset()
            return
        rlen = resp.getheader("Content-Length")
        data = None
        xml = "xml" in (resp.getheader("Content-Type") or "")
        if (rlen is None or (mp and xml)) and method != "HEAD":
            data = resp.read()
            if mp and xml:
                data = re.sub(rb'<ETag>(&quot;|")?([0-9a-fA-F]{32})(&quot;|")?</ETag>',
                              rb'<ETag>\1\2-3\3</ETag>', data)
            rlen = str(len(data))
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if mp and k.lower() == "etag":
                v = re.sub(r'^"?([0-9a-fA-F]{32})"?$', r'"\1-3"', v)
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if resp.getheader("x-amz-request-id") is None:
            # s3rver sends none; S3 always does (clients log it with each error)
            self.send_header("x-amz-request-id", "faultproxy-%d" % n)
        self.send_header("Content-Length", rlen if rlen is not None else "0")
        self.end_headers()
        if method == "HEAD" or resp.status == 204 or resp.status == 304:
            conn.close()
            return
        sent = 0
        chunk = 64 * 1024
        try:
            if data is not None:
                src = [data]
            else:
                src = iter(lambda: resp.read(chunk), b"")
            for part in src:
                if fault in ("stall-mid", "reset-mid") and sent + len(part) > a.after:
                    keep = max(0, a.after - sent)
                    self.wfile.write(part[:keep])
                    self.wfile.flush()
                    log("%d %s after %d bytes" % (n, fault, sent + keep))
                    if fault == "stall-mid":
                        time.sleep(a.stall)
                        self.close_connection = True
                    else:
                        self._reset()
                    return
                if fault == "corrupt-body" and sent <= a.after < sent + len(part):
                    i = a.after - sent
                    part = part[:i] + bytes([part[i] ^ 0xFF]) + part[i + 1:]
                    log("%d corrupt-body: byte %d inverted" % (n, a.after))
                if fault == "slow-body":
                    for i in range(0, len(part), 4096):
                        piece = part[i:i + 4096]
                        self.wfile.write(piece)
                        self.wfile.flush()
                        time.sleep(len(piece) / a.rate)
                else:
                    self.wfile.write(part)
                sent += len(part)
        except OSError:
            self.close_connection = True
        finally:
            conn.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a client that gives up (a reset, a time-out) is expected here: log, no traceback
        log("client %s:%d: %s" % (client_address[0], client_address[1], sys.exc_info()[1]))


def main():
    global ARGS, BASE, PARSER, LOGF
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port-file", required=True)
    p.add_argument("--mode", default="none",
                   choices=["none", "503", "500", "slowdown", "403", "reset", "stall-before", "stall-mid",
                            "reset-mid", "slow-body", "corrupt-body", "multipart-etag", "mix"])
    p.add_argument("--first", type=int)
    p.add_argument("--share", type=float)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--methods", default="")
    p.add_argument("--match", default="")
    p.add_argument("--stall", type=float, default=3600.0)
    p.add_argument("--rate", type=float, default=1 << 20)
    p.add_argument("--after", type=int, default=1 << 20)
    p.add_argument("--log")
    p.add_argument("--control")
    ARGS = p.parse_args()
    ARGS.methods = [m for m in ARGS.methods.upper().split(",") if m]
    BASE = ARGS
    # the --control file's parser: the fault options only, none required
    PARSER = argparse.ArgumentParser(add_help=False)
    for act in p._actions:
        if act.dest in ("mode", "first", "share", "seed", "methods", "match", "stall", "rate", "after"):
            PARSER.add_argument(*act.option_strings, type=act.type, choices=act.choices,
                                default=argparse.SUPPRESS)
    if ARGS.log:
        LOGF = open(ARGS.log, "a")
    srv = Server((ARGS.bind, ARGS.port), Handler)
    with open(ARGS.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    import os
    os.rename(ARGS.port_file + ".tmp", ARGS.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
