/* sim: a one-member layer that behaves like a disk of its own: per-I/O
 * latency, a bandwidth cap and a queue depth limit, timed by io_uring. */
#ifndef RAWVEC_SIM_H
#define RAWVEC_SIM_H

#include "blockdev/levels/layer.h"

/**
 * sim_create() - wrap @member (owned from here on, also on failure).
 * @opts: "key=value" separated by commas or spaces: lat=DUR or
 * lat=DUR..DUR (uniform), bw=SIZE (bytes per second), qd=N; DUR takes
 * ns, us, ms or s.  Completions are held back with io_uring timeouts on
 * @ring, never by a sleeping thread.  Returns 0 or -errno with @err.
 */
int sim_create(struct bdev *member, const char *opts, struct bdev_ring *ring,
	       size_t max_io_bytes, uint32_t in_segs, struct bdev **out,
	       char *err, size_t errlen);

#endif
