/* rw: clipping, alignment, read-modify-write and range locking above the
 * device stack.  A context belongs to one loop; range locks span loops. */
#include "blockdev/core/rw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
	RW_DIRECT,	/* request straight from the caller's buffer */
	RW_BOUNCE_READ, /* covering read into the bounce, then copy out */
	RW_RMW_FILL,	/* read head/tail blocks of an unaligned write */
	RW_RMW_WRITE,	/* write the patched covering range */
	RW_ZERO_FILL, /* unaligned zero/discard: read the partial edge blocks */
	RW_ZERO_WRITE, /* write them zeroed, zero/discard the aligned middle */
};

static void rw_wake(struct bdev_rw_ctx *ctx);

/* Another loop released a range one of ours may wait for. */
static void rw_wake_msg(struct loop_op *op, int res, unsigned flags)
{
	struct bdev_rw_ctx *ctx = container_of(op, struct bdev_rw_ctx, wake_op);

	(void)res;
	(void)flags;
	pthread_mutex_lock(&ctx->locks->mu);
	ctx->wake_sent = false;
	pthread_mutex_unlock(&ctx->locks->mu);
	rw_wake(ctx);
}

int bdev_rw_ctx_init(struct bdev_rw_ctx *ctx, struct bdev *dev,
		     struct loop *loop, size_t max_io_bytes, int nr_bounce)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->dev = dev;
	ctx->loop = loop;
	ctx->locks = &ctx->own_locks;
	pthread_mutex_init(&ctx->own_locks.mu, NULL);
	ctx->own_locks.ctx[ctx->own_locks.nr_ctx++] = ctx;
	ctx->wake_op.lo_done = rw_wake_msg;
	ctx->max_io_bytes = max_io_bytes;
	ctx->bounce_bytes = max_io_bytes + 2 * (size_t)dev->bd_align;
	ctx->bounce = calloc(nr_bounce, sizeof(*ctx->bounce));
	if (!ctx->bounce)
		return -ENOMEM;
	for (int i = 0; i < nr_bounce; i++) {
		ctx->bounce[i] = loop_pool_alloc(loop, ctx->bounce_bytes);
		if (!ctx->bounce[i]) {
			/* The start-up that fails here exits without an
			 * exit call: leave nothing to free. */
			free(ctx->bounce);
			ctx->bounce = NULL;
			return -ENOMEM;
		}
		ctx->nr_bounce_free++;
	}
	return 0;
}

void bdev_rw_ctx_share(struct bdev_rw_ctx *ctx, struct bdev_rw_ctx *first)
{
	struct bdev_rw_locks *lk = first->locks;

	ctx->locks = lk;
	/* Loops start side by side, each sharing from its own thread. */
	pthread_mutex_lock(&lk->mu);
	if (lk->nr_ctx < LOOP_MAX)
		lk->ctx[lk->nr_ctx++] = ctx;
	pthread_mutex_unlock(&lk->mu);
}

void bdev_rw_ctx_exit(struct bdev_rw_ctx *ctx)
{
	free(ctx->bounce);
	ctx->bounce = NULL;
}

bool bdev_rw_busy(const struct bdev_rw_ctx *ctx)
{
	return ctx->nr_locked || ctx->waiting.head;
}

static bool overlaps(const struct bdev_rw *a, const struct bdev_rw *b)
{
	return a->rw_lock_start < b->rw_lock_end &&
	       b->rw_lock_start < a->rw_lock_end;
}

/* Whether a locked range, of any loop, overlaps @rw's.  Under mu. */
static bool range_locked(const struct bdev_rw *rw)
{
	for (const struct bdev_rw *o = rw->rw_ctx->locks->locked; o;
	     o = o->rw_next)
		if (overlaps(rw, o))
			return true;
	return false;
}

/* Whether a waiter older than @stop (NULL: any) wants a range @rw's overlaps. */
static bool range_wanted(const struct bdev_rw *rw, const struct bdev_rw *stop)
{
	for (const struct bdev_rw *o = rw->rw_ctx->waiting.head; o && o != stop;
	     o = o->rw_wait_next)
		if (o->rw_need_lock && overlaps(rw, o))
			return true;
	return false;
}

static void rw_go(struct bdev_rw *rw);
static void rw_finish(struct bdev_rw *rw, ssize_t res);

/*
 * Take the range and the bounce if both are free right now.  @queued: @rw
 * waits in ctx->waiting already.  One that fails and is not is counted as
 * waiting in the same hold of mu, so that a release on another loop that
 * comes next sees it and sends the wake-up.
 */
static bool rw_try_acquire(struct bdev_rw *rw, bool queued)
{
	struct bdev_rw_ctx *ctx = rw->rw_ctx;
	struct bdev_rw_locks *lk = ctx->locks;
	bool ok;

	pthread_mutex_lock(&lk->mu);
	ok = !(rw->rw_need_lock && range_locked(rw)) &&
	     !(rw->rw_need_bounce && !ctx->nr_bounce_free);
	if (ok && rw->rw_need_lock) {
		rw->rw_next = lk->locked;
		lk->locked = rw;
		ctx->nr_locked++;
	}
	/* New and refused: now waiting (+1); waiting and taken: no longer
	 * (-1); the other two cases change nothing. */
	if (ok != !queued)
		ctx->nr_waiting += ok ? -1 : 1;
	pthread_mutex_unlock(&lk->mu);
	if (ok && rw->rw_need_bounce)
		rw->rw_bounce = ctx->bounce[--ctx->nr_bounce_free];
	return ok;
}

/* Start every waiter whose range and bounce are free, oldest first; a
 * waiter never overtakes an older one on an overlapping range. */
static void rw_wake(struct bdev_rw_ctx *ctx)
{
	struct bdev_rw **pp = &ctx->waiting.head, *w;

	while ((w = *pp)) {
		if (range_wanted(w, w) || !rw_try_acquire(w, true)) {
			pp = &w->rw_wait_next;
			continue;
		}
		fifo_unlink(&ctx->waiting, pp, rw_wait_next);
		rw_go(w);
		/* rw_go may have finished I/Os and re-entered: rescan. */
		pp = &ctx->waiting.head;
	}
}

static void rw_release(struct bdev_rw *rw)
{
	struct bdev_rw_ctx *ctx = rw->rw_ctx;
	struct bdev_rw_locks *lk = ctx->locks;

	if (rw->rw_need_lock) {
		struct bdev_rw **pp = &lk->locked;
		struct bdev_rw_ctx *wake[LOOP_MAX];
		int nr_wake = 0;

		pthread_mutex_lock(&lk->mu);
		while (*pp != rw)
			pp = &(*pp)->rw_next;
		*pp = rw->rw_next;
		ctx->nr_locked--;
		/* Waiters of other loops may want this range: wake them
		 * there; this loop's own are woken by rw_finish(). */
		for (int i = 0; i < lk->nr_ctx; i++) {
			struct bdev_rw_ctx *o = lk->ctx[i];

			if (o != ctx && o->nr_waiting && !o->wake_sent) {
				o->wake_sent = true;
				wake[nr_wake++] = o;
			}
		}
		pthread_mutex_unlock(&lk->mu);
		for (int i = 0; i < nr_wake; i++)
			loop_msg(ctx->loop, wake[i]->loop, &wake[i]->wake_op);
	}
	if (rw->rw_bounce)
		ctx->bounce[ctx->nr_bounce_free++] = rw->rw_bounce;
	rw->rw_bounce = NULL;
	rw->rw_need_lock = rw->rw_need_bounce = false;
}

static void rw_finish(struct bdev_rw *rw, ssize_t res)
{
	/* rw_done may free @rw or start other I/O with it: take what the
	 * wake-up needs first. */
	struct bdev_rw_ctx *ctx = rw->rw_ctx;
	bool had = rw->rw_need_lock || rw->rw_need_bounce;

	rw_release(rw);
	rw->rw_done(rw, res);
	if (had && ctx->waiting.head)
		rw_wake(ctx);
}

static uint64_t covering_start(const struct bdev_rw *rw)
{
	return rw->rw_pos & ~(uint64_t)(rw->rw_ctx->dev->bd_align - 1);
}

static uint64_t covering_end(const struct bdev_rw *rw)
{
	uint64_t a = rw->rw_ctx->dev->bd_align;

	return (rw->rw_pos + rw->rw_len + a - 1) & ~(a - 1);
}

static void rw_req_end(struct bdev_req *req);

/* Submit @op on [@pos, @pos + @len) of @buf as rw's main request. */
static void rw_submit(struct bdev_rw *rw, enum bdev_op op, uint64_t pos,
		      char *buf, size_t len)
{
	struct pvec_iter it = { 0 };

	if (buf) {
		pvec_from_buf(rw->rw_vec, 1, buf, len, 0);
		it = pvec_iter_init(rw->rw_vec, 1);
	}
	bdev_req_init(&rw->rw_req, op, pos, len, buf ? rw->rw_vec : NULL, it,
		      rw_req_end, rw);
	rw->rw_req.br_loop = rw->rw_ctx->loop;
	bdev_submit(rw->rw_ctx->dev, &rw->rw_req);
}

/* Read the partial head and tail blocks of the covering range into the
 * bounce: two children of one parent that is never submitted itself. */
static void rw_fill(struct bdev_rw *rw)
{
	struct bdev *dev = rw->rw_ctx->dev;
	uint64_t a0 = covering_start(rw), a1 = covering_end(rw);
	uint64_t end = rw->rw_pos + rw->rw_len;
	struct bdev_req *parent = &rw->rw_req;
	int nr = 0;

	pvec_from_buf(rw->rw_vec, 1, rw->rw_bounce, a1 - a0, 0);
	bdev_req_init(parent, BDEV_READ, a0, a1 - a0, rw->rw_vec,
		      pvec_iter_init(rw->rw_vec, 1), rw_req_end, rw);
	parent->br_loop = rw->rw_ctx->loop;
	if (dev->bd_mem_align > dev->bd_align) {
		/* The tail block's place in the bounce would break the
		 * memory alignment: read the whole covering range. */
		bdev_req_child(parent, &rw->rw_sub[nr++], 0, a1 - a0, a0, NULL,
			       NULL);
	} else if (rw->rw_pos != a0)
		bdev_req_child(parent, &rw->rw_sub[nr++], 0, dev->bd_align, a0,
			       NULL, NULL);
	if (dev->bd_mem_align <= dev->bd_align && end != a1 &&
	    (nr == 0 || a1 - a0 > dev->bd_align))
		bdev_req_child(parent, &rw->rw_sub[nr++],
			       a1 - a0 - dev->bd_align, dev->bd_align,
			       a1 - dev->bd_align, NULL, NULL);
	for (int i = 0; i < nr; i++)
		bdev_submit(dev, &rw->rw_sub[i]);
	bdev_req_complete(parent, 0);
}

/*
 * Zero or discard [pos, end) on a device that takes whole blocks only: the
 * partial edge blocks are read, zeroed in the bounce and written back; the
 * aligned middle gets the op itself.  Both stages are children of rw_req.
 */
struct zero_plan {
	uint64_t head, tail; /* block offsets, or UINT64_MAX when none */
	uint64_t mid0, mid1; /* aligned middle, empty when mid0 >= mid1 */
	size_t tail_off;     /* where the tail block sits in the bounce */
};

static struct zero_plan zero_plan(const struct bdev_rw *rw)
{
	const struct bdev *dev = rw->rw_ctx->dev;
	uint64_t a = dev->bd_align, end = rw->rw_pos + rw->rw_len;
	struct zero_plan z = { UINT64_MAX, UINT64_MAX, 0, 0, 0 };

	z.mid0 = (rw->rw_pos + a - 1) & ~(a - 1);
	z.mid1 = end & ~(a - 1);
	if (rw->rw_pos != z.mid0 || z.mid0 > z.mid1)
		z.head = rw->rw_pos & ~(a - 1);
	if (end != z.mid1 && (end & ~(a - 1)) != z.head)
		z.tail = end & ~(a - 1);
	z.tail_off = a > dev->bd_mem_align ? a : dev->bd_mem_align;
	return z;
}

static void zero_child(struct bdev_rw *rw, int *nr, enum bdev_op op,
		       uint64_t pos, uint64_t len, char *buf)
{
	struct bdev_req *sub = &rw->rw_sub[*nr];
	struct pvec_iter it = { 0 };

	if (buf) {
		pvec_from_buf(&rw->rw_vec[*nr], 1, buf, len, 0);
		it = pvec_iter_init(&rw->rw_vec[*nr], 1);
	}
	bdev_req_init(sub, op, pos, len, buf ? &rw->rw_vec[*nr] : NULL, it,
		      NULL, NULL);
	bdev_req_chain(&rw->rw_req, sub);
	(*nr)++;
}

static void zero_stage(struct bdev_rw *rw)
{
	struct bdev *dev = rw->rw_ctx->dev;
	struct zero_plan z = zero_plan(rw);
	uint64_t a = dev->bd_align, end = rw->rw_pos + rw->rw_len;
	bool fill = rw->rw_stage == RW_ZERO_FILL;
	enum bdev_op op = fill ? BDEV_READ : BDEV_WRITE;
	int nr = 0;

	bdev_req_init(&rw->rw_req, op, 0, 0, NULL, (struct pvec_iter){ 0 },
		      rw_req_end, rw);
	rw->rw_req.br_loop = rw->rw_ctx->loop;
	if (!fill) {
		if (z.head != UINT64_MAX) {
			uint64_t from = rw->rw_pos - z.head;
			uint64_t to =
				(end < z.head + a ? end : z.head + a) - z.head;

			memset(rw->rw_bounce + from, 0, to - from);
		}
		if (z.tail != UINT64_MAX)
			memset(rw->rw_bounce + z.tail_off, 0, end - z.tail);
		if (z.mid0 < z.mid1)
			zero_child(rw, &nr, rw->rw_op, z.mid0, z.mid1 - z.mid0,
				   NULL);
	}
	if (z.head != UINT64_MAX)
		zero_child(rw, &nr, op, z.head, a, rw->rw_bounce);
	if (z.tail != UINT64_MAX)
		zero_child(rw, &nr, op, z.tail, a, rw->rw_bounce + z.tail_off);
	for (int i = 0; i < nr; i++)
		bdev_submit(dev, &rw->rw_sub[i]);
	bdev_req_complete(&rw->rw_req, 0);
}

static void rw_req_end(struct bdev_req *req)
{
	struct bdev_rw *rw = req->br_private;
	struct bdev_rw_ctx *ctx = rw->rw_ctx;
	uint64_t a0 = covering_start(rw);

	if (req->br_error) {
		rw_finish(rw, req->br_error);
		return;
	}
	switch (rw->rw_stage) {
	case RW_ZERO_FILL:
		rw->rw_stage = RW_ZERO_WRITE;
		zero_stage(rw);
		return;
	case RW_BOUNCE_READ:
		memcpy(rw->rw_buf, rw->rw_bounce + (rw->rw_pos - a0),
		       rw->rw_len);
		bdev_stat_add(&ctx->bytes_bounced, rw->rw_len);
		break;
	case RW_RMW_FILL:
		memcpy(rw->rw_bounce + (rw->rw_pos - a0), rw->rw_buf,
		       rw->rw_len);
		bdev_stat_add(&ctx->bytes_bounced, rw->rw_len);
		rw->rw_stage = RW_RMW_WRITE;
		rw_submit(rw, BDEV_WRITE, a0, rw->rw_bounce,
			  covering_end(rw) - a0);
		return;
	default:
		break;
	}
	rw_finish(rw, (rw->rw_op == BDEV_READ || rw->rw_op == BDEV_WRITE) ?
			      (ssize_t)rw->rw_len :
			      0);
}

static void rw_go(struct bdev_rw *rw)
{
	uint64_t a0 = covering_start(rw), a1 = covering_end(rw);

	switch (rw->rw_stage) {
	case RW_DIRECT:
		rw_submit(rw, rw->rw_op, rw->rw_pos, rw->rw_buf, rw->rw_len);
		break;
	case RW_BOUNCE_READ:
		rw_submit(rw, BDEV_READ, a0, rw->rw_bounce, a1 - a0);
		break;
	case RW_RMW_FILL:
		rw_fill(rw);
		break;
	case RW_ZERO_FILL:
		zero_stage(rw);
		break;
	}
}

void bdev_rw_start(struct bdev_rw_ctx *ctx, struct bdev_rw *rw, enum bdev_op op,
		   uint64_t pos, void *buf, size_t len, bdev_rw_done_fn done,
		   void *private)
{
	struct bdev *dev = ctx->dev;
	bool data = op == BDEV_READ || op == BDEV_WRITE;
	bool aligned;

	rw->rw_ctx = ctx;
	rw->rw_op = op;
	rw->rw_buf = buf;
	rw->rw_done = done;
	rw->rw_private = private;
	rw->rw_bounce = NULL;
	rw->rw_next = NULL;
	rw->rw_stage = RW_DIRECT;
	rw->rw_need_lock = rw->rw_need_bounce = false;
	/* Compare pos with the size first: size - pos must not underflow. */
	if (op != BDEV_FLUSH && pos >= dev->bd_size) {
		rw->rw_pos = pos;
		rw->rw_len = 0;
		done(rw, op == BDEV_READ ? 0 : -ENOSPC);
		return;
	}
	if (op != BDEV_FLUSH && len > dev->bd_size - pos)
		len = dev->bd_size - pos;
	if ((data && len > ctx->max_io_bytes) || (data && !buf)) {
		done(rw, -EINVAL);
		return;
	}
	rw->rw_pos = pos;
	rw->rw_len = len;
	if (op == BDEV_FLUSH) {
		rw_go(rw);
		return;
	}
	if (!len) {
		done(rw, 0);
		return;
	}
	aligned = !((pos | len) & (dev->bd_align - 1)) &&
		  (!data || !((uintptr_t)buf & (dev->bd_mem_align - 1)));
	rw->rw_need_lock = op != BDEV_READ;
	if (!aligned && data) {
		rw->rw_need_bounce = true;
		rw->rw_stage = op == BDEV_READ ? RW_BOUNCE_READ : RW_RMW_FILL;
		if (op == BDEV_READ)
			bdev_stat_add(&ctx->unaligned_reads, 1);
		else
			bdev_stat_add(&ctx->rmw_ops, 1);
	} else if (!aligned && !dev->bd_byte_zero) {
		rw->rw_need_bounce = true;
		rw->rw_stage = RW_ZERO_FILL;
		bdev_stat_add(&ctx->rmw_ops, 1);
	}
	rw->rw_lock_start = covering_start(rw);
	rw->rw_lock_end = covering_end(rw);
	if (!rw->rw_need_lock && !rw->rw_need_bounce) {
		rw_go(rw);
		return;
	}
	if (range_wanted(rw, NULL)) {
		pthread_mutex_lock(&ctx->locks->mu);
		ctx->nr_waiting++;
		pthread_mutex_unlock(&ctx->locks->mu);
	} else if (rw_try_acquire(rw, false)) {
		rw_go(rw);
		return;
	}
	bdev_stat_add(&ctx->lock_waits, 1);
	fifo_push(&ctx->waiting, rw, rw_wait_next);
}
