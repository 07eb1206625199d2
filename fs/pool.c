/* pool: how many event loops a mount runs, and how the pinned pool is
 * shared out among them and carved into slots, bounces and ring entries. */
#include "fs/fs.h"
#include "fs/args.h"
#include "blockdev/kind.h"
#include "blockdev/layout.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>

/*
 * Split the pinned pool: /dev/fuse slots, RMW bounces and, when the ring
 * may be used, entries for every possible CPU's queue.  Each slot or bounce
 * costs max_write plus headroom; when the pool is small the counts shrink
 * first and max_write (down to 128 KiB) after.
 */
static int size_pool(struct rv_fs *fs, bool expect_ring,
		     enum rv_pool_origin origin, int *dev_slots, int *bounces,
		     bool report)
{
	size_t need;
	struct rlimit rl;
	char a[32], b[32];
	size_t pool = fs->pool_bytes, unit;
	size_t min_slots = expect_ring ? 2 : 16;
	size_t epq;
	/* Each loop carves its share of the pool for its own queues. */
	int qpl = (fs->nr_queues + fs->nr_loops - 1) / fs->nr_loops;
	uint32_t max_write = fs->max_write ? fs->max_write : RV_MAX_WRITE;

	for (fs->max_write = max_write;; fs->max_write /= 2) {
		/* A slot: header page + payload + a spare page; a bounce:
		 * payload + head and tail blocks (rw.c, up to 64 KiB each). */
		unit = fs->max_write + 2 * PVEC_PAGE_SIZE + 2 * 65536;
		*bounces = pool / unit >= 64 ? 8 : 2;
		*dev_slots = expect_ring ? 4 : 64;
		while ((size_t)(*dev_slots + *bounces) * unit > pool &&
		       (size_t)*dev_slots > min_slots)
			(*dev_slots)--;
		if ((size_t)(*dev_slots + *bounces) * unit <= pool) {
			size_t left =
				pool - (size_t)(*dev_slots + *bounces) * unit;

			if (!expect_ring)
				return 0;
			epq = left / ((size_t)qpl * fs->max_write);
			if (epq >= 8 || (epq && fs->max_write <= 128 * 1024)) {
				fs->ring_entries_per_queue =
					epq > 64 ? 64 : (unsigned)epq;
				return 0;
			}
		}
		if (fs->max_write <= 128 * 1024)
			break;
		min_slots = 2;
	}
	if (!report)
		return -EINVAL;
	need = (((size_t)(4 + 2 + (expect_ring ? qpl : 0)) *
			 (128 * 1024 + 2 * PVEC_PAGE_SIZE + 2 * 65536) >>
		 20) +
		1) *
	       (size_t)fs->nr_loops;
	if (origin == POOL_RLIMIT && !getrlimit(RLIMIT_MEMLOCK, &rl)) {
		bdev_fmt_bytes(rl.rlim_cur, a, sizeof(a));
		bdev_fmt_bytes(fs->pool_total, b, sizeof(b));
		fprintf(stderr,
			"rawvec: RLIMIT_MEMLOCK (%s) leaves room for a %s pinned pool, and it needs at least %zum%s: %s%s\n",
			a, b, need,
			expect_ring ? " with the ring's entry per CPU queue" :
				      "",
			RV_MEMLOCK_HOWTO,
			expect_ring ? ", or use --transport=dev" : "");
	} else {
		fprintf(stderr,
			"rawvec: %s pool=%zu is too small: it needs at least %zum%s\n",
			origin == POOL_OPTION ? "-o" : "the default",
			(size_t)fs->pool_total, need,
			expect_ring ? " with the ring's entry per CPU queue" :
				      "");
	}
	return -EINVAL;
}

/* threads=auto falls back to one loop, for @why: unpinned, if pin=auto
 * had pinned it. */
static void one_loop(struct rv_fs *fs, const char *why)
{
	fs->threads_why = why;
	fs->nr_loops = 1;
	fs->pin &= !fs->pin_auto;
	fs->pin_auto = false;
}

/* Each loop gets an equal share of the pool, carved the same way. */
int rv_pool_split(struct rv_fs *fs, bool expect_ring, int *dev_slots,
		  int *bounces)
{
	fs->pool_bytes = (fs->pool_total / (uint64_t)fs->nr_loops) & ~4095ull;
	for (int i = 0; i < fs->nr_loops; i++) {
		fs->loops[i].nr_queues = 0;
		for (int q = i; q < fs->nr_queues; q += fs->nr_loops)
			fs->loops[i].nr_queues++;
	}
	if (!size_pool(fs, expect_ring, fs->pool_origin, dev_slots, bounces,
		       fs->nr_loops == 1 || fs->threads_set))
		return 0;
	if (fs->nr_loops == 1 || fs->threads_set)
		return EXIT_USAGE;
	/* threads=auto: a pool too small to share is one loop's. */
	one_loop(fs, "auto: one, since the pool is too small to share");
	fs->max_write = 0; /* the failed split left it at its smallest */
	return rv_pool_split(fs, expect_ring, dev_slots, bounces);
}

/*
 * How many loops: -o threads=N, or one per two online CPUs (up to the
 * queue count): every FUSE request costs the kernel and the application
 * about as much CPU as the loop that serves it, so half the CPUs are
 * left to them.  On this 2-CPU VM a second loop measured no gain over an
 * image (docs/bench.md, 2026-12-02: disk-bound 4k jobs 0.98-1.06x one
 * loop, QD1 0.95x), so auto runs one there.  Over members in memory the
 * loops are the limit and a second one never lost where it was measured
 * (2026-12-03: null and mem, 1 and 2 jobs, QD1 to 1M raid5 writes,
 * medians 0.99-2.7x), so auto runs one per CPU.  And one when a device
 * keeps state (rv_loops_rechoose()).
 *
 * pin=auto pins the loops over members in memory: a loop on the CPU of
 * the application thread it serves is woken there, and on this VM a
 * cross-CPU wake-up costs ~25 us.  Measured against unpinned loops: null
 * QD1 18-22 us against 36-66 us (4 us with fio pinned too), QD4 1.8-2x,
 * 2 jobs 1.3-1.5x, one job at QD32 0.92-1.12x; over /dev/fuse QD1 7-8
 * against 16-17 us.  Over a disk its interrupt's CPU decides instead, and
 * pinning measured no better (docs/bench.md).  Not when rawvec was started
 * on fewer CPUs (taskset): the user placed it, and pinning would undo that.
 */
void rv_loops_choose(struct rv_fs *fs, const struct rv_opts *o)
{
	static char why[240];
	int online = get_nprocs(), cpus = online;
	bool in_memory = bdev_layout_in_memory(o->target);
	char where[48];
	cpu_set_t set;

	if (!sched_getaffinity(0, sizeof(set), &set) &&
	    CPU_COUNT(&set) < online)
		cpus = CPU_COUNT(&set);
	if (cpus < online)
		snprintf(where, sizeof(where), "%d of %d online allowed", cpus,
			 online);
	else
		snprintf(where, sizeof(where), "%d online", cpus);

	if (o->threads) {
		fs->nr_loops = o->threads < fs->nr_queues ? o->threads :
							    fs->nr_queues;
		snprintf(why, sizeof(why), "-o threads=%d%s", o->threads,
			 fs->nr_loops < o->threads ?
				 ", one per FUSE queue at most" :
				 "");
	} else if (in_memory) {
		fs->nr_loops = cpus < fs->nr_queues ? cpus : fs->nr_queues;
		snprintf(why, sizeof(why),
			 "auto: one per CPU (%s), since every member is in memory and the loops, not a disk, are the limit",
			 where);
	} else {
		int half = cpus / 2;

		fs->nr_loops = half < fs->nr_queues ? half : fs->nr_queues;
		snprintf(why, sizeof(why),
			 "auto: one per two CPUs (%s), half left to the applications and the kernel",
			 where);
	}
	if (fs->nr_loops > LOOP_MAX)
		fs->nr_loops = LOOP_MAX;
	if (fs->nr_loops < 1)
		fs->nr_loops = 1;
	fs->threads_set = o->threads != 0;
	fs->threads_why = why;
	fs->pin_auto = !o->pin && in_memory && fs->nr_loops > 1 &&
		       cpus == online;
	fs->pin = o->pin > 0 || fs->pin_auto;
	if (fs->pin_auto)
		snprintf(why + strlen(why), sizeof(why) - strlen(why),
			 "; each pinned to its queues' CPUs (pin=auto: over members in memory a loop is then woken on the CPU of the thread it serves)");
}

/*
 * threads=auto with a device that keeps state anywhere in the tree: back
 * to one loop.  Every request to it would travel to loop 0 and back: on
 * this machine's VM that round trip costs ~40 us at QD1 (two cross-CPU
 * wake-ups), more than the 3 us QD1 latency a second loop gained in the
 * 2026-12-01 bench (66.6 against 69.8 us).
 */
int rv_loops_rechoose(struct rv_fs *fs, const struct rv_opts *o,
		      bool expect_ring, int *dev_slots, int *bounces)
{
	static char why[200];
	const struct bdev *d = bdev_tree_first_owned(fs->dev, fs->nr_loops);

	if (o->threads || fs->nr_loops == 1 || !d)
		return 0;
	snprintf(why, sizeof(why),
		 "auto: one, since %s%s keeps state that loop 0 owns",
		 d->bd_kind ? d->bd_kind : "a device",
		 d->bd_observe ? " (traced)" : "");
	one_loop(fs, why);
	/* From the current max_write down: the tree is built for it. */
	return rv_pool_split(fs, expect_ring, dev_slots, bounces);
}
