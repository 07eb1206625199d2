/* pvec: building, iterating, slicing, splitting and merging vectors.
 * Everything here is arithmetic on {page, offset, length}; no I/O. */
#include "vec/pvec.h"

#include <errno.h>
#include <string.h>

static inline size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

static struct pvec pvec_at(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;
	struct pvec v = {
		.pv_page = (void *)(a & ~(uintptr_t)(PVEC_PAGE_SIZE - 1)),
		.pv_off = (uint32_t)(a & (PVEC_PAGE_SIZE - 1)),
		.pv_len = (uint32_t)len,
	};
	return v;
}

int pvec_from_buf(struct pvec *vec, int nr_max, void *buf, size_t len,
		  size_t max_seg_bytes)
{
	size_t limit = max_seg_bytes ? max_seg_bytes : UINT32_MAX;
	char *p = buf;
	int nr = 0;

	if (limit > UINT32_MAX)
		limit = UINT32_MAX;
	while (len) {
		size_t n = min_sz(len, limit);

		if (nr == nr_max)
			return -ENOSPC;
		vec[nr++] = pvec_at(p, n);
		p += n;
		len -= n;
	}
	return nr;
}

size_t pvec_total(const struct pvec *vec, int nr)
{
	size_t total = 0;

	for (int i = 0; i < nr; i++)
		total += vec[i].pv_len;
	return total;
}

struct pvec_iter pvec_iter_init(const struct pvec *vec, int nr)
{
	struct pvec_iter it = { .pi_size = pvec_total(vec, nr) };
	return it;
}

struct pvec pvec_iter_cur(const struct pvec *vec, struct pvec_iter it)
{
	struct pvec v = { 0 };

	/* Skip empty segments so that a non-empty iterator never yields 0. */
	while (it.pi_size && it.pi_done == vec[it.pi_idx].pv_len) {
		it.pi_idx++;
		it.pi_done = 0;
	}
	if (!it.pi_size)
		return v;
	return pvec_at(pvec_addr(&vec[it.pi_idx]) + it.pi_done,
		       min_sz(it.pi_size, vec[it.pi_idx].pv_len - it.pi_done));
}

int pvec_iter_advance(const struct pvec *vec, struct pvec_iter *it,
		      size_t bytes)
{
	if (bytes > it->pi_size)
		return -ERANGE;
	it->pi_size -= bytes;
	while (bytes) {
		size_t left = vec[it->pi_idx].pv_len - it->pi_done;

		if (bytes < left) {
			it->pi_done += (uint32_t)bytes;
			return 0;
		}
		bytes -= left;
		it->pi_idx++;
		it->pi_done = 0;
	}
	return 0;
}

int pvec_slice(const struct pvec *vec, struct pvec_iter it, size_t off,
	       size_t len, struct pvec_iter *out)
{
	if (off > it.pi_size || len > it.pi_size - off)
		return -ERANGE;
	pvec_iter_advance(vec, &it, off);
	it.pi_size = len;
	*out = it;
	return 0;
}

int pvec_split(const struct pvec *vec, struct pvec_iter *it, size_t bytes,
	       struct pvec_iter *front)
{
	struct pvec_iter f = *it;

	if (bytes > it->pi_size)
		return -ERANGE;
	f.pi_size = bytes;
	pvec_iter_advance(vec, it, bytes);
	*front = f;
	return 0;
}

int pvec_merge(struct pvec *vec, int nr)
{
	int out = 0;

	for (int i = 0; i < nr; i++) {
		if (!vec[i].pv_len)
			continue;
		if (out &&
		    pvec_addr(&vec[out - 1]) + vec[out - 1].pv_len ==
			    pvec_addr(&vec[i]) &&
		    (uint64_t)vec[out - 1].pv_len + vec[i].pv_len <=
			    UINT32_MAX) {
			vec[out - 1].pv_len += vec[i].pv_len;
			continue;
		}
		vec[out++] = vec[i];
	}
	return out;
}

int pvec_to_iovec(const struct pvec *vec, struct pvec_iter it,
		  struct iovec *iov, int nr_max)
{
	struct pvec cur;
	int nr = 0;

	pvec_for_each(cur, vec, it) {
		char *addr = pvec_addr(&cur);

		if (nr && (char *)iov[nr - 1].iov_base + iov[nr - 1].iov_len ==
				  addr) {
			iov[nr - 1].iov_len += cur.pv_len;
		} else {
			if (nr == nr_max)
				return -ENOSPC;
			iov[nr].iov_base = addr;
			iov[nr].iov_len = cur.pv_len;
			nr++;
		}
	}
	return nr;
}

int pvec_runs(const struct pvec *vec, struct pvec_iter it)
{
	struct pvec cur;
	const char *end = NULL;
	int nr = 0;

	pvec_for_each(cur, vec, it) {
		const char *addr = pvec_addr(&cur);

		nr += addr != end;
		end = addr + cur.pv_len;
	}
	return nr;
}

int pvec_append(struct pvec *dst, int nr, int cap, const struct pvec *src,
		struct pvec_iter it)
{
	struct pvec cur;
	/* Count first, so that -ENOSPC leaves @dst untouched. */
	struct pvec_iter probe = it;
	const char *end = nr ? pvec_addr(&dst[nr - 1]) + dst[nr - 1].pv_len :
			       NULL;
	uint64_t run = nr ? dst[nr - 1].pv_len : 0;
	int need = nr;

	pvec_for_each(cur, src, probe) {
		/* The joining rule below, its 32-bit limit included. */
		if (pvec_addr(&cur) != end || run + cur.pv_len > UINT32_MAX) {
			need++;
			run = 0;
		}
		run += cur.pv_len;
		end = pvec_addr(&cur) + cur.pv_len;
	}
	if (need > cap)
		return -ENOSPC;
	pvec_for_each(cur, src, it) {
		if (nr &&
		    pvec_addr(&dst[nr - 1]) + dst[nr - 1].pv_len ==
			    pvec_addr(&cur) &&
		    (uint64_t)dst[nr - 1].pv_len + cur.pv_len <= UINT32_MAX) {
			dst[nr - 1].pv_len += cur.pv_len;
		} else {
			if (nr == cap)
				return -ENOSPC;
			dst[nr++] = cur;
		}
	}
	return nr;
}

bool pvec_is_aligned(const struct pvec *vec, struct pvec_iter it,
		     size_t mem_align, size_t len_align)
{
	struct pvec cur;
	pvec_for_each(cur, vec, it) {
		if (((uintptr_t)pvec_addr(&cur) & (mem_align - 1)) ||
		    (cur.pv_len & (len_align - 1)))
			return false;
	}
	return true;
}

size_t pvec_copy_to(void *dst, const struct pvec *vec, struct pvec_iter it,
		    size_t len)
{
	struct pvec cur;
	size_t done = 0;

	it.pi_size = min_sz(it.pi_size, len);
	pvec_for_each(cur, vec, it) {
		memcpy((char *)dst + done, pvec_addr(&cur), cur.pv_len);
		done += cur.pv_len;
	}
	return done;
}

size_t pvec_copy_from(const struct pvec *vec, struct pvec_iter it,
		      const void *src, size_t len)
{
	struct pvec cur;
	size_t done = 0;

	it.pi_size = min_sz(it.pi_size, len);
	pvec_for_each(cur, vec, it) {
		memcpy(pvec_addr(&cur), (const char *)src + done, cur.pv_len);
		done += cur.pv_len;
	}
	return done;
}
