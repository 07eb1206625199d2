/* raid56_sweep: rebuild and scrub, one stripe at a time in the background
 * on an op of their own, under the same stripe locks as user I/O. */
#include "blockdev/levels/raid56_int.h"

#include <errno.h>
#include <stdlib.h>

struct r56_sweep {
	struct layer *l;
	struct stripe_op *so; /* its own op: user I/O never starves it */
	enum so_kind kind;
	uint64_t next_stripe;
	int inflight;
	bool stepping, step_due; /* inside sweep_step(); a stripe ended there */
	int err;
	void (*done)(struct layer *l, int err);
};

static void sweep_step(struct r56_sweep *sw);

static void sweep_op_done(struct stripe_op *so, int err)
{
	struct r56_sweep *sw = so->so_private;

	sw->inflight--;
	if (err && !sw->err)
		sw->err = err;
	if (sw->kind == SO_REBUILD && !sw->err) {
		struct layer *l = sw->l;
		/* Stripes complete in order (one in flight at a time). */
		__atomic_store_n(&l->l_rebuild_pos,
				 (so->so_stripe + 1) * l->l_chunk,
				 __ATOMIC_RELEASE);
	}
	so_unlock(so);
	sweep_step(sw);
}

/* Start the next stripe, or end the sweep (then false: @sw is gone). */
static bool sweep_next(struct r56_sweep *sw)
{
	struct layer *l = sw->l;
	struct r56 *r = r56_of(l);
	struct stripe_op *so;

	if (sw->err || sw->next_stripe >= r->stripes) {
		void (*done)(struct layer *, int) = sw->done;
		int err = sw->err;

		so_free(sw->so);
		free(sw);
		free(r->scrub_save);
		r->scrub_save = NULL;
		layer_sweep_end(l);
		if (done)
			done(l, err);
		layer_scatter(l, l->l_sweep_loop, LAYER_GATHER_SWEEP);
		return false;
	}
	so = sw->so;
	so->so_kind = sw->kind;
	so->so_stripe = sw->next_stripe++;
	so->so_nstripes = 1;
	so->so_lo = 0;
	so->so_hi = r->chunk * r->ndata;
	so->so_c0 = 0;
	so->so_c1 = r->chunk;
	so->so_tries = 0;
	so->so_rewrite = 0;
	so->so_page_end = 0;
	so->so_has_req = false;
	so->so_loop = l->l_sweep_loop;
	so->so_done = sweep_op_done;
	so->so_private = sw;
	sw->inflight++;
	l->l_sweep_pos = sw->next_stripe;
	so_lock_or_wait(so);
	return true;
}

/* Over members that complete inside their submit (null(), mem()) a stripe
 * ends inside so_lock_or_wait(): the next one starts from the loop here,
 * not a frame deeper per stripe (which overflowed the stack). */
static void sweep_step(struct r56_sweep *sw)
{
	if (sw->inflight)
		return;
	if (sw->stepping) {
		sw->step_due = true;
		return;
	}
	sw->stepping = true;
	do {
		sw->step_due = false;
		if (!sweep_next(sw))
			return;
	} while (sw->step_due);
	sw->stepping = false;
}

static void sweep_start(void *sw)
{
	sweep_step(sw);
}

/* The level's l_sweep: walk every stripe in the background, rebuilding the
 * members in state rebuilding or checking (repairing) parity; @done at the
 * end.  Returns 0, -EBUSY when a sweep already runs, or -ENOMEM. */
int r56_sweep(struct layer *l, struct loop *loop, enum layer_sweep_kind kind,
	      void (*done)(struct layer *l, int err))
{
	static const enum so_kind op_of[] = {
		[LAYER_SWEEP_REBUILD] = SO_REBUILD,
		[LAYER_SWEEP_CHECK] = SO_CHECK,
		[LAYER_SWEEP_REPAIR] = SO_REPAIR,
	};
	struct r56 *r = r56_of(l);
	struct r56_sweep *sw;

	if (l->l_sweep_running)
		return -EBUSY;
	sw = calloc(1, sizeof(*sw));
	if (kind != LAYER_SWEEP_REBUILD)
		r->scrub_save = malloc(r->chunk * r->nparity);
	if (!sw || !(sw->so = so_alloc(&r->sh0)) ||
	    (kind != LAYER_SWEEP_REBUILD && !r->scrub_save)) {
		if (sw && sw->so)
			so_free(sw->so);
		free(sw);
		free(r->scrub_save);
		r->scrub_save = NULL;
		return -ENOMEM;
	}
	sw->l = l;
	sw->kind = op_of[kind];
	sw->done = done;
	layer_sweep_begin(l, loop, kind, r->stripes, r->chunk);
	/* Its stripe locks are shard 0's: no other loop may hold one. */
	layer_gather(l, loop, LAYER_GATHER_SWEEP, sweep_start, sw);
	return 0;
}
