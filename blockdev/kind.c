/* kind: the registry of levels and member kinds; everything that needs
 * to know which kinds exist walks these two lists. */
#include "blockdev/kind.h"

#include <string.h>

#define BDEV_KIND_REF(n) &n##_kind,
const struct bdev_kind *const bdev_levels[] = { BDEV_LEVELS(BDEV_KIND_REF) NULL };
const struct bdev_kind *const bdev_members[] = { BDEV_MEMBERS(BDEV_KIND_REF) NULL };

const struct bdev_kind *bdev_kind_find(const char *name, size_t len)
{
	const struct bdev_kind *const *lists[] = { bdev_levels, bdev_members };

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		for (const struct bdev_kind *const *k = lists[i]; *k; k++)
			if (!((*k)->bk_flags & BK_PATH) && strlen((*k)->bk_name) == len &&
			    !strncmp((*k)->bk_name, name, len))
				return *k;
	return NULL;
}

const struct bdev_kind *bdev_kind_path(void)
{
	for (const struct bdev_kind *const *k = bdev_members; *k; k++)
		if ((*k)->bk_flags & BK_PATH)
			return *k;
	return NULL;
}
