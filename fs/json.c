/* json: the stats file's writer (bounded buffer, overflow reported, never
 * truncated silently) and the reader `rawvec stat` parses it back with. */
#include "fs/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ---------------------------------------------------------------- */

void json_w_init(struct json_w *w, char *buf, size_t cap)
{
	*w = (struct json_w){ .jw_buf = buf, .jw_cap = cap, .jw_fresh = true };
	if (cap)
		buf[0] = '\0';
}

/* Append @n bytes; what does not fit is counted, not stored, and one byte
 * stays free for the NUL. */
static void w_put(struct json_w *w, const char *s, size_t n)
{
	if (w->jw_len + 1 < w->jw_cap) {
		size_t room = w->jw_cap - 1 - w->jw_len;

		memcpy(w->jw_buf + w->jw_len, s, n < room ? n : room);
	}
	w->jw_len += n;
}

/* A number snprintf()ed into @tmp (@n its result). */
static void w_number(struct json_w *w, const char *tmp, int n, size_t tmp_len)
{
	if (n < 0 || (size_t)n >= tmp_len) {
		w->jw_err = -EINVAL;
		return;
	}
	w_put(w, tmp, (size_t)n);
}

static void w_indent(struct json_w *w, int depth)
{
	static const char spaces[] = "                ";

	w_put(w, "\n", 1);
	for (size_t n = 2 * (size_t)(depth > 0 ? depth : 0); n;) {
		size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;

		w_put(w, spaces, k);
		n -= k;
	}
}

/* Before a key, a value or an opening bracket: the separator. */
static void w_item(struct json_w *w)
{
	if (!w->jw_fresh)
		w_put(w, w->jw_nl ? "," : ", ", w->jw_nl ? 1 : 2);
	if (w->jw_nl)
		w_indent(w, w->jw_depth);
	w->jw_nl = false;
	w->jw_fresh = false;
}

static void w_open(struct json_w *w, const char *bracket)
{
	w_item(w);
	w_put(w, bracket, 1);
	w->jw_depth++;
	w->jw_fresh = true;
}

static void w_close(struct json_w *w, const char *bracket)
{
	if (w->jw_depth <= 0) {
		w->jw_err = -EINVAL;
		return;
	}
	if (w->jw_nl)
		w_indent(w, w->jw_depth - 1);
	w->jw_nl = false;
	w_put(w, bracket, 1);
	w->jw_depth--;
	w->jw_fresh = false;
}

void json_obj_open(struct json_w *w)
{
	w_open(w, "{");
}

void json_obj_close(struct json_w *w)
{
	w_close(w, "}");
}

void json_arr_open(struct json_w *w)
{
	w_open(w, "[");
}

void json_arr_close(struct json_w *w)
{
	w_close(w, "]");
}

void json_newline(struct json_w *w)
{
	w->jw_nl = true;
}

/* A quoted, escaped string; runs of plain bytes go in one copy. */
static void w_quoted(struct json_w *w, const char *s, size_t max)
{
	size_t i = 0, run = 0;

	w_put(w, "\"", 1);
	for (; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];

		if (c != '"' && c != '\\' && c >= 0x20)
			continue;
		w_put(w, s + run, i - run);
		if (c < 0x20)
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		else
			snprintf(esc, sizeof(esc), "\\%c", c);
		w_put(w, esc, strlen(esc));
		run = i + 1;
	}
	w_put(w, s + run, i - run);
	w_put(w, "\"", 1);
}

void json_key(struct json_w *w, const char *name)
{
	w_item(w);
	w_quoted(w, name, SIZE_MAX);
	w_put(w, ": ", 2);
	w->jw_fresh = true; /* the value needs no comma */
}

void json_key_u64(struct json_w *w, uint64_t name)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, name);
	json_key(w, s);
}

void json_str(struct json_w *w, const char *s)
{
	json_strn(w, s, SIZE_MAX);
}

void json_strn(struct json_w *w, const char *s, size_t max)
{
	w_item(w);
	w_quoted(w, s, max);
}

void json_u64(struct json_w *w, uint64_t v)
{
	char tmp[24];

	w_item(w);
	w_number(w, tmp, snprintf(tmp, sizeof(tmp), "%" PRIu64, v),
		 sizeof(tmp));
}

void json_i64(struct json_w *w, int64_t v)
{
	char tmp[24];

	w_item(w);
	w_number(w, tmp, snprintf(tmp, sizeof(tmp), "%" PRId64, v),
		 sizeof(tmp));
}

void json_double(struct json_w *w, double v, int decimals)
{
	char tmp[64];

	w_item(w);
	if (decimals < 0)
		decimals = 0;
	if (decimals > 9)
		decimals = 9;
	/* JSON has no inf or nan; and past 1e40 (no rate or latency gets
	 * there) the digits would not fit @tmp. */
	if (!isfinite(v) || v >= 1e40 || v <= -1e40)
		w_put(w, "null", 4);
	else
		w_number(w, tmp,
			 snprintf(tmp, sizeof(tmp), "%.*f", decimals, v),
			 sizeof(tmp));
}

void json_bool(struct json_w *w, bool v)
{
	w_item(w);
	w_put(w, v ? "true" : "false", v ? 4 : 5);
}

ssize_t json_w_end(struct json_w *w)
{
	if (w->jw_nl)
		w_put(w, "\n", 1);
	w->jw_nl = false;
	if (w->jw_len < w->jw_cap)
		w->jw_buf[w->jw_len] = '\0';
	else if (w->jw_cap)
		w->jw_buf[w->jw_cap - 1] = '\0';
	if (w->jw_err || w->jw_depth)
		return -EINVAL;
	if (w->jw_len >= w->jw_cap)
		return -ENOSPC;
	return (ssize_t)w->jw_len;
}

/* ---- reader ---------------------------------------------------------------- */

struct json_p {
	char *p;
	int depth;
};

void json_free(struct json_val *v)
{
	while (v) {
		struct json_val *next = v->jv_next;

		json_free(v->jv_kid);
		free(v);
		v = next;
	}
}

static void p_ws(struct json_p *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hex4(const char *p, unsigned *cp)
{
	*cp = 0;
	for (int i = 0; i < 4; i++) { /* stops at a NUL: not hex */
		int c = p[i] | 32;

		if (!digit(p[i]) && (c < 'a' || c > 'f'))
			return -EINVAL;
		*cp = *cp << 4 |
		      (unsigned)(digit(p[i]) ? p[i] - '0' : c - 'a' + 10);
	}
	return 0;
}

/* The string whose opening quote is at j->p, decoded in place: an escape
 * never decodes to more bytes than it is written with. */
static int p_string(struct json_p *j, const char **out)
{
	static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
	char *w = ++j->p;
	unsigned cp, lo;

	*out = w;
	while (*j->p != '"') {
		unsigned char c = (unsigned char)*j->p;
		const char *e;

		if (c < 0x20) /* a control byte, or the end of the text */
			return -EINVAL;
		j->p++;
		if (c != '\\') {
			*w++ = (char)c;
			continue;
		}
		if (*j->p != 'u') {
			e = *j->p ? strchr(esc, *j->p) : NULL;
			if (!e || (e - esc) % 2)
				return -EINVAL;
			*w++ = e[1];
			j->p++;
			continue;
		}
		if (hex4(++j->p, &cp))
			return -EINVAL;
		j->p += 4;
		if (cp >= 0xd800 && cp < 0xdc00 && j->p[0] == '\\' &&
		    j->p[1] == 'u' && !hex4(j->p + 2, &lo) && lo >= 0xdc00 &&
		    lo < 0xe000) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			j->p += 6;
		}
		if (!cp ||
		    (cp >= 0xd800 && cp < 0xe000)) { /* NUL, lone surrogate */
			*w++ = '?';
		} else if (cp < 0x80) {
			*w++ = (char)cp;
		} else { /* UTF-8: lead byte 110xxxxx, 1110xxxx or 11110xxx */
			int n = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;

			for (int i = n - 1; i > 0; i--, cp >>= 6)
				w[i] = (char)(0x80 | (cp & 0x3f));
			w[0] = (char)(((0xff00 >> n) & 0xff) | cp);
			w += n;
		}
	}
	*w = '\0'; /* may land on the closing quote, already passed over */
	j->p++;
	return 0;
}

/* JSON's number grammar checked by hand: strtod alone takes hex, inf. */
static int p_number(struct json_p *j, struct json_val *v)
{
	char *p = j->p, *end;
	bool plain = *p != '-';

	p += !plain;
	if (!digit(*p))
		return -EINVAL;
	if (*p == '0')
		p++;
	else
		while (digit(*p))
			p++;
	if (*p == '.') {
		plain = false;
		if (!digit(*++p))
			return -EINVAL;
		while (digit(*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		plain = false;
		p += p[1] == '+' || p[1] == '-';
		if (!digit(*++p))
			return -EINVAL;
		while (digit(*p))
			p++;
	}
	v->jv_type = JSON_NUM;
	v->jv_num = strtod(j->p, &end);
	if (end != p)
		return -EINVAL;
	v->jv_u = plain ? strtoull(j->p, NULL, 10) : 0;
	j->p = p;
	return 0;
}

/* One value at j->p.  *@out is set before anything can fail, so the
 * caller frees a partial tree with the whole. */
static int p_value(struct json_p *j, struct json_val **out)
{
	struct json_val *v, **tail;
	char close;
	int ret;

	p_ws(j);
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	*out = v;
	if (*j->p == '"') {
		v->jv_type = JSON_STR;
		return p_string(j, &v->jv_str);
	}
	if (*j->p != '{' && *j->p != '[') {
		static const char *const lit[] = { "null", "false", "true" };

		for (int i = 0; i < 3; i++) {
			if (!strncmp(j->p, lit[i], strlen(lit[i]))) {
				v->jv_type = i ? JSON_BOOL : JSON_NULL;
				v->jv_num = i == 2;
				j->p += strlen(lit[i]);
				return 0;
			}
		}
		return p_number(j, v);
	}
	close = *j->p == '{' ? '}' : ']';
	v->jv_type = close == '}' ? JSON_OBJ : JSON_ARR;
	if (++j->depth > JSON_MAX_DEPTH)
		return -EINVAL;
	j->p++;
	p_ws(j);
	for (tail = &v->jv_kid; *j->p != close; tail = &(*tail)->jv_next) {
		const char *key = NULL;

		if (tail != &v->jv_kid) {
			if (*j->p != ',')
				return -EINVAL;
			j->p++;
			p_ws(j);
		}
		if (v->jv_type == JSON_OBJ) {
			if (*j->p != '"' || p_string(j, &key))
				return -EINVAL;
			p_ws(j);
			if (*j->p != ':')
				return -EINVAL;
			j->p++;
		}
		ret = p_value(j, tail);
		if (*tail)
			(*tail)->jv_key = key;
		if (ret)
			return ret;
		p_ws(j);
	}
	j->p++;
	j->depth--;
	return 0;
}

int json_parse(char *text, size_t len, struct json_val **root, size_t *bad_at)
{
	struct json_p j = { text, 0 };
	int ret;

	*root = NULL;
	ret = p_value(&j, root);
	if (!ret) {
		p_ws(&j);
		if (j.p != text + len) /* trailing text, or a NUL inside */
			ret = -EINVAL;
	}
	if (ret) {
		*bad_at = (size_t)(j.p - text);
		json_free(*root);
		*root = NULL;
	}
	return ret;
}

const struct json_val *json_get(const struct json_val *obj, const char *key,
				enum json_type type)
{
	const struct json_val *k =
		obj && obj->jv_type == JSON_OBJ ? obj->jv_kid : NULL;

	for (; k; k = k->jv_next)
		if (!strcmp(k->jv_key, key))
			return k->jv_type == type ? k : NULL;
	return NULL;
}

uint64_t json_get_u64(const struct json_val *obj, const char *key)
{
	const struct json_val *v = json_get(obj, key, JSON_NUM);

	return v ? v->jv_u : 0;
}

const char *json_get_str(const struct json_val *obj, const char *key,
			 const char *missing)
{
	const struct json_val *v = json_get(obj, key, JSON_STR);

	return v ? v->jv_str : missing;
}
