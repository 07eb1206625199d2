/* raid1_int: what raid1.c (reads and writes, creation) and raid1_sweep.c
 * (rebuild, check, repair) share: a mirror set's state, and their calls. */
#ifndef RAWVEC_RAID1_INT_H
#define RAWVEC_RAID1_INT_H

#include "blockdev/levels/layer.h"
#include "blockdev/levels/layer_io.h"

/* What each loop keeps of a mirror set spread over loops (its own cache
 * line): the round-robin cursor of its reads, and its mirrored writes in
 * flight (chained by li_lnext). */
struct r1_loop {
	int next_read;
	struct layer_io *writes;
} __attribute__((aligned(64)));

struct r1_sweep;

/* Bytes [@lo, @hi) of mirror @m failed a user's read that another mirror
 * served: a fix (a quiet check of the range) writes them back from it. */
struct r1_fix {
	uint64_t lo, hi;
	int m;
};

/* Fixes waiting at most: one more is left out, until a read meets it
 * again (failing the mirror it came from failed one mirror for another's
 * errors, and then the other for want of a copy).  Ranges of one mirror closer
 * than R1_FIX_GAP_BYTES wait as one (a bad area read at a queue depth
 * fills no list): a fix rewrites only the steps the mirror cannot read. */
#define R1_FIXES_MAX 16
#define R1_FIX_GAP_BYTES (1ull << 20)

/**
 * struct raid1 - a mirror set's own state (l_private).
 * @at:         per loop, indexed by loop_id(); a sweep runs gathered on
 *   loop 0, so only at[0] has writes then
 * @sweep_lo/@sweep_hi: the member range the running sweep step copies or
 *   compares; a write into it marks it @sweep_dirty, so the step is
 *   redone.  A step redone again and again (a write storm on one range)
 *   raises @sweep_barrier: new writes into the range then wait on
 *   @held until the step is done, so a rebuild always gets
 *   past it.
 * @sweep_waiting: the sweep, while its step waits for the writes in
 *   flight into its range to end before it is redone
 * @fixes/@nr_fixes: read errors to mend, oldest first, loop 0's (the fix
 *   loop's: the read's own while the set runs on one loop)
 * @fixing: a fix sweep runs; @sweep_next: a rebuild, check or repair
 *   asked for meanwhile, started once it ends
 */
struct raid1 {
	struct r1_loop at[LOOP_MAX];
	uint64_t sweep_lo, sweep_hi;
	bool sweep_dirty;
	bool sweep_barrier;
	struct r1_sweep *sweep_waiting;
	FIFO(struct layer_io) held;
	struct r1_fix fixes[R1_FIXES_MAX];
	int nr_fixes;
	bool fixes_full; /* one was left out, and logged, since it filled */
	bool fixing;
	struct r1_sweep *sweep_next;
};

static inline struct raid1 *raid1_of(const struct layer *l)
{
	return l->l_private;
}

/** r1_mirror_write() - send the mirrored write @io to every mirror not
 * failed (the sweep's barrier let it go). */
void r1_mirror_write(struct layer *l, struct layer_io *io);

/** r1_writes_overlap() - whether a mirrored write to member bytes [@lo,
 * @hi) is in flight on loop 0, where a sweep runs: its step must then be
 * redone. */
bool r1_writes_overlap(const struct raid1 *r, uint64_t lo, uint64_t hi);

/** r1_sweep_step() - go on with @sw: its next step, or the one that
 * waited for the writes in flight into its range (mirror_io_end()). */
void r1_sweep_step(struct r1_sweep *sw);

/** r1_sweep() - the level's l_sweep: rebuild, check or repair in the
 * background, gathered on loop 0; @done at the end.  0, -EBUSY or
 * -ENOMEM. */
int r1_sweep(struct layer *l, struct loop *loop, enum layer_sweep_kind kind,
	     void (*done)(struct layer *l, int err));

/** r1_fail_unmended() - fail mirror @m, whose read error cannot be
 * mended for the reason @why (no memory, no loop), as before mending. */
void r1_fail_unmended(struct layer *l, int m, const char *why);

/** r1_fix_add() - on the fix loop @loop: queue @fix, and start fixing
 * unless a sweep runs (it starts them when it ends).  With R1_FIXES_MAX
 * waiting, @fix is left out. */
void r1_fix_add(struct layer *l, struct loop *loop, const struct r1_fix *fix);

#endif
