/* store.c - what all stores share: choosing the new store's implementation from the
 * `nfs=` option. The implementations themselves live one per file beside this one. */
#include "store/store.h"

#include "base/cfg.h"

int store_new_nfs_side(const struct ferry_config *cfg, struct store **out)
{
	if (cfg->nfs && cfg->nfs[0] == '/')
		return store_local_new(cfg, out);
	return store_nfs_new(cfg, out);
}
