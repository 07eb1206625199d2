/* layout: TARGET expressions such as raid0(raid1(a.img, b.img), c.img,
 * chunk=64k) parsed into a tree of layers over image files/block devices. */
#ifndef RAWVEC_LAYOUT_H
#define RAWVEC_LAYOUT_H

#include "blockdev/core/bdev.h"

/**
 * struct bdev_layout_opts - how to open a TARGET.
 * @max_io_bytes: the largest request the top will receive (sizes the
 *                layers' per-request vectors)
 * @create_size:  create missing image files of this size (0: never)
 * @no_io:        open only, from a thread other than the loop's: arrays
 *                read and write no superblocks (they are headerless), and
 *                the loop may be NULL
 * @nr_loops:     the event loops that will submit to it (nbd()'s
 *                conns=auto opens one connection for each; 0: one)
 */
struct bdev_layout_opts {
	bool read_only;
	bool no_io;
	uint64_t create_size;
	size_t max_io_bytes;
	int nr_loops;
};

/**
 * bdev_layout_open() - open @expr: a path (an image file or block device)
 * or a layout expression.  On failure returns -errno and writes into @err
 * a message; for a bad expression it names the problem and shows the
 * expression with a caret under the offending character.  Superblocks are
 * read on @loop (run until each read is done), and @loop owns the arrays'
 * metadata from then on (super_attach()); the devices keep no loop.
 */
int bdev_layout_open(const char *expr, struct loop *loop,
		     const struct bdev_layout_opts *opts, struct bdev **out,
		     char *err, size_t errlen);

/**
 * bdev_layout_leaves() - the paths @expr names: @expr itself when it is
 * an existing file or has none of "()," (as bdev_layout_open() decides),
 * else every member that is not a level, as the parser reads them.  A
 * syntax error ends the list early (bdev_layout_open() reports it).
 * Opens nothing.  Returns the count (0 to @max) with strdup()ed paths in
 * @out, or -ENOMEM (and none).
 */
int bdev_layout_leaves(const char *expr, char **out, int max);

/**
 * bdev_layout_in_memory() - whether every member @expr names, under
 * levels only, is of a BK_IN_MEMORY kind (null, mem): then nothing waits
 * on a disk and the event loops are the limit.  False for a path, any
 * other member kind (nbd, and sim or faulty, which keep state of their
 * own), and a syntax error.  Opens nothing.
 */
bool bdev_layout_in_memory(const char *expr);

/**
 * bdev_parse_size() - "4096", "64k", "1G" (k/m/g/t, powers of 1024) in the
 * first @len bytes of @s into bytes.  Returns 0, or -EINVAL for an empty
 * or malformed number, zero, or a value that overflows 64 bits.
 */
int bdev_parse_size(const char *s, size_t len, uint64_t *out);

/**
 * bdev_parse_duration() - "500ns", "200us", "2ms", "1s" (the first @len
 * bytes of @s) in ns.  Returns 0 or -EINVAL.
 */
int bdev_parse_duration(const char *s, size_t len, uint64_t *ns);

#endif
