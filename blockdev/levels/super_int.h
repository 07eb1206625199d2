/* super_int: what the two files of md metadata share: a running array's
 * record and the write path's functions the life cycle calls. */
#ifndef RAWVEC_SUPER_INT_H
#define RAWVEC_SUPER_INT_H

#include "blockdev/levels/super.h"
#include "blockdev/core/list.h"

/*
 *   super.c        the write path: barriers, updates, safe mode, failures
 *                  met on any loop
 *   super_array.c  the life cycle: attach, start, resync, stop, stats
 */

/**
 * struct super_dev - a member slot's record: which device holds it, and
 * the block its superblock is written from.
 */
struct super_dev {
	struct super_array *sd_md;
	struct bdev *sd_bdev; /* the member this record describes */
	uint32_t sd_number;   /* dev_number */
	uint8_t sd_uuid[16];
	uint8_t *sd_buf;
	struct pvec sd_vec;
	struct bdev_req sd_req;
	int sd_stage; /* of its round: 0 flush, 1 superblock, 2 flush */
};

/* A far loop's writes held until every failure counted is on disk. */
struct super_far {
	struct super_array *sf_md;
	FIFO(struct bdev_req) sf_ended; /* completed, not yet acknowledged */
	bool sf_asked;			/* wants sf_op when recorded */
	struct loop_op sf_op;		/* super_far_release(), on that loop */
};

/**
 * struct super_array - one array's metadata.  Writes (and discards) meet
 * super_hold() in bdev_submit(): they pass only while the superblocks on
 * disk say "active" and record every member's current state; otherwise
 * they wait on @sa_held for the next superblock write.
 * @sa_want_active: what the next write should say
 * @sa_changed:     member states changed since the last write
 * @sa_io:          member superblock writes and flushes in flight
 *
 * A raid5/6 sharded across loops (its l_gather) runs sharded only while
 * the superblocks say active and no resync is due (@sa_spread): marking
 * it clean needs every write on loop 0, so the safe-mode timer gathers it
 * first.  A member failure met on another loop is counted there
 * (@sa_fail_gen) and recorded here (@sa_far_changed, one message); that
 * loop holds the writes it completes until the superblocks carry every
 * failure counted (@sa_rec_gen), in its @sa_far slot.
 */
struct super_array {
	struct layer *sa_l;
	/* The loop that owns this array's metadata: superblock I/O, the
	 * safe-mode timer and the resync start run on it (md's one thread
	 * per array); the members' requests may come from any. */
	struct loop *sa_loop;
	struct super_info sa_sb;
	struct super_dev sa_dev[LAYER_MAX_MEMBERS];
	FIFO(struct bdev_req) sa_held;
	/* completed writes waiting for the update */
	FIFO(struct bdev_req) sa_ended;
	int sa_io;
	bool sa_round_active; /* what the round in flight writes */
	bool sa_ondisk_active;
	bool sa_want_active;
	bool sa_changed;
	bool sa_resync_pending;
	bool sa_resyncing;
	bool sa_rebuild_pending;
	bool sa_start_write; /* super_start() writes: new, or state changed */
	uint64_t sa_last_write_ns;
	uint64_t sa_updates;
	struct loop_hook sa_idle; /* safe mode: mark clean when idle */
	struct loop_hook sa_kick; /* a state change, seen off the I/O path */
	struct loop_hook sa_resync_hook;
	bool sa_spread;	   /* its level runs sharded: the gather is dropped */
	bool sa_gathering; /* the safe-mode timer waits for the gather */
	uint64_t sa_fail_gen;	 /* atomic: failures counted, on any loop */
	uint64_t sa_rec_gen;	 /* atomic: counted ones the disks record */
	uint64_t sa_round_gen;	 /* what the round in flight records */
	uint64_t sa_far_changed; /* atomic: members failed on other loops */
	bool sa_far_sent;	 /* atomic: sa_far_op is on its way here */
	struct loop_op sa_far_op;
	struct super_far sa_far[LOOP_MAX];
	uint64_t sa_far_failures; /* recorded for other loops */
	uint64_t sa_acks_held;	  /* atomic: writes held until an update */
};

/* ---- super.c ----------------------------------------------------------- */

/** super_kick() - write an update if one is due, else let held writes go. */
void super_kick(struct super_array *md);

/** super_spread() - let a sharded level shard: active, nothing due. */
void super_spread(struct super_array *md);

/** super_recorded() - every member failure counted is on disk. */
bool super_recorded(const struct super_array *md);

/** super_writes_in_flight() - writes to @l in flight, over every loop. */
uint64_t super_writes_in_flight(struct layer *l);

/** super_md_time() - now as md keeps times: seconds, in the low 40 bits. */
uint64_t super_md_time(void);

/** super_slot_role() - slot @s's role as the superblocks give it. */
uint16_t super_slot_role(const struct super_array *md, int s);

/* The hooks and message handlers super_attach() sets. */
void super_idle_check(struct loop_hook *h);
void super_kick_hook(struct loop_hook *h);
void super_far_changed(struct loop_op *op, int res, unsigned flags);
void super_far_release(struct loop_op *op, int res, unsigned flags);
/* bdev_submit()'s and bdev_req_complete()'s barriers, for start_tree(). */
bool super_hold(struct bdev *dev, struct bdev_req *req);
bool super_hold_end(struct bdev *dev, struct bdev_req *req);
/* layer_md_ops.changing and .changed */
void super_changing(struct layer *l, int m);
void super_changed(struct layer *l, int m);

/* ---- super_array.c ----------------------------------------------------- */

/** super_new_dev() - a fresh identity (device UUID, number) for slot @s. */
int super_new_dev(struct super_array *md, int s);

#endif
