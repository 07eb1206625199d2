/* loop: an event loop (io_uring, pinned registered pool, hooks, timers)
 * that requests are submitted on; devices and transports keep none. */
#ifndef RAWVEC_LOOP_H
#define RAWVEC_LOOP_H

/*
 * Who owns what.  A loop is single-issuer: only the thread that runs it
 * touches its ring, its pool, its hooks, and every object it owns.
 *
 * Passed, not stored: a request carries its loop (bdev_req.br_loop, set by
 * whoever starts it, inherited by children); file members submit on it,
 * faulty() times its spikes on it, sim() and raid5/6 arm their hooks on
 * it.  A hook remembers the loop it is armed on (lh_loop), so re-arming
 * from inside it needs no stored pointer.
 *
 * Several loops, one thread each (fs/loops.c), and what is whose:
 * - per loop: the ring and pool; a bdev_rw_ctx (wait FIFO, bounces; its
 *   range locks are the device's, shared under a short mutex, rw.h) and
 *   the front end's transports, ring entries and counters (fs.h);
 * - sharded per loop (lp_id indexes the shard; summed when stats are
 *   read): bd_stats (bdev_stats_of()), a layer's free list and l_stats;
 *   a raid1's read cursor and writes in flight (raid1.c); a raid5/6's
 *   stripe shards, each for the stripe groups its loop owns (raid56.h);
 *   both gathered on loop 0 while a sweep runs or md metadata says clean
 *   (layer_spread.c); the writes a loop holds until md records a failure
 *   (super.c);
 * - a device that keeps state of its own (every kind not BK_SHARED or
 *   split per loop, one with a trace observer) is owned by one loop
 *   (bd_owner): a request from another loop is handed to it with
 *   loop_msg() and back at completion (br_home), so its state, and all it
 *   submits below, only ever runs there.  That covers faulty()'s RNG
 *   and counters; sim()'s queue model (one disk, whatever loop asks);
 *   the trace buffer (one per mount);
 * - owned by the loop that started it: a sweep (l_sweep_loop, and the
 *   tree its log lines name, l_sweep_top);
 * - owned by the loop given to super_attach(): an array's md metadata
 *   (other loops count the failures they meet and send them there).
 * The front end makes loop 0 the owner of all of these, and runs the
 * control file and sweeps there too.
 * Shared and read-only once serving: sizes, alignments, the tree's shape
 * (changed only by member_replace(), on the owning loop, with no I/O in
 * flight to the member swapped).
 */

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev/core/list.h"

/**
 * struct loop_op - what a CQE's user_data points at.  Whoever
 * submits embeds one and is called back with the CQE's res and flags.
 */
struct loop_op {
	void (*lo_done)(struct loop_op *op, int res, unsigned flags);
	struct loop *lo_to; /* loop_msg(): where it goes, to send it again */
};

/**
 * struct loop_hook - run once before the ring next submits (the
 * "unplug" at the end of a batch of completions, for a layer that holds
 * work back hoping more of it arrives in the same batch), or once a time
 * has come, the loop's wait cut short to meet it.
 */
struct loop_hook {
	struct loop_hook *lh_next;
	void (*lh_fn)(struct loop_hook *h);
	struct loop *lh_loop; /* the loop it is armed on, or was last */
	uint64_t lh_due_ns;   /* CLOCK_MONOTONIC; 0: at the next run */
	bool lh_armed;
};

/**
 * struct loop - an event loop: an io_uring set up for one issuing thread,
 * its pinned pool, and the hooks armed on it.
 * @pool/@pool_bytes: pinned memory, registered as fixed buffer 0
 * @pool_used:        bytes handed out by loop_pool_alloc()
 * @task_flags:       whether COOP_TASKRUN|SINGLE_ISSUER|DEFER_TASKRUN
 *                    could be set (they decide the loop's speed)
 */
struct loop {
	struct io_uring ring;
	unsigned lp_id; /* 0..LOOP_MAX-1: which shard of sharded state */
	char *pool;
	void *pool_map; /* the mapping pool lies in (aligned inside it) */
	size_t pool_bytes;
	size_t pool_used;
	bool task_flags;
	bool sqe128;
	unsigned pending_sqes;
	struct loop_hook *hooks; /* armed, run by loop_run() */
	uint64_t msgs_sent, msgs_failed;
	pthread_t thread; /* the one that set it up: its single issuer */
};

/* Most loops one process runs: what per-loop shards are sized by. */
#define LOOP_MAX 64

/**
 * loop_init() - set up a ring of @entries SQEs; @sqe128 for rings
 * that carry URING_CMD (FUSE-over-io_uring).  Prefers the single-issuer
 * task-work flags and falls back without them.  Returns 0 or -errno.
 */
int loop_init(struct loop *r, unsigned entries, bool sqe128);

/**
 * loop_register() - make @r loop number @id (its lp_id), found by
 * loop_by_id() from any thread: a device that shards its state per loop
 * hands work to a loop by number.  Before the loop serves.
 */
void loop_register(struct loop *r, unsigned id);

/** loop_by_id() - the loop registered as @id, or NULL. */
struct loop *loop_by_id(unsigned id);

/** loop_id() - @lp's number, the shard of sharded state it writes; 0 for
 * no loop (a unit test's request, run on its caller's thread). */
static inline unsigned loop_id(const struct loop *lp)
{
	return lp ? lp->lp_id : 0;
}

/**
 * loop_pool_init() - map, lock and register @bytes of pinned memory.
 * Returns 0 or -errno (-ENOMEM / -EPERM when RLIMIT_MEMLOCK is too low).
 */
int loop_pool_init(struct loop *r, size_t bytes);

/**
 * loop_pool_alloc() - carve @bytes (rounded up to a page) out of the
 * pool.  Start-up only; never freed.  Returns NULL when the pool is full.
 */
void *loop_pool_alloc(struct loop *r, size_t bytes);

/** loop_in_pool() - whether [@p, @p + @len) is registered memory. */
static inline bool loop_in_pool(const struct loop *r, const void *p, size_t len)
{
	const char *c = p;

	return r->pool && c >= r->pool && c + len <= r->pool + r->pool_bytes;
}

/**
 * loop_sqe() - a free SQE whose user_data is @op.  Submits to make
 * room when the SQ is full; never returns NULL.
 */
struct io_uring_sqe *loop_sqe(struct loop *r, struct loop_op *op);

/**
 * loop_flush() - submit the SQEs queued so far, now: before closing an fd
 * that one of them names, which the kernel must see while it is still the
 * same file (a number closed and reused meanwhile is another file).
 * Nothing once loop_exit() has run: the ring and what it held are gone.
 */
void loop_flush(struct loop *r);

/**
 * loop_is_mine() - whether the calling thread may touch what @r owns: it
 * is the thread that set @r up, or @r has exited (loop_exit()).
 */
bool loop_is_mine(const struct loop *r);

/**
 * loop_msg() - have @op run on @to's thread, with res 0, as if a CQE of
 * @to's ring completed it: queued on @from's ring (IORING_OP_MSG_RING),
 * so it leaves with @from's next submit and wakes @to if it waits.  From
 * @from's thread only.  The kernel refuses a message only when memory
 * runs out, and then it is sent again; or when @to is gone (its thread
 * ended), and then it is logged and counted (msgs_failed): nothing is
 * sent to a loop after it ends.
 */
void loop_msg(struct loop *from, struct loop *to, struct loop_op *op);

/** loop_now_ns() - CLOCK_MONOTONIC in ns, the clock io_uring timeouts use. */
uint64_t loop_now_ns(void);

/**
 * loop_timer_at() - complete @op when CLOCK_MONOTONIC reaches @due_ns
 * (an absolute io_uring timeout; res -ETIME is the normal outcome).  @ts
 * is the caller's and must live until the SQE is submitted.
 */
void loop_timer_at(struct loop *r, struct loop_op *op,
		   struct __kernel_timespec *ts, uint64_t due_ns);

/**
 * loop_hook_arm_at() - have @h run at the start of the first
 * loop_run() at or after CLOCK_MONOTONIC @due_ns (0: the next one),
 * before it submits or waits; a run that would wait past @due_ns waits
 * only until then.  An armed hook keeps the earlier of its two times.
 * Hooks armed while hooks run also run before that wait, once due.
 */
void loop_hook_arm_at(struct loop *r, struct loop_hook *h, uint64_t due_ns);

/** loop_hook_disarm() - @h will not run (its owner goes away). */
void loop_hook_disarm(struct loop_hook *h);

/** loop_hook_arm() - loop_hook_arm_at(@r, @h, 0). */
static inline void loop_hook_arm(struct loop *r, struct loop_hook *h)
{
	loop_hook_arm_at(r, h, 0);
}

/**
 * loop_run() - run the hooks that are due, submit what is queued,
 * wait for at least @wait_nr completions (0: do not block) and dispatch
 * every ready CQE.
 * Returns the number dispatched or -errno (-EINTR when a signal came).
 */
int loop_run(struct loop *r, unsigned wait_nr);

/**
 * loop_current() - the loop whose hooks or completions the calling thread
 * is running (inside loop_run()), or NULL: for a callback that is handed
 * no loop, such as a member's state change, to tell where it runs.
 */
struct loop *loop_current(void);

/**
 * loop_run_until() - for start-up and shutdown, outside the event
 * loop: run the ring until @done(@arg) holds.  A hook may finish the work
 * without a completion to wait for, so no wait lasts more than 1 ms.
 * Returns 0 or -errno.
 */
int loop_run_until(struct loop *r, bool (*done)(void *arg), void *arg);

/** loop_exit() - tear down the ring and unmap the pool; after a failed
 * loop_init(), or a second time, it does nothing. */
void loop_exit(struct loop *r);

#endif
