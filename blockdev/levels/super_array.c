/* super_array: a running array's md metadata from attach to stop: its
 * identity, the start-up update and rebuild, the resync, the clean stop. */
#include "blockdev/levels/super_int.h"
#include "blockdev/core/log.h"
#include "blockdev/levels/member.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void resync_start(struct loop_hook *h);
static void array_free(struct super_array *md);
static const struct layer_md_ops md_ops;

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
int super_new_dev(struct super_array *md, int s)
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
	md->sa_idle.lh_fn = super_idle_check;
	md->sa_kick.lh_fn = super_kick_hook;
	md->sa_resync_hook.lh_fn = resync_start;
	md->sa_far_op.lo_done = super_far_changed;
	for (unsigned i = 0; i < LOOP_MAX; i++) {
		md->sa_far[i].sf_md = md;
		md->sa_far[i].sf_op.lo_done = super_far_release;
	}
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
			    (ret = super_new_dev(md, plan->slot_of[i])))
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
		si->ctime = si->utime = super_md_time();
		si->level = l->l_bdev.bd_desc->bk_md_level;
		si->layout = si->level >= 5 ? SUPER_LAYOUT_LEFT_SYMMETRIC : 0;
		si->size = si->level == -1 ? 0 : l->l_member_size / 512;
		si->chunksize = (uint32_t)(l->l_chunk / 512);
		si->raid_disks = (uint32_t)nr;
		si->data_offset = l->l_data_offset / 512;
		si->super_offset = SUPER_OFFSET_BYTES / 512;
		si->events = 0;
		for (int s = 0; s < nr; s++)
			if ((ret = super_new_dev(md, s)))
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
				 loop_now_ns() + super_safe_mode_ns);
	}
	/* Degraded, a resync waits for a rebuild, gathered meanwhile. */
	super_spread(md);
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
	if (l->l_sweep_running || layer_nr_bad(l)) {
		/* Degraded: nothing to resync against; a rebuild that
		 * completes rewrites the stripes anyway. */
		if (l->l_sweep_running)
			loop_hook_arm_at(md->sa_loop, h,
					 loop_now_ns() + 100000000ull);
		return;
	}
	/* Set first: over members that complete inside submit (mem()),
	 * the whole resync, resync_done() included, runs in this call. */
	md->sa_resyncing = true;
	ret = l->l_sweep(l, md->sa_loop, LAYER_SWEEP_REPAIR, resync_done);
	if (ret)
		md->sa_resyncing = false;
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
	d->bd_hold_any_loop = true;
	if (md->sa_start_write) {
		md->sa_changed = true;
		super_kick(md);
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
				 loop_now_ns() + super_safe_mode_ns);
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
	    !super_writes_in_flight(l))
		md->sa_want_active = false;
	super_kick(md);
	/* A failure another loop met before it stopped is recorded too. */
	return done && !md->sa_io && !md->sa_changed &&
	       md->sa_ondisk_active == md->sa_want_active &&
	       super_recorded(md) &&
	       !__atomic_load_n(&md->sa_far_sent, __ATOMIC_SEQ_CST);
}

bool super_quiesce(struct bdev *top)
{
	return quiesce_tree(top);
}

/* Superblock I/O in flight or due, or writes held: it may not be freed. */
static bool md_busy(const struct layer *l)
{
	const struct super_array *md = l->l_md;

	bool far = __atomic_load_n(&md->sa_far_sent, __ATOMIC_SEQ_CST) ||
		   !super_recorded(md);

	return md->sa_io || !fifo_empty(&md->sa_held) ||
	       !fifo_empty(&md->sa_ended) || md->sa_kick.lh_armed || far;
}

static void md_free(struct layer *l)
{
	array_free(l->l_md);
	l->l_md = NULL;
}

static const struct layer_md_ops md_ops = {
	.changing = super_changing,
	.changed = super_changed,
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
	st->far_failures = md->sa_far_failures;
	st->acks_held = __atomic_load_n(&md->sa_acks_held, __ATOMIC_RELAXED);
	for (int s = 0; s < l->l_nr; s++) {
		st->dev_number[s] = md->sa_dev[s].sd_number;
		memcpy(st->dev_uuid[s], md->sa_dev[s].sd_uuid, 16);
		st->role[s] = super_slot_role(md, s);
	}
	return true;
}
