/* pathcheck: where the paths given to rawvec lead.  A member inside the
 * mount (MOUNTPOINT/disk, or an image on a filesystem or loop device over
 * it, or another rawvec mount stacked on this one) would send the mount's
 * I/O back into itself.  Every check here touches paths, so at run time
 * they are made from a worker thread, never from the event loop. */
#ifndef RAWVEC_PATHCHECK_H
#define RAWVEC_PATHCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/**
 * rv_target_outside() - start-up, before mounting: refuse a member of
 * @expr inside the directory @mountpoint (found by device and inode, so
 * symlinks and bind mounts count): the mount would hide it, and --create
 * would make it there.  Returns 0 or -EINVAL with the reason in @err.
 */
int rv_target_outside(const char *mountpoint, const char *expr, char *err,
		      size_t errlen);

/**
 * rv_dev_depends() - whether files with st_dev @d (or the block device
 * @d) are, or are stacked on, the mount whose st_dev is @self: @d is
 * @self, a rawvec mount whose stats list a member that depends on @self,
 * a loop device whose backing file does, or a device over (slaves) or a
 * partition of such a device; followed to a bounded depth.  @why gets the
 * chain ("the rawvec mount at /b -> loop device 7:0 ...") when it does.
 */
int rv_dev_depends(dev_t self, dev_t d, char *why, size_t whylen);

/**
 * rv_dev_check() - rv_dev_depends() as an error: 0, or -EINVAL with a
 * message about @name (a file on @d, or one to be @created there).
 */
int rv_dev_check(dev_t self, dev_t d, const char *name, bool created, char *err,
		 size_t errlen);

/**
 * rv_path_depends() - rv_dev_depends() for what @path leads to: its
 * device when it exists (st_rdev for a block device), else the directory
 * it would be created in (dangling symlinks followed).  Returns 0, or
 * -EINVAL with "PATH ..." in @err when it depends on @self.
 */
int rv_path_depends(dev_t self, const char *path, char *err, size_t errlen);

#endif
