/* raid0: striping in Linux md's layout (equal members, one zone): chunk k
 * of the array is chunk k / n of member k % n. */
#include "blockdev/levels/layer.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* raid0: chunk k of the array is chunk k / n of member k % n (md's
 * layout for equal members: one zone). */
static void raid0_map(const struct layer *l, uint64_t pos, int *member,
		      uint64_t *member_pos, uint64_t *piece_max)
{
	uint64_t chunk = l->l_chunk, k = pos / chunk, in = pos % chunk;

	*member = (int)(k % l->l_nr);
	*member_pos = (k / l->l_nr) * chunk + in;
	*piece_max = chunk - in;
}

static int raid0_create(const struct bdev_kind_args *a, struct bdev **out,
			char *err, size_t errlen)
{
	struct bdev **members = a->ka_members;
	uint64_t data_offset = a->ka_data_offset, chunk = a->ka_chunk;
	int nr = a->ka_nr;
	uint64_t msize;
	struct layer *l;

	if (nr < 2) {
		snprintf(err, errlen, "raid0 needs at least 2 members, got %d",
			 nr);
		goto out_free;
	}
	if (layer_check_chunk(members, nr, data_offset, chunk, &msize, err,
			      errlen))
		goto out_free;
	if (layer_create(&raid0_kind, members, nr, chunk, a->ka_max_io_bytes,
			 a->ka_in_segs, &layer_mapped_ops, &l)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->l_member_size = msize;
	l->l_data_offset = data_offset;
	l->l_bdev.bd_size = msize * nr;
	l->l_map = raid0_map;
	*out = &l->l_bdev;
	return 0;
out_free:
	layer_free_members(members, nr);
	return -EINVAL;
}

const struct bdev_kind raid0_kind = {
	.bk_name = "raid0",
	.bk_help = "  raid0(M, M, ..., chunk=SIZE)      striping\n",
	.bk_min_members = 2,
	.bk_max_members = LAYER_MAX_MEMBERS,
	.bk_flags = BK_ARRAY | BK_SHARED,
	.bk_opts = {
		{ "chunk", BDEV_OPT_CHUNK, offsetof(struct bdev_kind_args, ka_chunk), false },
	},
	.bk_md_level = 0,
	.bk_create = raid0_create,
};
