/* test_nbd: the nbd() member's I/O engine against a real nbdkit (memory
 * plugin, a Unix socket), on one loop, so ASan and UBSan see nbd.c work. */
#include "unit.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockdev/layout.h"

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

Suite *nbd_suite(void)
{
	Suite *s = suite_create("nbd");
	TCase *tc = tcase_create("nbd");

	tcase_set_timeout(tc, UT_TIMEOUT_SEC);
	tcase_add_test(tc, test_nbd_io);
	suite_add_tcase(s, tc);
	return s;
}
