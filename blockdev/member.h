/* member: what an operator does to a layer's members at run time:
 * address one ("2", "1.0"), fail it, replace it and rebuild, scrub. */
#ifndef RAWVEC_MEMBER_H
#define RAWVEC_MEMBER_H

#include "layer.h"

/**
 * member_lookup() - resolve @addr, dot-separated member indices from the
 * top ("2" = third member of @top, "1.0" = first member of the second),
 * to the layer holding it and its index there.  Returns 0 or -EINVAL with
 * a reason in @err.
 */
int member_lookup(struct bdev *top, const char *addr, struct layer **parent,
		  int *idx, char *err, size_t errlen);

/** member_fail() - mark member @m of @l failed; no I/O goes to it. */
void member_fail(struct layer *l, int m);

/**
 * member_can_replace() - whether member @m of @l may be replaced now:
 * failed, no I/O in flight, no sweep running.  Returns 0 or -EBUSY with
 * the reason in @err.
 */
int member_can_replace(struct layer *l, int m, char *err, size_t errlen);

/**
 * member_replace() - put @dev in place of failed member @m of @l and,
 * for redundant levels, rebuild it in the background.  @dev is owned by
 * the layer on success.  Returns 0 or -errno with a reason in @err:
 * -EBUSY (member not failed, I/O still in flight, a sweep running),
 * -ENOSPC (@dev smaller than the member it replaces).
 */
int member_replace(struct layer *l, int m, struct bdev *dev, char *err,
		   size_t errlen);

/**
 * member_rebuild() - start rebuilding @l's members that are in state
 * rebuilding, from l_rebuild_pos, in the background.  Returns 0 or -errno.
 */
int member_rebuild(struct layer *l);

/**
 * member_scrub() - start a check (or @repair) on every redundant layer
 * under @top.  Returns the number started, or -EBUSY when one is running.
 */
int member_scrub(struct bdev *top, bool repair);

/** member_state_name() - "ok", "failed", "rebuilding". */
const char *member_state_name(int state);

#endif
