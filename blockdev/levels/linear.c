/* linear: members concatenated (LVM/dm-linear); a request crossing a
 * member boundary becomes one child per member it touches. */
#include "blockdev/levels/layer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/** struct linear - l_private: the logical start of each of @nr members,
 * then the end. */
struct linear {
	int nr;
	uint64_t start[]; /* nr + 1 entries */
};

/* linear: members back to back, each used in full (whole blocks). */
static void linear_map(const struct layer *l, uint64_t pos, int *member,
		       uint64_t *member_pos, uint64_t *piece_max)
{
	const uint64_t *start = ((const struct linear *)l->l_private)->start;
	int lo = 0, hi = l->l_nr - 1;

	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;

		if (start[mid] <= pos)
			lo = mid;
		else
			hi = mid - 1;
	}
	*member = lo;
	*member_pos = pos - start[lo];
	*piece_max = start[lo + 1] - pos;
}

static int linear_create(const struct bdev_kind_args *a, struct bdev **out,
			 char *err, size_t errlen)
{
	struct bdev **members = a->ka_members;
	uint64_t data_offset = a->ka_data_offset;
	int nr = a->ka_nr;
	struct layer *l;
	uint64_t *start;

	if (layer_create(&linear_kind, members, nr, 0, a->ka_max_io_bytes,
			 a->ka_in_segs, &layer_mapped_ops, &l)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->l_private =
		calloc(1, sizeof(struct linear) + (nr + 1) * sizeof(uint64_t));
	if (!l->l_private) {
		layer_destroy(&l->l_bdev);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	((struct linear *)l->l_private)->nr = nr;
	start = ((struct linear *)l->l_private)->start;
	for (int i = 0; i < nr; i++) {
		uint64_t sz = members[i]->bd_size;

		if (sz <= data_offset) {
			snprintf(err, errlen,
				 "%s holds no data past its %llu-byte metadata",
				 members[i]->bd_name,
				 (unsigned long long)data_offset);
			layer_destroy(&l->l_bdev);
			return -EINVAL;
		}
		sz -= data_offset;
		sz -= sz % l->l_bdev.bd_align;
		start[i + 1] = start[i] + sz;
	}
	l->l_bdev.bd_size = start[nr];
	l->l_data_offset = data_offset;
	l->l_map = linear_map;
	*out = &l->l_bdev;
	return 0;
}

const struct bdev_kind linear_kind = {
	.bk_name = "linear",
	.bk_help = "  linear(M, M, ...)                 concatenation\n",
	.bk_min_members = 1,
	.bk_max_members = LAYER_MAX_MEMBERS,
	.bk_flags = BK_ARRAY | BK_CONCAT | BK_SHARED,
	.bk_md_level = -1,
	.bk_create = linear_create,
};
