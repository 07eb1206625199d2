/* member: run-time member management across the layer tree.  Levels
 * provide the sweeps (l_sweep); this file keeps states and ownership. */
#include "blockdev/levels/member.h"
#include "blockdev/core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A sweep's done callback gets only its layer: the layer's address, for
 * the log line, is looked up from the top the last command named. */

const char *member_state_name(int state)
{
	switch (state) {
	case LAYER_MEMBER_OK:
		return "ok";
	case LAYER_MEMBER_FAILED:
		return "failed";
	case LAYER_MEMBER_REBUILDING:
		return "rebuilding";
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
		const char *end = p;
		long i = 0;
		struct layer *l;

		/* Digits alone, as member_addr() writes them: strtol() would
		 * also take "+1", "-0" and " 1". */
		while (*end >= '0' && *end <= '9') {
			if (i <= LAYER_MAX_MEMBERS)
				i = i * 10 + (*end - '0');
			end++;
		}
		if (end == p || (*end && *end != '.')) {
			snprintf(err, errlen,
				 "'%s' is not a member address like 2 or 1.0",
				 addr);
			return -EINVAL;
		}
		if (*p == '0' && end - p > 1) {
			snprintf(err, errlen,
				 "'%s': a member number has no leading zero (1, not 01)",
				 addr);
			return -EINVAL;
		}
		if (!bdev_is_layer(cur)) {
			snprintf(err, errlen, "'%s': %s has no members", addr,
				 cur->bd_name);
			return -EINVAL;
		}
		l = layer_of(cur);
		if (i >= l->l_nr) {
			snprintf(err, errlen, "'%s': %s has members 0 to %d",
				 addr, l->l_kind, l->l_nr - 1);
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

/* "2" under the top, "1.2" under member 1.  Nesting is bounded by the
 * expression's length, far below what would not fit. */
static void member_addr(char *buf, size_t len, const char *parent, int i)
{
	int n = !strcmp(parent, "-") ? snprintf(buf, len, "%d", i) :
				       snprintf(buf, len, "%s.%d", parent, i);

	if (n < 0 || (size_t)n >= len)
		snprintf(buf, len, "?");
}

static int walk_node(struct bdev *node, const char *addr,
		     int (*fn)(struct bdev *, const char *, void *), void *ctx)
{
	char sub[MEMBER_ADDR_MAX];
	struct layer *l;
	int ret = fn(node, addr, ctx);

	if (ret || !bdev_is_layer(node))
		return ret;
	l = layer_of(node);
	for (int i = 0; i < l->l_nr; i++) {
		member_addr(sub, sizeof(sub), addr, i);
		ret = walk_node(l->l_members[i], sub, fn, ctx);
		if (ret)
			return ret;
	}
	return 0;
}

int member_walk(struct bdev *top,
		int (*fn)(struct bdev *node, const char *addr, void *ctx),
		void *ctx)
{
	return walk_node(top, "-", fn, ctx);
}

struct find_ctx {
	const struct bdev *want;
	char addr[MEMBER_ADDR_MAX];
};

static int find_node(struct bdev *node, const char *addr, void *ctx)
{
	struct find_ctx *f = ctx;

	if (node != f->want)
		return 0;
	snprintf(f->addr, sizeof(f->addr), "%s", addr);
	return 1;
}

/* @l's address in the tree its sweep was started on, "?" when it is not
 * (or no longer) there. */
static void layer_addr(const struct layer *l, char *buf, size_t len)
{
	struct find_ctx f = { .want = &l->l_bdev };

	if (l->l_sweep_top && member_walk(l->l_sweep_top, find_node, &f))
		snprintf(buf, len, "%s", f.addr);
	else
		snprintf(buf, len, "?");
}

/* "raid5 (the top)" or "raid1 (member 0)", for a layer in log lines. */
static void layer_desc(const struct layer *l, const char *addr, char *buf,
		       size_t len)
{
	if (!strcmp(addr, "-"))
		snprintf(buf, len, "%s (the top)", l->l_kind);
	else
		snprintf(buf, len, "%s (member %s)", l->l_kind, addr);
}

bool member_fail(struct layer *l, int m)
{
	return layer_set_state(l, m, LAYER_MEMBER_FAILED);
}

static void rebuild_done(struct layer *l, int err)
{
	char laddr[MEMBER_ADDR_MAX], maddr[MEMBER_ADDR_MAX];

	layer_addr(l, laddr, sizeof(laddr));
	for (int i = 0; i < l->l_nr; i++) {
		if (layer_member_state(l, i) != LAYER_MEMBER_REBUILDING)
			continue;
		layer_set_state(l, i,
				err ? LAYER_MEMBER_FAILED : LAYER_MEMBER_OK);
		member_addr(maddr, sizeof(maddr), laddr, i);
		bdev_log("member %s (%s of %s): rebuild %s%s", maddr,
			 l->l_members[i]->bd_name, l->l_kind,
			 err ? "failed: " : "complete",
			 err ? strerror(-err) : "");
	}
}

int member_rebuild(struct loop *loop, struct bdev *top, struct layer *l)
{
	l->l_sweep_top = top;
	return l->l_sweep(l, loop, LAYER_SWEEP_REBUILD, rebuild_done);
}

struct busy_ctx {
	char *err;
	size_t errlen;
};

/* A sweep running anywhere: a rebuild names the member it rebuilds. */
static int find_sweep(struct bdev *node, const char *addr, void *ctx)
{
	struct busy_ctx *b = ctx;
	char what[MEMBER_ADDR_MAX + 32];
	struct layer *l;

	if (!bdev_is_layer(node) || !layer_of(node)->l_sweep_running)
		return 0;
	l = layer_of(node);
	for (int i = 0; i < l->l_nr; i++) {
		if (layer_member_state(l, i) != LAYER_MEMBER_REBUILDING)
			continue;
		member_addr(what, sizeof(what), addr, i);
		snprintf(b->err, b->errlen,
			 "a rebuild of member %s is running (%.0f%% done): one rebuild at a time, wait for it to finish",
			 what,
			 l->l_sweep_total ?
				 100.0 * l->l_sweep_pos / l->l_sweep_total :
				 0.0);
		return 1;
	}
	layer_desc(l, addr, what, sizeof(what));
	snprintf(b->err, b->errlen,
		 "a check or repair of %s is running: wait for it to finish",
		 what);
	return 1;
}

/*
 * Whether the members other than @m can rebuild it: with @m missing, the
 * level may miss one member fewer than its redundancy (raid5 reads all of
 * the others, raid6 all but one, raid1 one healthy mirror).  Deciding it
 * here refuses a replace that would only end in "rebuild failed".
 */
static int rebuild_possible(const struct layer *l, int m, const char *addr,
			    char *err, size_t errlen)
{
	const struct bdev_kind *k = l->l_bdev.bd_desc;
	int bad = 0;

	if (!k || !k->bk_redundancy)
		return 0;
	for (int i = 0; i < l->l_nr; i++)
		if (i != m && layer_member_state(l, i) != LAYER_MEMBER_OK)
			bad++;
	if (bad <= k->bk_redundancy(l->l_nr) - 1)
		return 0;
	snprintf(err, errlen,
		 "%s has %d failed members: rebuilding member %s needs %s",
		 l->l_kind, bad + 1, addr, k->bk_rebuild_needs);
	return -EINVAL;
}

/* An array under the member (itself included) whose metadata still has
 * I/O in flight or due, or holds writes: it may not be freed yet. */
static int md_busy(struct bdev *node, const char *addr, void *ctx)
{
	struct layer *l;

	(void)addr;
	(void)ctx;
	if (!bdev_is_layer(node))
		return 0;
	l = layer_of(node);
	return l->l_md_ops && l->l_md_ops->busy(l);
}

int member_can_replace(struct bdev *top, const char *addr, struct layer *l,
		       int m, char *err, size_t errlen)
{
	struct busy_ctx b = { err, errlen };
	struct bdev *old = l->l_members[m];
	int ret;

	if (member_walk(top, find_sweep, &b))
		return -EBUSY;
	if (layer_member_state(l, m) != LAYER_MEMBER_FAILED) {
		snprintf(err, errlen,
			 "member %s (%s of %s) is %s: fail it first", addr,
			 old->bd_name, l->l_kind,
			 member_state_name(layer_member_state(l, m)));
		return -EBUSY;
	}
	if (l->l_sweep) {
		ret = rebuild_possible(l, m, addr, err, errlen);
		if (ret)
			return ret;
	}
	if (bdev_inflight(old) || member_walk(old, md_busy, NULL)) {
		snprintf(err, errlen,
			 "member %s still has I/O in flight: retry", addr);
		return -EBUSY;
	}
	return 0;
}

int member_replace(struct loop *loop, struct bdev *top, const char *addr,
		   struct layer *l, int m, struct bdev *dev, char *err,
		   size_t errlen)
{
	struct bdev *old = l->l_members[m];
	int ret = member_can_replace(top, addr, l, m, err, errlen);

	if (ret)
		return ret;
	if (dev->bd_size < old->bd_size) {
		snprintf(err, errlen, "%s has %llu bytes, member %s needs %llu",
			 dev->bd_name, (unsigned long long)dev->bd_size, addr,
			 (unsigned long long)old->bd_size);
		return -ENOSPC;
	}
	if ((l->l_bdev.bd_desc->bk_flags & BK_CONCAT) &&
	    dev->bd_size != old->bd_size) {
		/* linear lays its members back to back by their sizes: one of
		 * another size would move every later member's data at the
		 * next start. */
		snprintf(err, errlen,
			 "%s has %llu bytes, %s member %s has %llu: a replacement must have the same size",
			 dev->bd_name, (unsigned long long)dev->bd_size,
			 l->l_kind, addr, (unsigned long long)old->bd_size);
		return -EINVAL;
	}
	if (dev->bd_align > l->l_bdev.bd_align) {
		snprintf(err, errlen,
			 "%s needs %u-byte alignment, the array uses %u",
			 dev->bd_name, dev->bd_align, l->l_bdev.bd_align);
		return -EINVAL;
	}
	/* Under a layer that runs on every loop, so does the new member
	 * (or it is owned, like any device that keeps state). */
	if (l->l_bdev.bd_stats_more) {
		ret = bdev_tree_share(dev, l->l_bdev.bd_nr_shards, loop);
		if (ret < 0) {
			snprintf(err, errlen, "sharing %s: %s", dev->bd_name,
				 strerror(-ret));
			return ret;
		}
	}
	/* Published before the state that lets other loops use it. */
	__atomic_store_n(&l->l_members[m], dev, __ATOMIC_RELEASE);
	/* A trace goes on under the old id. */
	dev->bd_observe = old->bd_observe;
	dev->bd_observer = old->bd_observer;
	dev->bd_trace_id = old->bd_trace_id;
	bdev_destroy(old);
	if (!l->l_sweep) {
		/* No redundancy to rebuild from: the new member is blank. */
		layer_set_state(l, m, LAYER_MEMBER_OK);
		return 0;
	}
	__atomic_store_n(&l->l_rebuild_pos, 0, __ATOMIC_RELEASE);
	layer_set_state(l, m, LAYER_MEMBER_REBUILDING);
	ret = member_rebuild(loop, top, l);
	if (ret) {
		layer_set_state(l, m, LAYER_MEMBER_FAILED);
		snprintf(err, errlen, "cannot start the rebuild: %s",
			 strerror(-ret));
		return ret;
	}
	return 0;
}

static void scrub_done(struct layer *l, int err)
{
	char addr[MEMBER_ADDR_MAX], desc[MEMBER_ADDR_MAX + 32], more[80] = "";

	layer_addr(l, addr, sizeof(addr));
	layer_desc(l, addr, desc, sizeof(desc));
	if (l->l_rewritten_sectors)
		snprintf(more, sizeof(more),
			 "; %llu sectors rewritten that a member could not read",
			 (unsigned long long)l->l_rewritten_sectors);
	if (err)
		bdev_log("%s: scrub stopped at %.0f%% (%s): %llu mismatched sectors in the part checked%s",
			 desc,
			 l->l_sweep_total ?
				 100.0 * l->l_sweep_pos / l->l_sweep_total :
				 0.0,
			 strerror(-err),
			 (unsigned long long)l->l_mismatch_sectors, more);
	else
		bdev_log("%s: scrub done: %llu mismatched sectors%s", desc,
			 (unsigned long long)l->l_mismatch_sectors, more);
}

struct scrub_ctx {
	struct loop *loop;
	struct bdev *top;
	bool repair;
	char *why; /* the first layer skipped, and why */
	size_t whylen;
};

/* A level missing as many members as it can do without has nothing left
 * to compare its data with: a raid5 missing one reads it back from
 * parity, which then always agrees.  Such a check would count 0 and
 * prove nothing. */
static bool scrub_skips(const struct scrub_ctx *s, const struct layer *l)
{
	int bad = layer_nr_bad(l);
	struct find_ctx f = { .want = &l->l_bdev };
	char desc[MEMBER_ADDR_MAX + 32];

	if (bad < bdev_kind_redundancy(l->l_bdev.bd_desc, l->l_nr))
		return false;
	if (s->why && !s->why[0]) {
		if (!member_walk(s->top, find_node, &f))
			snprintf(f.addr, sizeof(f.addr), "?");
		layer_desc(l, f.addr, desc, sizeof(desc));
		snprintf(s->why, s->whylen,
			 "%s is degraded (%d of its %d members failed): it has no redundancy left to check its data against; replace a failed member first",
			 desc, bad, l->l_nr);
	}
	return true;
}

static int scrub_tree(const struct scrub_ctx *s, struct bdev *d, bool start)
{
	struct layer *l;
	int n = 0, r;

	if (!bdev_is_layer(d))
		return 0;
	l = layer_of(d);
	for (int i = 0; i < l->l_nr; i++) {
		r = scrub_tree(s, l->l_members[i], start);
		if (r < 0)
			return r;
		n += r;
	}
	if (!l->l_sweep || scrub_skips(s, l))
		return n;
	if (!start)
		return l->l_sweep_running ? -EBUSY : n + 1;
	l->l_sweep_top = s->top;
	r = l->l_sweep(l, s->loop,
		       s->repair ? LAYER_SWEEP_REPAIR : LAYER_SWEEP_CHECK,
		       scrub_done);
	return r < 0 ? r : n + 1;
}

int member_scrub(struct loop *loop, struct bdev *top, bool repair, char *why,
		 size_t whylen)
{
	struct scrub_ctx s = { loop, top, repair, why, whylen };
	int r;

	if (why && whylen)
		why[0] = '\0';
	r = scrub_tree(&s, top, false);
	return r < 0 ? r : scrub_tree(&s, top, true);
}

struct kind_ctx {
	unsigned flags;
	const char *name;
};

static int find_kind(struct bdev *node, const char *addr, void *ctx)
{
	struct kind_ctx *k = ctx;

	(void)addr;
	if (!node->bd_desc || !(node->bd_desc->bk_flags & k->flags))
		return 0;
	k->name = node->bd_desc->bk_name;
	return 1;
}

const char *member_find_kind(struct bdev *top, unsigned flags)
{
	struct kind_ctx k = { flags, NULL };

	member_walk(top, find_kind, &k);
	return k.name;
}

static int find_data(struct bdev *node, const char *addr, void *ctx)
{
	(void)addr;
	(void)ctx;
	return !bdev_is_layer(node) &&
	       !(node->bd_desc && (node->bd_desc->bk_flags & BK_NO_DATA));
}

bool member_keeps_data(struct bdev *top)
{
	return member_walk(top, find_data, NULL) > 0;
}

static int find_md(struct bdev *node, const char *addr, void *ctx)
{
	(void)addr;
	(void)ctx;
	return bdev_is_layer(node) && layer_of(node)->l_md;
}

bool member_has_md(struct bdev *top)
{
	return member_walk(top, find_md, NULL) > 0;
}
