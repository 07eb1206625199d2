/* bdev: request set-up, re-slicing into children, completion stacking and
 * per-device accounting.  Completion flows child -> parent, first error wins. */
#include "blockdev/core/bdev.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const op_names[BDEV_NR_OPS] = {
	[BDEV_READ] = "read",	      [BDEV_WRITE] = "write",
	[BDEV_FLUSH] = "flush",	      [BDEV_DISCARD] = "discard",
	[BDEV_ZERO] = "write_zeroes",
};

const char *bdev_op_name(enum bdev_op op)
{
	return op < BDEV_NR_OPS ? op_names[op] : "?";
}

uint64_t bdev_lat_percentile(const uint64_t *hist, double q)
{
	uint64_t n = 0, rank, seen = 0;

	for (int b = 0; b < BDEV_LAT_BUCKETS; b++)
		n += hist[b];
	if (!n)
		return 0;
	rank = (uint64_t)(q * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < BDEV_LAT_BUCKETS; b++) {
		seen += hist[b];
		if (seen >= rank) {
			uint64_t lo = bdev_lat_lower(b);
			uint64_t hi = b + 1 < BDEV_LAT_BUCKETS ?
					      bdev_lat_lower(b + 1) :
					      lo + 1;

			return lo + (hi - lo) / 2;
		}
	}
	return bdev_lat_lower(BDEV_LAT_BUCKETS - 1);
}

void bdev_req_init(struct bdev_req *req, enum bdev_op op, uint64_t pos,
		   uint64_t len, const struct pvec *vec, struct pvec_iter it,
		   bdev_end_fn end, void *private)
{
	req->br_vec = vec;
	req->br_iter = it;
	req->br_pos = pos;
	req->br_len = len;
	req->br_op = op;
	req->br_error = 0;
	req->br_pending = 1;
	req->br_parent = NULL;
	req->br_dev = NULL;
	req->br_end = end;
	req->br_private = private;
	req->br_iov = req->br_iov_inline;
	req->br_iov_max = BDEV_REQ_INLINE_IOV;
	req->br_meta = false;
	req->br_loop = NULL;
}

int bdev_req_child(struct bdev_req *parent, struct bdev_req *child,
		   uint64_t off, uint64_t len, uint64_t child_pos,
		   bdev_end_fn end, void *private)
{
	struct pvec_iter it = { 0 };

	if (off > parent->br_len || len > parent->br_len - off)
		return -ERANGE;
	if (parent->br_vec &&
	    pvec_slice(parent->br_vec, parent->br_iter, off, len, &it))
		return -ERANGE;
	bdev_req_init(child, parent->br_op, child_pos, len, parent->br_vec, it,
		      end, private);
	bdev_req_chain(parent, child);
	return 0;
}

void bdev_req_chain(struct bdev_req *parent, struct bdev_req *child)
{
	child->br_parent = parent;
	bdev_req_like(child, parent);
	parent->br_pending++;
}

void bdev_req_complete(struct bdev_req *req, int err)
{
	struct bdev *dev;

	if (err < 0 && !req->br_error)
		req->br_error = err;
	if (--req->br_pending)
		return;
	dev = req->br_dev;
	if (dev) {
		bool data = req->br_op == BDEV_READ || req->br_op == BDEV_WRITE;

		dev->bd_stats.inflight--;
		if (req->br_error)
			dev->bd_stats.errors++;
		/* Superblock I/O is in flight like any, but counted apart
		 * (the array's super.updates): counters and traces stay the
		 * user's I/O. */
		if (!req->br_meta)
			dev->bd_stats.done[req->br_op]++;
		if (!req->br_meta && (data || dev->bd_observe)) {
			uint64_t now = loop_now_ns();

			if (data)
				bdev_lat_add(&dev->bd_stats.lat[req->br_op],
					     now - req->br_start_ns);
			if (dev->bd_observe)
				dev->bd_observe(dev, req, now);
		}
	}
	if (dev && dev->bd_hold_end && dev->bd_hold_end(dev, req))
		return;
	bdev_req_end(req);
}

void bdev_req_end(struct bdev_req *req)
{
	struct bdev_req *parent = req->br_parent;
	int err = req->br_error;

	/* br_end may reuse or free req: read what we need first. */
	if (req->br_end)
		req->br_end(req);
	if (parent)
		bdev_req_complete(parent, err);
}

void bdev_submit(struct bdev *dev, struct bdev_req *req)
{
	struct bdev_stats *st = &dev->bd_stats;

	req->br_dev = dev;
	req->br_start_ns = loop_now_ns();
	if (!req->br_meta) {
		st->ops[req->br_op]++;
		st->bytes[req->br_op] += req->br_len;
		if (req->br_op == BDEV_READ || req->br_op == BDEV_WRITE)
			st->size_hist[bdev_hist_bucket(req->br_len)]++;
	}
	if (++st->inflight > st->inflight_max)
		st->inflight_max = st->inflight;
	if (dev->bd_read_only && req->br_op != BDEV_READ &&
	    req->br_op != BDEV_FLUSH) {
		bdev_req_complete(req, -EROFS);
		return;
	}
	if (dev->bd_hold && dev->bd_hold(dev, req))
		return;
	dev->bd_ops->submit(dev, req);
}

void bdev_destroy(struct bdev *dev)
{
	if (dev)
		dev->bd_ops->destroy(dev);
}

void bdev_fmt_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const unit[] = { "bytes", "KiB", "MiB", "GiB",
					    "TiB" };
	unsigned u = 0;
	uint64_t d = 1;

	while (u < 4 && n >= d * 1024) {
		d *= 1024;
		u++;
	}
	if (n % d == 0 || n / d >= 100)
		snprintf(buf, len, "%" PRIu64 " %s", n / d, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", (double)n / (double)d, unit[u]);
}
