/* test_nbd: the nbd() member's I/O engine against a real nbdkit (memory
 * plugin, a Unix socket), on one loop and split over two, under ASan. */
#include "unit.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/socket.h>

#include "blockdev/kind.h"
#include "blockdev/layout.h"
#include "blockdev/members/nbd.h"

Suite *nbd_suite(void);

#define EXPORT_BYTES (8u << 20)

struct srv {
	char dir[64], sock[96], uri[160];
	pid_t pid;
};

/* nbdkit -f on a socket in a new directory; false when there is none. */
static bool srv_start(struct srv *s)
{
	char size[16];

	snprintf(s->dir, sizeof(s->dir), "/tmp/rawvec-nbd-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(s->dir));
	snprintf(s->sock, sizeof(s->sock), "%s/s.sock", s->dir);
	snprintf(s->uri, sizeof(s->uri), "nbd+unix:///?socket=%s", s->sock);
	snprintf(size, sizeof(size), "%u", EXPORT_BYTES);
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (!s->pid) {
		execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-U",
		       s->sock, "memory", size, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		struct stat st;
		int status;

		if (!stat(s->sock, &st))
			return true;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid)
			break; /* no nbdkit here */
		usleep(20000);
	}
	rmdir(s->dir);
	return false;
}

static void srv_kill(struct srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	unlink(s->sock);
	rmdir(s->dir);
}

struct io {
	struct bdev_req req;
	struct pvec vec[2];
	bool done;
	int err;
};

static void io_end(struct bdev_req *req)
{
	struct io *io = req->br_private;

	io->done = true;
	io->err = req->br_error;
}

static bool all_done(void *arg)
{
	struct io *ios = arg;

	for (int i = 0; i < 4; i++)
		if (!ios[i].done)
			return false;
	return true;
}

/* @io: @op of @len bytes at @pos from @buf, in two pieces of memory with
 * a gap between them, so the device sends two commands for it. */
static void io_start(struct bdev *dev, struct loop *lp, struct io *io,
		     enum bdev_op op, uint64_t pos, char *buf, size_t len)
{
	io->vec[0] = (struct pvec){ buf, 0, (uint32_t)(len / 2) };
	io->vec[1] = (struct pvec){ buf + len / 2 + 4096, 0,
				    (uint32_t)(len - len / 2) };
	io->done = false;
	bdev_req_init(&io->req, op, pos, len, io->vec,
		      pvec_iter_init(io->vec, 2), io_end, io);
	io->req.br_loop = lp;
	bdev_submit(dev, &io->req);
}

static struct bdev *open_nbd(const struct srv *s, struct loop *lp,
			     const char *opts)
{
	struct bdev_layout_opts lo = { .max_io_bytes = 1 << 20 };
	char expr[256], err[1024];
	struct bdev *dev = NULL;
	int ret;

	snprintf(expr, sizeof(expr), "nbd(%s%s)", s->uri, opts);
	ret = bdev_layout_open(expr, lp, &lo, &dev, err, sizeof(err));
	ck_assert_msg(!ret, "%s: %s", expr, err);
	ck_assert_uint_eq(dev->bd_size, EXPORT_BYTES);
	return dev;
}

/*
 * Writes then reads back, four at a time, over one and two connections;
 * then the server dies: what is in flight and what comes after fails with
 * EIO, and the device goes with polls still in the kernel.
 */
START_TEST(test_nbd_io)
{
	static char wbuf[4][2 * 65536 + 4096], rbuf[4][2 * 65536 + 4096];
	struct ut_rng rng;
	struct io ios[4];
	struct loop lp;
	struct srv s;
	struct bdev *dev;

	if (!srv_start(&s))
		return; /* no nbdkit: the e2e test says so */
	ut_rng_init(&rng, "test_nbd_io");
	ck_assert_int_eq(loop_init(&lp, 64, false), 0);
	for (int conns = 1; conns <= 2; conns++) {
		dev = open_nbd(&s, &lp, conns == 1 ? "" : ", conns=2");
		for (int round = 0; round < 8; round++) {
			for (int i = 0; i < 4; i++) {
				for (size_t b = 0; b < sizeof(wbuf[i]); b++)
					wbuf[i][b] = (char)ut_next(&rng);
				io_start(dev, &lp, &ios[i], BDEV_WRITE,
					 (uint64_t)(round * 4 + i) * 131072,
					 wbuf[i], 131072);
			}
			ck_assert_int_eq(loop_run_until(&lp, all_done, ios), 0);
			for (int i = 0; i < 4; i++) {
				ck_assert_int_eq(ios[i].err, 0);
				io_start(dev, &lp, &ios[i], BDEV_READ,
					 (uint64_t)(round * 4 + i) * 131072,
					 rbuf[i], 131072);
			}
			ck_assert_int_eq(loop_run_until(&lp, all_done, ios), 0);
			for (int i = 0; i < 4; i++) {
				ck_assert_int_eq(ios[i].err, 0);
				ck_assert(!memcmp(rbuf[i], wbuf[i], 65536));
				ck_assert(!memcmp(rbuf[i] + 65536 + 4096,
						  wbuf[i] + 65536 + 4096,
						  65536));
			}
		}
		if (conns == 1)
			bdev_destroy(dev);
	}
	/* In flight when the server dies, and after. */
	for (int i = 0; i < 4; i++)
		io_start(dev, &lp, &ios[i], BDEV_READ, (uint64_t)i * 131072,
			 rbuf[i], 131072);
	srv_kill(&s);
	ck_assert_int_eq(loop_run_until(&lp, all_done, ios), 0);
	for (int i = 0; i < 4; i++)
		io_start(dev, &lp, &ios[i], BDEV_WRITE, 0, wbuf[i], 4096);
	ck_assert_int_eq(loop_run_until(&lp, all_done, ios), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(ios[i].err, -EIO);
	/* Gone with its polls (and the retry hook) armed: what the kernel
	 * still holds lets go on the next runs, then the memory goes. */
	bdev_destroy(dev);
	ut_run_for_ns(&lp, 100000000);
	loop_exit(&lp);
}
END_TEST

/* Run both loops, without blocking, until @ios are done (or 10 s). */
static void run_two(struct loop *a, struct loop *b, struct io *ios)
{
	uint64_t end = loop_now_ns() + 10000000000ull;

	while (!all_done(ios)) {
		ck_assert_int_ge(loop_run(a, 0), 0);
		ck_assert_int_ge(loop_run(b, 0), 0);
		ck_assert_msg(loop_now_ns() < end, "requests never completed");
	}
}

/*
 * conns=2 shared over two loops, after a read on the first (an array's
 * superblock probe does that): the second loop alone completes a request
 * (no poll of its connection is left on the first); each loop's requests
 * go out on its own part's connection, what one loop wrote the other
 * reads back, and once the second loop's connection is gone its requests
 * are handed to the first loop's part instead of failing, each counted in
 * flight on one loop's stats shard only.
 */
START_TEST(test_nbd_split)
{
	static char wbuf[4][2 * 65536 + 4096], rbuf[4][2 * 65536 + 4096];
	struct loop la, lb, *lps[2] = { &la, &lb };
	struct bdev_stats st;
	struct nbdm_dev *nd;
	struct ut_rng rng;
	struct io ios[4];
	struct srv s;
	struct bdev *dev;

	if (!srv_start(&s))
		return;
	ut_rng_init(&rng, "test_nbd_split");
	ck_assert_int_eq(loop_init(&la, 64, false), 0);
	ck_assert_int_eq(loop_init(&lb, 64, false), 0);
	lb.lp_id = 1;
	dev = open_nbd(&s, &la, ", conns=2");
	io_start(dev, &la, &ios[0], BDEV_READ, 0, rbuf[0], 8192);
	ios[1].done = ios[2].done = ios[3].done = true;
	run_two(&la, &lb, ios);
	ck_assert_ptr_null(bdev_tree_first_owned(dev, 2));
	ck_assert_int_eq(bdev_tree_share(dev, 2, &la), 0);
	nd = (struct nbdm_dev *)dev;
	ck_assert_int_eq(nd->nr_parts, 2);
	io_start(dev, &lb, &ios[0], BDEV_WRITE, 0, wbuf[0], 8192);
	for (int i = 0; i < 2000 && !ios[0].done; i++)
		ut_run_for_ns(&lb, 1000000);
	ck_assert_msg(ios[0].done, "loop b alone did not complete its write");
	ck_assert_int_eq(ios[0].err, 0);
	ck_assert_uint_eq(nd->parts[1].st_cmds, 2);
	nd->parts[0].st_cmds = nd->parts[1].st_cmds =
		0; /* the probe, the write */
	for (int i = 0; i < 4; i++) {
		for (size_t b = 0; b < sizeof(wbuf[i]); b++)
			wbuf[i][b] = (char)ut_next(&rng);
		io_start(dev, lps[i % 2], &ios[i], BDEV_WRITE,
			 (uint64_t)i * 131072, wbuf[i], 131072);
	}
	run_two(&la, &lb, ios);
	ck_assert_uint_eq(nd->parts[0].st_cmds, 4);
	ck_assert_uint_eq(nd->parts[1].st_cmds, 4);
	for (int round = 0; round < 2; round++) {
		/* Read on the other loop than the write; in round 1 with the
		 * second loop's connection gone. */
		for (int i = 0; i < 4; i++) {
			ck_assert_int_eq(ios[i].err, 0);
			memset(rbuf[i], 0, sizeof(rbuf[i]));
			io_start(dev, lps[(i + 1) % 2], &ios[i], BDEV_READ,
				 (uint64_t)i * 131072, rbuf[i], 131072);
		}
		run_two(&la, &lb, ios);
		for (int i = 0; i < 4; i++) {
			ck_assert_int_eq(ios[i].err, 0);
			ck_assert(!memcmp(rbuf[i], wbuf[i], 65536));
			ck_assert(!memcmp(rbuf[i] + 65536 + 4096,
					  wbuf[i] + 65536 + 4096, 65536));
		}
		if (round) {
			/* On its way to the first loop, not there yet: in
			 * flight all the same (a replace must not see it
			 * idle). */
			io_start(dev, &lb, &ios[0], BDEV_READ, 0, rbuf[0],
				 8192);
			loop_run(&lb, 0);
			ck_assert_uint_ge(bdev_inflight(dev), 1);
			ios[1].done = ios[2].done = ios[3].done = true;
			run_two(&la, &lb, ios);
			ck_assert_int_eq(ios[0].err, 0);
			break;
		}
		ck_assert_uint_eq(nd->parts[0].st_cmds, 8);
		ck_assert_uint_eq(nd->parts[1].st_cmds, 8);
		shutdown(nd->conns[1].fd, SHUT_RDWR);
		for (int i = 0; i < 100 && nd->parts[1].nr_live; i++)
			ut_run_for_ns(&lb, 1000000);
		ck_assert_uint_eq(nd->parts[1].nr_live, 0);
	}
	ck_assert_uint_eq(nd->parts[1].st_handed, 3);
	ck_assert_uint_ge(nd->parts[0].st_cmds, 17);
	bdev_stats_sum(dev, &st);
	ck_assert_uint_eq(st.inflight, 0);
	ck_assert_uint_le(st.inflight_max, 5);
	ck_assert_uint_eq(bdev_stats_of(dev, &la)->inflight, 0);
	ck_assert_uint_eq(bdev_stats_of(dev, &lb)->inflight, 0);
	bdev_destroy(dev);
	ut_run_for_ns(&la, 50000000);
	ut_run_for_ns(&lb, 50000000);
	loop_exit(&la);
	loop_exit(&lb);
	srv_kill(&s);
}
END_TEST

static void *no_op(void *arg)
{
	return arg;
}

/*
 * Destroyed from a thread other than a part's loop (`replace` on loop 0
 * while loop 1 runs): that part closes on its own loop, through its
 * eventfd, also when the eventfd's poll ran on a reconnecting thread's
 * word once the device was already dying; nothing of it stays armed (its
 * timeout hook would run in freed memory, which ASan sees).
 */
START_TEST(test_nbd_destroy_elsewhere)
{
	static char buf[4][8192 + 4096];
	struct loop la, lb;
	struct nbdm_dev *nd;
	struct io ios[4];
	uint64_t one = 1;
	struct srv s;
	struct bdev *dev;
	pthread_t t;

	if (!srv_start(&s))
		return;
	ck_assert_int_eq(loop_init(&la, 64, false), 0);
	ck_assert_int_eq(loop_init(&lb, 64, false), 0);
	lb.lp_id = 1;
	/* Loop b is another thread's, as far as nbdm_destroy() can tell. */
	ck_assert_int_eq(pthread_create(&t, NULL, no_op, NULL), 0);
	pthread_join(t, NULL);
	lb.thread = t;
	dev = open_nbd(&s, &la, ", conns=2, timeout=1s");
	ck_assert_int_eq(bdev_tree_share(dev, 2, &la), 0);
	nd = (struct nbdm_dev *)dev;
	for (int i = 0; i < 4; i++)
		io_start(dev, i % 2 ? &lb : &la, &ios[i], BDEV_READ, 0, buf[i],
			 8192);
	run_two(&la, &lb, ios);
	ck_assert(nd->parts[1].timer.lh_armed);
	/* A reconnecting thread's word, seen once dying is set (the first
	 * thing nbdm_destroy() does): the part must close there. */
	__atomic_store_n(&nd->dying, true, __ATOMIC_RELEASE);
	ck_assert_int_eq(write(nd->parts[1].efd, &one, sizeof(one)), 8);
	ut_run_for_ns(&lb, 10000000);
	ck_assert_ptr_null(nd->conns[1].h);
	ck_assert(!nd->parts[1].timer.lh_armed);
	bdev_destroy(dev);
	ut_run_for_ns(&la, 20000000);
	ut_run_for_ns(&lb, 1100000000); /* past timeout=1s */
	loop_exit(&la);
	loop_exit(&lb);
	srv_kill(&s);
}
END_TEST

Suite *nbd_suite(void)
{
	Suite *s = suite_create("nbd");
	TCase *tc = tcase_create("nbd");

	tcase_set_timeout(tc, UT_TIMEOUT_SEC);
	tcase_add_test(tc, test_nbd_io);
	tcase_add_test(tc, test_nbd_split);
	tcase_add_test(tc, test_nbd_destroy_elsewhere);
	suite_add_tcase(s, tc);
	return s;
}
