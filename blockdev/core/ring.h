/* ring: the one io_uring every layer and transport submits to, and the
 * pinned, registered buffer pool its fixed reads and writes come from. */
#ifndef RAWVEC_RING_H
#define RAWVEC_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * struct bdev_ring_op - what a CQE's user_data points at.  Whoever
 * submits embeds one and is called back with the CQE's res and flags.
 */
struct bdev_ring_op {
	void (*ro_done)(struct bdev_ring_op *op, int res, unsigned flags);
};

/**
 * struct bdev_ring_hook - run once before the ring next submits (the
 * "unplug" at the end of a batch of completions, for a layer that holds
 * work back hoping more of it arrives in the same batch), or once a time
 * has come, the loop's wait cut short to meet it.
 */
struct bdev_ring_hook {
	struct bdev_ring_hook *rh_next;
	void (*rh_fn)(struct bdev_ring_hook *h);
	uint64_t rh_due_ns; /* CLOCK_MONOTONIC; 0: at the next run */
	bool rh_armed;
};

/**
 * struct bdev_ring - an io_uring set up for one issuing thread.
 * @pool/@pool_bytes: pinned memory, registered as fixed buffer 0
 * @pool_used:        bytes handed out by bdev_ring_pool_alloc()
 * @task_flags:       whether COOP_TASKRUN|SINGLE_ISSUER|DEFER_TASKRUN
 *                    could be set (they decide the loop's speed)
 */
struct bdev_ring {
	struct io_uring ring;
	char *pool;
	void *pool_map; /* the mapping pool lies in (aligned inside it) */
	size_t pool_bytes;
	size_t pool_used;
	bool task_flags;
	bool sqe128;
	unsigned pending_sqes;
	struct bdev_ring_hook *hooks; /* armed, run by bdev_ring_run() */
};

/**
 * bdev_ring_init() - set up a ring of @entries SQEs; @sqe128 for rings
 * that carry URING_CMD (FUSE-over-io_uring).  Prefers the single-issuer
 * task-work flags and falls back without them.  Returns 0 or -errno.
 */
int bdev_ring_init(struct bdev_ring *r, unsigned entries, bool sqe128);

/**
 * bdev_ring_pool_init() - map, lock and register @bytes of pinned memory.
 * Returns 0 or -errno (-ENOMEM / -EPERM when RLIMIT_MEMLOCK is too low).
 */
int bdev_ring_pool_init(struct bdev_ring *r, size_t bytes);

/**
 * bdev_ring_pool_alloc() - carve @bytes (rounded up to a page) out of the
 * pool.  Start-up only; never freed.  Returns NULL when the pool is full.
 */
void *bdev_ring_pool_alloc(struct bdev_ring *r, size_t bytes);

/** bdev_ring_in_pool() - whether [@p, @p + @len) is registered memory. */
static inline bool bdev_ring_in_pool(const struct bdev_ring *r, const void *p,
				     size_t len)
{
	const char *c = p;

	return r->pool && c >= r->pool && c + len <= r->pool + r->pool_bytes;
}

/**
 * bdev_ring_sqe() - a free SQE whose user_data is @op.  Submits to make
 * room when the SQ is full; never returns NULL.
 */
struct io_uring_sqe *bdev_ring_sqe(struct bdev_ring *r,
				   struct bdev_ring_op *op);

/** bdev_now_ns() - CLOCK_MONOTONIC in ns, the clock io_uring timeouts use. */
uint64_t bdev_now_ns(void);

/**
 * bdev_ring_timer_at() - complete @op when CLOCK_MONOTONIC reaches @due_ns
 * (an absolute io_uring timeout; res -ETIME is the normal outcome).  @ts
 * is the caller's and must live until the SQE is submitted.
 */
void bdev_ring_timer_at(struct bdev_ring *r, struct bdev_ring_op *op,
			struct __kernel_timespec *ts, uint64_t due_ns);

/**
 * bdev_ring_hook_arm_at() - have @h run at the start of the first
 * bdev_ring_run() at or after CLOCK_MONOTONIC @due_ns (0: the next one),
 * before it submits or waits; a run that would wait past @due_ns waits
 * only until then.  An armed hook keeps the earlier of its two times.
 * Hooks armed while hooks run also run before that wait, once due.
 */
void bdev_ring_hook_arm_at(struct bdev_ring *r, struct bdev_ring_hook *h,
			   uint64_t due_ns);

/** bdev_ring_hook_disarm() - @h will not run (its owner goes away). */
void bdev_ring_hook_disarm(struct bdev_ring *r, struct bdev_ring_hook *h);

/** bdev_ring_hook_arm() - bdev_ring_hook_arm_at(@r, @h, 0). */
static inline void bdev_ring_hook_arm(struct bdev_ring *r, struct bdev_ring_hook *h)
{
	bdev_ring_hook_arm_at(r, h, 0);
}

/**
 * bdev_ring_run() - run the hooks that are due, submit what is queued,
 * wait for at least @wait_nr completions (0: do not block) and dispatch
 * every ready CQE.
 * Returns the number dispatched or -errno (-EINTR when a signal came).
 */
int bdev_ring_run(struct bdev_ring *r, unsigned wait_nr);

/**
 * bdev_ring_run_until() - for start-up and shutdown, outside the event
 * loop: run the ring until @done(@arg) holds.  A hook may finish the work
 * without a completion to wait for, so no wait lasts more than 1 ms.
 * Returns 0 or -errno.
 */
int bdev_ring_run_until(struct bdev_ring *r, bool (*done)(void *arg), void *arg);

/** bdev_ring_exit() - tear down the ring and unmap the pool. */
void bdev_ring_exit(struct bdev_ring *r);

#endif
