/* json: a writer into a bounded buffer (the stats file) and a reader into a
 * tree (rawvec stat reads that file back); both are what stats needs, no more. */
#ifndef RAWVEC_JSON_H
#define RAWVEC_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- writer ---------------------------------------------------------------- */

/**
 * struct json_w - a JSON text being written into @jw_buf of @jw_cap bytes.
 * @jw_len:   bytes the text needs so far, NUL not counted.  It keeps
 *            counting when the buffer is full, so after an overflow
 *            @jw_len + 1 is the size that would have held it.
 * @jw_depth: containers open
 * @jw_fresh: at a container's start or after a key: no comma comes next
 * @jw_nl:    the next item (or closing bracket) starts a new line
 * @jw_err:   0, or -EINVAL after a close with nothing open
 * Items are separated by ", " and a key from its value by ": ", the
 * spacing the stats file has always had; json_newline() breaks a line.
 */
struct json_w {
	char *jw_buf;
	size_t jw_cap;
	size_t jw_len;
	int jw_depth;
	bool jw_fresh;
	bool jw_nl;
	int jw_err;
};

/** json_w_init() - start writing into @buf of @cap bytes (may be 0). */
void json_w_init(struct json_w *w, char *buf, size_t cap);

/**
 * json_w_end() - finish the text: a pending newline is written and the
 * buffer NUL-terminated.  Returns the text's length (NUL not counted);
 * -ENOSPC when it and its NUL did not fit in the buffer (see @jw_len);
 * -EINVAL when a container is still open or one was closed twice.
 */
ssize_t json_w_end(struct json_w *w);

/** json_obj_open() / json_obj_close() - "{" and "}"; likewise arrays. */
void json_obj_open(struct json_w *w);
void json_obj_close(struct json_w *w);
void json_arr_open(struct json_w *w);
void json_arr_close(struct json_w *w);

/** json_key() - an object member's name; its value is written next. */
void json_key(struct json_w *w, const char *name);

/** json_key_u64() - a name that is a number, as histograms key buckets. */
void json_key_u64(struct json_w *w, uint64_t name);

/**
 * json_str() - a string value.  '"' and '\' are escaped with a backslash,
 * bytes below 0x20 as \u00XX; other bytes are copied as they are.
 */
void json_str(struct json_w *w, const char *s);

/** json_strn() - json_str() of at most @max bytes of @s (less at a NUL). */
void json_strn(struct json_w *w, const char *s, size_t max);

/** json_u64() / json_i64() - integer values. */
void json_u64(struct json_w *w, uint64_t v);
void json_i64(struct json_w *w, int64_t v);

/**
 * json_double() - @v with @decimals (0 to 9) digits after the point; null
 * when @v is not finite or not below 1e40 in magnitude.
 */
void json_double(struct json_w *w, double v, int decimals);

/** json_bool() - true or false. */
void json_bool(struct json_w *w, bool v);

/* Key and value in one call, for the many flat members. */
static inline void json_kv_u64(struct json_w *w, const char *k, uint64_t v)
{
	json_key(w, k);
	json_u64(w, v);
}

static inline void json_kv_i64(struct json_w *w, const char *k, int64_t v)
{
	json_key(w, k);
	json_i64(w, v);
}

static inline void json_kv_str(struct json_w *w, const char *k, const char *v)
{
	json_key(w, k);
	json_str(w, v);
}

static inline void json_kv_bool(struct json_w *w, const char *k, bool v)
{
	json_key(w, k);
	json_bool(w, v);
}

static inline void json_kv_double(struct json_w *w, const char *k, double v,
				  int decimals)
{
	json_key(w, k);
	json_double(w, v, decimals);
}

/**
 * json_newline() - start the next item, or the closing bracket that
 * comes first, on a new line indented two spaces per open container.
 * At the end of the text it is a final newline.
 */
void json_newline(struct json_w *w);

/* ---- reader ---------------------------------------------------------------- */

/* Containers nested deeper are refused, which bounds the recursion.  The
 * stats file nests two per device level (node, "members"), so this allows
 * trees far deeper than anyone builds. */
#define JSON_MAX_DEPTH 128

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

/**
 * struct json_val - one value of a parsed text.
 * @jv_key:  in an object: this member's name
 * @jv_str:  a string's bytes, decoded, NUL-terminated (a \u0000 becomes '?')
 * @jv_num:  a number's value; for a boolean 0 or 1
 * @jv_u:    a number that is a non-negative integer, exactly (counters
 *           pass 2^53, where a double loses them); else 0
 * @jv_kid:  a container's first member, linked through @jv_next
 * Keys and strings point into the parsed text, which must outlive the tree.
 */
struct json_val {
	enum json_type jv_type;
	const char *jv_key;
	const char *jv_str;
	double jv_num;
	uint64_t jv_u;
	struct json_val *jv_kid, *jv_next;
};

/**
 * json_parse() - parse the @len bytes of @text (followed by a NUL) into a
 * tree at *@root.  Strings are decoded in place, so @text is changed.
 * Returns 0; -EINVAL for text that is not one JSON value (a NUL inside,
 * trailing text, nesting past JSON_MAX_DEPTH), with the byte offset where
 * it went wrong in *@bad_at; or -ENOMEM.  On failure *@root is NULL.
 */
int json_parse(char *text, size_t len, struct json_val **root, size_t *bad_at);

/** json_free() - free a tree from json_parse() (NULL is fine). */
void json_free(struct json_val *v);

/** json_get() - member @key of object @obj if it has @type, else NULL. */
const struct json_val *json_get(const struct json_val *obj, const char *key,
				enum json_type type);

/** json_get_u64() - the exact integer at @key (jv_u), 0 when missing. */
uint64_t json_get_u64(const struct json_val *obj, const char *key);

/** json_get_str() - the string at @key, @missing when it has none. */
const char *json_get_str(const struct json_val *obj, const char *key,
			 const char *missing);

#endif
