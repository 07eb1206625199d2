/* test_rw: byte-granular I/O (blockdev/rw) over an in-memory device whose
 * submit copies to and from a malloc'd disk through the request's pvec and
 * can hold requests back to complete them later in any order.  Every
 * result is compared with a flat reference array; the backend checks the
 * bdev_ops contract (aligned, inside the device, writers never overlap
 * anything in flight) on every request it is given. */
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdio.h>

#define MD_MAX_Q 256
#define MD_LOG 64
#define MAX_IOS 24
#define CANARY 0xc3

/* ---- an in-memory device ---- */

/**
 * struct mdev - the fake device.  @m_log keeps the requests of the current
 * I/O (reset by the test) to prove which path it took.
 */
struct mdev {
	struct bdev m_dev;
	unsigned char *m_disk;
	bool m_defer;
	bool m_exclusive; /* flag overlaps where one side writes */
	struct bdev_req *m_q[MD_MAX_Q];
	int m_nr_q;
	unsigned m_nr_req[BDEV_NR_OPS];
	unsigned m_bad;
	char m_bad_msg[200];
	enum bdev_op m_fail_op;
	int m_fail_err; /* 0: no failures */
	struct mlog {
		enum bdev_op l_op;
		uint64_t l_pos, l_len;
		const char *l_buf;
	} m_log[MD_LOG];
	int m_nr_log;
};

static void md_bad(struct mdev *md, const struct bdev_req *req, const char *why)
{
	if (!md->m_bad++)
		snprintf(md->m_bad_msg, sizeof(md->m_bad_msg),
			 "%s %llu+%llu: %s", bdev_op_name(req->br_op),
			 (unsigned long long)req->br_pos,
			 (unsigned long long)req->br_len, why);
}

static bool writes(enum bdev_op op)
{
	return op == BDEV_WRITE || op == BDEV_ZERO || op == BDEV_DISCARD;
}

static void md_check(struct mdev *md, const struct bdev_req *req)
{
	const struct bdev *d = &md->m_dev;
	bool data = req->br_op == BDEV_READ || req->br_op == BDEV_WRITE;

	if (req->br_dev != d)
		md_bad(md, req, "br_dev");
	if (req->br_op == BDEV_FLUSH)
		return;
	if (req->br_pos > d->bd_size || req->br_len > d->bd_size - req->br_pos)
		md_bad(md, req, "outside the device");
	if (data) {
		struct pvec_iter it = req->br_iter;

		if ((req->br_pos | req->br_len) % d->bd_align)
			md_bad(md, req, "range not aligned to bd_align");
		if (!req->br_vec || it.pi_size != req->br_len)
			md_bad(md, req, "vector does not match br_len");
		else if (!pvec_is_aligned(req->br_vec, it, d->bd_mem_align, 1))
			md_bad(md, req, "buffer not aligned to bd_mem_align");
	}
	if (!md->m_exclusive)
		return;
	for (int i = 0; i < md->m_nr_q; i++) {
		const struct bdev_req *o = md->m_q[i];

		if (o->br_op == BDEV_FLUSH ||
		    (!writes(o->br_op) && !writes(req->br_op)))
			continue;
		if (o->br_pos < req->br_pos + req->br_len &&
		    req->br_pos < o->br_pos + o->br_len)
			md_bad(md, req, "overlaps a write in flight");
	}
}

static void md_do(struct mdev *md, struct bdev_req *req)
{
	uint64_t pos = req->br_pos;
	struct pvec_iter it = req->br_iter;

	if (md->m_fail_err && req->br_op == md->m_fail_op) {
		bdev_req_complete(req, md->m_fail_err);
		return;
	}
	switch (req->br_op) {
	case BDEV_READ:
	case BDEV_WRITE:
		while (it.pi_size) {
			struct pvec cur = pvec_iter_cur(req->br_vec, it);

			if (req->br_op == BDEV_READ)
				memcpy(pvec_addr(&cur), md->m_disk + pos,
				       cur.pv_len);
			else
				memcpy(md->m_disk + pos, pvec_addr(&cur),
				       cur.pv_len);
			pos += cur.pv_len;
			pvec_iter_advance(req->br_vec, &it, cur.pv_len);
		}
		break;
	case BDEV_ZERO:
	case BDEV_DISCARD:
		memset(md->m_disk + pos, 0, req->br_len);
		break;
	default:
		break;
	}
	bdev_req_complete(req, 0);
}

static void md_submit(struct bdev *dev, struct bdev_req *req)
{
	struct mdev *md = (struct mdev *)dev;

	md_check(md, req);
	md->m_nr_req[req->br_op]++;
	if (md->m_nr_log < MD_LOG) {
		struct mlog *l = &md->m_log[md->m_nr_log++];
		struct pvec cur = { 0 };

		if (req->br_vec)
			cur = pvec_iter_cur(req->br_vec, req->br_iter);
		l->l_op = req->br_op;
		l->l_pos = req->br_pos;
		l->l_len = req->br_len;
		l->l_buf = req->br_vec ? pvec_addr(&cur) : NULL;
	}
	if (md->m_defer) {
		UT_CHECK(md->m_nr_q < MD_MAX_Q, "mdev: queue full");
		md->m_q[md->m_nr_q++] = req;
		return;
	}
	md_do(md, req);
}

static void md_destroy(struct bdev *dev)
{
	(void)dev;
}

static const struct bdev_ops md_ops = {
	.submit = md_submit,
	.destroy = md_destroy,
};

/* Complete queued requests, picked at random (@r) or oldest first, until
 * none is left; completions may queue more. */
static void md_drain(struct mdev *md, struct ut_rng *r)
{
	for (int guard = 0; md->m_nr_q; guard++) {
		int i = r ? (int)ut_below(r, (uint64_t)md->m_nr_q) : 0;
		struct bdev_req *req = md->m_q[i];

		UT_CHECK(guard < 100000, "mdev: drain does not end");
		memmove(&md->m_q[i], &md->m_q[i + 1],
			(size_t)(md->m_nr_q - i - 1) * sizeof(md->m_q[0]));
		md->m_nr_q--;
		md_do(md, req);
	}
}

/* ---- device + context + reference ---- */

struct env {
	struct mdev e_md;
	struct loop e_ring;
	struct bdev_rw_ctx e_ctx;
	unsigned char *e_ref; /* what the disk must hold */
	uint64_t e_size;
	uint32_t e_align;
	size_t e_max_io;
	int e_nr_bounce;
};

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static void env_init(struct env *e, struct ut_rng *r, uint32_t align,
		     uint32_t mem_align, unsigned nr_blocks, size_t max_io,
		     int nr_bounce, bool defer)
{
	size_t bounce = round_up(max_io + 2 * (size_t)align, PVEC_PAGE_SIZE);

	memset(e, 0, sizeof(*e));
	e->e_size = (uint64_t)nr_blocks * align;
	e->e_align = align;
	e->e_max_io = max_io;
	e->e_nr_bounce = nr_bounce;
	e->e_md.m_dev.bd_ops = &md_ops;
	e->e_md.m_dev.bd_name = "mdev";
	e->e_md.m_dev.bd_size = e->e_size;
	e->e_md.m_dev.bd_align = align;
	e->e_md.m_dev.bd_mem_align = mem_align;
	e->e_md.m_defer = defer;
	e->e_md.m_disk = malloc(e->e_size);
	e->e_ref = malloc(e->e_size);
	ck_assert_ptr_nonnull(e->e_md.m_disk);
	ck_assert_ptr_nonnull(e->e_ref);
	ut_fill(r, e->e_ref, e->e_size);
	memcpy(e->e_md.m_disk, e->e_ref, e->e_size);
	/* The pinned pool by hand: rw only carves bounces out of it. */
	e->e_ring.pool_bytes = bounce * (size_t)nr_bounce;
	e->e_ring.pool = aligned_alloc(PVEC_PAGE_SIZE, e->e_ring.pool_bytes);
	e->e_ring.pool_used = 0;
	ck_assert_ptr_nonnull(e->e_ring.pool);
	ck_assert_int_eq(bdev_rw_ctx_init(&e->e_ctx, &e->e_md.m_dev, &e->e_ring,
					  max_io, nr_bounce),
			 0);
}

static void env_exit(struct env *e)
{
	bdev_rw_ctx_exit(&e->e_ctx);
	free(e->e_ring.pool);
	free(e->e_ref);
	free(e->e_md.m_disk);
}

/* The backend saw no contract violation; nothing is left in flight. */
static void env_check_idle(struct env *e, const char *what)
{
	UT_EQ(e->e_md.m_bad, 0, "%s: backend: %s", what, e->e_md.m_bad_msg);
	UT_EQ(e->e_md.m_nr_q, 0, "%s: requests left", what);
	UT_CHECK(!bdev_rw_busy(&e->e_ctx), "%s: rw still busy", what);
	UT_EQ(e->e_ctx.nr_bounce_free, e->e_nr_bounce, "%s: bounces leaked",
	      what);
	UT_EQ(e->e_md.m_dev.bd_stats.inflight, 0, "%s", what);
}

static void env_check_disk(struct env *e, const char *what)
{
	if (!memcmp(e->e_md.m_disk, e->e_ref, e->e_size))
		return;
	for (uint64_t i = 0; i < e->e_size; i++)
		if (e->e_md.m_disk[i] != e->e_ref[i])
			ck_abort_msg("[UNIT_SEED=%llu] %s: disk byte %llu is "
				     "%#x, want %#x",
				     (unsigned long long)ut_seed, what,
				     (unsigned long long)i, e->e_md.m_disk[i],
				     e->e_ref[i]);
}

/* ---- I/Os ---- */

/**
 * struct io - one bdev_rw and what its completion reported.  @io_then runs
 * from the completion (to chain, reuse or release).
 */
struct io {
	struct bdev_rw io_rw;
	ssize_t io_res;
	int io_calls;
	long io_seq;
	unsigned char *io_mem; /* allocation @io_buf points into */
	unsigned char *io_buf;
	void (*io_then)(struct io *io);
	void *io_arg;
	enum bdev_op io_op; /* what io_start() last started */
	uint64_t io_pos;
	size_t io_len;
};

static long io_seq;

static void io_done(struct bdev_rw *rw, ssize_t res)
{
	struct io *io = rw->rw_private;

	io->io_calls++;
	io->io_res = res;
	io->io_seq = ++io_seq;
	if (io->io_then)
		io->io_then(io);
}

/* A buffer for @len bytes at @mis bytes past a page boundary. */
static void io_buf(struct io *io, size_t len, size_t mis)
{
	io->io_mem = aligned_alloc(PVEC_PAGE_SIZE,
				   round_up(len + mis + 1, PVEC_PAGE_SIZE));
	ck_assert_ptr_nonnull(io->io_mem);
	io->io_buf = io->io_mem + mis;
}

static void io_start(struct env *e, struct io *io, enum bdev_op op,
		     uint64_t pos, size_t len)
{
	io->io_calls = 0;
	io->io_res = 12345;
	io->io_op = op;
	io->io_pos = pos;
	io->io_len = len;
	bdev_rw_start(&e->e_ctx, &io->io_rw, op, pos, io->io_buf, len, io_done,
		      io);
}

/* What a READ/WRITE of @len at @pos must return and transfer. */
static ssize_t want_res(const struct env *e, enum bdev_op op, uint64_t pos,
			size_t len)
{
	if (pos >= e->e_size)
		return op == BDEV_READ ? 0 : -ENOSPC;
	return (ssize_t)(len < e->e_size - pos ? len : e->e_size - pos);
}

static bool in_pool(const struct env *e, const char *p, uint64_t len)
{
	return loop_in_pool(&e->e_ring, p, len);
}

/*
 * check_path() - the requests the backend saw for one READ/WRITE of @n
 * bytes (after clipping) at @pos from @buf: straight through when pos, n
 * and buf are aligned; otherwise one covering read into a bounce, or
 * reads of exactly the partial head/tail blocks then one covering write.
 */
static void check_path(const struct env *e, enum bdev_op op, uint64_t pos,
		       size_t n, const unsigned char *buf, const char *what)
{
	const struct mdev *md = &e->e_md;
	uint64_t A = e->e_align;
	uint64_t a0 = pos / A * A, a1 = round_up(pos + n, A);
	bool aligned = !(pos % A) && !(n % A) &&
		       !((uintptr_t)buf % md->m_dev.bd_mem_align);
	uint64_t part[2];
	int nr_part = 0;
	const struct mlog *w;

	if (!n) {
		UT_EQ(md->m_nr_log, 0, "%s: requests for nothing", what);
		return;
	}
	if (aligned) {
		UT_EQ(md->m_nr_log, 1, "%s: direct", what);
		UT_EQ(md->m_log[0].l_op, op, "%s", what);
		UT_EQ(md->m_log[0].l_pos, pos, "%s", what);
		UT_EQ(md->m_log[0].l_len, n, "%s", what);
		UT_CHECK(md->m_log[0].l_buf == (const char *)buf,
			 "%s: direct I/O not from the caller's buffer", what);
		return;
	}
	if (op == BDEV_READ) {
		UT_EQ(md->m_nr_log, 1, "%s: bounce read", what);
		UT_EQ(md->m_log[0].l_op, BDEV_READ, "%s", what);
		UT_EQ(md->m_log[0].l_pos, a0, "%s", what);
		UT_EQ(md->m_log[0].l_len, a1 - a0, "%s", what);
		UT_CHECK(in_pool(e, md->m_log[0].l_buf, a1 - a0),
			 "%s: bounce read not into the pinned pool", what);
		return;
	}
	if (pos % A)
		part[nr_part++] = a0;
	if ((pos + n) % A && !(nr_part && part[0] == a1 - A))
		part[nr_part++] = a1 - A;
	UT_EQ(md->m_nr_log, nr_part + 1, "%s: read-modify-write", what);
	w = &md->m_log[nr_part];
	UT_EQ(w->l_op, BDEV_WRITE, "%s: last request", what);
	UT_EQ(w->l_pos, a0, "%s", what);
	UT_EQ(w->l_len, a1 - a0, "%s", what);
	UT_CHECK(in_pool(e, w->l_buf, a1 - a0),
		 "%s: RMW write not from a bounce", what);
	for (int i = 0; i < nr_part; i++) {
		const struct mlog *l = &md->m_log[i];
		bool found = false;

		UT_EQ(l->l_op, BDEV_READ, "%s: fill %d", what, i);
		UT_EQ(l->l_len, A, "%s: fill %d", what, i);
		for (int j = 0; j < nr_part; j++)
			found |= l->l_pos == part[j];
		UT_CHECK(found, "%s: fill read of %llu, not a partial block",
			 what, (unsigned long long)l->l_pos);
		UT_CHECK(l->l_buf == w->l_buf + (l->l_pos - a0),
			 "%s: fill %d lands at the wrong place in the bounce",
			 what, i);
	}
	if (nr_part == 2)
		UT_CHECK(md->m_log[0].l_pos != md->m_log[1].l_pos,
			 "%s: same block filled twice", what);
}

/* ---- tests ---- */

START_TEST(test_ctx_init)
{
	static const struct {
		uint32_t align;
		size_t max_io;
		int nr_bounce;
	} t[] = { { 512, 4096, 1 },
		  { 512, 1000, 3 },
		  { 4096, 65536, 2 },
		  { 4096, 1, 4 } };
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (size_t c = 0; c < sizeof(t) / sizeof(t[0]); c++) {
		struct env e;
		struct bdev_rw_ctx small;
		size_t want = t[c].max_io + 2 * (size_t)t[c].align;

		env_init(&e, &r, t[c].align, t[c].align, 16, t[c].max_io,
			 t[c].nr_bounce, false);
		UT_EQ(e.e_ctx.bounce_bytes, want, "case %zu", c);
		UT_EQ(e.e_ctx.nr_bounce_free, t[c].nr_bounce, "case %zu", c);
		UT_CHECK(e.e_ctx.dev == &e.e_md.m_dev, "case %zu", c);
		UT_CHECK(!bdev_rw_busy(&e.e_ctx), "case %zu", c);
		for (int i = 0; i < t[c].nr_bounce; i++) {
			UT_CHECK(in_pool(&e, e.e_ctx.bounce[i], want),
				 "case %zu bounce %d outside the pool", c, i);
			UT_EQ((uintptr_t)e.e_ctx.bounce[i] % PVEC_PAGE_SIZE, 0,
			      "case %zu bounce %d", c, i);
			for (int j = 0; j < i; j++) {
				char *a = e.e_ctx.bounce[i],
				     *b = e.e_ctx.bounce[j];

				UT_CHECK(a + want <= b || b + want <= a,
					 "case %zu: bounces %d and %d overlap",
					 c, i, j);
			}
		}
		/* One more bounce than the pool holds: a failed init leaves
		 * nothing to free (LeakSanitizer checks under ASan). */
		e.e_ring.pool_used = 0;
		UT_EQ(bdev_rw_ctx_init(&small, &e.e_md.m_dev, &e.e_ring,
				       t[c].max_io, t[c].nr_bounce + 1),
		      -ENOMEM, "case %zu", c);
		UT_CHECK(!small.bounce,
			 "case %zu: a failed init keeps its array", c);
		env_exit(&e);
	}
}
END_TEST

static const struct cfg {
	uint32_t align, mem_align;
} cfgs[] = { { 512, 512 }, { 4096, 512 }, { 4096, 4096 } };
#define NR_CFGS (int)(sizeof(cfgs) / sizeof(cfgs[0]))

/*
 * The matrix {aligned, unaligned geometry} x {buffer aligned or not} x
 * {read, write} x {immediate, deferred} x device alignments, from one
 * table: results, bytes, counters and the exact backend requests.
 */
START_TEST(test_matrix)
{
	/* in units of A plus bytes: pos = pa * A + pb, len = la * A + lb */
	/* clang-format off */
	static const struct {
		int pa, pb, la, lb;
		const char *name;
	} geo[] = {
		{ 3, 0, 1, 0, "aligned one block" },
		{ 2, 0, 5, 0, "aligned many blocks" },
		{ 3, 7, 0, 100, "inside one block" },
		{ 3, 0, 0, 100, "head of a block" },
		{ 4, -100, 0, 100, "tail of a block" },
		{ 3, 0, 1, -1, "block minus one byte" },
		{ 3, 1, 1, -1, "block minus one byte, shifted" },
		{ 3, -1, 0, 2, "two bytes across a boundary" },
		{ 3, 0, 1, 0, "one block" },
		{ 3, 256, 1, 0, "one block across a boundary" },
		{ 3, 1, 4, 0, "many blocks, both ends partial" },
		{ 3, 0, 3, 5, "many blocks, tail partial" },
		{ 3, 5, 3, -5, "many blocks, head partial" },
	};
	/* clang-format on */
	enum { NR_GEO = sizeof(geo) / sizeof(geo[0]) };
	static const size_t mis[3] = { 0, 8, 512 };
	struct ut_rng r;
	int nr_cases = 0;

	ut_rng_init(&r, __func__);
	for (int k = 0; k < NR_CFGS * NR_GEO * 3 * 2 * 2; k++) {
		int c = k / (NR_GEO * 3 * 2 * 2), g = k / (3 * 2 * 2) % NR_GEO;
		int m = k / (2 * 2) % 3, op = BDEV_READ + k / 2 % 2,
		    defer = k % 2;
		uint32_t A = cfgs[c].align;
		uint64_t pos = (uint64_t)((int64_t)geo[g].pa * A + geo[g].pb);
		size_t len = (size_t)((int64_t)geo[g].la * A + geo[g].lb);
		bool aligned = !(pos % A) && !(len % A) &&
			       !(mis[m] % cfgs[c].mem_align);
		struct env e;
		struct io io = { 0 };
		char what[160];

		snprintf(what, sizeof(what), "%s, A %u mem %u, buf+%zu, %s, %s",
			 geo[g].name, A, cfgs[c].mem_align, mis[m],
			 bdev_op_name((enum bdev_op)op),
			 defer ? "deferred" : "immediate");
		env_init(&e, &r, A, cfgs[c].mem_align, 16, 6 * A, 1, defer);
		io_buf(&io, len, mis[m]);
		if (op == BDEV_WRITE)
			ut_fill(&r, io.io_buf, len);
		else
			memset(io.io_buf, CANARY, len + 1);
		io_start(&e, &io, (enum bdev_op)op, pos, len);
		if (defer) {
			UT_EQ(io.io_calls, 0, "%s: done before any completion",
			      what);
			md_drain(&e.e_md, &r);
		}
		UT_EQ(io.io_calls, 1, "%s", what);
		UT_EQ(io.io_res, len, "%s", what);
		check_path(&e, (enum bdev_op)op, pos, len, io.io_buf, what);
		if (op == BDEV_WRITE) {
			memcpy(e.e_ref + pos, io.io_buf, len);
			UT_EQ(e.e_ctx.rmw_ops, !aligned, "%s", what);
			UT_EQ(e.e_ctx.unaligned_reads, 0, "%s", what);
		} else {
			UT_CHECK(!memcmp(io.io_buf, e.e_ref + pos, len),
				 "%s: read the wrong bytes", what);
			UT_EQ(io.io_buf[len], CANARY, "%s: read overran", what);
			UT_EQ(e.e_ctx.unaligned_reads, !aligned, "%s", what);
			UT_EQ(e.e_ctx.rmw_ops, 0, "%s", what);
		}
		UT_EQ(e.e_ctx.bytes_bounced, aligned ? 0 : len, "%s", what);
		UT_EQ(e.e_ctx.lock_waits, 0, "%s", what);
		env_check_disk(&e, what);
		env_check_idle(&e, what);
		free(io.io_mem);
		env_exit(&e);
		nr_cases++;
	}
	ck_assert_int_eq(nr_cases, NR_CFGS * 13 * 3 * 2 * 2);
	ck_assert_int_eq(NR_GEO, 13);
}
END_TEST

/* Clipping at the end of the device and argument errors. */
START_TEST(test_bounds)
{
	enum { A = 512, BLOCKS = 16, S = A * BLOCKS, MAXIO = 4 * A };
	/* clang-format off */
	static const struct {
		int op;
		uint64_t pos;
		size_t len;
		bool null_buf;
		ssize_t want;
	} t[] = {
		{ BDEV_READ, S, A, false, 0 },
		{ BDEV_READ, S + 1000, 10, false, 0 },
		{ BDEV_READ, UINT64_MAX, 10, false, 0 },
		{ BDEV_READ, UINT64_MAX - 5, 10, false, 0 },
		{ BDEV_READ, S - 100, 1000, false, 100 },
		{ BDEV_READ, S - A, A, false, A },
		{ BDEV_READ, S - A, 2 * A, false, A },
		{ BDEV_READ, S - 1, 1, false, 1 },
		{ BDEV_READ, 100, 0, false, 0 },
		{ BDEV_READ, 0, MAXIO + 1, false, -EINVAL },
		{ BDEV_READ, 0, 10, true, -EINVAL },
		{ BDEV_WRITE, S, A, false, -ENOSPC },
		{ BDEV_WRITE, S + 1, 1, false, -ENOSPC },
		{ BDEV_WRITE, UINT64_MAX, 1, false, -ENOSPC },
		{ BDEV_WRITE, S, 0, false, -ENOSPC },
		{ BDEV_WRITE, S - 100, 1000, false, 100 },
		{ BDEV_WRITE, S - A, 2 * A, false, A },
		{ BDEV_WRITE, S - 3, 7, false, 3 },
		{ BDEV_WRITE, 100, 0, false, 0 },
		{ BDEV_WRITE, 0, MAXIO + 1, false, -EINVAL },
		{ BDEV_WRITE, 0, 10, true, -EINVAL },
	};
	/* clang-format on */
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (size_t k = 0; k < 2 * sizeof(t) / sizeof(t[0]); k++) {
		size_t c = k / 2;
		bool defer = k % 2;
		struct env e;
		struct io io = { 0 };
		size_t n = t[c].want > 0 ? (size_t)t[c].want : 0;
		char what[64];

		snprintf(what, sizeof(what), "case %zu (%s)", c,
			 defer ? "deferred" : "immediate");
		env_init(&e, &r, A, A, BLOCKS, MAXIO, 1, defer);
		io_buf(&io, t[c].len, 0);
		if (t[c].op == BDEV_WRITE)
			ut_fill(&r, io.io_buf, t[c].len);
		else
			memset(io.io_buf, CANARY, t[c].len + 1);
		if (t[c].null_buf)
			io.io_buf = NULL;
		io_start(&e, &io, (enum bdev_op)t[c].op, t[c].pos, t[c].len);
		md_drain(&e.e_md, &r);
		UT_EQ(io.io_calls, 1, "%s", what);
		UT_EQ(io.io_res, t[c].want, "%s", what);
		if (t[c].want <= 0)
			UT_EQ(e.e_md.m_nr_log, 0, "%s: reached the device",
			      what);
		if (t[c].op == BDEV_WRITE && n)
			memcpy(e.e_ref + t[c].pos, io.io_buf, n);
		if (t[c].op == BDEV_READ && !t[c].null_buf) {
			UT_CHECK(!memcmp(io.io_buf,
					 e.e_ref + (n ? t[c].pos : 0), n),
				 "%s: bytes", what);
			for (size_t i = n; i <= t[c].len; i++)
				UT_EQ(io.io_buf[i], CANARY,
				      "%s: byte %zu past the end written", what,
				      i);
		}
		env_check_disk(&e, what);
		env_check_idle(&e, what);
		free(io.io_mem);
		env_exit(&e);
	}
}
END_TEST

/* A kind of range: one block, two, many, aligned, near or past the end. */
static void rand_range(struct ut_rng *r, const struct env *e, uint64_t *pos,
		       size_t *len)
{
	uint64_t A = e->e_align, nb = e->e_size / A;
	uint64_t b = ut_below(r, nb);

	switch (ut_below(r, 7)) {
	case 0: /* inside one block */
		*pos = b * A + ut_below(r, A);
		*len = ut_between(r, 1, A - *pos % A);
		break;
	case 1: /* across one boundary */
		*pos = b * A + ut_between(r, 1, A - 1);
		*len = ut_between(r, A - *pos % A + 1, A + 1);
		break;
	case 2: /* many blocks */
		*pos = b * A + ut_below(r, A);
		*len = ut_between(r, 1, e->e_max_io);
		break;
	case 3: /* aligned */
		*pos = b * A;
		*len = A * ut_between(r, 1, e->e_max_io / A);
		break;
	case 4: /* near the end */
		*pos = e->e_size - ut_between(r, 1, 2 * A);
		*len = ut_between(r, 1, e->e_max_io);
		break;
	case 5: /* at or past the end */
		*pos = e->e_size + ut_below(r, 2 * A);
		*len = ut_between(r, 1, A);
		break;
	default:
		*pos = ut_below(r, e->e_size);
		*len = ut_below(r, e->e_max_io + 1);
		break;
	}
}

/* One I/O at a time, random geometry, every result against the reference. */
START_TEST(test_random_serial)
{
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (int k = 0; k < NR_CFGS * 2; k++) {
		int c = k / 2, defer = k % 2;
		uint32_t A = cfgs[c].align;
		struct env e;
		struct io io = { 0 };
		uint64_t want_rmw = 0, want_ur = 0, want_bounced = 0;

		env_init(&e, &r, A, cfgs[c].mem_align, A == 512 ? 64 : 40,
			 6 * A + 100, 2, defer);
		io_buf(&io, e.e_max_io + 8192, 0);
		for (int iter = 0; iter < 300; iter++) {
			enum bdev_op op = ut_chance(&r, 50) ? BDEV_READ :
							      BDEV_WRITE;
			size_t mis = ut_chance(&r, 60) ? 0 :
				     ut_chance(&r, 50) ? 512 :
							 ut_below(&r, 4096);
			unsigned char *buf = io.io_mem + mis;
			uint64_t pos;
			size_t len;
			ssize_t want;
			char what[96];
			bool aligned;

			rand_range(&r, &e, &pos, &len);
			want = want_res(&e, op, pos, len);
			snprintf(what, sizeof(what),
				 "cfg %d %s iter %d: %s %llu+%zu buf+%zu", c,
				 defer ? "deferred" : "immediate", iter,
				 bdev_op_name(op), (unsigned long long)pos, len,
				 mis);
			io.io_buf = buf;
			if (op == BDEV_WRITE)
				ut_fill(&r, buf, len);
			else
				memset(buf, CANARY, len + 1);
			e.e_md.m_nr_log = 0;
			io_start(&e, &io, op, pos, len);
			md_drain(&e.e_md, defer ? &r : NULL);
			UT_EQ(io.io_calls, 1, "%s", what);
			UT_EQ(io.io_res, want, "%s", what);
			if (want <= 0) {
				UT_EQ(e.e_md.m_nr_log, 0, "%s", what);
				continue;
			}
			check_path(&e, op, pos, (size_t)want, buf, what);
			aligned = !(pos % A) && !(want % A) &&
				  !((uintptr_t)buf % cfgs[c].mem_align);
			if (!aligned) {
				want_bounced += (uint64_t)want;
				if (op == BDEV_READ)
					want_ur++;
				else
					want_rmw++;
			}
			if (op == BDEV_WRITE) {
				memcpy(e.e_ref + pos, buf, (size_t)want);
				UT_CHECK(!memcmp(e.e_md.m_disk + pos / A * A,
						 e.e_ref + pos / A * A,
						 round_up(pos + (size_t)want,
							  A) -
							 pos / A * A),
					 "%s: blocks around the write differ",
					 what);
			} else {
				UT_CHECK(!memcmp(buf, e.e_ref + pos,
						 (size_t)want),
					 "%s: read the wrong bytes", what);
				for (size_t i = (size_t)want; i <= len; i++)
					UT_EQ(buf[i], CANARY, "%s: overran",
					      what);
			}
			if (iter % 50 == 49)
				env_check_disk(&e, what);
		}
		UT_EQ(e.e_ctx.rmw_ops, want_rmw, "cfg %d", c);
		UT_EQ(e.e_ctx.unaligned_reads, want_ur, "cfg %d", c);
		UT_EQ(e.e_ctx.bytes_bounced, want_bounced, "cfg %d", c);
		UT_EQ(e.e_ctx.lock_waits, 0, "cfg %d: serial I/O waited", c);
		env_check_disk(&e, "end");
		env_check_idle(&e, "end");
		free(io.io_mem);
		env_exit(&e);
	}
}
END_TEST

/* K writes started together, completions held back and shuffled. */
struct wr {
	uint64_t w_pos;
	size_t w_len;
};

static void run_concurrent(struct env *e, struct ut_rng *r, struct io *ios,
			   const struct wr *w, int k, const char *what)
{
	for (int i = 0; i < k; i++) {
		io_buf(&ios[i], w[i].w_len,
		       ut_chance(r, 50) ? 0 : ut_below(r, 64));
		ut_fill(r, ios[i].io_buf, w[i].w_len);
		io_start(e, &ios[i], BDEV_WRITE, w[i].w_pos, w[i].w_len);
	}
	md_drain(&e->e_md, r);
	for (int i = 0; i < k; i++) {
		UT_EQ(ios[i].io_calls, 1, "%s: write %d", what, i);
		UT_EQ(ios[i].io_res, w[i].w_len, "%s: write %d", what, i);
		/* Serial order = start order: rw's FIFO never lets a write
		 * overtake an older one whose range overlaps its own. */
		memcpy(e->e_ref + w[i].w_pos, ios[i].io_buf, w[i].w_len);
		free(ios[i].io_mem);
	}
	env_check_disk(e, what);
	env_check_idle(e, what);
}

/* Do the covering (block-rounded) ranges of any two writes overlap? */
static bool any_shared_block(const struct wr *w, int k, uint64_t A)
{
	for (int i = 0; i < k; i++)
		for (int j = 0; j < i; j++) {
			uint64_t a0 = w[i].w_pos / A,
				 a1 = (w[i].w_pos + w[i].w_len - 1) / A;
			uint64_t b0 = w[j].w_pos / A,
				 b1 = (w[j].w_pos + w[j].w_len - 1) / A;

			if (a0 <= b1 && b0 <= a1)
				return true;
		}
	return false;
}

/*
 * Writes to disjoint bytes that share blocks: the region is cut at random
 * points (sometimes block boundaries, for direct writes in the mix) and
 * every piece written at once.  Every byte of every write must survive.
 */
START_TEST(test_concurrent_disjoint)
{
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (int t = 0; t < NR_CFGS * 60; t++) {
		int c = t / 60, iter = t % 60;
		uint32_t A = cfgs[c].align;
		struct io ios[MAX_IOS];
		struct wr w[MAX_IOS];
		uint64_t cut[MAX_IOS + 1], base;
		int k = (int)ut_between(&r, 2, 16),
		    blocks = (int)ut_between(&r, 1, 4);
		int nr_bounce = (int)ut_between(&r, 1, 4);
		struct env e;
		char what[64];

		env_init(&e, &r, A, cfgs[c].mem_align, 32, 6 * A, nr_bounce,
			 true);
		e.e_md.m_exclusive = true;
		memset(ios, 0, sizeof(ios));
		base = A * ut_below(&r, 32 - (uint64_t)blocks + 1);
		cut[0] = base;
		cut[k] = base + (uint64_t)blocks * A;
		for (int i = 1; i < k; i++) {
			cut[i] = base + ut_below(&r, (uint64_t)blocks * A + 1);
			if (ut_chance(&r, 25))
				cut[i] = cut[i] / A * A;
		}
		for (int i = 2; i < k; i++)
			for (int j = i; j > 1 && cut[j - 1] > cut[j]; j--) {
				uint64_t tmp = cut[j];

				cut[j] = cut[j - 1];
				cut[j - 1] = tmp;
			}
		/* Drop empty pieces; start in random order. */
		{
			int n = 0, order[MAX_IOS];

			for (int i = 0; i < k; i++)
				if (cut[i + 1] > cut[i])
					order[n++] = i;
			ut_shuffle(&r, order, n);
			for (int i = 0; i < n; i++) {
				w[i].w_pos = cut[order[i]];
				w[i].w_len = cut[order[i] + 1] - cut[order[i]];
			}
			k = n;
		}
		snprintf(what, sizeof(what), "cfg %d iter %d (%d writes)", c,
			 iter, k);
		run_concurrent(&e, &r, ios, w, k, what);
		if (any_shared_block(w, k, A))
			UT_CHECK(e.e_ctx.lock_waits > 0,
				 "%s: writes sharing a block never waited",
				 what);
		UT_CHECK(e.e_ctx.lock_waits < (uint64_t)k, "%s: %llu waits",
			 what, (unsigned long long)e.e_ctx.lock_waits);
		env_exit(&e);
	}
}
END_TEST

/* Overlapping writes, any geometry: the disk ends as if applied in order. */
START_TEST(test_concurrent_overlap)
{
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (int t = 0; t < NR_CFGS * 60; t++) {
		int c = t / 60, iter = t % 60;
		uint32_t A = cfgs[c].align;
		struct io ios[MAX_IOS];
		struct wr w[MAX_IOS];
		int k = (int)ut_between(&r, 2, MAX_IOS);
		uint64_t region = A * ut_between(&r, 1, 4), base;
		struct env e;
		char what[64];

		env_init(&e, &r, A, cfgs[c].mem_align, 32, 6 * A,
			 (int)ut_between(&r, 1, 3), true);
		e.e_md.m_exclusive = true;
		memset(ios, 0, sizeof(ios));
		base = ut_below(&r, 32 * (uint64_t)A - region - 2 * A);
		for (int i = 0; i < k; i++) {
			w[i].w_pos = base + ut_below(&r, region);
			w[i].w_len =
				ut_between(&r, 1,
					   region + A - (w[i].w_pos - base));
			if (ut_chance(&r, 20)) { /* some direct ones */
				w[i].w_pos = w[i].w_pos / A * A;
				w[i].w_len = round_up(w[i].w_len, A);
			}
		}
		snprintf(what, sizeof(what), "cfg %d iter %d (%d writes)", c,
			 iter, k);
		run_concurrent(&e, &r, ios, w, k, what);
		env_exit(&e);
	}
}
END_TEST

/*
 * Steady load: a few I/Os always in flight, each completion starting the
 * next, so new I/Os keep arriving while others wait for ranges and
 * bounces.  Writes go to a small hot area (overlapping, mostly unaligned)
 * and must end up as if applied in start order; reads go to an area no
 * one writes and must return its bytes.
 */
struct wlog {
	uint64_t wl_pos;
	size_t wl_len;
	unsigned char *wl_data;
};

struct steady {
	struct env *s_env;
	struct ut_rng *s_rng;
	int s_left, s_started, s_done, s_bad;
	char s_bad_msg[120];
	struct wlog s_log[400];
	int s_nr_log;
	uint64_t s_hot, s_hot_len, s_cold, s_cold_len;
};

static void steady_start(struct steady *st, struct io *io)
{
	struct ut_rng *r = st->s_rng;
	uint64_t A = st->s_env->e_align, base, span, pos;
	size_t len;
	enum bdev_op op = ut_chance(r, 60) ? BDEV_WRITE : BDEV_READ;

	base = op == BDEV_WRITE ? st->s_hot : st->s_cold;
	span = op == BDEV_WRITE ? st->s_hot_len : st->s_cold_len;
	pos = base + ut_below(r, span);
	len = ut_between(r, 1, base + span - pos);
	if (len > 3 * A)
		len = 3 * A;
	if (ut_chance(r, 15)) {
		pos = pos / A * A;
		len = round_up(len, A);
		if (pos + len > base + span)
			len = base + span - pos;
	}
	io->io_buf = io->io_mem + (ut_chance(r, 70) ? 0 : ut_below(r, 64));
	if (op == BDEV_WRITE) {
		struct wlog *l = &st->s_log[st->s_nr_log++];

		ut_fill(r, io->io_buf, len);
		l->wl_pos = pos;
		l->wl_len = len;
		l->wl_data = malloc(len);
		memcpy(l->wl_data, io->io_buf, len);
	}
	st->s_left--;
	st->s_started++;
	io_start(st->s_env, io, op, pos, len);
}

static void steady_next(struct io *io)
{
	struct steady *st = io->io_arg;

	st->s_done++;
	if (io->io_res != (ssize_t)io->io_len ||
	    (io->io_op == BDEV_READ &&
	     memcmp(io->io_buf, st->s_env->e_ref + io->io_pos, io->io_len))) {
		if (!st->s_bad++)
			snprintf(st->s_bad_msg, sizeof(st->s_bad_msg),
				 "%s %llu+%zu: res %zd",
				 bdev_op_name(io->io_op),
				 (unsigned long long)io->io_pos, io->io_len,
				 io->io_res);
	}
	if (st->s_left > 0)
		steady_start(st, io);
}

START_TEST(test_steady_load)
{
	static struct steady st;
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (int k = 0; k < NR_CFGS * 3; k++) {
		int c = k / 3, round = k % 3;
		uint32_t A = cfgs[c].align;
		int qd = (int)ut_between(&r, 2, 10);
		struct io ios[10];
		struct env e;
		char what[64];

		snprintf(what, sizeof(what), "cfg %d round %d qd %d", c, round,
			 qd);
		env_init(&e, &r, A, cfgs[c].mem_align, 32, 4 * A,
			 (int)ut_between(&r, 1, 3), true);
		memset(&st, 0, sizeof(st));
		memset(ios, 0, sizeof(ios));
		st.s_env = &e;
		st.s_rng = &r;
		st.s_left = 300;
		st.s_hot = 4 * (uint64_t)A + ut_below(&r, A);
		st.s_hot_len = A * ut_between(&r, 1, 4);
		st.s_cold = 16 * (uint64_t)A;
		st.s_cold_len = 16 * (uint64_t)A;
		for (int i = 0; i < qd; i++) {
			io_buf(&ios[i], 3 * A + 64, 0);
			ios[i].io_then = steady_next;
			ios[i].io_arg = &st;
			steady_start(&st, &ios[i]);
		}
		md_drain(&e.e_md, &r);
		UT_EQ(st.s_started, 300, "%s", what);
		UT_EQ(st.s_done, st.s_started, "%s: I/Os lost", what);
		UT_EQ(st.s_bad, 0, "%s: first bad: %s", what, st.s_bad_msg);
		UT_CHECK(e.e_ctx.lock_waits > 0, "%s: nothing ever waited",
			 what);
		for (int i = 0; i < st.s_nr_log; i++) {
			memcpy(e.e_ref + st.s_log[i].wl_pos,
			       st.s_log[i].wl_data, st.s_log[i].wl_len);
			free(st.s_log[i].wl_data);
		}
		env_check_disk(&e, what);
		env_check_idle(&e, what);
		for (int i = 0; i < qd; i++)
			free(ios[i].io_mem);
		env_exit(&e);
	}
}
END_TEST

/*
 * One bounce, many unaligned I/Os started together: all but the first
 * must queue (exactly k - 1 waits), and all must complete correctly.
 */
START_TEST(test_bounce_exhaustion)
{
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (int k = 0; k < NR_CFGS * 2 * 20; k++) {
		int c = k / 40, defer = k / 20 % 2, iter = k % 20;
		uint32_t A = cfgs[c].align;
		struct io ios[12];
		enum bdev_op ops[12];
		uint64_t pos[12];
		size_t len[12];
		int nr = 0, nr_bounced = 0, order[12];
		struct env e;
		char what[64];

		snprintf(what, sizeof(what), "cfg %d %s iter %d", c,
			 defer ? "deferred" : "immediate", iter);
		env_init(&e, &r, A, cfgs[c].mem_align, 32, 4 * A, 1, defer);
		memset(ios, 0, sizeof(ios));
		/* Unaligned reads of blocks 0-7 (never written here). */
		for (int i = 0; i < 4; i++, nr++) {
			ops[nr] = BDEV_READ;
			pos[nr] = (uint64_t)(2 * i) * A +
				  ut_between(&r, 1, A - 1);
			len[nr] = ut_between(&r, 1, A);
		}
		/* Unaligned writes in blocks 16-31, two of them overlapping. */
		for (int i = 0; i < 4; i++, nr++) {
			ops[nr] = BDEV_WRITE;
			pos[nr] = (uint64_t)(16 + 3 * i) * A +
				  ut_between(&r, 1, A - 1);
			len[nr] = ut_between(&r, 1, 2 * A);
		}
		ops[nr] = BDEV_WRITE;
		pos[nr] = pos[nr - 1] + 1;
		len[nr++] = 10;
		/* Aligned ones need no bounce and wait for nothing. */
		ops[nr] = BDEV_READ;
		pos[nr] = 10 * (uint64_t)A;
		len[nr++] = 2 * A;
		ops[nr] = BDEV_WRITE;
		pos[nr] = 29 * (uint64_t)A;
		len[nr++] = 2 * A;
		for (int i = 0; i < nr; i++)
			order[i] = i;
		ut_shuffle(&r, order, nr);
		for (int o = 0; o < nr; o++) {
			int i = order[o];
			bool aligned = !(pos[i] % A) && !(len[i] % A);

			io_buf(&ios[i], len[i], 0);
			if (ops[i] == BDEV_WRITE)
				ut_fill(&r, ios[i].io_buf, len[i]);
			else
				memset(ios[i].io_buf, CANARY, len[i]);
			io_start(&e, &ios[i], ops[i], pos[i], len[i]);
			nr_bounced += !aligned;
		}
		UT_EQ(e.e_ctx.lock_waits, defer ? nr_bounced - 1 : 0, "%s",
		      what);
		md_drain(&e.e_md, &r);
		for (int o = 0; o < nr; o++) {
			/* writes reach the reference in start order */
			int i = order[o];

			UT_EQ(ios[i].io_calls, 1, "%s: io %d", what, i);
			UT_EQ(ios[i].io_res, len[i], "%s: io %d", what, i);
			if (ops[i] == BDEV_READ)
				UT_CHECK(!memcmp(ios[i].io_buf,
						 e.e_ref + pos[i], len[i]),
					 "%s: read %d bytes", what, i);
			else
				memcpy(e.e_ref + pos[i], ios[i].io_buf, len[i]);
			free(ios[i].io_mem);
		}
		env_check_disk(&e, what);
		env_check_idle(&e, what);
		env_exit(&e);
	}
}
END_TEST

/*
 * REGRESSION (blockdev/rw.c, rw_fill; found by this test, now fixed):
 * with bd_mem_align > bd_align (say 512-byte blocks and 4096-byte buffer
 * alignment, which nothing in bdev.h rules out) the tail fill read landed
 * at bounce + (a1 - A - a0), a multiple of bd_align only, so the device
 * got a buffer it cannot do direct I/O from.
 */
START_TEST(test_mem_align_above_align)
{
	static const struct {
		uint64_t pos;
		size_t len;
	} t[] = { { 1535, 2 }, { 100, 1000 }, { 511, 3000 } };
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (size_t c = 0; c < sizeof(t) / sizeof(t[0]); c++) {
		struct env e;
		struct io io = { 0 };
		char what[32];

		snprintf(what, sizeof(what), "case %zu", c);
		env_init(&e, &r, 512, 4096, 16, 4096, 1, false);
		io_buf(&io, t[c].len, 0);
		ut_fill(&r, io.io_buf, t[c].len);
		io_start(&e, &io, BDEV_WRITE, t[c].pos, t[c].len);
		UT_EQ(io.io_res, t[c].len, "%s", what);
		memcpy(e.e_ref + t[c].pos, io.io_buf, t[c].len);
		env_check_disk(&e, what);
		env_check_idle(&e, what);
		free(io.io_mem);
		env_exit(&e);
	}
}
END_TEST

/* Errors from the device reach the caller and release range and bounce. */
START_TEST(test_errors)
{
	enum { A = 512 };
	struct ut_rng r;
	struct env e;
	struct io w1 = { 0 }, w2 = { 0 }, rd = { 0 };

	ut_rng_init(&r, __func__);

	/* Fill read fails: the RMW write is never issued.  An aligned
	 * write queued behind it still runs afterwards. */
	env_init(&e, &r, A, A, 16, 4 * A, 1, true);
	e.e_md.m_fail_op = BDEV_READ;
	e.e_md.m_fail_err = -EIO;
	io_buf(&w1, 100, 0);
	io_buf(&w2, A, 0);
	ut_fill(&r, w1.io_buf, 100);
	ut_fill(&r, w2.io_buf, A);
	io_start(&e, &w1, BDEV_WRITE, 10, 100);
	io_start(&e, &w2, BDEV_WRITE, 0, A);
	UT_EQ(e.e_ctx.lock_waits, 1, "");
	md_drain(&e.e_md, &r);
	UT_EQ(w1.io_calls, 1, "");
	UT_EQ(w1.io_res, -EIO, "");
	UT_EQ(w2.io_calls, 1, "");
	UT_EQ(w2.io_res, A, "");
	UT_EQ(e.e_md.m_nr_req[BDEV_WRITE], 1, "failed RMW still wrote");
	UT_CHECK(w2.io_seq > w1.io_seq, "waiter finished first");
	memcpy(e.e_ref, w2.io_buf, A);
	env_check_disk(&e, "fill fails");
	env_check_idle(&e, "fill fails");
	/* Unaligned read fails too. */
	io_buf(&rd, 50, 0);
	io_start(&e, &rd, BDEV_READ, 700, 50);
	md_drain(&e.e_md, &r);
	UT_EQ(rd.io_res, -EIO, "");
	env_check_idle(&e, "read fails");
	free(w1.io_mem);
	free(w2.io_mem);
	free(rd.io_mem);
	env_exit(&e);

	/* The write fails: aligned and RMW both report it. */
	env_init(&e, &r, A, A, 16, 4 * A, 1, false);
	e.e_md.m_fail_op = BDEV_WRITE;
	e.e_md.m_fail_err = -EIO;
	io_buf(&w1, 3 * A, 0);
	io_start(&e, &w1, BDEV_WRITE, 0, 3 * A);
	UT_EQ(w1.io_res, -EIO, "");
	io_start(&e, &w1, BDEV_WRITE, 5, 3 * A);
	UT_EQ(w1.io_res, -EIO, "");
	io_start(&e, &w1, BDEV_READ, 5, 3 * A);
	UT_EQ(w1.io_res, 3 * A, "");
	UT_CHECK(!memcmp(w1.io_buf, e.e_ref + 5, 3 * A), "read after failures");
	env_check_idle(&e, "write fails");
	free(w1.io_mem);
	env_exit(&e);

	/* Read-only device: writes fail -EROFS, reads work. */
	env_init(&e, &r, A, A, 16, 4 * A, 1, true);
	e.e_md.m_dev.bd_read_only = true;
	io_buf(&w1, 3 * A, 0);
	io_start(&e, &w1, BDEV_WRITE, 5, 100);
	md_drain(&e.e_md, &r);
	UT_EQ(w1.io_res, -EROFS, "");
	io_start(&e, &w1, BDEV_WRITE, 0, A);
	md_drain(&e.e_md, &r);
	UT_EQ(w1.io_res, -EROFS, "");
	io_start(&e, &w1, BDEV_READ, 3, 2 * A);
	md_drain(&e.e_md, &r);
	UT_EQ(w1.io_res, 2 * A, "");
	UT_CHECK(!memcmp(w1.io_buf, e.e_ref + 3, 2 * A), "read-only read");
	env_check_disk(&e, "read-only");
	env_check_idle(&e, "read-only");
	free(w1.io_mem);
	env_exit(&e);
}
END_TEST

/* FLUSH, ZERO and DISCARD through rw. */
START_TEST(test_other_ops)
{
	enum { A = 4096, BLOCKS = 16, S = A * BLOCKS };
	/* clang-format off */
	static const struct {
		int op;
		uint64_t pos, len;
		bool blockdev;
		ssize_t want; /* 1: success */
		uint64_t dev_len; /* bytes the range covers on the device */
		int nr_log;	  /* device requests: 1, or the edge-block RMW */
	} t[] = {
		{ BDEV_FLUSH, 0, 0, false, 1, 0, 1 },
		{ BDEV_FLUSH, S + 5 * A, 0, false, 1, 0, 1 },
		{ BDEV_ZERO, A, 2 * A, false, 1, 2 * A, 1 },
		{ BDEV_ZERO, A, 2 * A, true, 1, 2 * A, 1 },
		{ BDEV_DISCARD, 0, S, true, 1, S, 1 },
		{ BDEV_ZERO, 100, 50, false, 1, 50, 1 },
		{ BDEV_DISCARD, A + 1, A, false, 1, A, 1 },
		/* Whole blocks only: read block 0, write it back zeroed. */
		{ BDEV_ZERO, 100, 50, true, 1, 50, 2 },
		/* Discard [A, 2A), read + write the zeroed tail block. */
		{ BDEV_DISCARD, A, A + 1, true, 1, A + 1, 3 },
		{ BDEV_ZERO, S, A, false, -ENOSPC, 0, 0 },
		{ BDEV_DISCARD, S - A, 2 * A, true, 1, A, 1 },
		{ BDEV_ZERO, S - 10, 100, false, 1, 10, 1 },
	};
	/* clang-format on */
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (size_t c = 0; c < sizeof(t) / sizeof(t[0]); c++) {
		struct env e;
		struct io io = { 0 };
		char what[32];

		snprintf(what, sizeof(what), "case %zu", c);
		env_init(&e, &r, A, A, BLOCKS, 4 * A, 1, c % 2);
		e.e_md.m_dev.bd_is_blockdev = t[c].blockdev;
		e.e_md.m_dev.bd_byte_zero = !t[c].blockdev;
		e.e_md.m_exclusive = true;
		io.io_buf = NULL;
		io_start(&e, &io, (enum bdev_op)t[c].op, t[c].pos, t[c].len);
		md_drain(&e.e_md, &r);
		UT_EQ(io.io_calls, 1, "%s", what);
		if (t[c].want < 0) {
			UT_EQ(io.io_res, t[c].want, "%s", what);
			UT_EQ(e.e_md.m_nr_log, 0, "%s", what);
		} else {
			/* bytes or 0: both are "done" for ops without data */
			UT_CHECK(io.io_res == 0 ||
					 io.io_res == (ssize_t)t[c].dev_len,
				 "%s: res %zd", what, io.io_res);
			UT_EQ(e.e_md.m_nr_log, t[c].nr_log, "%s", what);
			if (t[c].nr_log == 1) {
				UT_EQ(e.e_md.m_log[0].l_op, t[c].op, "%s",
				      what);
				UT_EQ(e.e_md.m_log[0].l_len, t[c].dev_len, "%s",
				      what);
			}
			if (t[c].nr_log == 1 && t[c].op != BDEV_FLUSH)
				UT_EQ(e.e_md.m_log[0].l_pos, t[c].pos, "%s",
				      what);
			if (t[c].op != BDEV_FLUSH)
				memset(e.e_ref + t[c].pos, 0, t[c].dev_len);
		}
		env_check_disk(&e, what);
		env_check_idle(&e, what);
		env_exit(&e);
	}
}
END_TEST

/* Each completion starts the next I/O on the same bdev_rw (reuse from
 * inside rw_done); with immediate completions this nests deeply. */
struct chain {
	struct env *c_env;
	struct ut_rng *c_rng;
	int c_left, c_bad;
	uint64_t c_pos;
	size_t c_len;
	enum bdev_op c_op;
};

static void chain_next(struct io *io)
{
	struct chain *ch = io->io_arg;
	struct env *e = ch->c_env;
	ssize_t want = want_res(e, ch->c_op, ch->c_pos, ch->c_len);

	if (io->io_res != want)
		ch->c_bad++;
	else if (want > 0 && ch->c_op == BDEV_WRITE)
		memcpy(e->e_ref + ch->c_pos, io->io_buf, (size_t)want);
	else if (want > 0 &&
		 memcmp(io->io_buf, e->e_ref + ch->c_pos, (size_t)want))
		ch->c_bad++;
	if (!ch->c_left--)
		return;
	ch->c_op = ut_chance(ch->c_rng, 50) ? BDEV_READ : BDEV_WRITE;
	rand_range(ch->c_rng, e, &ch->c_pos, &ch->c_len);
	if (ch->c_op == BDEV_WRITE)
		ut_fill(ch->c_rng, io->io_buf, ch->c_len);
	io_start(e, io, ch->c_op, ch->c_pos, ch->c_len);
}

START_TEST(test_chain_reuse)
{
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (int defer = 0; defer < 2; defer++) {
		struct env e;
		struct io io = { 0 };
		struct chain ch = { &e, &r, 300, 0, 0, 0, BDEV_READ };

		env_init(&e, &r, 512, 512, 64, 6 * 512, 1, defer);
		io_buf(&io, e.e_max_io + 1, 0);
		io.io_then = chain_next;
		io.io_arg = &ch;
		io_start(&e, &io, BDEV_READ, 0, 0);
		md_drain(&e.e_md, &r);
		UT_EQ(ch.c_left, -1, "defer %d: chain stopped early", defer);
		UT_EQ(ch.c_bad, 0, "defer %d: wrong results", defer);
		env_check_disk(&e, "chain");
		env_check_idle(&e, "chain");
		free(io.io_mem);
		env_exit(&e);
	}
}
END_TEST

/*
 * REGRESSION (blockdev/rw.c, rw_finish; found by this test, now fixed):
 * rw_finish() read rw->rw_ctx after rw->rw_done().  A bdev_rw is
 * "embedded by its owner, reused"; when the owner reuses it from rw_done
 * for I/O on another device, rw_finish woke that device's waiters instead
 * of this one's, and a write queued here behind the finished one was
 * never started.
 */
struct reuse_arg {
	struct env *ra_other;
	unsigned char *ra_buf;
};

static void reuse_on_other(struct io *io)
{
	struct reuse_arg *ra = io->io_arg;

	io->io_then = NULL;
	io->io_buf = ra->ra_buf;
	bdev_rw_start(&ra->ra_other->e_ctx, &io->io_rw, BDEV_READ, 0,
		      ra->ra_buf, ra->ra_other->e_align, io_done, io);
}

START_TEST(test_done_reuses_rw_elsewhere)
{
	struct ut_rng r;
	struct env a, b;
	struct io w1 = { 0 }, w2 = { 0 };
	struct reuse_arg ra;
	unsigned char *rbuf = aligned_alloc(PVEC_PAGE_SIZE, PVEC_PAGE_SIZE);

	ut_rng_init(&r, __func__);
	env_init(&a, &r, 512, 512, 16, 2048, 2, true);
	env_init(&b, &r, 512, 512, 16, 2048, 2, true);
	ra.ra_other = &b;
	ra.ra_buf = rbuf;
	io_buf(&w1, 10, 0);
	io_buf(&w2, 10, 0);
	ut_fill(&r, w1.io_buf, 10);
	ut_fill(&r, w2.io_buf, 10);
	w1.io_then = reuse_on_other;
	w1.io_arg = &ra;
	io_start(&a, &w1, BDEV_WRITE, 10, 10);
	io_start(&a, &w2, BDEV_WRITE, 30, 10); /* same block: waits */
	UT_EQ(a.e_ctx.lock_waits, 1, "");
	md_drain(&a.e_md, &r);
	UT_EQ(w1.io_calls, 1, "");
	UT_EQ(w1.io_res, 10, "");
	UT_EQ(w2.io_calls, 1, "write queued behind a reused rw never ran");
	UT_EQ(w2.io_res, 10, "");
	md_drain(&b.e_md, &r);
	UT_EQ(w1.io_calls, 2, "");
	UT_EQ(w1.io_res, 512, "");
	memcpy(a.e_ref + 10, w1.io_mem, 10);
	memcpy(a.e_ref + 30, w2.io_buf, 10);
	env_check_disk(&a, "a");
	env_check_idle(&a, "a");
	env_check_idle(&b, "b");
	free(w1.io_mem);
	free(w2.io_mem);
	free(rbuf);
	env_exit(&a);
	env_exit(&b);
}
END_TEST

#if defined(__SANITIZE_ADDRESS__)
#define UT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UT_ASAN 1
#endif
#endif

#ifdef UT_ASAN
/*
 * REGRESSION (blockdev/rw.c, rw_finish): same bug, other symptom: an
 * owner that frees its request in rw_done (as bdev_req_complete allows
 * for br_end) made rw_finish read freed memory.  Built only under ASan,
 * which reports the use after free.
 */
static void free_self(struct io *io)
{
	long *seq_out = io->io_arg;

	*seq_out = io->io_seq;
	free(io->io_mem);
	free(io);
}

START_TEST(test_done_frees_rw)
{
	struct ut_rng r;
	struct env e;
	struct io *w1 = calloc(1, sizeof(*w1)), w2 = { 0 };
	long w1_seq = 0;

	ut_rng_init(&r, __func__);
	env_init(&e, &r, 512, 512, 16, 2048, 2, true);
	io_buf(w1, 10, 0);
	io_buf(&w2, 10, 0);
	w1->io_then = free_self;
	w1->io_arg = &w1_seq;
	io_start(&e, w1, BDEV_WRITE, 10, 10);
	io_start(&e, &w2, BDEV_WRITE, 30, 10);
	md_drain(&e.e_md, &r);
	UT_CHECK(w1_seq > 0, "first write never completed");
	UT_EQ(w2.io_calls, 1, "");
	env_check_idle(&e, "free");
	free(w2.io_mem);
	env_exit(&e);
}
END_TEST
#endif

/*
 * Two loops writing one device: an unaligned write on loop A holds the
 * block it patches; an overlapping write on loop B, with a context of its
 * own sharing A's range locks, must wait for it (else A's read-modify-write
 * would put back the bytes B wrote) and must be woken on B, by a message,
 * when A's write ends.  Both rings are real; one thread drives them.
 */
START_TEST(test_two_loops_share_locks)
{
	struct ut_rng r;
	struct env e;
	struct loop lb;
	struct bdev_rw_ctx cb;
	struct io wa = { 0 }, wb = { 0 };
	const uint32_t A = 512;
	int ret;

	ut_rng_init(&r, __func__);
	env_init(&e, &r, A, A, 16, 4 * A, 2, true);
	ret = loop_init(&lb, 16, false);
	if (ret == -ENOSYS || ret == -EPERM) {
		env_exit(&e);
		return;
	}
	ck_assert_int_eq(ret, 0);
	/* env's loop has no ring of its own: give it one for messages. */
	{
		struct loop la_pool = e.e_ring;

		ck_assert_int_eq(loop_init(&e.e_ring, 16, false), 0);
		e.e_ring.pool = la_pool.pool;
		e.e_ring.pool_bytes = la_pool.pool_bytes;
		e.e_ring.pool_used = la_pool.pool_used;
	}
	lb.lp_id = 1;
	lb.pool_bytes = 2 * round_up(4 * A + 2 * A, PVEC_PAGE_SIZE);
	lb.pool = aligned_alloc(PVEC_PAGE_SIZE, lb.pool_bytes);
	ck_assert_int_eq(bdev_rw_ctx_init(&cb, &e.e_md.m_dev, &lb, 4 * A, 2),
			 0);
	bdev_rw_ctx_share(&cb, &e.e_ctx);

	io_buf(&wa, 100, 0);
	io_buf(&wb, A, 0);
	memset(wa.io_buf, 0xaa, 100);
	memset(wb.io_buf, 0xbb, A);
	io_start(&e, &wa, BDEV_WRITE, 100, 100); /* RMW of block 0 */
	UT_EQ(e.e_md.m_nr_q, 1, "A's fill read: %d requests queued",
	      e.e_md.m_nr_q);
	wb.io_calls = 0;
	bdev_rw_start(&cb, &wb.io_rw, BDEV_WRITE, 0, wb.io_buf, A, io_done,
		      &wb);
	UT_EQ(e.e_md.m_nr_q, 1,
	      "B's write of the block A patches went down beside A's (%d queued)",
	      e.e_md.m_nr_q);
	ck_assert(bdev_rw_busy(&cb));
	md_drain(&e.e_md, NULL); /* A's fill, then its write */
	UT_EQ(wa.io_calls, 1, "A's write did not end");
	UT_EQ(e.e_md.m_nr_q, 0, "B's write went down before its wake-up");
	/* The wake-up leaves with A's submit and runs on B. */
	loop_run(&e.e_ring, 0);
	for (int i = 0; i < 100 && !e.e_md.m_nr_q; i++)
		loop_run(&lb, 0);
	UT_EQ(e.e_md.m_nr_q, 1, "B's write was never woken");
	md_drain(&e.e_md, NULL);
	UT_EQ(wb.io_calls, 1, "B's write did not end");
	ck_assert(!bdev_rw_busy(&cb) && !bdev_rw_busy(&e.e_ctx));
	for (uint32_t i = 0; i < A; i++)
		UT_EQ(e.e_md.m_disk[i], 0xbb,
		      "byte %u: %#x, not B's (A's RMW put old bytes back)", i,
		      e.e_md.m_disk[i]);
	free(wa.io_mem);
	free(wb.io_mem);
	bdev_rw_ctx_exit(&cb);
	free(lb.pool);
	lb.pool = NULL;
	loop_exit(&lb);
	{
		char *p = e.e_ring.pool;

		e.e_ring.pool = NULL;
		loop_exit(&e.e_ring);
		e.e_ring.pool = p;
	}
	env_exit(&e);
}
END_TEST

Suite *rw_suite(void)
{
	Suite *s = suite_create("rw");
	TCase *tc = tcase_create("rw");

	tcase_set_timeout(tc, UT_TIMEOUT_SEC);
	tcase_add_test(tc, test_ctx_init);
	tcase_add_test(tc, test_matrix);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_random_serial);
	tcase_add_test(tc, test_concurrent_disjoint);
	tcase_add_test(tc, test_concurrent_overlap);
	tcase_add_test(tc, test_steady_load);
	tcase_add_test(tc, test_bounce_exhaustion);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_other_ops);
	tcase_add_test(tc, test_chain_reuse);
	tcase_add_test(tc, test_done_reuses_rw_elsewhere);
	tcase_add_test(tc, test_mem_align_above_align);
#ifdef UT_ASAN
	tcase_add_test(tc, test_done_frees_rw);
#endif
	tcase_add_test(tc, test_two_loops_share_locks);
	suite_add_tcase(s, tc);
	return s;
}
