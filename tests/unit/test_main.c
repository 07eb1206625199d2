/* test_main: run every unit suite; exit status says whether all passed.
 * UNIT_SEED=<n> reproduces a randomized run; CK_RUN_SUITE / CK_RUN_CASE
 * narrow it down as usual with Check. */
#include "tests/unit/unit.h"
#include "blockdev/core/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#define UT_DEFAULT_SEED 20250601ull

uint64_t ut_seed = UT_DEFAULT_SEED;

/* Suites other test files may add; weak, so the runner links whether or
 * not they are there. */
Suite *parity_suite(void) __attribute__((weak));
Suite *super_suite(void) __attribute__((weak));
Suite *json_suite(void) __attribute__((weak));
Suite *levels_suite(void) __attribute__((weak));
Suite *layout_suite(void) __attribute__((weak));
Suite *nbd_suite(void) __attribute__((weak));

/* The layers' log lines (a member failed, sizes differ) are what the
 * tests provoke on purpose; UNIT_LOG=1 shows them. */
static void quiet_log(const char *msg)
{
	(void)msg;
}

int main(void)
{
	const char *env = getenv("UNIT_SEED");
	struct timespec t0, t1;
	SRunner *sr;
	int nr_failed, nr_run;

	if (env && *env)
		ut_seed = strtoull(env, NULL, 0);
	if (!getenv("UNIT_LOG"))
		bdev_log_set(quiet_log);
	printf("rawvec unit tests: UNIT_SEED=%" PRIu64 "\n", ut_seed);
	/* Flush before Check forks, or every child repeats the line. */
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);

	sr = srunner_create(pvec_suite());
	srunner_add_suite(sr, bdev_suite());
	srunner_add_suite(sr, rw_suite());
	if (parity_suite)
		srunner_add_suite(sr, parity_suite());
	if (super_suite)
		srunner_add_suite(sr, super_suite());
	if (json_suite)
		srunner_add_suite(sr, json_suite());
	if (levels_suite)
		srunner_add_suite(sr, levels_suite());
	if (layout_suite)
		srunner_add_suite(sr, layout_suite());
	if (nbd_suite)
		srunner_add_suite(sr, nbd_suite());
	srunner_run_all(sr, CK_NORMAL);
	nr_failed = srunner_ntests_failed(sr);
	nr_run = srunner_ntests_run(sr);
	srunner_free(sr);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("rawvec unit tests: %d run, %d failed, %.2f s", nr_run,
	       nr_failed,
	       (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	printf(" (UNIT_SEED=%" PRIu64 ")\n", ut_seed);
	return nr_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
