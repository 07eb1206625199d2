/* raid56_int: what the files of the RAID-5/6 level share: the stripe op,
 * the level's state, and the functions one file calls in another. */
#ifndef RAWVEC_RAID56_INT_H
#define RAWVEC_RAID56_INT_H

#include "blockdev/levels/raid56.h"

/*
 * The level in files, from the pure math up:
 *   raid56_map.c    where data and parity live (md's left-symmetric layouts)
 *   raid56_stripe.c stripe locks, merging of partial writes, the op pool
 *   raid56_plan.c   what an op reads (full, rmw, rcw, reconstruct),
 *                   computes and writes: the stages
 *   raid56_sweep.c  rebuild and scrub in the background
 *   raid56.c        requests into stripe ops, creation, the descriptors
 */

enum so_kind {
	SO_WRITE,   /* new data from the request's vector */
	SO_ZERO,    /* new data is zeroes (discard/zero of part of a stripe) */
	SO_READ,    /* degraded read: reconstruct into the request's vector */
	SO_CHECK,   /* scrub: count parity mismatches */
	SO_REPAIR,  /* scrub: rewrite parity where it mismatches */
	SO_REBUILD, /* recompute the rebuilding member's chunk */
};

/* MODE_DIRECT: a read of a degraded array whose data chunks are all
 * readable reads them alone, into the request (md reads a healthy
 * member's chunk directly too); MODE_RECON reads every readable member. */
enum so_mode { MODE_FULL, MODE_RCW, MODE_RMW, MODE_RECON, MODE_DIRECT };

/* A write that covers consecutive full stripes is done as one op over up
 * to this many member bytes per member: each member's chunks of those
 * stripes lie back to back, so they go out as one member I/O whose
 * vector interleaves the request's pages with parity scratch.  Zeroing
 * (discard, zero-range) needs neither, so its batches span the request:
 * zeroes everywhere are a consistent stripe, parity included. */
#define R56_BATCH_BYTES (128u << 10)
#define R56_ZERO_BATCH_MAX (1u << 30)

/**
 * struct stripe_op - one operation on one stripe, over the in-chunk column
 * range [so_c0, so_c1) of every member.  Scratch holds one column per
 * member slot (member order, not logical order).  A batch (so_nstripes
 * > 1) is a full-stripe write of stripes [so_stripe, + so_nstripes): its
 * scratch holds the parity columns of each stripe in turn, and so_mvec a
 * gathered vector per member.
 */
struct stripe_op {
	struct stripe_op *so_next;
	struct layer *so_l;
	struct loop *so_loop; /* its request's, or the sweep's: it runs there */
	struct r56_shard *so_sh; /* whose pool, locks and counters */
	enum so_kind so_kind;
	enum so_mode so_mode;
	uint64_t so_stripe;
	uint32_t so_nstripes; /* stripes locked and written: 1 unless a batch */
	/* data bytes of the stripe, [0, ndata * chunk) */
	uint64_t so_lo, so_hi;
	uint64_t so_c0, so_c1;
	int so_tries;
	uint8_t *so_buf;
	struct bdev_req so_req;	  /* child of the layer request (or none) */
	struct bdev_req so_stage; /* parent of one stage's member I/Os */
	struct bdev_req so_sub[LAYER_MAX_MEMBERS];
	struct pvec so_subvec[LAYER_MAX_MEMBERS];
	struct iovec *so_iov; /* r56.vec_cap per member I/O */
	struct pvec *so_mvec; /* batches: r56.vec_cap per member */
	int so_sub_member[LAYER_MAX_MEMBERS];
	int so_nr_sub;
	/* Slots (data..., P, Q) unreadable when the op planned its reads:
	 * fixed for the op, as a rebuild may move on meanwhile. */
	uint64_t so_unreadable;
	/* Slots the op could not read while parity still covered them:
	 * rebuilt from the others, written back and read back, as md
	 * rewrites a read error (so_tries -2: the read-back stage). */
	uint64_t so_rewrite;
	/* A scrub done a page of columns at a time, up to so_page_end (0:
	 * not), as the so_page_kind it began as; pages it found lost. */
	uint64_t so_page_end;
	enum so_kind so_page_kind;
	uint32_t so_lost_pages;
	bool so_has_req;
	/* Plugged: a partial-stripe write held in the wait list (until the
	 * ring's next submit, or so_hold_ns longer), so that neighbours
	 * can join it and make the stripe full. */
	bool so_plugged;
	uint64_t so_hold_ns; /* how long past its batch it may be held */
	uint64_t so_plug_ns; /* when it was plugged */
	uint64_t so_run_ns;  /* when it first ran */
	/* The new data, bytes [so_lo, so_hi) of the stripe: the request's own
	 * vector, or so_dvec once writes were merged in (so_peers, which
	 * complete with this op). */
	const struct pvec *so_vec;
	struct pvec_iter so_it;
	struct pvec *so_dvec; /* ndata * l_vec_cap segments */
	struct stripe_op *so_peers;
	void (*so_done)(struct stripe_op *so, int err); /* background ops */
	void *so_private;
};

/* A request waiting for stripe operations to become free. */
struct r56_cursor {
	struct r56_cursor *rc_next;
	struct bdev_req *rc_req;
	uint64_t rc_off;	/* bytes of the request already handed to ops */
	struct bdev_req rc_sub; /* a healthy read tried through the map */
	struct layer *rc_l;
	struct r56_shard *rc_sh;
	bool rc_mine; /* only the stripes in rc_sh's groups */
};

/* The part of a request from another loop's first group in it to its
 * last (several loops): that loop works on its own groups in it. */
struct r56_piece {
	struct bdev_req pc_req; /* child of the request */
	struct r56_piece *pc_next;
	struct r56_shard *pc_from; /* the shard of the loop that cut it */
};

/**
 * struct r56_shard - the stripe state one event loop works on: its op
 * pool, the stripe locks of the stripes it owns (active, waiting), the
 * requests waiting for its ops, its unplug hook and sequencing, and its
 * counters (bdev_stat_add: stats sums them from loop 0).  A headerless
 * array on several loops has one per loop (r56_share()); otherwise
 * everything runs on shard 0.
 */
struct r56_shard {
	struct layer *sh_l;
	unsigned sh_id;
	struct stripe_op *free_ops;
	int nr_ops, max_ops;
	struct stripe_op *active;
	FIFO(struct stripe_op) waiting;	 /* for a stripe lock, oldest first */
	FIFO(struct r56_cursor) cursors; /* requests waiting for free ops */
	bool resuming;			 /* in r56_resume() */
	struct r56_cursor *cur_free;
	struct loop_hook unplug;
	uint64_t seq_end;     /* where the last write op ended, array bytes */
	uint64_t write_op_ns; /* moving average of a write op's run time */
	int last_write_reqs;  /* requests the last write op carried */
	struct raid56_stats st;
	struct r56_piece *pieces; /* free pieces this loop cuts */
	uint32_t pieces_out; /* on other loops (a gather waits for shard 0's) */
};

/*
 * On several loops (the layer's l_spread): while spread, stripes are in
 * groups of group_bytes of data, group g shard (g mod nr_shards)'s, on
 * that loop; gathered, every stripe is shard 0's.
 */
struct r56 {
	int nparity, ndata;
	uint64_t chunk, stripes;
	uint32_t batch_max; /* stripes one batch may cover (1: no batches) */
	/* Per op: segments a member I/O may gather (a run of the request's
	 * segments per data chunk plus a parity column per stripe), and
	 * scratch columns (one per member, or a batch's parity). */
	uint32_t vec_cap;
	uint32_t scratch_cols;
	int max_ops;   /* over all shards; shard 0's alone while gathered */
	int shard_ops; /* each shard's while sharded */
	int nr_shards;
	struct r56_shard *sh[LOOP_MAX];
	struct r56_shard sh0;
	uint64_t group_bytes; /* spread: data bytes a group */
	/* A check or repair sweep's copy of the parity read (chunk bytes per
	 * parity), allocated when it starts: no stripe can fail for memory. */
	uint8_t *scrub_save;
};

/* Count @n in an op's shard's counter @field. */
#define R56_COUNT(so, field, n) bdev_stat_add(&(so)->so_sh->st.field, (n))

static inline struct r56 *r56_of(const struct layer *l)
{
	return l->l_private;
}

/* N_j: the part of data chunk @j the op writes or reads, in-chunk. */
static inline bool so_touched(const struct stripe_op *so, int j, uint64_t *a,
			      uint64_t *b)
{
	uint64_t c = so->so_l->l_chunk, s = j * c, e = s + c;
	uint64_t lo = so->so_lo > s ? so->so_lo : s;
	uint64_t hi = so->so_hi < e ? so->so_hi : e;

	if (lo >= hi)
		return false;
	*a = lo - s;
	*b = hi - s;
	return true;
}

/* ---- raid56_map.c ------------------------------------------------------ */

/** r56_map() - the level's l_map: where logical byte @pos lives. */
void r56_map(const struct layer *l, uint64_t pos, int *member,
	     uint64_t *member_pos, uint64_t *piece_max);

/* ---- raid56_stripe.c --------------------------------------------------- */

/** so_set_cols() - set so_c0/so_c1 from the op's data bytes [so_lo, so_hi). */
void so_set_cols(struct stripe_op *so);

/**
 * so_lock_or_wait() - merge @so into a waiting neighbour, or run it now
 * when its stripes are free, or queue it (first come, first served per
 * stripe; a partial write may be held for neighbours).
 */
void so_lock_or_wait(struct stripe_op *so);

/** so_unlock() - release @so's stripes and start the waiters it held up. */
void so_unlock(struct stripe_op *so);

/** r56_unplug() - the loop hook that lets held partial writes go. */
void r56_unplug(struct loop_hook *h);

/** so_alloc() / so_free() - an op of shard @sh with its scratch, outside
 * the pool. */
struct stripe_op *so_alloc(struct r56_shard *sh);
void so_free(struct stripe_op *so);

/** so_get() / so_put() - an op from @sh's pool (NULL: wait), and back. */
struct stripe_op *so_get(struct r56_shard *sh);
void so_put(struct stripe_op *so);

/**
 * so_finish() - @so is done: a background op calls its so_done; a
 * request's op unlocks, completes its requests (merged peers first) and
 * goes back to the pool.
 */
void so_finish(struct stripe_op *so, int err);

/* ---- raid56_plan.c ----------------------------------------------------- */

/** so_run() - plan @so, read what the plan needs, compute, write. */
void so_run(struct stripe_op *so);

/* ---- raid56_sweep.c ---------------------------------------------------- */

/** r56_sweep() - the level's l_sweep (see struct layer). */
int r56_sweep(struct layer *l, struct loop *loop, enum layer_sweep_kind kind,
	      void (*done)(struct layer *l, int err));

/* ---- raid56.c ---------------------------------------------------------- */

/** r56_resume() - hand @sh's deferred requests to ops freed meanwhile. */
void r56_resume(struct r56_shard *sh);

#endif
