#!/usr/bin/python3
"""botocore_sign.py - sign a request with botocore's S3SigV4Auth, the signer of the AWS CLI
and boto3, as an independent check of ferryfs's own signer (src/s3/sigv4.c).

Reads the same description as tests/integ/sigv4_sign (stdin, one "field<TAB>value" a line:
method, host, path, param, header, body, unsigned, time, access_key, secret_key, token,
region; values may use the escapes \\t \\n \\r \\\\ \\xHH) and prints

    authorization: <Authorization header, in the AWS documentation's comma form>
    path: <the encoded path of the URL botocore would send>
    query: <its query string>

The request goes through the same steps as a real botocore S3 call: the path is encoded the
way botocore's REST serializer encodes a {Key+} label (percent_encode, '/' and '~' kept), the
query the way prepare_request_dict does (percent_encode_sequence; a valueless parameter such
as ?uploads is left bare, as in botocore's request URIs), and S3SigV4Auth signs the URL
itself, so both sides sign the bytes that would go on the wire. The clock is pinned to the
"time" field. Run with /usr/bin/python3 (Debian's python3-botocore). Test credentials only:
-v prints the canonical request, which holds the session token.
"""
import datetime
import re
import sys
import types

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode


def unescape(s):
    out = bytearray()
    i = 0
    raw = s.encode('utf-8')
    while i < len(raw):
        c = raw[i:i + 1]
        if c == b'\\' and i + 1 < len(raw):
            n = raw[i + 1:i + 2]
            if n == b't':
                out += b'\t'
                i += 2
            elif n == b'n':
                out += b'\n'
                i += 2
            elif n == b'r':
                out += b'\r'
                i += 2
            elif n == b'x':
                out.append(int(raw[i + 2:i + 4], 16))
                i += 4
            else:
                out += n
                i += 2
        else:
            out += c
            i += 1
    return bytes(out)


def main():
    verbose = '-v' in sys.argv[1:]
    d = {'params': [], 'headers': [], 'region': b'us-east-1', 'body': b'', 'token': None}
    for line in sys.stdin.read().split('\n'):
        if not line or line.startswith('#'):
            continue
        parts = line.split('\t')
        field, vals = parts[0], [unescape(p) for p in parts[1:]]
        if field == 'param':
            d['params'].append((vals[0], vals[1] if len(vals) > 1 else None))
        elif field == 'header':
            d['headers'].append((vals[0], vals[1]))
        elif field == 'unsigned':
            d['unsigned'] = True
        elif field in ('method', 'host', 'path', 'body', 'time', 'access_key',
                       'secret_key', 'token', 'region'):
            d[field] = vals[0] if vals else b''
        else:
            sys.exit('unknown field %s' % field)

    # The URL exactly as botocore builds it for an S3 call.
    path = percent_encode(d.get('path') or b'/', safe='/~')
    query = '&'.join(percent_encode(k) if v is None else
                     '%s=%s' % (percent_encode(k), percent_encode(v))
                     for k, v in d['params'])
    url = 'http://%s%s' % (d['host'].decode(), path)
    if query:
        url += '?' + query

    # Pin botocore's clock.
    fixed = datetime.datetime.strptime(d['time'].decode(), '%Y%m%dT%H%M%SZ')

    class FixedDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

    botocore.auth.datetime = types.SimpleNamespace(datetime=FixedDatetime)

    req = AWSRequest(method=d['method'].decode(), url=url, data=d['body'])
    for name, value in d['headers']:
        # HTTPHeaders keeps every value of a repeated name; botocore joins them with ','
        req.headers[name.decode('latin-1')] = value.decode('latin-1')
    if d.get('unsigned'):
        req.context['client_config'] = Config(s3={'payload_signing_enabled': False})
    token = d['token'].decode() if d['token'] else None
    creds = Credentials(d['access_key'].decode(), d['secret_key'].decode(), token)
    auth = botocore.auth.S3SigV4Auth(creds, 's3', d['region'].decode())
    auth.add_auth(req)
    if verbose:
        signed = req.headers['Authorization']
        del req.headers['Authorization']
        sys.stderr.write('--- canonical request (botocore)\n%s\n---\n' % auth.canonical_request(req))
        req.headers['Authorization'] = signed
    authz = re.sub(r', ', ',', req.headers['Authorization'])
    prepared = req.prepare()
    parts = prepared.url.split('?', 1)
    path_sent = parts[0][len('http://') + len(d['host'].decode()):]
    print('authorization: %s' % authz)
    print('path: %s' % path_sent)
    print('query: %s' % (parts[1] if len(parts) > 1 else ''))


if __name__ == '__main__':
    main()
