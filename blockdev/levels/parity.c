/* parity: XOR and GF(2^8) arithmetic over whole buffers, P and Q of all
 * data blocks in one pass, and the recovery of one or two lost blocks. */
#include "blockdev/levels/parity.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

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
 * AVX2, 16-byte ones for the baseline (SSE2 on x86-64, where GCC 12 turns
 * the signed compare of a 32-byte vector into byte-at-a-time code: 1.7
 * against 19.5 GB/s for Q).  One pass reads every data block
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

/* tbl[x] = c * x, for the byte-at-a-time products below. */
static void mul_table(uint8_t tbl[256], uint8_t c)
{
	for (int x = 0; x < 256; x++)
		tbl[x] = gf_mul((uint8_t)x, c);
}

/* The byte-table forms of the two recovery products, for the baseline and
 * for the tails of the vector loops: buf = c * buf, and the two-data
 * solve (x, y) = (a * x ^ b * y, x ^ that). */
static void portable_scale(uint8_t *buf, uint8_t c, size_t len)
{
	uint8_t tbl[256];

	mul_table(tbl, c);
	for (size_t i = 0; i < len; i++)
		buf[i] = tbl[buf[i]];
}

static void portable_solve2(uint8_t *x, uint8_t *y, uint8_t a, uint8_t b,
			    size_t len)
{
	uint8_t ta[256], tb[256];

	mul_table(ta, a);
	mul_table(tb, b);
	for (size_t i = 0; i < len; i++) {
		uint8_t pxy = x[i], dx = ta[pxy] ^ tb[y[i]];

		x[i] = dx;
		y[i] = pxy ^ dx;
	}
}

/* dst ^= c * src through a 256-entry table. */
static void table_mul_xor(uint8_t *dst, const uint8_t *src, uint8_t c,
			  size_t len)
{
	uint8_t tbl[256];

	mul_table(tbl, c);
	for (size_t i = 0; i < len; i++)
		dst[i] ^= tbl[src[i]];
}

/* Vector doubling costs a step per power of 2, so a wide raid6's RMW of a
 * high data index multiplies by a table instead.  Measured on 64 KiB in
 * cache: the baseline's doubling runs 25 GB/s at k = 1 down to 1.2 at
 * k = 20, its byte table 1.5-1.9 whatever k; AVX2's nibble tables run 31-51
 * GB/s whatever k, as fast as a plain XOR. */
static void portable_mulk_xor(uint8_t *dst, const uint8_t *src, int k,
			      size_t len)
{
	if (k <= 16)
		portable_mul_xor(dst, src, k, len);
	else
		table_mul_xor(dst, src, gf_pow2(k), len);
}

#if defined(__x86_64__)
/* c * v by nibbles, 32 lanes at a time: lo[v & 15] ^ hi[v >> 4], the two
 * 16-entry tables held in both halves of a register for vpshufb (the
 * kernel's raid6 recovery does the same). */
struct nib {
	__m256i lo, hi;
};

__attribute__((target("avx2"))) static struct nib nib_of(uint8_t c)
{
	uint8_t t[2][16];

	for (int n = 0; n < 16; n++) {
		t[0][n] = gf_mul((uint8_t)n, c);
		t[1][n] = gf_mul((uint8_t)(n << 4), c);
	}
	return (struct nib){
		_mm256_broadcastsi128_si256(_mm_loadu_si128((void *)t[0])),
		_mm256_broadcastsi128_si256(_mm_loadu_si128((void *)t[1])),
	};
}

static inline __attribute__((always_inline, target("avx2"))) __m256i
nib_mul(__m256i v, const struct nib *t)
{
	__m256i m = _mm256_set1_epi8(0x0f);
	__m256i lo = _mm256_and_si256(v, m);
	__m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);

	return _mm256_xor_si256(_mm256_shuffle_epi8(t->lo, lo),
				_mm256_shuffle_epi8(t->hi, hi));
}

__attribute__((target("avx2"))) static void avx2_scale(uint8_t *buf, uint8_t c,
						       size_t len)
{
	struct nib t = nib_of(c);
	size_t i = 0;

	for (; i + 32 <= len; i += 32) {
		__m256i v = _mm256_loadu_si256((void *)(buf + i));

		_mm256_storeu_si256((void *)(buf + i), nib_mul(v, &t));
	}
	if (i < len)
		portable_scale(buf + i, c, len - i);
}

__attribute__((target("avx2"))) static void
avx2_mulk_xor(uint8_t *dst, const uint8_t *src, int k, size_t len)
{
	struct nib t;
	size_t i = 0;

	if (!k) {
		avx2_mul_xor(dst, src, 0, len);
		return;
	}
	t = nib_of(gf_pow2(k));
	for (; i + 32 <= len; i += 32) {
		__m256i v = _mm256_loadu_si256((void *)(src + i));
		__m256i d = _mm256_loadu_si256((void *)(dst + i));

		_mm256_storeu_si256((void *)(dst + i),
				    _mm256_xor_si256(d, nib_mul(v, &t)));
	}
	if (i < len)
		table_mul_xor(dst + i, src + i, gf_pow2(k), len - i);
}

__attribute__((target("avx2"))) static void
avx2_solve2(uint8_t *x, uint8_t *y, uint8_t a, uint8_t b, size_t len)
{
	struct nib ta = nib_of(a), tb = nib_of(b);
	size_t i = 0;

	for (; i + 32 <= len; i += 32) {
		__m256i pxy = _mm256_loadu_si256((void *)(x + i));
		__m256i qxy = _mm256_loadu_si256((void *)(y + i));
		__m256i dx =
			_mm256_xor_si256(nib_mul(pxy, &ta), nib_mul(qxy, &tb));

		_mm256_storeu_si256((void *)(x + i), dx);
		_mm256_storeu_si256((void *)(y + i), _mm256_xor_si256(pxy, dx));
	}
	if (i < len)
		portable_solve2(x + i, y + i, a, b, len - i);
}
#endif

struct parity_impl {
	const char *name;
	bool (*usable)(void);
	void (*gen)(uint8_t *p, uint8_t *q, const uint8_t *const *d, int nd,
		    size_t len);
	/* dst ^= 2^k * src; k = 0 is the plain XOR */
	void (*mulk_xor)(uint8_t *dst, const uint8_t *src, int k, size_t len);
	void (*scale)(uint8_t *buf, uint8_t c, size_t len);
	void (*solve2)(uint8_t *x, uint8_t *y, uint8_t a, uint8_t b,
		       size_t len);
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
	{ "avx2", has_avx2, avx2_gen, avx2_mulk_xor, avx2_scale, avx2_solve2 },
#endif
	{ "portable", always, portable_gen, portable_mulk_xor, portable_scale,
	  portable_solve2 },
};
#define NR_IMPLS (sizeof(impls) / sizeof(impls[0]))

/* Set once by the constructor; parity_use() (tests) may switch it while
 * other threads read it, hence the atomic loads and stores. */
static const struct parity_impl *impl_ptr = &impls[NR_IMPLS - 1];

static const struct parity_impl *impl(void)
{
	return __atomic_load_n(&impl_ptr, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void impl_init(void)
{
	for (size_t i = 0; i < NR_IMPLS; i++)
		if (impls[i].usable()) {
			__atomic_store_n(&impl_ptr, &impls[i],
					 __ATOMIC_RELAXED);
			return;
		}
}

int parity_use(const char *name)
{
	for (size_t i = 0; i < NR_IMPLS; i++)
		if (!strcmp(impls[i].name, name)) {
			if (!impls[i].usable())
				return -ENOTSUP;
			__atomic_store_n(&impl_ptr, &impls[i],
					 __ATOMIC_RELAXED);
			return 0;
		}
	return -ENOENT;
}

const char *parity_impl_name(int i)
{
	if (i < 0)
		return impl()->name;
	return (size_t)i < NR_IMPLS ? impls[i].name : NULL;
}

void parity_gen(uint8_t *p, uint8_t *q, const uint8_t *const *d, int nd,
		size_t len)
{
	impl()->gen(p, q, d, nd, len);
}

void parity_xor(void *dst, const void *src, size_t len)
{
	impl()->mulk_xor(dst, src, 0, len);
}

void parity_mul2k_xor(void *dst, const void *src, int k, size_t len)
{
	impl()->mulk_xor(dst, src, k % 255, len);
}

void parity_compute(uint8_t **blk, int ndata, int nparity, size_t len)
{
	parity_gen(blk[ndata], nparity > 1 ? blk[ndata + 1] : NULL,
		   (const uint8_t *const *)blk, ndata, len);
}

/* P (into @p) and Q (into @q), either NULL, of the data blocks, those at
 * @skip1/@skip2 taken as zero. */
static void pq_of(uint8_t *p, uint8_t *q, uint8_t **blk, int ndata, int skip1,
		  int skip2, size_t len)
{
	const uint8_t *d[PARITY_MAX_DATA];

	for (int i = 0; i < ndata; i++)
		d[i] = i == skip1 || i == skip2 ? NULL : blk[i];
	parity_gen(p, q, d, ndata, len);
}

int parity_recover(uint8_t **blk, int ndata, int nparity, const int *lost,
		   int nr_lost, size_t len)
{
	int P = ndata, Q = ndata + 1, x = -1, y = -1;
	bool lost_p = false, lost_q = false;

	if (ndata > PARITY_MAX_DATA)
		return -EINVAL;
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
		uint8_t gyx, den, A, B;

		if (x > y) {
			int t = x;

			x = y;
			y = t;
		}
		gyx = gf_pow2(y - x);
		den = gf_inv(gyx ^ 1);
		A = gf_mul(gyx, den);
		B = gf_mul(gf_inv(gf_pow2(x)), den);
		/* P and Q of the others in one pass over them. */
		pq_of(blk[x], blk[y], blk, ndata, x, y, len);
		parity_xor(blk[x], blk[P], len);
		parity_xor(blk[y], blk[Q], len);
		impl()->solve2(blk[x], blk[y], A, B, len);
		return 0;
	}
	if (x >= 0 && !lost_p) {
		pq_of(blk[x], NULL, blk, ndata, x, -1, len);
		parity_xor(blk[x], blk[P], len);
	} else if (x >= 0) {
		/* Data and P lost: Q ^ Q(others) = 2^x D_x. */
		pq_of(NULL, blk[x], blk, ndata, x, -1, len);
		parity_xor(blk[x], blk[Q], len);
		impl()->scale(blk[x], gf_inv(gf_pow2(x)), len);
	}
	/* Every data block is whole now: recompute lost parity. */
	if (lost_p || lost_q)
		pq_of(lost_p ? blk[P] : NULL, lost_q ? blk[Q] : NULL, blk,
		      ndata, -1, -1, len);
	return 0;
}
