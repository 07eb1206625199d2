/* layout: build the checked syntax tree top down into devices, each layer
 * sized for its parent; md metadata probed and attached on the way. */
#include "blockdev/layout_int.h"
#include "blockdev/layout.h"
#include "blockdev/core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_twin(struct parser *p, struct lnode *n, struct bdev *d,
		      const char *path);

static int open_leaf(struct parser *p, struct lnode *n, struct bdev **out)
{
	struct bdev_file_opts fo = { .read_only = p->opts->read_only,
				     .create_size = p->opts->create_size };
	struct bdev_kind_args a = { .ka_file = &fo };
	char path[4096], msg[4096 + 128];
	struct bdev *d;
	int ret;

	if (n->name_len >= sizeof(path))
		return layout_fail_at(p, n->at, "path too long");
	if (p->nr_seen == MAX_LEAVES)
		return layout_fail_at(p, n->at,
				      "more than %d member files in one expression",
				      MAX_LEAVES);
	memcpy(path, n->name, n->name_len);
	path[n->name_len] = '\0';
	a.ka_path = path;
	ret = bdev_kind_path()->bk_create(&a, &d, msg, sizeof(msg));
	if (ret)
		return layout_fail_at(p, n->at, "%s", msg);
	ret = check_twin(p, n, d, path);
	if (!ret)
		*out = d;
	return ret;
}

/*
 * Whether the leaf @d just opened (a file, or an export named @path) is
 * one the expression already has; if not, remember it.  Twins are found by
 * what was opened, so "./a.img" and a file just created count too.  Slices
 * of one image that do not overlap are two extents of one physical
 * volume, not twins.  On a twin @d is gone.
 */
static int check_twin(struct parser *p, struct lnode *n, struct bdev *d,
		      const char *path)
{
	if (p->nr_seen == MAX_LEAVES) {
		bdev_destroy(d);
		return layout_fail_at(p, n->at,
				      "more than %d member files in one expression",
				      MAX_LEAVES);
	}
	for (int i = 0; i < p->nr_seen; i++) {
		if (p->seen[i].dev == d->bd_id_dev &&
		    p->seen[i].ino == d->bd_id_ino && p->seen[i].lo < p->hi &&
		    p->lo < p->seen[i].hi) {
			size_t at = p->seen[i].at;
			bool sliced = p->lo || p->hi != UINT64_MAX ||
				      p->seen[i].lo ||
				      p->seen[i].hi != UINT64_MAX;

			if (d->bd_created)
				unlink(path);
			bdev_destroy(d);
			if (sliced)
				return layout_fail_at(p, n->at,
						      "%s is already a member (column %zu), and the two slices of it overlap",
						      path, at);
			return layout_fail_at(p, n->at,
					      "%s is already a member (column %zu)",
					      path, at);
		}
	}
	if (p->opts->create_size && d->bd_desc == bdev_kind_path() &&
	    !d->bd_created && !d->bd_is_blockdev && !p->opts->no_io)
		bdev_log("--create: %s exists (%llu bytes), used as it is",
			 path, (unsigned long long)d->bd_size);
	p->seen[p->nr_seen].dev = d->bd_id_dev;
	p->seen[p->nr_seen].ino = d->bd_id_ino;
	p->seen[p->nr_seen].lo = p->lo;
	p->seen[p->nr_seen].hi = p->hi;
	p->seen[p->nr_seen].at = n->at;
	p->seen[p->nr_seen].created = d->bd_created ? strdup(path) : NULL;
	p->nr_seen++;
	return 0;
}

/* Whether @d holds nothing but the zeroes of images --create made just
 * now: then it may be given a superblock without hiding anyone's data. */
static bool bdev_fresh(struct bdev *d)
{
	if (!bdev_is_layer(d))
		return d->bd_created;
	for (int i = 0; i < layer_of(d)->l_nr; i++)
		if (!bdev_fresh(layer_of(d)->l_members[i]))
			return false;
	return true;
}

/* Striped and mirrored levels use the smallest member's size on every
 * member: say so when that leaves a bigger one partly unused.  @k is the
 * kind the expression names (md for md()). */
static void log_unused(const struct layer *l, const struct bdev_kind *k,
		       const char *level)
{
	uint64_t unit = l->l_chunk ? l->l_chunk : l->l_bdev.bd_align;
	const struct bdev *big = NULL;

	if (k->bk_flags & BK_CONCAT)
		return;
	for (int i = 0; i < l->l_nr; i++)
		if (!big || l->l_members[i]->bd_size > big->bd_size)
			big = l->l_members[i];
	if (big->bd_size - l->l_data_offset < l->l_member_size + unit)
		return;
	bdev_log("%s: members differ in size: each contributes %llu bytes (the smallest, in whole %llu-byte units); %llu bytes of %s are unused",
		 level, (unsigned long long)l->l_member_size,
		 (unsigned long long)unit,
		 (unsigned long long)(big->bd_size - l->l_data_offset -
				      l->l_member_size),
		 big->bd_name);
}

/*
 * An array level: read its members' superblocks, let super_plan() decide
 * what the array is (headerless, new, or assembled: level, order, member
 * states), then build it with that level's create.  Takes ownership of
 * @a's members.
 */
static int build_array(struct parser *p, struct lnode *n,
		       struct bdev_kind_args *a, struct bdev **out)
{
	struct bdev **members = a->ka_members;
	int nr = a->ka_nr;
	struct super_probe *pr = calloc(nr, sizeof(*pr));
	struct super_want want = {
		.chunk = n->chunk_given ? n->args.ka_chunk : 0,
		.mode = p->opts->no_io ? SUPER_NONE : n->super
	};
	const struct bdev_kind *built;
	struct super_plan plan;
	struct bdev **slots;
	char level[16], msg[2048];
	int ret;

	snprintf(level, sizeof(level), "%.*s", (int)n->name_len, n->name);
	want.level = level;
	if (!pr) {
		layer_free_members(members, nr);
		return -ENOMEM;
	}
	for (int i = 0; i < nr; i++) {
		pr[i].name = members[i]->bd_name;
		pr[i].bytes = members[i]->bd_size;
		if (want.mode == SUPER_NONE)
			continue;
		ret = super_probe_member(p->loop, members[i], &pr[i], msg,
					 sizeof(msg));
		if (ret) {
			ret = layout_fail_at(p, n->kids[i]->at, "%s", msg);
			goto out_members;
		}
		pr[i].fresh = bdev_fresh(members[i]);
	}
	ret = super_plan(pr, nr, &want, &plan, msg, sizeof(msg));
	if (ret) {
		ret = layout_fail_at(p, n->at, "%s: %s", level, msg);
		goto out_members;
	}
	slots = calloc(nr, sizeof(*slots));
	if (!slots) {
		ret = -ENOMEM;
		goto out_members;
	}
	for (int i = 0; i < nr; i++)
		slots[plan.slot_of[i]] = members[i];
	free(members);
	a->ka_members = slots;
	a->ka_data_offset = plan.data_offset;
	if (plan.action == SUPER_PLAN_ASSEMBLE)
		a->ka_chunk = plan.chunk;
	built = bdev_kind_find(plan.level, strlen(plan.level));
	if (!built || !built->bk_create) {
		layer_free_members(slots, nr);
		ret = layout_fail_at(p, n->at,
				     "%s: rawvec cannot build a %s array",
				     level, plan.level);
		goto out;
	}
	/* The level's create owns @slots from here, also on failure. */
	ret = built->bk_create(a, out, msg, sizeof(msg));
	if (ret) {
		ret = layout_fail_at(p, n->at, "%s: %s", level, msg);
		goto out;
	}
	log_unused(layer_of(*out), n->kind, level);
	if (plan.action == SUPER_PLAN_ASSEMBLE &&
	    !(built->bk_flags & BK_CONCAT) &&
	    layer_of(*out)->l_member_size != pr[plan.authority].sb.size * 512) {
		/* mdadm --size, or members rounded another way: md would
		 * serve the array at its recorded size, not this one. */
		ret = layout_fail_at(p, n->at,
				     "%s: the superblocks say each member holds %llu bytes, these give %llu: rawvec runs arrays at their members' common size",
				     level,
				     (unsigned long long)pr[plan.authority]
						     .sb.size *
					     512,
				     (unsigned long long)layer_of(*out)
					     ->l_member_size);
		bdev_destroy(*out);
		goto out;
	}
	/* Said once the array stands: members too small for its chunk
	 * made "new array with md v1.2 superblocks" a line before exit 2. */
	if (plan.note[0] && !(plan.action == SUPER_PLAN_NONE &&
			      n->super == SUPER_AUTO && p->said_headerless))
		bdev_log("%s: %s", level, plan.note);
	p->said_headerless |= plan.action == SUPER_PLAN_NONE &&
			      n->super == SUPER_AUTO;
	if (plan.action != SUPER_PLAN_NONE) {
		ret = super_attach(layer_of(*out), p->loop, &plan, pr, nr,
				   n->md_name);
		if (ret) {
			bdev_destroy(*out);
			ret = layout_fail_at(p, n->at, "%s: md metadata: %s",
					     level, strerror(-ret));
		}
	}
	goto out;
out_members:
	layer_free_members(members, nr);
out:
	free(pr);
	return ret;
}

static int build(struct parser *p, struct lnode *n, uint32_t in_segs,
		 struct bdev **out)
{
	size_t max_io = p->opts->max_io_bytes;
	const struct bdev_kind *k = n->kind;
	struct bdev_kind_args a = n->args;
	struct bdev **members;
	uint64_t lo, hi;
	uint32_t child_segs;
	char msg[512];
	int ret, nr = n->nr_kids;

	if (!n->func)
		return open_leaf(p, n, out);
	a.ka_opts = n->own_opts;
	a.ka_max_io_bytes = max_io;
	a.ka_in_segs = in_segs;
	a.ka_nr_loops = p->opts->nr_loops;
	if (!k->bk_max_members) {
		struct bdev_file_opts fo = { .read_only = p->opts->read_only };
		char uri[1024];

		if (n->uri_len >= sizeof(uri))
			return layout_fail_at(p, n->uri_at, "URI too long");
		snprintf(uri, sizeof(uri), "%.*s", (int)n->uri_len,
			 n->uri ? n->uri : "");
		a.ka_path = uri;
		a.ka_file = &fo;
		ret = k->bk_create(&a, out, msg, sizeof(msg));
		if (ret)
			return layout_fail_at(p, n->at, "%.*s: %s",
					      (int)n->name_len, n->name, msg);
		/* An export named twice is a twin like a file named twice. */
		return (*out)->bd_id_ino ? check_twin(p, n, *out, uri) : 0;
	}
	/* An assembled array's chunk is known only from its superblocks:
	 * size the members for the smallest one when none is given. */
	child_segs =
		in_segs +
		layer_max_pieces(max_io,
				 (a.ka_chunk && !n->chunk_given) ||
						 (k->bk_flags & BK_FROM_SUPER) ?
					 4096 :
					 a.ka_chunk,
				 nr);
	members = calloc(nr, sizeof(*members));
	if (!members)
		return -ENOMEM;
	lo = p->lo;
	hi = p->hi;
	if (k->bk_flags & BK_WINDOW) {
		p->lo = lo + a.ka_offset < lo ? UINT64_MAX : lo + a.ka_offset;
		if (a.ka_size && p->lo + a.ka_size > p->lo &&
		    p->lo + a.ka_size < hi)
			p->hi = p->lo + a.ka_size;
	} else if (!(k->bk_flags & BK_SAME_BYTES)) {
		p->lo = 0;
		p->hi = UINT64_MAX;
	}
	for (int i = 0; i < nr; i++) {
		ret = build(p, n->kids[i], child_segs, &members[i]);
		if (ret) {
			layer_free_members(members, i);
			return ret;
		}
	}
	p->lo = lo;
	p->hi = hi;
	a.ka_members = members;
	a.ka_nr = nr;
	if (k->bk_flags & BK_ARRAY)
		return build_array(p, n, &a, out);
	ret = k->bk_create(&a, out, msg, sizeof(msg));
	if (ret)
		return layout_fail_at(p, n->at, "%.*s: %s", (int)n->name_len,
				      n->name, msg);
	return 0;
}

int bdev_layout_open(const char *expr, struct loop *loop,
		     const struct bdev_layout_opts *opts, struct bdev **out,
		     char *err, size_t errlen)
{
	struct parser p = { .s = expr,
			    .err = err,
			    .errlen = errlen,
			    .loop = loop,
			    .opts = opts,
			    .hi = UINT64_MAX };
	struct bdev_file_opts fo = { .read_only = opts->read_only,
				     .create_size = opts->create_size };
	struct bdev_kind_args a = { .ka_path = expr, .ka_file = &fo };
	struct lnode *root = NULL;
	int ret;

	if (layout_is_path(expr))
		return bdev_kind_path()->bk_create(&a, out, err, errlen);
	ret = layout_parse_node(&p, &root);
	if (!ret) {
		layout_skip_ws(&p);
		if (p.s[p.pos])
			ret = layout_fail_at(&p, p.pos,
					     p.s[p.pos] == ')' ?
						     "unbalanced ')'" :
						     "unexpected text after the expression");
	}
	if (ret && root && !root->func && root->name_len &&
	    memchr(root->name, ' ', root->name_len)) {
		/* "linear a.img, b.img)": a level name without its '('. */
		size_t sp =
			(const char *)memchr(root->name, ' ', root->name_len) -
			root->name;

		ret = layout_fail_at(&p, root->at + sp,
				     "expected '(' after '%.*s'", (int)sp,
				     root->name);
	}
	if (!ret && !root->func)
		ret = layout_fail_at(&p, root->at,
				     "expected a layout such as raid0(a.img, b.img)");
	if (!ret) {
		char *future[MAX_LEAVES];
		int nr_future = 0;

		ret = layout_check_node(&p, root, future, &nr_future);
		while (nr_future--)
			free(future[nr_future]);
	}
	if (!ret)
		ret = build(&p, root, 1, out);
	if (!ret && !opts->no_io && (ret = super_start(*out, err, errlen))) {
		bdev_destroy(*out);
		*out = NULL;
	}
	layout_free_tree(root);
	for (int i = 0; i < p.nr_seen; i++) {
		/* A failed start leaves nothing behind, --create's files too. */
		if (ret && p.seen[i].created)
			unlink(p.seen[i].created);
		free(p.seen[i].created);
	}
	return ret;
}
