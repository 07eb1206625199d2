/* layout_int: what the layout parser (layout_parse.c) hands the builder
 * (layout.c): the syntax tree of one expression and the parser's state. */
#ifndef RAWVEC_LAYOUT_INT_H
#define RAWVEC_LAYOUT_INT_H

#include "blockdev/layout.h"
#include "blockdev/kind.h"
#include "blockdev/levels/layer.h"
#include "blockdev/levels/super.h"

#define MAX_KEYS 6
#define MAX_LEAVES (LAYER_MAX_MEMBERS * 4) /* member files in one expression */
#define DEFAULT_CHUNK (512 * 1024)	   /* md's default */

struct lnode {
	bool func;
	const char *name; /* path or function name, in the expression */
	size_t name_len;
	size_t at; /* column of name */
	const char *uri; /* BK_URI kinds: the URI, as written */
	size_t uri_len, uri_at;
	struct lnode *kids[LAYER_MAX_MEMBERS];
	int nr_kids;
	struct {
		const char *key;
		size_t key_len;
		const char *str; /* the value as written */
		size_t str_len;
		size_t at; /* column of the value */
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

/* A message at column @at of the expression, with a caret under it, into
 * p->err; returns -EINVAL. */
int layout_fail_at(struct parser *p, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void layout_skip_ws(struct parser *p);
/* Whether @expr is a path, not an expression: an existing file, even if
 * its name has parentheses, or a name with none of "(),". */
bool layout_is_path(const char *expr);
/* One node and everything under it; 0 or -EINVAL (a message in p->err). */
int layout_parse_node(struct parser *p, struct lnode **out);
void layout_free_tree(struct lnode *n);
/* Kinds, member counts and options of the tree, and the member files it
 * will create (@future, @nr_future of them); 0 or -EINVAL. */
int layout_check_node(struct parser *p, struct lnode *n, char **future,
		      int *nr_future);

#endif
