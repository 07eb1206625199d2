/* parity: XOR and GF(2^8) arithmetic over whole buffers, eight bytes at a
 * time where it can; plus the recovery of one or two lost blocks. */
#include "blockdev/levels/parity.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static uint8_t gf_log[256], gf_exp[512];

/* Tables are tiny and built once; a constructor keeps callers simple. */
__attribute__((constructor)) static void gf_init(void)
{
	unsigned x = 1;

	for (int i = 0; i < 255; i++) {
		gf_exp[i] = gf_exp[i + 255] = (uint8_t)x;
		gf_log[x] = (uint8_t)i;
		x <<= 1;
		if (x & 0x100)
			x ^= 0x11d;
	}
}

uint8_t gf_mul(uint8_t a, uint8_t b)
{
	if (!a || !b)
		return 0;
	return gf_exp[gf_log[a] + gf_log[b]];
}

uint8_t gf_inv(uint8_t a)
{
	return gf_exp[255 - gf_log[a]];
}

uint8_t gf_pow2(int i)
{
	return gf_exp[i % 255];
}

void parity_xor(void *dst, const void *src, size_t len)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t a, b;

		memcpy(&a, d + i, 8);
		memcpy(&b, s + i, 8);
		a ^= b;
		memcpy(d + i, &a, 8);
	}
	for (; i < len; i++)
		d[i] ^= s[i];
}

void parity_mul2(void *buf, size_t len)
{
	uint8_t *b = buf;
	size_t i = 0;

	/* Eight lanes at once: shift, then fold 0x1d into the lanes whose
	 * top bit fell out. */
	for (; i + 8 <= len; i += 8) {
		uint64_t v, hi;

		memcpy(&v, b + i, 8);
		hi = v & 0x8080808080808080ull;
		v = ((v << 1) & 0xfefefefefefefefeull) ^ ((hi >> 7) * 0x1d);
		memcpy(b + i, &v, 8);
	}
	for (; i < len; i++)
		b[i] = (uint8_t)((b[i] << 1) ^ ((b[i] & 0x80) ? 0x1d : 0));
}

void parity_mul_xor(void *dst, const void *src, uint8_t c, size_t len)
{
	uint8_t tbl[256], *d = dst;
	const uint8_t *s = src;

	if (c == 1) {
		parity_xor(dst, src, len);
		return;
	}
	for (int x = 0; x < 256; x++)
		tbl[x] = gf_mul((uint8_t)x, c);
	for (size_t i = 0; i < len; i++)
		d[i] ^= tbl[s[i]];
}

void parity_compute(uint8_t **blk, int ndata, int nparity, size_t len)
{
	uint8_t *p = blk[ndata];

	memcpy(p, blk[0], len);
	for (int i = 1; i < ndata; i++)
		parity_xor(p, blk[i], len);
	if (nparity < 2)
		return;
	/* Horner: Q = (((D_n-1) * 2 ^ D_n-2) * 2 ...) ^ D_0. */
	memcpy(blk[ndata + 1], blk[ndata - 1], len);
	for (int i = ndata - 2; i >= 0; i--) {
		parity_mul2(blk[ndata + 1], len);
		parity_xor(blk[ndata + 1], blk[i], len);
	}
}

/* P or Q of the data blocks, those at @skip1/@skip2 taken as zero. */
static void p_of(uint8_t *dst, uint8_t **blk, int ndata, int skip1, int skip2,
		 size_t len)
{
	memset(dst, 0, len);
	for (int i = 0; i < ndata; i++)
		if (i != skip1 && i != skip2)
			parity_xor(dst, blk[i], len);
}

static void q_of(uint8_t *dst, uint8_t **blk, int ndata, int skip1, int skip2,
		 size_t len)
{
	memset(dst, 0, len);
	for (int i = ndata - 1; i >= 0; i--) {
		parity_mul2(dst, len);
		if (i != skip1 && i != skip2)
			parity_xor(dst, blk[i], len);
	}
}

static void scale(uint8_t *buf, uint8_t c, size_t len)
{
	uint8_t tbl[256];

	for (int x = 0; x < 256; x++)
		tbl[x] = gf_mul((uint8_t)x, c);
	for (size_t i = 0; i < len; i++)
		buf[i] = tbl[buf[i]];
}

int parity_recover(uint8_t **blk, int ndata, int nparity, const int *lost,
		   int nr_lost, size_t len)
{
	int P = ndata, Q = ndata + 1, x = -1, y = -1;
	bool lost_p = false, lost_q = false;

	if (nr_lost > nparity)
		return -EIO;
	for (int i = 0; i < nr_lost; i++) {
		if (lost[i] == P)
			lost_p = true;
		else if (lost[i] == Q)
			lost_q = true;
		else if (x < 0)
			x = lost[i];
		else
			y = lost[i];
	}
	if (y >= 0) {
		/* Two data blocks: Pxy = D_x ^ D_y, Qxy = 2^x D_x ^ 2^y D_y,
		 * so D_x = (2^(y-x) Pxy ^ 2^-x Qxy) / (2^(y-x) ^ 1). */
		uint8_t gyx, den, A, B, ta[256], tb[256];

		if (x > y) {
			int t = x;

			x = y;
			y = t;
		}
		gyx = gf_pow2(y - x);
		den = gf_inv(gyx ^ 1);
		A = gf_mul(gyx, den);
		B = gf_mul(gf_inv(gf_pow2(x)), den);
		p_of(blk[x], blk, ndata, x, y, len);
		parity_xor(blk[x], blk[P], len);
		q_of(blk[y], blk, ndata, x, y, len);
		parity_xor(blk[y], blk[Q], len);
		for (int v = 0; v < 256; v++) {
			ta[v] = gf_mul((uint8_t)v, A);
			tb[v] = gf_mul((uint8_t)v, B);
		}
		for (size_t i = 0; i < len; i++) {
			uint8_t pxy = blk[x][i], dx = ta[pxy] ^ tb[blk[y][i]];

			blk[x][i] = dx;
			blk[y][i] = pxy ^ dx;
		}
		return 0;
	}
	if (x >= 0 && !lost_p) {
		p_of(blk[x], blk, ndata, x, -1, len);
		parity_xor(blk[x], blk[P], len);
	} else if (x >= 0) {
		/* Data and P lost: Q ^ Q(others) = 2^x D_x. */
		q_of(blk[x], blk, ndata, x, -1, len);
		parity_xor(blk[x], blk[Q], len);
		scale(blk[x], gf_inv(gf_pow2(x)), len);
	}
	/* Every data block is whole now: recompute lost parity. */
	if (lost_p)
		p_of(blk[P], blk, ndata, -1, -1, len);
	if (lost_q)
		q_of(blk[Q], blk, ndata, -1, -1, len);
	return 0;
}
