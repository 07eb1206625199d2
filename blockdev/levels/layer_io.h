/* layer_io: the layer engine's state of one request in flight, for levels
 * that choose members themselves (raid1's mirrors) instead of an l_map. */
#ifndef RAWVEC_LAYER_IO_H
#define RAWVEC_LAYER_IO_H

#include "blockdev/levels/layer.h"

/**
 * struct layer_piece - one stretch of a request that maps contiguously
 * onto one member: [@lp_off, @lp_off + @lp_len) of the request lands at
 * @lp_mpos of member @lp_member.  @lp_next chains a child's pieces.
 */
struct layer_piece {
	int lp_member;
	int lp_next;
	uint64_t lp_mpos, lp_off, lp_len;
};

/**
 * struct layer_child - the pieces that join into one member I/O: a run of
 * member bytes [@lc_pos, @lc_end), its vector a window of li_vec.
 * lc_req comes first: a child's completion finds the child from it.
 */
struct layer_child {
	struct bdev_req lc_req;
	int lc_member;
	int lc_first, lc_last;
	uint64_t lc_pos, lc_end;
};

/**
 * struct layer_io - a request in flight through a layer.  Kept on a
 * free list and reused: after warm-up the hot path allocates nothing.
 * Children's vectors are consecutive windows of @li_vec: together they
 * never hold more than the parent's segments plus one per piece.
 * @li_req:        parent of the member children; its completion ends the io
 * @li_nr_failed:  children that failed (counted by layer_child_autofail_end)
 * @li_member:     the level's: the member it chose (raid1: the mirror read)
 * @li_lnext:      the level's: a list of its ios (raid1: writes in flight)
 */
struct layer_io {
	struct layer_io *li_next;
	struct layer *li_layer;
	unsigned li_loop_id; /* whose free list it goes back to */
	struct bdev_req *li_parent;
	struct bdev_req li_req;
	int li_nr_children;
	int li_nr_failed;
	int li_member;
	uint64_t li_bad; /* raid1: the mirrors a read failed on */
	struct layer_io *li_lnext;
	struct layer_child *li_child;
	struct layer_piece *li_piece;
	struct pvec *li_vec;
	struct iovec *li_iov;
};

/**
 * layer_io_start() - an io for @req whose li_req ends in @end (NULL:
 * layer_io_end), or, without memory, NULL after completing @req with
 * -ENOMEM.
 */
struct layer_io *layer_io_start(struct layer *l, struct bdev_req *req,
				bdev_end_fn end);

/** layer_io_end() - li_req's default end: layer_io_finish() with its error. */
void layer_io_end(struct bdev_req *req);

/** layer_io_finish() - recycle @io, then complete its parent with @err. */
void layer_io_finish(struct layer_io *io, int err);

/**
 * layer_io_add_whole() - a child of @io that sends all of li_req to member
 * @m at @pos: a plain re-slice of the parent, its iovecs a window of
 * li_iov.  Returns it, for the caller to set an end.
 */
struct layer_child *layer_io_add_whole(struct layer *l, struct layer_io *io,
				       int m, uint64_t pos);

/**
 * layer_io_submit() - submit the children gathered in @io (a child of a
 * failed member completes with -EIO at once), then drop the splitter's
 * reference on li_req with @err.
 */
void layer_io_submit(struct layer *l, struct layer_io *io, int err);

/**
 * layer_child_autofail_end() - a child's end that, when it failed, counts
 * it in li_nr_failed and takes its member out, as md does.
 */
void layer_child_autofail_end(struct bdev_req *req);

#endif
