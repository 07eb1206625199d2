/* loop: io_uring set-up, SQE handout, CQE dispatch, hooks and the pinned
 * pool.  Single issuer: only the thread that created the loop touches it. */
#include "blockdev/core/loop.h"
#include "blockdev/core/log.h"

#include <errno.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#define HUGE_ALIGN (2u << 20)

/* A message (IORING_OP_MSG_RING) hands @op, and everything its sender
 * wrote before, to the receiving loop's thread: the kernel orders the two,
 * but ThreadSanitizer cannot see that, so it is told. */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define msg_release(op) __tsan_release(op)
#define msg_acquire(op) __tsan_acquire(op)
#else
#define msg_release(op) ((void)(op))
#define msg_acquire(op) ((void)(op))
#endif

int loop_init(struct loop *r, unsigned entries, bool sqe128)
{
	struct io_uring_params p;
	unsigned base = sqe128 ? IORING_SETUP_SQE128 : 0;
	int ret;

	memset(r, 0, sizeof(*r));
	/* Without these three the kernel interrupts us with task work on
	 * every completion: measured 78k vs 93k IOPS and half the no-I/O
	 * ceiling, so they are worth a fallback dance. */
	memset(&p, 0, sizeof(p));
	p.flags = base | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	ret = io_uring_queue_init_params(entries, &r->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = base;
		ret = io_uring_queue_init_params(entries, &r->ring, &p);
	} else if (!ret) {
		r->task_flags = true;
	}
	if (ret) {
		r->ring.ring_fd = -1; /* loop_exit() has nothing to tear down */
		return ret;
	}
	r->sqe128 = sqe128;
	r->thread = pthread_self();
	return 0;
}

/* The loops of this process by id: who a shard's or a part's loop is
 * before it has served anything.  Written before serving, read after. */
static struct loop *loops_by_id[LOOP_MAX];

void loop_register(struct loop *r, unsigned id)
{
	r->lp_id = id;
	__atomic_store_n(&loops_by_id[id], r, __ATOMIC_RELEASE);
}

struct loop *loop_by_id(unsigned id)
{
	return id < LOOP_MAX ?
		       __atomic_load_n(&loops_by_id[id], __ATOMIC_ACQUIRE) :
		       NULL;
}

int loop_pool_init(struct loop *r, size_t bytes)
{
	struct iovec iov;
	void *p, *map;
	int ret;

	bytes = (bytes + 4095) & ~(size_t)4095;
	/* One registered buffer may not exceed 1 GiB. */
	if (!bytes || bytes > (1ul << 30))
		return -EINVAL;
	/* 2 MiB-aligned and huge where the kernel allows: physically
	 * contiguous buffers let a 1 MiB request reach the disk as one
	 * request instead of being split at the queue's segment limit. */
	map = mmap(NULL, bytes + HUGE_ALIGN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	p = (void *)(((uintptr_t)map + HUGE_ALIGN - 1) &
		     ~(uintptr_t)(HUGE_ALIGN - 1));
	madvise(p, bytes, MADV_HUGEPAGE);
	/* Registration below pins the pages for good; mlock also faults
	 * them in.  Where mlock is refused (a user's RLIMIT_MEMLOCK counts
	 * both), touching them does that part. */
	if (mlock(p, bytes))
		memset(p, 0, bytes);
	iov.iov_base = p;
	iov.iov_len = bytes;
	ret = io_uring_register_buffers(&r->ring, &iov, 1);
	if (ret)
		goto out_unmap;
	r->pool = p;
	r->pool_bytes = bytes;
	r->pool_used = 0;
	r->pool_map = map;
	return 0;
out_unmap:
	munmap(map, bytes + HUGE_ALIGN);
	return ret;
}

void *loop_pool_alloc(struct loop *r, size_t bytes)
{
	void *p;

	bytes = (bytes + 4095) & ~(size_t)4095;
	if (bytes > r->pool_bytes - r->pool_used)
		return NULL;
	p = r->pool + r->pool_used;
	r->pool_used += bytes;
	return p;
}

struct io_uring_sqe *loop_sqe(struct loop *r, struct loop_op *op)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&r->ring)))
		io_uring_submit(&r->ring);
	if (r->sqe128)
		memset(sqe, 0, 128);
	io_uring_sqe_set_data(sqe, op);
	return sqe;
}

void loop_flush(struct loop *r)
{
	if (r->ring.ring_fd >= 0)
		io_uring_submit(&r->ring);
}

bool loop_is_mine(const struct loop *r)
{
	return r->ring.ring_fd < 0 || pthread_equal(r->thread, pthread_self());
}

/* A refused message's CQE: its op with the low bit set (ops are aligned). */
#define MSG_REFUSED 1ul

void loop_msg(struct loop *from, struct loop *to, struct loop_op *op)
{
	struct io_uring_sqe *sqe = loop_sqe(from, NULL);

	op->lo_to = to;
	io_uring_prep_msg_ring(sqe, to->ring.ring_fd, 0, (uintptr_t)op, 0);
	/* Only a refusal comes back to the sender, marked as one. */
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	sqe->user_data = (uintptr_t)op | MSG_REFUSED;
	__atomic_store_n(&from->msgs_sent, from->msgs_sent + 1,
			 __ATOMIC_RELAXED);
	/* Last: the message leaves at the next submit, after all of this. */
	msg_release(op);
}

/* The kernel refused a message of ours: it carries a request, a reply or a
 * wake-up that must not be lost, so send it again unless its loop is gone. */
static void msg_refused(struct loop *r, struct loop_op *op, int res)
{
	if (res == -ENOMEM || res == -EAGAIN) {
		loop_msg(r, op->lo_to, op);
		return;
	}
	__atomic_store_n(&r->msgs_failed, r->msgs_failed + 1, __ATOMIC_RELAXED);
	bdev_log("io_uring: loop %u: a message to another loop was refused: %s",
		 r->lp_id, strerror(-res));
}

uint64_t loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void loop_timer_at(struct loop *r, struct loop_op *op,
		   struct __kernel_timespec *ts, uint64_t due_ns)
{
	ts->tv_sec = (long long)(due_ns / 1000000000ull);
	ts->tv_nsec = (long long)(due_ns % 1000000000ull);
	io_uring_prep_timeout(loop_sqe(r, op), ts, 0, IORING_TIMEOUT_ABS);
}

void loop_hook_arm_at(struct loop *r, struct loop_hook *h, uint64_t due_ns)
{
	if (h->lh_armed) {
		if (due_ns < h->lh_due_ns)
			h->lh_due_ns = due_ns;
		return;
	}
	h->lh_armed = true;
	h->lh_loop = r;
	h->lh_due_ns = due_ns;
	h->lh_next = r->hooks;
	r->hooks = h;
}

void loop_hook_disarm(struct loop_hook *h)
{
	struct loop_hook **pp;

	if (!h->lh_armed)
		return;
	pp = &h->lh_loop->hooks;
	while (*pp != h)
		pp = &(*pp)->lh_next;
	*pp = h->lh_next;
	h->lh_armed = false;
}

/* Run every hook that is due, until none is: held work must never wait
 * behind the sleep it was held across.  Returns the earliest time a hook
 * still waits for (0: none). */
static uint64_t run_hooks(struct loop *r)
{
	uint64_t now = 0, next;
	struct loop_hook **pp, *h;

again:
	next = 0;
	for (pp = &r->hooks; (h = *pp); pp = &h->lh_next) {
		if (h->lh_due_ns) {
			if (!now)
				now = loop_now_ns();
			if (h->lh_due_ns > now) {
				if (!next || h->lh_due_ns < next)
					next = h->lh_due_ns;
				continue;
			}
		}
		/* The hook may arm hooks: unlink it, run it, look again. */
		*pp = h->lh_next;
		h->lh_armed = false;
		h->lh_fn(h);
		goto again;
	}
	return next;
}

/* The loop whose hooks and completions this thread runs now: who a state
 * change reached from a device's callback came from (loop_current()). */
static _Thread_local struct loop *running;

struct loop *loop_current(void)
{
	return running;
}

static int run_once(struct loop *r, unsigned wait_nr);

int loop_run(struct loop *r, unsigned wait_nr)
{
	struct loop *outer = running;
	int ret;

	running = r;
	ret = run_once(r, wait_nr);
	running = outer;
	return ret;
}

static int run_once(struct loop *r, unsigned wait_nr)
{
	struct io_uring_cqe *cqe;
	uint64_t due = r->hooks ? run_hooks(r) : 0;
	int ret, nr = 0;

	if (wait_nr && due) {
		struct __kernel_timespec ts = { 0 };
		uint64_t now = loop_now_ns();

		if (due > now) {
			ts.tv_sec = (long long)((due - now) / 1000000000ull);
			ts.tv_nsec = (long long)((due - now) % 1000000000ull);
		}
		/* Kernels before 5.11 cannot bound a wait without a timeout
		 * SQE of liburing's own: poll until the hook is due. */
		if (r->ring.features & IORING_FEAT_EXT_ARG)
			ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe,
							       wait_nr, &ts,
							       NULL);
		else
			ret = io_uring_submit_and_get_events(&r->ring);
	} else if (wait_nr) {
		ret = io_uring_submit_and_wait(&r->ring, wait_nr);
	} else {
		ret = io_uring_submit_and_get_events(&r->ring);
	}
	if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY &&
	    ret != -ETIME)
		return ret;
	/* Handlers may queue new SQEs; they go out on the next call. */
	while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
		struct loop_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;

		io_uring_cqe_seen(&r->ring, cqe);
		if ((uintptr_t)op & MSG_REFUSED) {
			msg_refused(r, (void *)((uintptr_t)op & ~MSG_REFUSED),
				    res);
		} else if (op) {
			msg_acquire(op);
			op->lo_done(op, res, flags);
		}
		nr++;
	}
	return nr ? nr : (ret == -EINTR ? -EINTR : 0);
}

struct tick {
	struct loop_hook t_hook;
	struct loop *t_ring;
};

/* Always armed a little ahead, so that a run whose other hooks finish the
 * work still ends its wait. */
static void tick(struct loop_hook *h)
{
	struct tick *t = (struct tick *)h;

	loop_hook_arm_at(t->t_ring, h, loop_now_ns() + 1000000);
}

int loop_run_until(struct loop *r, bool (*done)(void *arg), void *arg)
{
	struct tick t = { .t_hook.lh_fn = tick, .t_ring = r };
	int ret = 0;

	tick(&t.t_hook);
	while (!done(arg)) {
		ret = loop_run(r, 1);
		if (ret < 0 && ret != -EINTR)
			break;
		ret = 0;
	}
	loop_hook_disarm(&t.t_hook);
	return ret;
}

void loop_exit(struct loop *r)
{
	if (r->ring.ring_fd < 0)
		return;
	io_uring_queue_exit(&r->ring);
	r->ring.ring_fd = -1;
	if (r->pool)
		munmap(r->pool_map, r->pool_bytes + HUGE_ALIGN);
	r->pool = NULL;
}
