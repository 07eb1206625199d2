/* super: md v1.2 metadata on the write path: barriers that hold writes
 * back until the superblocks say what md's would, updates, safe mode. */
#include "blockdev/levels/super_int.h"
#include "blockdev/core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Over every loop's shard: a sharded array's writes run on all. */
uint64_t super_writes_in_flight(struct layer *l)
{
	struct bdev_stats st;
	uint64_t n = 0;

	bdev_stats_sum(&l->l_bdev, &st);
	for (int op = BDEV_WRITE; op <= BDEV_ZERO; op++)
		if (op != BDEV_FLUSH)
			n += st.ops[op] - st.done[op];
	return n;
}

/* Every failure counted on any loop is on disk. */
bool super_recorded(const struct super_array *md)
{
	return __atomic_load_n(&md->sa_fail_gen, __ATOMIC_SEQ_CST) ==
	       __atomic_load_n(&md->sa_rec_gen, __ATOMIC_SEQ_CST);
}

/* A request a loop other than the metadata's submits or completes: only
 * while the array is sharded, and so marked active. */
static bool far_from(const struct super_array *md, const struct bdev_req *req)
{
	return req->br_loop && req->br_loop != md->sa_loop;
}

/* A failed member of raid1/5/6 misses writes and is stale from then on.
 * raid0 and linear have no such state (md cannot fail their members): a
 * member failed there only returned errors, and counts again after a
 * restart. */
static bool slot_faulty(const struct super_array *md, int s)
{
	return md->sa_l->l_sweep &&
	       layer_member_state(md->sa_l, s) == LAYER_MEMBER_FAILED;
}

uint16_t super_slot_role(const struct super_array *md, int s)
{
	return slot_faulty(md, s) ? SUPER_ROLE_FAULTY : (uint16_t)s;
}

static void fill(struct super_array *md, int s, bool active,
		 struct super_info *si)
{
	struct layer *l = md->sa_l;
	struct super_dev *d = &md->sa_dev[s];

	*si = md->sa_sb;
	si->dev_number = d->sd_number;
	memcpy(si->device_uuid, d->sd_uuid, 16);
	si->data_size = (d->sd_bdev->bd_size - l->l_data_offset) / 512;
	si->resync_offset = active || md->sa_resync_pending ? 0 :
							      SUPER_MAX_SECTOR;
	si->feature_map = 0;
	si->recovery_offset = 0;
	if (layer_member_state(l, s) == LAYER_MEMBER_REBUILDING) {
		si->feature_map |= SUPER_FEATURE_RECOVERY_OFFSET;
		si->recovery_offset = l->l_rebuild_pos / 512;
	}
	for (unsigned i = 0; i < si->max_dev; i++)
		si->dev_roles[i] = SUPER_ROLE_SPARE;
	for (int i = 0; i < l->l_nr; i++)
		si->dev_roles[md->sa_dev[i].sd_number] = super_slot_role(md, i);
}

uint64_t super_safe_mode_ns = 200ull * 1000 * 1000;

uint64_t super_md_time(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec & ((1ull << 40) - 1);
}

/* Let the level shard across loops again: marked active, nothing due
 * that needs one loop. */
void super_spread(struct super_array *md)
{
	struct layer *l = md->sa_l;

	if (md->sa_spread || md->sa_gathering || !layer_spreads(l) ||
	    !md->sa_ondisk_active || !md->sa_want_active ||
	    md->sa_resync_pending || md->sa_io)
		return;
	md->sa_spread = true;
	layer_scatter(l, md->sa_loop, LAYER_GATHER_MD);
}

/* Recorded: the writes other loops hold for it may go.  Stored before
 * the slots are read, as a far loop asks before it looks again: one of
 * the two sees the other. */
static void far_wake(struct super_array *md)
{
	__atomic_store_n(&md->sa_rec_gen, md->sa_round_gen, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < LOOP_MAX; i++) {
		struct super_far *f = &md->sa_far[i];

		if (i != loop_id(md->sa_loop) &&
		    __atomic_load_n(&f->sf_asked, __ATOMIC_SEQ_CST) &&
		    __atomic_exchange_n(&f->sf_asked, false, __ATOMIC_SEQ_CST))
			loop_msg(md->sa_loop, loop_by_id(i), &f->sf_op);
	}
}

static void round_done(struct super_array *md)
{
	md->sa_updates++;
	md->sa_ondisk_active = md->sa_round_active;
	far_wake(md);
	/* Safe mode watches every active spell, however it began. */
	if (md->sa_ondisk_active)
		loop_hook_arm_at(md->sa_loop, &md->sa_idle,
				 __atomic_load_n(&md->sa_last_write_ns,
						 __ATOMIC_RELAXED) +
					 super_safe_mode_ns);
	super_kick(md);
	super_spread(md);
}

static void dev_end(struct bdev_req *req);

static void dev_io(struct super_dev *d, enum bdev_op op)
{
	if (op == BDEV_WRITE) {
		pvec_from_buf(&d->sd_vec, 1, d->sd_buf, SUPER_BLOCK_BYTES, 0);
		bdev_req_init(&d->sd_req, BDEV_WRITE, SUPER_OFFSET_BYTES,
			      SUPER_BLOCK_BYTES, &d->sd_vec,
			      pvec_iter_init(&d->sd_vec, 1), NULL, d);
	} else {
		bdev_req_init(&d->sd_req, BDEV_FLUSH, 0, 0, NULL,
			      (struct pvec_iter){ 0 }, NULL, d);
	}
	d->sd_req.br_end = dev_end;
	d->sd_req.br_meta = true;
	d->sd_req.br_loop = d->sd_md->sa_loop;
	bdev_submit(d->sd_bdev, &d->sd_req);
}

/* Each member's round: (a flush, when it marks the array clean: the data
 * written before must be durable first), the superblock, a flush (durable
 * before any write it lets through). */
static void dev_end(struct bdev_req *req)
{
	struct super_dev *d = req->br_private;
	struct super_array *md = d->sd_md;
	int s = (int)(d - md->sa_dev);

	if (req->br_error && md->sa_l->l_members[s] == d->sd_bdev &&
	    layer_member_state(md->sa_l, s) != LAYER_MEMBER_FAILED) {
		/* md fails a member whose superblock cannot be written. */
		bdev_log("%s member %d (%s): superblock write failed: %s; member failed",
			 md->sa_l->l_kind, s, d->sd_bdev->bd_name,
			 strerror(-req->br_error));
		layer_set_state(md->sa_l, s, LAYER_MEMBER_FAILED);
	}
	if (!req->br_error && d->sd_stage < 2) {
		dev_io(d, d->sd_stage++ == 0 ? BDEV_WRITE : BDEV_FLUSH);
		return;
	}
	if (--md->sa_io == 0)
		round_done(md);
}

/* One update: events up, every member not failed gets its superblock. */
static void write_round(struct super_array *md)
{
	struct layer *l = md->sa_l;
	struct super_info si;

	md->sa_sb.events++;
	md->sa_sb.utime = super_md_time();
	md->sa_changed = false;
	/* The states fill() reads include every failure counted so far. */
	md->sa_round_gen = __atomic_load_n(&md->sa_fail_gen, __ATOMIC_SEQ_CST);
	md->sa_round_active = md->sa_want_active;
	md->sa_io = 1; /* held until every member is under way */
	for (int s = 0; s < l->l_nr; s++) {
		struct super_dev *d = &md->sa_dev[s];

		if (slot_faulty(md, s))
			continue;
		fill(md, s, md->sa_round_active, &si);
		super_encode(&si, d->sd_buf);
		md->sa_io++;
		if (md->sa_round_active || md->sa_resync_pending) {
			d->sd_stage = 1;
			dev_io(d, BDEV_WRITE);
		} else {
			d->sd_stage = 0;
			dev_io(d, BDEV_FLUSH);
		}
	}
	if (--md->sa_io == 0)
		round_done(md);
}

/* Writes that completed while an update was due: out now that it is done. */
static void release_ended(struct super_array *md)
{
	while (!fifo_empty(&md->sa_ended) && !md->sa_changed && !md->sa_io &&
	       super_recorded(md))
		bdev_req_end(fifo_pop(&md->sa_ended, br_qnext));
}

/* On a far loop: what it held goes once every failure is recorded. */
static void far_release_now(struct super_far *f)
{
	while (!fifo_empty(&f->sf_ended) && super_recorded(f->sf_md))
		bdev_req_end(fifo_pop(&f->sf_ended, br_qnext));
}

/* Ask for a wake-up, then look again: far_wake() may have come between. */
static void far_ask(struct super_far *f)
{
	__atomic_store_n(&f->sf_asked, true, __ATOMIC_SEQ_CST);
	if (super_recorded(f->sf_md) &&
	    __atomic_exchange_n(&f->sf_asked, false, __ATOMIC_SEQ_CST))
		far_release_now(f);
}

void super_far_release(struct loop_op *op, int res, unsigned flags)
{
	struct super_far *f = container_of(op, struct super_far, sf_op);

	(void)res;
	(void)flags;
	far_release_now(f);
	if (!fifo_empty(&f->sf_ended))
		far_ask(f); /* a failure counted since */
}

static void release_held(struct super_array *md)
{
	struct bdev *dev = &md->sa_l->l_bdev;

	while (!fifo_empty(&md->sa_held) && md->sa_ondisk_active &&
	       !md->sa_changed && !md->sa_io)
		dev->bd_ops->submit(dev, fifo_pop(&md->sa_held, br_qnext));
}

void super_kick(struct super_array *md)
{
	/* -o ro: nothing is written, the superblocks stay as they are. */
	if (md->sa_io || md->sa_l->l_bdev.bd_read_only)
		return;
	/* raid0 and linear have nothing to resync: like md, they are never
	 * marked active. */
	if (!fifo_empty(&md->sa_held) && md->sa_l->l_sweep)
		md->sa_want_active = true;
	if (md->sa_changed || md->sa_want_active != md->sa_ondisk_active) {
		write_round(md);
		return;
	}
	release_ended(md);
	release_held(md);
}

static void idle_gathered(void *arg);

void super_idle_check(struct loop_hook *h)
{
	struct super_array *md = container_of(h, struct super_array, sa_idle);
	uint64_t due = __atomic_load_n(&md->sa_last_write_ns,
				       __ATOMIC_RELAXED) +
		       super_safe_mode_ns,
		 now = loop_now_ns();

	/* Gathering: idle_gathered() looks again once it is. */
	if (!md->sa_ondisk_active || md->sa_gathering)
		return;
	if (now < due || super_writes_in_flight(md->sa_l) ||
	    !fifo_empty(&md->sa_held)) {
		loop_hook_arm_at(md->sa_loop, h,
				 now < due ? due : now + super_safe_mode_ns);
		super_spread(md); /* gathered to look, and written to since */
		return;
	}
	if (md->sa_spread) {
		/* Idle on every loop as far as loop 0 sees: make every write
		 * come here, then look again. */
		md->sa_spread = false;
		md->sa_gathering = true;
		layer_gather(md->sa_l, md->sa_loop, LAYER_GATHER_MD,
			     idle_gathered, md);
		return;
	}
	md->sa_want_active = false;
	super_kick(md);
}

static void idle_gathered(void *arg)
{
	struct super_array *md = arg;

	md->sa_gathering = false;
	super_idle_check(&md->sa_idle);
}

void super_kick_hook(struct loop_hook *h)
{
	super_kick(container_of(h, struct super_array, sa_kick));
}

/*
 * bdev_req_complete()'s barrier: a write that completes while a member
 * state change is not yet on disk (it may have gone out degraded because
 * of that change) is acknowledged only once the superblocks record it,
 * so a crash never leaves a failed member looking fresh behind an
 * acknowledged write.
 */
bool super_hold_end(struct bdev *dev, struct bdev_req *req)
{
	struct super_array *md = layer_of(dev)->l_md;

	if (req->br_op == BDEV_READ || req->br_op == BDEV_FLUSH)
		return false;
	if (far_from(md, req)) {
		struct super_far *f = &md->sa_far[loop_id(req->br_loop)];

		if (super_recorded(md))
			return false;
		__atomic_fetch_add(&md->sa_acks_held, 1, __ATOMIC_RELAXED);
		fifo_push(&f->sf_ended, req, br_qnext);
		far_ask(f);
		return true;
	}
	if (!md->sa_changed && !md->sa_io && super_recorded(md))
		return false;
	__atomic_fetch_add(&md->sa_acks_held, 1, __ATOMIC_RELAXED);
	fifo_push(&md->sa_ended, req, br_qnext);
	return true;
}

/* bdev_submit()'s barrier for @dev: true when it took @req to hold. */
bool super_hold(struct bdev *dev, struct bdev_req *req)
{
	struct super_array *md = layer_of(dev)->l_md;

	if (req->br_op == BDEV_READ || req->br_op == BDEV_FLUSH)
		return false;
	__atomic_store_n(&md->sa_last_write_ns, req->br_start_ns,
			 __ATOMIC_RELAXED);
	/* Sharded, so marked active: a failure pending is held at the end. */
	if (far_from(md, req))
		return false;
	if (!md->sa_changed && !md->sa_io && fifo_empty(&md->sa_held) &&
	    !md->sa_l->l_sweep)
		return false;
	if (md->sa_ondisk_active && md->sa_want_active && !md->sa_changed &&
	    !md->sa_io && fifo_empty(&md->sa_held)) {
		if (!md->sa_idle.lh_armed)
			loop_hook_arm_at(md->sa_loop, &md->sa_idle,
					 req->br_start_ns + super_safe_mode_ns);
		return false;
	}
	fifo_push(&md->sa_held, req, br_qnext);
	super_kick(md);
	return true;
}

/* Member @m changed state: recorded by the next update, on this loop. */
static void changed_here(struct super_array *md, int m)
{
	struct layer *l = md->sa_l;

	/* replace put a new device in the slot: it gets an identity of
	 * its own, so its old superblock (if any) never counts as this. */
	if (md->sa_dev[m].sd_bdev != l->l_members[m] && super_new_dev(md, m))
		bdev_log("%s member %d: no random bytes for its device UUID",
			 l->l_kind, m);
	md->sa_changed = true;
	/* Called from completions and sweeps: write from the loop's next
	 * turn, where one write covers every change of this batch. */
	loop_hook_arm(md->sa_loop, &md->sa_kick);
	/* A resync put off while degraded runs once a rebuild is done. */
	if (md->sa_resync_pending && !md->sa_resyncing && !layer_nr_bad(l))
		loop_hook_arm_at(md->sa_loop, &md->sa_resync_hook,
				 loop_now_ns() + 100000000ull);
}

/* Whether member @m's new state is the superblocks' business: raid0 and
 * linear record only a new device in the slot (a replace); -o ro writes
 * nothing. */
static bool md_records(const struct layer *l, int m)
{
	return !l->l_bdev.bd_read_only &&
	       (l->l_sweep ||
		l->l_md->sa_dev[m].sd_bdev !=
			__atomic_load_n(&l->l_members[m], __ATOMIC_ACQUIRE));
}

/* layer_set_state()'s note, on any loop, before the new state can be
 * seen: counted, so that a write another loop then sends out degraded
 * waits for the record too. */
void super_changing(struct layer *l, int m)
{
	if (md_records(l, m))
		__atomic_fetch_add(&l->l_md->sa_fail_gen, 1, __ATOMIC_SEQ_CST);
}

/* ... and after it (whichever loop's compare-and-swap changed it): the
 * superblocks must say so before the next write, and before a write that
 * may have gone out degraded because of it is acknowledged. */
void super_changed(struct layer *l, int m)
{
	struct super_array *md = l->l_md;
	struct loop *here = loop_current();

	if (!md_records(l, m))
		return;
	if (here && here != md->sa_loop) {
		/* A sharded array's stripe op met it: loop 0 records it. */
		__atomic_fetch_or(&md->sa_far_changed, 1ull << m,
				  __ATOMIC_SEQ_CST);
		if (!__atomic_exchange_n(&md->sa_far_sent, true,
					 __ATOMIC_SEQ_CST))
			loop_msg(here, md->sa_loop, &md->sa_far_op);
		return;
	}
	changed_here(md, m);
}

/* Members failed on other loops, on the metadata's loop. */
void super_far_changed(struct loop_op *op, int res, unsigned flags)
{
	struct super_array *md =
		container_of(op, struct super_array, sa_far_op);
	uint64_t mask;

	(void)res;
	(void)flags;
	__atomic_store_n(&md->sa_far_sent, false, __ATOMIC_SEQ_CST);
	mask = __atomic_exchange_n(&md->sa_far_changed, 0, __ATOMIC_SEQ_CST);
	for (int m = 0; m < LAYER_MAX_MEMBERS; m++)
		if (mask & (1ull << m)) {
			md->sa_far_failures++;
			changed_here(md, m);
		}
}
