#!/usr/bin/python3
"""credserver.py - a credentials endpoint on loopback for the integration tests, speaking the
protocols ferryfs and botocore use to get temporary AWS credentials:

  IMDSv2      PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds) -> a session token;
              GET /latest/meta-data/iam/security-credentials/[ROLE] with that token (a GET
              without it is refused 401, as an instance with IMDSv2 required does)
  container   GET /container/creds (the ECS / EKS Pod Identity endpoint); with --container-token,
              the Authorization header must carry it
  STS         POST / Action=AssumeRole (the SigV4 signature is checked with botocore against
              the --static keys or credentials issued here) and
              Action=AssumeRoleWithWebIdentity (WebIdentityToken must be --web-token)

Every credential set it issues expires --ttl seconds later and is recorded in --state (JSON:
{access_key_id: {secret, token, expiration, via}}), which tests/tools/sigv4_proxy.py reads to
verify S3 requests. The file named by --mode-file (read on every request) switches behaviour:
"ok" (or absent), "malformed" (answers that parse as nothing sensible), "error" (HTTP 500),
"deny" (HTTP 403), "early" (credentials that S3 -- the proxy -- holds expired --early
seconds before the Expiration they carry, as when a clock or a revocation disagrees).
Counters per endpoint at GET /_stats. One line per request to --log.

    credserver.py --port-file F --state F [--ttl 60] [--early N] [--port N] [--mode-file F]
                  [--log F] [--static AKID:SECRET] [--container-token T] [--web-token T]

Needs Debian's python3-botocore. Test credentials only.
"""
import argparse
import datetime
import json
import os
import secrets
import socketserver
import sys
import threading
import time
import urllib.parse
import http.server

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

LOCK = threading.Lock()
ROLE = 'ferry-role'


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


class State:
    def __init__(self, opts):
        self.opts = opts
        self.issued = {}
        self.stats = {}
        self.imds_tokens = set()
        self.n = 0
        if os.path.exists(opts.state):
            with open(opts.state) as f:
                self.issued = json.load(f)
            self.n = len(self.issued)

    def count(self, what):
        with LOCK:
            self.stats[what] = self.stats.get(what, 0) + 1

    def issue(self, via, early=False):
        with LOCK:
            self.n += 1
            akid = 'ASIA%s%04d' % (secrets.token_hex(4).upper(), self.n)
            now = int(time.time())
            c = {'secret': secrets.token_urlsafe(30), 'token': 'FwoG' + secrets.token_urlsafe(60),
                 'expiration': now + self.opts.ttl - (self.opts.early if early else 0),
                 'advertised': now + self.opts.ttl, 'via': via}
            self.issued[akid] = c
            tmp = self.opts.state + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(self.issued, f)
            os.rename(tmp, self.opts.state)
            return akid, c

    def secret_of(self, akid):
        for s in self.opts.static:
            a, _, k = s.partition(':')
            if a == akid:
                return k, None, None
        with LOCK:
            c = self.issued.get(akid)
        if c:
            return c['secret'], c['token'], c['expiration']
        return None, None, None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        pass

    def record(self, line):
        if self.server.opts.log:
            with LOCK, open(self.server.opts.log, 'a') as f:
                f.write('%s %s\n' % (time.strftime('%H:%M:%S'), line))

    def mode(self):
        try:
            with open(self.server.opts.mode_file) as f:
                return f.read().strip() or 'ok'
        except (OSError, TypeError):
            return 'ok'

    def send(self, status, body, ctype='application/json'):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def special(self, what):
        """The --mode-file behaviours. True when the request was answered."""
        m = self.mode()
        if m in ('ok', 'early'):
            return False
        self.server.state.count(what + '-' + m)
        self.record('%s %s %s: mode %s' % (self.command, self.path, what, m))
        if m == 'error':
            self.send(500, '{"message": "internal error"}')
        elif m == 'deny':
            self.send(403, '{"message": "denied"}')
        elif what == 'sts':
            self.send(200, '<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>'
                      'ASIA</AccessKeyId><Secret', 'text/xml')
        elif what == 'imds-token':
            self.send(200, 'tok\nen with\x01 junk', 'text/plain')
        else:
            self.send(200, '{"AccessKeyId": "ASIA", "SecretAccessKey": ["not", "a string"], '
                      '"Token": "t", "Expiration": "soon"')
        return True

    def json_creds(self, via, token_key='Token'):
        akid, c = self.server.state.issue(via, self.mode() == 'early')
        self.record('%s %s issued %s until %s (S3 holds them until %s)' % (
            self.command, self.path, akid, iso(c['advertised']), iso(c['expiration'])))
        doc = {'AccessKeyId': akid, 'SecretAccessKey': c['secret'], token_key: c['token'],
               'Expiration': iso(c['advertised'])}
        if via == 'imds':
            doc.update({'Code': 'Success', 'Type': 'AWS-HMAC', 'LastUpdated': iso(time.time())})
        else:
            doc['RoleArn'] = 'arn:aws:iam::123456789012:role/' + ROLE
        self.send(200, json.dumps(doc))

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    # --- IMDSv2 ---------------------------------------------------------------------
    def do_PUT(self):
        self.body()
        st = self.server.state
        if self.path != '/latest/api/token':
            return self.send(404, '')
        st.count('imds-token')
        if self.special('imds-token'):
            return
        if not self.headers.get('X-aws-ec2-metadata-token-ttl-seconds'):
            return self.send(400, '')
        tok = 'AQAEA' + secrets.token_urlsafe(32)
        with LOCK:
            st.imds_tokens.add(tok)
        self.record('PUT /latest/api/token')
        self.send(200, tok, 'text/plain')

    def do_GET(self):
        st = self.server.state
        path = urllib.parse.urlsplit(self.path).path
        if path == '/_stats':
            with LOCK:
                return self.send(200, json.dumps(st.stats))
        if path.startswith('/latest/meta-data/iam/security-credentials/'):
            with LOCK:
                ok = self.headers.get('X-aws-ec2-metadata-token') in st.imds_tokens
            if not ok:
                self.record('GET %s without a valid IMDSv2 token: 401' % path)
                return self.send(401, '')
            role = path[len('/latest/meta-data/iam/security-credentials/'):]
            if not role:
                st.count('imds-role')
                return self.send(200, ROLE, 'text/plain')
            if role != ROLE:
                return self.send(404, '')
            st.count('imds')
            if self.special('imds'):
                return
            return self.json_creds('imds')
        if path == '/container/creds':
            st.count('container')
            want = self.server.opts.container_token
            if want and self.headers.get('Authorization') != want:
                self.record('GET %s with a wrong Authorization: 401' % path)
                return self.send(401, '{"message": "bad token"}')
            if self.special('container'):
                return
            return self.json_creds('container')
        self.send(404, '')

    # --- STS ------------------------------------------------------------------------
    def sts_error(self, status, code):
        self.record('POST / STS %s' % code)
        self.send(status, '<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>'
                  '%s</Message></Error><RequestId>credserver</RequestId></ErrorResponse>'
                  % (code, code), 'text/xml')

    def signature_ok(self, body):
        auth = self.headers.get('Authorization', '')
        try:
            cred = auth.split('Credential=')[1].split(',')[0]
            akid, day, region, service, _ = cred.split('/')
            signed = auth.split('SignedHeaders=')[1].split(',')[0].split(';')
        except (IndexError, ValueError):
            return 'IncompleteSignature'
        if service != 'sts':
            return 'SignatureDoesNotMatch'
        secret, token, exp = self.server.state.secret_of(akid)
        if secret is None:
            return 'InvalidClientTokenId'
        if exp is not None and exp <= time.time():
            return 'ExpiredToken'
        if token is not None and self.headers.get('X-Amz-Security-Token') != token:
            return 'InvalidClientTokenId'
        req = AWSRequest(method='POST', url='http://%s%s' % (self.headers['Host'], self.path),
                         data=body)
        for h in signed:
            if h not in ('host', 'x-amz-date', 'x-amz-security-token'):
                req.headers[h] = self.headers.get(h, '')
        amz_date = self.headers.get('X-Amz-Date', '')
        fixed = datetime.datetime.strptime(amz_date, '%Y%m%dT%H%M%SZ')

        class Fixed(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return fixed
        with LOCK:
            saved = botocore.auth.datetime
            botocore.auth.datetime = type('M', (), {'datetime': Fixed})
            try:
                signer = botocore.auth.SigV4Auth(Credentials(akid, secret, token), 'sts', region)
                signer.add_auth(req)
            finally:
                botocore.auth.datetime = saved
        def parts(a):   # separators may be "," or ", "
            return [x.strip() for x in a.replace('AWS4-HMAC-SHA256 ', '').split(',')]
        if parts(req.headers['Authorization']) != parts(auth):
            self.record('signature differs: got %r, botocore signs %r' % (
                auth, req.headers['Authorization']))
            return 'SignatureDoesNotMatch'
        return None

    def do_POST(self):
        body = self.body()
        st = self.server.state
        form = urllib.parse.parse_qs(body.decode('utf-8', 'replace'))
        action = (form.get('Action') or [''])[0]
        if action not in ('AssumeRole', 'AssumeRoleWithWebIdentity'):
            return self.sts_error(400, 'InvalidAction')
        st.count('sts-' + action)
        if self.special('sts'):
            return
        if not form.get('RoleArn') or not form.get('RoleSessionName'):
            return self.sts_error(400, 'MissingParameter')
        if action == 'AssumeRole':
            bad = self.signature_ok(body)
            if bad:
                return self.sts_error(403, bad)
            via = 'sts-role'
        else:
            if (form.get('WebIdentityToken') or [''])[0] != self.server.opts.web_token:
                return self.sts_error(400, 'InvalidIdentityToken')
            via = 'sts-webid'
        akid, c = st.issue(via, self.mode() == 'early')
        self.record('POST / %s issued %s until %s' % (action, akid, iso(c['advertised'])))
        self.send(200, '<{a}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><{a}Result>'
                  '<Credentials><AccessKeyId>{k}</AccessKeyId><SecretAccessKey>{s}'
                  '</SecretAccessKey><SessionToken>{t}</SessionToken><Expiration>{e}</Expiration>'
                  '</Credentials><AssumedRoleUser><Arn>{r}</Arn></AssumedRoleUser></{a}Result>'
                  '<ResponseMetadata><RequestId>credserver</RequestId></ResponseMetadata>'
                  '</{a}Response>'.format(a=action, k=akid, s=c['secret'], t=c['token'],
                                          e=iso(c['advertised']), r=form['RoleArn'][0]),
                  'text/xml')


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port-file', required=True)
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--state', required=True)
    ap.add_argument('--ttl', type=int, default=60)
    ap.add_argument('--early', type=int, default=0)
    ap.add_argument('--mode-file')
    ap.add_argument('--log')
    ap.add_argument('--static', action='append', default=[])
    ap.add_argument('--container-token', default='')
    ap.add_argument('--web-token', default='')
    opts = ap.parse_args()
    srv = Server(('127.0.0.1', opts.port), Handler)
    srv.opts = opts
    srv.state = State(opts)
    with open(opts.port_file + '.tmp', 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(opts.port_file + '.tmp', opts.port_file)
    srv.serve_forever()


if __name__ == '__main__':
    sys.exit(main())
