/* null: a member that reads zeroes and drops writes, like the kernel's
 * null_blk; with it a layout measures rawvec's own overhead. */
#include "blockdev/core/bdev.h"
#include "blockdev/kind.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void null_submit(struct bdev *dev, struct bdev_req *req)
{
	struct pvec_iter it = req->br_iter;
	struct pvec cur;

	(void)dev;
	/* Reads must not leak what the buffer held before. */
	if (req->br_op == BDEV_READ)
		pvec_for_each(cur, req->br_vec, it)
			memset(pvec_addr(&cur), 0, cur.pv_len);
	bdev_req_complete(req, 0);
}

static void null_destroy(struct bdev *dev)
{
	free(dev->bd_name);
	free(dev);
}

static const struct bdev_ops null_ops = {
	.submit = null_submit,
	.destroy = null_destroy,
};

int bdev_null_create(uint64_t size, struct bdev **out, char *err, size_t errlen)
{
	struct bdev *d = calloc(1, sizeof(*d));

	if (!d || !(d->bd_name = strdup("null"))) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->bd_ops = &null_ops;
	d->bd_kind = null_kind.bk_name;
	d->bd_desc = &null_kind;
	d->bd_size = size - size % 512;
	d->bd_align = 512;
	d->bd_mem_align = 512;
	d->bd_byte_zero = true;
	*out = d;
	return 0;
}

static int null_create(const struct bdev_kind_args *a, struct bdev **out,
		       char *err, size_t errlen)
{
	return bdev_null_create(a->ka_size, out, err, errlen);
}

const struct bdev_kind null_kind = {
	.bk_name = "null",
	.bk_help = "  null(size=SIZE)                   reads zeroes, drops writes\n",
	.bk_flags = BK_SHARED | BK_IN_MEMORY | BK_NO_DATA,
	.bk_opts = {
		{ "size", BDEV_OPT_SIZE, offsetof(struct bdev_kind_args, ka_size), true },
	},
	.bk_create = null_create,
};
