/* parity: RAID-5 P (XOR) and RAID-6 Q (GF(2^8), polynomial 0x11d,
 * generator 2: Q = sum of 2^i * D_i, the Linux raid6 definition). */
#ifndef RAWVEC_PARITY_H
#define RAWVEC_PARITY_H

#include <stddef.h>
#include <stdint.h>

/* Data blocks one P/Q computation takes at most (a layer's members). */
#define PARITY_MAX_DATA 64

/**
 * parity_gen() - P = XOR of the data blocks and Q = sum of 2^i * d[i], in
 * one pass over the data: each block is read once, P and Q written once.
 * @p, @q:  where they go (either may be NULL: not wanted); neither may
 *          overlap a data block
 * @d:      @nd data blocks of @len bytes, any alignment; a NULL block
 *          counts as zeroes (recovery leaves out the lost ones)
 */
void parity_gen(uint8_t *p, uint8_t *q, const uint8_t *const *d, int nd,
		size_t len);

/** parity_xor() - dst ^= src over @len bytes. */
void parity_xor(void *dst, const void *src, size_t len);

/** parity_mul2k_xor() - dst ^= 2^@k * src in GF(2^8), @k >= 0: a RAID-6
 * Q update. */
void parity_mul2k_xor(void *dst, const void *src, int k, size_t len);

/**
 * parity_use() - run the bulk loops with the implementation called @name
 * ("avx2", "portable"), for tests and benchmarks; the best one this CPU
 * has is chosen at start-up.  Returns 0, -ENOTSUP (this CPU lacks it) or
 * -ENOENT (no such implementation).
 */
int parity_use(const char *name);

/** parity_impl_name() - the @i-th implementation's name (NULL past the
 * last), or with @i < 0 the one in use. */
const char *parity_impl_name(int i);

/** gf_mul() / gf_inv() / gf_pow2() - scalar GF(2^8) arithmetic. */
uint8_t gf_mul(uint8_t a, uint8_t b);
uint8_t gf_inv(uint8_t a); /* a != 0 */
uint8_t gf_pow2(int i);	   /* 2^i */

/**
 * parity_recover() - rebuild missing blocks of one stripe column.
 * @blk:   @ndata data blocks, then P, then (nparity 2) Q, each @len bytes
 * @lost:  indices into @blk of the blocks to rebuild (at most @nparity);
 *         their buffers are overwritten, the others are read
 * Returns 0, -EIO when more blocks are lost than parity can cover, or
 * -EINVAL for more than PARITY_MAX_DATA data blocks.
 */
int parity_recover(uint8_t **blk, int ndata, int nparity, const int *lost,
		   int nr_lost, size_t len);

/** parity_compute() - P (and Q) of @ndata blocks into blk[ndata..]. */
void parity_compute(uint8_t **blk, int ndata, int nparity, size_t len);

#endif
