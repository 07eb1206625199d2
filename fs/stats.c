/* stats: the read-only JSON file MOUNTPOINT/stats.  Field names are a
 * contract (docs/stats.md documents each); add fields, never rename them. */
#include "fs/fs.h"
#include "fs/json.h"
#include "blockdev/kind.h"
#include "blockdev/levels/layer.h"
#include "blockdev/levels/member.h"
#include "blockdev/levels/super.h"

#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

/* Per-op field names: "<count name>" and "<op>_bytes". */
static const char *const op_count_names[BDEV_NR_OPS] = {
	[BDEV_READ] = "reads",	      [BDEV_WRITE] = "writes",
	[BDEV_FLUSH] = "flushes",     [BDEV_DISCARD] = "discards",
	[BDEV_ZERO] = "write_zeroes",
};

/* "read_lat": p50/p99/mean/max in microseconds, and the histogram keyed by
 * each non-empty bucket's lower bound in ns, so readers such as
 * `rawvec stat` can take percentiles over an interval from two snapshots. */
static void lat_json(struct json_w *w, const char *name,
		     const struct bdev_lat *l)
{
	uint64_t n = 0;

	for (int i = 0; i < BDEV_LAT_BUCKETS; i++)
		n += l->hist[i];
	json_key(w, name);
	json_obj_open(w);
	json_kv_double(w, "p50_us", bdev_lat_quantile(l, 0.5) / 1e3, 1);
	json_kv_double(w, "p99_us", bdev_lat_quantile(l, 0.99) / 1e3, 1);
	json_kv_double(w, "mean_us",
		       n ? (double)l->sum_ns / (double)n / 1e3 : 0.0, 1);
	json_kv_double(w, "max_us", l->max_ns / 1e3, 1);
	json_kv_u64(w, "sum_ns", l->sum_ns);
	json_key(w, "hist");
	json_obj_open(w);
	for (int i = 0; i < BDEV_LAT_BUCKETS; i++) {
		if (!l->hist[i])
			continue;
		json_key_u64(w, bdev_lat_lower(i));
		json_u64(w, l->hist[i]);
	}
	json_obj_close(w);
	json_obj_close(w);
}

/* "super": an array's md v1.2 metadata, as mdadm --examine shows it. */
static void super_json(struct json_w *w, const struct layer *l)
{
	struct super_stats st;
	char uuid[36];

	if (!super_stats(l, &st))
		return;
	json_key(w, "super");
	json_obj_open(w);
	json_kv_str(w, "version", "1.2");
	super_uuid_str(st.sb->set_uuid, uuid);
	json_kv_str(w, "uuid", uuid);
	json_key(w, "name");
	json_strn(w, (const char *)st.sb->set_name, sizeof(st.sb->set_name));
	json_kv_str(w, "level", super_level_name(st.sb->level));
	json_kv_u64(w, "layout", st.sb->layout);
	json_kv_u64(w, "chunk", (uint64_t)st.sb->chunksize * 512);
	json_kv_u64(w, "raid_disks", st.sb->raid_disks);
	json_kv_u64(w, "events", st.sb->events);
	json_kv_str(w, "state", st.active ? "active" : "clean");
	json_kv_str(w, "resync",
		    st.resyncing      ? "running" :
		    st.resync_pending ? "pending" :
					"none");
	json_kv_u64(w, "data_offset", (uint64_t)st.sb->data_offset * 512);
	json_kv_u64(w, "updates", st.updates);
	json_kv_u64(w, "acks_held", st.acks_held);
	json_kv_u64(w, "far_failures", st.far_failures);
	json_key(w, "devices");
	json_arr_open(w);
	for (int s = 0; s < l->l_nr; s++) {
		json_obj_open(w);
		json_kv_u64(w, "dev_number", st.dev_number[s]);
		super_uuid_str(st.dev_uuid[s], uuid);
		json_kv_str(w, "uuid", uuid);
		if (st.role[s] == SUPER_ROLE_FAULTY)
			json_kv_str(w, "role", "faulty");
		else
			json_kv_u64(w, "role", st.role[s]);
		json_obj_close(w);
	}
	json_arr_close(w);
	json_obj_close(w);
}

static void stat_field(void *ctx, const char *name, uint64_t val)
{
	json_kv_u64(ctx, name, val);
}

static void layer_json(struct json_w *w, const struct bdev *d)
{
	const struct layer *l = layer_of((struct bdev *)d);
	struct layer_stats ls = layer_stats_sum(l);

	json_kv_str(w, "kind", l->l_kind);
	json_kv_u64(w, "chunk", l->l_chunk);
	json_kv_u64(w, "member_size", l->l_member_size);
	json_kv_u64(w, "splits", ls.splits);
	json_kv_u64(w, "pieces", ls.pieces);
	json_kv_u64(w, "merged", ls.merged);
	json_kv_i64(w, "loops", layer_loops(l));
	if (l->l_sweep) {
		json_kv_i64(w, "degraded", layer_nr_bad(l));
		json_kv_bool(w, "sweep_running", l->l_sweep_running);
		json_kv_double(w, "sweep_done_pct",
			       l->l_sweep_total ? 100.0 * l->l_sweep_pos /
							  l->l_sweep_total :
						  0.0,
			       1);
		json_kv_double(w, "sweep_bytes_per_sec", layer_sweep_rate(l),
			       0);
		json_kv_u64(w, "rebuild_pos", l->l_rebuild_pos);
		json_kv_u64(w, "mismatch_sectors", l->l_mismatch_sectors);
		json_kv_u64(w, "rewritten_sectors", l->l_rewritten_sectors);
		json_kv_u64(w, "corrected_sectors",
			    __atomic_load_n(&l->l_corrected_sectors,
					    __ATOMIC_RELAXED));
		json_kv_u64(w, "sweep_held_writes", ls.held_writes);
	}
	super_json(w, l);
	/* The level's or member kind's own fields. */
	if (d->bd_desc && d->bd_desc->bk_stats)
		d->bd_desc->bk_stats(d, stat_field, w);
}

/* "%u:%u", the way ls -l and /proc/self/mountinfo spell a device. */
static void dev_json(struct json_w *w, const char *key, dev_t dev)
{
	char s[24];

	snprintf(s, sizeof(s), "%u:%u", major(dev), minor(dev));
	json_kv_str(w, key, s);
}

static void bdev_json(struct json_w *w, struct bdev *d, const char *state)
{
	static struct bdev_stats sum; /* 4 KiB: off the stack of a recursion */
	const struct bdev_stats *s = &sum;

	bdev_stats_sum(d, &sum);
	json_obj_open(w);
	json_kv_str(w, "name", d->bd_name);
	json_kv_str(w, "state", state);
	json_kv_u64(w, "size", d->bd_size);
	json_kv_u64(w, "align", d->bd_align);
	json_kv_u64(w, "mem_align", d->bd_mem_align);
	json_kv_bool(w, "blockdev", d->bd_is_blockdev);
	for (int op = 0; op < BDEV_NR_OPS; op++) {
		char key[32];

		json_kv_u64(w, op_count_names[op], s->ops[op]);
		snprintf(key, sizeof(key), "%s_bytes", bdev_op_name(op));
		json_kv_u64(w, key, s->bytes[op]);
	}
	json_kv_u64(w, "errors", s->errors);
	json_kv_u64(w, "inflight", s->inflight);
	json_kv_u64(w, "inflight_max", s->inflight_max);
	/* Keyed by the bucket's lower bound in bytes; empty ones left out. */
	json_key(w, "size_hist");
	json_obj_open(w);
	for (int i = 0; i < BDEV_HIST_BUCKETS; i++) {
		if (!s->size_hist[i])
			continue;
		json_key_u64(w, i ? 1ull << (i + 9) : 0ull);
		json_u64(w, s->size_hist[i]);
	}
	json_obj_close(w);
	lat_json(w, "read_lat", &s->lat[BDEV_READ]);
	lat_json(w, "write_lat", &s->lat[BDEV_WRITE]);
	if (bdev_is_layer(d)) {
		const struct layer *l = layer_of((struct bdev *)d);

		layer_json(w, d);
		json_key(w, "members");
		json_arr_open(w);
		for (int i = 0; i < l->l_nr; i++)
			bdev_json(w, l->l_members[i],
				  member_state_name(layer_member_state(l, i)));
		json_arr_close(w);
	} else {
		json_kv_str(w, "kind", d->bd_kind ? d->bd_kind : "?");
		/* What the member is, so that another rawvec mount can tell
		 * whether it stacks on this one (fs/pathcheck.c). */
		if (d->bd_is_blockdev) {
			dev_json(w, "st_rdev", (dev_t)d->bd_id_ino);
		} else if (d->bd_id_dev) {
			dev_json(w, "st_dev", (dev_t)d->bd_id_dev);
			json_kv_u64(w, "st_ino", d->bd_id_ino);
		}
		if (d->bd_desc && d->bd_desc->bk_stats)
			d->bd_desc->bk_stats(d, stat_field, w);
	}
	json_obj_close(w);
}

/* What the stats file shows of the loops, each read once, so that the
 * top-level counts are the sums of the per-loop ones shown beside them. */
struct loops_snap {
	struct rv_counters sum;
	struct bdev_rw_ctx rw;
	uint64_t requests[LOOP_MAX], msgs_sent[LOOP_MAX];
};

/* Every loop's counters, summed. */
static void sum_loops(struct rv_fs *fs, struct loops_snap *snap)
{
	struct rv_counters *c = &snap->sum;
	struct bdev_rw_ctx *rw = &snap->rw;

	memset(snap, 0, sizeof(*snap));
	for (int i = 0; i < fs->nr_loops; i++) {
		const struct rv_counters *l = &fs->loops[i].cnt;
		const struct bdev_rw_ctx *r = &fs->loops[i].rwc;
		uint32_t m =
			__atomic_load_n(&l->inflight_max, __ATOMIC_RELAXED);

		snap->requests[i] = bdev_stat_read(&l->requests);
		snap->msgs_sent[i] =
			__atomic_load_n(&fs->loops[i].loop.msgs_sent,
					__ATOMIC_RELAXED);
		c->requests += snap->requests[i];
		c->reads += bdev_stat_read(&l->reads);
		c->writes += bdev_stat_read(&l->writes);
		c->read_bytes += bdev_stat_read(&l->read_bytes);
		c->write_bytes += bdev_stat_read(&l->write_bytes);
		c->fsyncs += bdev_stat_read(&l->fsyncs);
		c->discards += bdev_stat_read(&l->discards);
		c->zeroes += bdev_stat_read(&l->zeroes);
		c->errors += bdev_stat_read(&l->errors);
		c->io_errors += bdev_stat_read(&l->io_errors);
		c->ring_requests += bdev_stat_read(&l->ring_requests);
		c->dev_requests += bdev_stat_read(&l->dev_requests);
		c->inflight += __atomic_load_n(&l->inflight, __ATOMIC_RELAXED);
		if (m > c->inflight_max)
			c->inflight_max = m;
		rw->bytes_bounced += bdev_stat_read(&r->bytes_bounced);
		rw->rmw_ops += bdev_stat_read(&r->rmw_ops);
		rw->unaligned_reads += bdev_stat_read(&r->unaligned_reads);
		rw->lock_waits += bdev_stat_read(&r->lock_waits);
	}
	bdev_stat_mark(&fs->inflight_max_seen, c->inflight, &c->inflight_max);
}

/* The loops: how many, why, and each one's share of the requests. */
static void loops_json(struct json_w *w, const struct rv_fs *fs,
		       const struct loops_snap *snap)
{
	json_kv_u64(w, "threads", (uint64_t)fs->nr_loops);
	json_kv_str(w, "threads_why", fs->threads_why ? fs->threads_why : "");
	json_kv_bool(w, "pinned", fs->pin);
	json_key(w, "loops");
	json_arr_open(w);
	for (int i = 0; i < fs->nr_loops; i++) {
		json_obj_open(w);
		json_kv_u64(w, "queues", (uint64_t)fs->loops[i].nr_queues);
		json_kv_u64(w, "requests", snap->requests[i]);
		json_kv_u64(w, "msgs_sent", snap->msgs_sent[i]);
		json_obj_close(w);
	}
	json_arr_close(w);
}

ssize_t rv_stats_json(struct rv_fs *fs, char *buf, size_t len)
{
	static struct loops_snap snap;
	const struct rv_counters *c = &snap.sum;
	const struct bdev_rw_ctx *rw = &snap.rw;
	struct json_w w;

	sum_loops(fs, &snap);
	/* A few fields to a line at the top, for a person reading it. */
	json_w_init(&w, buf, len);
	json_obj_open(&w);
	json_newline(&w);
	json_kv_str(&w, "transport", fs->use_uring ? "uring" : "dev");
	json_newline(&w);
	json_kv_bool(&w, "ring_task_flags", fs->loops[0].loop.task_flags);
	json_newline(&w);
	loops_json(&w, fs, &snap);
	json_newline(&w);
	json_kv_u64(&w, "max_write", fs->max_write);
	json_newline(&w);
	json_kv_bool(&w, "read_only", fs->read_only);
	json_newline(&w);
	json_kv_u64(&w, "requests", c->requests);
	json_kv_u64(&w, "ring_requests", c->ring_requests);
	json_kv_u64(&w, "dev_requests", c->dev_requests);
	json_newline(&w);
	json_kv_u64(&w, "reads", c->reads);
	json_kv_u64(&w, "read_bytes", c->read_bytes);
	json_kv_u64(&w, "writes", c->writes);
	json_kv_u64(&w, "write_bytes", c->write_bytes);
	json_newline(&w);
	json_kv_u64(&w, "fsyncs", c->fsyncs);
	json_kv_u64(&w, "discards", c->discards);
	json_kv_u64(&w, "zeroes", c->zeroes);
	json_newline(&w);
	json_kv_u64(&w, "inflight", c->inflight);
	json_kv_u64(&w, "inflight_max", c->inflight_max);
	json_kv_u64(&w, "errors", c->errors);
	json_kv_u64(&w, "io_errors", c->io_errors);
	json_newline(&w);
	json_kv_u64(&w, "copied_bytes", rw->bytes_bounced);
	json_kv_u64(&w, "rmw_writes", rw->rmw_ops);
	json_kv_u64(&w, "unaligned_reads", rw->unaligned_reads);
	json_kv_u64(&w, "range_lock_waits", rw->lock_waits);
	json_newline(&w);
	json_key(&w, "target");
	bdev_json(&w, fs->dev, "ok");
	json_newline(&w);
	json_obj_close(&w);
	json_newline(&w);
	return json_w_end(&w);
}
