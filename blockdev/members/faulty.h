/* faulty: a one-member layer that injects I/O errors, configured in the
 * layout (faulty(a.img, read_eio=0.01, at=4m..8m)) and at run time. */
#ifndef RAWVEC_FAULTY_H
#define RAWVEC_FAULTY_H

#include "blockdev/levels/layer.h"

/** struct faulty_stats - errors injected per op, requests delayed, and
 * the sectors of unreadable=LO..HI not yet written. */
struct faulty_stats {
	uint64_t injected[BDEV_NR_OPS];
	uint64_t spikes;
	uint64_t unreadable_sectors;
};

/**
 * faulty_kind - faulty(M, ...), its one member owned from creation on.
 * Options, "key=value" separated by commas or spaces: read_eio=P,
 * write_eio=P (probabilities 0..1 per request), at=LO..HI (member bytes
 * where every read and write fails), unreadable=LO..HI (member bytes whose
 * sectors fail reads until a write covers them), after=N (requests that pass before
 * every one fails), lat_spike=DUR@P (a fraction P of reads and writes
 * reach the member DUR late, DUR up to 60 s, timed on the request's
 * loop).
 */
extern const struct bdev_kind faulty_kind;

/** faulty_configure() - change @dev's faults; unnamed ones stay.  The
 * requests a latency spike holds go on to the member at once. */
int faulty_configure(struct bdev *dev, const char *opts, char *err,
		     size_t errlen);

/** faulty_release() - send every request a spike holds on now (a stop). */
void faulty_release(struct bdev *dev);

const struct faulty_stats *faulty_stats(const struct bdev *dev);

#endif
