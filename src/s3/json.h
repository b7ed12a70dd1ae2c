/* json.h - a small strict JSON reader for the flat answers of the credential endpoints
 * (the EC2 instance metadata service, the container credentials endpoint, a
 * credential_process). The whole document is validated against RFC 8259 (one value, no
 * trailing bytes, no control characters in strings, no lone surrogates, no \u0000, nesting
 * at most 32 deep); then the top-level object's string (or number) members named by the
 * caller are returned decoded. Pure functions: no I/O, no global state, any thread. */
#ifndef FERRY_S3_JSON_H
#define FERRY_S3_JSON_H

#include <stddef.h>

/* Parse text[0..len) (need not be NUL-terminated). It must be one JSON object. For each
 * names[i], values[i] gets a malloc'd copy of the top-level member of that name when its
 * value is a string (decoded to UTF-8) or a number (its text), NULL when absent or of
 * another type. Returns 0, -EPROTO (not valid JSON, not an object, or a member named twice:
 * *values are then all NULL) or -ENOMEM. Free the values with json_free_values (which
 * wipes them: they may hold secrets). */
int json_get_members(const char *text, size_t len, const char *const *names, char **values,
		     size_t n);
void json_free_values(char **values, size_t n);

#endif
