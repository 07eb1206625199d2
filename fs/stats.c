/* stats: the read-only JSON file MOUNTPOINT/stats.  Field names are a
 * contract (docs/stats.md documents each); add fields, never rename them. */
#include "fs/fs.h"
#include "blockdev/levels/layer.h"
#include "blockdev/members/faulty.h"
#include "blockdev/levels/member.h"
#include "blockdev/levels/raid56.h"
#include "blockdev/levels/super.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/sysmacros.h>

struct jbuf {
	char *p;
	size_t len, cap;
};

static void jprintf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->len >= b->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n < b->cap - b->len ? (size_t)n : b->cap - b->len - 1;
}

/* JSON string escaping for paths: quotes, backslashes, control bytes. */
static void jstring(struct jbuf *b, const char *s)
{
	jprintf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			jprintf(b, "\\%c", c);
		else if (c < 0x20)
			jprintf(b, "\\u%04x", c);
		else
			jprintf(b, "%c", c);
	}
	jprintf(b, "\"");
}

/* Per-op field names: "<count name>" and "<op>_bytes". */
static const char *const op_count_names[BDEV_NR_OPS] = {
	[BDEV_READ] = "reads",	     [BDEV_WRITE] = "writes",
	[BDEV_FLUSH] = "flushes",    [BDEV_DISCARD] = "discards",
	[BDEV_ZERO] = "write_zeroes",
};

/* "read_lat": p50/p99/mean/max in microseconds, and the histogram keyed by
 * each non-empty bucket's lower bound in ns, so readers such as
 * `rawvec stat` can take percentiles over an interval from two snapshots. */
static void lat_json(struct jbuf *b, const char *name, const struct bdev_lat *l)
{
	uint64_t n = 0;

	for (int i = 0; i < BDEV_LAT_BUCKETS; i++)
		n += l->hist[i];
	jprintf(b, ", \"%s\": {\"p50_us\": %.1f, \"p99_us\": %.1f, "
		   "\"mean_us\": %.1f, \"max_us\": %.1f, \"sum_ns\": %llu, \"hist\": {",
		name, bdev_lat_quantile(l, 0.5) / 1e3, bdev_lat_quantile(l, 0.99) / 1e3,
		n ? (double)l->sum_ns / (double)n / 1e3 : 0.0, l->max_ns / 1e3,
		(unsigned long long)l->sum_ns);
	for (int i = 0, first = 1; i < BDEV_LAT_BUCKETS; i++) {
		if (!l->hist[i])
			continue;
		jprintf(b, "%s\"%llu\": %llu", first ? "" : ", ",
			(unsigned long long)bdev_lat_lower(i),
			(unsigned long long)l->hist[i]);
		first = 0;
	}
	jprintf(b, "}}");
}

/* "super": an array's md v1.2 metadata, as mdadm --examine shows it. */
static void super_json(struct jbuf *b, const struct layer *l)
{
	struct super_stats st;
	char uuid[36];

	if (!super_stats(l, &st))
		return;
	super_uuid_str(st.sb->set_uuid, uuid);
	jprintf(b, ", \"super\": {\"version\": \"1.2\", \"uuid\": \"%s\", \"name\": ", uuid);
	{
		char name[33];

		snprintf(name, sizeof(name), "%.32s", st.sb->set_name);
		jstring(b, name);
	}
	jprintf(b, ", \"level\": \"%s\", \"layout\": %u, \"chunk\": %llu, "
		   "\"raid_disks\": %u, \"events\": %llu, \"state\": \"%s\", "
		   "\"resync\": \"%s\", \"data_offset\": %llu, \"updates\": %llu, "
		   "\"devices\": [",
		super_level_name(st.sb->level), st.sb->layout,
		(unsigned long long)st.sb->chunksize * 512, st.sb->raid_disks,
		(unsigned long long)st.sb->events, st.active ? "active" : "clean",
		st.resyncing ? "running" : st.resync_pending ? "pending" : "none",
		(unsigned long long)st.sb->data_offset * 512,
		(unsigned long long)st.updates);
	for (int s = 0; s < l->l_nr; s++) {
		super_uuid_str(st.dev_uuid[s], uuid);
		jprintf(b, "%s{\"dev_number\": %u, \"uuid\": \"%s\", \"role\": ",
			s ? ", " : "", st.dev_number[s], uuid);
		if (st.role[s] == SUPER_ROLE_FAULTY)
			jprintf(b, "\"faulty\"}");
		else
			jprintf(b, "%u}", st.role[s]);
	}
	jprintf(b, "]}");
}

static void bdev_json(struct jbuf *b, const struct bdev *d, const char *state)
{
	const struct bdev_stats *s = &d->bd_stats;

	jprintf(b, "{\"name\": ");
	jstring(b, d->bd_name);
	jprintf(b, ", \"state\": \"%s\"", state);
	jprintf(b, ", \"size\": %llu, \"align\": %u, \"mem_align\": %u, "
		   "\"blockdev\": %s",
		(unsigned long long)d->bd_size, d->bd_align, d->bd_mem_align,
		d->bd_is_blockdev ? "true" : "false");
	for (int op = 0; op < BDEV_NR_OPS; op++)
		jprintf(b, ", \"%s\": %llu, \"%s_bytes\": %llu",
			op_count_names[op], (unsigned long long)s->ops[op],
			bdev_op_name(op), (unsigned long long)s->bytes[op]);
	jprintf(b, ", \"errors\": %llu, \"inflight\": %u, \"inflight_max\": %u",
		(unsigned long long)s->errors, s->inflight, s->inflight_max);
	/* Keyed by the bucket's lower bound in bytes; empty ones left out. */
	jprintf(b, ", \"size_hist\": {");
	for (int i = 0, first = 1; i < BDEV_HIST_BUCKETS; i++) {
		if (!s->size_hist[i])
			continue;
		jprintf(b, "%s\"%llu\": %llu", first ? "" : ", ",
			i ? 1ull << (i + 9) : 0ull, (unsigned long long)s->size_hist[i]);
		first = 0;
	}
	jprintf(b, "}");
	lat_json(b, "read_lat", &s->lat[BDEV_READ]);
	lat_json(b, "write_lat", &s->lat[BDEV_WRITE]);
	if (bdev_is_layer(d)) {
		const struct layer *l = layer_of((struct bdev *)d);

		jprintf(b, ", \"kind\": \"%s\", \"chunk\": %llu, "
			   "\"member_size\": %llu, \"splits\": %llu, "
			   "\"pieces\": %llu, \"merged\": %llu",
			l->l_kind, (unsigned long long)l->l_chunk,
			(unsigned long long)l->l_member_size,
			(unsigned long long)l->l_stats.splits,
			(unsigned long long)l->l_stats.pieces,
			(unsigned long long)l->l_stats.merged);
		if (l->l_sweep)
			jprintf(b, ", \"degraded\": %d, \"sweep_running\": %s, "
				   "\"sweep_done_pct\": %.1f, \"sweep_bytes_per_sec\": %.0f, "
				   "\"rebuild_pos\": %llu, \"mismatch_sectors\": %llu, "
				   "\"sweep_held_writes\": %llu",
				l->l_nr_bad, l->l_sweep_running ? "true" : "false",
				l->l_sweep_total ? 100.0 * l->l_sweep_pos / l->l_sweep_total : 0.0,
				layer_sweep_rate(l),
				(unsigned long long)l->l_rebuild_pos,
				(unsigned long long)l->l_mismatch_sectors,
				(unsigned long long)l->l_stats.held_writes);
		super_json(b, l);
		if (bdev_is_faulty(d))
			jprintf(b, ", \"injected_read_errors\": %llu, \"injected_write_errors\": %llu, "
				   "\"injected_spikes\": %llu",
				(unsigned long long)faulty_stats(d)->injected[BDEV_READ],
				(unsigned long long)faulty_stats(d)->injected[BDEV_WRITE],
				(unsigned long long)faulty_stats(d)->spikes);
		if (bdev_is_raid56(d)) {
			const struct raid56_stats *r = raid56_stats(d);

			jprintf(b, ", \"full_stripe_writes\": %llu, \"rmw_writes\": %llu, "
				   "\"rcw_writes\": %llu, \"parity_reads\": %llu, "
				   "\"parity_copy_bytes\": %llu, \"degraded_ops\": %llu, "
				   "\"stripe_waits\": %llu, \"merged_writes\": %llu",
				(unsigned long long)r->full_stripe_writes,
				(unsigned long long)r->rmw_writes,
				(unsigned long long)r->rcw_writes,
				(unsigned long long)r->parity_reads,
				(unsigned long long)r->parity_copy_bytes,
				(unsigned long long)r->degraded_ops,
				(unsigned long long)r->stripe_waits,
				(unsigned long long)r->merged_writes);
		}
		jprintf(b, ", \"members\": [");
		for (int i = 0; i < l->l_nr; i++) {
			jprintf(b, i ? ", " : "");
			bdev_json(b, l->l_members[i], member_state_name(l->l_state[i]));
		}
		jprintf(b, "]");
	} else {
		jprintf(b, ", \"kind\": \"%s\"", d->bd_kind ? d->bd_kind : "?");
		/* What the member is, so that another rawvec mount can tell
		 * whether it stacks on this one (fs/pathcheck.c). */
		if (d->bd_is_blockdev)
			jprintf(b, ", \"st_rdev\": \"%u:%u\"", major(d->bd_id_ino),
				minor(d->bd_id_ino));
		else if (d->bd_id_dev)
			jprintf(b, ", \"st_dev\": \"%u:%u\", \"st_ino\": %llu",
				major(d->bd_id_dev), minor(d->bd_id_dev),
				(unsigned long long)d->bd_id_ino);
	}
	jprintf(b, "}");
}

size_t rv_stats_json(struct rv_fs *fs, char *buf, size_t len)
{
	const struct rv_counters *c = &fs->cnt;
	const struct bdev_rw_ctx *rw = &fs->rwc;
	struct jbuf b = { buf, 0, len };

	jprintf(&b, "{\n  \"transport\": \"%s\",\n",
		fs->use_uring ? "uring" : "dev");
	jprintf(&b, "  \"ring_task_flags\": %s,\n",
		fs->loop.task_flags ? "true" : "false");
	jprintf(&b, "  \"max_write\": %u,\n  \"read_only\": %s,\n",
		fs->max_write, fs->read_only ? "true" : "false");
	jprintf(&b, "  \"requests\": %llu, \"ring_requests\": %llu, "
		    "\"dev_requests\": %llu,\n",
		(unsigned long long)c->requests,
		(unsigned long long)c->ring_requests,
		(unsigned long long)c->dev_requests);
	jprintf(&b, "  \"reads\": %llu, \"read_bytes\": %llu, "
		    "\"writes\": %llu, \"write_bytes\": %llu,\n",
		(unsigned long long)c->reads, (unsigned long long)c->read_bytes,
		(unsigned long long)c->writes,
		(unsigned long long)c->write_bytes);
	jprintf(&b, "  \"fsyncs\": %llu, \"discards\": %llu, \"zeroes\": %llu,\n",
		(unsigned long long)c->fsyncs, (unsigned long long)c->discards,
		(unsigned long long)c->zeroes);
	jprintf(&b, "  \"inflight\": %u, \"inflight_max\": %u, \"errors\": %llu, "
		    "\"io_errors\": %llu,\n",
		c->inflight, c->inflight_max, (unsigned long long)c->errors,
		(unsigned long long)c->io_errors);
	jprintf(&b, "  \"copied_bytes\": %llu, \"rmw_writes\": %llu, "
		    "\"unaligned_reads\": %llu, \"range_lock_waits\": %llu,\n",
		(unsigned long long)rw->bytes_bounced,
		(unsigned long long)rw->rmw_ops,
		(unsigned long long)rw->unaligned_reads,
		(unsigned long long)rw->lock_waits);
	jprintf(&b, "  \"target\": ");
	bdev_json(&b, fs->dev, "ok");
	jprintf(&b, "\n}\n");
	return b.len;
}
