/* raid1: mirroring; writes go to every mirror, reads alternate between
 * them and fall back to another mirror on error; rebuild and scrub. */
#include "blockdev/levels/layer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void raid1_submit(struct bdev *dev, struct bdev_req *req)
{
	layer_submit_mirrored(layer_of(dev), req);
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
	int redos; /* of the current step */
	int err;
	uint8_t *buf[LAYER_MAX_MEMBERS];
	struct pvec vec[LAYER_MAX_MEMBERS];
	struct bdev_req sub[LAYER_MAX_MEMBERS];
	struct bdev_req agg;
	bool mismatch[LAYER_MAX_MEMBERS];
	void (*done)(struct layer *l, int err);
};

static void sweep_step(struct r1_sweep *sw);

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
	void (*done)(struct layer *, int) = sw->done;
	int err = sw->err;

	for (int i = 0; i < l->l_nr; i++)
		free(sw->buf[i]);
	free(sw);
	l->l_sweep_lo = l->l_sweep_hi = 0;
	layer_sweep_release(l);
	layer_sweep_end(l);
	if (done)
		done(l, err);
}

static void sweep_agg_end(struct bdev_req *req)
{
	struct r1_sweep *sw = req->br_private;
	struct layer *l = sw->l;

	if (req->br_error) {
		sw->err = req->br_error;
		sweep_finish(sw);
		return;
	}
	if (sw->stage == 0) {
		/* Reads done: decide what to write. */
		sw->stage = 1;
		sweep_begin(sw);
		for (int i = 0; i < l->l_nr; i++) {
			bool write = false;

			if (sw->kind == LAYER_SWEEP_REBUILD)
				write = l->l_state[i] == LAYER_MEMBER_REBUILDING;
			else if (i != sw->src && l->l_state[i] == LAYER_MEMBER_OK) {
				for (uint64_t o = 0; o < sw->len; o += 4096) {
					uint64_t n = sw->len - o < 4096 ? sw->len - o : 4096;

					if (memcmp(sw->buf[i] + o, sw->buf[sw->src] + o, n)) {
						l->l_mismatch_sectors += n / 512;
						write = sw->kind == LAYER_SWEEP_REPAIR;
					}
				}
			}
			if (write) {
				sweep_io(sw, BDEV_WRITE, i, sw->buf[sw->src]);
			}
		}
		bdev_req_complete(&sw->agg, 0);
		return;
	}
	/* A user write into the range meanwhile may have been overwritten
	 * with older data: redo the step, and hold new writes back if that
	 * keeps happening, or a write storm there stalls the sweep. */
	if (l->l_sweep_dirty && sw->kind != LAYER_SWEEP_CHECK) {
		if (++sw->redos >= SWEEP_REDOS_BEFORE_BARRIER)
			l->l_sweep_barrier = true;
		sweep_step(sw);
		return;
	}
	sw->redos = 0;
	layer_sweep_release(l);
	sw->pos += sw->len;
	if (sw->kind == LAYER_SWEEP_REBUILD)
		l->l_rebuild_pos = sw->pos;
	l->l_sweep_pos = sw->pos;
	sweep_step(sw);
}

static void sweep_step(struct r1_sweep *sw)
{
	struct layer *l = sw->l;

	if (sw->pos >= l->l_member_size) {
		sweep_finish(sw);
		return;
	}
	sw->len = l->l_member_size - sw->pos;
	if (sw->len > SWEEP_STEP)
		sw->len = SWEEP_STEP;
	sw->src = -1;
	for (int i = 0; i < l->l_nr && sw->src < 0; i++)
		if (l->l_state[i] == LAYER_MEMBER_OK)
			sw->src = i;
	if (sw->src < 0) {
		sw->err = -EIO; /* no good mirror left to copy from */
		sweep_finish(sw);
		return;
	}
	l->l_sweep_lo = sw->pos;
	l->l_sweep_hi = sw->pos + sw->len;
	/* Writes already in flight here may land on either side of ours. */
	l->l_sweep_dirty = layer_writes_overlap(l, l->l_sweep_lo, l->l_sweep_hi);
	sw->stage = 0;
	sweep_begin(sw);
	for (int i = 0; i < l->l_nr; i++) {
		bool read = i == sw->src ||
			    (sw->kind != LAYER_SWEEP_REBUILD &&
			     l->l_state[i] == LAYER_MEMBER_OK);

		if (read)
			sweep_io(sw, BDEV_READ, i, sw->buf[i]);
	}
	bdev_req_complete(&sw->agg, 0);
}

static int raid1_sweep(struct layer *l, struct loop *loop, enum layer_sweep_kind kind,
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
	sweep_step(sw);
	return 0;
}

static const struct bdev_ops raid1_ops = {
	.submit = raid1_submit,
	.destroy = layer_destroy,
};

int raid1_create(struct bdev **members, int nr, uint64_t data_offset,
		 size_t max_io_bytes, uint32_t in_segs, struct bdev **out,
		 char *err, size_t errlen)
{
	uint64_t msize;
	struct layer *l;

	if (nr < 2) {
		snprintf(err, errlen, "raid1 needs at least 2 members, got %d", nr);
		layer_free_members(members, nr);
		return -EINVAL;
	}
	if (layer_create("raid1", members, nr, 0, max_io_bytes, in_segs,
			 &raid1_ops, &l)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	msize = layer_common_size(members, nr, data_offset, l->l_bdev.bd_align);
	if (!msize) {
		layer_destroy(&l->l_bdev);
		snprintf(err, errlen, "members hold no data past their %llu-byte metadata",
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
