/* test_parity: P/Q against a bit-by-bit reference (shift-and-add GF(2^8)
 * multiply, no tables), and recovery of every one- and two-block loss,
 * with each implementation of the bulk loops (AVX2, portable). */
#include "tests/unit/unit.h"

#include "blockdev/levels/parity.h"

/* Reference multiply in GF(2^8) mod 0x11d, independent of parity.c. */
static uint8_t ref_mul(uint8_t a, uint8_t b)
{
	uint8_t r = 0;

	while (b) {
		if (b & 1)
			r ^= a;
		a = (uint8_t)((a << 1) ^ ((a & 0x80) ? 0x1d : 0));
		b >>= 1;
	}
	return r;
}

static uint8_t ref_pow2(int i)
{
	uint8_t r = 1;

	while (i--)
		r = ref_mul(r, 2);
	return r;
}

START_TEST(gf_scalar_matches_reference)
{
	for (int a = 0; a < 256; a++) {
		for (int b = 0; b < 256; b++)
			UT_EQ(gf_mul((uint8_t)a, (uint8_t)b),
			      ref_mul((uint8_t)a, (uint8_t)b), "a=%d b=%d", a,
			      b);
		if (a)
			UT_EQ(gf_mul((uint8_t)a, gf_inv((uint8_t)a)), 1, "a=%d",
			      a);
	}
	for (int i = 0; i < 300; i++)
		UT_EQ(gf_pow2(i), ref_pow2(i), "i=%d", i);
}
END_TEST

#define LEN 4099 /* odd: exercises the byte tails after the vector loops */

/* A NULL block counts as zeroes, as in parity_gen(). */
static void ref_parity(const uint8_t *const *d, int ndata, uint8_t *p,
		       uint8_t *q, size_t len)
{
	for (size_t b = 0; b < len; b++) {
		uint8_t pp = 0, qq = 0;

		for (int i = 0; i < ndata; i++) {
			if (!d[i])
				continue;
			pp ^= d[i][b];
			qq ^= ref_mul(ref_pow2(i), d[i][b]);
		}
		p[b] = pp;
		q[b] = qq;
	}
}

/* Each test runs once per implementation (loop index _i): false when this
 * build or CPU lacks the i-th. */
static bool use_impl(int i)
{
	const char *name = parity_impl_name(i);
	int ret;

	if (!name)
		return false;
	ret = parity_use(name);
	if (ret == -ENOTSUP)
		return false;
	UT_EQ(ret, 0, "parity_use(%s)", name);
	return true;
}

/* After each test, failed or not (also with CK_FORK=no): the best again. */
static void use_best(void)
{
	for (int i = 0; parity_impl_name(i); i++)
		if (!parity_use(parity_impl_name(i)))
			return;
}

#define IMPL_LOOPS 4 /* more than there are */

/* The best implementation the CPU has is the one chosen, and unknown
 * names are refused. */
START_TEST(impl_chosen)
{
	UT_CHECK(parity_impl_name(0) != NULL, "no implementation");
	UT_CHECK(parity_impl_name(IMPL_LOOPS) == NULL, "raise IMPL_LOOPS");
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		UT_CHECK(!strcmp(parity_impl_name(-1), "avx2"), "in use: %s",
			 parity_impl_name(-1));
#endif
	UT_EQ(parity_use("sse9"), -ENOENT, "unknown name");
}
END_TEST

/* Output buffers: GUARD bytes of 0xa5 each side of where a call writes. */
#define GUARD 64
#define OUT_BYTES (LEN + 2 * GUARD + 1)

/* Whether every byte of @buf outside [@off, @off + @len) is still 0xa5. */
static bool guarded(const uint8_t *buf, size_t off, size_t len)
{
	for (size_t i = 0; i < OUT_BYTES; i++)
		if ((i < off || i >= off + len) && buf[i] != 0xa5)
			return false;
	return true;
}

/* parity_gen() over every data count up to 20, with lengths around the
 * vector loops' steps, blocks and outputs at odd addresses, some blocks
 * NULL, and P or Q alone; nothing outside the output range is written. */
START_TEST(gen_matches_reference)
{
	static const size_t lens[] = { 1, 31, 32, 63, 64, 65, 127, LEN };
	const size_t at = GUARD + 1;
	struct ut_rng r;

	if (!use_impl(_i))
		return;
	ut_rng_init(&r, "gen_matches_reference");
	for (int ndata = 1; ndata <= 20; ndata++) {
		uint8_t *buf[20], p[OUT_BYTES], q[OUT_BYTES], rp[LEN], rq[LEN];
		const uint8_t *d[20];
		const char *im = parity_impl_name(-1);

		for (int i = 0; i < ndata; i++) {
			buf[i] = malloc(LEN + 1);
			ut_fill(&r, buf[i], LEN + 1);
			d[i] = i % 3 == 2 ? NULL : buf[i] + (i & 1);
		}
		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
			size_t len = lens[k];

			ref_parity(d, ndata, rp, rq, len);
			memset(p, 0xa5, sizeof(p));
			memset(q, 0xa5, sizeof(q));
			parity_gen(p + at, q + at, d, ndata, len);
			UT_CHECK(!memcmp(p + at, rp, len) &&
					 guarded(p, at, len),
				 "%s P, ndata=%d len=%zu", im, ndata, len);
			UT_CHECK(!memcmp(q + at, rq, len) &&
					 guarded(q, at, len),
				 "%s Q, ndata=%d len=%zu", im, ndata, len);
			memset(p, 0xa5, sizeof(p));
			memset(q, 0xa5, sizeof(q));
			parity_gen(p + at, NULL, d, ndata, len);
			UT_CHECK(!memcmp(p + at, rp, len) &&
					 guarded(p, at, len) &&
					 guarded(q, 0, 0),
				 "%s P alone, ndata=%d len=%zu", im, ndata,
				 len);
			memset(p, 0xa5, sizeof(p));
			parity_gen(NULL, q + at, d, ndata, len);
			UT_CHECK(!memcmp(q + at, rq, len) &&
					 guarded(q, at, len) &&
					 guarded(p, 0, 0),
				 "%s Q alone, ndata=%d len=%zu", im, ndata,
				 len);
		}
		for (int i = 0; i < ndata; i++)
			free(buf[i]);
	}
}
END_TEST

/* dst ^= 2^k * src, the RAID-6 read-modify-write update of Q, for every
 * data index a layer can have (and k past 255, where 2^255 = 1), with
 * nothing written outside dst. */
START_TEST(mul2k_xor_matches_reference)
{
	static const int ks[] = { 0,  1,  2,  3,  4,  5,   15,	16,  17, 20,
				  31, 32, 47, 62, 63, 254, 255, 256, 300 };
	uint8_t src[LEN], dst[OUT_BYTES], want[OUT_BYTES];
	const size_t at = GUARD + 1;
	struct ut_rng r;

	if (!use_impl(_i))
		return;
	ut_rng_init(&r, "mul2k_xor_matches_reference");
	for (size_t n = 0; n < sizeof(ks) / sizeof(ks[0]); n++) {
		int k = ks[n];
		uint8_t c = ref_pow2(k);

		ut_fill(&r, src, sizeof(src));
		memset(dst, 0xa5, sizeof(dst));
		ut_fill(&r, dst + at, LEN);
		memcpy(want, dst, sizeof(dst));
		for (size_t b = 0; b < LEN; b++)
			want[at + b] ^= ref_mul(c, src[b]);
		parity_mul2k_xor(dst + at, src, k, LEN);
		UT_CHECK(!memcmp(dst, want, sizeof(dst)), "%s k=%d",
			 parity_impl_name(-1), k);
	}
}
END_TEST

START_TEST(compute_matches_reference)
{
	struct ut_rng r;
	uint8_t *blk[18], rp[LEN], rq[LEN];

	if (!use_impl(_i))
		return;
	ut_rng_init(&r, "compute_matches_reference");
	for (int ndata = 1; ndata <= 16; ndata++) {
		for (int i = 0; i < ndata + 2; i++) {
			blk[i] = malloc(LEN);
			ut_fill(&r, blk[i], LEN);
		}
		parity_compute(blk, ndata, 2, LEN);
		ref_parity((const uint8_t *const *)blk, ndata, rp, rq, LEN);
		UT_CHECK(!memcmp(blk[ndata], rp, LEN), "P, ndata=%d", ndata);
		UT_CHECK(!memcmp(blk[ndata + 1], rq, LEN), "Q, ndata=%d",
			 ndata);
		for (int i = 0; i < ndata + 2; i++)
			free(blk[i]);
	}
}
END_TEST

/* Every loss of one or two blocks out of data+P+Q is rebuilt exactly;
 * three are refused. */
START_TEST(recover_every_pair)
{
	struct ut_rng r;

	if (!use_impl(_i))
		return;
	ut_rng_init(&r, "recover_every_pair");
	for (int ndata = 2; ndata <= 8; ndata++) {
		int n = ndata + 2;
		uint8_t *blk[10], *good[10];

		for (int i = 0; i < n; i++) {
			blk[i] = malloc(LEN);
			good[i] = malloc(LEN);
			if (i < ndata)
				ut_fill(&r, good[i], LEN);
		}
		parity_compute(good, ndata, 2, LEN);
		for (int a = 0; a < n; a++) {
			for (int b = a; b < n; b++) {
				/* Both orders: recovery sorts them. */
				int lost[2] = { (a + b) & 1 ? b : a,
						(a + b) & 1 ? a : b },
				    nr = a == b ? 1 : 2;

				for (int i = 0; i < n; i++)
					memcpy(blk[i], good[i], LEN);
				memset(blk[a], 0xa5, LEN);
				memset(blk[b], 0x5a, LEN);
				UT_EQ(parity_recover(blk, ndata, 2, lost, nr,
						     LEN),
				      0, "ndata=%d lost %d,%d", ndata, a, b);
				for (int i = 0; i < n; i++)
					UT_CHECK(!memcmp(blk[i], good[i], LEN),
						 "ndata=%d lost %d,%d: block %d wrong",
						 ndata, a, b, i);
			}
		}
		{
			int lost3[3] = { 0, 1, ndata };

			UT_EQ(parity_recover(blk, ndata, 2, lost3, 3, LEN),
			      -EIO, "three lost");
		}
		for (int i = 0; i < n; i++) {
			free(blk[i]);
			free(good[i]);
		}
	}
}
END_TEST

START_TEST(raid5_recovers_any_one)
{
	struct ut_rng r;
	uint8_t *blk[6], *good[6];
	int ndata = 5;

	if (!use_impl(_i))
		return;
	ut_rng_init(&r, "raid5_recovers_any_one");
	for (int i = 0; i <= ndata; i++) {
		blk[i] = malloc(LEN);
		good[i] = malloc(LEN);
		if (i < ndata)
			ut_fill(&r, good[i], LEN);
	}
	parity_compute(good, ndata, 1, LEN);
	for (int a = 0; a <= ndata; a++) {
		for (int i = 0; i <= ndata; i++)
			memcpy(blk[i], good[i], LEN);
		memset(blk[a], 0, LEN);
		UT_EQ(parity_recover(blk, ndata, 1, &a, 1, LEN), 0, "lost %d",
		      a);
		UT_CHECK(!memcmp(blk[a], good[a], LEN), "lost %d", a);
	}
	{
		int two[2] = { 0, 1 };

		UT_EQ(parity_recover(blk, ndata, 1, two, 2, LEN), -EIO,
		      "two lost");
	}
	for (int i = 0; i <= ndata; i++) {
		free(blk[i]);
		free(good[i]);
	}
}
END_TEST

Suite *parity_suite(void)
{
	Suite *s = suite_create("parity");
	TCase *tc = tcase_create("parity");

	tcase_set_timeout(tc, UT_TIMEOUT_SEC);
	tcase_add_checked_fixture(tc, NULL, use_best);
	tcase_add_test(tc, gf_scalar_matches_reference);
	tcase_add_test(tc, impl_chosen);
	tcase_add_loop_test(tc, gen_matches_reference, 0, IMPL_LOOPS);
	tcase_add_loop_test(tc, mul2k_xor_matches_reference, 0, IMPL_LOOPS);
	tcase_add_loop_test(tc, compute_matches_reference, 0, IMPL_LOOPS);
	tcase_add_loop_test(tc, recover_every_pair, 0, IMPL_LOOPS);
	tcase_add_loop_test(tc, raid5_recovers_any_one, 0, IMPL_LOOPS);
	suite_add_tcase(s, tc);
	return s;
}
