/* raid56_stripe: stripe locks (one op per stripe at a time, first come,
 * first served), the merging and holding of partial writes, the op pool. */
#include "blockdev/levels/raid56_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

/* Writes into part of a stripe are merged with their neighbours on the
 * same stripe while they wait (md's stripe cache does this): the merged
 * op's data vector re-slices every request's pages, each chunk's part in
 * no more pieces than a member takes in one request (l_vec_cap).  A
 * partial write that could run is held (plugged) until the end of the
 * batch of requests it came in, and a sequential one sometimes longer
 * (hold_ns()), hoping the rest of its stripe comes: the stripe then goes
 * out as a full-stripe write, no reads. */
#define R56_HOLD_MIN_NS 100000ull
#define R56_HOLD_MAX_NS 100000000ull
#define R56_IDLE_HOLD_NS 500000ull

static void start_waiters(struct r56_shard *sh, const struct stripe_op *freed);

static bool overlap(const struct stripe_op *a, const struct stripe_op *b)
{
	return a->so_stripe < b->so_stripe + b->so_nstripes &&
	       b->so_stripe < a->so_stripe + a->so_nstripes;
}

/* Whether @so overlaps an op in @list before @stop (NULL: the whole list). */
static bool overlaps_any(const struct stripe_op *list,
			 const struct stripe_op *stop,
			 const struct stripe_op *so)
{
	for (const struct stripe_op *o = list; o != stop; o = o->so_next)
		if (overlap(o, so))
			return true;
	return false;
}

/* The in-chunk columns [so_c0, so_c1) that data bytes [so_lo, so_hi) of
 * the stripe touch in any chunk. */
void so_set_cols(struct stripe_op *so)
{
	uint64_t a, b;

	so->so_c0 = so->so_l->l_chunk;
	so->so_c1 = 0;
	for (int j = 0; j < r56_of(so->so_l)->ndata; j++) {
		if (!so_touched(so, j, &a, &b))
			continue;
		if (a < so->so_c0)
			so->so_c0 = a;
		if (b > so->so_c1)
			so->so_c1 = b;
	}
}

/* Whether the op's data bytes are its whole stripe. */
static bool whole_stripe(const struct r56 *r, const struct stripe_op *so)
{
	return so->so_lo == 0 && so->so_hi == r->ndata * r->chunk;
}

static bool mergeable(const struct stripe_op *so)
{
	return so->so_has_req && so->so_kind == SO_WRITE &&
	       so->so_nstripes == 1;
}

/* Merge write @so into the newest waiting op on its stripe when their
 * bytes are neighbours: that op then writes both, its vector the two
 * requests' vectors back to back, and @so completes with it.  The newest
 * waiter is the one @so would queue behind, so the order of overlapping
 * writes is kept. */
static bool so_merge(struct r56_shard *sh, struct stripe_op *so)
{
	const struct r56 *r = r56_of(so->so_l);
	struct stripe_op *w = NULL, *first, *second;
	/* unused by @so: build the new one here */
	struct pvec *v = so->so_dvec;
	uint64_t c = r->chunk;
	int cap = r->ndata * (int)so->so_l->l_vec_cap, n;
	struct pvec_iter it;

	if (!mergeable(so))
		return false;
	for (struct stripe_op *o = sh->waiting.head; o; o = o->so_next)
		if (overlap(o, so))
			w = o;
	if (!w || !mergeable(w))
		return false;
	if (w->so_hi == so->so_lo) {
		first = w;
		second = so;
	} else if (so->so_hi == w->so_lo) {
		first = so;
		second = w;
	} else {
		return false;
	}
	n = pvec_append(v, 0, cap, first->so_vec, first->so_it);
	if (n >= 0)
		n = pvec_append(v, n, cap, second->so_vec, second->so_it);
	if (n < 0)
		return false;
	/* Each data chunk's part goes to its member as one request. */
	it = pvec_iter_init(v, n);
	for (uint64_t s = first->so_lo / c * c; s < second->so_hi; s += c) {
		uint64_t a = s > first->so_lo ? s : first->so_lo;
		uint64_t b = s + c < second->so_hi ? s + c : second->so_hi;
		struct pvec_iter part;

		pvec_slice(v, it, a - first->so_lo, b - a, &part);
		if (pvec_runs(v, part) > (int)so->so_l->l_vec_cap)
			return false;
	}
	so->so_dvec = w->so_dvec;
	w->so_dvec = v;
	w->so_vec = v;
	w->so_it = pvec_iter_init(w->so_dvec, n);
	w->so_lo = first->so_lo;
	w->so_hi = second->so_hi;
	so_set_cols(w);
	so->so_next = w->so_peers;
	w->so_peers = so;
	R56_COUNT(so, merged_writes, 1);
	sh->seq_end = w->so_stripe * r->ndata * r->chunk + w->so_hi;
	if (w->so_plugged && whole_stripe(r, w)) {
		/* Full now: nothing more to wait for. */
		w->so_plugged = false;
		start_waiters(sh, NULL);
	}
	return true;
}

/* How long past its batch partial write @so may wait for neighbours.
 * Only a write that continues a sequential stream (@seq) waits, and only
 * when more of its stripe is likely on the way:
 *  - other stripe ops run: the writer's next writes are stuck behind
 *    them, so wait up to one write op's time (a moving average);
 *  - the array is idle but the last write op carried enough requests to
 *    fill a stripe from its start, where this one begins: the writer keeps
 *    that many in flight, and the rest were sent with this one, so wait a
 *    little (at most R56_IDLE_HOLD_NS).
 * A writer at queue depth 1 meets neither and never waits. */
static uint64_t hold_ns(const struct r56_shard *sh, const struct stripe_op *so,
			bool seq)
{
	const struct r56 *r = r56_of(so->so_l);
	uint64_t op = sh->write_op_ns;

	op = op < R56_HOLD_MIN_NS ? R56_HOLD_MIN_NS :
	     op > R56_HOLD_MAX_NS ? R56_HOLD_MAX_NS :
				    op;
	if (!seq)
		return 0;
	if (sh->active)
		return op;
	if (!so->so_lo &&
	    (uint64_t)sh->last_write_reqs * so->so_hi >= r->ndata * r->chunk)
		return op < R56_IDLE_HOLD_NS ? op : R56_IDLE_HOLD_NS;
	return 0;
}

void so_lock_or_wait(struct stripe_op *so)
{
	struct r56_shard *sh = so->so_sh;
	const struct r56 *r = r56_of(so->so_l);
	uint64_t at = so->so_stripe * r->ndata * r->chunk;
	bool blocked;

	so->so_next = NULL;
	so->so_plugged = false;
	if (so_merge(sh, so))
		return;
	if (mergeable(so)) {
		so->so_hold_ns = hold_ns(sh, so, at + so->so_lo == sh->seq_end);
		sh->seq_end = at + so->so_hi;
	}
	/* First come, first served per stripe: never pass a waiter. */
	blocked = overlaps_any(sh->waiting.head, NULL, so) ||
		  overlaps_any(sh->active, NULL, so);
	if (!blocked &&
	    !(so->so_loop && mergeable(so) && !whole_stripe(r, so))) {
		so->so_next = sh->active;
		sh->active = so;
		so_run(so);
		return;
	}
	if (blocked) {
		R56_COUNT(so, stripe_waits, 1);
	} else {
		so->so_plugged = true;
		so->so_plug_ns = loop_now_ns();
		loop_hook_arm(so->so_loop, &sh->unplug);
	}
	fifo_push(&sh->waiting, so, so_next);
}

/* Start every waiter that overlaps neither a running op nor an older
 * waiter, nor is plugged; with @freed, only those it may have held up. */
static void start_waiters(struct r56_shard *sh, const struct stripe_op *freed)
{
	struct stripe_op **pp, *w;

	/* so_run() may finish ops and re-enter here, which changes both
	 * lists: start one, then look again from the top. */
again:
	for (pp = &sh->waiting.head; (w = *pp); pp = &w->so_next) {
		if ((freed && !overlap(w, freed)) || w->so_plugged ||
		    overlaps_any(sh->active, NULL, w) ||
		    overlaps_any(sh->waiting.head, w, w))
			continue;
		fifo_unlink(&sh->waiting, pp, so_next);
		w->so_next = sh->active;
		sh->active = w;
		so_run(w);
		goto again;
	}
}

void so_unlock(struct stripe_op *so)
{
	struct r56_shard *sh = so->so_sh;
	struct stripe_op **pp = &sh->active;

	while (*pp != so)
		pp = &(*pp)->so_next;
	*pp = so->so_next;
	start_waiters(sh, so);
}

/* The end of a batch of requests, or the time a held write was due: what
 * was held for neighbours and is not to be held longer goes. */
void r56_unplug(struct loop_hook *h)
{
	struct r56_shard *sh = container_of(h, struct r56_shard, unplug);
	uint64_t now = loop_now_ns(), next = 0;

	for (struct stripe_op *w = sh->waiting.head; w; w = w->so_next) {
		if (!w->so_plugged)
			continue;
		if (now - w->so_plug_ns < w->so_hold_ns) {
			if (!next || w->so_plug_ns + w->so_hold_ns < next)
				next = w->so_plug_ns + w->so_hold_ns;
			continue;
		}
		w->so_plugged = false;
	}
	start_waiters(sh, NULL);
	if (next)
		loop_hook_arm_at(h->lh_loop, h, next);
}

struct stripe_op *so_alloc(struct r56_shard *sh)
{
	struct layer *l = sh->sh_l;
	const struct r56 *r = r56_of(l);
	struct stripe_op *so = calloc(1, sizeof(*so));
	size_t nvec = (size_t)l->l_nr * r->vec_cap;

	if (!so)
		return NULL;
	so->so_iov = calloc(nvec, sizeof(*so->so_iov));
	so->so_mvec = r->batch_max > 1 ? calloc(nvec, sizeof(*so->so_mvec)) :
					 NULL;
	so->so_dvec =
		calloc((size_t)r->ndata * l->l_vec_cap, sizeof(*so->so_dvec));
	if (!so->so_iov || (r->batch_max > 1 && !so->so_mvec) || !so->so_dvec ||
	    posix_memalign((void **)&so->so_buf, 4096,
			   (size_t)r->scratch_cols * l->l_chunk)) {
		free(so->so_iov);
		free(so->so_mvec);
		free(so->so_dvec);
		free(so);
		return NULL;
	}
	so->so_l = l;
	so->so_sh = sh;
	return so;
}

void so_free(struct stripe_op *so)
{
	free(so->so_iov);
	free(so->so_mvec);
	free(so->so_dvec);
	free(so->so_buf);
	free(so);
}

/* Ops grow to max_ops and are then recycled; NULL means wait. */
struct stripe_op *so_get(struct r56_shard *sh)
{
	struct stripe_op *so = sh->free_ops;

	if (so) {
		sh->free_ops = so->so_next;
		return so;
	}
	if (sh->nr_ops >= sh->max_ops || !(so = so_alloc(sh)))
		return NULL;
	sh->nr_ops++;
	return so;
}

void so_put(struct stripe_op *so)
{
	struct r56_shard *sh = so->so_sh;

	if (sh->nr_ops > sh->max_ops) {
		/* Shard 0 ran a collapsed array with the others' share. */
		sh->nr_ops--;
		so_free(so);
	} else {
		so->so_next = sh->free_ops;
		sh->free_ops = so;
	}
	if (!fifo_empty(&sh->cursors))
		r56_resume(sh);
}

void so_finish(struct stripe_op *so, int err)
{
	if (!so->so_has_req) {
		/* Background: publish progress (rebuild_pos) before a
		 * waiter on this stripe plans its reads, then go on. */
		so->so_done(so, err);
		return;
	}
	struct r56_shard *sh = so->so_sh;
	int reqs = 1;

	if (so->so_kind == SO_WRITE) {
		int64_t d = (int64_t)(loop_now_ns() - so->so_run_ns) -
			    (int64_t)sh->write_op_ns;

		sh->write_op_ns += d / 8;
	}
	so_unlock(so);
	for (; so->so_peers; reqs++) {
		struct stripe_op *p = so->so_peers;

		so->so_peers = p->so_next;
		bdev_req_complete(&p->so_req, err);
		so_put(p);
	}
	if (so->so_kind == SO_WRITE)
		sh->last_write_reqs = reqs;
	bdev_req_complete(&so->so_req, err);
	so_put(so);
}
