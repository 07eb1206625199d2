/* parity: XOR and GF(2^8) arithmetic over whole buffers, P and Q of all
 * data blocks in one pass, and the recovery of one or two lost blocks. */
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

/*
 * The bulk loops are written once, with GCC's vector extensions, in
 * parity_body.h, and compiled per implementation: 32-byte vectors for
 * AVX2, 16-byte ones for the baseline (SSE2 on x86-64; a 32-byte vector
 * there compiles to byte-at-a-time code).  One pass reads every data block
 * once and writes P and Q once, as the kernel's raid6 gen_syndrome does:
 * Horner's rule keeps Q in registers, where the pairwise loops this
 * replaced went over Q twice per data block.
 */
static inline uint8_t mul2(uint8_t b)
{
	return (uint8_t)((b << 1) ^ ((b & 0x80) ? 0x1d : 0));
}

#define PB_NAME portable
#define PB_VEC 16
#define PB_ATTR
#include "blockdev/levels/parity_body.h"

#if defined(__x86_64__)
#define PB_NAME avx2
#define PB_VEC 32
#define PB_ATTR __attribute__((target("avx2")))
#include "blockdev/levels/parity_body.h"
#endif

struct parity_impl {
	const char *name;
	bool (*usable)(void);
	void (*gen)(uint8_t *p, uint8_t *q, const uint8_t *const *d, int nd,
		    size_t len);
	void (*mul_xor)(uint8_t *dst, const uint8_t *src, int k, size_t len);
};

static bool always(void)
{
	return true;
}

#if defined(__x86_64__)
static bool has_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}
#endif

/* Best first. */
static const struct parity_impl impls[] = {
#if defined(__x86_64__)
	{ "avx2", has_avx2, avx2_gen, avx2_mul_xor },
#endif
	{ "portable", always, portable_gen, portable_mul_xor },
};
#define NR_IMPLS (sizeof(impls) / sizeof(impls[0]))

static const struct parity_impl *impl = &impls[NR_IMPLS - 1];

__attribute__((constructor)) static void impl_init(void)
{
	for (size_t i = 0; i < NR_IMPLS; i++)
		if (impls[i].usable()) {
			impl = &impls[i];
			return;
		}
}

int parity_use(const char *name)
{
	for (size_t i = 0; i < NR_IMPLS; i++)
		if (!strcmp(impls[i].name, name)) {
			if (!impls[i].usable())
				return -ENOTSUP;
			impl = &impls[i];
			return 0;
		}
	return -ENOENT;
}

const char *parity_impl_name(int i)
{
	if (i < 0)
		return impl->name;
	return (size_t)i < NR_IMPLS ? impls[i].name : NULL;
}

void parity_gen(uint8_t *p, uint8_t *q, const uint8_t *const *d, int nd,
		size_t len)
{
	impl->gen(p, q, d, nd, len);
}

void parity_xor(void *dst, const void *src, size_t len)
{
	impl->mul_xor(dst, src, 0, len);
}

void parity_mul2k_xor(void *dst, const void *src, int k, size_t len)
{
	impl->mul_xor(dst, src, k, len);
}

void parity_compute(uint8_t **blk, int ndata, int nparity, size_t len)
{
	parity_gen(blk[ndata], nparity > 1 ? blk[ndata + 1] : NULL,
		   (const uint8_t *const *)blk, ndata, len);
}

/* P (into @p) or Q (into @q) of the data blocks, those at @skip1/@skip2
 * taken as zero. */
static void pq_of(uint8_t *p, uint8_t *q, uint8_t **blk, int ndata, int skip1,
		  int skip2, size_t len)
{
	const uint8_t *d[PARITY_MAX_DATA];

	for (int i = 0; i < ndata; i++)
		d[i] = i == skip1 || i == skip2 ? NULL : blk[i];
	parity_gen(p, q, d, ndata, len);
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
		pq_of(blk[x], NULL, blk, ndata, x, y, len);
		parity_xor(blk[x], blk[P], len);
		pq_of(NULL, blk[y], blk, ndata, x, y, len);
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
		pq_of(blk[x], NULL, blk, ndata, x, -1, len);
		parity_xor(blk[x], blk[P], len);
	} else if (x >= 0) {
		/* Data and P lost: Q ^ Q(others) = 2^x D_x. */
		pq_of(NULL, blk[x], blk, ndata, x, -1, len);
		parity_xor(blk[x], blk[Q], len);
		scale(blk[x], gf_inv(gf_pow2(x)), len);
	}
	/* Every data block is whole now: recompute lost parity. */
	if (lost_p || lost_q)
		pq_of(lost_p ? blk[P] : NULL, lost_q ? blk[Q] : NULL, blk,
		      ndata, -1, -1, len);
	return 0;
}
