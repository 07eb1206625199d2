/* raid0: striping in Linux md's layout (equal members, one zone): chunk k
 * of the array is chunk k / n of member k % n. */
#include "blockdev/levels/layer.h"

#include <errno.h>
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

int raid0_create(struct bdev **members, int nr, uint64_t data_offset,
		 uint64_t chunk, size_t max_io_bytes, uint32_t in_segs, struct bdev **out,
		 char *err, size_t errlen)
{
	uint64_t msize;
	struct layer *l;

	if (nr < 2) {
		snprintf(err, errlen, "raid0 needs at least 2 members, got %d", nr);
		goto out_free;
	}
	if (layer_check_chunk(members, nr, data_offset, chunk, &msize, err, errlen))
		goto out_free;
	if (layer_create("raid0", members, nr, chunk, max_io_bytes, in_segs,
			 &layer_mapped_ops, &l)) {
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

