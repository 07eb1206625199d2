/* raid56: RAID-5 and RAID-6 layers (md's left-symmetric layouts), with
 * degraded operation, background rebuild and scrub. */
#ifndef RAWVEC_RAID56_H
#define RAWVEC_RAID56_H

#include "blockdev/levels/layer.h"

/** struct raid56_stats - what stats reports for a parity layer. */
struct raid56_stats {
	uint64_t full_stripe_writes; /* stripes written with no reads */
	uint64_t rmw_writes;	     /* read-modify-write stripes */
	uint64_t rcw_writes;	     /* reconstruct-write stripes */
	uint64_t parity_reads;	     /* member reads caused by partial writes */
	uint64_t parity_copy_bytes; /* payload bytes read by the CPU for parity */
	uint64_t degraded_ops;	    /* stripe ops that reconstructed data */
	uint64_t stripe_waits;	    /* ops that waited for a stripe lock */
	uint64_t merged_writes;	    /* writes merged into a neighbour's op */
	uint64_t pieces_handed;	    /* request parts run on another loop */
};

/**
 * raid56_create() - RAID-5 (@nparity 1) or RAID-6 (@nparity 2) over
 * @members (owned from here on, also on failure), chunk in bytes.  A write
 * into part of a stripe is held until its request's loop next submits
 * (the end of the batch of requests it came in) and merged with
 * neighbours on its stripe that arrive meanwhile, so that a stripe written
 * in pieces can still be a full-stripe write; a request without a loop is
 * never held.
 *
 * State: the stripe-op pool, stripe locks (active, waiting), cursors,
 * unplug hook, sequencing and counters are a shard's.  An array on
 * several loops has a shard per loop, each owning a group of stripes in
 * turn, and a request's groups run on their loops; it is loop 0's alone
 * (gathered, layer_gather()) while a sweep runs or md metadata says clean.
 * Otherwise one shard,
 * on the loop that owns the array.  Each stripe op records its loop.
 */
int raid56_create(int nparity, struct bdev **members, int nr,
		  uint64_t data_offset, uint64_t chunk, size_t max_io_bytes,
		  uint32_t in_segs, struct bdev **out, char *err,
		  size_t errlen);

/**
 * raid56_layout() - member slots of @stripe: slots[0..ndata) hold data
 * chunks in logical order, then P, then Q (RAID-6).
 */
void raid56_layout(const struct layer *l, uint64_t stripe, int *slots);

/** raid56_stats() - the parity layer's counters, summed over its shards. */
void raid56_stats(const struct bdev *dev, struct raid56_stats *out);

#endif
