/* layout: a recursive-descent parser for TARGET expressions into a small
 * syntax tree, then a top-down build that sizes each layer for its parent. */
#include "blockdev/layout.h"
#include "blockdev/core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockdev/kind.h"
#include "blockdev/levels/layer.h"
#include "blockdev/levels/super.h"

#define MAX_KEYS 5
#define MAX_LEAVES (LAYER_MAX_MEMBERS * 4) /* member files in one expression */
#define DEFAULT_CHUNK (512 * 1024) /* md's default */

struct lnode {
	bool func;
	const char *name; /* path or function name, in the expression */
	size_t name_len;
	size_t at;	  /* column of name */
	struct lnode *kids[LAYER_MAX_MEMBERS];
	int nr_kids;
	struct {
		const char *key;
		size_t key_len;
		const char *str; /* the value as written */
		size_t str_len;
		size_t at;	 /* column of the value */
	} kv[MAX_KEYS];
	int nr_kv;
	/* filled by check_node() */
	const struct bdev_kind *kind;
	struct bdev_kind_args args; /* the options' values */
	bool chunk_given;
	enum super_mode super; /* arrays: super=auto|1.2|none */
	char md_name[32];      /* arrays: name=, the md superblock's set name */
	char own_opts[256];    /* BK_OWN_OPTS kinds: options as written */
};

struct parser {
	const char *s;
	size_t pos;
	char *err;
	size_t errlen;
	struct loop *loop;
	const struct bdev_layout_opts *opts;
	struct {
		uint64_t dev, ino;
		uint64_t lo, hi; /* the bytes of it the expression uses */
		size_t at;
		char *created; /* path, when --create made it: removed on failure */
	} seen[MAX_LEAVES];
	int nr_seen;
	/* The bytes of the next leaf the subtree being built uses: narrowed
	 * by slice(), passed through faulty() and sim(), whole elsewhere. */
	uint64_t lo, hi;
	bool said_headerless; /* that line once per expression, not per array */
};

int bdev_parse_size(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	size_t i = 0;

	if (!len || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	for (; i < len && isdigit((unsigned char)s[i]); i++) {
		if (v > (UINT64_MAX - (s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (i < len) {
		switch (s[i++]) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		case 't': case 'T': shift = 40; break;
		default: return -EINVAL;
		}
	}
	if (i != len || !v || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int bdev_parse_duration(const char *v, size_t len, uint64_t *ns)
{
	static const struct { const char *sfx; uint64_t mul; } units[] = {
		{ "ns", 1 }, { "us", 1000 }, { "ms", 1000000 }, { "s", 1000000000 },
	};
	char buf[32], *end;
	unsigned long long n;

	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, len);
	buf[len] = '\0';
	n = strtoull(buf, &end, 10);
	if (end == buf || *buf == '-')
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(end, units[i].sfx)) {
			if (n > UINT64_MAX / units[i].mul)
				return -EINVAL;
			*ns = n * units[i].mul;
			return 0;
		}
	}
	return -EINVAL;
}

/* "problem\n  expression\n     ^" with the caret under column @at. */
static int fail_at(struct parser *p, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_at(struct parser *p, size_t at, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < p->errlen)
		snprintf(p->err + n, p->errlen - n, "\n  %s\n  %*s^", p->s,
			 (int)at, "");
	return -EINVAL;
}

static void skip_ws(struct parser *p)
{
	while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')
		p->pos++;
}

static void free_tree(struct lnode *n)
{
	if (!n)
		return;
	for (int i = 0; i < n->nr_kids; i++)
		free_tree(n->kids[i]);
	free(n);
}

static int parse_node(struct parser *p, struct lnode **out);

/* key=value, or a member expression. */
static int parse_arg(struct parser *p, struct lnode *n)
{
	size_t start = p->pos, i = p->pos;
	int ret;

	while (isalnum((unsigned char)p->s[i]) || p->s[i] == '_')
		i++;
	if (i > start && p->s[i] == '=') {
		size_t v = i + 1, e = v;

		if (n->nr_kv == MAX_KEYS)
			return fail_at(p, start, "too many options");
		while (p->s[e] && !strchr(",()", p->s[e]) && p->s[e] != ' ')
			e++;
		n->kv[n->nr_kv].key = p->s + start;
		n->kv[n->nr_kv].key_len = i - start;
		n->kv[n->nr_kv].str = p->s + v;
		n->kv[n->nr_kv].str_len = e - v;
		n->kv[n->nr_kv].at = v;
		n->nr_kv++;
		p->pos = e;
		return 0;
	}
	if (n->nr_kids == LAYER_MAX_MEMBERS)
		return fail_at(p, start, "more than %d members", LAYER_MAX_MEMBERS);
	ret = parse_node(p, &n->kids[n->nr_kids]);
	if (!ret) {
		n->nr_kids++;
	} else {
		/* A member cut short by a syntax error is not in the tree. */
		free_tree(n->kids[n->nr_kids]);
		n->kids[n->nr_kids] = NULL;
	}
	return ret;
}

static int parse_node(struct parser *p, struct lnode **out)
{
	struct lnode *n;
	size_t end;
	int ret;

	skip_ws(p);
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	*out = n;
	n->name = p->s + p->pos;
	n->at = p->pos;
	while (p->s[p->pos] && !strchr(",()", p->s[p->pos]))
		p->pos++;
	end = p->pos;
	while (end > n->at && (p->s[end - 1] == ' ' || p->s[end - 1] == '\t'))
		end--;
	n->name_len = end - n->at;
	if (!n->name_len)
		return fail_at(p, p->pos, p->s[p->pos] ? "expected a member here" :
							 "expression ends early");
	if (p->s[p->pos] != '(')
		return 0;
	n->func = true;
	p->pos++;
	for (;;) {
		skip_ws(p);
		ret = parse_arg(p, n);
		if (ret)
			return ret;
		skip_ws(p);
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] == ')') {
			p->pos++;
			return 0;
		}
		return fail_at(p, p->pos, p->s[p->pos] ?
			"expected ',' or ')'" : "missing ')'");
	}
}

/*
 * Take option @o of @n (or @def when absent).  Returns 1 and the option's
 * column in *@at when present, 0 when absent, or -EINVAL after reporting
 * a bad size.  Unknown keys are left for check_opts_used().
 */
static int take_opt(struct parser *p, struct lnode *n, const struct bdev_kind_opt *o,
		    uint64_t def, uint64_t *val, size_t *at)
{
	const char *key = o->ko_key;

	*val = def;
	for (int i = 0; i < n->nr_kv; i++) {
		if (n->kv[i].key_len != strlen(key) ||
		    strncmp(n->kv[i].key, key, n->kv[i].key_len))
			continue;
		n->kv[i].key_len = 0; /* consumed */
		/* An offset may be 0; a size or chunk may not. */
		if (o->ko_type == BDEV_OPT_OFFSET && n->kv[i].str_len == 1 &&
		    n->kv[i].str[0] == '0')
			*val = 0;
		else if (bdev_parse_size(n->kv[i].str, n->kv[i].str_len, val))
			return fail_at(p, n->kv[i].at,
				       "bad size '%.*s' (a number with an optional k, m, g or t, above zero)",
				       (int)n->kv[i].str_len, n->kv[i].str);
		if (at)
			*at = n->kv[i].at - strlen(key) - 1;
		return 1;
	}
	return 0;
}

static int check_opts_used(struct parser *p, const struct lnode *n)
{
	for (int i = 0; i < n->nr_kv; i++)
		if (n->kv[i].key_len)
			return fail_at(p, n->kv[i].at - n->kv[i].key_len - 1,
				       "%.*s() takes no option '%.*s'",
				       (int)n->name_len, n->name,
				       (int)n->kv[i].key_len, n->kv[i].key);
	return 0;
}

static int open_leaf(struct parser *p, struct lnode *n, struct bdev **out)
{
	struct bdev_file_opts fo = { .read_only = p->opts->read_only,
				     .create_size = p->opts->create_size };
	struct bdev_kind_args a = { .ka_file = &fo };
	char path[4096], msg[4096 + 128];
	struct bdev *d;
	int ret;

	if (n->name_len >= sizeof(path))
		return fail_at(p, n->at, "path too long");
	if (p->nr_seen == MAX_LEAVES)
		return fail_at(p, n->at, "more than %d member files in one expression",
			       MAX_LEAVES);
	memcpy(path, n->name, n->name_len);
	path[n->name_len] = '\0';
	a.ka_path = path;
	ret = bdev_kind_path()->bk_create(&a, &d, msg, sizeof(msg));
	if (ret)
		return fail_at(p, n->at, "%s", msg);
	/* Twins are found by what was opened, so "./a.img" and a file just
	 * created count too.  Slices of one image that do not overlap are
	 * two extents of one physical volume, not twins. */
	for (int i = 0; i < p->nr_seen; i++) {
		if (p->seen[i].dev == d->bd_id_dev && p->seen[i].ino == d->bd_id_ino &&
		    p->seen[i].lo < p->hi && p->lo < p->seen[i].hi) {
			size_t at = p->seen[i].at;
			bool sliced = p->lo || p->hi != UINT64_MAX ||
				      p->seen[i].lo || p->seen[i].hi != UINT64_MAX;

			if (d->bd_created)
				unlink(path);
			bdev_destroy(d);
			if (sliced)
				return fail_at(p, n->at, "%s is already a member (column %zu), and the two slices of it overlap",
					       path, at);
			return fail_at(p, n->at, "%s is already a member (column %zu)",
				       path, at);
		}
	}
	if (p->opts->create_size && !d->bd_created && !d->bd_is_blockdev &&
	    !p->opts->no_io)
		bdev_log("--create: %s exists (%llu bytes), used as it is",
			path, (unsigned long long)d->bd_size);
	p->seen[p->nr_seen].dev = d->bd_id_dev;
	p->seen[p->nr_seen].ino = d->bd_id_ino;
	p->seen[p->nr_seen].lo = p->lo;
	p->seen[p->nr_seen].hi = p->hi;
	p->seen[p->nr_seen].at = n->at;
	p->seen[p->nr_seen].created = d->bd_created ? strdup(path) : NULL;
	p->nr_seen++;
	*out = d;
	return 0;
}

static int fail_unknown(struct parser *p, const struct lnode *n)
{
	char names[512];

	bdev_kind_names(names, sizeof(names));
	return fail_at(p, n->at, "unknown layout '%.*s' (%s)", (int)n->name_len,
		       n->name, names);
}

/* The options in @n's kind's table, in its order. */
static int take_kind_opts(struct parser *p, struct lnode *n)
{
	const struct bdev_kind *k = n->kind;

	for (int i = 0; i < BDEV_KIND_MAX_OPTS && k->bk_opts[i].ko_key; i++) {
		const struct bdev_kind_opt *o = &k->bk_opts[i];
		uint64_t *val = (uint64_t *)((char *)&n->args + o->ko_field);
		size_t at = n->at;
		int ret;

		ret = take_opt(p, n, o, o->ko_type == BDEV_OPT_CHUNK ? DEFAULT_CHUNK : 0,
			       val, &at);
		if (ret < 0)
			return ret;
		if (o->ko_type == BDEV_OPT_CHUNK) {
			n->chunk_given = ret;
			if ((*val & (*val - 1)) || *val < 4096)
				return fail_at(p, at,
					       "chunk %llu is not a power of two of at least 4k",
					       (unsigned long long)*val);
		}
		if (!ret && o->ko_required)
			return fail_at(p, n->at + n->name_len + 1, "%.*s() needs %s=SIZE",
				       (int)n->name_len, n->name, o->ko_key);
	}
	return 0;
}

/* BK_OWN_OPTS: the kind knows its options; pass them on as written. */
static int take_own_opts(struct parser *p, struct lnode *n)
{
	size_t len = 0;

	for (int i = 0; i < n->nr_kv; i++) {
		if (!n->kv[i].key_len)
			continue;
		len += snprintf(n->own_opts + len, sizeof(n->own_opts) - len,
				"%.*s=%.*s,", (int)n->kv[i].key_len, n->kv[i].key,
				(int)n->kv[i].str_len, n->kv[i].str);
		if (len >= sizeof(n->own_opts))
			return fail_at(p, n->at, "%.*s(): options too long",
				       (int)n->name_len, n->name);
		n->kv[i].key_len = 0;
	}
	return 0;
}

/* super=auto|1.2|none and name=NAME of an array. */
static int take_super_opts(struct parser *p, struct lnode *n)
{
	n->super = SUPER_AUTO;
	snprintf(n->md_name, sizeof(n->md_name), "rawvec");
	for (int i = 0; i < n->nr_kv; i++) {
		const char *v = n->kv[i].str;
		size_t len = n->kv[i].str_len;

		if (n->kv[i].key_len == 5 && !strncmp(n->kv[i].key, "super", 5)) {
			if (len == 4 && !strncmp(v, "auto", 4))
				n->super = SUPER_AUTO;
			else if (len == 3 && !strncmp(v, "1.2", 3))
				n->super = SUPER_V12;
			else if (len == 4 && !strncmp(v, "none", 4))
				n->super = SUPER_NONE;
			else
				return fail_at(p, n->kv[i].at, "super=%.*s: not auto, 1.2 or none",
					       (int)len, v);
		} else if (n->kv[i].key_len == 4 && !strncmp(n->kv[i].key, "name", 4)) {
			if (!len || len >= sizeof(n->md_name))
				return fail_at(p, n->kv[i].at, "name=%.*s: 1 to %zu characters",
					       (int)len, v, sizeof(n->md_name) - 1);
			snprintf(n->md_name, sizeof(n->md_name), "%.*s", (int)len, v);
		} else {
			continue;
		}
		n->kv[i].key_len = 0; /* consumed */
	}
	if ((n->kind->bk_flags & BK_FROM_SUPER) && n->super == SUPER_NONE)
		return fail_at(p, n->at, "%s() assembles from superblocks: super=none makes no sense here",
			       n->kind->bk_name);
	return 0;
}

/* What a to-be-created member will be called, to spot twins before any
 * file exists: the real directory plus the base name. */
static char *future_path(const char *path)
{
	char dir[4096], *slash, *res, *out;
	const char *base = path;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash) {
		base = path + (slash - dir) + 1;
		*slash = '\0';
		if (!*dir)
			strcpy(dir, "/");
	} else {
		strcpy(dir, ".");
	}
	res = realpath(dir, NULL);
	if (!res)
		return NULL;
	if (asprintf(&out, "%s/%s", res, base) < 0)
		out = NULL;
	free(res);
	return out;
}

/*
 * Everything that can be known without opening or creating a file is
 * checked first, so that a bad expression leaves no trace: levels, member
 * counts, options, missing files, and twins among files to be created.
 */
static int check_node(struct parser *p, struct lnode *n, char **future, int *nr_future)
{
	const struct bdev_kind *k;
	int ret;

	if (!n->func) {
		char path[4096];
		struct stat st;

		if (n->name_len >= sizeof(path))
			return fail_at(p, n->at, "path too long");
		memcpy(path, n->name, n->name_len);
		path[n->name_len] = '\0';
		if (!stat(path, &st))
			return 0;
		if (errno != ENOENT || !p->opts->create_size || p->opts->read_only)
			return fail_at(p, n->at, "%s: %s", path, strerror(errno));
		if (*nr_future == MAX_LEAVES)
			return fail_at(p, n->at, "more than %d member files in one expression",
				       MAX_LEAVES);
		future[*nr_future] = future_path(path);
		if (!future[*nr_future])
			return fail_at(p, n->at, "%s: cannot create it: %s", path,
				       strerror(errno));
		for (int i = 0; i < *nr_future; i++) {
			if (!strcmp(future[i], future[*nr_future])) {
				free(future[*nr_future]);
				return fail_at(p, n->at, "%s is already a member", path);
			}
		}
		(*nr_future)++;
		return 0;
	}
	k = n->kind = bdev_kind_find(n->name, n->name_len);
	if (!k)
		return fail_unknown(p, n);
	if ((ret = take_kind_opts(p, n)) ||
	    ((k->bk_flags & BK_ARRAY) && (ret = take_super_opts(p, n))) ||
	    ((k->bk_flags & BK_OWN_OPTS) && (ret = take_own_opts(p, n))) ||
	    (ret = check_opts_used(p, n)))
		return ret;
	if (n->nr_kids < k->bk_min_members)
		return fail_at(p, n->at, "%s needs at least %d member%s, got %d",
			       k->bk_name, k->bk_min_members,
			       k->bk_min_members == 1 ? "" : "s", n->nr_kids);
	if (n->nr_kids > k->bk_max_members && !k->bk_max_members)
		return fail_at(p, n->kids[0]->at, "%s takes no members", k->bk_name);
	if (n->nr_kids > k->bk_max_members && k->bk_max_members == 1)
		return fail_at(p, n->kids[1]->at, "%s takes one member", k->bk_name);
	if (n->nr_kids > k->bk_max_members)
		return fail_at(p, n->kids[k->bk_max_members]->at,
			       "%s takes at most %d members", k->bk_name,
			       k->bk_max_members);
	for (int i = 0; i < n->nr_kids; i++) {
		ret = check_node(p, n->kids[i], future, nr_future);
		if (ret)
			return ret;
	}
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
		level, (unsigned long long)l->l_member_size, (unsigned long long)unit,
		(unsigned long long)(big->bd_size - l->l_data_offset - l->l_member_size),
		big->bd_name);
}

/*
 * An array level: read its members' superblocks, let super_plan() decide
 * what the array is (headerless, new, or assembled: level, order, member
 * states), then build it with that level's create.  Takes ownership of
 * @a's members.
 */
static int build_array(struct parser *p, struct lnode *n, struct bdev_kind_args *a,
		       struct bdev **out)
{
	struct bdev **members = a->ka_members;
	int nr = a->ka_nr;
	struct super_probe *pr = calloc(nr, sizeof(*pr));
	struct super_want want = { .chunk = n->chunk_given ? n->args.ka_chunk : 0,
				   .mode = p->opts->no_io ? SUPER_NONE : n->super };
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
		ret = super_probe_member(p->loop, members[i], &pr[i], msg, sizeof(msg));
		if (ret) {
			ret = fail_at(p, n->kids[i]->at, "%s", msg);
			goto out_members;
		}
		pr[i].fresh = bdev_fresh(members[i]);
	}
	ret = super_plan(pr, nr, &want, &plan, msg, sizeof(msg));
	if (ret) {
		ret = fail_at(p, n->at, "%s: %s", level, msg);
		goto out_members;
	}
	if (plan.note[0] && !(plan.action == SUPER_PLAN_NONE && n->super == SUPER_AUTO &&
			      p->said_headerless))
		bdev_log("%s: %s", level, plan.note);
	p->said_headerless |= plan.action == SUPER_PLAN_NONE && n->super == SUPER_AUTO;
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
		ret = fail_at(p, n->at, "%s: rawvec cannot build a %s array", level,
			      plan.level);
		goto out;
	}
	/* The level's create owns @slots from here, also on failure. */
	ret = built->bk_create(a, out, msg, sizeof(msg));
	if (ret) {
		ret = fail_at(p, n->at, "%s: %s", level, msg);
		goto out;
	}
	log_unused(layer_of(*out), n->kind, level);
	if (plan.action == SUPER_PLAN_ASSEMBLE && !(built->bk_flags & BK_CONCAT) &&
	    layer_of(*out)->l_member_size != pr[plan.authority].sb.size * 512) {
		/* mdadm --size, or members rounded another way: md would
		 * serve the array at its recorded size, not this one. */
		ret = fail_at(p, n->at, "%s: the superblocks say each member holds %llu bytes, these give %llu: rawvec runs arrays at their members' common size",
			      level, (unsigned long long)pr[plan.authority].sb.size * 512,
			      (unsigned long long)layer_of(*out)->l_member_size);
		bdev_destroy(*out);
		goto out;
	}
	if (plan.action != SUPER_PLAN_NONE) {
		ret = super_attach(layer_of(*out), p->loop, &plan, pr, nr, n->md_name);
		if (ret) {
			bdev_destroy(*out);
			ret = fail_at(p, n->at, "%s: md metadata: %s", level,
				      strerror(-ret));
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
	if (!k->bk_max_members) {
		ret = k->bk_create(&a, out, msg, sizeof(msg));
		return ret ? fail_at(p, n->at, "%.*s: %s", (int)n->name_len,
				     n->name, msg) : 0;
	}
	/* An assembled array's chunk is known only from its superblocks:
	 * size the members for the smallest one when none is given. */
	child_segs = in_segs + layer_max_pieces(max_io, (a.ka_chunk && !n->chunk_given) ||
							(k->bk_flags & BK_FROM_SUPER) ?
							4096 : a.ka_chunk, nr);
	members = calloc(nr, sizeof(*members));
	if (!members)
		return -ENOMEM;
	lo = p->lo;
	hi = p->hi;
	if (k->bk_flags & BK_WINDOW) {
		p->lo = lo + a.ka_offset < lo ? UINT64_MAX : lo + a.ka_offset;
		if (a.ka_size && p->lo + a.ka_size > p->lo && p->lo + a.ka_size < hi)
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
		return fail_at(p, n->at, "%.*s: %s", (int)n->name_len, n->name, msg);
	return 0;
}

static int collect_leaves(const struct lnode *n, char **out, int *nr, int max)
{
	if (!n->func) {
		if (*nr < max) {
			out[*nr] = strndup(n->name, n->name_len);
			if (!out[*nr])
				return -ENOMEM;
			(*nr)++;
		}
		return 0;
	}
	for (int i = 0; i < n->nr_kids; i++)
		if (collect_leaves(n->kids[i], out, nr, max))
			return -ENOMEM;
	return 0;
}

int bdev_layout_leaves(const char *expr, char **out, int max)
{
	char err[512];
	struct parser p = { .s = expr, .err = err, .errlen = sizeof(err),
			    .hi = UINT64_MAX };
	struct lnode *root = NULL;
	struct stat st;
	int nr = 0;

	if (!stat(expr, &st) || !strpbrk(expr, "(),")) {
		if (!max)
			return 0;
		out[0] = strdup(expr);
		return out[0] ? 1 : -ENOMEM;
	}
	parse_node(&p, &root); /* a syntax error keeps what came before it */
	if (root && collect_leaves(root, out, &nr, max)) {
		while (nr--)
			free(out[nr]);
		nr = -ENOMEM;
	}
	free_tree(root);
	return nr;
}

int bdev_layout_open(const char *expr, struct loop *loop,
		     const struct bdev_layout_opts *opts, struct bdev **out,
		     char *err, size_t errlen)
{
	struct parser p = { .s = expr, .err = err, .errlen = errlen,
			    .loop = loop, .opts = opts, .hi = UINT64_MAX };
	struct bdev_file_opts fo = { .read_only = opts->read_only,
				     .create_size = opts->create_size };
	struct bdev_kind_args a = { .ka_path = expr, .ka_file = &fo };
	struct lnode *root = NULL;
	struct stat st;
	int ret;

	/* An existing file is a path even if its name has parentheses; a
	 * name with none of "()," is a path too. */
	if (!stat(expr, &st) || !strpbrk(expr, "(),"))
		return bdev_kind_path()->bk_create(&a, out, err, errlen);
	ret = parse_node(&p, &root);
	if (!ret) {
		skip_ws(&p);
		if (p.s[p.pos])
			ret = fail_at(&p, p.pos, p.s[p.pos] == ')' ?
				      "unbalanced ')'" : "unexpected text after the expression");
	}
	if (ret && root && !root->func && root->name_len &&
	    memchr(root->name, ' ', root->name_len)) {
		/* "linear a.img, b.img)": a level name without its '('. */
		size_t sp = (const char *)memchr(root->name, ' ', root->name_len) -
			    root->name;

		ret = fail_at(&p, root->at + sp, "expected '(' after '%.*s'",
			      (int)sp, root->name);
	}
	if (!ret && !root->func)
		ret = fail_at(&p, root->at, "expected a layout such as raid0(a.img, b.img)");
	if (!ret) {
		char *future[MAX_LEAVES];
		int nr_future = 0;

		ret = check_node(&p, root, future, &nr_future);
		while (nr_future--)
			free(future[nr_future]);
	}
	if (!ret)
		ret = build(&p, root, 1, out);
	if (!ret && !opts->no_io && (ret = super_start(*out, err, errlen))) {
		bdev_destroy(*out);
		*out = NULL;
	}
	free_tree(root);
	for (int i = 0; i < p.nr_seen; i++) {
		/* A failed start leaves nothing behind, --create's files too. */
		if (ret && p.seen[i].created)
			unlink(p.seen[i].created);
		free(p.seen[i].created);
	}
	return ret;
}
