/* test_bdev: request re-slicing, completion stacking and per-device
 * accounting, driven by fake backends (no I/O): a leaf that records
 * requests and completes them at once or when the test says, in any
 * order, with chosen errors, and a layer that splits what it is given. */
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAKE_MAX 512
#define DATA_BYTES (64u << 10)
#define MAX_VEC 64

/* ---- a leaf backend ---- */

/**
 * struct fake - a leaf device.  Deferred: requests wait in @f_q until the
 * test completes them.  Immediate: completed inside submit with
 * @f_err(req)'s error.
 */
struct fake {
	struct bdev f_dev;
	bool f_defer;
	struct bdev_req *f_q[FAKE_MAX];
	int f_nr_q;
	int f_nr_submit;
	int (*f_err)(struct bdev_req *req);
};

static void fake_submit(struct bdev *dev, struct bdev_req *req)
{
	struct fake *f = (struct fake *)dev;

	UT_CHECK(f->f_nr_q < FAKE_MAX, "fake: too many requests queued");
	UT_CHECK(req->br_dev == dev, "submit: br_dev not set");
	f->f_nr_submit++;
	if (f->f_defer) {
		f->f_q[f->f_nr_q++] = req;
		return;
	}
	bdev_req_complete(req, f->f_err ? f->f_err(req) : 0);
}

static void fake_destroy(struct bdev *dev)
{
	(void)dev;
}

static const struct bdev_ops fake_ops = {
	.submit = fake_submit,
	.destroy = fake_destroy,
};

static void fake_init(struct fake *f, bool defer)
{
	memset(f, 0, sizeof(*f));
	f->f_dev.bd_ops = &fake_ops;
	f->f_dev.bd_name = "fake";
	f->f_dev.bd_size = 1ull << 40;
	f->f_dev.bd_align = 512;
	f->f_dev.bd_mem_align = 512;
	f->f_defer = defer;
}

/* Complete the @idx'th queued request (queue order kept) with @err. */
static void fake_complete(struct fake *f, int idx, int err)
{
	struct bdev_req *req = f->f_q[idx];

	memmove(&f->f_q[idx], &f->f_q[idx + 1],
		(size_t)(f->f_nr_q - idx - 1) * sizeof(f->f_q[0]));
	f->f_nr_q--;
	bdev_req_complete(req, err);
}

/* ---- requests with a record of their completion ---- */

/**
 * struct node - a request plus what its br_end saw.  @n_want_err is the
 * error its backend completes it with.
 */
struct node {
	struct bdev_req n_req;
	int n_want_err;
	int n_end_calls;
	long n_end_seq; /* event number of the (last) br_end call */
	int n_err_at_end;
	uint64_t n_off, n_len; /* place in its parent's range */
};

static long seq; /* event counter for "happened before" checks */

static void node_end(struct bdev_req *req)
{
	struct node *n = req->br_private;

	n->n_end_calls++;
	n->n_end_seq = ++seq;
	n->n_err_at_end = req->br_error;
}

static int node_err(struct bdev_req *req)
{
	return ((struct node *)req->br_private)->n_want_err;
}

static int rand_err(struct ut_rng *r, unsigned pct)
{
	static const int errs[] = { -EIO, -ENOSPC, -EINVAL, -ENODATA, -EROFS };

	return ut_chance(r, pct) ? errs[ut_below(r, 5)] : 0;
}

static unsigned char *data; /* DATA_BYTES random bytes parents describe */

static void bdev_setup(void)
{
	struct ut_rng r;

	ut_rng_init(&r, "bdev data");
	data = aligned_alloc(PVEC_PAGE_SIZE, DATA_BYTES);
	ck_assert_ptr_nonnull(data);
	ut_fill(&r, data, DATA_BYTES);
	seq = 0;
}

static void bdev_teardown(void)
{
	free(data);
}

/*
 * A parent vector over data[*off, *off + len) split into segments of at
 * most a random size; returns the segment count.
 */
static int rand_vec(struct ut_rng *r, struct pvec *vec, size_t len, size_t *off)
{
	size_t max_seg = ut_between(r, len / (MAX_VEC - 1) + 1, 9000);
	int nr;

	*off = ut_below(r, DATA_BYTES - len + 1);
	nr = pvec_from_buf(vec, MAX_VEC, data + *off, len, max_seg);
	UT_CHECK(nr >= 0, "pvec_from_buf: %d", nr);
	return nr;
}

/*
 * check_child() - @c must be the part [off, off + len) of @p at @pos: same
 * vector array (re-slice, no copy), its iterator over the right bytes at
 * the right addresses (@p_addr: where @p's first byte lives; parents here
 * describe one contiguous buffer), one reference held on @p.
 */
static void check_child(const struct bdev_req *p, const unsigned char *p_addr,
			const struct node *c, uint64_t pos, const char *what)
{
	const struct bdev_req *q = &c->n_req;
	static unsigned char tmp[DATA_BYTES];
	struct iovec iov[2];

	UT_CHECK(q->br_vec == p->br_vec, "%s: child has its own vector", what);
	UT_CHECK(q->br_parent == p, "%s: br_parent", what);
	UT_EQ(q->br_op, p->br_op, "%s", what);
	UT_EQ(q->br_pos, pos, "%s", what);
	UT_EQ(q->br_len, c->n_len, "%s", what);
	/* Ops without data carry no range in the iterator. */
	UT_EQ(q->br_iter.pi_size, p->br_vec ? c->n_len : 0, "%s", what);
	UT_EQ(q->br_pending, 1, "%s", what);
	UT_EQ(q->br_error, 0, "%s", what);
	UT_CHECK(q->br_end == node_end && q->br_private == c, "%s: end/private",
		 what);
	UT_CHECK(q->br_dev == NULL, "%s: br_dev before submit", what);
	if (!p->br_vec)
		return;
	UT_EQ(pvec_copy_to(tmp, q->br_vec, q->br_iter, SIZE_MAX), c->n_len,
	      "%s", what);
	UT_CHECK(!memcmp(tmp, p_addr + c->n_off, c->n_len), "%s: bytes", what);
	UT_EQ(pvec_to_iovec(q->br_vec, q->br_iter, iov, 2), c->n_len ? 1 : 0,
	      "%s: a slice of one buffer is one iovec", what);
	if (c->n_len)
		UT_CHECK(iov[0].iov_base == p_addr + c->n_off &&
				 iov[0].iov_len == c->n_len,
			 "%s: child points at %p+%zu, want %p+%llu", what,
			 iov[0].iov_base, iov[0].iov_len,
			 (void *)(p_addr + c->n_off),
			 (unsigned long long)c->n_len);
}

/* N cut points: children [cut[i], cut[i + 1]) with cut[0] = 0, cut[N] = len. */
static void rand_cuts(struct ut_rng *r, uint64_t *cut, int n, uint64_t len)
{
	cut[0] = 0;
	cut[n] = len;
	for (int i = 1; i < n; i++)
		cut[i] = ut_below(r, len + 1);
	/* insertion sort: n is small */
	for (int i = 2; i < n; i++)
		for (int j = i; j > 1 && cut[j - 1] > cut[j]; j--) {
			uint64_t t = cut[j];

			cut[j] = cut[j - 1];
			cut[j - 1] = t;
		}
}

/* ---- tests ---- */

START_TEST(test_req_init)
{
	struct pvec vec[1];
	struct pvec_iter it;
	struct bdev_req req;
	int tag;

	ck_assert_int_eq(pvec_from_buf(vec, 1, data, 4096, 0), 1);
	it = pvec_iter_init(vec, 1);
	memset(&req, 0xa5, sizeof(req));
	bdev_req_init(&req, BDEV_WRITE, 8192, 4096, vec, it, node_end, &tag);
	ck_assert_ptr_eq(req.br_vec, vec);
	ck_assert_uint_eq(req.br_iter.pi_size, 4096);
	ck_assert_uint_eq(req.br_pos, 8192);
	ck_assert_uint_eq(req.br_len, 4096);
	ck_assert_int_eq(req.br_op, BDEV_WRITE);
	ck_assert_int_eq(req.br_error, 0);
	ck_assert_uint_eq(req.br_pending, 1);
	ck_assert_ptr_null(req.br_parent);
	ck_assert_ptr_null(req.br_dev);
	ck_assert_ptr_eq(req.br_private, &tag);
	ck_assert_ptr_eq(req.br_iov, req.br_iov_inline);
	ck_assert_int_eq(req.br_iov_max, BDEV_REQ_INLINE_IOV);
}
END_TEST

START_TEST(test_op_names)
{
	/* clang-format off */
	static const struct {
		int op;
		const char *name;
	} t[] = {
		{ BDEV_READ, "read" },	       { BDEV_WRITE, "write" },
		{ BDEV_FLUSH, "flush" },       { BDEV_DISCARD, "discard" },
		{ BDEV_ZERO, "write_zeroes" }, { BDEV_NR_OPS, "?" },
		{ 99, "?" },
	};
	/* clang-format on */

	for (size_t c = 0; c < sizeof(t) / sizeof(t[0]); c++)
		ck_assert_str_eq(bdev_op_name((enum bdev_op)t[c].op),
				 t[c].name);
}
END_TEST

START_TEST(test_child_range)
{
	/* clang-format off */
	static const struct {
		uint64_t off, len;
		int want;
	} t[] = {
		{ 0, 100, 0 }, { 100, 0, 0 }, { 40, 60, 0 },
		{ 101, 0, -ERANGE }, { 0, 101, -ERANGE }, { 50, 51, -ERANGE },
		{ 1, UINT64_MAX, -ERANGE }, { UINT64_MAX, 1, -ERANGE },
		{ UINT64_MAX, 0, -ERANGE },
	};
	/* clang-format on */
	struct pvec vec[4];
	struct node p, c;
	int nr = pvec_from_buf(vec, 4, data + 10, 100, 30);

	ck_assert_int_eq(nr, 4);
	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		uint32_t pending;
		char what[32];

		bdev_req_init(&p.n_req, BDEV_READ, 0, 100, vec,
			      pvec_iter_init(vec, nr), node_end, &p);
		pending = p.n_req.br_pending;
		memset(&c, 0, sizeof(c));
		c.n_off = t[k].off;
		c.n_len = t[k].len;
		UT_EQ(bdev_req_child(&p.n_req, &c.n_req, t[k].off, t[k].len,
				     777, node_end, &c),
		      t[k].want, "case %zu", k);
		UT_EQ(p.n_req.br_pending, pending + !t[k].want,
		      "case %zu: reference on the parent", k);
		snprintf(what, sizeof(what), "case %zu", k);
		if (!t[k].want)
			check_child(&p.n_req, data + 10, &c, 777, what);
	}

	/* No vector (discard): the child has none either, only a range. */
	bdev_req_init(&p.n_req, BDEV_DISCARD, 4096, 1 << 20, NULL,
		      (struct pvec_iter){ 0 }, node_end, &p);
	memset(&c, 0, sizeof(c));
	c.n_off = 4096;
	c.n_len = 8192;
	ck_assert_int_eq(bdev_req_child(&p.n_req, &c.n_req, 4096, 8192, 12288,
					node_end, &c),
			 0);
	check_child(&p.n_req, NULL, &c, 12288, "discard");
	ck_assert_ptr_null(c.n_req.br_vec);
	ck_assert_int_eq(c.n_req.br_op, BDEV_DISCARD);
	ck_assert_int_eq(bdev_req_child(&p.n_req, &c.n_req, 1 << 20, 1, 0,
					node_end, &c),
			 -ERANGE);
}
END_TEST

/*
 * One parent, N children on a leaf, completions immediate (inside submit,
 * in submit order) or deferred (random order); the splitter's own
 * reference is dropped after a random number of child completions.  The
 * parent's br_end runs exactly once, after every child's, with the error
 * that completed first.
 */
START_TEST(test_split_complete_random)
{
	enum { MAX_KIDS = 16 };
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (int iter = 0; iter < 600; iter++) {
		struct node p, kids[MAX_KIDS];
		struct pvec vec[MAX_VEC];
		uint64_t cut[MAX_KIDS + 1], pos[MAX_KIDS];
		int order[MAX_KIDS], n = (int)ut_between(&r, 1, MAX_KIDS);
		size_t len = ut_below(&r, 60000), off;
		int nr = rand_vec(&r, vec, len, &off), drop_after,
		    first_err = 0;
		int nr_err = 0, done = 0;
		enum bdev_op op = ut_chance(&r, 50) ? BDEV_READ : BDEV_WRITE;
		bool defer = ut_chance(&r, 60), dropped = false;
		struct fake f;
		char what[48];

		fake_init(&f, defer);
		f.f_err = node_err;
		memset(&p, 0, sizeof(p));
		bdev_req_init(&p.n_req, op, ut_below(&r, 1 << 30), len, vec,
			      pvec_iter_init(vec, nr), node_end, &p);
		rand_cuts(&r, cut, n, len);
		for (int i = 0; i < n; i++) {
			struct node *k = &kids[i];

			memset(k, 0, sizeof(*k));
			k->n_off = cut[i];
			k->n_len = cut[i + 1] - cut[i];
			k->n_want_err = rand_err(&r, 25);
			pos[i] = ut_below(&r, 1ull << 40);
			UT_EQ(bdev_req_child(&p.n_req, &k->n_req, k->n_off,
					     k->n_len, pos[i], node_end, k),
			      0, "iter %d kid %d", iter, i);
			snprintf(what, sizeof(what), "iter %d kid %d", iter, i);
			check_child(&p.n_req, data + off, k, pos[i], what);
			order[i] = i;
			nr_err += !!k->n_want_err;
		}
		UT_EQ(p.n_req.br_pending, n + 1, "iter %d", iter);
		drop_after = (int)ut_between(&r, 0, n);
		if (defer)
			ut_shuffle(&r, order, n);

		for (int i = 0; i <= n; i++) {
			if (i == drop_after) {
				UT_EQ(p.n_end_calls, 0, "iter %d: early", iter);
				bdev_req_complete(&p.n_req, 0);
				dropped = true;
			}
			if (i == n)
				break;
			if (!defer) {
				bdev_submit(&f.f_dev, &kids[i].n_req);
			} else {
				if (i == 0)
					for (int j = 0; j < n; j++)
						bdev_submit(&f.f_dev,
							    &kids[j].n_req);
				for (int j = 0; j < f.f_nr_q; j++)
					if (f.f_q[j] == &kids[order[i]].n_req) {
						fake_complete(&f, j,
							      kids[order[i]]
								      .n_want_err);
						break;
					}
			}
			done++;
			if (!first_err)
				first_err = kids[order[i]].n_want_err;
			UT_EQ(kids[order[i]].n_end_calls, 1,
			      "iter %d kid %d not completed", iter, order[i]);
			UT_EQ(p.n_end_calls, dropped && done == n ? 1 : 0,
			      "iter %d: parent after %d/%d kids, dropped %d",
			      iter, done, n, dropped);
		}
		UT_EQ(p.n_end_calls, 1, "iter %d", iter);
		UT_EQ(p.n_req.br_pending, 0, "iter %d", iter);
		UT_EQ(p.n_err_at_end, first_err, "iter %d: first error", iter);
		UT_EQ(p.n_req.br_error, first_err, "iter %d", iter);
		for (int i = 0; i < n; i++) {
			UT_EQ(kids[i].n_end_calls, 1, "iter %d kid %d", iter,
			      i);
			UT_EQ(kids[i].n_err_at_end, kids[i].n_want_err,
			      "iter %d kid %d", iter, i);
			UT_CHECK(kids[i].n_end_seq < p.n_end_seq,
				 "iter %d: parent ended before kid %d", iter,
				 i);
		}
		UT_EQ(f.f_dev.bd_stats.ops[op], n, "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.bytes[op], len, "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.inflight, 0, "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.inflight_max, defer ? n : 1, "iter %d",
		      iter);
		UT_EQ(f.f_dev.bd_stats.errors, nr_err, "iter %d", iter);
	}
}
END_TEST

/*
 * Three levels: P -> C[i] -> G[i][j]; only grandchildren reach the leaf
 * and complete in random order.  Expected results come from a model of the
 * rules: a node ends when its last child ends; its error is the error of
 * the first of its children to end with one.
 */
START_TEST(test_three_levels)
{
	enum { NC = 4, NG = 4 };
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	for (int iter = 0; iter < 400; iter++) {
		struct node p, c[NC], g[NC][NG];
		struct pvec vec[MAX_VEC];
		uint64_t cut[NC + 1], gcut[NG + 1];
		int nc = (int)ut_between(&r, 1, NC), ng[NC], total = 0;
		int order[NC * NG];
		long c_last[NC] = { 0 }, c_first_err_t[NC] = { 0 };
		int c_err[NC] = { 0 }, p_err = 0;
		long p_first_err_t = 0;
		size_t len = ut_below(&r, 60000), off;
		int nr = rand_vec(&r, vec, len, &off);
		struct fake f;

		fake_init(&f, true);
		memset(&p, 0, sizeof(p));
		bdev_req_init(&p.n_req, BDEV_WRITE, 0, len, vec,
			      pvec_iter_init(vec, nr), node_end, &p);
		rand_cuts(&r, cut, nc, len);
		for (int i = 0; i < nc; i++) {
			memset(&c[i], 0, sizeof(c[i]));
			c[i].n_off = cut[i];
			c[i].n_len = cut[i + 1] - cut[i];
			UT_EQ(bdev_req_child(&p.n_req, &c[i].n_req, c[i].n_off,
					     c[i].n_len, c[i].n_off, node_end,
					     &c[i]),
			      0, "iter %d", iter);
			ng[i] = (int)ut_between(&r, 1, NG);
			rand_cuts(&r, gcut, ng[i], c[i].n_len);
			for (int j = 0; j < ng[i]; j++) {
				struct node *k = &g[i][j];
				char what[48];

				memset(k, 0, sizeof(*k));
				k->n_off = gcut[j];
				k->n_len = gcut[j + 1] - gcut[j];
				k->n_want_err = rand_err(&r, 20);
				UT_EQ(bdev_req_child(&c[i].n_req, &k->n_req,
						     k->n_off, k->n_len, 0,
						     node_end, k),
				      0, "iter %d", iter);
				/* Re-sliced twice, still the top's array. */
				UT_CHECK(k->n_req.br_vec == vec,
					 "iter %d: grandchild vector copied",
					 iter);
				snprintf(what, sizeof(what), "iter %d g%d.%d",
					 iter, i, j);
				check_child(&c[i].n_req,
					    data + off + c[i].n_off, k, 0,
					    what);
				order[total++] = i * NG + j;
			}
		}
		for (int i = 0; i < total; i++) {
			int ci = order[i] / NG, gj = order[i] % NG;

			bdev_submit(&f.f_dev, &g[ci][gj].n_req);
		}
		/* Every splitter lets go before anything completes. */
		for (int i = 0; i < nc; i++)
			bdev_req_complete(&c[i].n_req, 0);
		bdev_req_complete(&p.n_req, 0);
		UT_EQ(p.n_end_calls, 0, "iter %d", iter);

		ut_shuffle(&r, order, total);
		for (int t = 0; t < total; t++) {
			int ci = order[t] / NG, gj = order[t] % NG;
			struct node *k = &g[ci][gj];

			for (int q = 0; q < f.f_nr_q; q++)
				if (f.f_q[q] == &k->n_req) {
					fake_complete(&f, q, k->n_want_err);
					break;
				}
			UT_EQ(k->n_end_calls, 1, "iter %d", iter);
			/* model */
			c_last[ci] = t + 1;
			if (k->n_want_err && !c_first_err_t[ci]) {
				c_first_err_t[ci] = t + 1;
				c_err[ci] = k->n_want_err;
			}
		}
		for (int i = 0; i < nc; i++)
			if (c_err[i] &&
			    (!p_first_err_t || c_last[i] < p_first_err_t)) {
				p_first_err_t = c_last[i];
				p_err = c_err[i];
			}
		for (int i = 0; i < nc; i++) {
			UT_EQ(c[i].n_end_calls, 1, "iter %d c%d", iter, i);
			UT_EQ(c[i].n_err_at_end, c_err[i], "iter %d c%d", iter,
			      i);
			UT_CHECK(c[i].n_end_seq < p.n_end_seq,
				 "iter %d: P ended before c%d", iter, i);
			for (int j = 0; j < ng[i]; j++)
				UT_CHECK(g[i][j].n_end_seq < c[i].n_end_seq,
					 "iter %d: c%d ended before g%d", iter,
					 i, j);
		}
		UT_EQ(p.n_end_calls, 1, "iter %d", iter);
		UT_EQ(p.n_err_at_end, p_err, "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.ops[BDEV_WRITE], total, "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.bytes[BDEV_WRITE], len, "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.inflight, 0, "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.inflight_max, total, "iter %d", iter);
	}
}
END_TEST

/* Children that complete inside submit, before the splitter has let go:
 * the parent must wait for the splitter and then end exactly once. */
START_TEST(test_sync_complete_before_drop)
{
	/* clang-format off */
	static const int errs[][3] = {
		{ 0, 0, 0 },
		{ 0, -EIO, 0 },
		{ -ENOSPC, -EIO, 0 },
		{ 0, 0, -EINVAL },
	};
	/* clang-format on */

	for (size_t c = 0; c < sizeof(errs) / sizeof(errs[0]); c++) {
		struct pvec vec[4];
		struct node p, k[3];
		struct fake f;
		int nr = pvec_from_buf(vec, 4, data, 3000, 1024), want = 0;

		fake_init(&f, false);
		f.f_err = node_err;
		memset(&p, 0, sizeof(p));
		bdev_req_init(&p.n_req, BDEV_READ, 0, 3000, vec,
			      pvec_iter_init(vec, nr), node_end, &p);
		for (int i = 0; i < 3; i++) {
			memset(&k[i], 0, sizeof(k[i]));
			k[i].n_want_err = errs[c][i];
			if (!want)
				want = errs[c][i];
			ck_assert_int_eq(bdev_req_child(&p.n_req, &k[i].n_req,
							(uint64_t)i * 1000,
							1000,
							(uint64_t)i * 1000,
							node_end, &k[i]),
					 0);
			bdev_submit(&f.f_dev, &k[i].n_req);
			UT_EQ(k[i].n_end_calls, 1, "case %zu kid %d", c, i);
			UT_EQ(p.n_end_calls, 0,
			      "case %zu: parent ended while "
			      "still being split",
			      c);
		}
		UT_EQ(p.n_req.br_pending, 1, "case %zu", c);
		bdev_req_complete(&p.n_req, 0);
		UT_EQ(p.n_end_calls, 1, "case %zu", c);
		UT_EQ(p.n_err_at_end, want, "case %zu", c);
		UT_EQ(f.f_dev.bd_stats.inflight, 0, "case %zu", c);
		UT_EQ(f.f_dev.bd_stats.errors,
		      (errs[c][0] != 0) + (errs[c][1] != 0) + (errs[c][2] != 0),
		      "case %zu", c);
	}
}
END_TEST

/* ---- a splitting layer, stacked ---- */

/* Kids a layer makes live on the heap and free themselves in br_end:
 * bdev_req_complete must not touch a request after its br_end. */
static int layer_kid_ends, layer_kid_err_pct, layer_leaf_errs, layer_first_err;
static struct ut_rng layer_rng;

struct layer {
	struct bdev l_dev;
	struct bdev *l_lower;
	int l_nr_split;
};

static void kid_end(struct bdev_req *req)
{
	layer_kid_ends++;
	memset(req, 0x6b, sizeof(*req));
	free(req);
}

/* The error a leaf completes with, tallied in completion order. */
static int leaf_err(struct bdev_req *req)
{
	int e = rand_err(&layer_rng, (unsigned)layer_kid_err_pct);

	(void)req;
	if (e && !layer_first_err)
		layer_first_err = e;
	layer_leaf_errs += !!e;
	return e;
}

static void layer_submit(struct bdev *dev, struct bdev_req *req)
{
	struct layer *l = (struct layer *)dev;
	uint64_t piece = req->br_len / (uint64_t)l->l_nr_split;

	for (int i = 0; i < l->l_nr_split; i++) {
		uint64_t off = (uint64_t)i * piece;
		uint64_t len = i == l->l_nr_split - 1 ? req->br_len - off :
							piece;
		struct bdev_req *kid = malloc(sizeof(*kid));

		UT_CHECK(kid != NULL, "malloc");
		UT_EQ(bdev_req_child(req, kid, off, len, req->br_pos + off,
				     kid_end, NULL),
		      0, "layer split");
		bdev_submit(l->l_lower, kid);
	}
	bdev_req_complete(req, 0);
}

static const struct bdev_ops layer_ops = {
	.submit = layer_submit,
	.destroy = fake_destroy,
};

/* top -> layer(a) -> [layer(b) ->] leaf; immediate or deferred leaf. */
START_TEST(test_layer_stack)
{
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	ut_rng_init(&layer_rng, "leaf errors");
	for (int iter = 0; iter < 200; iter++) {
		int depth = (int)ut_between(&r, 1, 2);
		int na = (int)ut_between(&r, 1, 5),
		    nb = (int)ut_between(&r, 1, 5);
		int leaves = depth == 1 ? na : na * nb;
		bool defer = ut_chance(&r, 50);
		struct layer a = { 0 }, b = { 0 };
		struct pvec vec[MAX_VEC];
		size_t len = ut_between(&r, 100, 60000), off;
		int nr = rand_vec(&r, vec, len, &off);
		struct node top;
		struct fake f;

		fake_init(&f, defer);
		f.f_err = leaf_err;
		layer_kid_err_pct = ut_chance(&r, 50) ? 30 : 0;
		layer_kid_ends = layer_leaf_errs = layer_first_err = 0;
		a.l_dev.bd_ops = b.l_dev.bd_ops = &layer_ops;
		a.l_nr_split = na;
		b.l_nr_split = nb;
		b.l_lower = &f.f_dev;
		a.l_lower = depth == 1 ? &f.f_dev : &b.l_dev;

		memset(&top, 0, sizeof(top));
		bdev_req_init(&top.n_req, BDEV_READ, 4096, len, vec,
			      pvec_iter_init(vec, nr), node_end, &top);
		bdev_submit(&a.l_dev, &top.n_req);
		UT_EQ(f.f_nr_submit, leaves, "iter %d", iter);
		if (defer) {
			UT_EQ(top.n_end_calls, 0, "iter %d", iter);
			UT_EQ(a.l_dev.bd_stats.inflight, 1, "iter %d", iter);
			while (f.f_nr_q) {
				int q = (int)ut_below(&r, (uint64_t)f.f_nr_q);

				fake_complete(&f, q, leaf_err(f.f_q[q]));
			}
		}
		UT_EQ(top.n_end_calls, 1, "iter %d", iter);
		UT_EQ(layer_kid_ends, depth == 1 ? na : na + na * nb, "iter %d",
		      iter);
		UT_EQ(!!top.n_err_at_end, layer_leaf_errs > 0, "iter %d", iter);
		/* Immediate leaves end in submit order, and so do the middle
		 * requests; deferred with one level the leaves are the kids. */
		if (!defer || depth == 1)
			UT_EQ(top.n_err_at_end, layer_first_err, "iter %d",
			      iter);
		UT_EQ(a.l_dev.bd_stats.ops[BDEV_READ], 1, "iter %d", iter);
		UT_EQ(a.l_dev.bd_stats.bytes[BDEV_READ], len, "iter %d", iter);
		UT_EQ(a.l_dev.bd_stats.inflight, 0, "iter %d", iter);
		UT_EQ(a.l_dev.bd_stats.inflight_max, 1, "iter %d", iter);
		UT_EQ(a.l_dev.bd_stats.errors, layer_leaf_errs > 0, "iter %d",
		      iter);
		UT_EQ(f.f_dev.bd_stats.ops[BDEV_READ], leaves, "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.bytes[BDEV_READ], len, "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.inflight, 0, "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.inflight_max, defer ? leaves : 1,
		      "iter %d", iter);
		UT_EQ(f.f_dev.bd_stats.errors, layer_leaf_errs, "iter %d",
		      iter);
		if (depth == 2) {
			UT_EQ(b.l_dev.bd_stats.ops[BDEV_READ], na, "iter %d",
			      iter);
			UT_EQ(b.l_dev.bd_stats.inflight, 0, "iter %d", iter);
		}
	}
}
END_TEST

/* Random submits and completions; the counters must match a tally. */
START_TEST(test_accounting_random)
{
	enum { NODES = 48 };
	struct ut_rng r;
	struct node nodes[NODES];
	struct pvec vecs[NODES][1];
	bool busy[NODES] = { false };
	struct bdev_stats want = { 0 };
	uint64_t lat_n[2] = { 0, 0 };
	struct fake f;

	ut_rng_init(&r, __func__);
	fake_init(&f, true);
	for (int step = 0; step < 3000; step++) {
		int i = (int)ut_below(&r, NODES);
		const struct bdev_stats *st = &f.f_dev.bd_stats;

		if (!busy[i]) {
			enum bdev_op op =
				(enum bdev_op)ut_below(&r, BDEV_NR_OPS);
			uint64_t len = op == BDEV_FLUSH ? 0 :
							  ut_below(&r, 1 << 20);
			struct pvec *vec = vecs[i];
			struct pvec_iter it = { 0 };
			const struct pvec *v = NULL;

			if (op == BDEV_READ || op == BDEV_WRITE) {
				len = ut_below(&r, DATA_BYTES);
				ck_assert_int_ge(pvec_from_buf(vec, 1, data,
							       len, 0),
						 0);
				it = pvec_iter_init(vec, 1);
				v = vec;
			}
			memset(&nodes[i], 0, sizeof(nodes[i]));
			bdev_req_init(&nodes[i].n_req, op,
				      ut_below(&r, 1 << 30), len, v, it,
				      node_end, &nodes[i]);
			bdev_submit(&f.f_dev, &nodes[i].n_req);
			busy[i] = true;
			want.ops[op]++;
			want.bytes[op] += len;
			if (++want.inflight > want.inflight_max)
				want.inflight_max = want.inflight;
		} else {
			int e = rand_err(&r, 30);

			for (int q = 0; q < f.f_nr_q; q++)
				if (f.f_q[q] == &nodes[i].n_req) {
					fake_complete(&f, q, e);
					break;
				}
			UT_EQ(nodes[i].n_end_calls, 1, "step %d", step);
			UT_EQ(nodes[i].n_err_at_end, e, "step %d", step);
			busy[i] = false;
			want.inflight--;
			want.errors += !!e;
			if (nodes[i].n_req.br_op <= BDEV_WRITE)
				lat_n[nodes[i].n_req.br_op]++;
		}
		/* Every completed read and write, and only those, is timed. */
		for (int d = 0; d < 2; d++) {
			uint64_t n = 0;

			for (int b = 0; b < BDEV_LAT_BUCKETS; b++)
				n += st->lat[d].hist[b];
			UT_EQ(n, lat_n[d], "step %d dir %d", step, d);
		}
		for (int op = 0; op < BDEV_NR_OPS; op++) {
			UT_EQ(st->ops[op], want.ops[op], "step %d op %d", step,
			      op);
			UT_EQ(st->bytes[op], want.bytes[op], "step %d op %d",
			      step, op);
		}
		UT_EQ(st->inflight, want.inflight, "step %d", step);
		UT_EQ(st->inflight_max, want.inflight_max, "step %d", step);
		UT_EQ(st->errors, want.errors, "step %d", step);
	}
	ck_assert_uint_gt(want.inflight_max, 10);
}
END_TEST

/* Summed over loops, the high-water mark of requests in flight is at
 * least the total in flight at any sum, and does not fall after it: each
 * loop's own mark is only its share (two loops at 3 each had 6 in flight,
 * and the sum said 3). */
START_TEST(test_stats_sum_mark)
{
	struct bdev_stats *sh[2];
	struct bdev_stats sum;
	struct fake f;

	fake_init(&f, true);
	ck_assert_int_eq(bdev_share(&f.f_dev, 2, NULL), 0);
	sh[0] = &f.f_dev.bd_stats;
	sh[1] = &f.f_dev.bd_stats_more[0];
	for (int i = 0; i < 3; i++)
		for (int s = 0; s < 2; s++)
			bdev_stat_enter(&sh[s]->inflight, &sh[s]->inflight_max);
	bdev_stats_sum(&f.f_dev, &sum);
	UT_EQ(sum.inflight, 6, "in flight over two loops");
	UT_EQ(sum.inflight_max, 6, "high-water mark with 6 in flight");
	for (int i = 0; i < 3; i++)
		for (int s = 0; s < 2; s++)
			bdev_stat_leave(&sh[s]->inflight);
	bdev_stats_sum(&f.f_dev, &sum);
	UT_EQ(sum.inflight, 0, "in flight once all ended");
	UT_EQ(sum.inflight_max, 6, "high-water mark once all ended");
	free(f.f_dev.bd_stats_more);
	f.f_dev.bd_stats_more = NULL;
}
END_TEST

/* Latency buckets tile the line without gaps, each at most 1/8 of its
 * lower bound wide, so percentiles read from them are within 12.5%. */
START_TEST(test_lat_buckets)
{
	struct ut_rng r;

	for (int b = 0; b + 1 < BDEV_LAT_BUCKETS; b++) {
		uint64_t lo = bdev_lat_lower(b), hi = bdev_lat_lower(b + 1);

		ck_assert_uint_lt(lo, hi);
		UT_EQ(bdev_lat_bucket(lo), b, "lower bound of %d", b);
		UT_EQ(bdev_lat_bucket(hi - 1), b, "upper end of %d", b);
		if (b >= 8)
			ck_assert_uint_le((hi - lo) * 8, lo);
	}
	ut_rng_init(&r, __func__);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = ut_below(&r, 1ull << (1 + ut_below(&r, 40)));
		int b = bdev_lat_bucket(v);

		ck_assert_uint_le(bdev_lat_lower(b), v);
		if (b + 1 < BDEV_LAT_BUCKETS)
			ck_assert_uint_lt(v, bdev_lat_lower(b + 1));
	}
	UT_EQ(bdev_lat_bucket(UINT64_MAX), BDEV_LAT_BUCKETS - 1, "clamp");
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Percentiles from the histogram against the exact order statistic. */
START_TEST(test_lat_percentile)
{
	enum { N = 5000 };
	static const double qs[] = { 0.01, 0.5, 0.9, 0.99, 0.999, 1.0 };
	static uint64_t v[N], hist[BDEV_LAT_BUCKETS];
	struct ut_rng r;

	ut_rng_init(&r, __func__);
	UT_EQ(bdev_lat_percentile(hist, 0.5), 0, "empty");
	for (int round = 0; round < 20; round++) {
		int n = 1 + (int)ut_below(&r, N);

		memset(hist, 0, sizeof(hist));
		for (int i = 0; i < n; i++) {
			/* A bulk and a tail, like a disk's latencies. */
			v[i] = ut_below(&r, 10) ? 50000 + ut_below(&r, 100000) :
						  ut_below(&r, 1ull << 33);
			hist[bdev_lat_bucket(v[i])]++;
		}
		qsort(v, n, sizeof(v[0]), cmp_u64);
		for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
			uint64_t rank = (uint64_t)(qs[k] * n + 0.999999);
			uint64_t exact = v[(rank ? rank : 1) - 1];
			uint64_t got = bdev_lat_percentile(hist, qs[k]);
			uint64_t diff = got > exact ? got - exact : exact - got;

			ck_assert_msg(diff * 8 <= exact + 8,
				      "q %.3f n %d: exact %llu got %llu", qs[k],
				      n, (unsigned long long)exact,
				      (unsigned long long)got);
		}
	}
}
END_TEST

/* A read-only device refuses what would change it, inside bdev_submit. */
START_TEST(test_read_only)
{
	/* clang-format off */
	static const struct {
		enum bdev_op op;
		bool reaches_backend;
	} t[] = {
		{ BDEV_READ, true }, { BDEV_WRITE, false },
		{ BDEV_FLUSH, true }, { BDEV_DISCARD, false },
		{ BDEV_ZERO, false },
	};
	/* clang-format on */
	struct fake f;
	struct node n[5];
	struct pvec vec[1];

	fake_init(&f, true);
	f.f_dev.bd_read_only = true;
	ck_assert_int_eq(pvec_from_buf(vec, 1, data, 4096, 0), 1);
	for (int c = 0; c < 5; c++) {
		bool has_data = t[c].op == BDEV_READ || t[c].op == BDEV_WRITE;
		int before = f.f_nr_submit;

		memset(&n[c], 0, sizeof(n[c]));
		bdev_req_init(&n[c].n_req, t[c].op, 0,
			      t[c].op == BDEV_FLUSH ? 0 : 4096,
			      has_data ? vec : NULL,
			      has_data ? pvec_iter_init(vec, 1) :
					 (struct pvec_iter){ 0 },
			      node_end, &n[c]);
		bdev_submit(&f.f_dev, &n[c].n_req);
		UT_EQ(f.f_nr_submit - before, t[c].reaches_backend, "op %s",
		      bdev_op_name(t[c].op));
		UT_EQ(n[c].n_end_calls, !t[c].reaches_backend, "op %s",
		      bdev_op_name(t[c].op));
		if (!t[c].reaches_backend)
			UT_EQ(n[c].n_err_at_end, -EROFS, "op %s",
			      bdev_op_name(t[c].op));
		UT_EQ(f.f_dev.bd_stats.ops[t[c].op], 1, "op %s",
		      bdev_op_name(t[c].op));
	}
	UT_EQ(f.f_dev.bd_stats.errors, 3, "");
	UT_EQ(f.f_dev.bd_stats.inflight, 2, "");
	while (f.f_nr_q)
		fake_complete(&f, 0, 0);
	UT_EQ(f.f_dev.bd_stats.inflight, 0, "");
	UT_EQ(f.f_dev.bd_stats.errors, 3, "");
	UT_EQ(n[0].n_end_calls, 1, "");
	UT_EQ(n[0].n_err_at_end, 0, "");
	UT_EQ(n[2].n_end_calls, 1, "");

	/* A refused child fails its parent. */
	{
		struct node p, k;

		memset(&p, 0, sizeof(p));
		memset(&k, 0, sizeof(k));
		bdev_req_init(&p.n_req, BDEV_WRITE, 0, 4096, vec,
			      pvec_iter_init(vec, 1), node_end, &p);
		ck_assert_int_eq(bdev_req_child(&p.n_req, &k.n_req, 0, 4096, 0,
						node_end, &k),
				 0);
		bdev_submit(&f.f_dev, &k.n_req);
		bdev_req_complete(&p.n_req, 0);
		UT_EQ(p.n_end_calls, 1, "");
		UT_EQ(p.n_err_at_end, -EROFS, "");
	}
}
END_TEST

/* ---- ring hooks: the unplug a layer holds writes back with ---- */

struct hook_case {
	struct loop ring;
	struct loop_hook first, second;
	struct loop_op nop;
	int runs_first, runs_second, nops;
};

static void nop_done(struct loop_op *op, int res, unsigned flags)
{
	struct hook_case *hc =
		(void *)((char *)op - offsetof(struct hook_case, nop));

	(void)flags;
	ck_assert_int_eq(res, 0);
	hc->nops++;
}

/* The second hook is what a layer does when it lets held work go: it
 * queues I/O.  That I/O must be submitted by the same run, or the event
 * loop's wait would sleep on a completion that never comes.  (A NOP
 * completes as it is submitted, so runs that do not wait can tell.) */
static void second_hook(struct loop_hook *h)
{
	struct hook_case *hc =
		(void *)((char *)h - offsetof(struct hook_case, second));

	hc->runs_second++;
	io_uring_prep_nop(loop_sqe(&hc->ring, &hc->nop));
}

static void first_hook(struct loop_hook *h)
{
	struct hook_case *hc =
		(void *)((char *)h - offsetof(struct hook_case, first));

	hc->runs_first++;
	loop_hook_arm(&hc->ring, &hc->second); /* armed while hooks run */
}

/* A ring and its hooks; false when there is no io_uring to test against. */
static bool hook_case_init(struct hook_case *hc)
{
	int ret;

	memset(hc, 0, sizeof(*hc));
	ret = loop_init(&hc->ring, 8, false);
	if (ret == -ENOSYS || ret == -EPERM)
		return false;
	ck_assert_int_eq(ret, 0);
	hc->first.lh_fn = first_hook;
	hc->second.lh_fn = second_hook;
	hc->nop.lo_done = nop_done;
	return true;
}

START_TEST(test_ring_hooks)
{
	static struct hook_case hc;

	if (!hook_case_init(&hc))
		return;

	/* Armed twice before a run: runs once, then no more. */
	loop_hook_arm(&hc.ring, &hc.first);
	loop_hook_arm(&hc.ring, &hc.first);
	ck_assert_int_eq(loop_run(&hc.ring, 0), 1);
	UT_EQ(hc.runs_first, 1, "the hook armed twice ran %d times",
	      hc.runs_first);
	UT_EQ(hc.runs_second, 1, "the hook armed by a hook ran %d times",
	      hc.runs_second);
	UT_EQ(hc.nops, 1, "the hook's I/O completed %d times", hc.nops);
	ck_assert_int_eq(loop_run(&hc.ring, 0), 0);
	UT_EQ(hc.runs_first + hc.runs_second, 2,
	      "a hook ran without being armed");
	loop_exit(&hc.ring);
}
END_TEST

/* A hook armed for a time: not run before it, and the wait that would
 * sleep past it wakes then, so the next run runs it. */
START_TEST(test_ring_hook_due)
{
	static struct hook_case hc;
	uint64_t t0, waited;

	if (!hook_case_init(&hc))
		return;
	t0 = loop_now_ns();
	loop_hook_arm_at(&hc.ring, &hc.second, t0 + 20000000);
	ck_assert_int_eq(loop_run(&hc.ring, 0), 0);
	UT_EQ(hc.runs_second, 0, "a hook due in 20 ms ran at once");
	ck_assert_int_eq(loop_run(&hc.ring, 1), 0); /* nothing in flight */
	waited = loop_now_ns() - t0;
	ck_assert_msg(waited >= 20000000 && waited < 2000000000ull,
		      "the wait for a hook due in 20 ms took %llu ns",
		      (unsigned long long)waited);
	ck_assert_int_eq(loop_run(&hc.ring, 1), 1);
	UT_EQ(hc.runs_second, 1, "the due hook ran %d times", hc.runs_second);
	UT_EQ(hc.nops, 1, "the due hook's I/O completed %d times", hc.nops);
	loop_exit(&hc.ring);
}
END_TEST

START_TEST(test_ring_run_until)
{
	static struct hook_case hc;

	if (!hook_case_init(&hc))
		return;
	/* A hook that finishes the work itself, with no completion behind
	 * it, as sim() does when a held I/O's time comes; due at about the
	 * time the run's own tick is: both run in one pass. */
	for (int i = 0; i < 20; i++)
		ut_run_for_ns(&hc.ring, 1000000);
	ck_assert_ptr_null(hc.ring.hooks);
	loop_exit(&hc.ring);
}
END_TEST

/* ---- image locks ---- */

/* Whether another process can take a lock of @type on @path now. */
static bool other_can_lock(const char *path, short type)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (!pid) {
		struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
		int fd = open(path, type == F_WRLCK ? O_RDWR : O_RDONLY);

		_exit(fd >= 0 && !fcntl(fd, F_OFD_SETLK, &fl) ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) && !WEXITSTATUS(status);
}

/* An image stays locked while any open of it in this process lasts, so a
 * twin or a failed member replaced by itself neither conflicts with the
 * first open nor loses the lock when that goes; -o ro opens share.  One
 * another process holds is refused with its pid. */
START_TEST(test_file_lock)
{
	char dir[] = "/tmp/rawvec-unit.XXXXXX", path[64], err[512];
	struct bdev_file_opts rw = { 0 }, ro = { .read_only = true };
	struct bdev *a, *b;
	int fd, ret, ready[2], done[2];
	pid_t pid;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/img", dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);

	/* Opening and destroying a file device needs no ring. */
	ret = bdev_file_open(path, &rw, &a, err, sizeof(err));
	if (ret == -EINVAL && strstr(err, "O_DIRECT"))
		goto out; /* a /tmp without O_DIRECT: nothing to lock here */
	ck_assert_msg(!ret, "first open: %s", err);
	ret = bdev_file_open(path, &rw, &b, err, sizeof(err));
	ck_assert_msg(!ret, "second open in the same process: %s", err);
	ck_assert_msg(!other_can_lock(path, F_RDLCK),
		      "a read-write open left the image unlocked");
	bdev_destroy(a);
	ck_assert_msg(!other_can_lock(path, F_RDLCK),
		      "the lock went with the first of two opens");
	bdev_destroy(b);
	ck_assert_msg(other_can_lock(path, F_WRLCK),
		      "the lock outlived the last open");

	ck_assert_int_eq(bdev_file_open(path, &ro, &a, err, sizeof(err)), 0);
	ck_assert_msg(other_can_lock(path, F_RDLCK),
		      "-o ro opens do not share the image");
	ck_assert_msg(!other_can_lock(path, F_WRLCK),
		      "a -o ro open left the image open to writers");
	bdev_destroy(a);

	/* A child holds it: the refusal names the image and the child. */
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
		char c = 0;

		fd = open(path, O_RDONLY);
		if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl))
			_exit(1);
		close(done[1]);
		if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) < 0)
			_exit(1);
		_exit(0); /* the parent closed its end: done */
	}
	close(ready[1]);
	close(done[0]);
	{
		char c, want[128];

		ck_assert_int_eq(read(ready[0], &c, 1), 1);
		ret = bdev_file_open(path, &rw, &a, err, sizeof(err));
		ck_assert_int_eq(ret, -EBUSY);
		snprintf(want, sizeof(want),
			 "%s: in use by another process (pid %d, ", path,
			 (int)pid);
		ck_assert_msg(strstr(err, want) &&
				      strstr(err, "holding a read lock"),
			      "refusal '%s' does not name the image, pid %d and its read lock",
			      err, (int)pid);
		ck_assert_int_eq(bdev_file_open(path, &ro, &a, err,
						sizeof(err)),
				 0);
		bdev_destroy(a);
	}
	close(done[1]);
	close(ready[0]);
	waitpid(pid, NULL, 0);
out:
	unlink(path);
	rmdir(dir);
}
END_TEST

/*
 * A device owned by loop B: a request submitted on loop A must reach the
 * device only on B (after A's submit carries the message), be accounted
 * there, and end on A, with its parent's completion, as if it had never
 * left.  One thread drives both rings.
 */
struct owned_dev {
	struct bdev od_bdev;
	struct loop *od_seen_loop;
	int od_submits;
};

static void owned_submit(struct bdev *dev, struct bdev_req *req)
{
	struct owned_dev *od = (struct owned_dev *)dev;

	od->od_seen_loop = req->br_loop;
	od->od_submits++;
	bdev_req_complete(req, 0);
}

static void owned_destroy(struct bdev *dev)
{
	(void)dev;
}

static const struct bdev_ops owned_ops = { .submit = owned_submit,
					   .destroy = owned_destroy };

static struct loop *owned_end_loop;
static int owned_ends;

static void owned_end(struct bdev_req *req)
{
	owned_end_loop = req->br_loop;
	owned_ends++;
}

START_TEST(test_handoff_to_owner)
{
	static struct loop la, lb;
	static struct owned_dev od;
	struct bdev_req parent, req;
	char buf[4096];
	struct pvec v[1];
	int ret;

	ret = loop_init(&la, 16, false);
	if (ret == -ENOSYS || ret == -EPERM)
		return;
	ck_assert_int_eq(ret, 0);
	ck_assert_int_eq(loop_init(&lb, 16, false), 0);
	lb.lp_id = 1;
	memset(&od, 0, sizeof(od));
	od.od_bdev.bd_ops = &owned_ops;
	od.od_bdev.bd_size = 1 << 20;
	od.od_bdev.bd_align = 512;
	ck_assert_int_eq(bdev_share(&od.od_bdev, 2, &lb), 0);
	owned_ends = 0;
	pvec_from_buf(v, 1, buf, sizeof(buf), 0);
	bdev_req_init(&parent, BDEV_READ, 0, sizeof(buf), v,
		      pvec_iter_init(v, 1), owned_end, NULL);
	parent.br_loop = &la;
	ck_assert_int_eq(bdev_req_child(&parent, &req, 0, sizeof(buf), 0, NULL,
					NULL),
			 0);
	bdev_submit(&od.od_bdev, &req);
	bdev_req_complete(&parent, 0);
	UT_EQ(od.od_submits, 0, "the owned device ran on the submitting loop");
	for (int i = 0; i < 100 && owned_ends == 0; i++) {
		loop_run(&la, 0);
		loop_run(&lb, 0);
	}
	UT_EQ(od.od_submits, 1, "the owned device ran %d times", od.od_submits);
	ck_assert_ptr_eq(od.od_seen_loop, &lb);
	UT_EQ(owned_ends, 1, "the parent ended %d times", owned_ends);
	ck_assert_ptr_eq(owned_end_loop, &la);
	ck_assert_ptr_eq(req.br_loop, &la);
	ck_assert_ptr_null(req.br_home);
	UT_EQ(parent.br_error, 0, "error %d", parent.br_error);
	UT_EQ(od.od_bdev.bd_stats.ops[BDEV_READ], 1, "reads accounted: %llu",
	      (unsigned long long)od.od_bdev.bd_stats.ops[BDEV_READ]);
	UT_EQ(od.od_bdev.bd_stats.done[BDEV_READ], 1, "reads done: %llu",
	      (unsigned long long)od.od_bdev.bd_stats.done[BDEV_READ]);
	ck_assert_uint_eq(la.msgs_sent + lb.msgs_sent, 2);
	loop_exit(&la);
	loop_exit(&lb);
}
END_TEST

Suite *bdev_suite(void)
{
	Suite *s = suite_create("bdev");
	TCase *tc = tcase_create("bdev");

	tcase_add_checked_fixture(tc, bdev_setup, bdev_teardown);
	tcase_set_timeout(tc, UT_TIMEOUT_SEC);
	tcase_add_test(tc, test_req_init);
	tcase_add_test(tc, test_op_names);
	tcase_add_test(tc, test_child_range);
	tcase_add_test(tc, test_split_complete_random);
	tcase_add_test(tc, test_three_levels);
	tcase_add_test(tc, test_sync_complete_before_drop);
	tcase_add_test(tc, test_layer_stack);
	tcase_add_test(tc, test_accounting_random);
	tcase_add_test(tc, test_stats_sum_mark);
	tcase_add_test(tc, test_read_only);
	tcase_add_test(tc, test_lat_buckets);
	tcase_add_test(tc, test_lat_percentile);
	tcase_add_test(tc, test_ring_hooks);
	tcase_add_test(tc, test_handoff_to_owner);
	tcase_add_test(tc, test_ring_hook_due);
	tcase_add_test(tc, test_ring_run_until);
	tcase_add_test(tc, test_file_lock);
	suite_add_tcase(s, tc);
	return s;
}
