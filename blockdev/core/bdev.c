/* bdev: request set-up, re-slicing into children, completion stacking and
 * per-device accounting.  Completion flows child -> parent, first error wins. */
#include "blockdev/core/bdev.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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
	req->br_home = NULL;
	req->br_home_counted = false;
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
		struct bdev_stats *st = bdev_stats_of(dev, req->br_loop);
		bool data = req->br_op == BDEV_READ || req->br_op == BDEV_WRITE;

		bdev_stat_leave(&st->inflight);
		if (req->br_error)
			bdev_stat_add(&st->errors, 1);
		/* Superblock I/O is in flight like any, but counted apart
		 * (the array's super.updates): counters and traces stay the
		 * user's I/O. */
		if (!req->br_meta)
			bdev_stat_add(&st->done[req->br_op], 1);
		if (!req->br_meta && (data || dev->bd_observe)) {
			uint64_t now = loop_now_ns();

			if (data)
				bdev_lat_add(&st->lat[req->br_op],
					     now - req->br_start_ns);
			if (dev->bd_observe)
				dev->bd_observe(dev, req, now);
		}
	}
	if (dev && dev->bd_hold_end && dev->bd_hold_end(dev, req))
		return;
	bdev_req_end(req);
}

static void handoff_return(struct loop_op *op, int res, unsigned flags)
{
	struct bdev_req *req = container_of(op, struct bdev_req, br_loop_op);

	(void)res;
	(void)flags;
	req->br_loop = req->br_home;
	req->br_home = NULL;
	if (req->br_home_counted) {
		req->br_home_counted = false;
		bdev_stat_leave(
			&bdev_stats_of(req->br_dev, req->br_loop)->inflight);
	}
	bdev_req_end(req);
}

static void handoff_run(struct loop_op *op, int res, unsigned flags)
{
	struct bdev_req *req = container_of(op, struct bdev_req, br_loop_op);

	(void)res;
	(void)flags;
	bdev_submit(req->br_dev, req);
}

static void move_run(struct loop_op *op, int res, unsigned flags)
{
	struct bdev_req *req = container_of(op, struct bdev_req, br_loop_op);
	struct bdev *dev = req->br_dev;
	struct bdev_stats *st = bdev_stats_of(dev, req->br_loop);

	(void)res;
	(void)flags;
	bdev_stat_enter(&st->inflight, &st->inflight_max);
	dev->bd_ops->submit(dev, req);
}

void bdev_req_move(struct bdev_req *req, struct loop *to)
{
	bdev_stat_leave(&bdev_stats_of(req->br_dev, req->br_loop)->inflight);
	req->br_home = req->br_loop;
	req->br_loop = to;
	req->br_loop_op.lo_done = move_run;
	loop_msg(req->br_home, to, &req->br_loop_op);
}

void bdev_req_end(struct bdev_req *req)
{
	struct bdev_req *parent = req->br_parent;
	int err = req->br_error;

	if (req->br_home) {
		/* Done on the owner: the rest of its completion (br_end, the
		 * parent) belongs to the loop that submitted it. */
		req->br_loop_op.lo_done = handoff_return;
		loop_msg(req->br_loop, req->br_home, &req->br_loop_op);
		return;
	}

	/* br_end may reuse or free req: read what we need first. */
	if (req->br_end)
		req->br_end(req);
	if (parent)
		bdev_req_complete(parent, err);
}

void bdev_submit(struct bdev *dev, struct bdev_req *req)
{
	struct bdev_stats *st = bdev_stats_of(dev, req->br_loop);
	struct loop *owner = dev->bd_owner_moves ? NULL : dev->bd_owner;

	req->br_dev = dev;
	if (dev->bd_owner_moves) {
		/* Counted in flight before bd_owner is read, and
		 * bdev_owner_take() writes bd_owner before it reads the
		 * counts: one of the two always sees the other. */
		__atomic_store_n(&st->inflight, st->inflight + 1,
				 __ATOMIC_SEQ_CST);
		owner = __atomic_load_n(&dev->bd_owner, __ATOMIC_SEQ_CST);
		if (owner && req->br_op == BDEV_READ &&
		    __atomic_load_n(&dev->bd_reads_stay, __ATOMIC_SEQ_CST))
			owner = NULL;
	}
	/* A request with no loop is one of the unit tests' or a null/mem
	 * member's, completed inside submit on the caller's thread. */
	if (owner && req->br_loop && req->br_loop != owner) {
		/* Accounted, submitted and completed on the owner. */
		if (dev->bd_owner_moves)
			bdev_stat_leave(&st->inflight);
		req->br_home = req->br_loop;
		req->br_loop = owner;
		req->br_loop_op.lo_done = handoff_run;
		loop_msg(req->br_home, owner, &req->br_loop_op);
		return;
	}
	req->br_start_ns = loop_now_ns();
	if (!req->br_meta) {
		bdev_stat_add(&st->ops[req->br_op], 1);
		bdev_stat_add(&st->bytes[req->br_op], req->br_len);
		if (req->br_op == BDEV_READ || req->br_op == BDEV_WRITE)
			bdev_stat_add(&st->size_hist[bdev_hist_bucket(
					      req->br_len)],
				      1);
	}
	if (dev->bd_owner_moves) /* counted in flight above */
		bdev_stat_max(&st->inflight, &st->inflight_max);
	else
		bdev_stat_enter(&st->inflight, &st->inflight_max);
	if (dev->bd_read_only && req->br_op != BDEV_READ &&
	    req->br_op != BDEV_FLUSH) {
		bdev_req_complete(req, -EROFS);
		return;
	}
	if (dev->bd_hold && dev->bd_hold(dev, req))
		return;
	dev->bd_ops->submit(dev, req);
}

void bdev_owner_take(struct bdev *dev, struct loop *owner)
{
	__atomic_store_n(&dev->bd_owner, owner, __ATOMIC_SEQ_CST);
}

void bdev_owner_give_up(struct bdev *dev)
{
	__atomic_store_n(&dev->bd_owner, NULL, __ATOMIC_SEQ_CST);
}

uint32_t bdev_others_inflight(const struct bdev *dev, const struct loop *lp)
{
	unsigned me = loop_id(lp);
	uint32_t n = 0;

	for (int i = 0; i < dev->bd_nr_shards; i++) {
		const struct bdev_stats *st = i ? &dev->bd_stats_more[i - 1] :
						  &dev->bd_stats;

		if ((unsigned)i != me)
			n += __atomic_load_n(&st->inflight, __ATOMIC_SEQ_CST);
	}
	return n;
}

static void stats_add(struct bdev_stats *out, const struct bdev_stats *s)
{
	const uint64_t *from = (const uint64_t *)s;
	uint64_t *to = (uint64_t *)out;
	uint32_t max = __atomic_load_n(&s->inflight_max, __ATOMIC_RELAXED);

	/* Every field but the 32-bit pair and the maxima is a sum. */
	for (size_t i = 0; i < offsetof(struct bdev_stats, inflight) / 8; i++)
		to[i] += bdev_stat_read(&from[i]);
	out->inflight += __atomic_load_n(&s->inflight, __ATOMIC_RELAXED);
	if (max > out->inflight_max)
		out->inflight_max = max;
	for (int k = 0; k < 2; k++) {
		const struct bdev_lat *l = &s->lat[k];

		for (int b = 0; b < BDEV_LAT_BUCKETS; b++)
			out->lat[k].hist[b] += bdev_stat_read(&l->hist[b]);
		out->lat[k].sum_ns += bdev_stat_read(&l->sum_ns);
		if (bdev_stat_read(&l->max_ns) > out->lat[k].max_ns)
			out->lat[k].max_ns = bdev_stat_read(&l->max_ns);
	}
}

void bdev_stats_sum(struct bdev *dev, struct bdev_stats *out)
{
	memset(out, 0, sizeof(*out));
	stats_add(out, &dev->bd_stats);
	for (int i = 0; dev->bd_stats_more && i < dev->bd_nr_shards - 1; i++)
		stats_add(out, &dev->bd_stats_more[i]);
	bdev_stat_mark(&dev->bd_inflight_max_seen, out->inflight,
		       &out->inflight_max);
}

uint32_t bdev_inflight(const struct bdev *dev)
{
	uint32_t n = __atomic_load_n(&dev->bd_stats.inflight, __ATOMIC_RELAXED);

	for (int i = 0; dev->bd_stats_more && i < dev->bd_nr_shards - 1; i++)
		n += __atomic_load_n(&dev->bd_stats_more[i].inflight,
				     __ATOMIC_RELAXED);
	return n;
}

int bdev_share(struct bdev *dev, int nr_loops, struct loop *owner)
{
	dev->bd_owner = owner;
	if (owner || nr_loops < 2 || dev->bd_stats_more)
		return 0;
	dev->bd_stats_more = calloc(nr_loops - 1, sizeof(struct bdev_stats));
	if (!dev->bd_stats_more)
		return -ENOMEM;
	dev->bd_nr_shards = nr_loops;
	return 0;
}

void bdev_destroy(struct bdev *dev)
{
	if (dev) {
		free(dev->bd_stats_more);
		dev->bd_stats_more = NULL;
		dev->bd_ops->destroy(dev);
	}
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
