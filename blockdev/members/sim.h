/* sim: a one-member layer that behaves like a disk of its own: per-I/O
 * latency, a bandwidth cap and a queue depth limit, timed by io_uring. */
#ifndef RAWVEC_SIM_H
#define RAWVEC_SIM_H

#include "blockdev/levels/layer.h"

/**
 * sim_create() - wrap @member (owned from here on, also on failure).
 * @opts: "key=value" separated by commas or spaces: lat=DUR or
 * lat=DUR..DUR (uniform), bw=SIZE (bytes per second), qd=N; DUR takes
 * ns, us, ms or s.  Completions are held back by one hook on the loop
 * of the requests, due at the earliest, never by a sleeping thread.
 * Returns 0 or -errno with @err.
 *
 * State: one sim member is one simulated disk, so its queue model
 * (in-flight count, transfer clock, wait and due lists, RNG) belongs to
 * the member, not to a loop; every request of it must run on one loop.
 */
int sim_create(struct bdev *member, const char *opts, size_t max_io_bytes, uint32_t in_segs, struct bdev **out,
	       char *err, size_t errlen);

#endif
