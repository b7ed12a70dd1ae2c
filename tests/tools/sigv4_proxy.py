#!/usr/bin/python3
"""sigv4_proxy.py - an HTTP proxy in front of s3rver that checks every request's AWS SigV4
signature with botocore (the signer of awscli and boto3) and answers 403
SignatureDoesNotMatch when it differs, the way AWS would. s3rver itself checks no
signature, so this is how the integration tests prove that what ferryfs really sends is
signed correctly.

For each request it also checks x-amz-content-sha256: present, and, unless it is
UNSIGNED-PAYLOAD, equal to the SHA-256 of the body received. One line per request goes
to --log: "ok METHOD PATH sha256=..." or "BAD METHOD PATH: reason".

    sigv4_proxy.py --upstream http://127.0.0.1:PORT --secret SECRET --log FILE --port-file FILE
                   [--creds-file FILE] [--no-static]

With --creds-file (the --state of tests/tools/credserver.py) it also accepts the temporary
credentials issued there, the way S3 does: an unknown access key is 403 InvalidAccessKeyId, a
missing or wrong x-amz-security-token 403 InvalidToken, an expired one 400 ExpiredToken, a
wrong signature 403 SignatureDoesNotMatch. The request then goes to s3rver under its own key
(s3rver checks that the key exists, not the signature). --no-static refuses the static key
(so that only temporary credentials get through). --bucket-region R plays a bucket that lives
in region R: a request signed for another region gets S3's 301 PermanentRedirect with
x-amz-bucket-region: R.

Needs Debian's python3-botocore (run with /usr/bin/python3). Test credentials only.
"""
import argparse
import datetime
import hashlib
import http.client
import http.server
import json
import os
import re
import socketserver
import sys
import threading
import time
import types
import urllib.parse

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SIGN_LOCK = threading.Lock()   # botocore's clock is patched per request
LOG_LOCK = threading.Lock()
AUTH_RE = re.compile(r'AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request,\s*'
                     r'SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$')
HOP = {'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te',
       'trailer'}


class PinnedPayloadAuth(botocore.auth.S3SigV4Auth):
    """S3SigV4Auth that signs with the payload hash the client declared (checked separately)."""

    def __init__(self, creds, region, payload_hash):
        super().__init__(creds, 's3', region)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


def expected_signature(method, host, path_qs, headers, signed, secret, akid, region, amz_date,
                       payload_hash, token):
    req = AWSRequest(method=method, url='http://%s%s' % (host, path_qs), data=b'')
    for name in signed:
        if name in ('host', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token'):
            continue
        req.headers[name] = headers.get(name, '')
    fixed = datetime.datetime.strptime(amz_date, '%Y%m%dT%H%M%SZ')

    class Fixed(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

    with SIGN_LOCK:
        saved = botocore.auth.datetime
        botocore.auth.datetime = types.SimpleNamespace(datetime=Fixed)
        try:
            auth = PinnedPayloadAuth(Credentials(akid, secret, token), region, payload_hash)
            auth.add_auth(req)
        finally:
            botocore.auth.datetime = saved
    m = AUTH_RE.match(req.headers['Authorization'])
    return m.group(4), m.group(5)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        pass

    def record(self, line):
        with LOG_LOCK, open(self.server.opts.log, 'a') as f:
            f.write(line + '\n')

    def deny(self, reason, code='SignatureDoesNotMatch', status=403):
        self.record('BAD %s %s: %s: %s' % (self.command, self.path, code, reason))
        body = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code>'
                '<Message>%s</Message><RequestId>sigv4-proxy</RequestId></Error>'
                % (code, reason)).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/xml')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        headers = {k.lower(): v for k, v in self.headers.items()}
        opts = self.server.opts
        m = AUTH_RE.match(headers.get('authorization', ''))
        if not m:
            return self.deny('no SigV4 Authorization header')
        akid, day, region, signed_hdrs, signature = m.groups()
        if opts.bucket_region and region != opts.bucket_region:
            self.record('BAD %s %s: signed for %s, the bucket is in %s' % (
                self.command, self.path, region, opts.bucket_region))
            body = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code>'
                    '<Message>The bucket you are attempting to access must be addressed using '
                    'the specified endpoint.</Message><RequestId>sigv4-proxy</RequestId>'
                    '</Error>').encode()
            self.send_response(301)
            self.send_header('x-amz-bucket-region', opts.bucket_region)
            self.send_header('Content-Type', 'application/xml')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(body)
            return
        signed = signed_hdrs.split(';')
        for must in ('host', 'x-amz-date', 'x-amz-content-sha256'):
            if must not in signed:
                return self.deny('%s is not signed' % must)
        amz_date = headers.get('x-amz-date', '')
        if not amz_date.startswith(day):
            return self.deny('credential scope date differs from x-amz-date')
        payload_hash = headers.get('x-amz-content-sha256', '')
        if payload_hash != 'UNSIGNED-PAYLOAD' and payload_hash != hashlib.sha256(body).hexdigest():
            return self.deny('x-amz-content-sha256 is not the SHA-256 of the body')
        secret = opts.secret
        token = headers.get('x-amz-security-token')
        temporary = False
        if opts.creds_file and (akid != 'S3RVER' or opts.no_static):
            try:
                with open(opts.creds_file) as f:
                    issued = json.load(f)
            except (OSError, ValueError):
                issued = {}
            c = issued.get(akid)
            if c is None:
                return self.deny('access key %s is unknown' % akid, 'InvalidAccessKeyId')
            if token != c['token']:
                return self.deny('wrong or missing session token for %s' % akid, 'InvalidToken')
            if c['expiration'] <= time.time():
                return self.deny('the token of %s expired %ds ago' % (
                    akid, time.time() - c['expiration']), 'ExpiredToken', 400)
            secret = c['secret']
            temporary = True
        want_signed, want_sig = expected_signature(
            self.command, headers['host'], self.path, headers, signed, secret, akid, region,
            amz_date, payload_hash, token)
        if want_signed != signed_hdrs:
            return self.deny('signed headers %s, botocore signs %s' % (signed_hdrs, want_signed))
        if want_sig != signature:
            return self.deny('signature %s, botocore computes %s' % (signature, want_sig))
        self.record('ok %s %s sha256=%s key=%s' % (self.command, self.path, payload_hash[:8],
                                                    akid if temporary else 'static'))
        self.forward(body, akid if temporary else None)

    def forward(self, body, temporary_akid=None):
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        fwd = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if temporary_akid:   # s3rver knows only its own key
            fwd = {k: (v.replace('Credential=%s/' % temporary_akid, 'Credential=S3RVER/')
                       if k.lower() == 'authorization' else v)
                   for k, v in fwd.items() if k.lower() != 'x-amz-security-token'}
        conn.request(self.command, self.path, body=body if body else None, headers=fwd)
        resp = conn.getresponse()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() in HOP:
                continue
            self.send_header(k, v)
        if resp.getheader('Content-Length') is None and self.command != 'HEAD':
            data = resp.read()
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.end_headers()
            if self.command != 'HEAD':
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--upstream', required=True)
    ap.add_argument('--secret', required=True)
    ap.add_argument('--log', required=True)
    ap.add_argument('--port-file', required=True)
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--creds-file')
    ap.add_argument('--no-static', action='store_true')
    ap.add_argument('--bucket-region')
    opts = ap.parse_args()
    srv = Server(('127.0.0.1', opts.port), Handler)
    srv.opts = opts
    srv.upstream = urllib.parse.urlsplit(opts.upstream)
    with open(opts.port_file + '.tmp', 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(opts.port_file + '.tmp', opts.port_file)
    srv.serve_forever()


if __name__ == '__main__':
    sys.exit(main())
