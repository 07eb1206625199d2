/* unit_layer: what the level and layout tests both ask of a layer, for
 * test files that link the real one (test_bdev.c has a fake of its own). */
#ifndef RAWVEC_UNIT_LAYER_H
#define RAWVEC_UNIT_LAYER_H

#include "blockdev/levels/layer.h"

/* Where @l's logical byte 0 lies on its member: a slice's offset, which
 * the slice keeps to itself, and 0 for the other levels. */
static inline uint64_t ut_window_start(const struct layer *l)
{
	uint64_t mpos = 0, max;
	int m;

	if (l->l_map)
		l->l_map(l, 0, &m, &mpos, &max);
	return mpos;
}

#endif
