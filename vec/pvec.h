/* pvec: page-offset-length vectors over pinned memory, and a value iterator.
 * Pure data: no I/O, no callbacks, no completion, no allocation. */
#ifndef RAWVEC_PVEC_H
#define RAWVEC_PVEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PVEC_PAGE_SIZE 4096u

/**
 * struct pvec - one segment: @pv_len bytes starting @pv_off bytes into the
 * page at @pv_page.  @pv_page is page aligned and @pv_off < PVEC_PAGE_SIZE;
 * like the kernel's multi-page bvecs a segment may run on across the
 * following pages when they are contiguous in memory, so one registered
 * buffer range is one segment.
 */
struct pvec {
	void *pv_page;
	uint32_t pv_off;
	uint32_t pv_len;
};

/**
 * struct pvec_iter - a position in a pvec array, passed by value.
 * @pi_idx:  current segment
 * @pi_done: bytes of the current segment already consumed
 * @pi_size: bytes left in the range the iterator covers
 * A split or slice copies the iterator; the array is shared, never copied.
 */
struct pvec_iter {
	uint32_t pi_idx;
	uint32_t pi_done;
	size_t pi_size;
};

/** pvec_addr() - address of the first byte of @v. */
static inline char *pvec_addr(const struct pvec *v)
{
	return (char *)v->pv_page + v->pv_off;
}

/**
 * pvec_from_buf() - describe [@buf, @buf + @len) as segments in @vec.
 * Splits at every @max_seg_bytes (0: no limit) so that no segment exceeds
 * what one I/O may carry.  Returns the number of segments written, or
 * -ENOSPC when @nr_max is too small (then @vec is unspecified).
 */
int pvec_from_buf(struct pvec *vec, int nr_max, void *buf, size_t len,
		  size_t max_seg_bytes);

/** pvec_total() - total bytes in the first @nr segments of @vec. */
size_t pvec_total(const struct pvec *vec, int nr);

/** pvec_iter_init() - iterator over all @nr segments of @vec. */
struct pvec_iter pvec_iter_init(const struct pvec *vec, int nr);

/**
 * pvec_iter_cur() - the piece the iterator points at: the current segment
 * from its consumed bytes on, clipped to pi_size.  Its length is 0 only
 * when the iterator is exhausted.
 */
struct pvec pvec_iter_cur(const struct pvec *vec, struct pvec_iter it);

/**
 * pvec_for_each() - walk @it's range piece by piece, consuming @it (pass a
 * copy to keep it): @cur is each piece in turn, as pvec_iter_cur() gives
 * it.  The body may not advance @it itself.
 */
#define pvec_for_each(cur, vec, it)                                     \
	for (; (it).pi_size && ((cur) = pvec_iter_cur((vec), (it)), 1); \
	     pvec_iter_advance((vec), &(it), (cur).pv_len))

/**
 * pvec_iter_advance() - consume @bytes.  Returns 0, or -ERANGE (iterator
 * unchanged) when @bytes exceeds what is left.
 */
int pvec_iter_advance(const struct pvec *vec, struct pvec_iter *it,
		      size_t bytes);

/**
 * pvec_slice() - an iterator over [@off, @off + @len) of @it's range.
 * Returns 0 and sets *@out, or -ERANGE when the range is outside @it.
 */
int pvec_slice(const struct pvec *vec, struct pvec_iter it, size_t off,
	       size_t len, struct pvec_iter *out);

/**
 * pvec_split() - cut the first @bytes off *@it: *@front covers them and
 * *@it is advanced past them.  @bytes == 0 or == the whole size are legal
 * (one side is empty).  Returns 0 or -ERANGE (nothing changed).
 */
int pvec_split(const struct pvec *vec, struct pvec_iter *it, size_t bytes,
	       struct pvec_iter *front);

/**
 * pvec_merge() - join neighbouring segments of @vec that are contiguous in
 * memory, in place; empty segments are dropped.  Returns the new count.
 * A merged segment is renormalised so pv_off < PVEC_PAGE_SIZE still holds.
 */
int pvec_merge(struct pvec *vec, int nr);

/**
 * pvec_to_iovec() - the iterator's range as iovecs, contiguous pieces
 * joined.  Returns the count, or -ENOSPC when more than @nr_max are needed.
 */
int pvec_to_iovec(const struct pvec *vec, struct pvec_iter it,
		  struct iovec *iov, int nr_max);

/**
 * pvec_runs() - how many pieces of memory the iterator's range is, pieces
 * that are contiguous counted as one: the iovecs pvec_to_iovec() fills.
 */
int pvec_runs(const struct pvec *vec, struct pvec_iter it);

/**
 * pvec_append() - append the iterator's range to @dst, which holds @nr
 * segments and has room for @cap, joining a piece to the last segment when
 * they are contiguous in memory.  Returns the new count, or -ENOSPC with
 * @dst unchanged.
 */
int pvec_append(struct pvec *dst, int nr, int cap, const struct pvec *src,
		struct pvec_iter it);

/**
 * pvec_is_aligned() - true when every piece of the iterator's range starts
 * at a memory address that is a multiple of @mem_align and every piece's
 * length is a multiple of @len_align (both powers of two).
 */
bool pvec_is_aligned(const struct pvec *vec, struct pvec_iter it,
		     size_t mem_align, size_t len_align);

/**
 * pvec_copy_to() / pvec_copy_from() - copy between the iterator's range and
 * a flat buffer.  Used only by the bounce (unaligned) path.  Returns the
 * number of bytes copied: min(@len, iterator size).
 */
size_t pvec_copy_to(void *dst, const struct pvec *vec, struct pvec_iter it,
		    size_t len);
size_t pvec_copy_from(const struct pvec *vec, struct pvec_iter it,
		      const void *src, size_t len);

#endif
