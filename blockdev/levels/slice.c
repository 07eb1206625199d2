/* slice: a window of one member, like an LVM extent run or a partition;
 * requests are shifted by the offset and never leave the window. */
#include "blockdev/levels/layer.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/** struct slice - l_private: where the window starts on the member. */
struct slice {
	uint64_t offset;
};

/* slice: a window [offset, offset + size) of one member. */
static void slice_map(const struct layer *l, uint64_t pos, int *member,
		      uint64_t *member_pos, uint64_t *piece_max)
{
	*member = 0;
	*member_pos = ((const struct slice *)l->l_private)->offset + pos;
	*piece_max = l->l_bdev.bd_size - pos;
}

static int slice_create(const struct bdev_kind_args *a, struct bdev **out,
			char *err, size_t errlen)
{
	struct bdev **members = a->ka_members, *member = members[0];
	uint64_t offset = a->ka_offset, size = a->ka_size;
	uint64_t msize = member->bd_size;
	struct layer *l;

	if (offset >= msize || (size && size > msize - offset)) {
		snprintf(err, errlen,
			 "offset %llu + size %llu is beyond the member's %llu bytes",
			 (unsigned long long)offset, (unsigned long long)size,
			 (unsigned long long)msize);
		goto out_free;
	}
	if (!size)
		size = msize - offset;
	if ((offset | size) % member->bd_align) {
		snprintf(err, errlen, "offset and size must be multiples of %u",
			 member->bd_align);
		goto out_free;
	}
	if (layer_create(&slice_kind, members, 1, 0, a->ka_max_io_bytes,
			 a->ka_in_segs, &layer_mapped_ops, &l)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->l_private = malloc(sizeof(struct slice));
	if (!l->l_private) {
		layer_destroy(&l->l_bdev);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	((struct slice *)l->l_private)->offset = offset;
	l->l_member_size = size;
	l->l_bdev.bd_size = size;
	l->l_map = slice_map;
	*out = &l->l_bdev;
	return 0;
out_free:
	layer_free_members(members, 1);
	return -EINVAL;
}

const struct bdev_kind slice_kind = {
	.bk_name = "slice",
	.bk_help = "  slice(M, offset=SIZE, size=SIZE)  a range of M\n",
	.bk_min_members = 1,
	.bk_max_members = 1,
	.bk_flags = BK_WINDOW | BK_SHARED,
	.bk_opts = {
		{ "offset", BDEV_OPT_OFFSET, offsetof(struct bdev_kind_args, ka_offset), false },
		{ "size", BDEV_OPT_SIZE, offsetof(struct bdev_kind_args, ka_size), false },
	},
	.bk_create = slice_create,
};
