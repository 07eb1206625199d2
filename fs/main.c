/* main: start-up checks, mount, the event loop and a clean
 * shutdown (drain in-flight I/O, fdatasync, unmount). */
#define FUSE_USE_VERSION 35
#include "fs/fs.h"
#include "fs/args.h"
#include "blockdev/core/log.h"
#include "blockdev/layout.h"
#include "blockdev/levels/super.h"
#include "blockdev/core/trace.h"
#include "fs/pathcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define URING_PARAM "/sys/module/fuse/parameters/enable_uring"

static int check_mountpoint(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, 0, STATX_TYPE, &stx)) {
		fprintf(stderr, "rawvec: mountpoint %s: %s\n", path,
			strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(stx.stx_mode)) {
		fprintf(stderr, "rawvec: mountpoint %s: not a directory\n",
			path);
		return -ENOTDIR;
	}
	if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
		fprintf(stderr,
			"rawvec: mountpoint %s: something is already mounted there\n",
			path);
		return -EBUSY;
	}
	return 0;
}

static bool uring_param_on(void)
{
	char c = 0;
	int fd = open(URING_PARAM, O_RDONLY);

	if (fd < 0)
		return false;
	if (read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	return c == 'Y' || c == '1';
}

static int enable_uring(void)
{
	int fd, ret = 0;

	if (geteuid()) {
		fprintf(stderr,
			"rawvec: --enable-uring: needs root to write %s\n",
			URING_PARAM);
		return -EPERM;
	}
	fd = open(URING_PARAM, O_WRONLY);
	if (fd < 0 || write(fd, "Y", 1) != 1)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret) {
		fprintf(stderr,
			"rawvec: --enable-uring: %s: %s (kernel older than 6.14 or without CONFIG_FUSE_IO_URING?)\n",
			URING_PARAM, strerror(-ret));
		return ret;
	}
	rv_log("set %s to Y", URING_PARAM);
	return 0;
}

static struct rv_fs the_fs;

struct sig_watch {
	struct loop_op op;
	struct signalfd_siginfo si;
	int fd;
	struct rv_fs *fs;
};

static void sig_arm(struct sig_watch *w);

static void sig_done(struct loop_op *op, int res, unsigned flags)
{
	struct sig_watch *w = (struct sig_watch *)op;

	(void)flags;
	if (res == (int)sizeof(w->si) && w->fs->stopping) {
		uint32_t n = 0;

		for (int i = 0; i < w->fs->nr_loops; i++)
			n += __atomic_load_n(&w->fs->loops[i].cnt.inflight,
					     __ATOMIC_RELAXED);
		/* A second signal: do not wait for I/O that may never end. */
		rv_log("signal %u again: unmounting without waiting for %u in-flight request%s",
		       w->si.ssi_signo, n, n == 1 ? "" : "s");
		w->fs->force_exit = true;
	} else if (res == (int)sizeof(w->si)) {
		rv_log("signal %u: finishing in-flight I/O and unmounting (again to force)",
		       w->si.ssi_signo);
		w->fs->stopping = true;
	}
	if (res != -ECANCELED)
		sig_arm(w);
}

static void sig_arm(struct sig_watch *w)
{
	struct io_uring_sqe *sqe = loop_sqe(&w->fs->loops[0].loop, &w->op);

	io_uring_prep_read(sqe, w->fd, &w->si, sizeof(w->si), 0);
}

/* Loop 0 idle and every other loop drained. */
static bool fs_idle(struct rv_fs *fs)
{
	return rv_loop_idle(&fs->loops[0]) && fs->nr_drained >= fs->nr_started;
}

/* Child side of the start-up handshake: tell the waiting parent how the
 * start went (an exit code), then detach. */
static void report_ready(int fd, unsigned char code)
{
	if (fd < 0)
		return;
	if (write(fd, &code, 1) != 1)
		rv_log("start-up pipe: %s", strerror(errno));
	close(fd);
}

/*
 * Start-up (locking GiBs of mem(), opening members) takes seconds, and
 * signals are read from the ring only once it serves: until then a
 * SIGINT/SIGTERM/SIGHUP is noted here and start-up stops at its next step.
 */
static volatile sig_atomic_t start_signal;

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
}

static void start_sig(int sig)
{
	start_signal = sig;
}

/* The daemon's parent passes what it is sent on to the starting child:
 * the child has a session of its own, so a Ctrl-C reaches only the parent. */
static volatile pid_t start_child;

static void forward_sig(int sig)
{
	if (start_child > 0)
		kill(start_child, sig);
}

static bool start_stopped(void)
{
	if (!start_signal)
		return false;
	rv_log("signal %d during start-up: stopping before the mount",
	       (int)start_signal);
	return true;
}

/*
 * An ordinary user mounts through fusermount3, but it opens /dev/fuse as
 * that user on purpose: a /dev/fuse of mode 0600 (no udev to apply its
 * 0666 rule) shuts every ordinary user out of FUSE.  Say so before
 * anything is set up, rather than libfuse's bare EACCES at the end.
 */
static int check_dev_fuse(void)
{
	struct stat st;
	int fd, e;

	if (!geteuid())
		return 0;
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	e = errno;
	if (e != EACCES && e != EPERM)
		return 0; /* a missing module: libfuse says so */
	if (stat("/dev/fuse", &st))
		st.st_mode = st.st_uid = 0;
	fprintf(stderr,
		"rawvec: /dev/fuse: %s: uid %u may not use FUSE here (mode %04o, owner uid %u; fusermount3 opens it as the user too): make it 0666 as udev's rule for it does (as root: chmod 0666 /dev/fuse), or run rawvec as root\n",
		strerror(e), (unsigned)geteuid(),
		(unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
	return -e;
}

/* blockdev/'s messages go to the daemon's log. */
static void log_bdev(const char *msg)
{
	rv_log("%s", msg);
}

/* Every phase of run() below returns 0 or the exit code to leave with. */

/* The loop, and a pool that fits RLIMIT_MEMLOCK and the transports. */
static int start_loop(struct rv_fs *fs, const struct rv_opts *o,
		      bool expect_ring, int *dev_slots, int *bounces)
{
	enum rv_pool_origin origin = o->pool_set ? POOL_OPTION : POOL_DEFAULT;
	struct rlimit rl;
	int ret;

	ret = loop_init(&fs->loops[0].loop, 256,
			o->transport != RV_TRANSPORT_DEV);
	if (ret) {
		fprintf(stderr, "rawvec: io_uring set-up failed: %s\n",
			strerror(-ret));
		return EXIT_RUNTIME;
	}
	loop_register(&fs->loops[0].loop, 0);
	/* A user's locked memory is bounded: fit the pool to it, leaving a
	 * quarter for what io_uring accounts besides. */
	if (geteuid() && !getrlimit(RLIMIT_MEMLOCK, &rl) &&
	    rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 4 * 3 < fs->pool_bytes) {
		uint64_t fit = (rl.rlim_cur / 4 * 3) & ~4095ull;

		rv_log("pinned pool limited to %llu bytes by RLIMIT_MEMLOCK %llu (asked %llu); raise it (ulimit -l) for more",
		       (unsigned long long)fit, (unsigned long long)rl.rlim_cur,
		       (unsigned long long)fs->pool_bytes);
		fs->pool_bytes = fit;
		origin = POOL_RLIMIT;
	}
	fs->pool_total = fs->pool_bytes;
	fs->pool_origin = origin;
	return rv_pool_split(fs, expect_ring, dev_slots, bounces);
}

/* The device tree, its mem() members locked, and the trace file. */
static int open_target(struct rv_fs *fs, const struct rv_opts *o,
		       struct bdev_trace **trace)
{
	struct bdev_layout_opts lopts = { .read_only = o->read_only,
					  .create_size = o->create_size };
	char err[8192], a[32];
	int ret;

	/* rw.c hands the stack at most max_write plus an aligned head and
	 * tail; 64 KiB each side covers any alignment a device reports. */
	lopts.max_io_bytes = fs->max_write + 2 * 65536;
	lopts.nr_loops = fs->nr_loops;
	if (rv_target_outside(o->mountpoint, o->target, err, sizeof(err))) {
		fprintf(stderr, "rawvec: %s\n", err);
		return EXIT_USAGE;
	}
	/* mem() members are locked only once all of them, and the pool,
	 * are known to fit. */
	if (bdev_mem_defer_lock(fs->pool_total, err, sizeof(err))) {
		fprintf(stderr, "rawvec: %s\n", err);
		return EXIT_USAGE;
	}
	ret = bdev_layout_open(o->target, &fs->loops[0].loop, &lopts, &fs->dev,
			       err, sizeof(err));
	if (ret) {
		fprintf(stderr, "rawvec: %s\n", err);
		return ret == -EINTR && start_stopped() ? EXIT_RUNTIME :
							  EXIT_USAGE;
	}
	if (start_stopped())
		return EXIT_RUNTIME;
	if (o->create_size && !fs->dev->bd_created && fs->dev->bd_desc &&
	    (fs->dev->bd_desc->bk_flags & BK_PATH)) {
		bdev_fmt_bytes(fs->dev->bd_size, a, sizeof(a));
		rv_log("--create: %s exists (%s), used as it is", o->target, a);
	}
	if (bdev_mem_deferred_bytes()) {
		bdev_fmt_bytes(bdev_mem_deferred_bytes(), a, sizeof(a));
		rv_log("locking %s of mem() members", a);
	}
	ret = bdev_mem_lock_deferred(&start_signal, err, sizeof(err));
	if (ret) {
		if (ret != -EINTR || !start_stopped())
			fprintf(stderr, "rawvec: %s\n", err);
		else
			rv_log("%s", err);
		return EXIT_RUNTIME;
	}
	if (o->trace_path &&
	    bdev_trace_open(o->trace_path, fs->dev, trace, err, sizeof(err))) {
		fprintf(stderr, "rawvec: %s\n", err);
		return EXIT_USAGE;
	}
	return 0;
}

/* Devices that keep state become loop 0's; the rest get stats shards. */
static int share_tree(struct rv_fs *fs)
{
	int owned = bdev_tree_share(fs->dev, fs->nr_loops, &fs->loops[0].loop);

	if (owned < 0) {
		fprintf(stderr, "rawvec: sharing the device tree: %s\n",
			strerror(-owned));
		return EXIT_RUNTIME;
	}
	rv_log("threads: %d event loop%s (%s)%s%s", fs->nr_loops,
	       fs->nr_loops == 1 ? "" : "s", fs->threads_why,
	       fs->pin && !fs->pin_auto ? ", each pinned to its queues' CPUs" :
					  "",
	       owned && fs->nr_loops > 1 ?
		       "; devices that keep state run on loop 0" :
		       "");
	return 0;
}

/* Pin and register the pool, then carve the RMW bounces out of it. */
static int pin_pool(struct rv_fs *fs, int bounces)
{
	struct rlimit rl;
	char a[32], b[32];
	int ret;

	ret = loop_pool_init(&fs->loops[0].loop, fs->pool_bytes);
	if (ret) {
		bdev_fmt_bytes(fs->pool_bytes, a, sizeof(a));
		fprintf(stderr,
			"rawvec: pinning the %s buffer pool failed: %s\n", a,
			strerror(-ret));
		/* io_uring charges what it pins to the user, not the
		 * process: every mount of the user's shares the limit. */
		if ((ret == -ENOMEM || ret == -EAGAIN) && geteuid() &&
		    !getrlimit(RLIMIT_MEMLOCK, &rl) &&
		    rl.rlim_cur != RLIM_INFINITY) {
			bdev_fmt_bytes(rl.rlim_cur, b, sizeof(b));
			fprintf(stderr,
				"rawvec: RLIMIT_MEMLOCK (%s) bounds what all of uid %u's processes pin with io_uring together: other rawvec mounts of the user's (and one that has just exited) count too; %s, or give a smaller -o pool=SIZE\n",
				b, (unsigned)geteuid(), RV_MEMLOCK_HOWTO);
		}
		return EXIT_RUNTIME;
	}
	if (start_stopped())
		return EXIT_RUNTIME;
	ret = bdev_rw_ctx_init(&fs->loops[0].rwc, fs->dev, &fs->loops[0].loop,
			       fs->max_write, bounces);
	if (ret) {
		fprintf(stderr, "rawvec: bounce buffers: %s\n", strerror(-ret));
		return EXIT_RUNTIME;
	}
	return 0;
}

/* A FUSE session for the mount, with rawvec's own options; libfuse does
 * the mount and nothing else. */
static struct fuse_session *new_session(const struct rv_opts *o,
					struct fuse_args *args)
{
	static struct fuse_lowlevel_ops no_ops;
	char optbuf[PATH_MAX + 128];

	fuse_opt_add_arg(args, "rawvec");
	snprintf(optbuf, sizeof(optbuf),
		 "-osubtype=rawvec,fsname=%s,default_permissions%s%s",
		 o->target, o->allow_other ? ",allow_other" : "",
		 o->read_only ? ",ro" : "");
	/* fsname is a comma list element: a target with commas keeps its
	 * name out of the mount table rather than breaking the options. */
	if (strchr(o->target, ','))
		snprintf(optbuf, sizeof(optbuf),
			 "-osubtype=rawvec,fsname=rawvec,default_permissions%s%s",
			 o->allow_other ? ",allow_other" : "",
			 o->read_only ? ",ro" : "");
	fuse_opt_add_arg(args, optbuf);
	return fuse_session_new(args, &no_ops, sizeof(no_ops), NULL);
}

/* Serve until a clean stop ends with every array's superblocks saying
 * clean, written from the loop like any other I/O.  Returns the exit code. */
static int serve(struct rv_fs *fs, const struct rv_opts *o)
{
	struct rv_loop *l0 = &fs->loops[0];
	bool going = false, stop_sent = false;
	int ret, code = 0;

	while (!fs->force_exit &&
	       !(fs->stopping && fs_idle(fs) && super_quiesce(fs->dev))) {
		if (fs->init_done && !l0->urt && fs->use_uring) {
			rv_log("transport: FUSE-over-io_uring, %d queue%s x %u entries, max_write %u",
			       fs->nr_queues, fs->nr_queues == 1 ? "" : "s",
			       fs->ring_entries_per_queue, fs->max_write);
			if (!fs->ring_entries_per_queue || rv_uring_start(l0)) {
				rv_log("cannot start the ring transport: no pinned entries");
				code = EXIT_RUNTIME;
				fs->stopping = true;
			}
		} else if (fs->init_done && !fs->use_uring && !l0->urt &&
			   !fs->uring_logged) {
			fs->uring_logged = true;
			if (o->transport == RV_TRANSPORT_URING) {
				rv_log("--transport=uring: the kernel did not offer FUSE-over-io_uring");
				code = EXIT_RUNTIME;
				fs->stopping = true;
			} else {
				rv_log("transport: /dev/fuse%s",
				       fs->uring_offered ?
					       "" :
					       " (kernel offers no FUSE-over-io_uring)");
			}
		}
		/* INIT is done: the other loops start their transports. */
		if (fs->init_done && !going && !fs->stopping) {
			going = true;
			rv_loops_go(fs);
		}
		if (fs->stopping && !stop_sent) {
			stop_sent = true;
			rv_control_stop(fs);
			rv_loops_stop(fs);
		}
		ret = loop_run(&l0->loop, 1);
		if (fs->force_exit || fs->loop_failed)
			code = EXIT_RUNTIME;
		if (ret < 0 && ret != -EINTR) {
			rv_log("io_uring: %s", strerror(-ret));
			return EXIT_RUNTIME;
		}
	}
	return code;
}

static void init_fs(struct rv_fs *fs, const struct rv_opts *o)
{
	fs->target = o->target;
	fs->mountpoint = o->mountpoint;
	fs->read_only = o->read_only;
	fs->ctl_timeout_ns = o->control_timeout_ns;
	fs->transport = o->transport;
	fs->pool_bytes = o->pool_bytes;
	fs->uid = getuid();
	fs->gid = getgid();
	fs->disk_uid = o->uid_set ? o->disk_uid : fs->uid;
	fs->disk_gid = o->gid_set ? o->disk_gid : fs->gid;
	fs->disk_mode = 0666 & ~o->disk_umask;
	fs->mount_time = (uint64_t)time(NULL);
	fs->nr_queues = get_nprocs_conf();
	rv_loops_choose(fs, o);
	for (int i = 0; i < LOOP_MAX; i++) {
		fs->loops[i].fs = fs;
		fs->loops[i].id = i;
	}
}

static int run(struct rv_opts *o, int ready_fd)
{
	struct rv_fs *fs = &the_fs;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct sig_watch sw = { .op.lo_done = sig_done, .fs = fs };
	struct bdev_trace *trace = NULL;
	bool served = false;
	char err[PATH_MAX + 256];
	int dev_slots, bounces, ret, code;
	bool expect_ring;
	sigset_t sigs;
	struct sigaction sa = { .sa_handler = start_sig };

	init_fs(fs, o);
	bdev_log_set(log_bdev);

	stop_signals(&sigs);
	/* No SA_RESTART: a slow open returns EINTR rather than go on. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigprocmask(SIG_UNBLOCK, &sigs, NULL);

	expect_ring = o->transport != RV_TRANSPORT_DEV && uring_param_on();
	code = start_loop(fs, o, expect_ring, &dev_slots, &bounces);
	if (code)
		goto out_loop;
	if ((code = open_target(fs, o, &trace)) ||
	    (code = rv_loops_rechoose(fs, o, expect_ring, &dev_slots,
				      &bounces)) ||
	    (code = share_tree(fs)) || (code = pin_pool(fs, bounces)))
		goto out_dev;

	/* From here signals wait for the ring (sig_done); one that came
	 * just before is still a reason not to mount. */
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sw.fd = signalfd(-1, &sigs, SFD_CLOEXEC);
	code = EXIT_RUNTIME;
	if (start_stopped())
		goto out_rw;
	/* Signals are blocked now: the other loops' threads inherit that. */
	ret = rv_loops_start(fs, dev_slots, bounces);
	if (ret) {
		fprintf(stderr, "rawvec: starting %d event loops failed: %s\n",
			fs->nr_loops, strerror(-ret));
		goto out_rw;
	}
	se = new_session(o, &args);
	if (!se) {
		fprintf(stderr, "rawvec: FUSE session set-up failed\n");
		goto out_rw;
	}
	if (fuse_session_mount(se, o->mountpoint)) {
		fprintf(stderr, "rawvec: mounting on %s failed\n",
			o->mountpoint);
		goto out_session;
	}
	fs->fuse_fd = fuse_session_fd(se);
	fs->loops[0].fuse_fd = fs->fuse_fd;
	ret = rv_dev_start(&fs->loops[0], dev_slots);
	if (ret) {
		fprintf(stderr, "rawvec: /dev/fuse transport: %s\n",
			strerror(-ret));
		goto out_unmount;
	}
	if (sw.fd >= 0)
		sig_arm(&sw);
	rv_log("serving %s (%llu bytes, %u-byte alignment) at %s/disk",
	       o->target, (unsigned long long)fs->dev->bd_size,
	       fs->dev->bd_align, o->mountpoint);
	report_ready(ready_fd, 0);
	served = true; /* from here on the image holds the user's data */
	if (ready_fd >= 0)
		rv_log_detach();
	ready_fd = -1;
	code = serve(fs, o);
out_unmount:
	fuse_session_unmount(se);
out_session:
	fuse_session_destroy(se);
out_rw:
	/* After the unmount: no loop has a request left to serve. */
	rv_loops_exit(fs);
	bdev_rw_ctx_exit(&fs->loops[0].rwc);
out_dev:
	/* Everything has completed: the trace holds the last record. */
	if (bdev_trace_close(trace, fs->dev, err, sizeof(err))) {
		rv_log("%s", err);
		if (!code)
			code = EXIT_RUNTIME;
	}
	/* A start that failed leaves no image behind that --create made. */
	if (code && !served && fs->dev && fs->dev->bd_created)
		unlink(o->target);
	bdev_destroy(fs->dev);
	/* A daemon's last word: that it stopped, and how. */
	if (served)
		rv_log("%s unmounted, exit status %d", o->mountpoint, code);
out_loop:
	rv_dev_stop(&fs->loops[0]);
	rv_uring_stop(&fs->loops[0]);
	loop_exit(&fs->loops[0].loop);
	fuse_opt_free_args(&args);
	report_ready(ready_fd, (unsigned char)code);
	return code;
}

int main(int argc, char **argv)
{
	struct rv_opts o = { 0 };
	int pipefd[2] = { -1, -1 };
	unsigned char code;
	sigset_t sigs;
	pid_t pid;

	/* Subcommands come first, so a mountpoint named "stat" needs ./stat. */
	if (argc >= 2 && !strcmp(argv[1], "stat"))
		return rv_stat_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "trace"))
		return rv_trace_main(argc - 1, argv + 1);
	if (rv_parse_args(argc, argv, &o)) {
		fputs("Try 'rawvec --help'.\n", stderr);
		return EXIT_USAGE;
	}
	/* Before anything else: a daemon's reasons must have a place. */
	if (o.log_path) {
		int ret = rv_log_open(o.log_path);

		if (ret) {
			fprintf(stderr, "rawvec: -o log=%s: %s\n", o.log_path,
				strerror(-ret));
			return EXIT_USAGE;
		}
	}
	if (check_mountpoint(o.mountpoint) || check_dev_fuse())
		return EXIT_USAGE;
	if (o.enable_uring && enable_uring())
		return EXIT_USAGE;
	if (o.transport == RV_TRANSPORT_URING && !uring_param_on()) {
		fprintf(stderr,
			"rawvec: --transport=uring: the kernel does not offer FUSE-over-io_uring (%s is not Y; try --enable-uring)\n",
			URING_PARAM);
		return EXIT_USAGE;
	}
	if (o.foreground)
		return run(&o, -1);
	/* The ring is single-issuer, so everything from it on happens in
	 * the child; the parent waits to exit with the child's start-up code. */
	if (pipe(pipefd)) {
		perror("rawvec: pipe");
		return EXIT_RUNTIME;
	}
	/* Blocked across the fork: each side takes them once its handler
	 * is in place, so none is lost in between. */
	stop_signals(&sigs);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	pid = fork();
	if (pid < 0) {
		perror("rawvec: fork");
		return EXIT_RUNTIME;
	}
	if (pid) {
		struct sigaction sa = { .sa_handler = forward_sig };
		ssize_t n;

		start_child = pid;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		sigprocmask(SIG_UNBLOCK, &sigs, NULL);
		close(pipefd[1]);
		do
			n = read(pipefd[0], &code, 1);
		while (n < 0 && errno == EINTR);
		return n == 1 ? code : EXIT_RUNTIME;
	}
	close(pipefd[0]);
	setsid();
	return run(&o, pipefd[1]);
}
