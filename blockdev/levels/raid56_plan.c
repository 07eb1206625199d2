/* raid56_plan: one stripe op's life: plan (full, rmw, rcw, reconstruct),
 * read, compute parity or lost data, write; a stage's failure retried. */
#include "blockdev/levels/raid56_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockdev/core/log.h"
#include "blockdev/levels/parity.h"

static uint8_t *col(struct stripe_op *so, int member)
{
	return so->so_buf + (size_t)member * so->so_l->l_chunk;
}

static void stage_end(struct bdev_req *req);

static void stage_begin(struct stripe_op *so)
{
	bdev_req_init(&so->so_stage, BDEV_READ, 0, 0, NULL,
		      (struct pvec_iter){ 0 }, stage_end, so);
	so->so_stage.br_loop = so->so_loop;
	so->so_nr_sub = 0;
}

/* One member I/O of the current stage over member bytes of this stripe
 * [so_c0 + @off, + @len), from @buf or (when NULL) from @vec/@it. */
static void stage_io(struct stripe_op *so, enum bdev_op op, int m, uint64_t off,
		     uint64_t len, uint8_t *buf, const struct pvec *vec,
		     struct pvec_iter it)
{
	int i = so->so_nr_sub++;
	struct bdev_req *sub = &so->so_sub[i];
	uint64_t mpos = so->so_stripe * so->so_l->l_chunk + so->so_c0 + off;

	if (buf) {
		pvec_from_buf(&so->so_subvec[i], 1, buf, len, 0);
		vec = &so->so_subvec[i];
		it = pvec_iter_init(vec, 1);
	}
	bdev_req_init(sub, op, mpos, len, vec, it, NULL, NULL);
	sub->br_iov = so->so_iov + (size_t)i * r56_of(so->so_l)->vec_cap;
	sub->br_iov_max = (int)r56_of(so->so_l)->vec_cap;
	so->so_sub_member[i] = m;
	bdev_req_chain(&so->so_stage, sub);
}

static void stage_submit(struct stripe_op *so)
{
	struct layer *l = so->so_l;

	for (int i = 0; i < so->so_nr_sub; i++)
		layer_member_submit(l, so->so_sub_member[i], &so->so_sub[i]);
	bdev_req_complete(&so->so_stage, 0);
}

/* The request's bytes for data chunk @j of the op's stripe @t (0 unless
 * a batch), in-chunk [a, b). */
static struct pvec_iter req_slice(struct stripe_op *so, uint32_t t, int j,
				  uint64_t a, uint64_t b)
{
	const struct r56 *r = r56_of(so->so_l);
	struct pvec_iter it;
	uint64_t off = t * r->ndata * r->chunk + j * r->chunk + a - so->so_lo;

	pvec_slice(so->so_vec, so->so_it, off, b - a, &it);
	return it;
}

static void plan(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	uint64_t mend = so->so_stripe * l->l_chunk + so->so_c1, a, b;
	int slots[LAYER_MAX_MEMBERS], lost, full = 0, nt = 0;

	so->so_unreadable = 0;
	if (so->so_nstripes > 1) {
		/* Nothing to read, so nothing unreadable: a failed member is
		 * left out of the writes, a rebuilding one written. */
		so->so_mode = MODE_FULL;
		return;
	}
	raid56_layout(l, so->so_stripe, slots);
	for (int i = 0; i < r->ndata + r->nparity; i++) {
		if (!layer_readable(l, slots[i], mend))
			so->so_unreadable |= 1ull << i;
	}
	/* What a member could not read: rebuilt from the others. */
	so->so_unreadable |= so->so_rewrite;
	lost = __builtin_popcountll(so->so_unreadable);
	if (so->so_kind == SO_READ) {
		/* With more members out than parity covers, reads go the
		 * RECON way: EIO where a stripe lacks more than parity
		 * covers (a rebuilding member may already cover this one). */
		so->so_mode = layer_nr_bad(l) > r->nparity ? MODE_RECON :
							     MODE_DIRECT;
		for (int j = 0; j < r->ndata; j++)
			if (so_touched(so, j, &a, &b) &&
			    (so->so_unreadable & (1ull << j)))
				so->so_mode = MODE_RECON;
		return;
	}
	if (so->so_kind != SO_WRITE && so->so_kind != SO_ZERO) {
		so->so_mode = MODE_RECON;
		return;
	}
	for (int j = 0; j < r->ndata; j++) {
		if (!so_touched(so, j, &a, &b))
			continue;
		nt++;
		full += a == so->so_c0 && b == so->so_c1;
	}
	/* New data for every data column needs nothing read, with members
	 * lost too (while parity covers them): parity comes from it, and a
	 * failed member is left out. */
	if (full == r->ndata && lost <= r->nparity)
		so->so_mode = MODE_FULL;
	else if (lost)
		so->so_mode = MODE_RECON;
	else if (nt + r->nparity < r->ndata - full)
		so->so_mode = MODE_RMW;
	else
		so->so_mode = MODE_RCW;
}

/* Read what the plan needs, then compute, then write. */
void so_run(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	uint64_t w = so->so_c1 - so->so_c0, a = 0, b = 0;
	int slots[LAYER_MAX_MEMBERS], n = r->ndata + r->nparity, lost = 0;

	if (!so->so_tries)
		so->so_run_ns = loop_now_ns();
	plan(so);
	raid56_layout(l, so->so_stripe, slots);
	so->so_stage.br_op = BDEV_READ;
	stage_begin(so);
	switch (so->so_mode) {
	case MODE_FULL:
		R56_COUNT(so, full_stripe_writes, so->so_nstripes);
		break;
	case MODE_RCW:
		R56_COUNT(so, rcw_writes, 1);
		for (int j = 0; j < r->ndata; j++) {
			if (so_touched(so, j, &a, &b) && a == so->so_c0 &&
			    b == so->so_c1)
				continue;
			stage_io(so, BDEV_READ, slots[j], 0, w,
				 col(so, slots[j]), NULL,
				 (struct pvec_iter){ 0 });
			R56_COUNT(so, parity_reads, 1);
		}
		break;
	case MODE_RMW:
		R56_COUNT(so, rmw_writes, 1);
		for (int j = 0; j < r->ndata; j++) {
			if (!so_touched(so, j, &a, &b))
				continue;
			stage_io(so, BDEV_READ, slots[j], a - so->so_c0, b - a,
				 col(so, slots[j]) + (a - so->so_c0), NULL,
				 (struct pvec_iter){ 0 });
			R56_COUNT(so, parity_reads, 1);
		}
		for (int i = r->ndata; i < n; i++) {
			stage_io(so, BDEV_READ, slots[i], 0, w,
				 col(so, slots[i]), NULL,
				 (struct pvec_iter){ 0 });
			R56_COUNT(so, parity_reads, 1);
		}
		break;
	case MODE_DIRECT:
		/* Straight into the request; stage_end() then finishes. */
		for (int j = 0; j < r->ndata; j++)
			if (so_touched(so, j, &a, &b))
				stage_io(so, BDEV_READ, slots[j], a - so->so_c0,
					 b - a, NULL, so->so_vec,
					 req_slice(so, 0, j, a, b));
		break;
	case MODE_RECON:
		for (int i = 0; i < n; i++)
			lost += !!(so->so_unreadable & (1ull << i));
		if (lost > r->nparity) {
			/* More lost than parity covers: nothing to read. */
			bdev_req_complete(&so->so_stage, -EIO);
			return;
		}
		for (int i = 0; i < n; i++) {
			/* A read that lost one data chunk rebuilds it from P
			 * alone (parity_recover() reads Q only for two). */
			bool q_unneeded = so->so_kind == SO_READ && lost == 1 &&
					  i == r->ndata + 1;

			if (!(so->so_unreadable & (1ull << i)) && !q_unneeded)
				stage_io(so, BDEV_READ, slots[i], 0, w,
					 col(so, slots[i]), NULL,
					 (struct pvec_iter){ 0 });
		}
		if (lost)
			R56_COUNT(so, degraded_ops, 1);
		break;
	}
	stage_submit(so);
}

/* Bring the new data for data chunk @j into its column at [a, b). */
static void overlay(struct stripe_op *so, int j, int m, uint64_t a, uint64_t b)
{
	uint8_t *dst = col(so, m) + (a - so->so_c0);

	if (so->so_kind == SO_ZERO)
		memset(dst, 0, b - a);
	else
		pvec_copy_to(dst, so->so_vec, req_slice(so, 0, j, a, b), b - a);
	R56_COUNT(so, parity_copy_bytes, b - a);
}

/* A full stripe's parity needs no copy of its data: P and Q are built
 * from the request's segments, which then go to the members as they are.
 * The data chunks are walked side by side, a run at a time as long as
 * the shortest of their current segments. */
static void full_stripe_parity(struct stripe_op *so, uint32_t t, uint8_t **blk,
			       uint64_t w)
{
	struct r56 *r = r56_of(so->so_l);
	int nd = r->ndata;
	struct pvec_iter it[LAYER_MAX_MEMBERS];
	const uint8_t *d[LAYER_MAX_MEMBERS];
	uint8_t *q = r->nparity > 1 ? blk[nd + 1] : NULL;

	for (int j = 0; j < nd; j++)
		it[j] = req_slice(so, t, j, so->so_c0, so->so_c1);
	for (uint64_t done = 0, run; done < w; done += run) {
		run = w - done;
		for (int j = 0; j < nd; j++) {
			struct pvec cur = pvec_iter_cur(so->so_vec, it[j]);

			d[j] = (const uint8_t *)pvec_addr(&cur);
			if (cur.pv_len < run)
				run = cur.pv_len;
		}
		parity_gen(blk[nd] + done, q ? q + done : NULL, d, nd, run);
		for (int j = 0; j < nd; j++)
			pvec_iter_advance(so->so_vec, &it[j], run);
	}
}

static int compute(struct stripe_op *so, int *slots, uint8_t **blk)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	uint64_t w = so->so_c1 - so->so_c0, a = 0, b = 0;
	int n = r->ndata + r->nparity, lost[2], nr_lost = 0;

	for (int i = 0; i < n; i++)
		blk[i] = col(so, slots[i]);
	if (so->so_mode == MODE_RMW) {
		/* P ^= old ^ new, Q ^= 2^j (old ^ new), over each N_j. */
		uint8_t *delta;

		for (int j = 0; j < r->ndata; j++) {
			if (!so_touched(so, j, &a, &b))
				continue;
			delta = blk[j] + (a - so->so_c0);
			if (so->so_kind == SO_ZERO) {
				/* new = 0: delta is the old data itself */
			} else {
				uint8_t tmp[4096];

				for (uint64_t o = a; o < b; o += sizeof(tmp)) {
					uint64_t len = b - o < sizeof(tmp) ?
							       b - o :
							       sizeof(tmp);

					pvec_copy_to(tmp, so->so_vec,
						     req_slice(so, 0, j, o,
							       o + len),
						     len);
					parity_xor(delta + (o - a), tmp, len);
				}
				R56_COUNT(so, parity_copy_bytes, b - a);
			}
			parity_xor(blk[r->ndata] + (a - so->so_c0), delta,
				   b - a);
			if (r->nparity == 2)
				parity_mul2k_xor(blk[r->ndata + 1] +
							 (a - so->so_c0),
						 delta, j, b - a);
			if (so->so_kind == SO_ZERO)
				memset(delta, 0, b - a); /* what gets written */
		}
		return 0;
	}
	if (so->so_mode == MODE_RECON) {
		for (int i = 0; i < n; i++)
			if (so->so_unreadable & (1ull << i))
				lost[nr_lost++] = i;
		if (nr_lost &&
		    parity_recover(blk, r->ndata, r->nparity, lost, nr_lost, w))
			return -EIO;
	}
	if (so->so_mode == MODE_FULL && so->so_kind == SO_WRITE) {
		full_stripe_parity(so, 0, blk, w);
		return 0;
	}
	if (so->so_kind == SO_WRITE || so->so_kind == SO_ZERO) {
		for (int j = 0; j < r->ndata; j++)
			if (so_touched(so, j, &a, &b))
				overlay(so, j, slots[j], a, b);
		parity_compute(blk, r->ndata, r->nparity, w);
	}
	return 0;
}

/* Scrub: compare the parity read with parity recomputed from the data. */
static void scrub(struct stripe_op *so, uint8_t **blk)
{
	struct r56 *r = r56_of(so->so_l);
	uint64_t w = so->so_c1 - so->so_c0;
	uint8_t *save = r->scrub_save;
	bool bad = false;

	for (int k = 0; k < r->nparity; k++)
		memcpy(save + k * w, blk[r->ndata + k], w);
	parity_compute(blk, r->ndata, r->nparity, w);
	/* md counts mismatches in 512-byte sectors of whole 4k pages. */
	for (uint64_t o = 0; o < w; o += 4096) {
		uint64_t len = w - o < 4096 ? w - o : 4096;
		bool page_bad = false;

		for (int k = 0; k < r->nparity; k++)
			page_bad |= memcmp(save + k * w + o,
					   blk[r->ndata + k] + o, len) != 0;
		if (page_bad) {
			so->so_l->l_mismatch_sectors += len / 512;
			bad = true;
		}
	}
	if (!bad || so->so_kind == SO_CHECK) {
		/* Nothing to write: restore what was read. */
		for (int k = 0; k < r->nparity; k++)
			memcpy(blk[r->ndata + k], save + k * w, w);
		so->so_mode = MODE_FULL; /* marker: no writes */
		so->so_kind = SO_CHECK;
	}
}

/* A batch: parity of each stripe into its scratch columns, then one write
 * per member over all the stripes, gathered from the request and parity. */
static void batch_write_stage(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	int n = r->ndata + r->nparity, nv[LAYER_MAX_MEMBERS] = { 0 };
	int slots[LAYER_MAX_MEMBERS];
	uint8_t *blk[LAYER_MAX_MEMBERS];
	struct pvec col_vec;

	if (layer_nr_bad(l) > r->nparity) {
		so_finish(so, -EIO); /* as a stripe op that finds too few */
		return;
	}
	if (so->so_kind == SO_ZERO) {
		/* Members zero their range their own way: no payload at all.
		 * A discard stays one where it surely reads back zeroes (a
		 * hole punched in an image file); elsewhere (BLKDISCARD may
		 * not zero) it becomes a zero-out, so parity stays right. */
		stage_begin(so);
		for (int m = 0; m < n; m++) {
			const struct bdev *md = l->l_members[m];
			bool hole = so->so_req.br_op == BDEV_DISCARD &&
				    md->bd_discard_zeroes;

			if (layer_member_state(l, m) != LAYER_MEMBER_FAILED)
				stage_io(so, hole ? BDEV_DISCARD : BDEV_ZERO, m,
					 0, so->so_nstripes * r->chunk, NULL,
					 NULL, (struct pvec_iter){ 0 });
		}
		so->so_tries = -1;
		stage_submit(so);
		return;
	}
	for (uint32_t t = 0; t < so->so_nstripes; t++) {
		raid56_layout(l, so->so_stripe + t, slots);
		for (int k = 0; k < r->nparity; k++)
			blk[r->ndata + k] =
				so->so_buf +
				((size_t)t * r->nparity + k) * r->chunk;
		full_stripe_parity(so, t, blk, r->chunk);
		for (int i = 0; i < n; i++) {
			struct pvec *dst =
				so->so_mvec + (size_t)slots[i] * r->vec_cap;
			const struct pvec *src = &col_vec;
			struct pvec_iter it;

			if (i < r->ndata) {
				src = so->so_vec;
				it = req_slice(so, t, i, 0, r->chunk);
			} else {
				pvec_from_buf(&col_vec, 1, blk[i], r->chunk, 0);
				it = pvec_iter_init(&col_vec, 1);
			}
			nv[slots[i]] = pvec_append(dst, nv[slots[i]],
						   (int)r->vec_cap, src, it);
			if (nv[slots[i]] < 0) {
				so_finish(so,
					  -EIO); /* the cap above is wrong */
				return;
			}
		}
	}
	stage_begin(so);
	for (int m = 0; m < n; m++) {
		const struct pvec *v = so->so_mvec + (size_t)m * r->vec_cap;

		if (layer_member_state(l, m) != LAYER_MEMBER_FAILED)
			stage_io(so, BDEV_WRITE, m, 0,
				 so->so_nstripes * r->chunk, NULL, v,
				 pvec_iter_init(v, nv[m]));
	}
	so->so_tries = -1; /* stage_end: this was the last stage */
	stage_submit(so);
}

/* What a member could not read, rebuilt: back onto it (a repair has
 * queued its parity columns already). */
static void rewrite_stage(struct stripe_op *so, const int *slots, uint8_t **blk)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);

	for (int i = 0; i < r->ndata + r->nparity; i++)
		if ((so->so_rewrite & (1ull << i)) &&
		    !(so->so_kind == SO_REPAIR && i >= r->ndata) &&
		    layer_member_state(l, slots[i]) == LAYER_MEMBER_OK)
			stage_io(so, BDEV_WRITE, slots[i], 0,
				 so->so_c1 - so->so_c0, blk[i], NULL,
				 (struct pvec_iter){ 0 });
}

static void write_stage(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	uint64_t w = so->so_c1 - so->so_c0, a = 0, b = 0;
	int slots[LAYER_MAX_MEMBERS], n = r->ndata + r->nparity;
	uint8_t *blk[LAYER_MAX_MEMBERS];
	int err;

	if (so->so_nstripes > 1) {
		batch_write_stage(so);
		return;
	}
	raid56_layout(l, so->so_stripe, slots);
	err = compute(so, slots, blk);
	if (err) {
		so_finish(so, err);
		return;
	}
	stage_begin(so);
	switch (so->so_kind) {
	case SO_READ:
		for (int j = 0; j < r->ndata; j++)
			if (so_touched(so, j, &a, &b))
				pvec_copy_from(so->so_vec,
					       req_slice(so, 0, j, a, b),
					       blk[j] + (a - so->so_c0), b - a);
		rewrite_stage(so, slots, blk);
		break;
	case SO_CHECK:
	case SO_REPAIR:
		scrub(so, blk);
		if (so->so_kind == SO_REPAIR)
			for (int i = r->ndata; i < n; i++)
				if (layer_member_state(l, slots[i]) !=
				    LAYER_MEMBER_FAILED)
					stage_io(so, BDEV_WRITE, slots[i], 0, w,
						 blk[i], NULL,
						 (struct pvec_iter){ 0 });
		rewrite_stage(so, slots, blk);
		break;
	case SO_REBUILD:
		for (int i = 0; i < n; i++)
			if (layer_member_state(l, slots[i]) ==
			    LAYER_MEMBER_REBUILDING)
				stage_io(so, BDEV_WRITE, slots[i], 0, w, blk[i],
					 NULL, (struct pvec_iter){ 0 });
		break;
	case SO_WRITE:
	case SO_ZERO:
		for (int i = 0; i < n; i++) {
			int m = slots[i];
			bool data_touched = i < r->ndata &&
					    so_touched(so, i, &a, &b);

			if (layer_member_state(l, m) == LAYER_MEMBER_FAILED)
				continue;
			if (i >= r->ndata) {
				stage_io(so, BDEV_WRITE, m, 0, w, blk[i], NULL,
					 (struct pvec_iter){ 0 });
			} else if (data_touched && so->so_kind == SO_WRITE &&
				   so->so_mode == MODE_FULL) {
				/* The whole column, rebuilding or not. */
				stage_io(so, BDEV_WRITE, m, 0, w, NULL,
					 so->so_vec, req_slice(so, 0, i, a, b));
			} else if (so->so_unreadable & (1ull << i)) {
				/* Rebuilding past this stripe: bring the whole
				 * column up to date while we have it. */
				stage_io(so, BDEV_WRITE, m, 0, w, blk[i], NULL,
					 (struct pvec_iter){ 0 });
			} else if (data_touched && so->so_kind == SO_WRITE) {
				/* The payload goes to the member straight from
				 * the request's vector: a re-slice, no copy. */
				stage_io(so, BDEV_WRITE, m, a - so->so_c0,
					 b - a, NULL, so->so_vec,
					 req_slice(so, 0, i, a, b));
			} else if (data_touched) {
				stage_io(so, BDEV_WRITE, m, a - so->so_c0,
					 b - a, blk[i] + (a - so->so_c0), NULL,
					 (struct pvec_iter){ 0 });
			}
		}
		break;
	}
	so->so_tries = -1; /* stage_end: this was the last stage */
	stage_submit(so);
}

/* An op's reads (a user's, a partial write's, a scrub's) failed on members
 * parity still covers: their columns are rebuilt and written back, as md
 * does (a write remaps a latent sector error; failing the member for one
 * leaves the array without redundancy).  Whether the stripe runs again so. */
static bool mend_rewrites(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	int slots[LAYER_MAX_MEMBERS], n = r->ndata + r->nparity;
	uint64_t bad = 0;

	if (so->so_kind == SO_REBUILD || so->so_nstripes > 1 ||
	    so->so_tries < 0)
		return false;
	raid56_layout(l, so->so_stripe, slots);
	for (int k = 0; k < so->so_nr_sub; k++)
		for (int i = 0; i < n && so->so_sub[k].br_error; i++)
			if (slots[i] == so->so_sub_member[k])
				bad |= 1ull << i;
	if (__builtin_popcountll(bad | so->so_unreadable) > r->nparity)
		return false;
	/* Each time a slot more: at most nparity times. */
	so->so_rewrite |= bad;
	return true;
}

/* The rewritten columns, read back: a member that still cannot read
 * them is failed (stage_end()). */
static void mend_read_back(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	int slots[LAYER_MAX_MEMBERS];

	raid56_layout(l, so->so_stripe, slots);
	stage_begin(so);
	for (int i = 0; i < r->ndata + r->nparity; i++)
		if ((so->so_rewrite & (1ull << i)) &&
		    layer_member_state(l, slots[i]) == LAYER_MEMBER_OK)
			stage_io(so, BDEV_READ, slots[i], 0,
				 so->so_c1 - so->so_c0, col(so, slots[i]), NULL,
				 (struct pvec_iter){ 0 });
	so->so_tries = -2;
	stage_submit(so);
}

static void mend_done(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	int slots[LAYER_MAX_MEMBERS];

	raid56_layout(l, so->so_stripe, slots);
	for (int i = 0; i < r->ndata + r->nparity; i++)
		if ((so->so_rewrite & (1ull << i)) &&
		    layer_member_state(l, slots[i]) == LAYER_MEMBER_OK)
			layer_rewritten(l, slots[i],
					so->so_stripe * l->l_chunk + so->so_c0,
					so->so_c1 - so->so_c0, so->so_has_req,
					"the others");
}

/* The next page of a scrub done by pages; false when there is none (then
 * the pages lost are logged, once a stripe). */
static bool scrub_next_page(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	uint64_t at = l->l_data_offset + so->so_stripe * l->l_chunk;

	if (so->so_page_end && so->so_c1 >= so->so_page_end &&
	    so->so_lost_pages)
		bdev_log("%s member bytes %llu..%llu: %u pages more members cannot read than parity covers, left as they are",
			 l->l_kind, (unsigned long long)at,
			 (unsigned long long)(at + so->so_page_end),
			 so->so_lost_pages);
	if (!so->so_page_end || so->so_c1 >= so->so_page_end)
		return false;
	so->so_c0 = so->so_c1;
	so->so_c1 = so->so_c0 + 4096 < so->so_page_end ? so->so_c0 + 4096 :
							 so->so_page_end;
	so->so_kind = so->so_page_kind; /* scrub() marks a clean one */
	so->so_rewrite = 0;
	so->so_tries = 0;
	so_run(so);
	return true;
}

/* A scrub's stripe with more failed reads than parity covers, maybe each
 * in a page of its own, is done again a page at a time (md mends in pages);
 * a page still lacking too many is lost, failing no member.  Whether so. */
static bool scrub_by_pages(struct stripe_op *so)
{
	if ((so->so_kind != SO_CHECK && so->so_kind != SO_REPAIR) ||
	    so->so_tries < 0 ||
	    (!so->so_page_end && so->so_c1 - so->so_c0 <= 4096))
		return false;
	if (!so->so_page_end) {
		so->so_page_end = so->so_c1;
		so->so_page_kind = so->so_kind;
		so->so_c1 = so->so_c0; /* scrub_next_page() takes the first */
		so->so_lost_pages = 0;
	} else {
		so->so_lost_pages++;
	}
	if (!scrub_next_page(so))
		so_finish(so, 0);
	return true;
}

static void stage_end(struct bdev_req *req)
{
	struct stripe_op *so = req->br_private;
	struct layer *l = so->so_l;
	int err = req->br_error;

	if (err == -EOPNOTSUPP) {
		/* A member that cannot zero (an nbd() without WRITE_ZEROES)
		 * is not failed, and a retry would meet the same: the
		 * caller hears it. */
		so_finish(so, err);
		return;
	}
	if (err && mend_rewrites(so)) {
		so_run(so);
		return;
	}
	if (err && scrub_by_pages(so))
		return;
	if (err) {
		/* A member that fails I/O is failed, as md does; then the
		 * stripe is tried again degraded while parity allows. */
		bool failed_one = false;

		for (int i = 0; i < so->so_nr_sub; i++) {
			int m = so->so_sub_member[i];

			if (!so->so_sub[i].br_error)
				continue;
			/* Another op with I/O in flight to the same member
			 * may have failed it first: this op is retried
			 * (or, for a write, covered) all the same. */
			failed_one = true;
			layer_fail_member_io(l, m, &so->so_sub[i]);
		}
		if (failed_one && so->so_tries >= 0 && so->so_tries++ < 3) {
			so_run(so);
			return;
		}
		/* A failed write to a member parity still covers leaves the
		 * stripe consistent (parity holds the new data): done. */
		if (failed_one && so->so_tries < 0 &&
		    layer_nr_bad(l) <= r56_of(l)->nparity)
			err = 0;
		if (!err && scrub_next_page(so))
			return; /* a page's member failed: on to the next */
		so_finish(so, err);
		return;
	}
	if (so->so_tries == -1 && so->so_rewrite) {
		mend_read_back(so);
		return;
	}
	if (so->so_tries < 0 || so->so_mode == MODE_DIRECT) {
		/* A direct read that failed is tried again above, planned
		 * anew (the member failed: reconstructed then). */
		if (so->so_tries == -2)
			mend_done(so);
		if (!scrub_next_page(so))
			so_finish(so, 0);
		return;
	}
	write_stage(so);
}
