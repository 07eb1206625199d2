/* raid1: mirroring; writes go to every mirror, reads alternate between
 * them and fall back to another mirror on error (rebuild and scrub are
 * raid1_sweep.c's). */
#include "blockdev/levels/raid1_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reads and writes ---------------------------------------------------- */

static bool in_sweep_range(const struct raid1 *r, const struct bdev_req *req)
{
	return r->sweep_lo < req->br_pos + req->br_len &&
	       req->br_pos < r->sweep_hi;
}

static void mirror_read(struct layer *l, struct layer_io *io, int after);

/* A read error to mend, on its way to the fix loop. */
struct r1_mend_msg {
	struct loop_op op;
	struct layer *l;
	struct r1_fix fix;
};

static void mend_arrive(struct loop_op *op, int res, unsigned flags)
{
	struct r1_mend_msg *msg = container_of(op, struct r1_mend_msg, op);

	(void)res;
	(void)flags;
	r1_fix_add(msg->l, op->lo_to, &msg->fix);
	free(msg);
}

/*
 * @req was read from one mirror after it failed on the mirrors in @bad.
 * Failing them would leave the set a disk short for what may be one bad
 * sector, which a write remaps: as md does, they get the range written
 * back from a mirror that reads it (a fix, run where sweeps run: loop 0
 * while the set is spread), and only one that still cannot read or write
 * it is failed.  No loop to run a fix on, or no memory: failed now.
 */
static void mend(struct layer *l, const struct bdev_req *req, uint64_t bad)
{
	struct loop *to = layer_spreads(l) ? loop_by_id(0) : req->br_loop;

	for (int m = 0; m < l->l_nr; m++) {
		struct r1_fix fix = { req->br_pos, req->br_pos + req->br_len,
				      m };
		struct r1_mend_msg *msg = NULL;

		if (!(bad & (1ull << m)))
			continue;
		if (to && to == req->br_loop) {
			r1_fix_add(l, to, &fix);
			continue;
		}
		if (to)
			msg = malloc(sizeof(*msg));
		if (!msg) {
			r1_fail_unmended(l, m, to ? "no memory" : "no loop");
			continue;
		}
		msg->op.lo_done = mend_arrive;
		msg->l = l;
		msg->fix = fix;
		loop_msg(req->br_loop, to, &msg->op);
	}
}

/* All mirrors done: a read that failed tries the next mirror, and those
 * it failed on are mended once one read it; a write succeeds if one
 * mirror holds the data. */
static void mirror_io_end(struct bdev_req *req)
{
	struct layer_io *io = req->br_private;
	struct bdev_req *parent = io->li_parent;
	struct layer *l = io->li_layer;
	struct raid1 *r = raid1_of(l);
	struct r1_sweep *resume = NULL;
	int err = req->br_error;

	if (parent->br_op != BDEV_READ) {
		struct layer_io **pp = &r->at[io->li_loop_id].writes;

		while (*pp != io)
			pp = &(*pp)->li_lnext;
		*pp = io->li_lnext;
		/* A sweep step that copied this range may have raced it. */
		if (in_sweep_range(r, parent)) {
			r->sweep_dirty = true;
			if (r->sweep_waiting &&
			    !r1_writes_overlap(r, r->sweep_lo, r->sweep_hi)) {
				resume = r->sweep_waiting;
				r->sweep_waiting = NULL;
			}
		}
	}
	if (err) {
		if (parent->br_op == BDEV_READ) {
			/* Try the next readable mirror, if there is one. */
			io->li_bad |= 1ull << io->li_member;
			mirror_read(l, io, io->li_member);
			return;
		}
		/* Some mirror holds the data, but not if one could not zero:
		 * the caller hears the mirrors may differ there. */
		if (io->li_nr_failed < io->li_nr_children && err != -EOPNOTSUPP)
			err = 0;
	}
	if (parent->br_op == BDEV_READ && io->li_bad)
		mend(l, parent, io->li_bad);
	layer_io_finish(io, err);
	if (resume)
		r1_sweep_step(resume);
}

static void mirror_read(struct layer *l, struct layer_io *io, int after)
{
	struct bdev_req *req = io->li_parent;
	uint64_t end = req->br_pos + req->br_len;

	for (int k = 1; k <= l->l_nr; k++) {
		int m = (after + k) % l->l_nr;
		struct layer_child *c;

		if (!layer_readable(l, m, end) || (io->li_bad & (1ull << m)))
			continue;
		/* Re-arm the io for this attempt (mirror_io_end may be
		 * retrying). */
		io->li_nr_children = 0;
		io->li_member = m;
		bdev_req_init(&io->li_req, req->br_op, req->br_pos, req->br_len,
			      req->br_vec, req->br_iter, mirror_io_end, io);
		bdev_req_like(&io->li_req, req);
		c = layer_io_add_whole(l, io, m, req->br_pos);
		c->lc_req.br_end = layer_child_autofail_end;
		c->lc_req.br_private = io;
		layer_io_submit(l, io, 0);
		return;
	}
	layer_io_finish(io, -EIO);
}

/* A mirrored write: every mirror not failed gets the whole request. */
void r1_mirror_write(struct layer *l, struct layer_io *io)
{
	struct raid1 *r = raid1_of(l);

	if (in_sweep_range(r, io->li_parent))
		r->sweep_dirty = true;
	io->li_lnext = r->at[io->li_loop_id].writes;
	r->at[io->li_loop_id].writes = io;
	for (int i = 0; i < l->l_nr; i++) {
		struct layer_child *c;

		if (layer_member_state(l, i) == LAYER_MEMBER_FAILED)
			continue;
		c = layer_io_add_whole(l, io, i, io->li_parent->br_pos);
		c->lc_req.br_end = layer_child_autofail_end;
		c->lc_req.br_private = io;
	}
	if (!io->li_nr_children) {
		layer_io_submit(l, io, -EIO);
		return;
	}
	layer_io_submit(l, io, 0);
}

/* A read goes to one readable mirror, the next on failure; a write to
 * every mirror not failed, succeeding if one does.  A mirror that fails
 * I/O is marked failed. */
static void raid1_go(struct layer *l, struct bdev_req *req)
{
	struct raid1 *r = raid1_of(l);
	struct layer_io *io;

	io = layer_io_start(l, req, mirror_io_end);
	if (!io)
		return;
	if (req->br_op == BDEV_READ) {
		struct r1_loop *at = &r->at[io->li_loop_id];
		int start = l->l_reads_first ? 0 : at->next_read;

		/* Spread reads: the next mirror each time, unless they may
		 * differ, when every read must see the same one. */
		if (!l->l_reads_first)
			at->next_read = (start + 1) % l->l_nr;
		io->li_bad = 0;
		mirror_read(l, io, start - 1 + l->l_nr);
		return;
	}
	if (r->sweep_barrier && in_sweep_range(r, req)) {
		fifo_push(&r->held, io, li_next);
		layer_stats_of(l, req->br_loop)->held_writes++;
		return;
	}
	r1_mirror_write(l, io);
}

static void raid1_submit(struct bdev *dev, struct bdev_req *req)
{
	struct layer *l = layer_of(dev);

	if (req->br_op == BDEV_FLUSH) {
		layer_submit_all(l, req);
		return;
	}
	if (!layer_spread_hold(l, req))
		raid1_go(l, req);
}

/* Whether a mirrored write to member bytes [@lo, @hi) is in flight: a
 * sweep step starting over that range must then be redone. */
bool r1_writes_overlap(const struct raid1 *r, uint64_t lo, uint64_t hi)
{
	for (const struct layer_io *io = r->at[0].writes; io; io = io->li_lnext)
		if (io->li_parent->br_pos < hi &&
		    lo < io->li_parent->br_pos + io->li_parent->br_len)
			return true;
	return false;
}

/* ---- on several loops ---------------------------------------------------- */

/* A read changes nothing but its loop's cursor: while only md metadata
 * gathers the mirrors on loop 0 (clean: its writes must come there), reads
 * stay on their loops. */
static const struct layer_spread_ops raid1_spread_ops = {
	.reads_stay = true,
	.go = raid1_go,
};

/* The kind's bk_share: every loop runs its own requests, with its own
 * read cursor and writes in flight (struct r1_loop). */
static int raid1_share(struct bdev *dev, int nr_loops)
{
	struct layer *l = layer_of(dev);

	if (nr_loops >= 2 && !layer_spreads(l))
		layer_spread_start(l, &raid1_spread_ops);
	return 0;
}

static const struct bdev_ops raid1_ops = {
	.submit = raid1_submit,
	.destroy = layer_destroy,
};

static int raid1_create(const struct bdev_kind_args *a, struct bdev **out,
			char *err, size_t errlen)
{
	struct bdev **members = a->ka_members;
	uint64_t data_offset = a->ka_data_offset;
	int nr = a->ka_nr;
	uint64_t msize;
	struct layer *l;

	if (nr < 2) {
		snprintf(err, errlen, "raid1 needs at least 2 members, got %d",
			 nr);
		layer_free_members(members, nr);
		return -EINVAL;
	}
	if (layer_create(&raid1_kind, members, nr, 0, a->ka_max_io_bytes,
			 a->ka_in_segs, &raid1_ops, &l)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* Its per-loop parts are a cache line each. */
	l->l_private = aligned_alloc(64, sizeof(struct raid1));
	if (!l->l_private) {
		layer_destroy(&l->l_bdev);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(l->l_private, 0, sizeof(struct raid1));
	msize = layer_common_size(members, nr, data_offset, l->l_bdev.bd_align);
	if (!msize) {
		layer_destroy(&l->l_bdev);
		snprintf(err, errlen,
			 "members hold no data past their %llu-byte metadata",
			 (unsigned long long)data_offset);
		return -EINVAL;
	}
	l->l_member_size = msize;
	l->l_mend_reads = true;
	l->l_data_offset = data_offset;
	l->l_bdev.bd_size = msize;
	l->l_sweep = r1_sweep;
	*out = &l->l_bdev;
	return 0;
}

/* Every mirror but one may be missing. */
static int raid1_redundancy(int nr)
{
	return nr - 1;
}

const struct bdev_kind raid1_kind = {
	.bk_name = "raid1",
	.bk_help = "  raid1(M, M, ...)                  mirroring\n",
	.bk_min_members = 2,
	.bk_max_members = LAYER_MAX_MEMBERS,
	.bk_flags = BK_ARRAY,
	.bk_md_level = 1,
	.bk_redundancy = raid1_redundancy,
	.bk_rebuild_needs = "one healthy mirror",
	.bk_create = raid1_create,
	.bk_max_loops = layer_spread_max_loops,
	.bk_share = raid1_share,
};
