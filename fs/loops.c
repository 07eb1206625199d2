/* loops: the mount's other event loops, one thread each, and the messages
 * that start, stop and end them and carry loop 0's requests there and back. */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "blockdev/core/rw.h"

/* Start-up hand-shake: each thread says once that it is ready or failed. */
static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER;
static int nr_ready;

static struct rv_loop *loop0(struct rv_fs *fs)
{
	return &fs->loops[0];
}

bool rv_loop_idle(struct rv_loop *rl)
{
	return !__atomic_load_n(&rl->cnt.inflight, __ATOMIC_RELAXED) &&
	       rv_dev_idle(rl) && rv_uring_idle(rl) && !bdev_rw_busy(&rl->rwc);
}

/* Loop 0's queues and each other loop's: q mod nr_loops == id; queue q
 * is CPU q's, so pinning a loop means pinning it to those CPUs. */
static void pin_loop(struct rv_loop *rl)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int q = rl->id; q < rl->fs->nr_queues; q += rl->fs->nr_loops)
		CPU_SET(q, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		rv_log("loop %d: pinning to its queues' CPUs failed", rl->id);
}

/* The transport of a loop other than 0, once INIT is done: ring entries
 * for its queues, or a /dev/fuse fd of its own that the kernel hands
 * requests on as it does the session's. */
static void loop_go(struct loop_op *op, int res, unsigned flags)
{
	struct rv_loop *rl = container_of(op, struct rv_loop, go_op);
	struct rv_fs *fs = rl->fs;
	uint32_t sfd = (uint32_t)fs->fuse_fd;
	int ret;

	(void)res;
	(void)flags;
	if (fs->use_uring) {
		rl->fuse_fd = fs->fuse_fd;
		ret = rv_uring_start(rl);
	} else {
		rl->fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
		if (rl->fuse_fd < 0 ||
		    ioctl(rl->fuse_fd, FUSE_DEV_IOC_CLONE, &sfd)) {
			ret = -errno;
			rv_log("loop %d: cloning the /dev/fuse fd failed: %s",
			       rl->id, strerror(errno));
		} else {
			ret = rv_dev_start(rl, rl->dev_slots);
		}
	}
	if (ret) {
		rv_log("loop %d: starting its transport failed: %s", rl->id,
		       strerror(-ret));
		rl->failed = true;
		rl->stopping = true;
	}
}

static void loop_stop(struct loop_op *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	container_of(op, struct rv_loop, stop_op)->stopping = true;
}

static void loop_end(struct loop_op *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	container_of(op, struct rv_loop, exit_op)->exit = true;
}

/* On loop 0: another loop has drained; one that stopped on its own (its
 * transport ended) stops the mount. */
static void loop_drained(struct loop_op *op, int res, unsigned flags)
{
	struct rv_loop *rl = container_of(op, struct rv_loop, drained_op);

	(void)res;
	(void)flags;
	rl->fs->nr_drained++;
	rl->fs->stopping = true;
	if (rl->failed)
		rl->fs->loop_failed = true;
}

static int loop_setup(struct rv_loop *rl)
{
	struct rv_fs *fs = rl->fs;
	int ret;

	ret = loop_init(&rl->loop, 256, fs->transport != RV_TRANSPORT_DEV);
	if (ret) {
		rv_log("loop %d: io_uring set-up failed: %s", rl->id,
		       strerror(-ret));
		return ret;
	}
	loop_register(&rl->loop, (unsigned)rl->id);
	ret = loop_pool_init(&rl->loop, fs->pool_bytes);
	if (ret) {
		rv_log("loop %d: pinning its %llu-byte pool failed: %s", rl->id,
		       (unsigned long long)fs->pool_bytes, strerror(-ret));
		return ret;
	}
	ret = bdev_rw_ctx_init(&rl->rwc, fs->dev, &rl->loop, fs->max_write,
			       rl->bounces);
	if (ret) {
		rv_log("loop %d: bounce buffers: %s", rl->id, strerror(-ret));
		return ret;
	}
	bdev_rw_ctx_share(&rl->rwc, &loop0(fs)->rwc);
	return 0;
}

static void *loop_thread(void *arg)
{
	struct rv_loop *rl = arg;
	struct rv_fs *fs = rl->fs;
	bool broken = false;
	int ret;

	if (fs->pin)
		pin_loop(rl);
	ret = loop_setup(rl);
	pthread_mutex_lock(&start_mu);
	rl->start_err = ret;
	nr_ready++;
	pthread_cond_broadcast(&start_cv);
	pthread_mutex_unlock(&start_mu);
	while (!ret && !rl->exit) {
		ret = loop_run(&rl->loop, 1);
		if (ret < 0 && ret != -EINTR) {
			/* Its ring is broken: the mount stops, with an error. */
			rv_log("loop %d: io_uring: %s", rl->id, strerror(-ret));
			rl->failed = rl->stopping = broken = true;
		}
		ret = 0;
		if (rl->stopping && !rl->reported &&
		    (rv_loop_idle(rl) || broken)) {
			rl->reported = true;
			loop_msg(&rl->loop, &loop0(fs)->loop, &rl->drained_op);
			io_uring_submit(&rl->loop.ring);
		}
		if (broken)
			break;
	}
	rv_dev_stop(rl);
	rv_uring_stop(rl);
	bdev_rw_ctx_exit(&rl->rwc);
	loop_exit(&rl->loop);
	if (rl->fuse_fd >= 0 && rl->fuse_fd != fs->fuse_fd)
		close(rl->fuse_fd);
	return NULL;
}

/* On loop 0: one more loop has run the barrier. */
static void barrier_ack(struct loop_op *op, int res, unsigned flags)
{
	struct rv_fs *fs = container_of(op, struct rv_loop, barrier_ack_op)->fs;

	(void)res;
	(void)flags;
	if (--fs->barrier_pending == 0)
		fs->barrier_done(fs);
}

static void barrier_run(struct loop_op *op, int res, unsigned flags)
{
	struct rv_loop *rl = container_of(op, struct rv_loop, barrier_op);

	(void)res;
	(void)flags;
	loop_msg(&rl->loop, &loop0(rl->fs)->loop, &rl->barrier_ack_op);
}

int rv_loops_start(struct rv_fs *fs, int dev_slots, int bounces)
{
	int err = 0;

	if (fs->pin)
		pin_loop(loop0(fs));
	for (int i = 1; i < fs->nr_loops; i++) {
		struct rv_loop *rl = &fs->loops[i];

		rl->fuse_fd = -1;
		rl->go_op.lo_done = loop_go;
		rl->stop_op.lo_done = loop_stop;
		rl->exit_op.lo_done = loop_end;
		rl->drained_op.lo_done = loop_drained;
		rl->barrier_op.lo_done = barrier_run;
		rl->barrier_ack_op.lo_done = barrier_ack;
		rl->dev_slots = dev_slots;
		rl->bounces = bounces;
		if (pthread_create(&rl->thread, NULL, loop_thread, rl)) {
			err = -EAGAIN;
			break;
		}
		rl->thread_started = true;
		fs->nr_started++;
	}
	pthread_mutex_lock(&start_mu);
	while (nr_ready < fs->nr_started)
		pthread_cond_wait(&start_cv, &start_mu);
	for (int i = 1; i <= fs->nr_started; i++)
		if (fs->loops[i].start_err < 0)
			err = fs->loops[i].start_err;
	pthread_mutex_unlock(&start_mu);
	return err;
}

static void send_all(struct rv_fs *fs, size_t op_off)
{
	struct rv_loop *l0 = loop0(fs);

	for (int i = 1; i < fs->nr_loops; i++) {
		struct rv_loop *rl = &fs->loops[i];

		if (rl->thread_started)
			loop_msg(&l0->loop, &rl->loop,
				 (struct loop_op *)((char *)rl + op_off));
	}
	io_uring_submit(&l0->loop.ring);
}

void rv_loops_go(struct rv_fs *fs)
{
	send_all(fs, offsetof(struct rv_loop, go_op));
}

void rv_loops_stop(struct rv_fs *fs)
{
	send_all(fs, offsetof(struct rv_loop, stop_op));
}

void rv_loops_exit(struct rv_fs *fs)
{
	send_all(fs, offsetof(struct rv_loop, exit_op));
	for (int i = 1; i < fs->nr_loops; i++)
		if (fs->loops[i].thread_started) {
			pthread_join(fs->loops[i].thread, NULL);
			fs->loops[i].thread_started = false;
			fs->nr_started--;
		}
}

void rv_loops_barrier(struct rv_fs *fs, void (*done)(struct rv_fs *fs))
{
	fs->barrier_done = done;
	fs->barrier_pending = fs->nr_started;
	if (!fs->barrier_pending) {
		done(fs);
		return;
	}
	send_all(fs, offsetof(struct rv_loop, barrier_op));
}

static void fwd_back(struct loop_op *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	rv_forward_reply(container_of(op, struct rv_req, fwd_op));
}

static void fwd_serve(struct loop_op *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	rv_serve(container_of(op, struct rv_req, fwd_op));
}

/* Each forwarded request gets exactly one reply, so the direction is
 * known from where its op last pointed. */
void rv_forward(struct rv_req *req)
{
	struct rv_loop *l0 = loop0(req->fs);

	if (req->fwd_op.lo_done == fwd_serve) {
		/* Served on loop 0: the reply goes back. */
		req->fwd_op.lo_done = fwd_back;
		loop_msg(&l0->loop, &req->rl->loop, &req->fwd_op);
	} else {
		req->fwd_op.lo_done = fwd_serve;
		loop_msg(&req->rl->loop, &l0->loop, &req->fwd_op);
	}
}
