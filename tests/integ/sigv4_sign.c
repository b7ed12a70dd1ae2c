/* sigv4_sign.c - test tool: signs a request described on stdin with OUR signer and prints
 * what the botocore cross-check (tests/integration/sigv4_botocore.sh) compares with
 * tests/tools/botocore_sign.py. Test credentials only: it prints the canonical request
 * with -v, which holds the session token.
 *
 * Input, one field a line, fields separated by one TAB; values may use the escapes
 * \t \n \r \\ \xHH:
 *   method GET | host H[:PORT] | path /raw/key | param NAME[<TAB>VALUE] | header NAME<TAB>VALUE
 *   body TEXT (hashed) | unsigned 1 (UNSIGNED-PAYLOAD) | time 20130524T000000Z
 *   access_key AK | secret_key SK | token T | region R
 * Output:  authorization: ...\npath: /encoded/path\nquery: a=1&b=2\n */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3/sigv4.h"
#include "base/util.h"

#define MAXF 64

static char *allocs[4 * MAXF];   /* every string unescape made, freed at the end */
static size_t nallocs;

static char *unescape(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	if (!out || nallocs == ARRAY_SIZE(allocs))
		exit(2);
	allocs[nallocs++] = out;
	while (*s) {
		if (*s != '\\' || !s[1]) {
			*o++ = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 't': *o++ = '\t'; s++; break;
		case 'n': *o++ = '\n'; s++; break;
		case 'r': *o++ = '\r'; s++; break;
		case 'x': {
			unsigned v = 0;
			if (sscanf(s + 1, "%2x", &v) != 1)
				exit(2);
			*o++ = (char)v;
			s += 3;
			break;
		}
		default: *o++ = *s++; break;
		}
	}
	*o = '\0';
	return out;
}

int main(int argc, char **argv)
{
	int verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	struct sigv4_request req = { 0 };
	struct sigv4_key key = { .service = "s3", .region = "us-east-1" };
	struct sigv4_param params[MAXF];
	struct sigv4_header headers[MAXF];
	size_t np = 0, nh = 0;
	char *body = NULL, hash[65];
	int unsigned_payload = 0;
	time_t now = 0;
	char line[8192];

	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		char *v1 = strchr(line, '\t'), *v2 = NULL;
		if (v1) {
			*v1++ = '\0';
			v2 = strchr(v1, '\t');
			if (v2)
				*v2++ = '\0';
		}
		const char *f = line;
		char *a = v1 ? unescape(v1) : NULL, *b = v2 ? unescape(v2) : NULL;
		if (!strcmp(f, "method")) req.method = a;
		else if (!strcmp(f, "host")) req.host = a;
		else if (!strcmp(f, "path")) req.path = a;
		else if (!strcmp(f, "param") && np < MAXF)
			params[np++] = (struct sigv4_param){ a, b ? b : "" };
		else if (!strcmp(f, "header") && nh < MAXF && b)
			headers[nh++] = (struct sigv4_header){ a, b };
		else if (!strcmp(f, "body")) body = a ? a : "";
		else if (!strcmp(f, "unsigned")) unsigned_payload = 1;
		else if (!strcmp(f, "access_key")) key.access_key_id = a;
		else if (!strcmp(f, "secret_key")) key.secret_access_key = a;
		else if (!strcmp(f, "token")) key.session_token = a;
		else if (!strcmp(f, "region")) key.region = a;
		else if (!strcmp(f, "time") && a) {
			struct tm tm = { 0 };
			if (!strptime(a, "%Y%m%dT%H%M%SZ", &tm)) {
				fprintf(stderr, "bad time\n");
				return 2;
			}
			now = timegm(&tm);
		} else {
			fprintf(stderr, "unknown field %s\n", f);
			return 2;
		}
	}
	if (unsigned_payload) {
		req.payload_hash = "UNSIGNED-PAYLOAD";
	} else {
		const char *bd = body ? body : "";
		if (util_sha256_hex(bd, strlen(bd), hash))
			return 1;
		req.payload_hash = hash;
	}
	req.query = params;
	req.nquery = np;
	req.headers = headers;
	req.nheaders = nh;

	struct sigv4_result r;
	int rc = sigv4_sign(&req, &key, now, &r);
	if (rc) {
		fprintf(stderr, "sigv4_sign: %s\n", strerror(-rc));
		return 1;
	}
	if (verbose)
		fprintf(stderr, "--- canonical request (ours)\n%s\n---\n",
			r.canonical_request.data);
	printf("authorization: %s\npath: %s\nquery: %s\n", r.authorization.data,
	       r.canonical_uri.data, r.canonical_query.data);
	sigv4_result_free(&r);
	for (size_t i = 0; i < nallocs; i++)
		free(allocs[i]);
	return 0;
}
