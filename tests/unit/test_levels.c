/* test_levels: linear, slice, raid0, raid1, raid5 and raid6 driven in
 * process over mem() members: every map is a bijection, data survives
 * every chunk and member boundary, raid5/6 plan their writes as documented,
 * degraded arrays read back what was written, and data and parity land
 * where Linux md puts them (the expectations are the test's own formulas). */
#include "tests/unit/unit.h"
#include "tests/unit/unit_layer.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "blockdev/layout.h"
#include "blockdev/levels/layer.h"
#include "blockdev/levels/member.h"
#include "blockdev/levels/raid56.h"
#include "blockdev/levels/raid1_int.h"
#include "blockdev/levels/raid56_int.h"
#include "blockdev/levels/super.h"
#include "blockdev/levels/super_int.h"
#include "blockdev/members/faulty.h"

#define MAX_IO (256u << 10) /* the largest request sent (max_io_bytes) */
#define MAX_PIECES 4096
#define MAX_BOUNDS 4096

/* ---- requests, and the one place that runs the event loop ---- */

struct io {
	struct bdev_req io_req;
	struct pvec io_vec[2];
	bool io_done;
};

struct io_set {
	struct io *s_ios;
	int s_nr;
};

static void io_end(struct bdev_req *req)
{
	((struct io *)req->br_private)->io_done = true;
}

static bool all_done(void *arg)
{
	const struct io_set *s = arg;

	for (int i = 0; i < s->s_nr; i++)
		if (!s->s_ios[i].io_done)
			return false;
	return true;
}

/*
 * run_until_done() - wait for @nr requests.  Without a loop there is
 * nothing to run: mem() members complete inside submit, and raid5/6 hold
 * no write back.  With one, run it until all of them are done.
 */
static void run_until_done(struct loop *loop, struct io *ios, int nr)
{
	struct io_set s = { ios, nr };

	if (loop)
		ck_assert_int_eq(loop_run_until(loop, all_done, &s), 0);
	UT_CHECK(all_done(&s), "%d request(s), not all complete", nr);
}

/* Submit @op of [@buf, + @len) at @pos on @dev, on @loop (may be NULL);
 * the data in two segments when @split falls inside it (front-end
 * requests come in one or two). */
static void io_submit(struct io *io, struct loop *loop, struct bdev *dev,
		      enum bdev_op op, uint64_t pos, uint8_t *buf, size_t len,
		      size_t split)
{
	int nr;

	memset(io, 0, sizeof(*io));
	if (split && split < len) {
		nr = pvec_from_buf(io->io_vec, 1, buf, split, 0);
		nr += pvec_from_buf(io->io_vec + 1, 1, buf + split, len - split,
				    0);
		UT_EQ(nr, 2, "two segments");
	} else {
		nr = pvec_from_buf(io->io_vec, 1, buf, len, 0);
		UT_EQ(nr, 1, "one segment");
	}
	bdev_req_init(&io->io_req, op, pos, len, io->io_vec,
		      pvec_iter_init(io->io_vec, nr), io_end, io);
	io->io_req.br_loop = loop;
	bdev_submit(dev, &io->io_req);
}

static int do_io(struct loop *loop, struct bdev *dev, enum bdev_op op,
		 uint64_t pos, uint8_t *buf, size_t len, size_t split)
{
	struct io io;

	io_submit(&io, loop, dev, op, pos, buf, len, split);
	run_until_done(loop, &io, 1);
	return io.io_req.br_error;
}

/* An event loop to run requests on, or false when this kernel or sandbox
 * has no io_uring to give (the test then has nothing to run). */
static bool one_loop_init(struct loop *loop)
{
	int ret = loop_init(loop, 64, false);

	if (ret == -ENOSYS || ret == -EPERM)
		return false;
	ck_assert_int_eq(ret, 0);
	return true;
}

/* ---- an array under test, and a model of its bytes ---- */

struct arr {
	const char *a_expr;
	struct bdev *a_dev;
	struct layer *a_l;
	struct loop *a_loop; /* the requests': NULL, or the merge test's */
	uint64_t a_size;
	uint32_t a_align;
	uint8_t *a_model; /* what the array must hold */
	uint8_t *a_buf;	  /* MAX_IO of scratch */
	struct ut_rng a_rng;
};

static void arr_setup(struct arr *a, const char *expr, struct bdev *dev,
		      struct loop *loop)
{
	a->a_expr = expr;
	a->a_dev = dev;
	a->a_l = layer_of(dev);
	a->a_loop = loop;
	a->a_size = dev->bd_size;
	a->a_align = dev->bd_align;
	UT_CHECK(bdev_is_layer(dev), "%s: not a layer", expr);
	UT_CHECK(a->a_size && a->a_size % a->a_align == 0, "%s: size %llu",
		 expr, (unsigned long long)a->a_size);
	/* mem() members start out zeroed, and so does the model. */
	a->a_model = calloc(1, a->a_size);
	a->a_buf = aligned_alloc(4096, MAX_IO);
	ck_assert_ptr_nonnull(a->a_model);
	ck_assert_ptr_nonnull(a->a_buf);
	ut_rng_init(&a->a_rng, expr);
}

/* Open @expr as the daemon would, without superblock I/O (headerless). */
static void arr_open(struct arr *a, const char *expr, struct loop *loop)
{
	struct bdev_layout_opts o = { .no_io = true, .max_io_bytes = MAX_IO };
	struct bdev *dev;
	char err[1024];
	int ret = bdev_layout_open(expr, loop, &o, &dev, err, sizeof(err));

	ck_assert_msg(!ret, "%s: %d %s", expr, ret, err);
	arr_setup(a, expr, dev, loop);
}

static void arr_close(struct arr *a)
{
	bdev_destroy(a->a_dev);
	free(a->a_model);
	free(a->a_buf);
}

static size_t rand_split(struct arr *a, size_t len)
{
	return ut_chance(&a->a_rng, 50) ? 512 * ut_below(&a->a_rng, len / 512) :
					  0;
}

static void arr_write(struct arr *a, uint64_t pos, size_t len)
{
	uint64_t *w = (uint64_t *)a->a_buf;

	UT_CHECK(len <= MAX_IO && pos + len <= a->a_size && len % 8 == 0,
		 "%s: write %llu+%zu", a->a_expr, (unsigned long long)pos, len);
	/* ut_fill() a word at a time: a tenth of the time under ASan. */
	for (size_t i = 0; i < len / 8; i++)
		w[i] = ut_next(&a->a_rng);
	UT_EQ(do_io(a->a_loop, a->a_dev, BDEV_WRITE, pos, a->a_buf, len,
		    rand_split(a, len)),
	      0, "%s: write %llu+%zu", a->a_expr, (unsigned long long)pos, len);
	memcpy(a->a_model + pos, a->a_buf, len);
}

static void arr_check(struct arr *a, uint64_t pos, size_t len, const char *when)
{
	UT_EQ(do_io(a->a_loop, a->a_dev, BDEV_READ, pos, a->a_buf, len,
		    rand_split(a, len)),
	      0, "%s: read %llu+%zu (%s)", a->a_expr, (unsigned long long)pos,
	      len, when);
	if (memcmp(a->a_buf, a->a_model + pos, len)) {
		size_t i = 0;

		while (a->a_buf[i] == a->a_model[pos + i])
			i++;
		ck_abort_msg("[UNIT_SEED=%llu] %s: read %llu+%zu (%s): array "
			     "byte %llu differs from what was written",
			     (unsigned long long)ut_seed, a->a_expr,
			     (unsigned long long)pos, len, when,
			     (unsigned long long)(pos + i));
	}
}

static void arr_fill(struct arr *a)
{
	for (uint64_t pos = 0; pos < a->a_size; pos += MAX_IO)
		arr_write(a, pos,
			  a->a_size - pos < MAX_IO ? a->a_size - pos : MAX_IO);
}

static void arr_check_all(struct arr *a, const char *when)
{
	for (uint64_t pos = 0; pos < a->a_size; pos += MAX_IO)
		arr_check(a, pos,
			  a->a_size - pos < MAX_IO ? a->a_size - pos : MAX_IO,
			  when);
}

/* Member @m's bytes [@pos, + @len), @pos past its data offset, into @buf. */
static void member_read(struct arr *a, int m, uint64_t pos, uint8_t *buf,
			uint64_t len)
{
	struct bdev *d = a->a_l->l_members[m];

	pos += a->a_l->l_data_offset;
	for (uint64_t done = 0; done < len; done += MAX_IO) {
		size_t n = len - done < MAX_IO ? len - done : MAX_IO;

		UT_EQ(do_io(a->a_loop, d, BDEV_READ, pos + done, buf + done, n,
			    0),
		      0, "%s: member %d read", a->a_expr, m);
	}
}

/* ---- maps ---- */

/**
 * struct piece - [@p_pos, + @p_len) of the array lives at [@p_mpos, +
 * @p_len) of member @p_m's data; @p_pos is UINT64_MAX for parity.
 */
struct piece {
	uint64_t p_pos, p_len, p_mpos;
	int p_m;
};

static struct piece pieces[MAX_PIECES];

/* The level's map walked over the whole array, piece after piece. */
static int map_all(struct arr *a, struct piece *pc)
{
	const struct layer *l = a->a_l;
	uint64_t pos = 0, mpos, room;
	int n = 0, m;

	while (pos < a->a_size) {
		l->l_map(l, pos, &m, &mpos, &room);
		UT_CHECK(room > 0 && m >= 0 && m < l->l_nr,
			 "%s: map(%llu): member %d, %llu bytes", a->a_expr,
			 (unsigned long long)pos, m, (unsigned long long)room);
		if (room > a->a_size - pos)
			room = a->a_size - pos;
		UT_CHECK(n < MAX_PIECES, "%s: too many pieces", a->a_expr);
		pc[n++] = (struct piece){ pos, room, mpos, m };
		pos += room;
	}
	return n;
}

static int by_member(const void *x, const void *y)
{
	const struct piece *a = x, *b = y;

	if (a->p_m != b->p_m)
		return a->p_m - b->p_m;
	return a->p_mpos < b->p_mpos ? -1 : a->p_mpos > b->p_mpos;
}

static int nparity_of(const struct arr *a)
{
	return !strcmp(a->a_l->l_kind, "raid6") ? 2 :
	       !strcmp(a->a_l->l_kind, "raid5") ? 1 :
						  0;
}

/*
 * Every array byte maps to one member byte (the pieces tile the array and
 * the map agrees with them anywhere inside), and no two array bytes, nor
 * an array byte and parity, share one: per member, the pieces follow each
 * other without overlap, and without a gap over the part in use.
 */
static void check_bijection(struct arr *a)
{
	const struct layer *l = a->a_l;
	int n = map_all(a, pieces), nr = n, npar = nparity_of(a);
	uint64_t min_bytes = UINT64_MAX;

	for (int i = 0; i < 300; i++) {
		uint64_t pos = ut_below(&a->a_rng, a->a_size), mpos, room;
		int lo = 0, hi = n - 1, m;
		const struct piece *pc;

		while (lo < hi) {
			int mid = (lo + hi + 1) / 2;

			if (pieces[mid].p_pos <= pos)
				lo = mid;
			else
				hi = mid - 1;
		}
		pc = &pieces[lo];
		l->l_map(l, pos, &m, &mpos, &room);
		UT_CHECK(m == pc->p_m &&
				 mpos == pc->p_mpos + (pos - pc->p_pos) &&
				 pos + room >= pc->p_pos + pc->p_len,
			 "%s: map(%llu) = member %d at %llu, inside a piece on "
			 "member %d at %llu",
			 a->a_expr, (unsigned long long)pos, m,
			 (unsigned long long)mpos, pc->p_m,
			 (unsigned long long)pc->p_mpos);
	}
	if (npar) {
		int slots[LAYER_MAX_MEMBERS], ndata = l->l_nr - npar;

		for (uint64_t s = 0; s < l->l_member_size / l->l_chunk; s++) {
			raid56_layout(l, s, slots);
			for (int k = ndata; k < l->l_nr; k++) {
				UT_CHECK(nr < MAX_PIECES, "%s", a->a_expr);
				pieces[nr++] = (struct piece){ UINT64_MAX,
							       l->l_chunk,
							       s * l->l_chunk,
							       slots[k] };
			}
		}
	}
	for (int m = 0; m < l->l_nr; m++) {
		uint64_t b = l->l_members[m]->bd_size - l->l_data_offset;

		min_bytes = b < min_bytes ? b : min_bytes;
	}
	qsort(pieces, nr, sizeof(pieces[0]), by_member);
	for (int i = 0, m = 0; m < l->l_nr; m++) {
		uint64_t at = !strcmp(l->l_kind, "slice") ? ut_window_start(l) :
							    0;
		uint64_t end;
		uint64_t bytes = l->l_members[m]->bd_size - l->l_data_offset;

		for (; i < nr && pieces[i].p_m == m; i++) {
			UT_CHECK(pieces[i].p_mpos == at,
				 "%s: member %d: a piece at %llu, want %llu (%s)",
				 a->a_expr, m,
				 (unsigned long long)pieces[i].p_mpos,
				 (unsigned long long)at,
				 pieces[i].p_mpos < at ? "overlap" : "gap");
			at += pieces[i].p_len;
		}
		/* The part in use: a slice's window; a striped level's
		 * smallest member in whole chunks; linear each member whole
		 * in blocks of its alignment. */
		if (!strcmp(l->l_kind, "slice"))
			end = ut_window_start(l) + a->a_size;
		else if (l->l_chunk)
			end = min_bytes - min_bytes % l->l_chunk;
		else
			end = bytes - bytes % a->a_align;
		UT_CHECK(at == end && end <= bytes,
			 "%s: member %d: used up to %llu, want %llu of %llu",
			 a->a_expr, m, (unsigned long long)at,
			 (unsigned long long)end, (unsigned long long)bytes);
	}
}

/* Written through the array, the bytes are on the members where the map
 * says (raid1: on every mirror at the same offsets). */
static void check_placement(struct arr *a)
{
	const struct layer *l = a->a_l;
	uint8_t *got = malloc(a->a_size);
	int n;

	ck_assert_ptr_nonnull(got);
	arr_fill(a);
	if (!l->l_map) {
		for (int m = 0; m < l->l_nr; m++) {
			member_read(a, m, 0, got, a->a_size);
			UT_CHECK(!memcmp(got, a->a_model, a->a_size),
				 "%s: mirror %d differs from the array",
				 a->a_expr, m);
		}
		free(got);
		return;
	}
	n = map_all(a, pieces);
	for (int i = 0; i < n; i++) {
		const struct piece *pc = &pieces[i];

		member_read(a, pc->p_m, pc->p_mpos, got, pc->p_len);
		UT_CHECK(!memcmp(got, a->a_model + pc->p_pos, pc->p_len),
			 "%s: array bytes %llu+%llu are not at member %d's %llu",
			 a->a_expr, (unsigned long long)pc->p_pos,
			 (unsigned long long)pc->p_len, pc->p_m,
			 (unsigned long long)pc->p_mpos);
	}
	free(got);
}

/* clang-format off */
static const char *const layouts[] = {
	"linear(mem(size=1m), mem(size=520k), mem(size=2m))",
	"linear(mem(size=300k))",
	"slice(mem(size=4m), offset=1m, size=2m)",
	"slice(mem(size=2m), offset=4k)",
	"raid0(mem(size=1m), mem(size=1m), mem(size=1m), chunk=64k)",
	"raid0(mem(size=1m), mem(size=1100k), chunk=4k)",
	"raid1(mem(size=1m), mem(size=1m), mem(size=1100k))",
	"raid5(mem(size=512k), mem(size=512k), mem(size=512k), chunk=4k)",
	"raid5(mem(size=1m), mem(size=1m), mem(size=1m), mem(size=1m), chunk=64k)",
	"raid5(mem(size=768k), mem(size=768k), mem(size=800k), mem(size=768k), "
	      "mem(size=768k), chunk=16k)",
	"raid6(mem(size=1m), mem(size=1m), mem(size=1m), mem(size=1m), chunk=64k)",
	"raid6(mem(size=512k), mem(size=512k), mem(size=512k), mem(size=512k), "
	      "mem(size=512k), mem(size=512k), chunk=8k)",
	/* Nested: RAID-10, levels under linear, levels under raid5. */
	"raid0(raid1(mem(size=512k), mem(size=512k)), "
	      "raid1(mem(size=512k), mem(size=512k)), chunk=16k)",
	"linear(raid5(mem(size=256k), mem(size=256k), mem(size=256k), chunk=4k), "
	       "slice(mem(size=1m), offset=256k), "
	       "raid6(mem(size=256k), mem(size=256k), mem(size=256k), "
		     "mem(size=256k), chunk=8k))",
	"raid5(slice(mem(size=1m), offset=4k, size=512k), "
	      "linear(mem(size=200k), mem(size=320k)), "
	      "raid0(mem(size=256k), mem(size=256k), chunk=4k), chunk=8k)",
};
/* clang-format on */
#define NR_LAYOUTS (int)(sizeof(layouts) / sizeof(layouts[0]))

START_TEST(test_map_bijection)
{
	for (int i = 0; i < NR_LAYOUTS; i++) {
		struct arr a;

		arr_open(&a, layouts[i], NULL);
		if (a.a_l->l_map)
			check_bijection(&a);
		check_placement(&a);
		arr_close(&a);
	}
}
END_TEST

/* ---- md's layout, by the test's own formulas ---- */

static uint8_t gf_mul2(uint8_t x)
{
	return (uint8_t)((x << 1) ^ (x & 0x80 ? 0x1d : 0));
}

/*
 * Where Linux md's raid5_compute_sector() puts data chunk @k of a
 * left-symmetric raid5 (@npar 1) or raid6 (@npar 2) of @n members: the
 * member, and the stripe (its chunk on every member); *@pd, *@qd: the
 * stripe's P and Q members.
 *   raid5: pd_idx = data_disks - stripe % raid_disks,
 *          dd_idx = (pd_idx + 1 + dd_idx) % raid_disks
 *   raid6: pd_idx = raid_disks - 1 - stripe % raid_disks,
 *          qd_idx = (pd_idx + 1) % raid_disks,
 *          dd_idx = (pd_idx + 2 + dd_idx) % raid_disks
 */
static int md_member(int npar, int n, uint64_t k, uint64_t *stripe, int *pd,
		     int *qd)
{
	int ndata = n - npar, dd = (int)(k % ndata);

	*stripe = k / ndata;
	if (npar == 1) {
		*pd = ndata - (int)(*stripe % n);
		*qd = -1;
		return (*pd + 1 + dd) % n;
	}
	*pd = n - 1 - (int)(*stripe % n);
	*qd = (*pd + 1) % n;
	return (*pd + 2 + dd) % n;
}

/* Every stripe's data chunks are on the members md's formula names, and
 * its P (XOR) and Q (sum of 2^d * D_d over GF(2^8), poly 0x11d) too. */
static void check_md_r56(struct arr *a)
{
	const struct layer *l = a->a_l;
	int n = l->l_nr, npar = nparity_of(a), ndata = n - npar;
	uint64_t c = l->l_chunk, stripes = a->a_size / (c * ndata);
	uint8_t *col = malloc(c), *p = malloc(c), *q = malloc(c);

	ck_assert(col && p && q);
	for (uint64_t s = 0; s < stripes; s++) {
		int pd = -1, qd = -1, m;
		uint64_t st;

		memset(p, 0, c);
		memset(q, 0, c);
		for (int d = ndata - 1; d >= 0; d--) {
			const uint8_t *want = a->a_model + (s * ndata + d) * c;

			m = md_member(npar, n, s * ndata + d, &st, &pd, &qd);
			UT_EQ(st, s, "formula");
			member_read(a, m, s * c, col, c);
			UT_CHECK(!memcmp(col, want, c),
				 "%s: stripe %llu: data chunk %d is not on member "
				 "%d at %llu, where md puts it",
				 a->a_expr, (unsigned long long)s, d, m,
				 (unsigned long long)(s * c));
			/* Horner: Q = ((D_nd-1 * 2) ^ D_nd-2) * 2 ... ^ D_0 */
			for (uint64_t i = 0; i < c; i++) {
				p[i] ^= want[i];
				q[i] = (uint8_t)(gf_mul2(q[i]) ^ want[i]);
			}
		}
		member_read(a, pd, s * c, col, c);
		UT_CHECK(!memcmp(col, p, c),
			 "%s: stripe %llu: member %d does not "
			 "hold P",
			 a->a_expr, (unsigned long long)s, pd);
		if (npar == 2) {
			member_read(a, qd, s * c, col, c);
			UT_CHECK(!memcmp(col, q, c),
				 "%s: stripe %llu: member %d "
				 "does not hold Q",
				 a->a_expr, (unsigned long long)s, qd);
		}
	}
	free(col);
	free(p);
	free(q);
}

/* md's own pictures (md(4), mdadm): left-symmetric raid5 of 4 and raid6
 * of 5, stripes 0 to 3 and 0 to 4; a number is the array's data chunk. */
#define P -1
#define Q -2
static const int md_r5x4[4][4] = {
	{ 0, 1, 2, P },
	{ 4, 5, P, 3 },
	{ 8, P, 6, 7 },
	{ P, 9, 10, 11 },
};
static const int md_r6x5[5][5] = {
	{ Q, 0, 1, 2, P },   { 3, 4, 5, P, Q },	   { 7, 8, P, Q, 6 },
	{ 11, P, Q, 9, 10 }, { P, Q, 12, 13, 14 },
};

/* The formula reproduces the picture, so it is md's. */
static void check_picture(int npar, int n, const int *row0, int rows)
{
	for (int s = 0; s < rows; s++) {
		for (int m = 0; m < n; m++) {
			int want = row0[s * n + m], pd, qd, got = 0;
			uint64_t st;

			if (want >= 0) {
				got = md_member(npar, n, (uint64_t)want, &st,
						&pd, &qd);
				UT_CHECK(got == m && st == (uint64_t)s,
					 "raid%d of %d: chunk %d on %d, stripe %llu",
					 npar == 1 ? 5 : 6, n, want, got,
					 (unsigned long long)st);
				continue;
			}
			md_member(npar, n, (uint64_t)s * (n - npar), &st, &pd,
				  &qd);
			UT_EQ(want == P ? pd : qd, m, "raid%d of %d: stripe %d",
			      npar == 1 ? 5 : 6, n, s);
		}
	}
}
#undef P
#undef Q

/* raid0 as md's: array chunk k is chunk k / n of member k % n. */
static void check_md_raid0(struct arr *a)
{
	const struct layer *l = a->a_l;
	uint64_t c = l->l_chunk;
	uint8_t *col = malloc(c);

	ck_assert_ptr_nonnull(col);
	for (uint64_t k = 0; k < a->a_size / c; k++) {
		member_read(a, (int)(k % l->l_nr), k / l->l_nr * c, col, c);
		UT_CHECK(!memcmp(col, a->a_model + k * c, c),
			 "%s: chunk %llu is not on member %d at %llu",
			 a->a_expr, (unsigned long long)k, (int)(k % l->l_nr),
			 (unsigned long long)(k / l->l_nr * c));
	}
	free(col);
}

/* @nr mem() members of @bytes each, for a level's constructor. */
static struct bdev **mem_members(int nr, uint64_t bytes)
{
	struct bdev **m = calloc(nr, sizeof(*m));
	char err[256];

	ck_assert_ptr_nonnull(m);
	for (int i = 0; i < nr; i++)
		ck_assert_msg(!bdev_mem_create(bytes, &m[i], err, sizeof(err)),
			      "mem: %s", err);
	return m;
}

/* Members before the data offset keep their bytes (zeroes here). */
static void check_head_untouched(struct arr *a)
{
	uint64_t off = a->a_l->l_data_offset;
	uint8_t *got = calloc(1, off), *zero = calloc(1, off);

	ck_assert(got && zero);
	for (int m = 0; m < a->a_l->l_nr; m++) {
		UT_EQ(do_io(NULL, a->a_l->l_members[m], BDEV_READ, 0, got, off,
			    0),
		      0, "read");
		UT_CHECK(!memcmp(got, zero, off),
			 "%s: member %d written before its data offset",
			 a->a_expr, m);
	}
	free(got);
	free(zero);
}

START_TEST(test_md_layout)
{
	/* clang-format off */
	static const char *const r56[] = {
		"raid5(mem(size=64k), mem(size=64k), mem(size=64k), mem(size=64k), "
		      "chunk=4k)",
		"raid5(mem(size=96k), mem(size=96k), mem(size=96k), mem(size=96k), "
		      "mem(size=96k), mem(size=96k), mem(size=96k), chunk=8k)",
		"raid6(mem(size=64k), mem(size=64k), mem(size=64k), mem(size=64k), "
		      "mem(size=64k), chunk=4k)",
		"raid6(mem(size=128k), mem(size=128k), mem(size=128k), "
		      "mem(size=128k), mem(size=128k), mem(size=128k), chunk=16k)",
	};
	/* clang-format on */
	static const char with_sb[] =
		"raid5/raid6/raid0 with md's 1 MiB data offset";
	char err[256];
	struct bdev *dev;
	struct arr a;

	check_picture(1, 4, &md_r5x4[0][0], 4);
	check_picture(2, 5, &md_r6x5[0][0], 5);
	for (size_t i = 0; i < sizeof(r56) / sizeof(r56[0]); i++) {
		arr_open(&a, r56[i], NULL);
		UT_EQ(a.a_l->l_data_offset, 0, "headerless");
		arr_fill(&a);
		check_md_r56(&a);
		arr_close(&a);
	}
	arr_open(&a,
		 "raid0(mem(size=64k), mem(size=64k), mem(size=64k), chunk=4k)",
		 NULL);
	arr_fill(&a);
	check_md_raid0(&a);
	arr_close(&a);

	/* With md superblocks the levels get SUPER_DATA_OFFSET_BYTES, and
	 * md's layout starts there. */
	for (int npar = 1; npar <= 2; npar++) {
		ck_assert_msg(!raid56_create(npar,
					     mem_members(5,
							 (1u << 20) +
								 (96u << 10)),
					     5, SUPER_DATA_OFFSET_BYTES,
					     16u << 10, MAX_IO, 1, &dev, err,
					     sizeof(err)),
			      "raid56_create: %s", err);
		arr_setup(&a, with_sb, dev, NULL);
		UT_EQ(a.a_size, (96u << 10) * (5 - npar),
		      "size past the offset");
		arr_fill(&a);
		check_md_r56(&a);
		check_head_untouched(&a);
		arr_close(&a);
	}
	ck_assert_msg(!raid0_kind.bk_create(
			      &(struct bdev_kind_args){
				      .ka_members =
					      mem_members(3,
							  (1u << 20) +
								  (64u << 10)),
				      .ka_nr = 3,
				      .ka_data_offset = SUPER_DATA_OFFSET_BYTES,
				      .ka_chunk = 16u << 10,
				      .ka_max_io_bytes = MAX_IO,
				      .ka_in_segs = 1 },
			      &dev, err, sizeof(err)),
		      "raid0: %s", err);
	arr_setup(&a, with_sb, dev, NULL);
	arr_fill(&a);
	check_md_raid0(&a);
	check_head_untouched(&a);
	arr_close(&a);
}
END_TEST

/* ---- data across every boundary ---- */

static uint64_t bounds_buf[MAX_BOUNDS];

/*
 * The array offsets where bytes [@pos, + @len) of @d, met at array offset
 * @at, cross a boundary of @d's map or of a level below it (raid1: its
 * first mirror stands for all).  Appends to bounds_buf from @nr.
 */
static int collect_bounds(struct bdev *d, uint64_t at, uint64_t pos,
			  uint64_t len, int nr)
{
	struct layer *l;
	uint64_t done = 0;

	if (!bdev_is_layer(d))
		return nr;
	l = layer_of(d);
	if (!l->l_map)
		return collect_bounds(l->l_members[0], at,
				      pos + l->l_data_offset, len, nr);
	while (done < len) {
		uint64_t mpos, room;
		int m;

		l->l_map(l, pos + done, &m, &mpos, &room);
		if (room > len - done)
			room = len - done;
		if (done && nr < MAX_BOUNDS)
			bounds_buf[nr++] = at + done;
		nr = collect_bounds(l->l_members[m], at + done,
				    mpos + l->l_data_offset, room, nr);
		done += room;
	}
	return nr;
}

static uint64_t blocks_upto(struct arr *a, uint64_t lo, uint64_t hi,
			    uint64_t bytes)
{
	uint64_t most = bytes / a->a_align;

	if (hi > most)
		hi = most;
	return a->a_align * ut_between(&a->a_rng, lo < hi ? lo : hi, hi);
}

/* A write across boundary @b, then a read of it and around it. */
static void cross(struct arr *a, uint64_t b)
{
	/* Up to 96k each side, plus 8 blocks each side for the read. */
	uint64_t lim = ut_chance(&a->a_rng, 20) ? 96 * 1024 : 12 * 1024;
	uint64_t left, right, lo, hi;

	/* A boundary of a level below may lie inside one of the array's
	 * blocks: from the block's start a write still crosses it. */
	b -= b % a->a_align;
	left = blocks_upto(a, 1, lim / a->a_align, b);
	right = blocks_upto(a, 1, lim / a->a_align, a->a_size - b);
	arr_write(a, b - left, left + right);
	lo = b - left - blocks_upto(a, 0, 8, b - left);
	hi = b + right + blocks_upto(a, 0, 8, a->a_size - b - right);
	arr_check(a, lo, hi - lo, "across a boundary");
}

START_TEST(test_boundaries)
{
	for (int i = 0; i < NR_LAYOUTS; i++) {
		int nr;
		struct arr a;

		arr_open(&a, layouts[i], NULL);
		nr = collect_bounds(a.a_dev, 0, 0, a.a_size, 0);
		UT_CHECK(nr > 0 || !a.a_l->l_map || a.a_l->l_nr == 1,
			 "%s: no boundaries", a.a_expr);
		for (int k = 0; k < nr; k++)
			cross(&a, bounds_buf[k]);
		for (int k = 0; k < 150; k++) {
			uint64_t len =
				ut_chance(&a.a_rng, 50) ?
					blocks_upto(&a, 1, 32, a.a_size) :
					blocks_upto(&a, 1, MAX_IO / a.a_align,
						    a.a_size);
			uint64_t pos =
				a.a_align *
				ut_below(&a.a_rng,
					 (a.a_size - len) / a.a_align + 1);

			if (ut_chance(&a.a_rng, 60))
				arr_write(&a, pos, len);
			else
				arr_check(&a, pos, len, "random read");
		}
		arr_check_all(&a, "at the end");
		if (nparity_of(&a))
			check_md_r56(&a);
		if (!a.a_l->l_map)
			check_placement(&a);
		arr_close(&a);
	}
}
END_TEST

/* ---- raid5/6: how writes are planned ---- */

/**
 * struct plan - how writes went on a parity layer: stripes written whole,
 * by read-modify-write, by reconstruct-write, and the reads they made.
 */
struct plan {
	uint64_t full, rmw, rcw, reads;
};

/**
 * struct snap - a parity layer's counters: its plans (@sn_plan.reads is
 * its own count of the reads), the reads its members served, and the
 * stripe operations that reconstructed data.
 */
struct snap {
	struct plan sn_plan;
	uint64_t sn_member_reads, sn_degraded;
};

/* One of a parity layer's summed counters. */
#define R56_STAT(dev, field)               \
	({                                 \
		struct raid56_stats st_;   \
		raid56_stats((dev), &st_); \
		st_.field;                 \
	})

static void take_snap(struct arr *a, struct snap *sn)
{
	struct raid56_stats st_sum, *st = &st_sum;

	raid56_stats(a->a_dev, st);
	sn->sn_plan.full = st->full_stripe_writes;
	sn->sn_plan.rmw = st->rmw_writes;
	sn->sn_plan.rcw = st->rcw_writes;
	sn->sn_plan.reads = st->parity_reads;
	sn->sn_degraded = st->degraded_ops;
	sn->sn_member_reads = 0;
	for (int m = 0; m < a->a_l->l_nr; m++)
		sn->sn_member_reads +=
			a->a_l->l_members[m]->bd_stats.ops[BDEV_READ];
}

/*
 * What the documentation says a healthy array does with a write of array
 * bytes [@pos, + @len), stripe by stripe: a whole stripe is written with
 * no reads.  A part of one touches the in-chunk columns [c0, c1) (the
 * union over the chunks it writes): read-modify-write reads the old bytes
 * it replaces in each chunk, and the parity columns; reconstruct-write
 * reads the columns of the data chunks it does not replace over all of
 * [c0, c1).  The fewer reads win, reconstruct-write on a tie.
 */
static void expect_write(const struct arr *a, uint64_t pos, uint64_t len,
			 struct plan *e)
{
	int npar = nparity_of(a), ndata = a->a_l->l_nr - npar;
	uint64_t c = a->a_l->l_chunk, sw = c * ndata;

	while (len) {
		uint64_t lo = pos % sw, hi = lo + len < sw ? lo + len : sw;
		uint64_t c0 = c, c1 = 0;
		int touched = 0, whole = 0, rmw, rcw;

		pos += hi - lo;
		len -= hi - lo;
		if (lo == 0 && hi == sw) {
			e->full++;
			continue;
		}
		for (int pass = 0; pass < 2; pass++) {
			for (int d = 0; d < ndata; d++) {
				uint64_t s = d * c, ca, cb;

				if (hi <= s || lo >= s + c)
					continue;
				ca = lo > s ? lo - s : 0;
				cb = hi < s + c ? hi - s : c;
				if (!pass) {
					touched++;
					c0 = ca < c0 ? ca : c0;
					c1 = cb > c1 ? cb : c1;
				} else {
					whole += ca == c0 && cb == c1;
				}
			}
		}
		rmw = touched + npar;
		rcw = ndata - whole;
		if (rmw < rcw) {
			e->rmw++;
			e->reads += rmw;
		} else {
			e->rcw++;
			e->reads += rcw;
		}
	}
}

static void write_expect(struct arr *a, uint64_t pos, uint64_t len,
			 const struct plan *want, const char *what)
{
	struct snap b, e;
	const struct plan *p = &e.sn_plan, *q = &b.sn_plan;

	take_snap(a, &b);
	arr_write(a, pos, len);
	take_snap(a, &e);
	UT_CHECK(p->full - q->full == want->full &&
			 p->rmw - q->rmw == want->rmw &&
			 p->rcw - q->rcw == want->rcw &&
			 p->reads - q->reads == want->reads &&
			 e.sn_member_reads - b.sn_member_reads == want->reads,
		 "%s: %s: write %llu+%llu: full %llu rmw %llu rcw %llu, %llu "
		 "reads (%llu on members); want full %llu rmw %llu rcw %llu, "
		 "%llu reads",
		 a->a_expr, what, (unsigned long long)pos,
		 (unsigned long long)len,
		 (unsigned long long)(p->full - q->full),
		 (unsigned long long)(p->rmw - q->rmw),
		 (unsigned long long)(p->rcw - q->rcw),
		 (unsigned long long)(p->reads - q->reads),
		 (unsigned long long)(e.sn_member_reads - b.sn_member_reads),
		 (unsigned long long)want->full, (unsigned long long)want->rmw,
		 (unsigned long long)want->rcw,
		 (unsigned long long)want->reads);
}

#define K 1024ull
#define M (1024 * K)
#define R5x6                                                     \
	"raid5(mem(size=256k), mem(size=256k), mem(size=256k), " \
	"mem(size=256k), mem(size=256k), mem(size=256k), chunk=16k)"
#define R5x3 "raid5(mem(size=256k), mem(size=256k), mem(size=256k), chunk=16k)"
#define R6x6                                                     \
	"raid6(mem(size=256k), mem(size=256k), mem(size=256k), " \
	"mem(size=256k), mem(size=256k), mem(size=256k), chunk=16k)"
#define R6x8                                                               \
	"raid6(mem(size=256k), mem(size=256k), mem(size=256k), "           \
	"mem(size=256k), mem(size=256k), mem(size=256k), mem(size=256k), " \
	"mem(size=256k), chunk=16k)"

START_TEST(test_raid56_plan)
{
	/* Worked by hand from the rule above (16k chunks). */
	/* clang-format off */
	static const struct {
		const char *expr, *what;
		uint64_t pos, len;
		struct plan want;
	} t[] = {
		/* raid5 of 6: 5 data chunks, 80k stripes */
		{ R5x6, "a whole stripe", 80 * K, 80 * K, { 1, 0, 0, 0 } },
		{ R5x6, "4k inside one chunk", 116 * K, 4 * K, { 0, 1, 0, 2 } },
		{ R5x6, "4 of 5 chunks whole", 0, 64 * K, { 0, 0, 1, 1 } },
		{ R5x6, "8k across a chunk boundary", 12 * K, 8 * K, { 0, 1, 0, 3 } },
		{ R5x6, "all but 4k at each end", 4 * K, 72 * K, { 0, 0, 1, 2 } },
		{ R5x6, "two whole stripes", 160 * K, 160 * K, { 2, 0, 0, 0 } },
		{ R5x6, "half, whole, half", 280 * K, 160 * K, { 1, 0, 2, 6 } },
		/* raid5 of 3: the other data chunk is the one read */
		{ R5x3, "4k", 4 * K, 4 * K, { 0, 0, 1, 1 } },
		/* raid6 of 6: 1 + 2 reads against 3, a tie */
		{ R6x6, "4k", 36 * K, 4 * K, { 0, 0, 1, 3 } },
		/* raid6 of 8: 1 + 2 reads against 5 */
		{ R6x8, "4k", 4 * K, 4 * K, { 0, 1, 0, 3 } },
		{ R6x8, "8k across a chunk boundary", 12 * K, 8 * K, { 0, 1, 0, 4 } },
	};
	static const char *const rnd[] = { R5x6, R5x3, R6x6, R6x8 };
	/* clang-format on */

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct plan e = { 0 };
		struct arr a;

		arr_open(&a, t[i].expr, NULL);
		expect_write(&a, t[i].pos, t[i].len, &e);
		UT_CHECK(!memcmp(&e, &t[i].want, sizeof(e)),
			 "%s: the rule and the table disagree", t[i].what);
		write_expect(&a, t[i].pos, t[i].len, &t[i].want, t[i].what);
		arr_check_all(&a, t[i].what);
		check_md_r56(&a);
		arr_close(&a);
	}
	for (size_t i = 0; i < sizeof(rnd) / sizeof(rnd[0]); i++) {
		struct arr a;

		arr_open(&a, rnd[i], NULL);
		for (int k = 0; k < 150; k++) {
			uint64_t sw =
				a.a_l->l_chunk * (a.a_l->l_nr - nparity_of(&a));
			uint64_t len =
				4 * K *
				ut_between(&a.a_rng, 1, 3 * sw / (4 * K));
			uint64_t pos = 4 * K *
				       ut_below(&a.a_rng,
						(a.a_size - len) / (4 * K) + 1);
			struct plan e = { 0 };

			if (len > MAX_IO)
				len = MAX_IO;
			expect_write(&a, pos, len, &e);
			write_expect(&a, pos, len, &e, "random");
		}
		arr_check_all(&a, "after random writes");
		check_md_r56(&a);
		arr_close(&a);
	}
}
END_TEST

/* Writes into one stripe, sent together, are merged while their loop
 * holds them: the stripe goes out whole, nothing read.  A lone partial
 * write is held only until the loop runs. */
START_TEST(test_raid56_merge)
{
	struct loop loop;
	struct io ios[3];
	struct snap b, e;
	struct arr a;

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	arr_open(&a,
		 "raid5(mem(size=512k), mem(size=512k), mem(size=512k), "
		 "mem(size=512k), chunk=64k)",
		 &loop);
	ut_fill(&a.a_rng, a.a_model, a.a_size);
	take_snap(&a, &b);
	/* Stripe 1's three chunks, the middle one first. */
	for (int i = 0; i < 3; i++) {
		uint64_t pos = 192 * K + ((uint64_t)(i + 1) % 3) * 64 * K;

		io_submit(&ios[i], &loop, a.a_dev, BDEV_WRITE, pos,
			  a.a_model + pos, 64 * K, 0);
	}
	run_until_done(&loop, ios, 3);
	take_snap(&a, &e);
	UT_CHECK(e.sn_plan.full - b.sn_plan.full == 1 &&
			 e.sn_plan.rmw == b.sn_plan.rmw &&
			 e.sn_plan.rcw == b.sn_plan.rcw &&
			 e.sn_member_reads == b.sn_member_reads,
		 "three chunks of one stripe: full %llu rmw %llu rcw %llu reads %llu",
		 (unsigned long long)(e.sn_plan.full - b.sn_plan.full),
		 (unsigned long long)(e.sn_plan.rmw - b.sn_plan.rmw),
		 (unsigned long long)(e.sn_plan.rcw - b.sn_plan.rcw),
		 (unsigned long long)(e.sn_member_reads - b.sn_member_reads));
	UT_EQ(R56_STAT(a.a_dev, merged_writes), 2, "merged");
	io_submit(&ios[0], &loop, a.a_dev, BDEV_WRITE, 4 * K, a.a_model + 4 * K,
		  4 * K, 0);
	UT_CHECK(!ios[0].io_done,
		 "a partial write was not held for neighbours");
	run_until_done(&loop, ios, 1);
	memset(a.a_model + 192 * K + 192 * K, 0, a.a_size - 384 * K);
	memset(a.a_model, 0, 4 * K);
	memset(a.a_model + 8 * K, 0, 192 * K - 8 * K);
	arr_check_all(&a, "after merged writes");
	check_md_r56(&a);
	arr_close(&a);
	loop_exit(&loop);
}
END_TEST

/*
 * A sweep over members that complete inside their submit (null(), mem())
 * walks its stripes one after another in one frame.  Each stripe used to
 * start the next from inside its own completion, a frame deeper every
 * time: the resync of raid5 over four mem(size=256m) crashed the daemon.
 */
START_TEST(test_raid56_sweep_inline)
{
	const char *expr = "raid6(null(size=256m), null(size=256m), "
			   "null(size=256m), null(size=256m), chunk=4k)";
	struct bdev_layout_opts o = { .no_io = true, .max_io_bytes = MAX_IO };
	struct loop loop;
	struct bdev *dev;
	struct layer *l;
	char err[1024];

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	ck_assert_msg(!bdev_layout_open(expr, &loop, &o, &dev, err,
					sizeof(err)),
		      "%s: %s", expr, err);
	l = layer_of(dev);
	ck_assert_int_ge(member_scrub(&loop, dev, false, NULL, 0), 1);
	for (int i = 0; i < 100000 && l->l_sweep_running; i++)
		loop_run(&loop, 0);
	UT_CHECK(!l->l_sweep_running, "the check did not end");
	UT_EQ(l->l_sweep_pos, r56_of(l)->stripes, "stripes checked");
	UT_EQ(l->l_mismatch_sectors, 0, "mismatched");
	bdev_destroy(dev);
	loop_exit(&loop);
}
END_TEST

/*
 * A request waiting for a free stripe op, over members that complete
 * inside their submit: its op ends inside the resume that issued it and
 * frees itself, and the resume must not start again on the same request.
 * The nested resume issued the request's bytes again from its old offset,
 * over and over, until the stack overflowed.
 */
START_TEST(test_raid56_resume_inline)
{
	struct loop loop;
	struct io ios[17];
	struct arr a;
	struct r56 *r;

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	arr_open(&a,
		 "raid5(mem(size=32m), mem(size=32m), mem(size=32m), "
		 "mem(size=32m), chunk=1m)",
		 &loop);
	r = r56_of(a.a_l);
	UT_EQ(r->max_ops, 16, "stripe ops");
	member_fail(a.a_l, 3);
	/* Sixteen partial writes, each held for neighbours with an op. */
	for (int i = 0; i < 16; i++) {
		uint64_t pos = (uint64_t)i * 3072 * K + 8 * K;

		ut_fill(&a.a_rng, a.a_model + pos, 4 * K);
		io_submit(&ios[i], &loop, a.a_dev, BDEV_WRITE, pos,
			  a.a_model + pos, 4 * K, 0);
	}
	UT_EQ(r->sh0.free_ops == NULL, 1, "ops left");
	/* A degraded read: no op for it until the writes go. */
	io_submit(&ios[16], &loop, a.a_dev, BDEV_READ, 20 * 3072 * K, a.a_buf,
		  64 * K, 0);
	UT_CHECK(!ios[16].io_done, "the read found an op");
	run_until_done(&loop, ios, 17);
	UT_CHECK(!memcmp(a.a_buf, a.a_model + 20 * 3072 * K, 64 * K),
		 "the read");
	arr_check_all(&a, "after the writes");
	arr_close(&a);
	loop_exit(&loop);
}
END_TEST

/* ---- a headerless raid5 on two loops ---- */

/* Run both loops (no waiting) @n times, or until @ios are done. */
static void run_two(struct loop *la, struct loop *lb, struct io *ios, int nr,
		    int n)
{
	struct io_set set = { ios, nr };

	for (int i = 0; i < n && !(nr && all_done(&set)); i++) {
		loop_run(la, 0);
		loop_run(lb, 0);
		if (i % 64 == 63)
			usleep(100); /* the shape hook's poll */
	}
}

/* Loops 0 and 1, both run by this thread; false where io_uring is not. */
/* A raid5/6's place on several loops (its layer's). */
static enum layer_spread_mode mode_of(const struct r56 *r)
{
	return r->sh0.sh_l->l_spread.ls_mode;
}

static bool two_loops_init(struct loop *la, struct loop *lb)
{
	if (!one_loop_init(la))
		return false;
	ck_assert_int_eq(loop_init(lb, 64, false), 0);
	loop_register(la, 0);
	loop_register(lb, 1);
	return true;
}

/* The model's first @nr x 256 KiB written to @a, from loops @la and @lb
 * in turn, all at once; every write done and fine. */
static void write_from_both(struct loop *la, struct loop *lb, struct arr *a,
			    struct io *ios, int nr)
{
	for (int i = 0; i < nr; i++) {
		uint64_t pos = (uint64_t)i * 256 * K;

		io_submit(&ios[i], i % 2 ? lb : la, a->a_dev, BDEV_WRITE, pos,
			  a->a_model + pos, 256 * K, 0);
	}
	run_two(la, lb, ios, nr, 100000);
	UT_CHECK(all_done(&(struct io_set){ ios, nr }), "writes not done");
	for (int i = 0; i < nr; i++)
		UT_EQ(ios[i].io_req.br_error, 0, "write %d", i);
}

START_TEST(test_raid5_two_loops)
{
	static struct loop la, lb;
	struct io ios[13], held[2];
	struct r56 *r;
	struct arr a;
	uint64_t pos, handed;

	if (!two_loops_init(&la, &lb))
		return;
	arr_open(&a,
		 "raid5(mem(size=4m), mem(size=4m), mem(size=4m), "
		 "mem(size=4m), chunk=64k)",
		 &la);
	r = r56_of(a.a_l);
	ck_assert_int_eq(bdev_tree_share(a.a_dev, 2, &la), 0);
	UT_EQ(mode_of(r), LAYER_SPREAD, "a headerless raid5 on 2 loops");
	/* 6 stripes of 192 KiB a group: [0, 1152k) loop 0's, then loop 1's. */
	UT_EQ(r->group_bytes, 1152 * K, "group of %llu bytes",
	      (unsigned long long)r->group_bytes);
	ut_fill(&a.a_rng, a.a_model, 3 << 20);

	/* Its first 3 MiB, written from both loops at once: every other
	 * request goes to the other loop's stripes, one crosses groups. */
	write_from_both(&la, &lb, &a, ios, 12);
	UT_CHECK(R56_STAT(a.a_dev, pieces_handed) > 0,
		 "no request part went to the other loop");

	/* Zeroing 10 groups makes one piece, for loop 1's five. */
	handed = R56_STAT(a.a_dev, pieces_handed);
	pos = 3 << 20;
	io_submit(&ios[0], &la, a.a_dev, BDEV_ZERO, pos, NULL, a.a_size - pos,
		  0);
	run_two(&la, &lb, ios, 1, 100000);
	UT_EQ(ios[0].io_req.br_error, 0, "zeroing");
	UT_EQ(R56_STAT(a.a_dev, pieces_handed) - handed, 1,
	      "pieces for a request over 10 groups");

	/* Loop 0 has a piece on loop 1 (not even sent) when it collapses
	 * the array: the collapse waits for it. */
	pos = 1152 * K - 64 * K;
	io_submit(&ios[0], &la, a.a_dev, BDEV_WRITE, pos, a.a_model + pos,
		  128 * K, 0);
	ck_assert_int_ge(member_scrub(&la, a.a_dev, false, NULL, 0), 1);
	for (int i = 0; i < 20; i++) {
		loop_run(&la, 0);
		usleep(100);
	}
	UT_EQ(mode_of(r), LAYER_GATHERING,
	      "collapsed with loop 0's piece on loop 1");
	run_two(&la, &lb, NULL, 0, 20000);
	UT_CHECK(ios[0].io_done && !a.a_l->l_sweep_running,
		 "write or check not done");
	UT_EQ(mode_of(r), LAYER_SPREAD, "sharded again after the check");

	/* Loop 1 has a request in flight (its part for loop 0 not even
	 * sent) when loop 0 collapses the array for a check. */
	pos = 1152 * K - 64 * K;
	io_submit(&ios[12], &lb, a.a_dev, BDEV_WRITE, pos, a.a_model + pos,
		  128 * K, 0);
	UT_CHECK(!ios[12].io_done, "loop 1's write ended before its part ran");
	ck_assert_int_ge(member_scrub(&la, a.a_dev, false, NULL, 0), 1);
	UT_EQ(mode_of(r), LAYER_GATHERING, "collapsing for the check");
	ck_assert_ptr_eq(a.a_dev->bd_owner, &la);
	io_submit(&held[0], &la, a.a_dev, BDEV_WRITE, 0, a.a_model, 8 * K, 0);
	for (int i = 0; i < 20; i++) {
		loop_run(&la, 0);
		usleep(100);
	}
	UT_EQ(mode_of(r), LAYER_GATHERING,
	      "collapsed with loop 1's request in flight");
	UT_CHECK(!held[0].io_done, "a write ran while the array collapsed");
	UT_EQ(a.a_l->l_sweep_pos, 0, "the check started before the collapse");
	/* Loop 1's next request goes to loop 0, the owner now. */
	pos = 2 * 1152 * K;
	handed = a.a_dev->bd_stats_more[0].ops[BDEV_WRITE];
	io_submit(&held[1], &lb, a.a_dev, BDEV_WRITE, pos, a.a_model + pos,
		  64 * K, 0);
	UT_EQ(a.a_dev->bd_stats_more[0].ops[BDEV_WRITE], handed,
	      "loop 1 took a request after loop 0 took the array over");
	run_two(&la, &lb, NULL, 0, 20000);
	UT_CHECK(ios[12].io_done && held[0].io_done && held[1].io_done,
		 "requests not done after the collapse: %d %d %d",
		 ios[12].io_done, held[0].io_done, held[1].io_done);
	UT_CHECK(!a.a_l->l_sweep_running, "the check did not end");
	UT_EQ(a.a_l->l_mismatch_sectors, 0, "check: %llu mismatched",
	      (unsigned long long)a.a_l->l_mismatch_sectors);
	UT_EQ(mode_of(r), LAYER_SPREAD, "sharded again after the check");
	ck_assert_ptr_null(a.a_dev->bd_owner);
	UT_EQ(bdev_inflight(a.a_dev), 0, "in flight: %u",
	      bdev_inflight(a.a_dev));
	arr_check_all(&a, "after writes from two loops and a check");
	check_md_r56(&a);
	arr_close(&a);
	loop_exit(&la);
	loop_exit(&lb);
}
END_TEST

/* ---- a raid1 on two loops ---- */

/*
 * A mirror set runs on every loop, each with its own read cursor and
 * writes, and is gathered on loop 0 for a check: the check waits for
 * loop 1's write in flight (its sim() mirror is loop 0's, so it stays in
 * flight until loop 0 runs it and loop 1 takes it back), and loop 0's
 * own new writes wait for the check to start.
 */
START_TEST(test_raid1_two_loops)
{
	static struct loop la, lb;
	struct io ios[8], held;
	struct layer *l;
	uint8_t *buf;
	struct arr a;
	uint64_t pos;

	if (!two_loops_init(&la, &lb))
		return;
	arr_open(&a, "raid1(sim(mem(size=4m), lat=1ms), mem(size=4m))", &la);
	l = a.a_l;
	UT_EQ(bdev_tree_share(a.a_dev, 2, &la), 1,
	      "owned devices (sim() alone)");
	UT_EQ(l->l_spread.ls_mode, LAYER_SPREAD, "a raid1 on 2 loops");
	UT_EQ(layer_loops(l), 2, "loops");
	ut_fill(&a.a_rng, a.a_model, a.a_size);

	/* Its first 2 MiB from both loops at once; loop 1's run there. */
	write_from_both(&la, &lb, &a, ios, 8);
	UT_EQ(a.a_dev->bd_stats_more[0].ops[BDEV_WRITE], 4,
	      "writes loop 1 ran itself");
	buf = aligned_alloc(4096, 512 * K);
	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < 2; i++) {
		io_submit(&ios[i], &lb, a.a_dev, BDEV_READ,
			  (uint64_t)i * 256 * K, buf + i * 256 * K, 256 * K, 0);
	}
	run_two(&la, &lb, ios, 2, 100000);
	UT_CHECK(ios[0].io_done && ios[1].io_done, "loop 1's reads not done");
	UT_CHECK(!memcmp(buf, a.a_model, 512 * K), "loop 1 read other bytes");
	UT_EQ(a.a_dev->bd_stats_more[0].ops[BDEV_READ], 2,
	      "reads loop 1 ran itself");

	/* Loop 1's write is in flight when loop 0 gathers it for a check. */
	pos = 2 << 20;
	io_submit(&ios[0], &lb, a.a_dev, BDEV_WRITE, pos, a.a_model + pos,
		  2 << 20, 0);
	UT_CHECK(!ios[0].io_done, "loop 1's write ended before its sim() ran");
	ck_assert_int_ge(member_scrub(&la, a.a_dev, false, NULL, 0), 1);
	UT_EQ(l->l_spread.ls_mode, LAYER_GATHERING, "gathering for the check");
	ck_assert_ptr_eq(a.a_dev->bd_owner, &la);
	UT_EQ(layer_loops(l), 1, "loops while gathering");
	io_submit(&held, &la, a.a_dev, BDEV_WRITE, 0, a.a_model, 8 * K, 0);
	for (int i = 0; i < 40; i++) {
		loop_run(&la, 0);
		usleep(100);
	}
	UT_EQ(l->l_spread.ls_mode, LAYER_GATHERING,
	      "gathered with loop 1's write in flight");
	UT_CHECK(!held.io_done, "a write ran while the array gathered");
	UT_EQ(l->l_sweep_pos, 0, "the check started before the gather");
	run_two(&la, &lb, NULL, 0, 40000);
	UT_CHECK(ios[0].io_done && held.io_done,
		 "requests not done after the gather: %d %d", ios[0].io_done,
		 held.io_done);
	UT_EQ(ios[0].io_req.br_error, 0, "loop 1's write");
	UT_CHECK(!l->l_sweep_running, "the check did not end");
	UT_EQ(l->l_mismatch_sectors, 0, "check: %llu mismatched",
	      (unsigned long long)l->l_mismatch_sectors);
	UT_EQ(l->l_spread.ls_mode, LAYER_SPREAD,
	      "spread again after the check");
	ck_assert_ptr_null(a.a_dev->bd_owner);
	UT_EQ(bdev_inflight(a.a_dev), 0, "in flight: %u",
	      bdev_inflight(a.a_dev));
	arr_check_all(&a, "after writes from two loops and a check");
	for (int m = 0; m < 2; m++)
		for (pos = 0; pos < a.a_size; pos += 512 * K) {
			member_read(&a, m, pos, buf, 512 * K);
			UT_CHECK(!memcmp(buf, a.a_model + pos, 512 * K),
				 "mirror %d differs at %llu", m,
				 (unsigned long long)pos);
		}
	free(buf);
	arr_close(&a);
	loop_exit(&la);
	loop_exit(&lb);
}
END_TEST

/* ---- an md raid5 on two loops ---- */

static struct layer *ack_l;
static bool ack_recorded;

/* io_end(), noting whether every failure counted was on disk by then. */
static void io_end_md(struct bdev_req *req)
{
	ack_recorded = super_recorded(ack_l->l_md);
	io_end(req);
}

static enum layer_spread_mode run_until_mode(struct loop *la, struct loop *lb,
					     const struct r56 *r,
					     enum layer_spread_mode want)
{
	for (int i = 0; i < 4000 && mode_of(r) != want; i++) {
		loop_run(la, 0);
		loop_run(lb, 0);
		usleep(100);
	}
	return mode_of(r);
}

/* The end of an md test on two loops: nothing left in flight, the
 * safe-mode delay back to @safe_mode_ns, the array and loops gone. */
static void md_loops_close(struct bdev *dev, struct loop *la, struct loop *lb,
			   uint64_t safe_mode_ns)
{
	UT_EQ(bdev_inflight(dev), 0, "in flight");
	super_safe_mode_ns = safe_mode_ns;
	bdev_destroy(dev);
	loop_exit(la);
	loop_exit(lb);
}

/* Read [@pos, +@len) into @back from loop @lb; @what unless it reads
 * @want. */
static void read_on(struct loop *la, struct loop *lb, struct bdev *dev,
		    uint64_t pos, uint8_t *back, const uint8_t *want,
		    size_t len, const char *what)
{
	struct io io;

	io_submit(&io, lb, dev, BDEV_READ, pos, back, len, 0);
	run_two(la, lb, &io, 1, 100000);
	UT_CHECK(io.io_done && !io.io_req.br_error && !memcmp(back, want, len),
		 "%s", what);
}

/*
 * md metadata stays loop 0's while the array shards: gathered on loop 0
 * while a resync runs (begun before the loops were set up) or the
 * superblocks say clean, sharded once they say active; a member failure
 * met on loop 1 is on disk before loop 1 acknowledges the write that met
 * it; idle, it is gathered again and marked clean.
 */
START_TEST(test_raid5_md_two_loops)
{
	static struct loop la, lb;
	const char *expr = "raid5(mem(size=5m), mem(size=5m), mem(size=5m), "
			   "faulty(mem(size=5m), lat_spike=1ms@1), chunk=64k, "
			   "super=1.2)";
	struct bdev_layout_opts o = { .max_io_bytes = MAX_IO };
	struct super_probe probe;
	struct super_stats ss;
	struct io ios[2];
	uint64_t safe_mode_ns = super_safe_mode_ns;
	struct bdev *dev;
	struct layer *l;
	struct r56 *r;
	char err[1024];
	uint8_t *buf = aligned_alloc(4096, 512 * K), *back;
	uint64_t pos = 1152 * K; /* loop 1's first group */

	if (!two_loops_init(&la, &lb))
		return;
	ck_assert_msg(!bdev_layout_open(expr, &la, &o, &dev, err, sizeof(err)),
		      "%s: %s", expr, err);
	l = ack_l = layer_of(dev);
	r = r56_of(l);
	ck_assert_ptr_nonnull(l->l_md);
	/* No safe-mode idle until the test wants one. */
	super_safe_mode_ns = 60ull * 1000 * 1000 * 1000;
	for (int i = 0; i < 1000 && super_stats(l, &ss) && !ss.resyncing; i++)
		loop_run(&la, 0);
	UT_CHECK(ss.resyncing, "super=1.2 on old contents: no resync");
	/* faulty() is loop 0's; the array is not. */
	ck_assert_int_eq(bdev_tree_share(dev, 2, &la), 1);
	UT_EQ(mode_of(r), LAYER_GATHERED, "gathered while it resyncs");
	UT_EQ(r->sh0.sh_l->l_spread.ls_why,
	      LAYER_GATHER_SWEEP | LAYER_GATHER_MD,
	      "gathered for the resync and for md");
	ck_assert_ptr_eq(dev->bd_owner, &la);
	for (int i = 0; i < 100000 && super_stats(l, &ss) && ss.resync_pending;
	     i++) {
		run_two(&la, &lb, NULL, 0, 1);
		usleep(50);
	}
	UT_CHECK(!ss.resync_pending && !ss.active, "resync not done");
	UT_EQ(mode_of(r), LAYER_GATHERED, "gathered while clean");

	/* The first write marks it active; then it shards. */
	for (size_t i = 0; i < 512 * K; i++)
		buf[i] = (uint8_t)(i * 7 + i / 4096);
	io_submit(&ios[0], &lb, dev, BDEV_WRITE, pos, buf, 256 * K, 0);
	run_two(&la, &lb, ios, 1, 100000);
	UT_CHECK(ios[0].io_done && !ios[0].io_req.br_error, "first write");
	UT_EQ(run_until_mode(&la, &lb, r, LAYER_SPREAD), LAYER_SPREAD,
	      "sharded once active");
	ck_assert_ptr_null(dev->bd_owner);

	/* Loop 1's stripe op meets member 3's failure. */
	ck_assert_int_eq(faulty_configure(l->l_members[3],
					  "write_eio=1, lat_spike=none", err,
					  sizeof(err)),
			 0);
	io_submit(&ios[1], &lb, dev, BDEV_WRITE, pos + 256 * K, buf + 256 * K,
		  256 * K, 0);
	ios[1].io_req.br_end = io_end_md;
	run_two(&la, &lb, ios + 1, 1, 100000);
	UT_CHECK(ios[1].io_done && !ios[1].io_req.br_error, "degraded write");
	UT_EQ(layer_member_state(l, 3), LAYER_MEMBER_FAILED, "member 3");
	UT_CHECK(ack_recorded,
		 "acknowledged on loop 1 before the superblocks recorded the failure");
	UT_CHECK(super_stats(l, &ss) && ss.far_failures == 1 &&
			 ss.acks_held >= 1,
		 "not the far path: far_failures %llu, acks_held %llu",
		 (unsigned long long)ss.far_failures,
		 (unsigned long long)ss.acks_held);
	ck_assert_int_eq(super_probe_member(&la, l->l_members[0], &probe, err,
					    sizeof(err)),
			 0);
	UT_EQ(probe.sb.dev_roles[3], SUPER_ROLE_FAULTY, "member 3's role");
	UT_EQ(mode_of(r), LAYER_SPREAD, "still sharded, degraded");

	/* Idle: gathered, then marked clean. */
	super_safe_mode_ns = 20ull * 1000 * 1000;
	loop_hook_arm(&la, &l->l_md->sa_idle);
	UT_EQ(run_until_mode(&la, &lb, r, LAYER_GATHERED), LAYER_GATHERED,
	      "gathered when idle");
	for (int i = 0; i < 4000 && super_stats(l, &ss) && ss.active; i++)
		run_two(&la, &lb, NULL, 0, 1);
	UT_CHECK(!ss.active, "not marked clean when idle");

	/* Written again from loop 1: active, sharded; the bytes are there. */
	super_safe_mode_ns = 60ull * 1000 * 1000 * 1000;
	io_submit(&ios[0], &lb, dev, BDEV_WRITE, 0, buf, 64 * K, 0);
	run_two(&la, &lb, ios, 1, 100000);
	UT_CHECK(ios[0].io_done && !ios[0].io_req.br_error, "write when clean");
	UT_EQ(run_until_mode(&la, &lb, r, LAYER_SPREAD), LAYER_SPREAD,
	      "sharded again");
	back = aligned_alloc(4096, 512 * K);
	ck_assert_ptr_nonnull(back);
	read_on(&la, &lb, dev, pos, back, buf, 512 * K, "degraded read back");
	md_loops_close(dev, &la, &lb, safe_mode_ns);
	free(buf);
	free(back);
}
END_TEST

/*
 * A replace between an owned member's completion on loop 0 and its return
 * to loop 1: the error that comes back belongs to the member taken out,
 * and must not fail the new one (it did: "member 1 failed" while it
 * rebuilt).
 */
START_TEST(test_raid1_replace_far_error)
{
	static struct loop la, lb;
	struct bdev_layout_opts o = { .no_io = true, .max_io_bytes = MAX_IO };
	struct bdev *fresh;
	struct io io;
	struct arr a;
	char err[1024];

	if (!two_loops_init(&la, &lb))
		return;
	arr_open(&a, "raid1(mem(size=4m), faulty(mem(size=4m)))", &la);
	UT_EQ(bdev_tree_share(a.a_dev, 2, &la), 1, "owned devices");
	ck_assert_int_eq(faulty_configure(a.a_l->l_members[1], "write_eio=1",
					  err, sizeof(err)),
			 0);
	ut_fill(&a.a_rng, a.a_model, 64 * K);
	io_submit(&io, &lb, a.a_dev, BDEV_WRITE, 0, a.a_model, 64 * K, 0);
	/* Handed to faulty()'s loop 0, which fails it; its way back to loop
	 * 1 is a message that loop 1 has not taken yet. */
	loop_run(&lb, 0);
	for (int i = 0; i < 20; i++) {
		loop_run(&la, 0);
		usleep(100);
	}
	UT_CHECK(!io.io_done, "the write ended without loop 1");
	UT_EQ(bdev_inflight(a.a_l->l_members[1]), 0, "faulty() in flight");
	member_fail(a.a_l, 1);
	ck_assert_msg(!bdev_layout_open("mem(size=4m)", &la, &o, &fresh, err,
					sizeof(err)),
		      "%s", err);
	ck_assert_msg(!member_replace(&la, a.a_dev, "1", a.a_l, 1, fresh, err,
				      sizeof(err)),
		      "replace: %s", err);
	UT_EQ(layer_member_state(a.a_l, 1), LAYER_MEMBER_REBUILDING,
	      "the new member");
	run_two(&la, &lb, &io, 1, 100000);
	UT_CHECK(io.io_done && !io.io_req.br_error, "the write");
	UT_CHECK(layer_member_state(a.a_l, 1) != LAYER_MEMBER_FAILED,
		 "the old member's error failed the new one");
	for (int i = 0; i < 100000 && a.a_l->l_sweep_running; i++)
		run_two(&la, &lb, NULL, 0, 1);
	UT_EQ(layer_member_state(a.a_l, 1), LAYER_MEMBER_OK, "rebuilt");
	arr_check_all(&a, "after the replace");
	arr_close(&a);
	loop_exit(&la);
	loop_exit(&lb);
}
END_TEST

/* ---- a raid1 sweep racing a write ---- */

/* Run @loop until @l's sweep and @w are both done. */
static void run_sweep_and(struct loop *loop, struct layer *l, struct io *w)
{
	for (int i = 0; i < 100000 && (l->l_sweep_running || !w->io_done);
	     i++) {
		loop_run(loop, 0);
		usleep(20);
	}
	UT_CHECK(!l->l_sweep_running && w->io_done,
		 "sweep running %d, write done %d", l->l_sweep_running,
		 w->io_done);
}

static void scrub_to_end(struct arr *a, struct loop *loop, bool repair);

/* A check of @expr whose member @m, a faulty(), has @faults too: the
 * member is failed (it cannot take back, or read back, what it could not
 * read), and nothing counts as rewritten. */
static void check_fails(struct loop *loop, const char *expr, int m,
			const char *faults)
{
	struct layer *l;
	struct arr a;
	char err[256];

	arr_open(&a, expr, loop);
	l = a.a_l;
	ck_assert_int_eq(faulty_configure(l->l_members[m], faults, err,
					  sizeof(err)),
			 0);
	scrub_to_end(&a, loop, false);
	UT_EQ(layer_member_state(l, m), LAYER_MEMBER_FAILED,
	      "%s: member %d with %s", expr, m, faults);
	UT_EQ(l->l_rewritten_sectors, 0, "%s: rewritten", expr);
	arr_close(&a);
}

/* A check (or with @repair a repair) of @a on @loop, run to its end. */
static void scrub_to_end(struct arr *a, struct loop *loop, bool repair)
{
	struct layer *l = a->a_l;

	ck_assert_int_ge(member_scrub(loop, a->a_dev, repair, NULL, 0), 1);
	for (int i = 0; i < 100000 && l->l_sweep_running; i++)
		loop_run(loop, 0);
	UT_CHECK(!l->l_sweep_running, "%s: the %s did not end", a->a_expr,
		 repair ? "repair" : "check");
}

/*
 * A check or repair reads the mirrors while a write is in flight to them:
 * it has landed on mirror 0 but not yet on mirror 1, held there by a
 * latency spike, so the sweep reads two different 4k.  That is a race,
 * not a mismatch: the step is done again once the write is, and nothing
 * is counted.  A repair counts a real mismatch once, however often its
 * step is done again.
 */
START_TEST(test_raid1_sweep_races_write)
{
	const char *expr = "raid1(mem(size=4m), "
			   "faulty(mem(size=4m), lat_spike=5ms@1))";
	struct loop loop;
	struct layer *l;
	struct arr a;
	struct io w;
	char err[256];
	uint8_t *buf = aligned_alloc(4096, 4 * K);

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	ck_assert_ptr_nonnull(buf);
	arr_open(&a, expr, &loop);
	l = a.a_l;
	for (int repair = 0; repair < 2; repair++) {
		uint64_t before = l->l_mismatch_sectors;

		ck_assert_int_eq(faulty_configure(l->l_members[1],
						  "lat_spike=5ms@1", err,
						  sizeof(err)),
				 0);
		if (repair) {
			/* A real difference: 4k of mirror 1 alone. */
			memset(buf, 0x5a, 4 * K);
			UT_EQ(do_io(&loop, l->l_members[1], BDEV_WRITE, 0, buf,
				    4 * K, 0),
			      0, "mirror 1's own write");
		}
		ut_fill(&a.a_rng, a.a_model + 64 * K, 4 * K);
		io_submit(&w, &loop, a.a_dev, BDEV_WRITE, 64 * K,
			  a.a_model + 64 * K, 4 * K, 0);
		UT_CHECK(!w.io_done, "the write ended before its spike");
		/* The sweep's own reads are not held. */
		ck_assert_int_eq(faulty_configure(l->l_members[1],
						  "lat_spike=none", err,
						  sizeof(err)),
				 0);
		ck_assert_int_ge(member_scrub(&loop, a.a_dev, repair, NULL, 0),
				 1);
		run_sweep_and(&loop, l, &w);
		UT_EQ(w.io_req.br_error, 0, "the write");
		UT_EQ(l->l_mismatch_sectors - before, repair ? 8 : 0,
		      "%s: mismatched sectors", repair ? "repair" : "check");
	}
	arr_check_all(&a, "after the sweeps");
	for (int m = 0; m < 2; m++) {
		member_read(&a, m, 0, a.a_buf, MAX_IO);
		UT_CHECK(!memcmp(a.a_buf, a.a_model, MAX_IO),
			 "mirror %d differs after the repair", m);
	}
	free(buf);
	arr_close(&a);
	loop_exit(&loop);
}
END_TEST

/* Open @expr on @loop, make its last member, a faulty(), fail every read,
 * and run a check to its end; the layer. */
static struct layer *check_with_bad_last(struct arr *a, struct loop *loop,
					 const char *expr)
{
	struct layer *l;
	char err[256];

	arr_open(a, expr, loop);
	l = a->a_l;
	ck_assert_int_eq(faulty_configure(l->l_members[l->l_nr - 1],
					  "read_eio=1", err, sizeof(err)),
			 0);
	ck_assert_int_ge(member_scrub(loop, a->a_dev, false, NULL, 0), 1);
	for (int i = 0; i < 1000 && l->l_sweep_running; i++)
		loop_run(loop, 0);
	UT_CHECK(!l->l_sweep_running, "%s: the check did not end", expr);
	UT_EQ(layer_member_state(l, l->l_nr - 1), LAYER_MEMBER_FAILED,
	      "%s: the last mirror after it failed the check's read", expr);
	UT_EQ(layer_member_state(l, 0), LAYER_MEMBER_OK, "%s: mirror 0", expr);
	return l;
}

/* A mirror that fails a check's read is failed, as one that fails a
 * user's read: the check stopped and left it ok, to fail the next read.
 * With two mirrors left to compare, the check goes on to the end. */
START_TEST(test_raid1_check_fails_mirror)
{
	struct loop loop;
	struct layer *l;
	struct arr a;

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	l = check_with_bad_last(&a, &loop,
				"raid1(mem(size=4m), faulty(mem(size=4m)))");
	UT_CHECK(l->l_sweep_pos < l->l_sweep_total,
		 "a check with one mirror left went on");
	arr_close(&a);
	l = check_with_bad_last(&a, &loop,
				"raid1(mem(size=4m), mem(size=4m), faulty(mem(size=4m)))");
	UT_EQ(l->l_sweep_pos, l->l_sweep_total,
	      "the check of the two mirrors left stopped short");
	UT_EQ(l->l_mismatch_sectors, 0, "mismatched");
	arr_close(&a);
	loop_exit(&loop);
}
END_TEST

/*
 * A latent sector error: 8k of mirror 1 cannot be read until written.  A
 * check or repair writes that step back onto it from mirror 0, reads it
 * back, and leaves it in the array (md does the same); the old code
 * failed the mirror.  One that cannot take the write either is failed.
 */
START_TEST(test_raid1_check_rewrites_unreadable)
{
	const char *expr = "raid1(mem(size=4m), "
			   "faulty(mem(size=4m), unreadable=1048576..1056768))";
	struct loop loop;
	struct layer *l;
	struct arr a;

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	for (int repair = 0; repair < 2; repair++) {
		const struct faulty_stats *fs;

		arr_open(&a, expr, &loop);
		l = a.a_l;
		fs = faulty_stats(l->l_members[1]);
		/* Written around the bad sectors, not over them. */
		arr_write(&a, 0, MAX_IO);
		arr_write(&a, 2 * M, MAX_IO);
		UT_EQ(fs->unreadable_sectors, 16, "unreadable before");
		scrub_to_end(&a, &loop, repair);
		UT_EQ(layer_member_state(l, 1), LAYER_MEMBER_OK,
		      "%s: the mirror that could not read 8k",
		      repair ? "repair" : "check");
		UT_EQ(l->l_sweep_pos, l->l_sweep_total, "the sweep's end");
		UT_EQ(fs->unreadable_sectors, 0, "unreadable after");
		UT_EQ(l->l_rewritten_sectors, M / 512, "rewritten: its step");
		UT_EQ(l->l_mismatch_sectors, 0, "mismatched");
		for (int m = 0; m < 2; m++) {
			member_read(&a, m, M, a.a_buf, MAX_IO);
			UT_CHECK(!memcmp(a.a_buf, a.a_model + M, MAX_IO),
				 "mirror %d differs after the rewrite", m);
		}
		arr_check_all(&a, "after the sweep");
		arr_close(&a);
	}
	check_fails(&loop, expr, 1, "write_eio=1");
	loop_exit(&loop);
}
END_TEST

/*
 * A user read that meets a latent sector error on a raid1 mirror is served
 * by the other, and the range is written back onto the mirror, read back,
 * and the mirror stays (md's read-error correction; the old code failed
 * it).  A mirror that cannot read back is failed.  Where no mirror can
 * read a range, the read fails and no mirror is failed for it.
 */
START_TEST(test_raid1_read_mends_unreadable)
{
	const char *bad = "unreadable=1048576..1056768";
	char expr[256], err[256];
	struct loop loop;
	struct layer *l;
	struct arr a;

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	snprintf(expr, sizeof(expr),
		 "raid1(mem(size=4m), faulty(mem(size=4m), %s))", bad);
	arr_open(&a, expr, &loop);
	l = a.a_l;
	arr_write(&a, 0, MAX_IO);
	/* Reads alternate between the mirrors: one of the two meets it. */
	for (int i = 0; i < 4; i++)
		UT_EQ(do_io(&loop, a.a_dev, BDEV_READ, M, a.a_buf, MAX_IO, 0),
		      0, "read %d over the bad sectors", i);
	for (int i = 0; i < 1000 && !l->l_corrected_sectors; i++)
		loop_run(&loop, 0);
	UT_EQ(layer_member_state(l, 1), LAYER_MEMBER_OK, "the mirror");
	UT_EQ(l->l_corrected_sectors, MAX_IO / 512, "corrected: the read");
	UT_EQ(faulty_stats(l->l_members[1])->unreadable_sectors, 0,
	      "unreadable after");
	arr_check_all(&a, "after the fix");
	UT_EQ(l->l_corrected_sectors, MAX_IO / 512, "corrected again");
	ck_assert_int_eq(faulty_configure(l->l_members[1], "read_eio=1", err,
					  sizeof(err)),
			 0);
	for (int i = 0; i < 2; i++)
		UT_EQ(do_io(&loop, a.a_dev, BDEV_READ, 0, a.a_buf, MAX_IO, 0),
		      0, "read %d with a mirror that reads nothing", i);
	for (int i = 0; i < 1000 && !layer_nr_bad(l); i++)
		loop_run(&loop, 0);
	UT_EQ(layer_member_state(l, 1), LAYER_MEMBER_FAILED,
	      "a mirror that reads nothing back");
	arr_close(&a);

	snprintf(expr, sizeof(expr),
		 "raid1(faulty(mem(size=4m), %s), faulty(mem(size=4m), %s))",
		 bad, bad);
	arr_open(&a, expr, &loop);
	l = a.a_l;
	UT_EQ(do_io(&loop, a.a_dev, BDEV_READ, M, a.a_buf, 4096, 0), -EIO,
	      "a read no mirror can serve");
	UT_EQ(layer_nr_bad(l), 0, "mirrors failed for it");
	arr_write(&a, M, 8 * K);
	arr_check(&a, M, 8 * K, "once written");
	arr_close(&a);
	loop_exit(&loop);
}
END_TEST

/*
 * Read errors wait for their fix on a list of R1_FIXES_MAX: while the
 * first fix's write back is held (a latency spike), reads that meet 16
 * more bad ranges of mirror 1, more than R1_FIX_GAP_BYTES apart, fill it,
 * and the 17th is left out until a read meets it again; no mirror is
 * failed for it (that failed the other mirror, once, for this one's
 * errors).  Every read returns its data.  Ranges closer than that wait as
 * one.
 */
START_TEST(test_raid1_mends_bounded)
{
	const char *expr = "raid1(mem(size=32m), faulty(mem(size=32m), "
			   "unreadable=0..32m, lat_spike=1s@1))";
	struct loop loop;
	struct layer *l;
	struct arr a;
	char err[256];
	int reads = 0;

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	arr_open(&a, expr, &loop);
	l = a.a_l;
	/* Every other read goes to mirror 1: its ranges 1152k apart, more
	 * than R1_FIX_GAP_BYTES.  The first fix runs, R1_FIXES_MAX wait, and
	 * the last is left out. */
	for (uint64_t pos = 0; pos < 2 * (R1_FIXES_MAX + 2) * 576 * K;
	     pos += 576 * K) {
		UT_EQ(do_io(&loop, a.a_dev, BDEV_READ, pos, a.a_buf, 4096, 0),
		      0, "read at %llu", (unsigned long long)pos);
		reads++;
	}
	UT_EQ(layer_nr_bad(l), 0, "failed after %d reads", reads);
	UT_EQ(raid1_of(l)->nr_fixes, R1_FIXES_MAX, "fixes waiting");
	/* The held write back goes on, and every fix waiting. */
	ck_assert_int_eq(faulty_configure(l->l_members[1], "lat_spike=none",
					  err, sizeof(err)),
			 0);
	for (int i = 0; i < 100000 && raid1_of(l)->fixing; i++)
		loop_run(&loop, 0);
	UT_CHECK(!raid1_of(l)->fixing, "the fix did not end");
	UT_EQ(l->l_corrected_sectors, (R1_FIXES_MAX + 1) * 8, "corrected");
	/* The one left out, met again. */
	for (int i = 0; i < 2; i++)
		UT_EQ(do_io(&loop, a.a_dev, BDEV_READ,
			    (2 * R1_FIXES_MAX + 3) * 576 * K, a.a_buf, 4096, 0),
		      0, "the read left out, again");
	UT_EQ(l->l_corrected_sectors, (R1_FIXES_MAX + 2) * 8,
	      "corrected after it");
	UT_EQ(layer_nr_bad(l), 0, "failed members");
	arr_close(&a);

	/* 64 reads 64k apart, 32 of them on mirror 1: one range waits. */
	arr_open(&a, expr, &loop);
	l = a.a_l;
	for (uint64_t pos = 0; pos < 4 * M; pos += 64 * K)
		UT_EQ(do_io(&loop, a.a_dev, BDEV_READ, pos, a.a_buf, 4096, 0),
		      0, "read at %llu", (unsigned long long)pos);
	UT_EQ(layer_nr_bad(l), 0, "failed after reads close together");
	UT_EQ(raid1_of(l)->nr_fixes, 1, "fixes waiting");
	ck_assert_int_eq(faulty_configure(l->l_members[1], "lat_spike=none",
					  err, sizeof(err)),
			 0);
	for (int i = 0; i < 100000 && raid1_of(l)->fixing; i++)
		loop_run(&loop, 0);
	UT_EQ(layer_member_state(l, 1), LAYER_MEMBER_OK, "the mirror mended");
	for (uint64_t pos = 0; pos < 4 * M; pos += MAX_IO)
		arr_check(&a, pos, MAX_IO, "after the fixes");
	arr_close(&a);
	loop_exit(&loop);
}
END_TEST

/*
 * Each mirror has a bad page in the same 1 MiB step, in different pages:
 * no mirror reads the step whole, so it is done again a page at a time,
 * and each page is written back from the mirror that reads it (md works in
 * pages); the old code failed both mirrors.  A page no mirror reads is
 * left, and fails no mirror.
 */
START_TEST(test_raid1_check_pages)
{
	const char *expr =
		"raid1(faulty(mem(size=4m), unreadable=2097152..2101248), "
		"faulty(mem(size=4m), unreadable=2621440..2625536))";
	const char *both =
		"raid1(faulty(mem(size=4m), unreadable=2097152..2101248), "
		"faulty(mem(size=4m), unreadable=2097152..2101248))";
	struct loop loop;
	struct layer *l;
	struct arr a;

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	arr_open(&a, expr, &loop);
	l = a.a_l;
	arr_write(&a, 0, MAX_IO);
	scrub_to_end(&a, &loop, false);
	UT_EQ(layer_nr_bad(l), 0, "failed mirrors");
	UT_EQ(l->l_sweep_pos, l->l_sweep_total, "the check's end");
	UT_EQ(l->l_rewritten_sectors, 16, "rewritten: two pages");
	UT_EQ(l->l_mismatch_sectors, 0, "mismatched");
	for (int m = 0; m < 2; m++)
		UT_EQ(faulty_stats(l->l_members[m])->unreadable_sectors, 0,
		      "mirror %d unreadable after", m);
	arr_check_all(&a, "after the check");
	arr_close(&a);

	arr_open(&a, both, &loop);
	l = a.a_l;
	scrub_to_end(&a, &loop, true);
	UT_EQ(layer_nr_bad(l), 0, "failed for a page none reads");
	UT_EQ(l->l_sweep_pos, l->l_sweep_total, "the repair's end");
	UT_EQ(do_io(&loop, a.a_dev, BDEV_READ, 2 * M, a.a_buf, 4096, 0), -EIO,
	      "a read of the page");
	arr_close(&a);
	loop_exit(&loop);
}
END_TEST

/*
 * The same in raid5 and raid6: a stripe whose column a member cannot read
 * is rebuilt from the others, written back and read back, and the member
 * stays in the array (raid6: two members in one stripe).  A second check
 * finds parity consistent and nothing left to rewrite.
 */
START_TEST(test_raid56_check_rewrites_unreadable)
{
#define R56_BAD "faulty(mem(size=4m), unreadable=1048576..1056768)"
	static const struct {
		const char *expr;
		int nr_bad;
	} cases[] = {
		{ "raid5(mem(size=4m), mem(size=4m), mem(size=4m), " R56_BAD
		  ", chunk=64k)",
		  1 },
		{ "raid6(mem(size=4m), mem(size=4m), " R56_BAD
		  ", mem(size=4m), " R56_BAD ", chunk=64k)",
		  2 },
	};
#undef R56_BAD
	struct loop loop;

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (int repair = 0; repair < 2; repair++) {
			struct layer *l;
			struct arr a;

			arr_open(&a, cases[c].expr, &loop);
			l = a.a_l;
			arr_write(&a, 0, MAX_IO);
			for (int pass = 0; pass < 2; pass++) {
				scrub_to_end(&a, &loop, repair && !pass);
				UT_EQ(layer_nr_bad(l), 0, "%s: %s %d: failed",
				      cases[c].expr,
				      repair ? "repair" : "check", pass);
				UT_EQ(l->l_rewritten_sectors,
				      pass ? 0 : cases[c].nr_bad * 128,
				      "%s: %s %d: rewritten", cases[c].expr,
				      repair ? "repair" : "check", pass);
				UT_EQ(l->l_mismatch_sectors, 0,
				      "%s: %s %d: mismatched", cases[c].expr,
				      repair ? "repair" : "check", pass);
			}
			for (int m = 0; m < l->l_nr; m++)
				if (l->l_members[m]->bd_desc == &faulty_kind)
					UT_EQ(faulty_stats(l->l_members[m])
						      ->unreadable_sectors,
					      0, "member %d unreadable after",
					      m);
			arr_check_all(&a, "after the sweeps");
			arr_close(&a);
		}
	}
	/* A member that reads nothing back is failed. */
	check_fails(&loop, cases[0].expr, 3, "read_eio=1");
	loop_exit(&loop);
}
END_TEST

/*
 * Two raid5 members each have a bad page in the same stripe's column,
 * different pages: more than parity covers over the whole column, so the
 * check does the stripe again a page at a time and rebuilds each page
 * from the others; the old code failed both members.  A page both lack is
 * lost, logged, and fails no member.
 */
START_TEST(test_raid5_check_pages)
{
	static const char *const exprs[] = {
		"raid5(faulty(mem(size=4m), unreadable=1048576..1052672), "
		"faulty(mem(size=4m), unreadable=1081344..1085440), "
		"mem(size=4m), mem(size=4m), chunk=64k)",
		"raid5(faulty(mem(size=4m), unreadable=1048576..1052672), "
		"faulty(mem(size=4m), unreadable=1048576..1052672), "
		"mem(size=4m), mem(size=4m), chunk=64k)",
	};
	struct loop loop;

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	for (int c = 0; c < 2; c++) {
		struct layer *l;
		struct arr a;

		arr_open(&a, exprs[c], &loop);
		l = a.a_l;
		arr_write(&a, 0, MAX_IO);
		scrub_to_end(&a, &loop, c);
		UT_EQ(layer_nr_bad(l), 0, "case %d: failed members", c);
		UT_EQ(l->l_sweep_pos, l->l_sweep_total, "case %d: the end", c);
		UT_EQ(l->l_rewritten_sectors, c ? 0 : 16, "case %d: rewritten",
		      c);
		if (!c) {
			UT_EQ(l->l_mismatch_sectors, 0, "mismatched");
			for (int m = 0; m < 2; m++)
				UT_EQ(faulty_stats(l->l_members[m])
					      ->unreadable_sectors,
				      0, "member %d unreadable after", m);
			arr_check_all(&a, "after the check");
		}
		arr_close(&a);
	}
	/* raid6, three members bad in pages 1, 2 and 3 of stripe 0; the
	 * first cannot take its page back and is failed: the pages after it
	 * are still mended (the old code ended the stripe there). */
	{
		struct layer *l;
		struct arr a;

		arr_open(&a,
			 "raid6(mem(size=4m), "
			 "faulty(mem(size=4m), unreadable=4096..8192, write_eio=1), "
			 "faulty(mem(size=4m), unreadable=8192..12288), "
			 "faulty(mem(size=4m), unreadable=12288..16384), "
			 "mem(size=4m), chunk=64k)",
			 &loop);
		l = a.a_l;
		scrub_to_end(&a, &loop, false);
		UT_EQ(layer_member_state(l, 1), LAYER_MEMBER_FAILED,
		      "the member that cannot write");
		UT_EQ(layer_nr_bad(l), 1, "failed members");
		UT_EQ(l->l_rewritten_sectors, 16, "rewritten: pages 2 and 3");
		for (int m = 2; m < 4; m++)
			UT_EQ(faulty_stats(l->l_members[m])->unreadable_sectors,
			      0, "member %d unreadable after", m);
		arr_close(&a);
	}
	loop_exit(&loop);
}
END_TEST

/*
 * A user read that meets a latent sector error on a raid5 member: it is
 * read again from parity, the column is written back onto the member and
 * read back, and the member stays in the array (md's read-error
 * correction); the old code failed it.  Member 3 holds the first data
 * chunk of stripe 17 (array bytes 3264k..3328k).
 */
START_TEST(test_raid5_read_rewrites_unreadable)
{
	const char *expr = "raid5(mem(size=4m), mem(size=4m), mem(size=4m), "
			   "faulty(mem(size=4m), unreadable=1114112..1122304), "
			   "chunk=64k)";
	struct loop loop;
	struct layer *l;
	struct arr a;
	char err[256];

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	arr_open(&a, expr, &loop);
	l = a.a_l;
	arr_write(&a, 3072 * K, 192 * K); /* up to the bad chunk, not over */
	UT_EQ(faulty_stats(l->l_members[3])->unreadable_sectors, 16,
	      "unreadable before");
	arr_check_all(&a, "reading over the bad sectors");
	UT_EQ(layer_nr_bad(l), 0, "failed members");
	UT_EQ(l->l_corrected_sectors, 128, "corrected: the chunk's column");
	UT_EQ(faulty_stats(l->l_members[3])->unreadable_sectors, 0,
	      "unreadable after");
	scrub_to_end(&a, &loop, false);
	UT_EQ(l->l_mismatch_sectors + l->l_rewritten_sectors, 0,
	      "a check after it");
	arr_check_all(&a, "again");
	/* A partial write whose reconstruct-write reads meet them: 64k of
	 * data chunk 1 and 4k of chunk 2 read the rest from chunk 0. */
	ck_assert_int_eq(faulty_configure(l->l_members[3],
					  "unreadable=1114112..1122304", err,
					  sizeof(err)),
			 0);
	arr_write(&a, 3328 * K, 68 * K);
	UT_EQ(layer_nr_bad(l), 0, "failed members after the write");
	UT_CHECK(l->l_corrected_sectors > 128, "corrected by the write: %llu",
		 (unsigned long long)l->l_corrected_sectors);
	arr_check_all(&a, "after the write");
	UT_EQ(layer_nr_bad(l), 0, "failed members after reading");
	UT_EQ(faulty_stats(l->l_members[3])->unreadable_sectors, 0,
	      "unreadable after the write and the reads");
	arr_close(&a);
	loop_exit(&loop);
}
END_TEST

/* ---- an md raid1 on two loops ---- */

/*
 * Clean, an md raid1 is gathered on loop 0 for its writes, but reads stay
 * on their loops; a check gathers those too, waiting for loop 1's read in
 * flight (both mirrors are faulty(), loop 0's, so it stays in flight until
 * loop 0 runs it and loop 1 takes it back).
 */
START_TEST(test_raid1_md_two_loops)
{
	static struct loop la, lb;
	const char *expr = "raid1(faulty(mem(size=5m), lat_spike=1ms@1), "
			   "faulty(mem(size=5m), lat_spike=1ms@1), super=1.2)";
	struct bdev_layout_opts o = { .max_io_bytes = MAX_IO };
	struct super_stats ss;
	struct io ios[2];
	uint64_t safe_mode_ns = super_safe_mode_ns, reads;
	struct bdev *dev;
	struct layer *l;
	char err[1024];
	uint8_t *buf = aligned_alloc(4096, 256 * K);

	if (!two_loops_init(&la, &lb))
		return;
	ck_assert_msg(!bdev_layout_open(expr, &la, &o, &dev, err, sizeof(err)),
		      "%s: %s", expr, err);
	l = layer_of(dev);
	ck_assert_ptr_nonnull(l->l_md);
	super_safe_mode_ns = 60ull * 1000 * 1000 * 1000;
	ck_assert_int_eq(bdev_tree_share(dev, 2, &la), 2);
	for (int i = 0; i < 100000 && super_stats(l, &ss) &&
			(ss.resync_pending || l->l_sweep_running);
	     i++) {
		run_two(&la, &lb, NULL, 0, 1);
		usleep(50);
	}
	UT_CHECK(!ss.resync_pending && !ss.active, "resync not done");
	UT_EQ(l->l_spread.ls_mode, LAYER_GATHERED, "gathered while clean");
	UT_EQ(l->l_spread.ls_why, LAYER_GATHER_MD, "gathered for md alone");
	ck_assert_ptr_eq(dev->bd_owner, &la);

	/* Loop 1's read runs there: counted on its shard, not handed. */
	reads = dev->bd_stats_more[0].ops[BDEV_READ];
	io_submit(&ios[0], &lb, dev, BDEV_READ, 0, buf, 64 * K, 0);
	UT_EQ(dev->bd_stats_more[0].ops[BDEV_READ] - reads, 1,
	      "loop 1's read, clean: handed to loop 0");
	UT_CHECK(!ios[0].io_done, "loop 1's read ended before its member ran");

	/* A check while it is in flight waits for it. */
	ck_assert_int_ge(member_scrub(&la, dev, false, NULL, 0), 1);
	UT_EQ(l->l_spread.ls_mode, LAYER_GATHERING,
	      "a check gathered at once with loop 1's read in flight");
	ck_assert(!dev->bd_reads_stay);
	for (int i = 0; i < 40; i++) {
		loop_run(&la, 0);
		usleep(100);
	}
	UT_EQ(l->l_spread.ls_mode, LAYER_GATHERING,
	      "gathered with loop 1's read not back");
	UT_EQ(l->l_sweep_pos, 0, "the check started before the gather");
	/* Loop 1's next read goes to loop 0 now. */
	reads = dev->bd_stats_more[0].ops[BDEV_READ];
	io_submit(&ios[1], &lb, dev, BDEV_READ, 64 * K, buf + 64 * K, 64 * K,
		  0);
	UT_EQ(dev->bd_stats_more[0].ops[BDEV_READ], reads,
	      "loop 1 ran a read while a check gathers the array");
	run_two(&la, &lb, ios, 2, 100000);
	UT_CHECK(ios[0].io_done && ios[1].io_done && !ios[0].io_req.br_error &&
			 !ios[1].io_req.br_error,
		 "reads not done");
	for (int i = 0; i < 100000 && l->l_sweep_running; i++) {
		run_two(&la, &lb, NULL, 0, 1);
		usleep(50);
	}
	UT_CHECK(!l->l_sweep_running, "the check did not end");
	UT_EQ(l->l_mismatch_sectors, 0, "check: %llu mismatched",
	      (unsigned long long)l->l_mismatch_sectors);
	UT_EQ(l->l_spread.ls_mode, LAYER_GATHERED, "gathered again, clean");
	ck_assert(dev->bd_reads_stay);
	md_loops_close(dev, &la, &lb, safe_mode_ns);
	free(buf);
}
END_TEST

/*
 * Clean, an md raid5 is gathered on loop 0 for its writes, but its healthy
 * reads stay on their loops (they were all handed to loop 0); a read that
 * then needs stripe ops, because a member fails under it or is failed
 * already, moves to loop 0, which owns every stripe: loop 1's shard runs
 * no stripe op while the array is gathered.
 */
START_TEST(test_raid5_md_reads_stay)
{
	static struct loop la, lb;
	const char *expr = "raid5(mem(size=5m), mem(size=5m), mem(size=5m), "
			   "faulty(mem(size=5m)), chunk=64k, super=1.2)";
	struct bdev_layout_opts o = { .max_io_bytes = MAX_IO };
	struct super_stats ss;
	struct io io;
	uint64_t safe_mode_ns = super_safe_mode_ns, reads, splits;
	struct bdev *dev;
	struct layer *l;
	struct r56 *r;
	char err[1024];
	uint8_t *buf, *back;

	if (!two_loops_init(&la, &lb))
		return;
	buf = aligned_alloc(4096, 768 * K);
	ck_assert_ptr_nonnull(buf);
	ck_assert_msg(!bdev_layout_open(expr, &la, &o, &dev, err, sizeof(err)),
		      "%s: %s", expr, err);
	l = layer_of(dev);
	r = r56_of(l);
	super_safe_mode_ns = 20ull * 1000 * 1000;
	ck_assert_int_eq(bdev_tree_share(dev, 2, &la), 1);
	for (size_t i = 0; i < 768 * K; i++)
		buf[i] = (uint8_t)(i * 13 + i / 4096);
	io_submit(&io, &la, dev, BDEV_WRITE, 0, buf, 768 * K, 0);
	run_two(&la, &lb, &io, 1, 100000);
	UT_CHECK(io.io_done && !io.io_req.br_error, "write");
	for (int i = 0; i < 100000 && super_stats(l, &ss) &&
			(ss.resync_pending || ss.active || l->l_sweep_running ||
			 mode_of(r) != LAYER_GATHERED);
	     i++) {
		run_two(&la, &lb, NULL, 0, 1);
		usleep(50);
	}
	UT_CHECK(!ss.resync_pending && !ss.active, "not clean");
	UT_EQ(mode_of(r), LAYER_GATHERED, "gathered while clean");
	UT_EQ(l->l_spread.ls_why, LAYER_GATHER_MD, "gathered for md alone");
	super_safe_mode_ns = 60ull * 1000 * 1000 * 1000;
	back = aligned_alloc(4096, 768 * K);
	ck_assert_ptr_nonnull(back);

	/* Healthy: runs on loop 1, counted on its shard. */
	reads = dev->bd_stats_more[0].ops[BDEV_READ];
	io_submit(&io, &lb, dev, BDEV_READ, 0, back, 256 * K, 0);
	UT_EQ(dev->bd_stats_more[0].ops[BDEV_READ] - reads, 1,
	      "loop 1's read, clean: handed to loop 0");
	run_two(&la, &lb, &io, 1, 100000);
	UT_CHECK(io.io_done && !io.io_req.br_error &&
			 !memcmp(back, buf, 256 * K),
		 "healthy read from loop 1");

	/* Member 3 (stripe 1's first data chunk) fails under loop 1's read:
	 * read again on loop 0. */
	ck_assert_int_eq(faulty_configure(l->l_members[3], "read_eio=1", err,
					  sizeof(err)),
			 0);
	memset(back, 0, 768 * K);
	splits = layer_stats_sum(l).splits;
	read_on(&la, &lb, dev, 0, back, buf, 256 * K,
		"read from loop 1 as member 3 fails");
	UT_EQ(layer_member_state(l, 3), LAYER_MEMBER_FAILED, "member 3");
	/* Its healthy pass over four members, again on loop 0 (a read error
	 * alone fails no member: it may be one bad sector, which the pass
	 * from parity writes back), and that pass, whose read back of member
	 * 3 fails it. */
	UT_EQ(layer_stats_sum(l).splits - splits, 3, "splits, moved read");
	UT_CHECK(r->sh0.st.degraded_ops > 0, "loop 0 reconstructed nothing");

	/* Degraded already: straight to loop 0. */
	memset(back, 0, 768 * K);
	read_on(&la, &lb, dev, 128 * K, back, buf + 128 * K, 256 * K,
		"degraded read from loop 1");
	UT_EQ(mode_of(r), LAYER_GATHERED, "still gathered");
	UT_EQ(r->sh[1]->st.degraded_ops + r->sh[1]->st.pieces_handed, 0,
	      "loop 1's shard ran stripe ops while loop 0 owned them all");
	md_loops_close(dev, &la, &lb, safe_mode_ns);
	free(buf);
	free(back);
}
END_TEST

/*
 * An md array gathering to be marked clean while loop 1 keeps reading.
 * Reads that stay on their loop are counted there, and the gather waits
 * for loop 1's requests to drain: it waited for ever, and every write
 * with it.  While it gathers, reads go to loop 0 as writes do.  (Mirrors
 * and stripes are faulty(), loop 0's, so a read from loop 1 is in flight
 * there most of the time.)
 */
static const char *const gather_reads_exprs[] = {
	"raid1(faulty(mem(size=5m)), faulty(mem(size=5m)), super=1.2)",
	"raid5(faulty(mem(size=5m)), faulty(mem(size=5m)), "
	"faulty(mem(size=5m)), faulty(mem(size=5m)), chunk=64k, super=1.2)",
};

static struct bdev *reader_dev;
static struct loop *reader_loop;
static bool readers_on;
static uint64_t reads_done;
static uint8_t reader_buf[64 * K] __attribute__((aligned(4096)));

static void reader_end(struct bdev_req *req)
{
	struct io *io = req->br_private;

	reads_done++;
	if (!readers_on || req->br_error) {
		io->io_done = true;
		return;
	}
	io_submit(io, reader_loop, reader_dev, BDEV_READ, 0, reader_buf, 64 * K,
		  0);
	io->io_req.br_end = reader_end;
}

START_TEST(test_spread_gather_reads)
{
	static struct loop la, lb;
	const char *expr = gather_reads_exprs[_i];
	struct bdev_layout_opts o = { .max_io_bytes = MAX_IO };
	uint64_t safe_mode_ns = super_safe_mode_ns, before;
	struct super_stats ss;
	struct io io, rd[4];
	struct bdev *dev;
	struct layer *l;
	char err[1024];
	static uint8_t buf[64 * K] __attribute__((aligned(4096)));
	int i;

	if (!two_loops_init(&la, &lb))
		return;
	ck_assert_msg(!bdev_layout_open(expr, &la, &o, &dev, err, sizeof(err)),
		      "%s: %s", expr, err);
	l = layer_of(dev);
	super_safe_mode_ns = 60ull * 1000 * 1000 * 1000;
	ck_assert_int_eq(bdev_tree_share(dev, 2, &la), _i ? 4 : 2);
	for (i = 0; i < 100000 && super_stats(l, &ss) &&
		    (ss.resync_pending || l->l_sweep_running);
	     i++) {
		run_two(&la, &lb, NULL, 0, 1);
		usleep(50);
	}
	memset(buf, 7, sizeof(buf));
	io_submit(&io, &la, dev, BDEV_WRITE, 0, buf, 64 * K, 0);
	run_two(&la, &lb, &io, 1, 100000);
	UT_CHECK(io.io_done && !io.io_req.br_error, "%s: write", expr);
	for (i = 0; i < 4000 && l->l_spread.ls_mode != LAYER_SPREAD; i++) {
		run_two(&la, &lb, NULL, 0, 1);
		usleep(100);
	}
	UT_EQ(l->l_spread.ls_mode, LAYER_SPREAD, "%s: spread once active",
	      expr);

	/* Loop 1 reads without a pause; the array goes idle. */
	reader_dev = dev;
	reader_loop = &lb;
	readers_on = true;
	for (i = 0; i < 4; i++) {
		io_submit(&rd[i], &lb, dev, BDEV_READ, 0, reader_buf, 64 * K,
			  0);
		rd[i].io_req.br_end = reader_end;
	}
	super_safe_mode_ns = 20ull * 1000 * 1000;
	loop_hook_arm(&la, &l->l_md->sa_idle);
	for (i = 0; i < 20000 && (l->l_spread.ls_mode != LAYER_GATHERED ||
				  (super_stats(l, &ss) && ss.active));
	     i++) {
		run_two(&la, &lb, NULL, 0, 1);
		usleep(50);
	}
	UT_EQ(l->l_spread.ls_mode, LAYER_GATHERED,
	      "%s: never gathered while loop 1 kept reading", expr);
	UT_CHECK(super_stats(l, &ss) && !ss.active, "%s: not marked clean",
		 expr);
	before = reads_done;
	for (i = 0; i < 200; i++)
		run_two(&la, &lb, NULL, 0, 1);
	UT_CHECK(reads_done > before, "%s: reads stopped", expr);

	/* A write meanwhile is not held behind the reads. */
	super_safe_mode_ns = 60ull * 1000 * 1000 * 1000;
	io_submit(&io, &la, dev, BDEV_WRITE, 64 * K, buf, 64 * K, 0);
	for (i = 0; i < 20000 && !io.io_done; i++) {
		run_two(&la, &lb, NULL, 0, 1);
		usleep(50);
	}
	UT_CHECK(io.io_done && !io.io_req.br_error,
		 "%s: a write waited behind loop 1's reads", expr);
	readers_on = false;
	run_two(&la, &lb, rd, 4, 100000);
	for (i = 0; i < 4; i++)
		UT_CHECK(rd[i].io_done && !rd[i].io_req.br_error,
			 "%s: reader %d", expr, i);
	md_loops_close(dev, &la, &lb, safe_mode_ns);
}
END_TEST

/* ---- degraded arrays ---- */

static uint64_t member_ios(struct arr *a, int m)
{
	const struct bdev_stats *st = &a->a_l->l_members[m]->bd_stats;

	return st->ops[BDEV_READ] + st->ops[BDEV_WRITE];
}

/* With members @m1 (and @m2, if not -1) failed, the array reads back
 * what was written, from the others only. */
static void check_degraded(struct arr *a, int m1, int m2)
{
	uint64_t io1 = member_ios(a, m1), io2 = m2 >= 0 ? member_ios(a, m2) : 0;
	uint64_t deg = nparity_of(a) ? R56_STAT(a->a_dev, degraded_ops) : 0;
	char when[64];

	if (m2 >= 0)
		snprintf(when, sizeof(when), "members %d and %d failed", m1,
			 m2);
	else
		snprintf(when, sizeof(when), "member %d failed", m1);
	member_fail(a->a_l, m1);
	if (m2 >= 0)
		member_fail(a->a_l, m2);
	arr_check_all(a, when);
	for (int k = 0; k < 20; k++) {
		uint64_t len = blocks_upto(a, 1, 40, a->a_size);

		arr_check(a,
			  a->a_align *
				  ut_below(&a->a_rng,
					   (a->a_size - len) / a->a_align + 1),
			  len, when);
	}
	UT_EQ(member_ios(a, m1), io1, "%s: I/O to a failed member", a->a_expr);
	if (m2 >= 0)
		UT_EQ(member_ios(a, m2), io2, "%s: I/O to a failed member",
		      a->a_expr);
	if (nparity_of(a))
		UT_CHECK(R56_STAT(a->a_dev, degraded_ops) > deg,
			 "%s: %s: nothing reconstructed", a->a_expr, when);
	/* The members still hold their bytes: back in service as they are. */
	layer_set_state(a->a_l, m1, LAYER_MEMBER_OK);
	if (m2 >= 0)
		layer_set_state(a->a_l, m2, LAYER_MEMBER_OK);
}

/*
 * A request a latency spike holds goes on as soon as the faults change
 * (it waited out the spike, lat_spike=none or not: a 40 s spike kept dd
 * unkillable and a stop waiting), and faults that make no sense are
 * refused: spikes over 60 s, rates in hex, out of range or denormal, an
 * after= that overflows.
 */
START_TEST(test_faulty_spike_release)
{
	static const char *const bad[] = {
		"lat_spike=61s@1", "lat_spike=100000s@1",
		"read_eio=0x1",	   "read_eio=1e-400",
		"read_eio=inf",	   "write_eio=nan",
		"read_eio=",	   "after=99999999999999999999999",
		"after=-1",	   "after=+1",
	};
	struct loop loop;
	struct arr a;
	struct io r;
	char err[256];

	if (!one_loop_init(&loop))
		return; /* no io_uring to run */
	arr_open(&a, "faulty(mem(size=1m), lat_spike=60s@1)", &loop);
	io_submit(&r, &loop, a.a_dev, BDEV_READ, 0, a.a_buf, 4 * K, 0);
	for (int i = 0; i < 20; i++) {
		loop_run(&loop, 0);
		usleep(100);
	}
	UT_CHECK(!r.io_done, "the read was not held by its spike");
	ck_assert_int_eq(faulty_configure(a.a_dev, "lat_spike=none", err,
					  sizeof(err)),
			 0);
	UT_CHECK(r.io_done, "the read is still held after lat_spike=none");
	UT_EQ(r.io_req.br_error, 0, "the read");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		UT_EQ(faulty_configure(a.a_dev, bad[i], err, sizeof(err)),
		      -EINVAL, "'%s' was taken", bad[i]);
	ck_assert_int_eq(faulty_configure(a.a_dev,
					  "lat_spike=60s@1, read_eio=1e-3, after=7",
					  err, sizeof(err)),
			 0);
	arr_close(&a);
	loop_exit(&loop);
}
END_TEST

/* Member addresses are what member_addr() writes, and nothing else:
 * strtol() took "+1", "-0" and " 1" too. */
START_TEST(test_member_lookup)
{
	static const char *const bad[] = { "",	  "01",	 "+1",
					   "-0",  " 1",	 "1 ",
					   "1.",  ".1",	 "0x1",
					   "2",	  "0.0", "99999999999999999999",
					   "0.+0" };
	struct layer *l;
	struct arr a;
	char err[256];
	int m;

	arr_open(&a, "raid1(mem(size=1m), raid0(mem(size=1m), mem(size=1m)))",
		 NULL);
	UT_EQ(member_lookup(a.a_dev, "1", &l, &m, err, sizeof(err)), 0, "1");
	UT_CHECK(l == a.a_l && m == 1, "1: the wrong member");
	UT_EQ(member_lookup(a.a_dev, "1.0", &l, &m, err, sizeof(err)), 0,
	      "1.0");
	UT_CHECK(l == layer_of(a.a_l->l_members[1]) && m == 0,
		 "1.0: the wrong member");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *addr = bad[i];

		err[0] = '\0';
		UT_EQ(member_lookup(a.a_dev, addr, &l, &m, err, sizeof(err)),
		      -EINVAL, "'%s' was taken", addr);
		UT_CHECK(strstr(err, addr) != NULL,
			 "'%s': the message does not name it: %s", addr, err);
	}
	arr_close(&a);
}
END_TEST

/* Written while degraded, read back while degraded. */
static void write_degraded(struct arr *a, int m)
{
	struct snap b, e;

	member_fail(a->a_l, m);
	for (int k = 0; k < 60; k++) {
		uint64_t len = blocks_upto(a, 1,
					   ut_chance(&a->a_rng, 30) ?
						   MAX_IO / a->a_align :
						   16,
					   a->a_size);

		arr_write(a,
			  a->a_align *
				  ut_below(&a->a_rng,
					   (a->a_size - len) / a->a_align + 1),
			  len);
	}
	arr_check_all(a, "written degraded");
	if (nparity_of(a)) {
		/* A whole stripe still reads nothing; a part reconstructs. */
		uint64_t sw = a->a_l->l_chunk * (a->a_l->l_nr - nparity_of(a));

		take_snap(a, &b);
		arr_write(a, sw, sw);
		take_snap(a, &e);
		UT_CHECK(e.sn_plan.full - b.sn_plan.full == 1 &&
				 e.sn_member_reads == b.sn_member_reads,
			 "%s: a whole stripe, degraded: full %llu, %llu reads",
			 a->a_expr,
			 (unsigned long long)(e.sn_plan.full - b.sn_plan.full),
			 (unsigned long long)(e.sn_member_reads -
					      b.sn_member_reads));
		take_snap(a, &b);
		arr_write(a, 2 * sw + 4096, 4096);
		take_snap(a, &e);
		UT_CHECK(e.sn_plan.rmw == b.sn_plan.rmw &&
				 e.sn_plan.rcw == b.sn_plan.rcw &&
				 e.sn_degraded > b.sn_degraded,
			 "%s: a partial stripe, degraded: rmw %llu rcw %llu, "
			 "degraded ops %llu",
			 a->a_expr,
			 (unsigned long long)(e.sn_plan.rmw - b.sn_plan.rmw),
			 (unsigned long long)(e.sn_plan.rcw - b.sn_plan.rcw),
			 (unsigned long long)(e.sn_degraded - b.sn_degraded));
		arr_check_all(a, "written degraded");
	}
}

START_TEST(test_degraded)
{
	uint8_t *buf = aligned_alloc(4096, 64 * K);
	char err[1024];
	uint64_t splits;
	struct arr a;
	int nr;

	ck_assert_ptr_nonnull(buf);
	arr_open(&a, "raid1(mem(size=512k), mem(size=512k), mem(size=600k))",
		 NULL);
	arr_fill(&a);
	for (int m = 0; m < 3; m++)
		check_degraded(&a, m, -1);
	check_degraded(&a, 0, 2);
	member_fail(a.a_l, 0);
	member_fail(a.a_l, 1);
	member_fail(a.a_l, 2);
	UT_EQ(do_io(NULL, a.a_dev, BDEV_READ, 0, buf, 4096, 0), -EIO,
	      "raid1, every mirror failed");
	layer_set_state(a.a_l, 0, LAYER_MEMBER_OK);
	layer_set_state(a.a_l, 1, LAYER_MEMBER_OK);
	write_degraded(&a, 1);
	arr_close(&a);

	arr_open(&a,
		 "raid5(mem(size=256k), mem(size=256k), mem(size=256k), "
		 "mem(size=256k), chunk=16k)",
		 NULL);
	nr = a.a_l->l_nr;
	arr_fill(&a);
	for (int m = 0; m < nr; m++)
		check_degraded(&a, m, -1);
	member_fail(a.a_l, 0);
	member_fail(a.a_l, 2);
	UT_EQ(do_io(NULL, a.a_dev, BDEV_READ, 0, buf, 64 * K, 0), -EIO,
	      "raid5, two failed");
	layer_set_state(a.a_l, 0, LAYER_MEMBER_OK);
	layer_set_state(a.a_l, 2, LAYER_MEMBER_OK);
	write_degraded(&a, 3);
	arr_close(&a);

	arr_open(&a,
		 "raid6(mem(size=256k), mem(size=256k), mem(size=256k), "
		 "mem(size=256k), mem(size=256k), chunk=8k)",
		 NULL);
	nr = a.a_l->l_nr;
	arr_fill(&a);
	for (int m1 = 0; m1 < nr; m1++) {
		check_degraded(&a, m1, -1);
		for (int m2 = m1 + 1; m2 < nr; m2++)
			check_degraded(&a, m1, m2);
	}
	member_fail(a.a_l, 0);
	member_fail(a.a_l, 1);
	member_fail(a.a_l, 4);
	UT_EQ(do_io(NULL, a.a_dev, BDEV_READ, 0, buf, 64 * K, 0), -EIO,
	      "raid6, three failed");
	layer_set_state(a.a_l, 0, LAYER_MEMBER_OK);
	layer_set_state(a.a_l, 4, LAYER_MEMBER_OK);
	write_degraded(&a, 2);
	arr_close(&a);

	/* A healthy read that fails over to parity is two passes, and the
	 * second counts as a split wherever the stripe is owned: it was
	 * counted only when it moved to another loop. */
	arr_open(&a,
		 "raid5(faulty(mem(size=256k)), mem(size=256k), mem(size=256k), "
		 "chunk=16k)",
		 NULL);
	arr_fill(&a);
	ck_assert_int_eq(faulty_configure(a.a_l->l_members[0], "read_eio=1",
					  err, sizeof(err)),
			 0);
	splits = layer_stats_sum(a.a_l).splits;
	UT_EQ(do_io(NULL, a.a_dev, BDEV_READ, 0, buf, 4096, 0), 0,
	      "raid5, read over from parity as member 0 fails");
	UT_CHECK(!memcmp(buf, a.a_model, 4096), "raid5, reconstructed bytes");
	UT_EQ(layer_member_state(a.a_l, 0), LAYER_MEMBER_FAILED, "member 0");
	UT_EQ(layer_stats_sum(a.a_l).splits - splits, 1,
	      "splits of a one-member read done again from parity");
	arr_close(&a);

	/* No redundancy: EIO where the failed member holds data, and only
	 * there. */
	arr_open(&a, "raid0(mem(size=256k), mem(size=256k), chunk=16k)", NULL);
	arr_fill(&a);
	member_fail(a.a_l, 1);
	UT_EQ(do_io(NULL, a.a_dev, BDEV_READ, 16 * K, buf, 4096, 0), -EIO,
	      "raid0, chunk 1 on the failed member");
	arr_check(&a, 32 * K, 16 * K, "raid0, chunk 2 on the healthy one");
	arr_close(&a);
	arr_open(&a, "linear(mem(size=64k), mem(size=64k))", NULL);
	arr_fill(&a);
	member_fail(a.a_l, 0);
	UT_EQ(do_io(NULL, a.a_dev, BDEV_READ, 60 * K, buf, 8 * K, 0), -EIO,
	      "linear, across into the failed member");
	arr_check(&a, 64 * K, 64 * K, "linear, the healthy member");
	arr_close(&a);
	free(buf);
}
END_TEST

Suite *levels_suite(void)
{
	Suite *s = suite_create("levels");
	TCase *tc = tcase_create("levels");

	tcase_set_timeout(tc, UT_TIMEOUT_SEC);
	tcase_add_test(tc, test_map_bijection);
	tcase_add_test(tc, test_md_layout);
	tcase_add_test(tc, test_boundaries);
	tcase_add_test(tc, test_raid56_plan);
	tcase_add_test(tc, test_raid56_merge);
	tcase_add_test(tc, test_raid5_two_loops);
	tcase_add_test(tc, test_raid1_two_loops);
	tcase_add_test(tc, test_raid5_md_two_loops);
	tcase_add_test(tc, test_raid1_md_two_loops);
	tcase_add_test(tc, test_raid1_sweep_races_write);
	tcase_add_test(tc, test_raid1_check_fails_mirror);
	tcase_add_test(tc, test_raid1_check_rewrites_unreadable);
	tcase_add_test(tc, test_raid56_check_rewrites_unreadable);
	tcase_add_test(tc, test_raid1_read_mends_unreadable);
	tcase_add_test(tc, test_raid1_mends_bounded);
	tcase_add_test(tc, test_raid1_check_pages);
	tcase_add_test(tc, test_raid5_read_rewrites_unreadable);
	tcase_add_test(tc, test_raid5_check_pages);
	tcase_add_test(tc, test_raid5_md_reads_stay);
	tcase_add_loop_test(tc, test_spread_gather_reads, 0, 2);
	tcase_add_test(tc, test_raid56_sweep_inline);
	tcase_add_test(tc, test_raid56_resume_inline);
	tcase_add_test(tc, test_raid1_replace_far_error);
	tcase_add_test(tc, test_degraded);
	tcase_add_test(tc, test_member_lookup);
	tcase_add_test(tc, test_faulty_spike_release);
	suite_add_tcase(s, tc);
	return s;
}
