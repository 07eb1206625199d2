/* member: what an operator does to a layer's members at run time:
 * address one ("2", "1.0"), fail it, replace it and rebuild, scrub. */
#ifndef RAWVEC_MEMBER_H
#define RAWVEC_MEMBER_H

#include "blockdev/levels/layer.h"

/* The longest address member_walk() builds: "63.63.63..." */
#define MEMBER_ADDR_MAX 128

/**
 * member_lookup() - resolve @addr, dot-separated member indices from the
 * top ("2" = third member of @top, "1.0" = first member of the second),
 * to the layer holding it and its index there.  Returns 0 or -EINVAL with
 * a reason in @err.
 */
int member_lookup(struct bdev *top, const char *addr, struct layer **parent,
		  int *idx, char *err, size_t errlen);

/**
 * member_walk() - call @fn on every node of the tree under @top, parents
 * before their members, with the node's control address ("-" for @top,
 * then "1", "1.0", ...).  A non-zero return from @fn ends the walk and is
 * returned.
 */
int member_walk(struct bdev *top,
		int (*fn)(struct bdev *node, const char *addr, void *ctx),
		void *ctx);

/** member_fail() - mark member @m of @l failed; no I/O goes to it.
 * Returns false when it was failed already (nothing changed). */
bool member_fail(struct layer *l, int m);

/**
 * member_can_replace() - whether member @m of @l, at @addr under @top, may
 * be replaced now: it is failed, no rebuild or scrub runs anywhere under
 * @top (one at a time), the other members can rebuild it, and it has no
 * I/O in flight.  Returns 0, -EBUSY (try again later) or -EINVAL (the
 * rebuild cannot succeed), with the reason in @err.
 */
int member_can_replace(struct bdev *top, const char *addr, struct layer *l,
		       int m, char *err, size_t errlen);

/**
 * member_replace() - put @dev in place of failed member @m of @l (at
 * @addr under @top) and, for redundant levels, rebuild it in the
 * background, on @loop.  @dev is owned by the layer on success.  Returns 0 or
 * -errno with a reason in @err: what member_can_replace() refuses, and
 * -ENOSPC (@dev smaller than the member it replaces), -EINVAL (@dev needs
 * a stricter alignment than the layer's).
 */
int member_replace(struct loop *loop, struct bdev *top, const char *addr,
		   struct layer *l, int m, struct bdev *dev, char *err,
		   size_t errlen);

/**
 * member_rebuild() - start rebuilding @l's members that are in state
 * rebuilding, from l_rebuild_pos, in the background on @loop (which owns
 * the sweep from then on); @top is the tree whose addresses its log lines
 * give.  Returns 0 or -errno.
 */
int member_rebuild(struct loop *loop, struct bdev *top, struct layer *l);

/**
 * member_scrub() - start a check (or @repair) on every redundant layer
 * under @top, on @loop, but those degraded past their redundancy (nothing
 * left to check against): the first of these, and why, into @why (may be
 * NULL).  Returns the number started, or -EBUSY when one is running.
 */
int member_scrub(struct loop *loop, struct bdev *top, bool repair, char *why,
		 size_t whylen);

/** member_find_kind() - the kind name of the first node under @top (itself
 * included) whose kind has one of the BK_* @flags, or NULL. */
const char *member_find_kind(struct bdev *top, unsigned flags);

/** member_keeps_data() - whether a leaf under @top keeps what is written
 * to it (one whose kind is not BK_NO_DATA). */
bool member_keeps_data(struct bdev *top);

/** member_has_md() - whether an array under @top keeps md superblocks. */
bool member_has_md(struct bdev *top);

/** member_state_name() - "ok", "failed", "rebuilding". */
const char *member_state_name(int state);

#endif
