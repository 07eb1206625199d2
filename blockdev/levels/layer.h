/* layer: what every RAID/LVM layer shares: its members, the split of a
 * request into per-member children that re-slice the parent's vector, the
 * merge of pieces that land contiguously on one member, and completion. */
#ifndef RAWVEC_LAYER_H
#define RAWVEC_LAYER_H

#include "blockdev/core/bdev.h"
#include "blockdev/kind.h"

/**
 * struct layer_stats - counters a layer keeps besides its bdev_stats.
 * @splits: requests cut into more than one child
 * @merged: pieces appended to a child already holding a neighbour
 * @pieces: pieces produced by the map (merged or not)
 * @held_writes: mirrored writes a sweep barrier made wait
 */
struct layer_stats {
	uint64_t splits;
	uint64_t merged;
	uint64_t pieces;
	uint64_t held_writes;
};

struct layer;
struct super_array;

/**
 * layer_map_fn - where logical byte @pos of @l lives: member *@member at
 * *@member_pos, valid for *@piece_max bytes (up to the next boundary).
 */
typedef void (*layer_map_fn)(const struct layer *l, uint64_t pos, int *member,
			     uint64_t *member_pos, uint64_t *piece_max);

#define LAYER_MAX_MEMBERS 64

/* What a level's l_sweep hook is asked to do: rebuild the members in
 * state rebuilding, count mismatches, or count and rewrite them. */
enum layer_sweep_kind {
	LAYER_SWEEP_REBUILD,
	LAYER_SWEEP_CHECK,
	LAYER_SWEEP_REPAIR
};

/* Why a level spread across loops is made loop 0's (layer_gather()). */
enum layer_gather_why {
	LAYER_GATHER_SWEEP = 1, /* a rebuild, check or repair runs */
	LAYER_GATHER_MD = 2, /* md metadata: the array is clean, or resyncs */
};

/*
 * A level with state on the I/O path that still runs on every loop
 * (raid1, raid5/6: layer_spread.c), changed by loop 0 only:
 *   LAYER_ONE        on one loop, or owned (a trace, an owner above)
 *   LAYER_SPREAD     no owner: each loop runs its own requests, on its
 *                    own share of the level's state
 *   LAYER_GATHERING  loop 0 owns it and waits until the other loops'
 *                    requests (and the level's work there) have drained;
 *                    the requests it gets meanwhile wait in ls_held
 *   LAYER_GATHERED   loop 0's, for the reasons in ls_why (a sweep runs;
 *                    md: clean, or a resync is due)
 *   LAYER_SCATTERING loop 0 waits for the level to settle, holding new
 *                    requests, and then gives up ownership
 */
enum layer_spread_mode {
	LAYER_ONE,
	LAYER_SPREAD,
	LAYER_GATHERING,
	LAYER_GATHERED,
	LAYER_SCATTERING
};

/**
 * struct layer_spread_ops - what a spread level adds to the moves.
 * @drained:   gathering: the level's own work on other loops is back
 *             (NULL: their requests are all there is)
 * @gathered:  it is loop 0's alone now (NULL: nothing to do)
 * @settled:   scattering: nothing of loop 0's is left that another loop's
 *             share owns (NULL: at once)
 * @scattered: it is spread again, just before ownership is given up
 * @go:        carry out a request held while the mode moved
 * @reads_stay: reads keep nothing the moves change (raid1's, and raid5/6's
 *             healthy reads: one that needs stripe ops moves to loop 0,
 *             bdev_req_move()): while it is gathered for md metadata alone
 *             they run on the loop they come from (bd_reads_stay); a sweep
 *             gathers them too
 */
struct layer_spread_ops {
	bool reads_stay;
	bool (*drained)(struct layer *l);
	void (*gathered)(struct layer *l);
	bool (*settled)(struct layer *l);
	void (*scattered)(struct layer *l);
	void (*go)(struct layer *l, struct bdev_req *req);
};

/* A layer's place on several loops; all zero for a level that never
 * spreads (LAYER_ONE, no ops). */
struct layer_spread {
	const struct layer_spread_ops *ls_ops;
	enum layer_spread_mode ls_mode;
	unsigned ls_why; /* enum layer_gather_why: held gathered */
	/* once gathered, per reason (LAYER_GATHER_SWEEP, LAYER_GATHER_MD) */
	void (*ls_then[2])(void *arg);
	void *ls_then_arg[2];
	FIFO(struct bdev_req) ls_held; /* loop 0's, while the mode moves */
	struct loop_hook ls_hook;      /* the moves, on loop 0 */
};

/* A member slot's health, as md keeps it per rdev. */
enum layer_member_state {
	LAYER_MEMBER_OK,
	LAYER_MEMBER_FAILED,	 /* no I/O goes to it */
	LAYER_MEMBER_REBUILDING, /* written; readable below l_rebuild_pos */
};

/*
 * What the engine asks of an array's metadata, so that it needs to know
 * none (md v1.2 superblocks: super.c sets these with l_md).
 * @changing: member @m's state is about to change, on any loop: count it
 *           before another loop can see it (and write degraded)
 * @changed: after @changing, whether or not this call was the one that
 *           changed it: record it before the next write
 * @busy:    metadata I/O in flight or due, or writes held back
 * @free:    the layer is going away
 */
struct layer_md_ops {
	void (*changing)(struct layer *l, int m);
	void (*changed)(struct layer *l, int m);
	bool (*busy)(const struct layer *l);
	void (*free)(struct layer *l);
};

/**
 * struct layer - a bdev built from member bdevs: what the engine, the
 * metadata (super.c), member management (member.c) and stats read.  A
 * level's own state lives in its struct behind @l_private.
 * @l_kind:        "linear", "raid0", ...: l_bdev.bd_desc->bk_name
 * @l_chunk:       stripe chunk in bytes (0 when the level has none)
 * @l_member_size: bytes of each member in use
 * @l_data_offset: member bytes before the layer's data (md superblocks)
 * @l_md:          md v1.2 metadata (super.c), NULL for a headerless array;
 *                 @l_md_ops is what the engine asks of it
 * @l_max_pieces:  most pieces the map can cut one request into
 * @l_vec_cap:     segments all children of one request hold together: what
 *                 the parent brings plus one per piece; also the most a
 *                 member of this layer receives in one request
 * @l_private:     the level's state, freed by @l_free_private, or free()
 *                 when that is NULL
 * @l_map:         map-based levels: where a logical byte lives
 * @l_free:        recycled layer_ios (layer_io.h), one list per loop
 * @l_stats:       one shard per loop (layer_stats_of()); a layer owned by
 *                 a loop (bd_owner) only writes its own
 *
 * Member health, kept as md keeps it per rdev and recorded by super.c:
 * @l_state:       enum layer_member_state of each member
 * @l_nr_bad:      members not LAYER_MEMBER_OK
 * @l_autofail:    a member failing mapped I/O is marked failed, unless
 * @l_mend_reads:  it is a read, which the level mends: raid5/6 read it
 *                 again through a stripe op, which rebuilds and rewrites it
 * @l_reads_first: set by the metadata while a resync is pending: members
 *                 may differ, so a mirrored level reads the first
 *
 * Rebuild and scrub (the sweep), run by the level's @l_sweep hook (NULL
 * for levels without redundancy; it calls done(l, err) when finished)
 * and read by layer_readable(), member.c and stats:
 * @l_sweep_loop:  the running sweep's loop: it submits and owns it
 * @l_sweep_top:   the tree the sweep's log lines give addresses in
 * @l_rebuild_pos: member bytes of the rebuilding member done (the cursor)
 * @l_sweep_running, @l_sweep_pos/@l_sweep_total (in units of
 *                 @l_sweep_unit bytes), @l_sweep_start_ns/@l_sweep_end_ns:
 *                 progress, set by layer_sweep_begin()/layer_sweep_end()
 * @l_mismatch_sectors: what the last check or repair found
 * @l_rewritten_sectors: what it wrote back onto members that could not
 *                 read it (latent sector errors), from the others
 * @l_corrected_sectors: the same for user reads, since the mount (md's
 *                 corrected read errors); atomic, any loop adds
 * A level keeps its own sweep step state (raid1's barrier, raid56's
 * stripe locks) behind @l_private.
 *
 * @l_spread:      the level on several loops (raid1, raid5/6), gathered
 *                 on loop 0 for what must run on one (a sweep, md marking
 *                 the array clean): layer_gather(), layer_scatter()
 */
struct layer {
	struct bdev l_bdev;
	const char *l_kind;
	struct bdev **l_members;
	int l_nr;
	uint64_t l_chunk;
	uint64_t l_member_size;
	uint64_t l_data_offset;
	struct super_array *l_md;
	const struct layer_md_ops *l_md_ops;
	uint32_t l_max_pieces;
	uint32_t l_vec_cap;
	void *l_private;
	void (*l_free_private)(struct layer *l);
	layer_map_fn l_map;
	struct layer_io *l_free[LOOP_MAX];
	struct layer_stats l_stats[LOOP_MAX];
	uint8_t l_state[LAYER_MAX_MEMBERS];
	int l_nr_bad;
	bool l_autofail;
	bool l_mend_reads;
	bool l_reads_first;
	int (*l_sweep)(struct layer *l, struct loop *loop,
		       enum layer_sweep_kind kind,
		       void (*done)(struct layer *l, int err));
	struct loop *l_sweep_loop;
	struct bdev *l_sweep_top;
	struct layer_spread l_spread;
	uint64_t l_rebuild_pos;
	bool l_sweep_running;
	uint64_t l_sweep_pos, l_sweep_total;
	uint64_t l_sweep_unit;
	uint64_t l_sweep_start_ns, l_sweep_end_ns;
	uint64_t l_mismatch_sectors;
	uint64_t l_rewritten_sectors;
	uint64_t l_corrected_sectors;
};

/*
 * layer_member_state() - member @m's state, as the I/O path reads it.  A
 * shared layer (raid0, linear) runs on every loop while `fail` changes a
 * member's state on loop 0 (layer_set_state() stores it the same way).
 */
static inline enum layer_member_state layer_member_state(const struct layer *l,
							 int m)
{
	return (enum layer_member_state)__atomic_load_n(&l->l_state[m],
							__ATOMIC_ACQUIRE);
}

/** layer_stats_of() - @l's stats shard that @lp writes. */
static inline struct layer_stats *layer_stats_of(struct layer *l,
						 const struct loop *lp)
{
	return &l->l_stats[loop_id(lp)];
}

/** layer_stats_sum() - @l's stats over every loop. */
struct layer_stats layer_stats_sum(const struct layer *l);

/** layer_of() - the layer behind a bdev created by layer_create(). */
static inline struct layer *layer_of(struct bdev *dev)
{
	return (struct layer *)dev;
}

/** bdev_is_layer() - whether @dev is a layer (has members). */
bool bdev_is_layer(const struct bdev *dev);

/**
 * layer_create() - common set-up of a layer of @kind: takes ownership of
 * @members (destroyed with the layer, also on failure), sets alignment to
 * the strictest member's, sizes child vectors for requests of up to
 * @max_io_bytes that arrive with up to @in_segs segments.  The caller sets
 * the size and, for map-based levels, l_map.  Returns 0 or -ENOMEM.
 */
int layer_create(const struct bdev_kind *kind, struct bdev **members, int nr,
		 uint64_t chunk, size_t max_io_bytes, uint32_t in_segs,
		 const struct bdev_ops *ops, struct layer **out);

/** layer_destroy() - free the layer and its members. */
void layer_destroy(struct bdev *dev);

/**
 * layer_submit_mapped() - split @req with l_map into pieces, join the
 * pieces that continue each other on one member into one vectored child,
 * and submit the children.  FLUSH goes to every member.
 */
void layer_submit_mapped(struct layer *l, struct bdev_req *req);

/**
 * layer_submit_all() - send @req whole to every member at the same
 * position (mirror writes, flushes).
 */
void layer_submit_all(struct layer *l, struct bdev_req *req);

/**
 * layer_member_submit() - submit @req, addressed in member @m's data, to
 * that member: past its metadata.  Every I/O a level sends to a member
 * goes through here.
 */
static inline void layer_member_submit(struct layer *l, int m,
				       struct bdev_req *req)
{
	req->br_pos += l->l_data_offset;
	bdev_submit(l->l_members[m], req);
}

/** layer_submit_one() - send @req whole to member @m at @pos. */
void layer_submit_one(struct layer *l, struct bdev_req *req, int m,
		      uint64_t pos);

/**
 * layer_readable() - whether member @m holds valid data for member bytes
 * [@pos, @end): OK, or rebuilding and already rebuilt that far.
 */
static inline bool layer_readable(const struct layer *l, int m, uint64_t end)
{
	enum layer_member_state st = layer_member_state(l, m);

	return st == LAYER_MEMBER_OK ||
	       (st == LAYER_MEMBER_REBUILDING &&
		end <= __atomic_load_n(&l->l_rebuild_pos, __ATOMIC_ACQUIRE));
}

/**
 * layer_nr_bad() - members not ok, counted from their states: on a level
 * that runs on several loops, a state another loop just changed may be
 * ahead of l_nr_bad for an instant.
 */
static inline int layer_nr_bad(const struct layer *l)
{
	int n = 0;

	for (int m = 0; m < l->l_nr; m++)
		n += layer_member_state(l, m) != LAYER_MEMBER_OK;
	return n;
}

/**
 * layer_sweep_begin() / layer_sweep_end() - bracket a level's rebuild or
 * scrub over @total units of @unit member bytes (progress in l_sweep_pos),
 * its requests submitted on @loop.
 */
void layer_sweep_begin(struct layer *l, struct loop *loop,
		       enum layer_sweep_kind kind, uint64_t total,
		       uint64_t unit);
void layer_sweep_end(struct layer *l);

/** layer_sweep_rate() - member bytes per second of the running or last sweep. */
double layer_sweep_rate(const struct layer *l);

/**
 * layer_spread_start() - from a level's bk_share: @l runs on every loop
 * with @ops, or starts gathered on loop 0: with md metadata (spread once
 * the superblocks say active), or for a sweep already running (a rebuild
 * resumed at start-up, whose reason stays).
 */
void layer_spread_start(struct layer *l, const struct layer_spread_ops *ops);

/** layer_spread_max_loops() - a spreading level's bk_max_loops: it keeps
 * nothing on the I/O path that a share per loop cannot hold (md metadata
 * stays loop 0's, its barriers run on any loop), so any number. */
int layer_spread_max_loops(const struct bdev *dev);

/**
 * layer_gather() - from loop 0: make @l loop 0's alone for the reason @why
 * (enum layer_gather_why), then call @then(@arg) (at once when it is
 * already, or never spread; @then NULL: nothing).
 */
void layer_gather(struct layer *l, struct loop *loop, unsigned why,
		  void (*then)(void *), void *arg);

/** layer_scatter() - from loop 0: drop the reason @why, and spread a
 * gathered @l again once none is left. */
void layer_scatter(struct layer *l, struct loop *loop, unsigned why);

/**
 * layer_spread_hold() - whether @req, on loop 0 while @l's mode moves,
 * was held (the level's ops->go runs it once the move is done).
 */
bool layer_spread_hold(struct layer *l, struct bdev_req *req);

/** layer_loops() - the event loops @l's requests run on now (1 while
 * gathered or owned); read on loop 0, whose the mode is. */
int layer_loops(const struct layer *l);

/** layer_spreads() - whether @l can run spread over loops at all. */
static inline bool layer_spreads(const struct layer *l)
{
	return l->l_spread.ls_ops != NULL;
}

/**
 * layer_set_state() - change member @m's state, keeping l_nr_bad; an
 * array with md metadata records the change before its next write.
 * Returns whether this call changed it (two loops may try at once).
 */
bool layer_set_state(struct layer *l, int m, enum layer_member_state st);

/** layer_fail_member_io() - @req to member @m failed: mark it failed, and
 * log it when this call did; nothing when @req failed with -EOPNOTSUPP
 * (a zeroing the member cannot do), or went to a device that a
 * replace has taken out of the slot since (its completion may come back
 * from an owner loop after the new member went in). */
void layer_fail_member_io(struct layer *l, int m, const struct bdev_req *req);

/** layer_rewritten() - member @m could not read data bytes [@pos, +
 * @len), which were written back from @from and read back: count them
 * (l_corrected_sectors for a user's I/O, @by_user, else the sweep's
 * l_rewritten_sectors) and log them in the member's own bytes, as
 * faulty()'s unreadable= takes them. */
void layer_rewritten(struct layer *l, int m, uint64_t pos, uint64_t len,
		     bool by_user, const char *from);

/**
 * layer_create_wrapper() - a layer of @kind over the one member of @a
 * (owned from here on, also on failure) that passes its size through,
 * with a zeroed private struct of @priv_size freed by @free_priv.  For
 * faulty, sim.
 */
int layer_create_wrapper(const struct bdev_kind *kind,
			 const struct bdev_kind_args *a,
			 const struct bdev_ops *ops, size_t priv_size,
			 void (*free_priv)(struct layer *l), struct layer **out,
			 char *err, size_t errlen);

/**
 * layer_parse_opts() - call @set for each "key=value" in @opts (separated
 * by commas or blanks).  @set returns 0, -ENOENT for an unknown key or
 * -EINVAL for a bad value; the message then names the key, the value and
 * @usage.  Returns 0 or -EINVAL.
 */
int layer_parse_opts(const char *opts,
		     int (*set)(void *ctx, const char *key, const char *val),
		     void *ctx, const char *usage, char *err, size_t errlen);

/** layer_mapped_ops - ops of levels that only need an l_map. */
extern const struct bdev_ops layer_mapped_ops;

/** layer_free_members() - destroy @nr members and free the array. */
void layer_free_members(struct bdev **members, int nr);

/**
 * layer_common_size() - the smallest member's size past @data_offset,
 * rounded down to @unit: what each member of a striped or mirrored level
 * contributes (0 when a member is no larger than @data_offset).
 */
uint64_t layer_common_size(struct bdev **members, int nr, uint64_t data_offset,
			   uint64_t unit);

/**
 * layer_check_chunk() - @chunk must be a power of two of at least 4k and
 * every member hold at least one; sets *@member_size.  Returns 0 or
 * -EINVAL with the reason in @err.
 */
int layer_check_chunk(struct bdev **members, int nr, uint64_t data_offset,
		      uint64_t chunk, uint64_t *member_size, char *err,
		      size_t errlen);

/**
 * layer_max_pieces() - most pieces a request of @max_io_bytes is cut into
 * by a level with @chunk (0: none) over @nr members.  A member of such a
 * layer receives at most in_segs + this many segments.
 */
uint32_t layer_max_pieces(size_t max_io_bytes, uint64_t chunk, int nr);

#endif
