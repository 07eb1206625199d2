/* parity_body: the bulk parity loops, included by parity.c once per
 * implementation with PB_NAME, PB_VEC (vector bytes) and PB_ATTR set. */

#define PB_CAT2(a, b) a##_##b
#define PB_CAT(a, b) PB_CAT2(a, b)
#define PB_FN(f) PB_CAT(PB_NAME, f)
#define PB_V PB_FN(u8v)
#define PB_SV PB_FN(s8v)

typedef uint8_t PB_V __attribute__((vector_size(PB_VEC)));
typedef int8_t PB_SV __attribute__((vector_size(PB_VEC)));

/* Macros, not functions: a function passing a 32-byte vector has a
 * different ABI with and without AVX. */
#define VLOAD(v, s) memcpy(&(v), (s), sizeof(v))
#define VSTORE(d, v) memcpy((d), &(v), sizeof(v))
/* 2 * v in GF(2^8), every lane: shift, and fold 0x1d into the lanes whose
 * top bit fell out (the compare makes their mask all ones). */
#define VMUL2(v) (((v) + (v)) ^ ((PB_V)((PB_SV)(v) < 0) & 0x1d))

/* P and/or Q of d[0..nd), a NULL d[j] counting as zeroes. */
static inline __attribute__((always_inline)) PB_ATTR void
PB_FN(gen_body)(uint8_t *p, uint8_t *q, const uint8_t *const *d, int nd,
		size_t len)
{
	size_t i = 0;

	for (; i + 2 * PB_VEC <= len; i += 2 * PB_VEC) {
		PB_V p0 = { 0 }, p1 = { 0 }, q0 = { 0 }, q1 = { 0 };

		for (int j = nd - 1; j >= 0; j--) {
			PB_V a, b;

			if (q) {
				q0 = VMUL2(q0);
				q1 = VMUL2(q1);
			}
			if (!d[j])
				continue;
			VLOAD(a, d[j] + i);
			VLOAD(b, d[j] + i + PB_VEC);
			p0 ^= a;
			p1 ^= b;
			q0 ^= a;
			q1 ^= b;
		}
		if (p) {
			VSTORE(p + i, p0);
			VSTORE(p + i + PB_VEC, p1);
		}
		if (q) {
			VSTORE(q + i, q0);
			VSTORE(q + i + PB_VEC, q1);
		}
	}
	for (; i < len; i++) {
		uint8_t pb = 0, qb = 0;

		for (int j = nd - 1; j >= 0; j--) {
			qb = mul2(qb);
			if (d[j]) {
				pb ^= d[j][i];
				qb ^= d[j][i];
			}
		}
		if (p)
			p[i] = pb;
		if (q)
			q[i] = qb;
	}
}

/* dst ^= 2^k * src (k = 0: plain XOR). */
static inline __attribute__((always_inline)) PB_ATTR void
PB_FN(mul_xor_body)(uint8_t *dst, const uint8_t *src, int k, size_t len)
{
	size_t i = 0;

	for (; i + 2 * PB_VEC <= len; i += 2 * PB_VEC) {
		PB_V a, b, x, y;

		VLOAD(a, src + i);
		VLOAD(b, src + i + PB_VEC);
		for (int n = 0; n < k; n++) {
			a = VMUL2(a);
			b = VMUL2(b);
		}
		VLOAD(x, dst + i);
		VLOAD(y, dst + i + PB_VEC);
		x ^= a;
		y ^= b;
		VSTORE(dst + i, x);
		VSTORE(dst + i + PB_VEC, y);
	}
	for (; i < len; i++) {
		uint8_t s = src[i];

		for (int n = 0; n < k; n++)
			s = mul2(s);
		dst[i] ^= s;
	}
}

PB_ATTR static void PB_FN(gen)(uint8_t *p, uint8_t *q, const uint8_t *const *d,
			       int nd, size_t len)
{
	/* Constant NULLs: the compiler drops the unwanted half. */
	if (p && q)
		PB_FN(gen_body)(p, q, d, nd, len);
	else if (p)
		PB_FN(gen_body)(p, NULL, d, nd, len);
	else
		PB_FN(gen_body)(NULL, q, d, nd, len);
}

PB_ATTR static void PB_FN(mul_xor)(uint8_t *dst, const uint8_t *src, int k,
				   size_t len)
{
	PB_FN(mul_xor_body)(dst, src, k, len);
}

#undef VLOAD
#undef VSTORE
#undef VMUL2
#undef PB_V
#undef PB_SV
#undef PB_FN
#undef PB_CAT
#undef PB_CAT2
#undef PB_NAME
#undef PB_VEC
#undef PB_ATTR
