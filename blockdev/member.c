/* member: run-time member management across the layer tree.  Levels
 * provide the sweeps (l_sweep); this file keeps states and ownership. */
#include "member.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *member_state_name(int state)
{
	switch (state) {
	case LAYER_MEMBER_OK: return "ok";
	case LAYER_MEMBER_FAILED: return "failed";
	case LAYER_MEMBER_REBUILDING: return "rebuilding";
	}
	return "?";
}

int member_lookup(struct bdev *top, const char *addr, struct layer **parent,
		  int *idx, char *err, size_t errlen)
{
	struct bdev *cur = top;
	const char *p = addr;

	*parent = NULL;
	for (;;) {
		char *end;
		long i = strtol(p, &end, 10);
		struct layer *l;

		if (end == p || i < 0 || (*end && *end != '.')) {
			snprintf(err, errlen, "'%s' is not a member address like 2 or 1.0", addr);
			return -EINVAL;
		}
		if (!bdev_is_layer(cur)) {
			snprintf(err, errlen, "'%s': %s has no members", addr, cur->bd_name);
			return -EINVAL;
		}
		l = layer_of(cur);
		if (i >= l->l_nr) {
			snprintf(err, errlen, "'%s': %s has members 0 to %d", addr,
				 l->l_kind, l->l_nr - 1);
			return -EINVAL;
		}
		if (!*end) {
			*parent = l;
			*idx = (int)i;
			return 0;
		}
		cur = l->l_members[i];
		p = end + 1;
	}
}

void member_fail(struct layer *l, int m)
{
	layer_set_state(l, m, LAYER_MEMBER_FAILED);
}

static void rebuild_done(struct layer *l, int err)
{
	for (int i = 0; i < l->l_nr; i++) {
		if (l->l_state[i] != LAYER_MEMBER_REBUILDING)
			continue;
		layer_set_state(l, i, err ? LAYER_MEMBER_FAILED : LAYER_MEMBER_OK);
		fprintf(stderr, "rawvec: %s member %d: rebuild %s%s\n", l->l_kind, i,
			err ? "failed: " : "complete", err ? strerror(-err) : "");
	}
}

int member_rebuild(struct layer *l)
{
	return l->l_sweep(l, LAYER_SWEEP_REBUILD, rebuild_done);
}

int member_can_replace(struct layer *l, int m, char *err, size_t errlen)
{
	struct bdev *old = l->l_members[m];

	if (l->l_state[m] != LAYER_MEMBER_FAILED) {
		snprintf(err, errlen, "member %d of %s is %s: fail it first", m,
			 l->l_kind, member_state_name(l->l_state[m]));
		return -EBUSY;
	}
	if (old->bd_stats.inflight) {
		snprintf(err, errlen, "member %d still has %u I/Os in flight: retry",
			 m, old->bd_stats.inflight);
		return -EBUSY;
	}
	if (l->l_sweep_running) {
		snprintf(err, errlen, "%s is busy with a rebuild or scrub", l->l_kind);
		return -EBUSY;
	}
	return 0;
}

int member_replace(struct layer *l, int m, struct bdev *dev, char *err,
		   size_t errlen)
{
	struct bdev *old = l->l_members[m];
	int ret = member_can_replace(l, m, err, errlen);

	if (ret)
		return ret;
	if (dev->bd_size < old->bd_size) {
		snprintf(err, errlen, "%s has %llu bytes, member %d needs %llu",
			 dev->bd_name, (unsigned long long)dev->bd_size, m,
			 (unsigned long long)old->bd_size);
		return -ENOSPC;
	}
	if (dev->bd_align > l->l_bdev.bd_align) {
		snprintf(err, errlen, "%s needs %u-byte alignment, the array uses %u",
			 dev->bd_name, dev->bd_align, l->l_bdev.bd_align);
		return -EINVAL;
	}
	l->l_members[m] = dev;
	dev->bd_trace = old->bd_trace; /* a trace goes on under the old id */
	dev->bd_trace_id = old->bd_trace_id;
	bdev_destroy(old);
	if (!l->l_sweep) {
		/* No redundancy to rebuild from: the new member is blank. */
		layer_set_state(l, m, LAYER_MEMBER_OK);
		return 0;
	}
	l->l_rebuild_pos = 0;
	layer_set_state(l, m, LAYER_MEMBER_REBUILDING);
	ret = member_rebuild(l);
	if (ret) {
		layer_set_state(l, m, LAYER_MEMBER_FAILED);
		snprintf(err, errlen, "cannot start the rebuild: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

static void scrub_done(struct layer *l, int err)
{
	fprintf(stderr, "rawvec: %s scrub %s: %llu mismatched sectors\n", l->l_kind,
		err ? "stopped" : "done", (unsigned long long)l->l_mismatch_sectors);
}

static int scrub_tree(struct bdev *d, bool repair, bool start)
{
	struct layer *l;
	int n = 0, r;

	if (!bdev_is_layer(d))
		return 0;
	l = layer_of(d);
	for (int i = 0; i < l->l_nr; i++) {
		r = scrub_tree(l->l_members[i], repair, start);
		if (r < 0)
			return r;
		n += r;
	}
	if (!l->l_sweep)
		return n;
	if (!start)
		return l->l_sweep_running ? -EBUSY : n + 1;
	r = l->l_sweep(l, repair ? LAYER_SWEEP_REPAIR : LAYER_SWEEP_CHECK, scrub_done);
	return r < 0 ? r : n + 1;
}

int member_scrub(struct bdev *top, bool repair)
{
	int r = scrub_tree(top, repair, false);

	return r < 0 ? r : scrub_tree(top, repair, true);
}
