/* unit: shared helpers for the Check unit tests: suite constructors, a
 * seeded PRNG (one stream per test, so a failure reproduces with the seed
 * alone, whatever order or fork mode the tests run in) and cheap asserts
 * for hot loops (Check's ck_assert_* records a mark point on every pass,
 * which costs a write per call in fork mode). */
#ifndef RAWVEC_UNIT_H
#define RAWVEC_UNIT_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockdev/core/bdev.h"
#include "blockdev/core/rw.h"
#include "vec/pvec.h"

Suite *pvec_suite(void);
Suite *bdev_suite(void);
Suite *rw_suite(void);

/* Check's per-test limit; ASan runs are slower than the plain build. */
#define UT_TIMEOUT_SEC 60

/* The run's seed: UNIT_SEED from the environment or a fixed default. */
extern uint64_t ut_seed;

/**
 * struct ut_rng - splitmix64 state.  Seeded from ut_seed and the test's
 * name so that every test draws the same numbers whether it runs alone
 * (CK_RUN_CASE) or after others in one process (CK_FORK=no).
 */
struct ut_rng {
	uint64_t ur_state;
};

static inline uint64_t ut_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
	return h;
}

static inline void ut_rng_init(struct ut_rng *r, const char *tag)
{
	r->ur_state = ut_seed ^ ut_hash_str(tag);
}

static inline uint64_t ut_next(struct ut_rng *r)
{
	uint64_t z = (r->ur_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/** ut_below() - uniform in [0, @n); 0 when @n is 0. */
static inline uint64_t ut_below(struct ut_rng *r, uint64_t n)
{
	return n ? ut_next(r) % n : 0;
}

/** ut_between() - uniform in [@lo, @hi], both included. */
static inline uint64_t ut_between(struct ut_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + ut_below(r, hi - lo + 1);
}

/** ut_chance() - true with probability @pct percent. */
static inline bool ut_chance(struct ut_rng *r, unsigned pct)
{
	return ut_below(r, 100) < pct;
}

static inline void ut_fill(struct ut_rng *r, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		uint64_t v = ut_next(r);
		size_t n = len < 8 ? len : 8;

		memcpy(p, &v, n);
		p += n;
		len -= n;
	}
}

/** ut_shuffle() - Fisher-Yates over @nr ints. */
static inline void ut_shuffle(struct ut_rng *r, int *a, int nr)
{
	for (int i = nr - 1; i > 0; i--) {
		int j = (int)ut_below(r, (uint64_t)i + 1), t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

/* Fail with the seed in the message; no cost when the check passes. */
#define UT_CHECK(cond, fmt, ...)                                                 \
	do {                                                                     \
		if (!(cond))                                                     \
			ck_abort_msg("[UNIT_SEED=%llu] check '%s' failed: " fmt, \
				     (unsigned long long)ut_seed, #cond,         \
				     ##__VA_ARGS__);                             \
	} while (0)

/* Integer equality (values widened to long long) with both sides shown. */
#define UT_EQ(a, b, fmt, ...)                                                \
	do {                                                                 \
		long long ut_a_ = (long long)(a), ut_b_ = (long long)(b);    \
		if (ut_a_ != ut_b_)                                          \
			ck_abort_msg("[UNIT_SEED=%llu] %s == %s: got %lld, " \
				     "want %lld; " fmt,                      \
				     (unsigned long long)ut_seed, #a, #b,    \
				     ut_a_, ut_b_, ##__VA_ARGS__);           \
	} while (0)

/* ut_run_for_ns() - run @lp until a hook due @ns from now has run: what
 * completes meanwhile completes, and the run must not wait for a CQE that
 * never comes (the hook finishes the wait itself, as sim() does). */
struct ut_tick {
	struct loop_hook hook;
	bool done;
};

static inline void ut_tick_fn(struct loop_hook *h)
{
	((struct ut_tick *)h)->done = true;
}

static inline bool ut_tick_done(void *arg)
{
	return ((struct ut_tick *)arg)->done;
}

static inline void ut_run_for_ns(struct loop *lp, uint64_t ns)
{
	struct ut_tick t = { .hook.lh_fn = ut_tick_fn };

	loop_hook_arm_at(lp, &t.hook, loop_now_ns() + ns);
	ck_assert_int_eq(loop_run_until(lp, ut_tick_done, &t), 0);
	ck_assert(t.done);
}

#endif
