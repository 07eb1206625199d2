/* super: md v1.2 superblocks, the on-disk format Linux md and mdadm read,
 * assembling an array from them, and keeping them current while it runs. */
#ifndef RAWVEC_SUPER_H
#define RAWVEC_SUPER_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "blockdev/levels/layer.h"

#define SUPER_MAGIC 0xa92b4efcu
#define SUPER_OFFSET_BYTES 4096u /* v1.2: 8 sectors from the start */
#define SUPER_BLOCK_BYTES 4096u	 /* what is read and written there */
/* Where a created array's data starts: mdadm's 1 MiB, which leaves room
 * between the superblock and the data for a write-intent bitmap. */
#define SUPER_DATA_OFFSET_BYTES (1u << 20)
/* dev_roles[] entries that fit the block (mdadm writes 384) */
#define SUPER_MAX_DEV ((SUPER_BLOCK_BYTES - 256) / 2)
#define SUPER_ROLE_SPARE 0xffffu /* not (or no longer) part of the array */
#define SUPER_ROLE_FAULTY 0xfffeu
#define SUPER_MAX_SECTOR UINT64_MAX /* resync_offset of a clean array */
#define SUPER_FEATURE_RECOVERY_OFFSET 2u
#define SUPER_LAYOUT_LEFT_SYMMETRIC 2u /* md's raid5/raid6 default */
/* md's safe mode: an array with no write for this long is marked clean,
 * so a crash while idle needs no resync (md's 200 ms; tests set it). */
extern uint64_t super_safe_mode_ns;

/**
 * struct super_info - the fields of struct mdp_superblock_1 (the kernel's
 * include/uapi/linux/raid/md_p.h) rawvec reads and writes, in host order.
 * Sizes and offsets are in 512-byte sectors as on disk; times are md's
 * (seconds in the low 40 bits).  Fields not here are written as zero.
 */
struct super_info {
	uint32_t feature_map;
	uint8_t set_uuid[16];
	char set_name[32];
	uint64_t ctime, utime;
	int32_t level; /* -1 linear, 0, 1, 5, 6 */
	uint32_t layout;
	uint64_t size;	    /* used sectors of each member */
	uint32_t chunksize; /* sectors */
	uint32_t raid_disks;
	uint64_t data_offset, data_size, super_offset, recovery_offset;
	uint32_t dev_number;
	uint8_t device_uuid[16];
	uint64_t events;
	uint64_t resync_offset; /* SUPER_MAX_SECTOR: clean */
	uint32_t max_dev;
	uint16_t dev_roles[SUPER_MAX_DEV];
};

/** super_encode() - @si as the SUPER_BLOCK_BYTES-byte block at @buf. */
void super_encode(const struct super_info *si, uint8_t *buf);

/**
 * super_decode() - the superblock in the block at @buf.  Returns 0,
 * -ENOENT when there is none (no md magic), or -EINVAL with the reason in
 * @err for one that is damaged or of a kind rawvec cannot run.
 */
int super_decode(const uint8_t *buf, struct super_info *si, char *err,
		 size_t errlen);

/** super_csum() - md's checksum of the encoded superblock at @buf. */
uint32_t super_csum(const uint8_t *buf);

/** super_uuid_str() - @uuid as mdadm prints it: 8:8:8:8 hex digits. */
void super_uuid_str(const uint8_t *uuid, char out[36]);

/** super_level_name() - "raid5" for md level 5, ...; NULL if unknown. */
const char *super_level_name(int32_t level);

/** super_redundancy() - members an array of @level over @nr runs without. */
int super_redundancy(const char *level, int nr);

/* ---- assembly --------------------------------------------------------- */

enum super_mode {
	SUPER_AUTO, /* assemble from superblocks; create them with the images */
	SUPER_NONE, /* headerless: data from offset 0, nothing remembered */
	SUPER_V12,  /* create them when no member has one, else assemble */
};

/**
 * struct super_probe - what one member of an array-to-be is.
 * @found: it carries a valid superblock (in @sb)
 * @fresh: all zeroes, made just now (--create, mem()): may be given one
 * @bytes: its size
 */
struct super_probe {
	const char *name;
	bool found;
	bool fresh;
	uint64_t bytes;
	struct super_info sb;
};

/**
 * struct super_want - what the expression says: @level ("raid5", or a
 * BK_FROM_SUPER level such as "md", which takes level, chunk and order
 * from the superblocks), @chunk (0 when not given) and @mode.
 */
struct super_want {
	const char *level;
	uint64_t chunk;
	enum super_mode mode;
};

enum super_action { SUPER_PLAN_NONE, SUPER_PLAN_CREATE, SUPER_PLAN_ASSEMBLE };

/**
 * struct super_plan - how to build the array.
 * @level/@chunk:  what to build (md() learns them here)
 * @data_offset:   bytes of each member before the array's data
 * @slot_of:       expression member i becomes member @slot_of[i]
 * @state:         per slot, enum layer_member_state
 * @resync:        shut down uncleanly: resync parity/mirrors after start
 * @authority:     the probe with the newest superblock (assembly)
 * @note:          what to log about it, or ""
 */
struct super_plan {
	enum super_action action;
	const char *level;
	uint64_t chunk;
	uint64_t data_offset;
	int slot_of[LAYER_MAX_MEMBERS];
	uint8_t state[LAYER_MAX_MEMBERS];
	bool resync;
	int authority;
	char note[1024];
};

/**
 * super_plan() - decide from the @nr members' probes and @w whether the
 * array is headerless, new or assembled, and in what state each member
 * is.  Members of other arrays, a wrong order, a level or chunk the
 * superblocks contradict, or more failed or stale members than the level
 * survives are refused: -EINVAL with a message naming the member and the
 * reason in @err.  Pure: reads and writes nothing.
 */
int super_plan(const struct super_probe *p, int nr, const struct super_want *w,
	       struct super_plan *plan, char *err, size_t errlen);

/** super_block_alloc() - a buffer for one superblock, aligned for O_DIRECT. */
void *super_block_alloc(void);

/**
 * super_probe_member() - read @m's superblock on @loop (start-up: runs
 * the loop until the read is done) into @p.  Returns 0, or -errno
 * with the reason in @err (a read error, a damaged superblock).
 */
int super_probe_member(struct loop *loop, struct bdev *m, struct super_probe *p,
		       char *err, size_t errlen);

/* ---- a running array's metadata --------------------------------------- */

struct super_array;

/**
 * super_attach() - give @l (built as @plan says, members in slot order)
 * its metadata: for an assembled array taken from the probes @p (in
 * expression order), for a new one fresh UUIDs and the name @name.
 * @loop owns the metadata from here on: superblock I/O, the safe-mode
 * timer and the resync start run on it.  Nothing is written before
 * super_start().  Returns 0 or -ENOMEM.
 */
int super_attach(struct layer *l, struct loop *loop,
		 const struct super_plan *plan, const struct super_probe *p,
		 int nr, const char *name);

/**
 * super_start() - after the whole tree is built: write the superblocks
 * of every array under @top that is new or whose state assembly changed
 * (waiting for them), then start the rebuilds and resyncs they need in
 * the background.  Returns 0 or -errno with the reason in @err.
 */
int super_start(struct bdev *top, char *err, size_t errlen);

/**
 * super_quiesce() - on a clean stop, with no I/O in flight: mark every
 * array under @top clean.  Call again from the event loop until it
 * returns true (the superblocks are written).
 */
bool super_quiesce(struct bdev *top);

/**
 * struct super_stats - what the stats file shows of an array's metadata.
 * @dev_number/@role: per slot
 */
struct super_stats {
	const struct super_info *sb; /* array-wide fields, as last written */
	bool active;		     /* on disk: active (not clean) */
	bool resync_pending;	     /* unclean shutdown, resync not done */
	bool resyncing;
	uint64_t updates;      /* superblock writes (rounds) */
	uint64_t far_failures; /* member failures met on other loops */
	uint64_t acks_held;    /* writes acknowledged only after an update */
	uint32_t dev_number[LAYER_MAX_MEMBERS];
	uint8_t dev_uuid[LAYER_MAX_MEMBERS][16];
	uint16_t role[LAYER_MAX_MEMBERS];
};

/** super_stats() - @l's metadata for the stats file; false if headerless. */
bool super_stats(const struct layer *l, struct super_stats *st);

#endif
