/* test_parity: P/Q against a bit-by-bit reference (shift-and-add GF(2^8)
 * multiply, no tables), and recovery of every one- and two-block loss. */
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

#define LEN 4099 /* odd: exercises the byte tails after 8-byte lanes */

static void ref_parity(uint8_t **d, int ndata, uint8_t *p, uint8_t *q)
{
	for (size_t b = 0; b < LEN; b++) {
		uint8_t pp = 0, qq = 0;

		for (int i = 0; i < ndata; i++) {
			pp ^= d[i][b];
			qq ^= ref_mul(ref_pow2(i), d[i][b]);
		}
		p[b] = pp;
		q[b] = qq;
	}
}

START_TEST(compute_matches_reference)
{
	struct ut_rng r;
	uint8_t *blk[18], rp[LEN], rq[LEN];

	ut_rng_init(&r, "compute_matches_reference");
	for (int ndata = 1; ndata <= 16; ndata++) {
		for (int i = 0; i < ndata + 2; i++) {
			blk[i] = malloc(LEN);
			ut_fill(&r, blk[i], LEN);
		}
		parity_compute(blk, ndata, 2, LEN);
		ref_parity(blk, ndata, rp, rq);
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
				int lost[2] = { a, b }, nr = a == b ? 1 : 2;

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
	tcase_add_test(tc, gf_scalar_matches_reference);
	tcase_add_test(tc, compute_matches_reference);
	tcase_add_test(tc, recover_every_pair);
	tcase_add_test(tc, raid5_recovers_any_one);
	suite_add_tcase(s, tc);
	return s;
}
