/* fs: the FUSE front end's shared state.  Ops are written once (ops.c);
 * transports (dev.c: /dev/fuse, uring.c: FUSE-over-io_uring) move bytes. */
#ifndef RAWVEC_FS_H
#define RAWVEC_FS_H

#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "blockdev/core/bdev.h"
#include "blockdev/core/loop.h"
#include "blockdev/core/rw.h"

/* Debian 12's <linux/fuse.h> is protocol 7.38: what newer kernels add. */
#ifndef FUSE_OVER_IO_URING
#define FUSE_OVER_IO_URING (1ULL << 41)
#endif

#define RV_INO_ROOT 1
#define RV_INO_DISK 2
#define RV_INO_STATS 3
#define RV_INO_CONTROL 4

#define RV_MAX_WRITE (1u << 20) /* 256 pages: the kernel's default limit */

enum rv_transport_kind {
	RV_TRANSPORT_AUTO,
	RV_TRANSPORT_URING,
	RV_TRANSPORT_DEV
};

struct rv_req;
struct rv_loop;

/**
 * struct rv_transport - how a reply leaves.  @reply sends @req's reply
 * (header from req->out_error/out_len, data at req->out_data) and makes the
 * slot reusable; called exactly once per request that expects a reply.
 */
struct rv_transport {
	void (*reply)(struct rv_req *req);
};

/**
 * struct rv_req - one FUSE request being served; embedded in a transport
 * slot, reused for the slot's next request.
 * @in/@arg:     the request header and its op-specific argument
 * @payload:     pinned buffer of RV_MAX_WRITE bytes: a WRITE's data arrives
 *               here page-aligned, a READ's data is read into it
 * @payload_len: bytes of WRITE data in @payload
 * @out_data:    reply body (@payload or @out_small), @out_len bytes
 * @out_error:   0 or a negative errno for the reply header
 */
struct rv_req {
	struct rv_fs *fs;
	struct rv_loop *rl; /* the loop whose transport it came in on */
	const struct rv_transport *t;
	const struct fuse_in_header *in;
	const void *arg;
	char *payload;
	size_t payload_len;
	const void *out_data;
	size_t out_len;
	int out_error;
	struct bdev_rw rw;
	struct loop_op fwd_op; /* served on loop 0 for another loop */
	bool fwd;
	union {
		struct fuse_entry_out entry;
		struct fuse_attr_out attr;
		struct fuse_open_out open;
		struct fuse_write_out write;
		struct fuse_statfs_out statfs;
		struct fuse_init_out init;
		char dirents[256];
	} out_small;
};

/** struct rv_counters - front-end counters for the stats file. */
struct rv_counters {
	uint64_t requests;
	uint64_t reads, writes, read_bytes, write_bytes;
	uint64_t fsyncs, discards, zeroes;
	uint64_t errors; /* every error reply, lookups of missing names too */
	uint64_t io_errors; /* reads, writes, fsyncs, fallocates of disk */
	uint32_t inflight, inflight_max;
	uint64_t ring_requests, dev_requests;
};

/**
 * struct rv_loop - one event loop of the mount, run by one thread, and
 * what it alone touches: its ring and pool, its rw context (range locks
 * shared), its counters and its transport: the ring entries of its FUSE
 * queues (q mod nr_loops == @id), or a /dev/fuse fd of its own.
 * Loop 0 is the main thread's: it also runs signals, INIT, the control
 * file, stats, sweeps, md metadata and every device not BK_SHARED
 * (bdev_tree_share()); other loops forward what is not disk I/O to it.
 * @fuse_fd:  loop 0: the session's; others: a clone (FUSE_DEV_IOC_CLONE)
 * @stopping: another loop's: told by loop 0 (or its own transport ended)
 */
struct rv_loop {
	struct loop loop;
	struct rv_fs *fs;
	int id;
	int fuse_fd;
	struct bdev_rw_ctx rwc;
	struct rv_counters cnt;
	struct rv_dev_transport *devt;
	struct rv_uring_transport *urt;
	int nr_queues;		/* FUSE queues it serves */
	int dev_slots, bounces; /* what its pool is carved into */
	/* Another loop's life, driven by messages from and to loop 0. */
	pthread_t thread;
	bool thread_started;
	bool stopping;
	bool reported; /* told loop 0 it has drained */
	bool failed;   /* its transport or ring failed: exit status 1 */
	bool exit;
	int start_err;
	struct loop_op go_op, stop_op, exit_op, drained_op;
	struct loop_op barrier_op, barrier_ack_op;
};

/**
 * struct rv_fs - one mount.  Each rv_loop's state is its own thread's;
 * the rest is set before the loops start and read-only after, except what
 * loop 0 alone touches: the flags below @init_done, the control jobs, the
 * stats snapshot.  control.c's worker thread works beside it on copies
 * (struct ctl_prep).  The tree under @dev follows loop.h's rules.
 * @uring_offered: the kernel offered FUSE_OVER_IO_URING in INIT
 * @use_uring:     we accepted it; the ring transport registers entries
 * @nr_drained:    other loops that have drained since @stopping
 */
struct rv_fs {
	struct rv_loop loops[LOOP_MAX];
	int nr_loops;
	uint32_t inflight_max_seen; /* the stats file's (bdev_stat_mark()) */
	const char *threads_why; /* how nr_loops was chosen, for log and stats */
	bool threads_set;	 /* -o threads=N */
	bool pin;
	bool pin_auto;	/* pin=auto chose @pin: off again at one loop */
	int nr_started; /* other loops whose threads run */
	int nr_drained;
	bool loop_failed;    /* another loop failed: the mount ends with 1 */
	int barrier_pending; /* rv_loops_barrier(): loops yet to answer */
	void (*barrier_done)(struct rv_fs *fs);
	struct bdev *dev;
	const char *target;
	const char *mountpoint;
	int fuse_fd;
	uid_t uid; /* the mounting user: owns stats and control */
	gid_t gid;
	uid_t disk_uid; /* -o uid=, gid=, umask=: disk's owner and mode */
	gid_t disk_gid;
	mode_t disk_mode;
	uint64_t mount_time; /* seconds: every inode's a/m/ctime */
	bool read_only;
	enum rv_transport_kind transport;
	bool init_done;
	bool uring_offered;
	bool use_uring;
	bool uring_logged;
	bool stopping;	 /* connection gone or signal: drain and exit */
	bool destroyed;	 /* DESTROY seen */
	bool force_exit; /* second signal: leave without draining */
	uint32_t proto_minor;
	uint32_t max_write;
	uint64_t create_size; /* --create: also for members given to replace */
	struct rv_ctl *ctl;   /* control writes being carried out (control.c) */
	uint64_t ctl_timeout_ns; /* -o control_timeout= */
	size_t pool_bytes;	 /* each loop's pinned pool */
	size_t pool_total;	 /* asked (-o pool=, fit to RLIMIT_MEMLOCK) */
	int pool_origin;
	unsigned ring_entries_per_queue;
	int nr_queues;
};

/**
 * rv_dispatch() - serve @req: decide the reply or start the I/O that will.
 * The transport has filled in, arg, payload and payload_len.  The reply goes
 * out through req->t->reply(), now or after the I/O, exactly once, unless
 * the op takes none (FORGET, BATCH_FORGET, INTERRUPT).
 */
void rv_dispatch(struct rv_req *req);

#define RV_CONTROL_PENDING 1

typedef void (*rv_control_done_fn)(struct rv_req *req, int err);

/**
 * rv_control() - run the control commands in @text (one per line) that
 * @req wrote: fail ADDR, replace ADDR PATH, fault ADDR ..., check, repair.
 * Returns 0, or -EINVAL after logging a line that says what was wrong; or
 * RV_CONTROL_PENDING when a command opens paths off the event loop, and
 * then @done(@req, 0 or -EINVAL) is called from the loop once all are
 * carried out.  One write is carried out at a time; another one meanwhile
 * is refused.
 */
int rv_control(struct rv_fs *fs, struct rv_req *req, const char *text,
	       size_t len, rv_control_done_fn done);

/**
 * rv_control_stop() - the mount is stopping: a replace still opening its
 * path is given up (its write fails with EINVAL), so that a hung path or
 * a slow server cannot hold the stop for control_timeout, and requests a
 * faulty() latency spike holds go on at once.
 */
void rv_control_stop(struct rv_fs *fs);

/**
 * rv_stats_json() - the stats file's text into @buf of @len bytes, NUL
 * terminated.  Returns its length, or -ENOSPC when it does not fit.
 */
ssize_t rv_stats_json(struct rv_fs *fs, char *buf, size_t len);

/** rv_stopping() - whether @rl drains: loop 0 follows the mount's flag. */
static inline bool rv_stopping(const struct rv_loop *rl)
{
	return rl->id ? rl->stopping : rl->fs->stopping;
}

/** rv_stop() - @rl's transport ended (unmounted, or failed): drain. */
static inline void rv_stop(struct rv_loop *rl)
{
	if (rl->id)
		rl->stopping = true;
	else
		rl->fs->stopping = true;
}

#define RV_MEMLOCK_HOWTO \
	"raise it (ulimit -l, or memlock in /etc/security/limits.conf)"

/* Where the pool's size came from, for the message when it is too small. */
enum rv_pool_origin { POOL_DEFAULT, POOL_OPTION, POOL_RLIMIT };

struct rv_opts;

/*
 * Loops and the pool (pool.c).  rv_loops_choose() decides nr_loops from
 * -o threads=, pin= and the CPUs; rv_pool_split() gives each loop an equal
 * share of fs->pool_total and sizes its slots, bounces and ring entries
 * (0, or EXIT_USAGE after a message); rv_loops_rechoose() goes back to
 * one loop under threads=auto when the built tree's top device is owned.
 */
void rv_loops_choose(struct rv_fs *fs, const struct rv_opts *o);
int rv_pool_split(struct rv_fs *fs, bool expect_ring, int *dev_slots,
		  int *bounces);
int rv_loops_rechoose(struct rv_fs *fs, const struct rv_opts *o,
		      bool expect_ring, int *dev_slots, int *bounces);

/* /dev/fuse transport (dev.c), on @rl's fuse_fd */
int rv_dev_start(struct rv_loop *rl, int nr_slots);
void rv_dev_stop(struct rv_loop *rl);
bool rv_dev_idle(struct rv_loop *rl);

/* FUSE-over-io_uring transport (uring.c): entries for @rl's queues */
int rv_uring_start(struct rv_loop *rl);
bool rv_uring_idle(struct rv_loop *rl);
void rv_uring_stop(struct rv_loop *rl);

/*
 * The other loops (loops.c).  rv_loops_start() starts loops 1..nr_loops-1
 * on threads of their own (ring, pool, rw context), before the mount;
 * rv_loops_go() has them start their transports once INIT is done;
 * rv_loops_stop() tells them to drain (fs->nr_drained counts those that
 * have); rv_loops_exit() ends and joins them, after the unmount.
 * rv_forward() serves @req on loop 0 and its reply back on req->rl.
 */
int rv_loops_start(struct rv_fs *fs, int dev_slots, int bounces);
void rv_loops_go(struct rv_fs *fs);
void rv_loops_stop(struct rv_fs *fs);
void rv_loops_exit(struct rv_fs *fs);
/* rv_loops_barrier() - @done(@fs) on loop 0 once every other loop has run
 * a message sent now: what each started before, it has submitted. */
void rv_loops_barrier(struct rv_fs *fs, void (*done)(struct rv_fs *fs));
bool rv_loop_idle(struct rv_loop *rl);
void rv_forward(struct rv_req *req);
void rv_forward_reply(struct rv_req *req);
void rv_serve(struct rv_req *req); /* ops.c: rv_dispatch() past routing */

/*
 * The log (log.c): rv_log() writes one message, "rawvec: " and a newline
 * added.  It goes to stderr until rv_log_detach(); to the file that
 * rv_log_open() (-o log=FILE, O_APPEND, -errno on failure) opened, as
 * well; once detached without a file, to syslog.  From rv_log_open() or
 * rv_log_detach() on, what is written to stderr reaches the log too.
 */
void rv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int rv_log_open(const char *path);
void rv_log_detach(void);

/*
 * Subcommands, each returning the process's exit code (0, 1 runtime,
 * 2 usage): `rawvec stat MOUNTPOINT [INTERVAL [COUNT]]` (statcmd.c), a
 * live per-device table read from MOUNTPOINT/stats, and `rawvec trace
 * [--csv] FILE` (tracecmd.c), which prints what -o trace=FILE recorded.
 * @argv[0] is the subcommand's name.
 */
int rv_stat_main(int argc, char **argv);
int rv_trace_main(int argc, char **argv);

#endif
