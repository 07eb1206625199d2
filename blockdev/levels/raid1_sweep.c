/* raid1_sweep: rebuild, check and repair of a mirror set, in steps over
 * the members, gathered on loop 0 and redone when a user write races them. */
#include "blockdev/levels/raid1_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockdev/core/log.h"

/* Drop the sweep barrier and submit, in order, the writes it held. */
static void sweep_release(struct layer *l)
{
	struct raid1 *r = raid1_of(l);
	struct layer_io *io = fifo_take(&r->held);

	r->sweep_barrier = false;
	while (io) {
		struct layer_io *next = io->li_next; /* io may be recycled */

		r1_mirror_write(l, io);
		io = next;
	}
}

/* ---- rebuild, check, repair: a sweep in steps over the members ------- */

#define SWEEP_STEP (1u << 20)
#define SWEEP_PAGE 4096u /* md mends read errors a page at a time */
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
	bool fix;     /* a quiet check of the ranges in raid1's fixes */
	uint64_t end; /* of the range it sweeps: the member's, or a fix's */
	/* A step no mirror read whole, done again a page at a time up to
	 * piece_end (0: not), and its sectors no mirror read. */
	uint64_t piece_lo, piece_end, lost_sectors;
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
	r1_sweep_step(sw);
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

static struct r1_sweep *sweep_alloc(struct layer *l)
{
	struct r1_sweep *sw = calloc(1, sizeof(*sw));

	if (!sw)
		return NULL;
	for (int i = 0; i < l->l_nr; i++) {
		if (posix_memalign((void **)&sw->buf[i], 4096, SWEEP_STEP)) {
			while (i--)
				free(sw->buf[i]);
			free(sw);
			return NULL;
		}
	}
	sw->l = l;
	sw->end = l->l_member_size;
	return sw;
}

static void sweep_free(struct r1_sweep *sw)
{
	for (int i = 0; i < sw->l->l_nr; i++)
		free(sw->buf[i]);
	free(sw);
}

static bool fix_start(struct layer *l, struct loop *loop);

/* The sweep is over: a rebuild, check or repair asked for while it fixed
 * starts now, and fixes asked for while it ran start once it is over. */
static void sweep_finish(struct r1_sweep *sw)
{
	struct layer *l = sw->l;
	struct raid1 *r = raid1_of(l);
	struct loop *loop = l->l_sweep_loop;
	void (*done)(struct layer *, int) = sw->done;
	struct r1_sweep *next = NULL;
	int err = sw->err;
	bool fix = sw->fix;

	sweep_free(sw);
	r->sweep_lo = r->sweep_hi = 0;
	sweep_release(l);
	if (fix) {
		r->fixing = false;
		next = r->sweep_next;
		r->sweep_next = NULL;
	} else {
		layer_sweep_end(l);
		if (done)
			done(l, err);
	}
	/* Gathered still: these start at once, and scatter when done. */
	if (next)
		layer_gather(l, loop, LAYER_GATHER_SWEEP, sweep_start, next);
	else if (!fix_start(l, loop))
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
	if (r1_writes_overlap(r, r->sweep_lo, r->sweep_hi)) {
		r->sweep_waiting = sw; /* mirror_io_end() resumes it */
		return;
	}
	r1_sweep_step(sw);
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
	char from[24];

	for (int i = 0; i < l->l_nr; i++) {
		if (!sw->unreadable[i])
			continue;
		sw->unreadable[i] = false;
		if (layer_member_state(l, i) != LAYER_MEMBER_OK)
			continue;
		snprintf(from, sizeof(from), "member %d", sw->src);
		layer_rewritten(l, i, sw->pos, sw->len, sw->fix, from);
	}
}

/* The step is done: on to the next. */
static void sweep_advance(struct r1_sweep *sw)
{
	struct layer *l = sw->l;

	sw->redos = 0;
	sw->retries = 0;
	sw->counted = false;
	sw->wrote = false;
	sweep_release(l);
	sw->pos += sw->len;
	if (sw->piece_end && sw->pos >= sw->piece_end) {
		if (sw->lost_sectors)
			bdev_log("%s member bytes %llu..%llu: %llu sectors no mirror can read, left as they are (a read of them fails)",
				 l->l_kind,
				 (unsigned long long)(l->l_data_offset +
						      sw->piece_lo),
				 (unsigned long long)(l->l_data_offset +
						      sw->piece_end),
				 (unsigned long long)sw->lost_sectors);
		sw->piece_end = sw->lost_sectors = 0;
	}
	if (sw->kind == LAYER_SWEEP_REBUILD)
		__atomic_store_n(&l->l_rebuild_pos, sw->pos, __ATOMIC_RELEASE);
	if (!sw->fix)
		l->l_sweep_pos = sw->pos;
	r1_sweep_step(sw);
}

/*
 * No mirror read the whole step of a check, repair or fix: each may have
 * a bad sector in another page of it, which md, working in pages, mends
 * from the other.  The step is done again a page at a time.  A page no
 * mirror reads is lost on all of them, and failing them for it would lose
 * the rest of the array too: it is counted, logged and left, and a read
 * of it fails.  Whether it was that.
 */
static bool sweep_no_reader(struct r1_sweep *sw)
{
	if (sw->stage != 0 || sw->kind == LAYER_SWEEP_REBUILD)
		return false;
	for (int i = 0; i < sw->l->l_nr; i++) {
		sw->sub[i].br_error = 0;
		sw->unreadable[i] = false;
	}
	if (!sw->piece_end) {
		sw->piece_lo = sw->pos;
		sw->piece_end = sw->pos + sw->len;
		if (sw->len > SWEEP_PAGE) {
			r1_sweep_step(sw);
			return true;
		}
	}
	sw->lost_sectors += sw->len / 512;
	sweep_advance(sw);
	return true;
}

static void sweep_agg_end(struct bdev_req *req)
{
	struct r1_sweep *sw = req->br_private;
	struct layer *l = sw->l;

	if (req->br_error && !sweep_unreadable(sw)) {
		if (sweep_no_reader(sw))
			return;
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
			r1_sweep_step(sw);
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
						if (!sw->counted && !sw->fix)
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
	sweep_advance(sw);
}

/* A fix's next range: the oldest waiting whose mirror is still in the
 * array; false when none is left. */
static bool fix_next(struct r1_sweep *sw)
{
	struct raid1 *r = raid1_of(sw->l);

	while (r->nr_fixes) {
		struct r1_fix f = r->fixes[0];

		memmove(&r->fixes[0], &r->fixes[1],
			--r->nr_fixes * sizeof(r->fixes[0]));
		r->fixes_full = false;
		/* Nothing to copy from with one mirror left. */
		if (layer_member_state(sw->l, f.m) != LAYER_MEMBER_OK ||
		    !sweep_can_go_on(sw))
			continue;
		sw->pos = f.lo;
		sw->end = f.hi;
		return true;
	}
	return false;
}

/* Start a fix sweep over the fixes waiting; whether one started. */
static bool fix_start(struct layer *l, struct loop *loop)
{
	struct raid1 *r = raid1_of(l);
	struct r1_sweep *sw;

	if (!r->nr_fixes)
		return false;
	sw = sweep_alloc(l);
	if (!sw) {
		for (int i = 0; i < r->nr_fixes; i++)
			r1_fail_unmended(l, r->fixes[i].m, "no memory");
		r->nr_fixes = 0;
		return false;
	}
	sw->kind = LAYER_SWEEP_CHECK;
	sw->fix = true;
	if (!fix_next(sw)) {
		sweep_free(sw);
		return false;
	}
	r->fixing = true;
	l->l_sweep_loop = loop;
	layer_gather(l, loop, LAYER_GATHER_SWEEP, sweep_start, sw);
	return true;
}

void r1_fail_unmended(struct layer *l, int m, const char *why)
{
	if (layer_set_state(l, m, LAYER_MEMBER_FAILED))
		bdev_log("%s member %d failed: its read error cannot be mended (%s)",
			 l->l_kind, m, why);
}

void r1_fix_add(struct layer *l, struct loop *loop, const struct r1_fix *fix)
{
	struct raid1 *r = raid1_of(l);
	int same = 0;

	if (layer_member_state(l, fix->m) != LAYER_MEMBER_OK)
		return;
	for (int i = 0; i < r->nr_fixes; i++) {
		struct r1_fix *f = &r->fixes[i];

		if (f->m != fix->m)
			continue;
		same++;
		if (f->lo <= fix->hi + R1_FIX_GAP_BYTES &&
		    fix->lo <= f->hi + R1_FIX_GAP_BYTES) {
			/* Met again, or near it: one range. */
			f->lo = f->lo < fix->lo ? f->lo : fix->lo;
			f->hi = f->hi > fix->hi ? f->hi : fix->hi;
			return;
		}
	}
	if (r->nr_fixes == R1_FIXES_MAX) {
		/* Left unmended: a read that meets it again asks again.
		 * Failing a mirror here failed one for another's errors. */
		if (!r->fixes_full)
			bdev_log("%s member %d: %d read errors wait to be mended already (%d of them its own): this one is left until a read meets it again",
				 l->l_kind, fix->m, R1_FIXES_MAX, same);
		r->fixes_full = true;
		return;
	}
	r->fixes[r->nr_fixes++] = *fix;
	if (!r->fixing && !l->l_sweep_running)
		fix_start(l, loop);
}

void r1_sweep_step(struct r1_sweep *sw)
{
	struct layer *l = sw->l;
	struct raid1 *r = raid1_of(l);

	if (sw->pos >= sw->end && !(sw->fix && fix_next(sw))) {
		sweep_finish(sw);
		return;
	}
	sw->len = sw->end - sw->pos;
	if (sw->len > SWEEP_STEP)
		sw->len = SWEEP_STEP;
	if (sw->piece_end)
		sw->len = sw->piece_end - sw->pos < SWEEP_PAGE ?
				  sw->piece_end - sw->pos :
				  SWEEP_PAGE;
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
	r->sweep_dirty = r1_writes_overlap(r, r->sweep_lo, r->sweep_hi);
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

int r1_sweep(struct layer *l, struct loop *loop, enum layer_sweep_kind kind,
	     void (*done)(struct layer *l, int err))
{
	struct r1_sweep *sw;

	if (l->l_sweep_running)
		return -EBUSY;
	sw = sweep_alloc(l);
	if (!sw)
		return -ENOMEM;
	sw->kind = kind;
	sw->done = done;
	layer_sweep_begin(l, loop, kind, l->l_member_size, 1);
	if (raid1_of(l)->fixing) {
		/* Mending read errors: this starts once that is done. */
		raid1_of(l)->sweep_next = sw;
		return 0;
	}
	/* Its range, barrier and the writes it watches are loop 0's: no
	 * other loop may write meanwhile. */
	layer_gather(l, loop, LAYER_GATHER_SWEEP, sweep_start, sw);
	return 0;
}
