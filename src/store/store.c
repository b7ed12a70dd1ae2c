/* store.c - what all stores share: choosing the new store's implementation from the
 * `nfs=` option, and the check of the paths the new store's implementations accept. The
 * implementations themselves live one per file beside this one. */
#include "store/store.h"

#include <limits.h>
#include <string.h>

#include "base/cfg.h"
#include "base/naming.h"

int store_path_ok(const char *p)
{
	if (!p || p[0] != '/' || strlen(p) > NAME_MAX_PATH)
		return 0;
	if (p[1] == '\0')
		return 1;
	const char *s = p + 1;
	for (;;) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		if (n == 0 || n > NAME_MAX || (n == 1 && s[0] == '.') ||
		    (n == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		if (!*e)
			return 1;
		s = e + 1;
	}
}

int store_new_nfs_side(const struct ferry_config *cfg, struct store **out)
{
	if (cfg->nfs && cfg->nfs[0] == '/')
		return store_local_new(cfg, out);
	return store_nfs_new(cfg, out);
}
