/* test_json: the stats file's JSON writer (exact text, escaping, every
 * buffer size up to overflow) and its reader (grammar, decoding, refusals). */
#include "tests/unit/unit.h"

#include "fs/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

/* The shape stats writes: a few members to a line at the top, one line
 * for each nested object, arrays of objects, histograms keyed by number. */
static void write_sample(struct json_w *w)
{
	json_obj_open(w);
	json_newline(w);
	json_kv_str(w, "transport", "uring");
	json_newline(w);
	json_kv_u64(w, "requests", 7);
	json_kv_bool(w, "read_only", false);
	json_newline(w);
	json_key(w, "target");
	json_obj_open(w);
	json_kv_str(w, "name", "raid5");
	json_kv_i64(w, "degraded", -1);
	json_kv_double(w, "p50_us", 63.25, 1);
	json_kv_double(w, "rate", 1004800380.4, 0);
	json_key(w, "hist");
	json_obj_open(w);
	json_key_u64(w, 4096);
	json_u64(w, UINT64_MAX);
	json_obj_close(w);
	json_key(w, "empty");
	json_obj_open(w);
	json_obj_close(w);
	json_key(w, "members");
	json_arr_open(w);
	for (int i = 0; i < 2; i++) {
		json_obj_open(w);
		json_kv_bool(w, "ok", i);
		json_obj_close(w);
	}
	json_arr_close(w);
	json_obj_close(w);
	json_newline(w);
	json_obj_close(w);
	json_newline(w);
}

static const char sample_text[] =
	"{\n"
	"  \"transport\": \"uring\",\n"
	"  \"requests\": 7, \"read_only\": false,\n"
	"  \"target\": {\"name\": \"raid5\", \"degraded\": -1, \"p50_us\": 63.2, "
	"\"rate\": 1004800380, \"hist\": {\"4096\": 18446744073709551615}, "
	"\"empty\": {}, \"members\": [{\"ok\": false}, {\"ok\": true}]}\n"
	"}\n";

START_TEST(writer_exact_text)
{
	char buf[1024];
	struct json_w w;
	ssize_t n;

	json_w_init(&w, buf, sizeof(buf));
	write_sample(&w);
	n = json_w_end(&w);
	UT_EQ(n, strlen(sample_text), "text: %s", buf);
	UT_CHECK(!strcmp(buf, sample_text), "got:\n%s\nwant:\n%s", buf,
		 sample_text);
}
END_TEST

/* Every buffer size from 0 to one past the fit: nothing is written past
 * the buffer, what is there is the text's start, NUL-terminated, and the
 * result says whether it all fit and how much it needs. */
START_TEST(writer_overflow_every_size)
{
	size_t full = strlen(sample_text);

	for (size_t cap = 0; cap <= full + 2; cap++) {
		char buf[1024];
		struct json_w w;
		ssize_t n;

		memset(buf, 'X', sizeof(buf));
		json_w_init(&w, buf, cap);
		write_sample(&w);
		n = json_w_end(&w);
		for (size_t i = cap; i < sizeof(buf); i++)
			UT_EQ(buf[i], 'X', "cap %zu: byte %zu written", cap, i);
		UT_EQ(w.jw_len, full, "cap %zu: the length needed", cap);
		if (cap > full) {
			UT_EQ(n, full, "cap %zu", cap);
		} else {
			UT_EQ(n, -ENOSPC, "cap %zu", cap);
		}
		if (cap) {
			size_t kept = cap - 1 < full ? cap - 1 : full;

			UT_EQ(buf[kept], '\0', "cap %zu: NUL at %zu", cap,
			      kept);
			UT_CHECK(!memcmp(buf, sample_text, kept),
				 "cap %zu: not the text's start", cap);
		}
	}
}
END_TEST

static void str_text(const char *s, size_t max, char *buf, size_t cap)
{
	struct json_w w;

	json_w_init(&w, buf, cap);
	json_strn(&w, s, max);
	ck_assert_int_ge(json_w_end(&w), 0);
}

START_TEST(writer_escapes)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "", "\"\"" },
		{ "plain", "\"plain\"" },
		{ "a\"b", "\"a\\\"b\"" },
		{ "back\\slash", "\"back\\\\slash\"" },
		{ "\\\"", "\"\\\\\\\"\"" },
		{ "nl\ntab\t", "\"nl\\u000atab\\u0009\"" },
		{ "\x01\x1f", "\"\\u0001\\u001f\"" },
		{ "\x7f \xc3\xa9 /",
		  "\"\x7f \xc3\xa9 /\"" }, /* DEL, UTF-8, '/' as they are */
		{ "\x1b[H", "\"\\u001b[H\"" },
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		str_text(t[i].in, SIZE_MAX, buf, sizeof(buf));
		UT_CHECK(!strcmp(buf, t[i].out), "case %zu: got %s, want %s", i,
			 buf, t[i].out);
	}
	/* json_strn: at most max bytes, fewer at a NUL (an md name field) */
	str_text("abcdef", 3, buf, sizeof(buf));
	UT_CHECK(!strcmp(buf, "\"abc\""), "strn 3: %s", buf);
	str_text("ab\0cd", 5, buf, sizeof(buf));
	UT_CHECK(!strcmp(buf, "\"ab\""), "strn at NUL: %s", buf);
	str_text("a\"bc", 2, buf, sizeof(buf));
	UT_CHECK(!strcmp(buf, "\"a\\\"\""), "strn cuts after an escape: %s",
		 buf);
	/* keys are escaped like strings */
	{
		struct json_w w;

		json_w_init(&w, buf, sizeof(buf));
		json_obj_open(&w);
		json_kv_u64(&w, "k\"\\", 1);
		json_obj_close(&w);
		ck_assert_int_ge(json_w_end(&w), 0);
		UT_CHECK(!strcmp(buf, "{\"k\\\"\\\\\": 1}"), "key: %s", buf);
	}
}
END_TEST

START_TEST(writer_numbers)
{
	static const struct {
		double v;
		int dec;
		const char *out;
	} t[] = {
		/* printf's rounding, the clamped precision, null for what
		 * JSON cannot say, and the largest number written out */
		{ 0.0, 1, "0.0" },	  { 0.05, 1, "0.1" },
		{ 99.95, 1, "100.0" },	  { 1e9, 0, "1000000000" },
		{ -2.5, 1, "-2.5" },	  { 1.0, 12, "1.000000000" },
		{ 1.0, -3, "1" },	  { INFINITY, 1, "null" },
		{ -INFINITY, 1, "null" }, { NAN, 1, "null" },
		{ 1e40, 0, "null" },	  { 9.9e39, 0, NULL },
	};
	char buf[128];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct json_w w;
		ssize_t n;

		json_w_init(&w, buf, sizeof(buf));
		json_double(&w, t[i].v, t[i].dec);
		n = json_w_end(&w);
		ck_assert_int_ge(n, 0);
		if (t[i].out)
			UT_CHECK(!strcmp(buf, t[i].out),
				 "case %zu: got %s, want %s", i, buf, t[i].out);
		else /* the largest accepted: digits, all of them kept */
			UT_EQ(n, 40, "case %zu: %s", i, buf);
	}
	{
		struct json_w w;

		json_w_init(&w, buf, sizeof(buf));
		json_arr_open(&w);
		json_i64(&w, INT64_MIN);
		json_i64(&w, INT64_MAX);
		json_u64(&w, 0);
		json_arr_close(&w);
		ck_assert_int_ge(json_w_end(&w), 0);
		UT_CHECK(!strcmp(buf,
				 "[-9223372036854775808, 9223372036854775807, 0]"),
			 "%s", buf);
	}
}
END_TEST

START_TEST(writer_misuse)
{
	char buf[64];
	struct json_w w;

	json_w_init(&w, buf, sizeof(buf));
	json_obj_open(&w);
	UT_EQ(json_w_end(&w), -EINVAL, "an object left open");

	json_w_init(&w, buf, sizeof(buf));
	json_arr_open(&w);
	json_arr_close(&w);
	json_arr_close(&w);
	UT_EQ(json_w_end(&w), -EINVAL, "closed twice");

	/* misuse wins over overflow: a bigger buffer would not help */
	json_w_init(&w, buf, 2);
	json_obj_open(&w);
	json_kv_str(&w, "long", "enough to overflow");
	UT_EQ(json_w_end(&w), -EINVAL, "open and overflowing");

	json_w_init(&w, NULL, 0);
	json_obj_open(&w);
	json_obj_close(&w);
	UT_EQ(json_w_end(&w), -ENOSPC, "no buffer at all");
	UT_EQ(w.jw_len, 2, "still counts");
}
END_TEST

/* Parse @text (a copy: the reader decodes in place); ck-fails on error. */
static struct json_val *parse_ok(const char *text, char *copy, size_t cap)
{
	struct json_val *root;
	size_t bad_at = 0, len = strlen(text);
	int ret;

	ck_assert_uint_lt(len, cap);
	memcpy(copy, text, len + 1);
	ret = json_parse(copy, len, &root, &bad_at);
	UT_EQ(ret, 0, "%s: bad at %zu", text, bad_at);
	return root;
}

START_TEST(reader_values)
{
	char copy[512];
	struct json_val *r =
		parse_ok(" {\"a\": 18446744073709551615, \"b\": -3, \"c\": 2.5e3, \"big\": 9007199254740993,"
			 " \"t\": true, \"f\": false, \"n\": null, \"s\": \"x\\\"\\\\\\/\\b\\f\\n\\r\\t\","
			 " \"u\": \"\\u00e9\\u20ac\\ud83d\\ude00\", \"z\": \"a\\u0000b\\udc00c\","
			 " \"arr\": [1, [], {}], \"e\": \"\"} \n",
			 copy, sizeof(copy));
	const struct json_val *v;

	UT_EQ(r->jv_type, JSON_OBJ, "root");
	UT_CHECK(json_get_u64(r, "a") == UINT64_MAX, "a exact");
	UT_CHECK(json_get_u64(r, "big") == 9007199254740993ull,
		 "past 2^53 exact");
	v = json_get(r, "b", JSON_NUM);
	UT_CHECK(v && v->jv_num == -3 && v->jv_u == 0, "negative: no jv_u");
	v = json_get(r, "c", JSON_NUM);
	UT_CHECK(v && v->jv_num == 2500 && v->jv_u == 0,
		 "exponent: a double only");
	v = json_get(r, "t", JSON_BOOL);
	UT_CHECK(v && v->jv_num == 1, "true");
	v = json_get(r, "f", JSON_BOOL);
	UT_CHECK(v && v->jv_num == 0, "false");
	UT_CHECK(json_get(r, "n", JSON_NULL), "null");
	UT_CHECK(!strcmp(json_get_str(r, "s", "?"), "x\"\\/\b\f\n\r\t"),
		 "escapes");
	UT_CHECK(!strcmp(json_get_str(r, "u", "?"),
			 "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
		 "UTF-8 of 2, 3 and 4 bytes: %s", json_get_str(r, "u", "?"));
	UT_CHECK(!strcmp(json_get_str(r, "z", "?"), "a?b?c"),
		 "NUL, lone surrogate: %s", json_get_str(r, "z", "?"));
	UT_CHECK(!strcmp(json_get_str(r, "e", "?"), ""), "empty string");
	v = json_get(r, "arr", JSON_ARR);
	UT_CHECK(v && v->jv_kid && v->jv_kid->jv_u == 1 &&
			 v->jv_kid->jv_key == NULL,
		 "arr[0]");
	UT_CHECK(v->jv_kid->jv_next->jv_type == JSON_ARR &&
			 !v->jv_kid->jv_next->jv_kid,
		 "arr[1]");
	UT_CHECK(v->jv_kid->jv_next->jv_next->jv_type == JSON_OBJ &&
			 !v->jv_kid->jv_next->jv_next->jv_next,
		 "arr[2], last");
	/* wrong type or missing: NULL, 0, the fallback */
	UT_CHECK(!json_get(r, "a", JSON_STR), "a is no string");
	UT_CHECK(json_get_u64(r, "s") == 0 && json_get_u64(r, "nope") == 0,
		 "u64 fallback");
	UT_CHECK(!strcmp(json_get_str(r, "a", "?"), "?"), "str fallback");
	UT_CHECK(!json_get(v, "x", JSON_NUM) && !json_get(NULL, "x", JSON_NUM),
		 "not objects");
	json_free(r);
}
END_TEST

START_TEST(reader_refuses)
{
	static const struct {
		const char *text;
		size_t bad_at;
	} t[] = {
		{ "", 0 },
		{ "{} x", 3 },
		{ "[1,]", 3 },
		{ "[1 2]", 3 },
		{ "{\"a\" 1}", 5 },
		{ "{\"a\": }", 6 },
		{ "{1: 2}", 1 },
		{ "01", 0 },
		{ "1.", 0 },
		{ "-", 0 },
		{ "1e", 0 },
		{ "0x10", 0 },
		{ "inf", 0 },
		{ "nan", 0 },
		{ "+1", 0 },
		{ "\"a\nb\"", 2 },
		{ "\"open", 5 },
		{ "\"\\x\"", 2 },
		{ "\"\\u12g4\"", 3 },
		{ "[", 1 },
		{ "{\"a\": 1", 7 },
		{ "tru", 0 },
		{ "[true false]", 6 },
	};
	char copy[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct json_val *root = (void *)1;
		size_t bad_at = SIZE_MAX, len = strlen(t[i].text);

		memcpy(copy, t[i].text, len + 1);
		UT_EQ(json_parse(copy, len, &root, &bad_at), -EINVAL, "'%s'",
		      t[i].text);
		UT_CHECK(root == NULL, "'%s': root left set", t[i].text);
		UT_EQ(bad_at, t[i].bad_at, "'%s'", t[i].text);
	}
	{ /* a NUL inside the text */
		char text[] = "[1]\0[2]";
		struct json_val *root;
		size_t bad_at;

		UT_EQ(json_parse(text, sizeof(text) - 1, &root, &bad_at),
		      -EINVAL, "NUL inside");
		UT_EQ(bad_at, 3, "NUL inside");
	}
}
END_TEST

START_TEST(reader_depth_bound)
{
	char text[2 * JSON_MAX_DEPTH + 8];
	struct json_val *root;
	size_t bad_at;

	for (int depth = JSON_MAX_DEPTH; depth <= JSON_MAX_DEPTH + 1; depth++) {
		int n = 0;

		for (int i = 0; i < depth; i++)
			text[n++] = '[';
		for (int i = 0; i < depth; i++)
			text[n++] = ']';
		text[n] = '\0';
		if (depth == JSON_MAX_DEPTH) {
			UT_EQ(json_parse(text, (size_t)n, &root, &bad_at), 0,
			      "depth %d", depth);
			json_free(root);
		} else {
			UT_EQ(json_parse(text, (size_t)n, &root, &bad_at),
			      -EINVAL, "depth %d", depth);
			UT_EQ(bad_at, JSON_MAX_DEPTH, "where it went too deep");
		}
	}
}
END_TEST

/* What the writer writes, the reader reads back: random strings of every
 * byte but NUL as keys and values, random counters. */
START_TEST(round_trip_random)
{
	struct ut_rng rng;

	ut_rng_init(&rng, "json_round_trip");
	for (int iter = 0; iter < 200; iter++) {
		char strs[8][40], buf[4096];
		uint64_t nums[8];
		struct json_val *root;
		const struct json_val *v;
		struct json_w w;
		size_t bad_at;
		ssize_t n;
		int nr = (int)ut_between(&rng, 1, 8);

		json_w_init(&w, buf, sizeof(buf));
		json_obj_open(&w);
		for (int i = 0; i < nr; i++) {
			size_t len = ut_below(&rng, sizeof(strs[i]) - 2);
			char key[16];

			for (size_t k = 0; k < len; k++)
				strs[i][k] = (char)ut_between(&rng, 1, 255);
			strs[i][len] = '\0';
			nums[i] = ut_chance(&rng, 20) ?
					  UINT64_MAX - ut_below(&rng, 3) :
					  ut_next(&rng);
			snprintf(key, sizeof(key), "s%d", i);
			json_kv_str(&w, key, strs[i]);
			snprintf(key, sizeof(key), "n%d", i);
			json_kv_u64(&w, key, nums[i]);
			if (ut_chance(&rng, 30))
				json_newline(&w);
		}
		json_key(&w, strs[0]);
		json_u64(&w, 42);
		json_obj_close(&w);
		n = json_w_end(&w);
		ck_assert_int_gt(n, 0);
		UT_EQ(json_parse(buf, (size_t)n, &root, &bad_at), 0,
		      "iter %d: bad at %zu", iter, bad_at);
		for (int i = 0; i < nr; i++) {
			char key[16];

			snprintf(key, sizeof(key), "s%d", i);
			v = json_get(root, key, JSON_STR);
			UT_CHECK(v && !strcmp(v->jv_str, strs[i]),
				 "iter %d: string %d", iter, i);
			snprintf(key, sizeof(key), "n%d", i);
			UT_CHECK(json_get_u64(root, key) == nums[i],
				 "iter %d: number %d", iter, i);
		}
		/* the last member, under a key of random bytes */
		v = root->jv_kid;
		while (v->jv_next)
			v = v->jv_next;
		UT_CHECK(!strcmp(v->jv_key, strs[0]) && v->jv_u == 42,
			 "iter %d: random key", iter);
		json_free(root);
	}
}
END_TEST

Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("json");

	tcase_set_timeout(tc, UT_TIMEOUT_SEC);
	tcase_add_test(tc, writer_exact_text);
	tcase_add_test(tc, writer_overflow_every_size);
	tcase_add_test(tc, writer_escapes);
	tcase_add_test(tc, writer_numbers);
	tcase_add_test(tc, writer_misuse);
	tcase_add_test(tc, reader_values);
	tcase_add_test(tc, reader_refuses);
	tcase_add_test(tc, reader_depth_bound);
	tcase_add_test(tc, round_trip_random);
	suite_add_tcase(s, tc);
	return s;
}
