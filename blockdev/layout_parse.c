/* layout_parse: TARGET expressions into a syntax tree (recursive descent,
 * errors with a caret under their column), checked against the kinds. */
#include "blockdev/layout_int.h"
#include "blockdev/layout.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
		case 'k':
		case 'K':
			shift = 10;
			break;
		case 'm':
		case 'M':
			shift = 20;
			break;
		case 'g':
		case 'G':
			shift = 30;
			break;
		case 't':
		case 'T':
			shift = 40;
			break;
		default:
			return -EINVAL;
		}
	}
	if (i != len || !v || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int bdev_parse_duration(const char *v, size_t len, uint64_t *ns)
{
	static const struct {
		const char *sfx;
		uint64_t mul;
	} units[] = {
		{ "ns", 1 },
		{ "us", 1000 },
		{ "ms", 1000000 },
		{ "s", 1000000000 },
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

int layout_fail_at(struct parser *p, size_t at, const char *fmt, ...)
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

void layout_skip_ws(struct parser *p)
{
	while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')
		p->pos++;
}

void layout_free_tree(struct lnode *n)
{
	if (!n)
		return;
	for (int i = 0; i < n->nr_kids; i++)
		layout_free_tree(n->kids[i]);
	free(n);
}

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
			return layout_fail_at(p, start, "too many options");
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
		return layout_fail_at(p, start, "more than %d members",
				      LAYER_MAX_MEMBERS);
	ret = layout_parse_node(p, &n->kids[n->nr_kids]);
	if (!ret) {
		n->nr_kids++;
	} else {
		/* A member cut short by a syntax error is not in the tree. */
		layout_free_tree(n->kids[n->nr_kids]);
		n->kids[n->nr_kids] = NULL;
	}
	return ret;
}

int layout_parse_node(struct parser *p, struct lnode **out)
{
	const struct bdev_kind *k;
	struct lnode *n;
	size_t end;
	int ret;

	layout_skip_ws(p);
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
		return layout_fail_at(p, p->pos,
				      p->s[p->pos] ? "expected a member here" :
						     "expression ends early");
	if (p->s[p->pos] != '(')
		return 0;
	n->func = true;
	p->pos++;
	k = bdev_kind_find(n->name, n->name_len);
	if (k && (k->bk_flags & BK_URI)) {
		/* A URI has '=' and '?' of its own: no key=value in it. */
		layout_skip_ws(p);
		n->uri = p->s + p->pos;
		n->uri_at = p->pos;
		while (p->s[p->pos] && !strchr(",) \t", p->s[p->pos]))
			p->pos++;
		n->uri_len = p->s + p->pos - n->uri;
		if (!n->uri_len)
			return layout_fail_at(p, p->pos,
					      "%s() needs a URI first",
					      k->bk_name);
		layout_skip_ws(p);
		if (p->s[p->pos] == ')') {
			p->pos++;
			return 0;
		}
		if (p->s[p->pos] != ',')
			return layout_fail_at(p, p->pos,
					      p->s[p->pos] ?
						      "expected ',' or ')'" :
						      "missing ')'");
		p->pos++;
	}
	for (;;) {
		layout_skip_ws(p);
		ret = parse_arg(p, n);
		if (ret)
			return ret;
		layout_skip_ws(p);
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] == ')') {
			p->pos++;
			return 0;
		}
		return layout_fail_at(p, p->pos,
				      p->s[p->pos] ? "expected ',' or ')'" :
						     "missing ')'");
	}
}

/*
 * Take option @o of @n (or @def when absent).  Returns 1 and the option's
 * column in *@at when present, 0 when absent, or -EINVAL after reporting
 * a bad size.  Unknown keys are left for check_opts_used().
 */
static int take_opt(struct parser *p, struct lnode *n,
		    const struct bdev_kind_opt *o, uint64_t def, uint64_t *val,
		    size_t *at)
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
			return layout_fail_at(p, n->kv[i].at,
					      "bad size '%.*s' (a number with an optional k, m, g or t, above zero)",
					      (int)n->kv[i].str_len,
					      n->kv[i].str);
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
			return layout_fail_at(p,
					      n->kv[i].at - n->kv[i].key_len -
						      1,
					      "%.*s() takes no option '%.*s'",
					      (int)n->name_len, n->name,
					      (int)n->kv[i].key_len,
					      n->kv[i].key);
	return 0;
}

static int fail_unknown(struct parser *p, const struct lnode *n)
{
	char names[512];

	bdev_kind_names(names, sizeof(names));
	return layout_fail_at(p, n->at, "unknown layout '%.*s' (%s)",
			      (int)n->name_len, n->name, names);
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

		ret = take_opt(p, n, o,
			       o->ko_type == BDEV_OPT_CHUNK ? DEFAULT_CHUNK : 0,
			       val, &at);
		if (ret < 0)
			return ret;
		if (o->ko_type == BDEV_OPT_CHUNK) {
			n->chunk_given = ret;
			if ((*val & (*val - 1)) || *val < 4096)
				return layout_fail_at(p, at,
						      "chunk %llu is not a power of two of at least 4k",
						      (unsigned long long)*val);
		}
		if (!ret && o->ko_required)
			return layout_fail_at(p, n->at + n->name_len + 1,
					      "%.*s() needs %s=SIZE",
					      (int)n->name_len, n->name,
					      o->ko_key);
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
				"%.*s=%.*s,", (int)n->kv[i].key_len,
				n->kv[i].key, (int)n->kv[i].str_len,
				n->kv[i].str);
		if (len >= sizeof(n->own_opts))
			return layout_fail_at(p, n->at,
					      "%.*s(): options too long",
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

		if (n->kv[i].key_len == 5 &&
		    !strncmp(n->kv[i].key, "super", 5)) {
			if (len == 4 && !strncmp(v, "auto", 4))
				n->super = SUPER_AUTO;
			else if (len == 3 && !strncmp(v, "1.2", 3))
				n->super = SUPER_V12;
			else if (len == 4 && !strncmp(v, "none", 4))
				n->super = SUPER_NONE;
			else
				return layout_fail_at(p, n->kv[i].at,
						      "super=%.*s: not auto, 1.2 or none",
						      (int)len, v);
		} else if (n->kv[i].key_len == 4 &&
			   !strncmp(n->kv[i].key, "name", 4)) {
			if (!len || len >= sizeof(n->md_name))
				return layout_fail_at(p, n->kv[i].at,
						      "name=%.*s: 1 to %zu characters",
						      (int)len, v,
						      sizeof(n->md_name) - 1);
			snprintf(n->md_name, sizeof(n->md_name), "%.*s",
				 (int)len, v);
		} else {
			continue;
		}
		n->kv[i].key_len = 0; /* consumed */
	}
	if ((n->kind->bk_flags & BK_FROM_SUPER) && n->super == SUPER_NONE)
		return layout_fail_at(p, n->at,
				      "%s() assembles from superblocks: super=none makes no sense here",
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
/* A member too many that is a bare word (slice(a.img, 1g, 2g)) may be an
 * option given without its key: "; options are key=value: slice(M,
 * offset=SIZE, size=SIZE)", the kind's usage from its --help line; ""
 * when it is a function, or the kind has no options. */
static void key_hint(const struct bdev_kind *k, const struct lnode *extra,
		     char *buf, size_t len)
{
	const char *u = k->bk_help ? k->bk_help : "", *end;

	buf[0] = '\0';
	while (*u == ' ')
		u++;
	end = strchr(u, ')');
	if (extra->func || !end || !memchr(u, '=', (size_t)(end - u)))
		return;
	snprintf(buf, len, "; options are key=value: %.*s", (int)(end + 1 - u),
		 u);
}

int layout_check_node(struct parser *p, struct lnode *n, char **future,
		      int *nr_future)
{
	const struct bdev_kind *k;
	int ret;

	if (!n->func) {
		char path[4096];
		struct stat st;

		if (n->name_len >= sizeof(path))
			return layout_fail_at(p, n->at, "path too long");
		memcpy(path, n->name, n->name_len);
		path[n->name_len] = '\0';
		if (!stat(path, &st))
			return 0;
		if (errno != ENOENT || !p->opts->create_size ||
		    p->opts->read_only)
			return layout_fail_at(p, n->at, "%s: %s", path,
					      strerror(errno));
		if (*nr_future == MAX_LEAVES)
			return layout_fail_at(p, n->at,
					      "more than %d member files in one expression",
					      MAX_LEAVES);
		future[*nr_future] = future_path(path);
		if (!future[*nr_future])
			return layout_fail_at(p, n->at,
					      "%s: cannot create it: %s", path,
					      strerror(errno));
		for (int i = 0; i < *nr_future; i++) {
			if (!strcmp(future[i], future[*nr_future])) {
				free(future[*nr_future]);
				return layout_fail_at(p, n->at,
						      "%s is already a member",
						      path);
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
		return layout_fail_at(p, n->at,
				      "%s needs at least %d member%s, got %d",
				      k->bk_name, k->bk_min_members,
				      k->bk_min_members == 1 ? "" : "s",
				      n->nr_kids);
	if (n->nr_kids > k->bk_max_members && !k->bk_max_members)
		return layout_fail_at(p, n->kids[0]->at, "%s takes no members",
				      k->bk_name);
	if (n->nr_kids > k->bk_max_members) {
		const struct lnode *extra = n->kids[k->bk_max_members];
		char hint[160];

		key_hint(k, extra, hint, sizeof(hint));
		if (k->bk_max_members == 1)
			return layout_fail_at(p, extra->at,
					      "%s takes one member%s",
					      k->bk_name, hint);
		return layout_fail_at(p, extra->at,
				      "%s takes at most %d members%s",
				      k->bk_name, k->bk_max_members, hint);
	}
	for (int i = 0; i < n->nr_kids; i++) {
		ret = layout_check_node(p, n->kids[i], future, nr_future);
		if (ret)
			return ret;
	}
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

bool layout_is_path(const char *expr)
{
	struct stat st;

	return !stat(expr, &st) || !strpbrk(expr, "(),");
}

/* Parse @expr for a look at its shape, opening nothing: 0 or -EINVAL.  A
 * syntax error keeps in *@root what came before it. */
static int parse_for_look(const char *expr, struct lnode **root)
{
	char err[512];
	struct parser p = {
		.s = expr, .err = err, .errlen = sizeof(err), .hi = UINT64_MAX
	};

	*root = NULL;
	return layout_parse_node(&p, root);
}

int bdev_layout_leaves(const char *expr, char **out, int max)
{
	struct lnode *root;
	int nr = 0;

	if (layout_is_path(expr)) {
		if (!max)
			return 0;
		out[0] = strdup(expr);
		return out[0] ? 1 : -ENOMEM;
	}
	parse_for_look(expr, &root);
	if (root && collect_leaves(root, out, &nr, max)) {
		while (nr--)
			free(out[nr]);
		nr = -ENOMEM;
	}
	layout_free_tree(root);
	return nr;
}

static bool node_in_memory(const struct lnode *n)
{
	const struct bdev_kind *k =
		n->func ? bdev_kind_find(n->name, n->name_len) : NULL;

	if (!k)
		return false;
	if (k->bk_flags & BK_IN_MEMORY)
		return true;
	for (const struct bdev_kind *const *l = bdev_levels; *l; l++)
		if (*l == k) {
			for (int i = 0; i < n->nr_kids; i++)
				if (!node_in_memory(n->kids[i]))
					return false;
			return n->nr_kids > 0;
		}
	return false;
}

bool bdev_layout_in_memory(const char *expr)
{
	struct lnode *root;
	bool in_memory;

	if (layout_is_path(expr))
		return false;
	/* Text after the expression fails the open: the answer is moot. */
	in_memory = !parse_for_look(expr, &root) && node_in_memory(root);
	layout_free_tree(root);
	return in_memory;
}
