/* bdev: requests (vector + op + position + completion) and the small
 * backend interface that image files, block devices and RAID layers share. */
#ifndef RAWVEC_BDEV_H
#define RAWVEC_BDEV_H

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vec/pvec.h"
#include "blockdev/core/loop.h"

enum bdev_op {
	BDEV_READ,
	BDEV_WRITE,
	BDEV_FLUSH,   /* make everything completed so far durable */
	BDEV_DISCARD, /* deallocate; reads of the range return zeroes after */
	BDEV_ZERO,    /* write zeroes without a payload */
	BDEV_NR_OPS
};

struct bdev;
struct bdev_kind;
struct bdev_req;

typedef void (*bdev_end_fn)(struct bdev_req *req);

/* Inline iovecs: front-end requests are one or two contiguous pieces. */
#define BDEV_REQ_INLINE_IOV 4

/**
 * struct bdev_req - one operation on a bdev.
 * @br_vec/@br_iter: the data (READ/WRITE); a child's @br_vec is its
 *   parent's array and @br_iter a slice of the parent's range.
 * @br_pos:     byte offset on the device
 * @br_len:     bytes (for READ/WRITE equal to br_iter.pi_size)
 * @br_error:   first error (negative errno) of this request or a child
 * @br_pending: completions still owed: one per chained child plus one
 *   held by whoever is submitting, so a parent cannot finish while it is
 *   still being split
 * @br_end:     called once when br_pending drops to zero (may be NULL)
 * @br_iov:     iovecs the backend may use; inline unless the owner points
 *   it at a larger preallocated array
 * @br_loop:    the event loop the request is submitted on and completes
 *   on.  Whoever starts a request sets it; children inherit their
 *   parent's (bdev_req_child, bdev_req_chain).  Devices never keep a loop
 *   of their own: what they submit, arm or time goes on the request's.
 *   NULL only for devices that complete inside submit (null, mem).
 *   A request submitted to a device owned by another loop (bd_owner)
 *   travels there and back (@br_home): it completes on the loop that
 *   submitted it, like any other.
 * Nothing here is allocated by the core: owners embed requests.
 */
struct bdev_req {
	const struct pvec *br_vec;
	struct pvec_iter br_iter;
	uint64_t br_pos;
	uint64_t br_len;
	enum bdev_op br_op;
	int br_error;
	uint32_t br_pending;
	struct bdev_req *br_parent;
	struct bdev *br_dev;
	uint64_t br_start_ns; /* set by bdev_submit(), for latency */
	bdev_end_fn br_end;
	void *br_private;
	struct bdev_req
		*br_qnext; /* a queue it waits on (super.c's held writes) */
	bool br_meta; /* rawvec's own metadata I/O (superblocks), not the user's */
	struct loop *br_loop;
	struct loop *br_home; /* handed to br_dev's owner: where it returns */
	/* Handed on by a device split per loop (nbd's parts): still in
	 * flight on br_home's stats shard until it is back there, so that
	 * the device never looks idle while the hand-over travels. */
	bool br_home_counted;
	struct loop_op br_loop_op;
	struct iovec *br_iov;
	int br_iov_max;
	struct iovec br_iov_inline[BDEV_REQ_INLINE_IOV];
};

/* I/O size histogram: bucket i counts requests of [2^(i+9), 2^(i+10))
 * bytes, so 512 B is bucket 0 and the last bucket holds 16 MiB and up. */
#define BDEV_HIST_BUCKETS 16

/* Latency histogram, log-linear in ns: values below 8 have a bucket each,
 * then every power of two is cut into 8 buckets, so a percentile read from
 * it is off by at most one bucket width, 12.5%.  256 buckets reach 17 s;
 * the last holds everything slower.  Cheap enough to leave on: one clock
 * read at submit and one at completion. */
#define BDEV_LAT_BUCKETS 256

/** struct bdev_lat - completion latency of one op kind on one bdev. */
struct bdev_lat {
	uint64_t hist[BDEV_LAT_BUCKETS];
	uint64_t sum_ns; /* over this/interval: the mean queue depth */
	uint64_t max_ns;
};

/** struct bdev_stats - counters every bdev keeps; read by the stats file. */
struct bdev_stats {
	uint64_t ops[BDEV_NR_OPS];
	uint64_t done[BDEV_NR_OPS]; /* completed: ops - done are in flight */
	uint64_t bytes[BDEV_NR_OPS];
	uint64_t size_hist[BDEV_HIST_BUCKETS]; /* reads and writes */
	uint64_t errors;
	uint32_t inflight;
	uint32_t inflight_max;
	struct bdev_lat lat[2]; /* [BDEV_READ], [BDEV_WRITE] */
};

/*
 * Stats are written by one loop and read by the thread that serves the
 * stats file: single-writer counters, so a relaxed load and store (plain
 * moves on x86) make the reads well defined without a locked add.
 */
static inline void bdev_stat_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
}

static inline uint64_t bdev_stat_read(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* bdev_stat_enter() / bdev_stat_leave() - one more, one fewer in flight
 * in *@n, written the same way; *@max follows the highest *@n. */
static inline void bdev_stat_max(const uint32_t *n, uint32_t *max)
{
	if (*n > *max)
		__atomic_store_n(max, *n, __ATOMIC_RELAXED);
}

static inline void bdev_stat_enter(uint32_t *n, uint32_t *max)
{
	__atomic_store_n(n, *n + 1, __ATOMIC_RELAXED);
	bdev_stat_max(n, max);
}

/* bdev_stat_mark() - a high-water mark summed over loops: *@max, the
 * largest loop's, raised to the @total in flight now and to the mark
 * *@seen kept from the last sum, which it then keeps.  On one thread. */
static inline void bdev_stat_mark(uint32_t *seen, uint32_t total, uint32_t *max)
{
	if (total > *max)
		*max = total;
	if (*seen > *max)
		*max = *seen;
	*seen = *max;
}

/* Release: bdev_others_inflight() seeing the count fall sees what the
 * request's loop did before. */
static inline void bdev_stat_leave(uint32_t *n)
{
	__atomic_store_n(n, *n - 1, __ATOMIC_RELEASE);
}

/** bdev_lat_bucket() - the histogram bucket of a @ns-long latency. */
static inline int bdev_lat_bucket(uint64_t ns)
{
	int k, b;

	if (ns < 8)
		return (int)ns;
	k = 63 - __builtin_clzll(ns);
	b = (k - 2) * 8 + (int)((ns >> (k - 3)) & 7);
	return b < BDEV_LAT_BUCKETS ? b : BDEV_LAT_BUCKETS - 1;
}

/** bdev_lat_lower() - the smallest latency in ns that falls in bucket @b. */
static inline uint64_t bdev_lat_lower(int b)
{
	return b < 8 ? (uint64_t)b : (uint64_t)(8 + b % 8) << (b / 8 - 1);
}

/** bdev_lat_add() - count one @ns-long completion in @l. */
static inline void bdev_lat_add(struct bdev_lat *l, uint64_t ns)
{
	bdev_stat_add(&l->hist[bdev_lat_bucket(ns)], 1);
	bdev_stat_add(&l->sum_ns, ns);
	if (ns > l->max_ns)
		__atomic_store_n(&l->max_ns, ns, __ATOMIC_RELAXED);
}

/**
 * bdev_lat_percentile() - the latency in ns below which a fraction @q
 * (0..1) of the @n samples in @hist lie: the middle of the bucket that
 * holds the sample of rank ceil(q * n).  0 when @hist is empty.
 */
uint64_t bdev_lat_percentile(const uint64_t *hist, double q);

/**
 * bdev_lat_quantile() - bdev_lat_percentile() of @l's histogram, but never
 * above its slowest sample (a bucket's middle can lie past it).
 */
static inline uint64_t bdev_lat_quantile(const struct bdev_lat *l, double q)
{
	uint64_t ns = bdev_lat_percentile(l->hist, q);

	return ns < l->max_ns ? ns : l->max_ns;
}

/** bdev_hist_bucket() - the size_hist bucket of a @bytes-long request. */
static inline int bdev_hist_bucket(uint64_t bytes)
{
	int b = bytes >= 1024 ? 63 - __builtin_clzll(bytes) - 9 : 0;

	return b < BDEV_HIST_BUCKETS ? b : BDEV_HIST_BUCKETS - 1;
}

/**
 * struct bdev_ops - a backend.  @submit starts @req and guarantees that
 * bdev_req_complete() is called on it exactly once, possibly before
 * @submit returns.  @req's range is inside the device and aligned to
 * bd_align (the caller's job; see rw.h).
 */
struct bdev_ops {
	void (*submit)(struct bdev *dev, struct bdev_req *req);
	void (*destroy)(struct bdev *dev);
};

/**
 * struct bdev - a device: an image file, a block device, or a layer.
 * @bd_size:      bytes, a multiple of @bd_align
 * @bd_align:     offset and length alignment for direct I/O (power of 2)
 * @bd_mem_align: buffer address alignment for direct I/O (power of 2)
 */
struct bdev {
	const struct bdev_ops *bd_ops;
	char *bd_name;
	const char *bd_kind; /* "file", "blockdev", "null", "raid5", ... */
	const struct bdev_kind *bd_desc; /* its kind (blockdev/kind.h) */
	uint64_t bd_size;
	uint32_t bd_align;
	uint32_t bd_mem_align;
	bool bd_is_blockdev;
	bool bd_read_only;
	bool bd_created;	/* file: made by --create just now */
	bool bd_byte_zero;	/* DISCARD/ZERO need no alignment (files) */
	bool bd_discard_zeroes; /* a DISCARD reads back zeroes (a hole in a file) */
	uint64_t bd_id_dev, bd_id_ino;	  /* file: what it is, to spot twins */
	struct bdev_stats bd_stats;	  /* loop 0's; see bdev_stats_of() */
	struct bdev_stats *bd_stats_more; /* loops 1..: bdev_share() */
	int bd_nr_shards;
	uint32_t bd_inflight_max_seen; /* by bdev_stats_sum(), its caller's */
	/* NULL: requests may run on any loop at once (the device keeps no
	 * state but its sharded stats).  Otherwise the one loop its state
	 * belongs to: a request from another loop is handed to it and back
	 * (loop_msg()), so the device, and all it submits below, only ever
	 * runs there. */
	struct loop *bd_owner;
	/* bd_owner changes while serving (bdev_owner_take()): a loop counts
	 * a request in flight before it reads bd_owner, so that the owner
	 * taking over can wait for the others' requests to drain. */
	bool bd_owner_moves;
	/* Atomic, with bd_owner_moves: reads run on the loop they come from
	 * even while the device has an owner (a raid1 gathered on loop 0 for
	 * md metadata alone, which only needs its writes there).  Read after
	 * the request is counted in flight, as bd_owner is. */
	bool bd_reads_stay;
	/* A barrier in front of the backend: returns true when it takes
	 * @req to submit later through bd_ops (md metadata holds writes
	 * until the superblocks say the array is active).  NULL: none. */
	bool (*bd_hold)(struct bdev *dev, struct bdev_req *req);
	/* The same at completion: returns true when it keeps @req, accounted
	 * already, to finish later with bdev_req_end() (md metadata holds
	 * writes back while the superblocks do not yet record a member
	 * failure they may have met). */
	bool (*bd_hold_end)(struct bdev *dev, struct bdev_req *req);
	/* The two barriers may run on any loop (md metadata of a raid5/6
	 * sharded across loops): they do not make the device loop 0's. */
	bool bd_hold_any_loop;
	/* The devices this one is built from (a layer's members in slot
	 * order; the array is the layer's), so that what walks the tree
	 * needs to know no level.  NULL and 0 for a leaf. */
	struct bdev **bd_members;
	int bd_nr_members;
	/* Called at every completion of the user's I/O (not br_meta), with
	 * its completion time: how the -o trace=FILE recorder (trace.c) sees
	 * completions; @bd_observer is its data, @bd_trace_id the device's
	 * number in the trace.  NULL: nobody watches. */
	void (*bd_observe)(struct bdev *dev, const struct bdev_req *req,
			   uint64_t now_ns);
	void *bd_observer;
	uint16_t bd_trace_id;
};

/**
 * bdev_req_init() - prepare @req for @op of @len bytes at @pos.  @vec and
 * @it describe the data (NULL for ops without data); br_pending starts at
 * one: the submitter's reference, dropped by bdev_submit() or, for a parent
 * being split, by the splitter's final bdev_req_complete().
 */
void bdev_req_init(struct bdev_req *req, enum bdev_op op, uint64_t pos,
		   uint64_t len, const struct pvec *vec, struct pvec_iter it,
		   bdev_end_fn end, void *private);

/**
 * bdev_req_child() - make @child the part [@off, @off + @len) of @parent's
 * range, addressed at @child_pos on whatever device it is submitted to.
 * The child shares @parent's vector (a re-slice, no copy) and takes a
 * reference on @parent.  Returns 0 or -ERANGE.
 */
int bdev_req_child(struct bdev_req *parent, struct bdev_req *child,
		   uint64_t off, uint64_t len, uint64_t child_pos,
		   bdev_end_fn end, void *private);

/**
 * bdev_req_chain() - make @child's completion complete @parent too: takes
 * a reference on @parent.  For children that carry a vector of their own
 * (gathered pieces) and so are set up with bdev_req_init().
 */
void bdev_req_chain(struct bdev_req *parent, struct bdev_req *child);

/**
 * bdev_req_like() - give @req the completion context of @from, for a
 * request that stands in for @from without being its child: the loop it
 * runs on and whether it is metadata I/O.
 */
static inline void bdev_req_like(struct bdev_req *req,
				 const struct bdev_req *from)
{
	req->br_loop = from->br_loop;
	req->br_meta = from->br_meta;
}

/**
 * bdev_req_complete() - drop one reference on @req, recording @err (<= 0)
 * if it is the first error.  The last reference calls br_end and then
 * completes the parent with this request's error.
 */
void bdev_req_complete(struct bdev_req *req, int err);

/**
 * bdev_req_end() - the part of completion after accounting: call br_end,
 * then complete the parent.  For a device's bd_hold_end that kept @req.
 */
void bdev_req_end(struct bdev_req *req);

/**
 * bdev_submit() - account @req on @dev and hand it to the backend; or,
 * when @dev is owned by a loop other than @req's, hand @req to that loop,
 * which submits it there, and have it back at completion.
 */
void bdev_submit(struct bdev *dev, struct bdev_req *req);

/** bdev_stats_of() - @dev's stats shard that @lp writes. */
static inline struct bdev_stats *bdev_stats_of(struct bdev *dev,
					       const struct loop *lp)
{
	unsigned id = loop_id(lp);

	return id && dev->bd_stats_more ? &dev->bd_stats_more[id - 1] :
					  &dev->bd_stats;
}

/**
 * bdev_stats_sum() - @dev's stats over every loop into @out: counters and
 * histograms summed, maxima the largest.  inflight_max is the high-water
 * mark as far as it shows without a counter the loops share on the hot
 * path: the largest of each loop's own, of the total in flight at each
 * call and of the last call's, so it never falls and is never below
 * inflight.  Called on one thread (loop 0's).
 */
void bdev_stats_sum(struct bdev *dev, struct bdev_stats *out);

/** bdev_inflight() - @dev's requests in flight, over every loop. */
uint32_t bdev_inflight(const struct bdev *dev);

/**
 * bdev_share() - prepare @dev for @nr_loops loops (1..LOOP_MAX): when
 * @owner is NULL, shards for its stats; otherwise it is owned by @owner.
 * Before any I/O.  Returns 0 or -ENOMEM.
 */
int bdev_share(struct bdev *dev, int nr_loops, struct loop *owner);

/**
 * bdev_owner_take() - make @owner the owner of @dev (bd_owner_moves set)
 * while serving, from @owner's thread: from now on every request to @dev
 * is handed to @owner.  Those other loops have already taken are still
 * theirs: bdev_others_inflight() counts them, and the caller waits for 0
 * before it touches what they may touch.
 */
void bdev_owner_take(struct bdev *dev, struct loop *owner);

/**
 * bdev_req_move() - carry on with @req, already submitted to its device on
 * its loop, on @to: for a device that finds only then that the work is
 * @to's (raid5/6's stripe ops, while loop 0 owns the array).  It leaves
 * this loop's in-flight count, goes to the device's submit again on @to
 * (counted in flight there, not again in ops), and completes back here.
 * @req is not a handed-over one (br_home NULL): it came in on its loop.
 */
void bdev_req_move(struct bdev_req *req, struct loop *to);

/** bdev_owner_give_up() - requests to @dev run on their own loops again. */
void bdev_owner_give_up(struct bdev *dev);

/** bdev_others_inflight() - @dev's requests in flight on loops but @lp's. */
uint32_t bdev_others_inflight(const struct bdev *dev, const struct loop *lp);

/** bdev_destroy() - release @dev and everything it owns. */
void bdev_destroy(struct bdev *dev);

/** bdev_fmt_bytes() - @n bytes for messages: "21.3 GiB", "64 MiB", "512 bytes". */
void bdev_fmt_bytes(uint64_t n, char *buf, size_t len);

/** bdev_op_name() - "read", "write", ... for logs and stats. */
const char *bdev_op_name(enum bdev_op op);

/**
 * struct bdev_file_opts - how to open an image file or block device.
 * @create_size: create a missing image of this many bytes (0: never)
 */
struct bdev_file_opts {
	bool read_only;
	uint64_t create_size;
};

/**
 * bdev_file_open() - open @path for O_DIRECT I/O, submitted on each
 * request's loop (fixed buffers where a piece lies in that loop's pool,
 * one SQE per request, short transfers resubmitted).  Learns
 * size and alignment (BLKGETSIZE64/BLKSSZGET, statx STATX_DIOALIGN, 4096).
 * An image file is locked (an OFD lock, shared under read_only) for as
 * long as any open of it in this process lasts; a block device is opened
 * O_EXCL.  On failure returns a negative errno (-EBUSY: another process
 * holds it) and writes a message naming @path and the reason, and the
 * holder when one is found, into @err (size @err_len).
 */
int bdev_file_open(const char *path, const struct bdev_file_opts *opts,
		   struct bdev **out, char *err, size_t err_len);

/**
 * bdev_null_create() / bdev_mem_create() - a @size-byte member that
 * reads zeroes and drops writes (null), or that keeps its bytes in locked
 * RAM (mem).  Both complete every request inside submit.
 */
int bdev_null_create(uint64_t size, struct bdev **out, char *err,
		     size_t errlen);
int bdev_mem_create(uint64_t size, struct bdev **out, char *err, size_t errlen);

/**
 * bdev_mem_defer_lock() - from now on mem members are only mapped, and
 * checked, all of them together with @reserve bytes set aside (the pinned
 * pool), against MemAvailable and, unprivileged, RLIMIT_MEMLOCK: a layout
 * that cannot fit fails before anything is locked.  Fails (-ENOMEM, a
 * message in @err) when @reserve alone does not fit.
 * bdev_mem_deferred_bytes() - how much that is, not locked yet.
 * bdev_mem_lock_deferred() - lock what was deferred, in steps; returns
 * -EINTR, with what it had locked in @err, as soon as *@stop is set.
 */
int bdev_mem_defer_lock(uint64_t reserve, char *err, size_t errlen);
uint64_t bdev_mem_deferred_bytes(void);
int bdev_mem_lock_deferred(const volatile sig_atomic_t *stop, char *err,
			   size_t errlen);

#endif
