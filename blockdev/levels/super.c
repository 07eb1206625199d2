/* super: a running array's md v1.2 metadata: updates that hold writes
 * back until the superblocks say what md's would, resync and restarts. */
#include "blockdev/levels/super.h"
#include "blockdev/core/log.h"
#include "blockdev/levels/member.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- a running array --------------------------------------------------- */

struct super_array;
static int new_dev(struct super_array *md, int s);
static void resync_start(struct loop_hook *h);
static void array_free(struct super_array *md);
static const struct layer_md_ops md_ops;

/**
 * struct super_dev - a member slot's record: which device holds it, and
 * the block its superblock is written from.
 */
struct super_dev {
	struct super_array *sd_md;
	struct bdev *sd_bdev; /* the member this record describes */
	uint32_t sd_number;   /* dev_number */
	uint8_t sd_uuid[16];
	uint8_t *sd_buf;
	struct pvec sd_vec;
	struct bdev_req sd_req;
	int sd_stage; /* of its round: 0 flush, 1 superblock, 2 flush */
};

/**
 * struct super_array - one array's metadata.  Writes (and discards) meet
 * super_hold() in bdev_submit(): they pass only while the superblocks on
 * disk say "active" and record every member's current state; otherwise
 * they wait on @sa_held for the next superblock write.
 * @sa_want_active: what the next write should say
 * @sa_changed:     member states changed since the last write
 * @sa_io:          member superblock writes and flushes in flight
 */
struct super_array {
	struct layer *sa_l;
	/* The loop that owns this array's metadata: superblock I/O, the
	 * safe-mode timer and the resync start run on it (md's one thread
	 * per array); the members' requests may come from any. */
	struct loop *sa_loop;
	struct super_info sa_sb;
	struct super_dev sa_dev[LAYER_MAX_MEMBERS];
	FIFO(struct bdev_req) sa_held;
	/* completed writes waiting for the update */
	FIFO(struct bdev_req) sa_ended;
	int sa_io;
	bool sa_round_active; /* what the round in flight writes */
	bool sa_ondisk_active;
	bool sa_want_active;
	bool sa_changed;
	bool sa_resync_pending;
	bool sa_resyncing;
	bool sa_rebuild_pending;
	bool sa_start_write; /* super_start() writes: new, or state changed */
	uint64_t sa_last_write_ns;
	uint64_t sa_updates;
	struct loop_hook sa_idle; /* safe mode: mark clean when idle */
	struct loop_hook sa_kick; /* a state change, seen off the I/O path */
	struct loop_hook sa_resync_hook;
};

static void kick(struct super_array *md);

static uint64_t writes_in_flight(const struct layer *l)
{
	const struct bdev_stats *st = &l->l_bdev.bd_stats;
	uint64_t n = 0;

	for (int op = BDEV_WRITE; op <= BDEV_ZERO; op++)
		if (op != BDEV_FLUSH)
			n += st->ops[op] - st->done[op];
	return n;
}

/* A failed member of raid1/5/6 misses writes and is stale from then on.
 * raid0 and linear have no such state (md cannot fail their members): a
 * member failed there only returned errors, and counts again after a
 * restart. */
static bool slot_faulty(const struct super_array *md, int s)
{
	return md->sa_l->l_sweep && md->sa_l->l_state[s] == LAYER_MEMBER_FAILED;
}

static uint16_t slot_role(const struct super_array *md, int s)
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
	if (l->l_state[s] == LAYER_MEMBER_REBUILDING) {
		si->feature_map |= SUPER_FEATURE_RECOVERY_OFFSET;
		si->recovery_offset = l->l_rebuild_pos / 512;
	}
	for (unsigned i = 0; i < si->max_dev; i++)
		si->dev_roles[i] = SUPER_ROLE_SPARE;
	for (int i = 0; i < l->l_nr; i++)
		si->dev_roles[md->sa_dev[i].sd_number] = slot_role(md, i);
}

static uint64_t md_time(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec & ((1ull << 40) - 1);
}

static void round_done(struct super_array *md)
{
	md->sa_updates++;
	md->sa_ondisk_active = md->sa_round_active;
	/* Safe mode watches every active spell, however it began. */
	if (md->sa_ondisk_active)
		loop_hook_arm_at(md->sa_loop, &md->sa_idle,
				 md->sa_last_write_ns + SUPER_SAFE_MODE_NS);
	kick(md);
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
	    md->sa_l->l_state[s] != LAYER_MEMBER_FAILED) {
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
	md->sa_sb.utime = md_time();
	md->sa_changed = false;
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
	while (!fifo_empty(&md->sa_ended) && !md->sa_changed && !md->sa_io)
		bdev_req_end(fifo_pop(&md->sa_ended, br_qnext));
}

static void release_held(struct super_array *md)
{
	struct bdev *dev = &md->sa_l->l_bdev;

	while (!fifo_empty(&md->sa_held) && md->sa_ondisk_active &&
	       !md->sa_changed && !md->sa_io)
		dev->bd_ops->submit(dev, fifo_pop(&md->sa_held, br_qnext));
}

static void kick(struct super_array *md)
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

static void idle_check(struct loop_hook *h)
{
	struct super_array *md = container_of(h, struct super_array, sa_idle);
	uint64_t due = md->sa_last_write_ns + SUPER_SAFE_MODE_NS,
		 now = loop_now_ns();

	if (!md->sa_ondisk_active)
		return;
	if (now < due || writes_in_flight(md->sa_l) ||
	    !fifo_empty(&md->sa_held)) {
		loop_hook_arm_at(md->sa_loop, h,
				 now < due ? due : now + SUPER_SAFE_MODE_NS);
		return;
	}
	md->sa_want_active = false;
	kick(md);
}

static void kick_hook(struct loop_hook *h)
{
	kick(container_of(h, struct super_array, sa_kick));
}

/*
 * bdev_req_complete()'s barrier: a write that completes while a member
 * state change is not yet on disk (it may have gone out degraded because
 * of that change) is acknowledged only once the superblocks record it,
 * so a crash never leaves a failed member looking fresh behind an
 * acknowledged write.
 */
static bool super_hold_end(struct bdev *dev, struct bdev_req *req)
{
	struct super_array *md = layer_of(dev)->l_md;

	if (req->br_op == BDEV_READ || req->br_op == BDEV_FLUSH ||
	    (!md->sa_changed && !md->sa_io))
		return false;
	fifo_push(&md->sa_ended, req, br_qnext);
	return true;
}

/* bdev_submit()'s barrier for @dev: true when it took @req to hold. */
static bool super_hold(struct bdev *dev, struct bdev_req *req)
{
	struct super_array *md = layer_of(dev)->l_md;

	if (req->br_op == BDEV_READ || req->br_op == BDEV_FLUSH)
		return false;
	md->sa_last_write_ns = req->br_start_ns;
	if (!md->sa_changed && !md->sa_io && fifo_empty(&md->sa_held) &&
	    !md->sa_l->l_sweep)
		return false;
	if (md->sa_ondisk_active && md->sa_want_active && !md->sa_changed &&
	    !md->sa_io && fifo_empty(&md->sa_held)) {
		if (!md->sa_idle.lh_armed)
			loop_hook_arm_at(md->sa_loop, &md->sa_idle,
					 req->br_start_ns + SUPER_SAFE_MODE_NS);
		return false;
	}
	fifo_push(&md->sa_held, req, br_qnext);
	kick(md);
	return true;
}

/* layer_set_state()'s note that member @m of @l changed state: the
 * superblocks must say so before the next write. */
static void md_changed(struct layer *l, int m)
{
	struct super_array *md = l->l_md;

	/* replace put a new device in the slot: it gets an identity of
	 * its own, so its old superblock (if any) never counts as this. */
	if (md->sa_dev[m].sd_bdev != l->l_members[m] && new_dev(md, m))
		bdev_log("%s member %d: no random bytes for its device UUID",
			 l->l_kind, m);
	else if (!l->l_sweep && md->sa_dev[m].sd_bdev == l->l_members[m])
		return; /* raid0/linear: a fail changes nothing on disk */
	md->sa_changed = true;
	/* Called from completions and sweeps: write from the loop's next
	 * turn, where one write covers every change of this batch. */
	loop_hook_arm(md->sa_loop, &md->sa_kick);
	/* A resync put off while degraded runs once a rebuild is done. */
	if (md->sa_resync_pending && !md->sa_resyncing && !l->l_nr_bad)
		loop_hook_arm_at(md->sa_loop, &md->sa_resync_hook,
				 loop_now_ns() + 100000000ull);
}

static int random_bytes(uint8_t *b, size_t n)
{
	while (n) {
		ssize_t r = getrandom(b, n, 0);

		if (r < 0)
			return -errno;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A new device in slot @s (created, or put there by replace). */
static int new_dev(struct super_array *md, int s)
{
	struct super_dev *d = &md->sa_dev[s];
	uint32_t n;

	for (n = 0; n < SUPER_MAX_DEV; n++) {
		bool used = false;

		for (int i = 0; i < md->sa_l->l_nr; i++)
			used |= i != s && md->sa_dev[i].sd_bdev &&
				md->sa_dev[i].sd_number == n;
		if (!used && (n != d->sd_number || !d->sd_bdev))
			break;
	}
	d->sd_bdev = md->sa_l->l_members[s];
	d->sd_number = n;
	if (n + 1 > md->sa_sb.max_dev)
		md->sa_sb.max_dev = n + 1;
	return random_bytes(d->sd_uuid, 16);
}

int super_attach(struct layer *l, struct loop *loop,
		 const struct super_plan *plan, const struct super_probe *p,
		 int nr, const char *name)
{
	struct super_array *md = calloc(1, sizeof(*md));
	int ret = -ENOMEM;

	if (!md)
		return -ENOMEM;
	md->sa_l = l;
	md->sa_loop = loop;
	md->sa_idle.lh_fn = idle_check;
	md->sa_kick.lh_fn = kick_hook;
	md->sa_resync_hook.lh_fn = resync_start;
	for (int s = 0; s < nr; s++) {
		md->sa_dev[s].sd_md = md;
		md->sa_dev[s].sd_buf = super_block_alloc();
		if (!md->sa_dev[s].sd_buf)
			goto out_free;
	}
	l->l_md = md;
	l->l_md_ops = &md_ops;
	if (plan->action == SUPER_PLAN_ASSEMBLE) {
		const struct super_info *a = &p[plan->authority].sb;

		md->sa_sb = *a;
		/* Every member with a superblock keeps its identity (a failed
		 * one the number the table marks faulty); then one without
		 * gets a number none of them has. */
		for (int i = 0; i < nr; i++) {
			int s = plan->slot_of[i];
			struct super_dev *d = &md->sa_dev[s];

			if (p[i].found) {
				d->sd_bdev = l->l_members[s];
				d->sd_number = p[i].sb.dev_number;
				memcpy(d->sd_uuid, p[i].sb.device_uuid, 16);
			}
		}
		for (int i = 0; i < nr; i++)
			if (!p[i].found &&
			    (ret = new_dev(md, plan->slot_of[i])))
				goto out_free;
		md->sa_ondisk_active = a->resync_offset != SUPER_MAX_SECTOR;
		md->sa_resync_pending = plan->resync;
		for (int s = 0; s < nr; s++) {
			if (plan->state[s] != LAYER_MEMBER_OK) {
				md->sa_start_write = true;
				l->l_state[s] = plan->state[s];
				l->l_nr_bad++;
			}
			md->sa_rebuild_pending |= plan->state[s] ==
						  LAYER_MEMBER_REBUILDING;
		}
	} else {
		struct super_info *si = &md->sa_sb;

		if ((ret = random_bytes(si->set_uuid, 16)))
			goto out_free;
		snprintf(si->set_name, sizeof(si->set_name), "%s", name);
		si->ctime = si->utime = md_time();
		si->level = l->l_bdev.bd_desc->bk_md_level;
		si->layout = si->level >= 5 ? SUPER_LAYOUT_LEFT_SYMMETRIC : 0;
		si->size = si->level == -1 ? 0 : l->l_member_size / 512;
		si->chunksize = (uint32_t)(l->l_chunk / 512);
		si->raid_disks = (uint32_t)nr;
		si->data_offset = l->l_data_offset / 512;
		si->super_offset = SUPER_OFFSET_BYTES / 512;
		si->events = 0;
		for (int s = 0; s < nr; s++)
			if ((ret = new_dev(md, s)))
				goto out_free;
		md->sa_start_write = true;
		md->sa_resync_pending = plan->resync;
	}
	md->sa_want_active = md->sa_ondisk_active;
	/* Mirrors may differ until the resync: every read sees the first. */
	l->l_reads_first = md->sa_resync_pending;
	return 0;
out_free:
	l->l_md = NULL;
	l->l_md_ops = NULL;
	array_free(md);
	return ret;
}

static void array_free(struct super_array *md)
{
	loop_hook_disarm(&md->sa_idle);
	loop_hook_disarm(&md->sa_kick);
	loop_hook_disarm(&md->sa_resync_hook);
	for (int s = 0; s < LAYER_MAX_MEMBERS; s++)
		free(md->sa_dev[s].sd_buf);
	free(md);
}

static void resync_done(struct layer *l, int err)
{
	struct super_array *md = l->l_md;

	bdev_log("%s resync %s: %llu mismatched sectors repaired", l->l_kind,
		 err ? "stopped" : "done",
		 (unsigned long long)l->l_mismatch_sectors);
	md->sa_resyncing = false;
	if (!err) {
		md->sa_resync_pending = false;
		l->l_reads_first = false;
		md->sa_changed = true; /* the superblocks may say clean now */
		loop_hook_arm(md->sa_loop, &md->sa_kick);
		loop_hook_arm_at(md->sa_loop, &md->sa_idle,
				 loop_now_ns() + SUPER_SAFE_MODE_NS);
	}
}

/* Start the resync once no other sweep (a rebuild) runs. */
static void resync_start(struct loop_hook *h)
{
	struct super_array *md =
		container_of(h, struct super_array, sa_resync_hook);
	struct layer *l = md->sa_l;
	int ret;

	if (!md->sa_resync_pending)
		return;
	if (l->l_sweep_running || l->l_nr_bad) {
		/* Degraded: nothing to resync against; a rebuild that
		 * completes rewrites the stripes anyway. */
		if (l->l_sweep_running)
			loop_hook_arm_at(md->sa_loop, h,
					 loop_now_ns() + 100000000ull);
		return;
	}
	ret = l->l_sweep(l, md->sa_loop, LAYER_SWEEP_REPAIR, resync_done);
	md->sa_resyncing = !ret;
	if (ret)
		bdev_log("%s: cannot start the resync: %s", l->l_kind,
			 strerror(-ret));
}

static bool round_over(void *arg)
{
	return !((struct super_array *)arg)->sa_io;
}

static int start_tree(struct bdev *top, struct bdev *d, char *err,
		      size_t errlen)
{
	struct super_array *md;
	struct layer *l;
	int ret;

	if (!bdev_is_layer(d))
		return 0;
	l = layer_of(d);
	for (int i = 0; i < l->l_nr; i++)
		if ((ret = start_tree(top, l->l_members[i], err, errlen)))
			return ret;
	md = l->l_md;
	if (!md)
		return 0;
	if (d->bd_read_only) {
		if (md->sa_start_write || md->sa_rebuild_pending ||
		    md->sa_resync_pending)
			bdev_log("%s: read-only: its superblocks stay as they are, and the rebuild or resync it needs waits for a read-write start",
				 l->l_kind);
		return 0;
	}
	d->bd_hold = super_hold;
	d->bd_hold_end = super_hold_end;
	if (md->sa_start_write) {
		md->sa_changed = true;
		kick(md);
		ret = loop_run_until(md->sa_loop, round_over, md);
		if (ret) {
			snprintf(err, errlen, "%s: writing superblocks: %s",
				 l->l_kind, strerror(-ret));
			return ret;
		}
		if (l->l_nr_bad >
		    bdev_kind_redundancy(l->l_bdev.bd_desc, l->l_nr)) {
			snprintf(err, errlen,
				 "%s: superblocks could not be written on enough members to run (see the log)",
				 l->l_kind);
			return -EIO;
		}
	}
	if (md->sa_rebuild_pending) {
		for (int s = 0; s < l->l_nr; s++)
			if (l->l_state[s] == LAYER_MEMBER_REBUILDING)
				l->l_rebuild_pos = 0;
		ret = member_rebuild(md->sa_loop, top, l);
		if (ret) {
			snprintf(err, errlen,
				 "%s: cannot restart the rebuild: %s",
				 l->l_kind, strerror(-ret));
			return ret;
		}
	}
	if (md->sa_ondisk_active)
		loop_hook_arm_at(md->sa_loop, &md->sa_idle,
				 loop_now_ns() + SUPER_SAFE_MODE_NS);
	if (md->sa_resync_pending)
		loop_hook_arm(md->sa_loop, &md->sa_resync_hook);
	return 0;
}

int super_start(struct bdev *top, char *err, size_t errlen)
{
	return start_tree(top, top, err, errlen);
}

static bool quiesce_tree(struct bdev *d)
{
	struct super_array *md;
	struct layer *l;
	bool done = true;

	if (!bdev_is_layer(d))
		return true;
	l = layer_of(d);
	for (int i = 0; i < l->l_nr; i++)
		done &= quiesce_tree(l->l_members[i]);
	md = l->l_md;
	if (!md || d->bd_read_only)
		return done;
	if (md->sa_ondisk_active && fifo_empty(&md->sa_held) &&
	    !writes_in_flight(l))
		md->sa_want_active = false;
	kick(md);
	return done && !md->sa_io && !md->sa_changed &&
	       md->sa_ondisk_active == md->sa_want_active;
}

bool super_quiesce(struct bdev *top)
{
	return quiesce_tree(top);
}

/* Superblock I/O in flight or due, or writes held: it may not be freed. */
static bool md_busy(const struct layer *l)
{
	const struct super_array *md = l->l_md;

	return md->sa_io || !fifo_empty(&md->sa_held) ||
	       !fifo_empty(&md->sa_ended) || md->sa_kick.lh_armed;
}

static void md_free(struct layer *l)
{
	array_free(l->l_md);
	l->l_md = NULL;
}

static const struct layer_md_ops md_ops = {
	.changed = md_changed,
	.busy = md_busy,
	.free = md_free,
};

bool super_stats(const struct layer *l, struct super_stats *st)
{
	const struct super_array *md = l->l_md;

	if (!md)
		return false;
	st->sb = &md->sa_sb;
	/* What the superblocks say: a resync not yet done keeps them active. */
	st->active = md->sa_ondisk_active || md->sa_resync_pending;
	st->resync_pending = md->sa_resync_pending;
	st->resyncing = md->sa_resyncing;
	st->updates = md->sa_updates;
	for (int s = 0; s < l->l_nr; s++) {
		st->dev_number[s] = md->sa_dev[s].sd_number;
		memcpy(st->dev_uuid[s], md->sa_dev[s].sd_uuid, 16);
		st->role[s] = slot_role(md, s);
	}
	return true;
}
