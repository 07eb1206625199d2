/* raid1: mirroring; writes go to every mirror, reads alternate between
 * them and fall back to another mirror on error; rebuild and scrub. */
#include "blockdev/core/log.h"
#include "blockdev/levels/layer.h"
#include "blockdev/levels/layer_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What each loop keeps of a mirror set spread over loops (its own cache
 * line): the round-robin cursor of its reads, and its mirrored writes in
 * flight (chained by li_lnext). */
struct r1_loop {
	int next_read;
	struct layer_io *writes;
} __attribute__((aligned(64)));

/**
 * struct raid1 - a mirror set's own state (l_private).
 * @at:         per loop, indexed by loop_id(); a sweep runs gathered on
 *   loop 0, so only at[0] has writes then
 * @sweep_lo/@sweep_hi: the member range the running sweep step copies or
 *   compares; a write into it marks it @sweep_dirty, so the step is
 *   redone.  A step redone again and again (a write storm on one range)
 *   raises @sweep_barrier: new writes into the range then wait on
 *   @held until the step is done, so a rebuild always gets
 *   past it.
 * @sweep_waiting: the sweep, while its step waits for the writes in
 *   flight into its range to end before it is redone
 */
struct raid1 {
	struct r1_loop at[LOOP_MAX];
	uint64_t sweep_lo, sweep_hi;
	bool sweep_dirty;
	bool sweep_barrier;
	struct r1_sweep *sweep_waiting;
	FIFO(struct layer_io) held;
};

static struct raid1 *raid1_of(const struct layer *l)
{
	return l->l_private;
}

/* ---- reads and writes ---------------------------------------------------- */

static bool in_sweep_range(const struct raid1 *r, const struct bdev_req *req)
{
	return r->sweep_lo < req->br_pos + req->br_len &&
	       req->br_pos < r->sweep_hi;
}

static void mirror_read(struct layer *l, struct layer_io *io, int after);
static bool writes_overlap(const struct raid1 *r, uint64_t lo, uint64_t hi);
static void sweep_step(struct r1_sweep *sw);

/* All mirrors done: a read that failed tries the next mirror; a write
 * succeeds if one mirror holds the data. */
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
			    !writes_overlap(r, r->sweep_lo, r->sweep_hi)) {
				resume = r->sweep_waiting;
				r->sweep_waiting = NULL;
			}
		}
	}
	if (err) {
		if (parent->br_op == BDEV_READ) {
			/* Try the next readable mirror, if there is one. */
			mirror_read(l, io, io->li_member);
			return;
		}
		/* Some mirror holds the data, but not if one could not zero:
		 * the caller hears the mirrors may differ there. */
		if (io->li_nr_failed < io->li_nr_children && err != -EOPNOTSUPP)
			err = 0;
	}
	layer_io_finish(io, err);
	if (resume)
		sweep_step(resume);
}

static void mirror_read(struct layer *l, struct layer_io *io, int after)
{
	struct bdev_req *req = io->li_parent;
	uint64_t end = req->br_pos + req->br_len;

	for (int k = 1; k <= l->l_nr; k++) {
		int m = (after + k) % l->l_nr;
		struct layer_child *c;

		if (!layer_readable(l, m, end))
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
static void mirror_write(struct layer *l, struct layer_io *io)
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
		mirror_read(l, io, start - 1 + l->l_nr);
		return;
	}
	if (r->sweep_barrier && in_sweep_range(r, req)) {
		fifo_push(&r->held, io, li_next);
		layer_stats_of(l, req->br_loop)->held_writes++;
		return;
	}
	mirror_write(l, io);
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
static bool writes_overlap(const struct raid1 *r, uint64_t lo, uint64_t hi)
{
	for (const struct layer_io *io = r->at[0].writes; io; io = io->li_lnext)
		if (io->li_parent->br_pos < hi &&
		    lo < io->li_parent->br_pos + io->li_parent->br_len)
			return true;
	return false;
}

/* Drop the sweep barrier and submit, in order, the writes it held. */
static void sweep_release(struct layer *l)
{
	struct raid1 *r = raid1_of(l);
	struct layer_io *io = fifo_take(&r->held);

	r->sweep_barrier = false;
	while (io) {
		struct layer_io *next = io->li_next; /* io may be recycled */

		mirror_write(l, io);
		io = next;
	}
}

/* ---- rebuild, check, repair: a sweep in steps over the members ------- */

#define SWEEP_STEP (1u << 20)
/* Redos of one step before new writes into it are held back. */
#define SWEEP_REDOS_BEFORE_BARRIER 2

struct r1_sweep {
	struct layer *l;
	enum layer_sweep_kind kind;
	uint64_t pos, len;
	int src;
	int stage;
	int redos;    /* of the current step */
	int retries;  /* of the current step, after a mirror failed */
	bool counted; /* its mismatches, on its first clean read */
	bool wrote;   /* a check's step rewrote an unreadable mirror */
	int err;
	uint8_t *buf[LAYER_MAX_MEMBERS];
	struct pvec vec[LAYER_MAX_MEMBERS];
	struct bdev_req sub[LAYER_MAX_MEMBERS];
	struct bdev_req agg;
	/* Mirrors that could not read the step: written from @src until the
	 * step is done clean, then read back (stage 2). */
	bool unreadable[LAYER_MAX_MEMBERS];
	void (*done)(struct layer *l, int err);
};

static void sweep_start(void *sw)
{
	sweep_step(sw);
}

static void sweep_agg_end(struct bdev_req *req);

static void sweep_begin(struct r1_sweep *sw)
{
	bdev_req_init(&sw->agg, BDEV_READ, 0, 0, NULL, (struct pvec_iter){ 0 },
		      sweep_agg_end, sw);
	sw->agg.br_loop = sw->l->l_sweep_loop;
}

static void sweep_io(struct r1_sweep *sw, enum bdev_op op, int m, uint8_t *buf)
{
	struct bdev_req *sub = &sw->sub[m];

	pvec_from_buf(&sw->vec[m], 1, buf, sw->len, 0);
	bdev_req_init(sub, op, sw->pos, sw->len, &sw->vec[m],
		      pvec_iter_init(&sw->vec[m], 1), NULL, NULL);
	bdev_req_chain(&sw->agg, sub);
	layer_member_submit(sw->l, m, sub);
}

static void sweep_finish(struct r1_sweep *sw)
{
	struct layer *l = sw->l;
	struct loop *loop = l->l_sweep_loop;
	void (*done)(struct layer *, int) = sw->done;
	int err = sw->err;

	for (int i = 0; i < l->l_nr; i++)
		free(sw->buf[i]);
	free(sw);
	raid1_of(l)->sweep_lo = raid1_of(l)->sweep_hi = 0;
	sweep_release(l);
	layer_sweep_end(l);
	if (done)
		done(l, err);
	layer_scatter(l, loop, LAYER_GATHER_SWEEP);
}

/* Whether the mirrors left can still do the sweep: a rebuild needs its
 * member still rebuilding and one to copy from, a check or repair two to
 * compare. */
static bool sweep_can_go_on(const struct r1_sweep *sw)
{
	const struct layer *l = sw->l;
	int ok = 0, rebuilding = 0;

	for (int i = 0; i < l->l_nr; i++) {
		ok += layer_member_state(l, i) == LAYER_MEMBER_OK;
		rebuilding += layer_member_state(l, i) ==
			      LAYER_MEMBER_REBUILDING;
	}
	return sw->kind == LAYER_SWEEP_REBUILD ? ok >= 1 && rebuilding >= 1 :
						 ok >= 2;
}

/* A user write into the step's range meanwhile: the mirrors may have been
 * read half written, or overwritten with older data.  Do the step again
 * once the writes in flight there are done (not at once, or a sweep over
 * members that complete inside their submit recurses until they are), and
 * hold new writes back if that keeps happening, or a write storm there
 * stalls the sweep. */
static void sweep_redo(struct r1_sweep *sw)
{
	struct raid1 *r = raid1_of(sw->l);

	if (++sw->redos >= SWEEP_REDOS_BEFORE_BARRIER)
		r->sweep_barrier = true;
	if (writes_overlap(r, r->sweep_lo, r->sweep_hi)) {
		r->sweep_waiting = sw; /* mirror_io_end() resumes it */
		return;
	}
	sweep_step(sw);
}

/*
 * A check or repair whose step one mirror read and another could not
 * writes it back onto that one, as md does: a disk remaps a sector it
 * could not read once it is written, and failing a mirror for one latent
 * sector error would leave the array a disk away from losing data.
 * Whether the step's read errors became such rewrites: some mirror read
 * it.
 */
static bool sweep_unreadable(struct r1_sweep *sw)
{
	struct layer *l = sw->l;
	int good = -1;

	if (sw->stage != 0 || sw->kind == LAYER_SWEEP_REBUILD)
		return false;
	for (int i = 0; i < l->l_nr && good < 0; i++)
		if (layer_member_state(l, i) == LAYER_MEMBER_OK &&
		    !sw->sub[i].br_error)
			good = i;
	if (good < 0)
		return false;
	for (int i = 0; i < l->l_nr; i++) {
		if (!sw->sub[i].br_error)
			continue;
		sw->unreadable[i] = layer_member_state(l, i) == LAYER_MEMBER_OK;
		sw->sub[i].br_error = 0;
	}
	if (sw->unreadable[sw->src])
		sw->src = good;
	return true;
}

/* Stage 1 wrote the step onto mirrors that could not read it: read it
 * back from them, and a mirror that still cannot is failed.  Whether
 * there was one. */
static bool sweep_read_back(struct r1_sweep *sw)
{
	struct layer *l = sw->l;
	bool any = false;

	for (int i = 0; i < l->l_nr; i++) {
		if (!sw->unreadable[i] ||
		    layer_member_state(l, i) != LAYER_MEMBER_OK)
			continue;
		if (!any) {
			sw->stage = 2;
			sweep_begin(sw);
		}
		any = true;
		sweep_io(sw, BDEV_READ, i, sw->buf[i]);
	}
	if (any)
		bdev_req_complete(&sw->agg, 0);
	return any;
}

/* The step is done clean: count and log the mirrors it rewrote. */
static void sweep_rewritten(struct r1_sweep *sw)
{
	struct layer *l = sw->l;

	for (int i = 0; i < l->l_nr; i++) {
		if (!sw->unreadable[i])
			continue;
		sw->unreadable[i] = false;
		if (layer_member_state(l, i) != LAYER_MEMBER_OK)
			continue;
		l->l_rewritten_sectors += sw->len / 512;
		bdev_log("%s member %d could not read member bytes %llu..%llu: rewritten from member %d",
			 l->l_kind, i, (unsigned long long)sw->pos,
			 (unsigned long long)(sw->pos + sw->len), sw->src);
	}
}

static void sweep_agg_end(struct bdev_req *req)
{
	struct r1_sweep *sw = req->br_private;
	struct layer *l = sw->l;

	if (req->br_error && !sweep_unreadable(sw)) {
		/* A mirror that fails the sweep's I/O is failed, as one that
		 * fails a user's: a check that met a dead mirror left it ok.
		 * The step is done again with the mirrors left, while they
		 * can still do it.  The member a rebuild writes is
		 * rebuild_done()'s to fail, and ends it. */
		bool dest_failed = false;

		for (int i = 0; i < l->l_nr; i++) {
			int st = layer_member_state(l, i);

			if (!sw->sub[i].br_error)
				continue;
			if (st == LAYER_MEMBER_OK)
				layer_fail_member_io(l, i, &sw->sub[i]);
			dest_failed |= st == LAYER_MEMBER_REBUILDING;
			sw->sub[i].br_error = 0; /* not this step's again */
		}
		if (!dest_failed && sweep_can_go_on(sw) &&
		    ++sw->retries < l->l_nr) {
			sweep_step(sw);
			return;
		}
		sw->err = req->br_error;
		sweep_finish(sw);
		return;
	}
	if (sw->stage == 0) {
		/* Mirrors read while a write went to them differ by a race,
		 * not a mismatch. */
		if (raid1_of(l)->sweep_dirty) {
			sweep_redo(sw);
			return;
		}
		/* Reads done: decide what to write. */
		sw->stage = 1;
		sweep_begin(sw);
		for (int i = 0; i < l->l_nr; i++) {
			bool write = false;

			if (sw->kind == LAYER_SWEEP_REBUILD)
				write = layer_member_state(l, i) ==
					LAYER_MEMBER_REBUILDING;
			else if (sw->unreadable[i])
				write = layer_member_state(l, i) ==
					LAYER_MEMBER_OK;
			else if (i != sw->src &&
				 layer_member_state(l, i) == LAYER_MEMBER_OK) {
				for (uint64_t o = 0; o < sw->len; o += 4096) {
					uint64_t n = sw->len - o < 4096 ?
							     sw->len - o :
							     4096;

					if (memcmp(sw->buf[i] + o,
						   sw->buf[sw->src] + o, n)) {
						if (!sw->counted)
							l->l_mismatch_sectors +=
								n / 512;
						write = sw->kind ==
							LAYER_SWEEP_REPAIR;
					}
				}
			}
			if (write) {
				sweep_io(sw, BDEV_WRITE, i, sw->buf[sw->src]);
				sw->wrote = true;
			}
		}
		sw->counted = true;
		bdev_req_complete(&sw->agg, 0);
		return;
	}
	/* A check wrote nothing a user write could have raced, unless it
	 * rewrote a mirror that could not read. */
	if (raid1_of(l)->sweep_dirty &&
	    (sw->kind != LAYER_SWEEP_CHECK || sw->wrote)) {
		sweep_redo(sw);
		return;
	}
	if (sw->stage == 1 && sweep_read_back(sw))
		return;
	sweep_rewritten(sw);
	sw->redos = 0;
	sw->retries = 0;
	sw->counted = false;
	sw->wrote = false;
	sweep_release(l);
	sw->pos += sw->len;
	if (sw->kind == LAYER_SWEEP_REBUILD)
		__atomic_store_n(&l->l_rebuild_pos, sw->pos, __ATOMIC_RELEASE);
	l->l_sweep_pos = sw->pos;
	sweep_step(sw);
}

static void sweep_step(struct r1_sweep *sw)
{
	struct layer *l = sw->l;
	struct raid1 *r = raid1_of(l);

	if (sw->pos >= l->l_member_size) {
		sweep_finish(sw);
		return;
	}
	sw->len = l->l_member_size - sw->pos;
	if (sw->len > SWEEP_STEP)
		sw->len = SWEEP_STEP;
	/* From a mirror that read this step, if one could not. */
	sw->src = -1;
	for (int i = 0; i < l->l_nr && sw->src < 0; i++)
		if (layer_member_state(l, i) == LAYER_MEMBER_OK &&
		    !sw->unreadable[i])
			sw->src = i;
	for (int i = 0; i < l->l_nr && sw->src < 0; i++)
		if (layer_member_state(l, i) == LAYER_MEMBER_OK)
			sw->src = i;
	if (sw->src < 0) {
		sw->err = -EIO; /* no good mirror left to copy from */
		sweep_finish(sw);
		return;
	}
	r->sweep_lo = sw->pos;
	r->sweep_hi = sw->pos + sw->len;
	/* Writes already in flight here may land on either side of ours. */
	r->sweep_dirty = writes_overlap(r, r->sweep_lo, r->sweep_hi);
	sw->stage = 0;
	sweep_begin(sw);
	for (int i = 0; i < l->l_nr; i++) {
		bool read = i == sw->src ||
			    (sw->kind != LAYER_SWEEP_REBUILD &&
			     layer_member_state(l, i) == LAYER_MEMBER_OK);

		if (read)
			sweep_io(sw, BDEV_READ, i, sw->buf[i]);
	}
	bdev_req_complete(&sw->agg, 0);
}

static int raid1_sweep(struct layer *l, struct loop *loop,
		       enum layer_sweep_kind kind,
		       void (*done)(struct layer *l, int err))
{
	struct r1_sweep *sw;

	if (l->l_sweep_running)
		return -EBUSY;
	sw = calloc(1, sizeof(*sw));
	if (!sw)
		return -ENOMEM;
	for (int i = 0; i < l->l_nr; i++) {
		if (posix_memalign((void **)&sw->buf[i], 4096, SWEEP_STEP)) {
			while (i--)
				free(sw->buf[i]);
			free(sw);
			return -ENOMEM;
		}
	}
	sw->l = l;
	sw->kind = kind;
	sw->done = done;
	layer_sweep_begin(l, loop, kind, l->l_member_size, 1);
	/* Its range, barrier and the writes it watches are loop 0's: no
	 * other loop may write meanwhile. */
	layer_gather(l, loop, LAYER_GATHER_SWEEP, sweep_start, sw);
	return 0;
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
	l->l_data_offset = data_offset;
	l->l_bdev.bd_size = msize;
	l->l_sweep = raid1_sweep;
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
