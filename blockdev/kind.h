/* kind: one descriptor per level (linear, raid5, ...) and member kind
 * (file, null, ...), and the registry the parser, --help and stats walk. */
#ifndef RAWVEC_KIND_H
#define RAWVEC_KIND_H

#include <stdio.h>

#include "blockdev/core/bdev.h"

/**
 * struct bdev_kind_args - what a layout expression gives a kind's create.
 * @ka_members:     the members built so far, in expression order (arrays:
 *                  in slot order); owned by create from here on, also on
 *                  failure.  NULL for kinds that take none.
 * @ka_path:        BK_PATH kinds: the path as written; BK_URI kinds: the URI
 * @ka_file:        BK_PATH kinds: read-only, --create; BK_URI: read-only
 * @ka_data_offset: arrays: member bytes before the data (md superblocks)
 * @ka_chunk:       chunk= in bytes (its default when not given)
 * @ka_offset:      offset= in bytes
 * @ka_size:        size= in bytes (0 when not given)
 * @ka_opts:        BK_OWN_OPTS kinds: the options as written, "k=v,k=v,"
 * @ka_max_io_bytes/@ka_in_segs: the largest request the device receives
 *                  and the most segments it arrives with (see layer_create)
 * @ka_nr_loops:    the event loops that will submit to it (0: one)
 */
struct bdev_kind_args {
	struct bdev **ka_members;
	int ka_nr;
	const char *ka_path;
	const struct bdev_file_opts *ka_file;
	uint64_t ka_data_offset;
	uint64_t ka_chunk;
	uint64_t ka_offset;
	uint64_t ka_size;
	const char *ka_opts;
	size_t ka_max_io_bytes;
	uint32_t ka_in_segs;
	int ka_nr_loops;
};

/* How the parser reads an option's value. */
enum bdev_opt_type {
	BDEV_OPT_SIZE,	 /* a size above zero */
	BDEV_OPT_OFFSET, /* a size, or 0 */
	BDEV_OPT_CHUNK, /* a power of two of at least 4k, 512k when not given */
};

/**
 * struct bdev_kind_opt - one key=value a kind takes; the parser checks
 * the value and stores it in the uint64_t at @ko_field of the args.
 * @ko_required: the expression must give it
 */
struct bdev_kind_opt {
	const char *ko_key;
	enum bdev_opt_type ko_type;
	size_t ko_field; /* offsetof(struct bdev_kind_args, ...) */
	bool ko_required;
};

#define BDEV_KIND_MAX_OPTS 4

/* What a kind is, for the parser and the code that walks a built tree. */
enum {
	BK_PATH = 1 << 0,	/* written as a path, not name(...) */
	BK_ARRAY = 1 << 1,	/* md v1.2 superblocks: super=, name=, built
				 * from what super_plan() decides */
	BK_FROM_SUPER = 1 << 2, /* level, chunk and order come from the
				 * superblocks (md): no create of its own */
	BK_OWN_OPTS = 1 << 3,	/* create parses its options (ka_opts) */
	BK_CONCAT = 1 << 4,	/* members back to back at their own sizes:
				 * none shares a common size, a replacement
				 * must be as big as the member it replaces */
	BK_WINDOW = 1 << 5,	/* uses member bytes [offset, offset + size) */
	BK_SAME_BYTES = 1 << 6, /* uses exactly its member's bytes */
	BK_SHARED = 1 << 7,	/* keeps no state on the I/O path but its
				 * sharded stats: runs on every loop at once */
	BK_URI = 1 << 8,	/* its first argument is a URI, taken as
				 * written up to the next ',' or ')' */
	BK_IN_MEMORY = 1 << 9,	/* its bytes are this process's memory:
				 * no request waits on a disk */
	BK_NO_DATA = 1 << 10,	/* keeps nothing written to it (null()) */
};

/** bdev_stat_fn - one numeric stats field, "@name": @val. */
typedef void (*bdev_stat_fn)(void *ctx, const char *name, uint64_t val);

/**
 * struct bdev_kind - a level or member kind.
 * @bk_name:        the function name in a layout, and the bdev's bd_kind
 * @bk_help:        its lines of `rawvec --help`, each "  ...\n" (NULL: none)
 * @bk_min_members/@bk_max_members: how many members it takes
 * @bk_flags:       BK_*
 * @bk_opts:        the options it takes, checked in this order
 * @bk_md_level:    BK_ARRAY: md's level number (-1 linear, 0, 1, 5, 6)
 * @bk_redundancy:  members it runs without, out of @nr (NULL: none)
 * @bk_rebuild_needs: what rebuilding a member needs, for a refusal
 * @bk_create:      build the device; 0 or -errno with the reason in @err
 * @bk_stats:       its own stats fields, after the common ones (NULL: none)
 * @bk_configure:   change its options at run time, all or nothing
 *                  (the control file's `fault`; NULL: not possible)
 * @bk_max_loops:   a kind that is not BK_SHARED but keeps its state per
 *                  connection (nbd): on how many loops at once @dev can
 *                  run, each with a part of that state (NULL: one)
 * @bk_share:       split @dev's state over @nr_loops loops, at most
 *                  bk_max_loops(), before any I/O; 0 or -errno
 */
struct bdev_kind {
	const char *bk_name;
	const char *bk_help;
	int bk_min_members, bk_max_members;
	unsigned bk_flags;
	struct bdev_kind_opt bk_opts[BDEV_KIND_MAX_OPTS];
	int bk_md_level;
	int (*bk_redundancy)(int nr);
	const char *bk_rebuild_needs;
	int (*bk_create)(const struct bdev_kind_args *a, struct bdev **out,
			 char *err, size_t errlen);
	void (*bk_stats)(const struct bdev *dev, bdev_stat_fn emit, void *ctx);
	int (*bk_configure)(struct bdev *dev, const char *opts, char *err,
			    size_t errlen);
	int (*bk_max_loops)(const struct bdev *dev);
	int (*bk_share)(struct bdev *dev, int nr_loops);
};

/*
 * The registry: every level, then every member kind, in the order --help
 * lists them.  Adding one is a new file defining NAME_kind and one line
 * here.
 */
#define BDEV_LEVELS(X) \
	X(linear)      \
	X(slice)       \
	X(raid0)       \
	X(raid1)       \
	X(raid5)       \
	X(raid6)       \
	X(md)

#define BDEV_MEMBERS(X) \
	X(file)         \
	X(null)         \
	X(mem)          \
	X(nbd)          \
	X(faulty)       \
	X(sim)

#define BDEV_KIND_DECLARE(n) extern const struct bdev_kind n##_kind;
BDEV_LEVELS(BDEV_KIND_DECLARE)
BDEV_MEMBERS(BDEV_KIND_DECLARE)

/** bdev_levels / bdev_members - the registry, each ending with NULL. */
extern const struct bdev_kind *const bdev_levels[];
extern const struct bdev_kind *const bdev_members[];

/**
 * bdev_tree_share() - ready the tree under @top for @nr_loops loops.  A
 * device whose kind is BK_SHARED, or splits its state over that many
 * loops (bk_max_loops, bk_share), and that has no md metadata holding its
 * I/O and no trace observer, gets a stats shard per loop; every other
 * device is owned by @owner (bdev_share()), so that its state is only ever
 * touched there.  Returns how many devices are owned, or -errno.
 */
int bdev_tree_share(struct bdev *top, int nr_loops, struct loop *owner);

/** bdev_tree_first_owned() - the first device, top down, that
 * bdev_tree_share() would make owned for @nr_loops loops; NULL when all
 * run anywhere. */
const struct bdev *bdev_tree_first_owned(const struct bdev *top, int nr_loops);

/**
 * bdev_kind_find() - the level or member kind written as @name(...) (the
 * first @len bytes of @name); NULL when there is none.
 */
const struct bdev_kind *bdev_kind_find(const char *name, size_t len);

/** bdev_kind_path() - the member kind a path in a layout opens. */
const struct bdev_kind *bdev_kind_path(void);

/**
 * bdev_kind_names() - "linear, slice, ..., faulty, sim, null, mem" into
 * @buf: every kind written as name(...), those that take members first.
 */
void bdev_kind_names(char *buf, size_t len);

/**
 * bdev_kind_usage() - write to @f the layout lines of `rawvec --help`:
 * each level's, what arrays also take, then each member kind's.
 */
void bdev_kind_usage(FILE *f);

/** bdev_kind_redundancy() - @kind's bk_redundancy(@nr), 0 without one. */
static inline int bdev_kind_redundancy(const struct bdev_kind *kind, int nr)
{
	return kind && kind->bk_redundancy ? kind->bk_redundancy(nr) : 0;
}

#endif
