/* raid56: RAID-5 (P) and RAID-6 (P+Q) in Linux md's default left-symmetric
 * layouts.  Healthy reads go through the mapped splitter; writes and
 * degraded reads become stripe ops (raid56_int.h); creation, descriptors. */
#include "blockdev/levels/raid56_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sharded (@mine), the bytes of @req from @off on that lie in @sh's
 * groups: *@off moves to the first of them, and the result is where that
 * group's part ends.  Otherwise all of them. */
static uint64_t own_part(const struct r56_shard *sh, const struct bdev_req *req,
			 uint64_t *off, bool mine)
{
	const struct r56 *r = r56_of(sh->sh_l);
	uint64_t g, end;

	if (!mine || *off >= req->br_len)
		return req->br_len;
	g = (req->br_pos + *off) / r->group_bytes;
	g += (sh->sh_id + r->nr_shards - g % r->nr_shards) % r->nr_shards;
	if (g * r->group_bytes > req->br_pos + *off)
		*off = g * r->group_bytes - req->br_pos;
	if (*off >= req->br_len)
		return *off = req->br_len;
	end = (g + 1) * r->group_bytes - req->br_pos;
	return end < req->br_len ? end : req->br_len;
}

/* Hand the request's bytes from cursor @off on to @sh's stripe ops (only
 * those in its own groups when @mine); returns the offset reached (less
 * than br_len when ops ran out). */
static uint64_t r56_issue(struct r56_shard *sh, struct bdev_req *req,
			  uint64_t off, enum so_kind kind, bool mine)
{
	const struct r56 *r = r56_of(sh->sh_l);
	uint64_t sdata = r->chunk * r->ndata;

	for (;;) {
		uint64_t part_end = own_part(sh, req, &off, mine);
		uint64_t pos = req->br_pos + off, stripe = pos / sdata;
		uint64_t lo = pos % sdata, hi = sdata;
		struct stripe_op *so;
		uint64_t nfull = lo ? 0 : (part_end - off) / sdata;
		uint32_t ns = 1;

		if (off >= req->br_len)
			break;
		if (hi - lo > part_end - off)
			hi = lo + (part_end - off);
		if (kind == SO_WRITE && nfull > 1 && r->batch_max > 1) {
			ns = nfull < r->batch_max ? (uint32_t)nfull :
						    r->batch_max;
			hi = ns * sdata;
		} else if (kind == SO_ZERO && nfull > 1) {
			ns = nfull < R56_ZERO_BATCH_MAX ? (uint32_t)nfull :
							  R56_ZERO_BATCH_MAX;
			hi = ns * sdata;
		}
		so = so_get(sh);
		if (!so)
			break;
		so->so_kind = kind;
		so->so_stripe = stripe;
		so->so_nstripes = ns;
		so->so_lo = lo;
		so->so_hi = hi;
		so->so_tries = 0;
		so->so_rewrite = 0;
		so->so_has_req = true;
		so->so_loop = req->br_loop;
		so->so_peers = NULL;
		so_set_cols(so);
		bdev_req_child(req, &so->so_req, off, hi - lo, pos, NULL, NULL);
		so->so_vec = so->so_req.br_vec;
		so->so_it = so->so_req.br_iter;
		off += hi - lo;
		so_lock_or_wait(so);
	}
	return off;
}

static struct r56_cursor *cursor_get(struct r56_shard *sh)
{
	struct r56_cursor *c = sh->cur_free;

	if (c)
		sh->cur_free = c->rc_next;
	else
		c = malloc(sizeof(*c));
	if (c)
		c->rc_sh = sh;
	return c;
}

static void cursor_put(struct r56_cursor *c)
{
	c->rc_next = c->rc_sh->cur_free;
	c->rc_sh->cur_free = c;
}

static void r56_defer(struct r56_shard *sh, struct bdev_req *req, uint64_t off,
		      bool mine)
{
	struct r56_cursor *c = cursor_get(sh);

	if (!c) {
		bdev_req_complete(req, -ENOMEM);
		return;
	}
	c->rc_req = req;
	c->rc_off = off;
	c->rc_mine = mine;
	fifo_push(&sh->cursors, c, rc_next);
}

static enum so_kind kind_of(const struct bdev_req *req)
{
	if (req->br_op == BDEV_READ)
		return SO_READ;
	return req->br_op == BDEV_WRITE ? SO_WRITE : SO_ZERO;
}

void r56_resume(struct r56_shard *sh)
{
	/* Over members that complete inside their submit (null(), mem()) an
	 * op issued below ends, and frees itself, in r56_issue(): the loop
	 * here goes on with the request, not a second resume from its old
	 * offset. */
	if (sh->resuming)
		return;
	sh->resuming = true;
	while (!fifo_empty(&sh->cursors) && sh->free_ops) {
		struct r56_cursor *c = sh->cursors.head;
		struct bdev_req *req = c->rc_req;

		c->rc_off =
			r56_issue(sh, req, c->rc_off, kind_of(req), c->rc_mine);
		if (c->rc_off < req->br_len)
			break;
		fifo_pop(&sh->cursors, rc_next);
		cursor_put(c);
		bdev_req_complete(req, 0); /* the submitter's reference */
	}
	sh->resuming = false;
}

/* @req's stripes, or with @mine those in @sh's groups, become stripe ops
 * (in request order behind the requests already waiting for ops). */
static void shard_submit(struct r56_shard *sh, struct bdev_req *req, bool mine)
{
	uint64_t off = !fifo_empty(&sh->cursors) ?
			       0 :
			       r56_issue(sh, req, 0, kind_of(req), mine);

	if (off < req->br_len) {
		r56_defer(sh, req, off, mine);
		return;
	}
	bdev_req_complete(req, 0);
}

/* ---- several loops: stripes in groups, each group one loop's --------- */

/* The shard @lp works on: its own when the array has one per loop. */
static struct r56_shard *shard_of(struct r56 *r, const struct loop *lp)
{
	return r->sh[r->nr_shards > 1 ? loop_id(lp) : 0];
}

static struct r56_piece *piece_get(struct r56_shard *sh)
{
	struct r56_piece *pc = sh->pieces;

	if (pc)
		sh->pieces = pc->pc_next;
	else
		pc = malloc(sizeof(*pc));
	if (pc)
		pc->pc_from = sh;
	return pc;
}

/* On the loop the piece came from: back to its list, then the parent. */
static void piece_end(struct bdev_req *req)
{
	struct r56_piece *pc = req->br_private;
	struct r56_shard *sh = pc->pc_from;

	sh->pieces_out--;
	pc->pc_next = sh->pieces;
	sh->pieces = pc;
}

static void piece_run(struct loop_op *op, int res, unsigned flags)
{
	struct bdev_req *req = container_of(op, struct bdev_req, br_loop_op);
	struct r56_piece *pc = req->br_private;
	struct r56 *r = r56_of(pc->pc_from->sh_l);

	(void)res;
	(void)flags;
	shard_submit(shard_of(r, req->br_loop), req, true);
}

static void r56_stripes(struct layer *l, struct bdev_req *req);

/* Sharded: every loop with a group of stripes in @req takes the part
 * from its first such group to its last and works on its own groups in
 * it: this loop's here, another's as a piece sent there and back.  So a
 * request makes at most one piece per loop, however many groups it spans
 * (a discard of the whole array). */
static void r56_split(struct layer *l, struct bdev_req *req)
{
	struct r56 *r = r56_of(l);
	unsigned id = loop_id(req->br_loop), n = (unsigned)r->nr_shards;
	uint64_t g0 = req->br_pos / r->group_bytes;
	uint64_t g1 = (req->br_pos + req->br_len - 1) / r->group_bytes;
	bool local = false;

	for (unsigned k = 0; k < n && k <= g1 - g0; k++) {
		unsigned to = (unsigned)((g0 + k) % n);
		uint64_t first = g0 + k, last = g1 - (g1 - first) % n;
		uint64_t off =
			first == g0 ? 0 : first * r->group_bytes - req->br_pos;
		uint64_t end = (last + 1) * r->group_bytes - req->br_pos;
		struct r56_piece *pc;

		if (to == id) {
			local = true;
			continue;
		}
		pc = piece_get(r->sh[id]);
		if (!pc) {
			bdev_req_complete(req, -ENOMEM);
			return;
		}
		if (end > req->br_len)
			end = req->br_len;
		bdev_req_child(req, &pc->pc_req, off, end - off,
			       req->br_pos + off, piece_end, pc);
		r->sh[id]->pieces_out++;
		bdev_stat_add(&r->sh[id]->st.pieces_handed, 1);
		pc->pc_req.br_home = req->br_loop;
		pc->pc_req.br_loop = loop_by_id(to);
		pc->pc_req.br_loop_op.lo_done = piece_run;
		loop_msg(req->br_loop, pc->pc_req.br_loop,
			 &pc->pc_req.br_loop_op);
	}
	if (local)
		shard_submit(r->sh[id], req, true);
	else
		bdev_req_complete(req, 0);
}

/* Gathering: pieces this loop sent to others are back. */
static bool r56_drained(struct layer *l)
{
	return !r56_of(l)->sh0.pieces_out;
}

/* Gathered: every stripe is shard 0's, with the whole op budget. */
static void r56_gathered(struct layer *l)
{
	struct r56 *r = r56_of(l);

	r->sh0.max_ops = r->max_ops;
}

/* Scattering: shard 0's ops (which may lie in other loops' groups) are
 * done. */
static bool r56_settled(struct layer *l)
{
	struct r56_shard *sh0 = &r56_of(l)->sh0;

	return !sh0->active && fifo_empty(&sh0->waiting) &&
	       fifo_empty(&sh0->cursors);
}

static void r56_scattered(struct layer *l)
{
	struct r56 *r = r56_of(l);

	r->sh0.max_ops = r->shard_ops; /* so_put() frees the rest */
}

static const struct layer_spread_ops r56_spread_ops = {
	.reads_stay = true,
	.drained = r56_drained,
	.gathered = r56_gathered,
	.settled = r56_settled,
	.scattered = r56_scattered,
	.go = r56_stripes,
};

/* A write or a degraded read: stripe ops, on the shards the array's
 * state on several loops says. */
static void r56_stripes(struct layer *l, struct bdev_req *req)
{
	struct r56 *r = r56_of(l);

	/* A request with no loop is a unit test's, on one thread. */
	if (!req->br_loop) {
		shard_submit(&r->sh0, req, false);
		return;
	}
	if (r->nr_shards > 1 && loop_id(req->br_loop)) {
		r56_split(l, req);
		return;
	}
	if (layer_spread_hold(l, req))
		return;
	if (l->l_spread.ls_mode == LAYER_SPREAD)
		r56_split(l, req);
	else
		shard_submit(&r->sh0, req, false);
}

/* Stripe ops are loop 0's while it owns the array (gathered, or moving):
 * a request another loop took meanwhile moves there.  Those are the reads
 * that stayed on their loop (bd_reads_stay) and turn out to need stripe
 * ops, and a request counted just before loop 0 took the array over. */
static bool r56_moved(struct layer *l, struct bdev_req *req)
{
	struct loop *owner =
		req->br_loop && loop_id(req->br_loop) ?
			__atomic_load_n(&l->l_bdev.bd_owner, __ATOMIC_SEQ_CST) :
			NULL;

	if (!owner || owner == req->br_loop)
		return false;
	bdev_req_move(req, owner);
	return true;
}

/* A write, a degraded read or a read again from parity: stripe ops,
 * which always involve several members (a split, counted on the loop that
 * runs them). */
static void r56_go_stripes(struct layer *l, struct bdev_req *req)
{
	if (r56_moved(l, req))
		return;
	bdev_stat_add(&layer_stats_of(l, req->br_loop)->splits, 1);
	r56_stripes(l, req);
}

/* A healthy read failed on a member: read it again through stripe ops,
 * which rebuild what the member cannot read from parity and write it
 * back, or fail the member (stage_end()). */
static void healthy_read_end(struct bdev_req *sub)
{
	struct r56_cursor *c = sub->br_private;
	struct layer *l = c->rc_l;
	struct r56 *r = r56_of(l);
	struct bdev_req *req = c->rc_req;
	int bad = layer_nr_bad(l);

	cursor_put(c);
	if (!sub->br_error || bad > r->nparity) {
		bdev_req_complete(req, sub->br_error);
		return;
	}
	/* The pass from parity is a split of its own. */
	r56_go_stripes(l, req);
}

static void r56_submit(struct bdev *dev, struct bdev_req *req)
{
	struct layer *l = layer_of(dev);
	struct r56 *r = r56_of(l);

	switch (req->br_op) {
	case BDEV_FLUSH:
		layer_submit_all(l, req);
		return;
	case BDEV_READ:
		if (!layer_nr_bad(l)) {
			struct r56_cursor *c =
				cursor_get(shard_of(r, req->br_loop));

			if (!c) {
				bdev_req_complete(req, -ENOMEM);
				return;
			}
			c->rc_req = req;
			c->rc_l = l;
			bdev_req_init(&c->rc_sub, BDEV_READ, req->br_pos,
				      req->br_len, req->br_vec, req->br_iter,
				      healthy_read_end, c);
			bdev_req_like(&c->rc_sub, req);
			layer_submit_mapped(l, &c->rc_sub);
			return;
		}
		break;
	default:
		break;
	}
	r56_go_stripes(l, req);
}

void raid56_stats(const struct bdev *dev, struct raid56_stats *out)
{
	const struct r56 *r = r56_of(layer_of((struct bdev *)dev));

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < r->nr_shards; i++) {
		const uint64_t *from = (const uint64_t *)&r->sh[i]->st;
		uint64_t *to = (uint64_t *)out;

		for (size_t k = 0; k < sizeof(*out) / 8; k++)
			to[k] += bdev_stat_read(&from[k]);
	}
}

/* ---- creation ------------------------------------------------------------ */

static void shard_init(struct r56_shard *sh, struct layer *l, unsigned id,
		       int max_ops)
{
	sh->sh_l = l;
	sh->sh_id = id;
	sh->max_ops = max_ops;
	sh->unplug.lh_fn = r56_unplug;
}

static void shard_free(struct r56_shard *sh)
{
	loop_hook_disarm(&sh->unplug);
	while (sh->free_ops) {
		struct stripe_op *so = sh->free_ops;

		sh->free_ops = so->so_next;
		so_free(so);
	}
	while (sh->cur_free) {
		struct r56_cursor *c = sh->cur_free;

		sh->cur_free = c->rc_next;
		free(c);
	}
	while (sh->pieces) {
		struct r56_piece *pc = sh->pieces;

		sh->pieces = pc->pc_next;
		free(pc);
	}
}

static void r56_free(struct layer *l)
{
	struct r56 *r = r56_of(l);

	if (!r)
		return;
	free(r->scrub_save);
	for (int i = 0; i < r->nr_shards; i++) {
		shard_free(r->sh[i]);
		if (i)
			free(r->sh[i]);
	}
	free(r);
}

/* The kind's bk_share: a shard per loop, each owning every nr_loops-th
 * group of stripes.  A group is at least 1 MiB of data and whole
 * batches, so that a batch of full stripes, and most large requests,
 * stay on one loop; random writes spread evenly. */
static int r56_share(struct bdev *dev, int nr_loops)
{
	struct layer *l = layer_of(dev);
	struct r56 *r = r56_of(l);
	uint64_t sdata = r->chunk * r->ndata, stripes;
	int per = r->max_ops / nr_loops;

	if (r->nr_shards > 1 || nr_loops < 2)
		return 0;
	if (per < 4)
		per = 4;
	for (int i = 1; i < nr_loops; i++) {
		r->sh[i] = calloc(1, sizeof(*r->sh[i]));
		if (!r->sh[i]) {
			while (--i > 0)
				free(r->sh[i]);
			return -ENOMEM;
		}
		shard_init(r->sh[i], l, (unsigned)i, per);
	}
	r->sh0.max_ops = r->shard_ops = per;
	stripes = ((1u << 20) + sdata - 1) / sdata;
	stripes = (stripes + r->batch_max - 1) / r->batch_max * r->batch_max;
	r->group_bytes = stripes * sdata;
	r->nr_shards = nr_loops;
	layer_spread_start(l, &r56_spread_ops);
	return 0;
}

static const struct bdev_ops r56_ops = {
	.submit = r56_submit,
	.destroy = layer_destroy,
};

int raid56_create(int nparity, struct bdev **members, int nr,
		  uint64_t data_offset, uint64_t chunk, size_t max_io_bytes,
		  uint32_t in_segs, struct bdev **out, char *err, size_t errlen)
{
	uint64_t msize;
	struct layer *l;
	struct r56 *r;

	if (nr < nparity + 2) {
		snprintf(err, errlen,
			 "raid%d needs at least %d members, got %d",
			 nparity == 1 ? 5 : 6, nparity + 2, nr);
		layer_free_members(members, nr);
		return -EINVAL;
	}
	if (layer_check_chunk(members, nr, data_offset, chunk, &msize, err,
			      errlen)) {
		layer_free_members(members, nr);
		return -EINVAL;
	}
	if (layer_create(nparity == 1 ? &raid5_kind : &raid6_kind, members, nr,
			 chunk, max_io_bytes, in_segs, &r56_ops, &l)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		layer_destroy(&l->l_bdev);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->nparity = nparity;
	r->ndata = nr - nparity;
	r->chunk = chunk;
	r->stripes = msize / chunk;
	r->batch_max = chunk < R56_BATCH_BYTES ? R56_BATCH_BYTES / chunk : 1;
	r->vec_cap = l->l_vec_cap + 2 * r->batch_max;
	r->scratch_cols = r->batch_max * nparity > (uint32_t)nr ?
				  r->batch_max * nparity :
				  (uint32_t)nr;
	/* Bound the ops' scratch to ~64 MiB. */
	r->max_ops = (int)((64ull << 20) / ((uint64_t)r->scratch_cols * chunk));
	if (r->max_ops < 4)
		r->max_ops = 4;
	if (r->max_ops > 256)
		r->max_ops = 256;
	shard_init(&r->sh0, l, 0, r->max_ops);
	r->sh[0] = &r->sh0;
	r->nr_shards = 1;
	l->l_private = r;
	l->l_free_private = r56_free;
	l->l_sweep = r56_sweep;
	l->l_autofail = true;
	l->l_mend_reads = true;
	/* Stripe ops work in whole 4k columns, like md's stripe pages. */
	if (l->l_bdev.bd_align < 4096)
		l->l_bdev.bd_align = 4096;
	l->l_member_size = msize;
	l->l_data_offset = data_offset;
	l->l_bdev.bd_size = msize / chunk * chunk * r->ndata;
	l->l_map = r56_map;
	*out = &l->l_bdev;
	return 0;
}

static int raid5_create(const struct bdev_kind_args *a, struct bdev **out,
			char *err, size_t errlen)
{
	return raid56_create(1, a->ka_members, a->ka_nr, a->ka_data_offset,
			     a->ka_chunk, a->ka_max_io_bytes, a->ka_in_segs,
			     out, err, errlen);
}

static int raid6_create(const struct bdev_kind_args *a, struct bdev **out,
			char *err, size_t errlen)
{
	return raid56_create(2, a->ka_members, a->ka_nr, a->ka_data_offset,
			     a->ka_chunk, a->ka_max_io_bytes, a->ka_in_segs,
			     out, err, errlen);
}

static int raid5_redundancy(int nr)
{
	(void)nr;
	return 1;
}

static int raid6_redundancy(int nr)
{
	(void)nr;
	return 2;
}

static void r56_stats_fields(const struct bdev *dev, bdev_stat_fn emit,
			     void *ctx)
{
	const struct layer *l = layer_of((struct bdev *)dev);
	struct raid56_stats st;

	raid56_stats(dev, &st);
	emit(ctx, "full_stripe_writes", st.full_stripe_writes);
	emit(ctx, "rmw_writes", st.rmw_writes);
	emit(ctx, "rcw_writes", st.rcw_writes);
	emit(ctx, "parity_reads", st.parity_reads);
	emit(ctx, "parity_copy_bytes", st.parity_copy_bytes);
	emit(ctx, "degraded_ops", st.degraded_ops);
	emit(ctx, "stripe_waits", st.stripe_waits);
	emit(ctx, "merged_writes", st.merged_writes);
	emit(ctx, "pieces_handed", st.pieces_handed);
	/* Stats are read on loop 0, whose the mode is. */
	emit(ctx, "stripe_loops", (uint64_t)layer_loops(l));
}

#define R56_CHUNK_OPT                                                    \
	{                                                                \
		"chunk", BDEV_OPT_CHUNK,                                 \
			offsetof(struct bdev_kind_args, ka_chunk), false \
	}

const struct bdev_kind raid5_kind = {
	.bk_name = "raid5",
	.bk_help =
		"  raid5(M, M, M, ..., chunk=SIZE)   parity (md's left-symmetric)\n",
	.bk_min_members = 3,
	.bk_max_members = LAYER_MAX_MEMBERS,
	.bk_flags = BK_ARRAY,
	.bk_opts = { R56_CHUNK_OPT },
	.bk_md_level = 5,
	.bk_redundancy = raid5_redundancy,
	.bk_rebuild_needs = "all the others",
	.bk_create = raid5_create,
	.bk_stats = r56_stats_fields,
	.bk_max_loops = layer_spread_max_loops,
	.bk_share = r56_share,
};

const struct bdev_kind raid6_kind = {
	.bk_name = "raid6",
	.bk_help = "  raid6(M, M, M, M, ..., chunk=SIZE) P+Q\n",
	.bk_min_members = 4,
	.bk_max_members = LAYER_MAX_MEMBERS,
	.bk_flags = BK_ARRAY,
	.bk_opts = { R56_CHUNK_OPT },
	.bk_md_level = 6,
	.bk_redundancy = raid6_redundancy,
	.bk_rebuild_needs = "all but one of the others",
	.bk_create = raid6_create,
	.bk_stats = r56_stats_fields,
	.bk_max_loops = layer_spread_max_loops,
	.bk_share = r56_share,
};
