/* raid56: RAID-5 (P) and RAID-6 (P+Q) in Linux md's default left-symmetric
 * layouts.  Healthy reads go through the mapped splitter; writes and
 * degraded reads become stripe ops (raid56_int.h); creation, descriptors. */
#include "blockdev/levels/raid56_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hand the request's bytes from cursor @off on to stripe ops; returns the
 * offset reached (less than br_len when ops ran out). */
static uint64_t r56_issue(struct layer *l, struct bdev_req *req, uint64_t off,
			  enum so_kind kind)
{
	struct r56 *r = r56_of(l);
	uint64_t sdata = r->chunk * r->ndata;

	while (off < req->br_len) {
		uint64_t pos = req->br_pos + off, stripe = pos / sdata;
		uint64_t lo = pos % sdata, hi = sdata;
		struct stripe_op *so;
		uint64_t nfull = lo ? 0 : (req->br_len - off) / sdata;
		uint32_t ns = 1;

		if (hi - lo > req->br_len - off)
			hi = lo + (req->br_len - off);
		if (kind == SO_WRITE && nfull > 1 && r->batch_max > 1) {
			ns = nfull < r->batch_max ? (uint32_t)nfull :
						    r->batch_max;
			hi = ns * sdata;
		} else if (kind == SO_ZERO && nfull > 1) {
			ns = nfull < R56_ZERO_BATCH_MAX ? (uint32_t)nfull :
							  R56_ZERO_BATCH_MAX;
			hi = ns * sdata;
		}
		so = so_get(l);
		if (!so)
			break;
		so->so_kind = kind;
		so->so_stripe = stripe;
		so->so_nstripes = ns;
		so->so_lo = lo;
		so->so_hi = hi;
		so->so_tries = 0;
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

static struct r56_cursor *cursor_get(struct r56 *r)
{
	struct r56_cursor *c = r->cur_free;

	if (c)
		r->cur_free = c->rc_next;
	else
		c = malloc(sizeof(*c));
	return c;
}

static void r56_defer(struct layer *l, struct bdev_req *req, uint64_t off)
{
	struct r56 *r = r56_of(l);
	struct r56_cursor *c = cursor_get(r);

	if (!c) {
		bdev_req_complete(req, -ENOMEM);
		return;
	}
	c->rc_req = req;
	c->rc_off = off;
	fifo_push(&r->cursors, c, rc_next);
}

static enum so_kind kind_of(const struct layer *l, const struct bdev_req *req)
{
	if (req->br_op == BDEV_READ)
		return SO_READ;
	(void)l;
	return req->br_op == BDEV_WRITE ? SO_WRITE : SO_ZERO;
}

void r56_resume(struct layer *l)
{
	struct r56 *r = r56_of(l);

	while (!fifo_empty(&r->cursors) && r->free_ops) {
		struct r56_cursor *c = r->cursors.head;
		struct bdev_req *req = c->rc_req;

		c->rc_off = r56_issue(l, req, c->rc_off, kind_of(l, req));
		if (c->rc_off < req->br_len)
			return;
		fifo_pop(&r->cursors, rc_next);
		c->rc_next = r->cur_free;
		r->cur_free = c;
		bdev_req_complete(req, 0); /* the submitter's reference */
	}
}

/* A healthy read failed on a member (now marked failed): read it again
 * through stripe ops, which reconstruct from parity. */
static void healthy_read_end(struct bdev_req *sub)
{
	struct r56_cursor *c = sub->br_private;
	struct layer *l = c->rc_l;
	struct r56 *r = r56_of(l);
	struct bdev_req *req = c->rc_req;
	uint64_t off;

	c->rc_next = r->cur_free;
	r->cur_free = c;
	if (!sub->br_error || l->l_nr_bad > r->nparity || !l->l_nr_bad) {
		bdev_req_complete(req, sub->br_error);
		return;
	}
	off = !fifo_empty(&r->cursors) ? 0 : r56_issue(l, req, 0, SO_READ);
	if (off < req->br_len) {
		r56_defer(l, req, off);
		return;
	}
	bdev_req_complete(req, 0);
}

static void r56_submit(struct bdev *dev, struct bdev_req *req)
{
	struct layer *l = layer_of(dev);
	struct r56 *r = r56_of(l);
	uint64_t off;

	switch (req->br_op) {
	case BDEV_FLUSH:
		layer_submit_all(l, req);
		return;
	case BDEV_READ:
		if (!l->l_nr_bad) {
			struct r56_cursor *c = cursor_get(r);

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
	/* A write or a degraded read always involves several members. */
	layer_stats_of(l, req->br_loop)->splits++;
	/* Keep request order behind earlier deferred requests. */
	off = !fifo_empty(&r->cursors) ? 0 :
					 r56_issue(l, req, 0, kind_of(l, req));
	if (off < req->br_len) {
		r56_defer(l, req, off);
		return;
	}
	bdev_req_complete(req, 0);
}

const struct raid56_stats *raid56_stats(const struct bdev *dev)
{
	return &r56_of(layer_of((struct bdev *)dev))->st;
}

/* ---- creation ------------------------------------------------------------ */

static void r56_free(struct layer *l)
{
	struct r56 *r = r56_of(l);

	if (!r)
		return;
	loop_hook_disarm(&r->unplug);
	free(r->scrub_save);
	while (r->free_ops) {
		struct stripe_op *so = r->free_ops;

		r->free_ops = so->so_next;
		so_free(so);
	}
	while (r->cur_free) {
		struct r56_cursor *c = r->cur_free;

		r->cur_free = c->rc_next;
		free(c);
	}
	free(r);
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
	r->unplug.lh_fn = r56_unplug;
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
	l->l_private = r;
	l->l_free_private = r56_free;
	l->l_sweep = r56_sweep;
	l->l_autofail = true;
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
	const struct raid56_stats *r = raid56_stats(dev);

	emit(ctx, "full_stripe_writes", r->full_stripe_writes);
	emit(ctx, "rmw_writes", r->rmw_writes);
	emit(ctx, "rcw_writes", r->rcw_writes);
	emit(ctx, "parity_reads", r->parity_reads);
	emit(ctx, "parity_copy_bytes", r->parity_copy_bytes);
	emit(ctx, "degraded_ops", r->degraded_ops);
	emit(ctx, "stripe_waits", r->stripe_waits);
	emit(ctx, "merged_writes", r->merged_writes);
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
};
