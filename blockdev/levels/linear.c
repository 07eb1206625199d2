/* linear: members concatenated (LVM/dm-linear); a request crossing a
 * member boundary becomes one child per member it touches. */
#include "blockdev/levels/layer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* linear: members back to back, each used in full (whole blocks). */
static void linear_map(const struct layer *l, uint64_t pos, int *member,
		       uint64_t *member_pos, uint64_t *piece_max)
{
	int lo = 0, hi = l->l_nr - 1;

	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;

		if (l->l_start[mid] <= pos)
			lo = mid;
		else
			hi = mid - 1;
	}
	*member = lo;
	*member_pos = pos - l->l_start[lo];
	*piece_max = l->l_start[lo + 1] - pos;
}

static int linear_create(const struct bdev_kind_args *a, struct bdev **out,
			 char *err, size_t errlen)
{
	struct bdev **members = a->ka_members;
	uint64_t data_offset = a->ka_data_offset;
	int nr = a->ka_nr;
	struct layer *l;

	if (layer_create(&linear_kind, members, nr, 0, a->ka_max_io_bytes,
			 a->ka_in_segs, &layer_mapped_ops, &l)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->l_start = calloc(nr + 1, sizeof(*l->l_start));
	if (!l->l_start) {
		layer_destroy(&l->l_bdev);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < nr; i++) {
		uint64_t sz = members[i]->bd_size;

		if (sz <= data_offset) {
			snprintf(err, errlen, "%s holds no data past its %llu-byte metadata",
				 members[i]->bd_name, (unsigned long long)data_offset);
			layer_destroy(&l->l_bdev);
			return -EINVAL;
		}
		sz -= data_offset;
		sz -= sz % l->l_bdev.bd_align;
		l->l_start[i + 1] = l->l_start[i] + sz;
	}
	l->l_bdev.bd_size = l->l_start[nr];
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
	.bk_flags = BK_ARRAY | BK_CONCAT,
	.bk_md_level = -1,
	.bk_create = linear_create,
};
