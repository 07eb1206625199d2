/* parity: RAID-5 P (XOR) and RAID-6 Q (GF(2^8), polynomial 0x11d,
 * generator 2: Q = sum of 2^i * D_i, the Linux raid6 definition). */
#ifndef RAWVEC_PARITY_H
#define RAWVEC_PARITY_H

#include <stddef.h>
#include <stdint.h>

/** parity_xor() - dst ^= src over @len bytes. */
void parity_xor(void *dst, const void *src, size_t len);

/** parity_mul2() - buf = 2 * buf in GF(2^8), every byte, in place. */
void parity_mul2(void *buf, size_t len);

/** parity_mul_xor() - dst ^= @c * src in GF(2^8). */
void parity_mul_xor(void *dst, const void *src, uint8_t c, size_t len);

/** gf_mul() / gf_inv() / gf_pow2() - scalar GF(2^8) arithmetic. */
uint8_t gf_mul(uint8_t a, uint8_t b);
uint8_t gf_inv(uint8_t a); /* a != 0 */
uint8_t gf_pow2(int i);	   /* 2^i */

/**
 * parity_recover() - rebuild missing blocks of one stripe column.
 * @blk:   @ndata data blocks, then P, then (nparity 2) Q, each @len bytes
 * @lost:  indices into @blk of the blocks to rebuild (at most @nparity);
 *         their buffers are overwritten, the others are read
 * Returns 0, or -EIO when more blocks are lost than parity can cover.
 */
int parity_recover(uint8_t **blk, int ndata, int nparity, const int *lost,
		   int nr_lost, size_t len);

/** parity_compute() - P (and Q) of @ndata blocks into blk[ndata..]. */
void parity_compute(uint8_t **blk, int ndata, int nparity, size_t len);

#endif
