/* rw: byte-granular I/O on a bdev.  Clips to the device, sends aligned
 * requests straight down and turns unaligned ones into read-modify-write
 * through pinned bounce buffers, with range locks so overlapping writers
 * never lose each other's bytes. */
#ifndef RAWVEC_RW_H
#define RAWVEC_RW_H

#include <pthread.h>

#include "blockdev/core/bdev.h"

struct bdev_rw;
struct bdev_rw_ctx;

/**
 * struct bdev_rw_locks - the range locks of one device, shared by the
 * contexts of every loop that writes to it: a short mutex over the list of
 * held ranges, taken twice per write (acquire, release) and never across
 * I/O.  A loop whose waiter a release on another loop may free is sent a
 * wake-up (loop_msg()); @nr_waiting, under @mu, is how the releaser knows.
 */
struct bdev_rw_locks {
	pthread_mutex_t mu;
	struct bdev_rw *locked;
	struct bdev_rw_ctx *ctx[LOOP_MAX];
	int nr_ctx;
};

/**
 * struct bdev_rw_ctx - the state every bdev_rw on one device and one loop
 * shares: it belongs to @loop, which all its requests are submitted on.
 * Each loop has its own; their range locks are one (@locks).
 * @locks:    the device's range locks: @own_locks, or a first context's
 * @nr_locked: ranges this context's writes hold
 * @waiting:  I/Os waiting for a range or a bounce buffer, oldest first
 * @nr_waiting: their number, changed and read under locks->mu
 * @bounce:   free bounce buffers, each @bounce_bytes, pinned
 * Counters are exported by the stats file (written with bdev_stat_add()).
 */
struct bdev_rw_ctx {
	struct bdev *dev;
	struct loop *loop;
	struct bdev_rw_locks *locks;
	struct bdev_rw_locks own_locks;
	int nr_locked;
	int nr_waiting;
	bool wake_sent; /* under locks->mu: a wake-up is on its way */
	struct loop_op wake_op;
	FIFO(struct bdev_rw) waiting;
	char **bounce;
	int nr_bounce_free;
	size_t bounce_bytes;
	size_t max_io_bytes;
	uint64_t bytes_bounced; /* bytes memcpy'd in or out of bounces */
	uint64_t rmw_ops;	/* unaligned writes done by read-modify-write */
	uint64_t unaligned_reads;
	uint64_t lock_waits; /* I/Os that had to wait for a range */
};

typedef void (*bdev_rw_done_fn)(struct bdev_rw *rw, ssize_t res);

/**
 * struct bdev_rw - one byte-range operation; embedded by its owner, reused.
 * Completion: rw_done(rw, bytes done or -errno), exactly once.
 */
struct bdev_rw {
	struct bdev_rw_ctx *rw_ctx;
	enum bdev_op rw_op;
	uint64_t rw_pos;
	size_t rw_len;
	char *rw_buf;
	bdev_rw_done_fn rw_done;
	void *rw_private;
	/* private to rw.c */
	struct pvec rw_vec[3];
	struct bdev_req rw_req;
	struct bdev_req rw_sub[3];
	uint64_t rw_lock_start, rw_lock_end;
	char *rw_bounce;
	struct bdev_rw *rw_next;      /* on ctx->locked */
	struct bdev_rw *rw_wait_next; /* on ctx->waiting */
	int rw_stage;
	bool rw_need_lock, rw_need_bounce;
};

/**
 * bdev_rw_ctx_init() - set up @ctx for @dev.  Carves @nr_bounce bounce
 * buffers big enough for @max_io_bytes plus an aligned head and tail from
 * @loop's pinned pool.  Returns 0, or -ENOMEM with nothing left to free.
 */
int bdev_rw_ctx_init(struct bdev_rw_ctx *ctx, struct bdev *dev,
		     struct loop *loop, size_t max_io_bytes, int nr_bounce);

/**
 * bdev_rw_ctx_share() - make @ctx, of another loop on the same device,
 * take its range locks with @first's, so that writers on both never lose
 * each other's bytes.  Before any I/O on either.
 */
void bdev_rw_ctx_share(struct bdev_rw_ctx *ctx, struct bdev_rw_ctx *first);

/** bdev_rw_ctx_exit() - free what bdev_rw_ctx_init() allocated. */
void bdev_rw_ctx_exit(struct bdev_rw_ctx *ctx);

/**
 * bdev_rw_start() - start @op on [@pos, @pos + @len) with data at @buf
 * (pinned; NULL for FLUSH/DISCARD/ZERO).  READ past the end yields 0 and a
 * read across it a short count; WRITE at or past the end fails -ENOSPC and
 * one across it writes the part inside and returns a short count.
 * @len must not exceed the context's max_io_bytes for READ/WRITE.
 */
void bdev_rw_start(struct bdev_rw_ctx *ctx, struct bdev_rw *rw, enum bdev_op op,
		   uint64_t pos, void *buf, size_t len, bdev_rw_done_fn done,
		   void *private);

/** bdev_rw_busy() - whether any I/O of @ctx holds or waits for a range. */
bool bdev_rw_busy(const struct bdev_rw_ctx *ctx);

#endif
