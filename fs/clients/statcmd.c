/* statcmd: `rawvec stat MOUNTPOINT [INTERVAL [COUNT]]`, iostat -x for a
 * mount's device tree, computed from successive reads of MOUNTPOINT/stats. */
#include "fs/fs.h"
#include "blockdev/core/bdev.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Each device level nests two deep (node, "members"), so this allows
 * trees far deeper than anyone builds while bounding the recursion. */
#define JSON_MAX_DEPTH 128
#define STATS_MAX (256u << 20)
#define LABEL_MAX 48 /* device column; longer names keep their tail */

static const char usage_text[] =
	"usage: rawvec stat MOUNTPOINT [INTERVAL [COUNT]]\n"
	"\n"
	"Per-device I/O statistics of the rawvec mount at MOUNTPOINT, read from\n"
	"MOUNTPOINT/stats every INTERVAL seconds (default 1, fractions allowed),\n"
	"COUNT times (default: until interrupted).  One row per device: the\n"
	"target, then its members by address as MOUNTPOINT/control takes them\n"
	"(2, or 1.0 when nested).  Every figure covers the time since the\n"
	"previous report; the first report covers the first min(INTERVAL, 1)\n"
	"seconds.  On a terminal each report replaces the last.\n"
	"\n"
	"  r/s w/s      reads and writes completed per second\n"
	"  rMB/s wMB/s  megabytes (10^6 bytes) per second\n"
	"  areq-KiB     average request size\n"
	"  aqu-sz       average requests in flight (latency sum / time)\n"
	"  p50 p99      latency percentiles, reads and writes together\n"
	"  err          failed requests\n"
	"  sweep        progress of a running rebuild or scrub\n"
	"\n"
	"Under a raid5 or raid6 row, its stripe writes per second by method (full\n"
	"stripe, read-modify-write, reconstruct-write), the writes merged into a\n"
	"neighbour's stripe write, and the member reads partial writes cost.\n"
	"\n"
	"Exit status: 0 done or interrupted, 1 stats unreadable, 2 bad usage.\n";

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

/* A JSON value.  Strings and keys are decoded in place in the text they
 * came from, so that text lives as long as the tree. */
struct jv {
	enum jtype type;
	const char *key; /* in an object: this member's name */
	const char *str;
	double num;
	uint64_t u; /* numbers that are non-negative integers, exactly */
	struct jv *kid, *next;
};

struct jp {
	char *s, *p;
	int depth;
};

static void jfree(struct jv *v)
{
	while (v) {
		struct jv *next = v->next;

		jfree(v->kid);
		free(v);
		v = next;
	}
}

static void jws(struct jp *j)
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
		*cp = *cp << 4 | (unsigned)(digit(p[i]) ? p[i] - '0' : c - 'a' + 10);
	}
	return 0;
}

/* The string whose opening quote is at j->p, decoded in place: an escape
 * never decodes to more bytes than it is written with. */
static int jstring(struct jp *j, const char **out)
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
		if (cp >= 0xd800 && cp < 0xdc00 && j->p[0] == '\\' && j->p[1] == 'u' &&
		    !hex4(j->p + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			j->p += 6;
		}
		if (!cp || (cp >= 0xd800 && cp < 0xe000)) { /* NUL, lone surrogate */
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
static int jnumber(struct jp *j, struct jv *v)
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
	v->type = J_NUM;
	v->num = strtod(j->p, &end);
	if (end != p)
		return -EINVAL;
	v->u = plain ? strtoull(j->p, NULL, 10) : 0; /* counters pass 2^53 */
	j->p = p;
	return 0;
}

/* One value at j->p.  *@out is set before anything can fail, so the
 * caller frees a partial tree with the whole. */
static int jvalue(struct jp *j, struct jv **out)
{
	struct jv *v, **tail;
	char close;
	int ret;

	jws(j);
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	*out = v;
	if (*j->p == '"') {
		v->type = J_STR;
		return jstring(j, &v->str);
	}
	if (*j->p != '{' && *j->p != '[') {
		static const char *const lit[] = { "null", "false", "true" };

		for (int i = 0; i < 3; i++) {
			if (!strncmp(j->p, lit[i], strlen(lit[i]))) {
				v->type = i ? J_BOOL : J_NULL;
				v->num = i == 2;
				j->p += strlen(lit[i]);
				return 0;
			}
		}
		return jnumber(j, v);
	}
	close = *j->p == '{' ? '}' : ']';
	v->type = close == '}' ? J_OBJ : J_ARR;
	if (++j->depth > JSON_MAX_DEPTH)
		return -EINVAL;
	j->p++;
	jws(j);
	for (tail = &v->kid; *j->p != close; tail = &(*tail)->next) {
		const char *key = NULL;

		if (tail != &v->kid) {
			if (*j->p != ',')
				return -EINVAL;
			j->p++;
			jws(j);
		}
		if (v->type == J_OBJ) {
			if (*j->p != '"' || jstring(j, &key))
				return -EINVAL;
			jws(j);
			if (*j->p != ':')
				return -EINVAL;
			j->p++;
		}
		ret = jvalue(j, tail);
		if (*tail)
			(*tail)->key = key;
		if (ret)
			return ret;
		jws(j);
	}
	j->p++;
	j->depth--;
	return 0;
}

static const struct jv *jget(const struct jv *o, const char *key, enum jtype type)
{
	for (const struct jv *k = o && o->type == J_OBJ ? o->kid : NULL; k; k = k->next)
		if (!strcmp(k->key, key))
			return k->type == type ? k : NULL;
	return NULL;
}

static uint64_t jnum(const struct jv *o, const char *key)
{
	const struct jv *v = jget(o, key, J_NUM);

	return v ? v->u : 0;
}

static const char *jstr(const struct jv *o, const char *key)
{
	const struct jv *v = jget(o, key, J_STR);

	return v ? v->str : "?";
}

enum { C_READS, C_WRITES, C_RBYTES, C_WBYTES, C_ERRORS, C_LAT_NS, NR_C };
static const char *const count_field[C_LAT_NS] = { "reads", "writes", "read_bytes",
						   "write_bytes", "errors" };

enum { S_FULL, S_RMW, S_RCW, S_MERGED, S_PREADS, NR_S };
static const char *const stripe_field[NR_S] = { "full_stripe_writes", "rmw_writes",
						"rcw_writes", "merged_writes",
						"parity_reads" };
static const char *const stripe_label[NR_S] = { "full", "rmw", "rcw", "merged",
						"parity-reads" };

/** struct dev - one device node of a snapshot, flattened in tree order. */
struct dev {
	char addr[96]; /* "" for the target, then "1", "1.0", ... */
	int depth;
	const char *name, *kind, *state;
	bool sweeping;
	double sweep_pct;
	uint64_t c[NR_C];
	uint64_t hist[BDEV_LAT_BUCKETS]; /* reads and writes merged */
	bool parity;	   /* raid5/6: @stripe holds its stripe counters */
	uint64_t stripe[NR_S];
};

struct snap {
	char *text;
	struct jv *root;
	const char *transport;
	struct dev *dev;
	int nr, cap;
	uint64_t t_ns;
};

static void snap_free(struct snap *s)
{
	jfree(s->root);
	free(s->text);
	free(s->dev);
	memset(s, 0, sizeof(*s));
}

static int collect(struct snap *s, const struct jv *node, const char *addr, int depth,
		   const char **why)
{
	const struct jv *members = jget(node, "members", J_ARR), *m;
	const struct jv *sweep = jget(node, "sweep_done_pct", J_NUM);
	const struct jv *running = jget(node, "sweep_running", J_BOOL);
	struct dev *d;
	int i = 0, ret;

	if (s->nr == s->cap) {
		int cap = s->cap ? 2 * s->cap : 16;

		d = realloc(s->dev, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		s->dev = d;
		s->cap = cap;
	}
	d = &s->dev[s->nr++]; /* moves with the array: done with it first */
	memset(d, 0, sizeof(*d));
	snprintf(d->addr, sizeof(d->addr), "%s", addr);
	d->depth = depth;
	d->name = jstr(node, "name");
	d->kind = jstr(node, "kind");
	d->state = jstr(node, "state");
	d->sweeping = running && running->num;
	d->sweep_pct = sweep ? sweep->num : 0;
	for (int k = 0; k < C_LAT_NS; k++)
		d->c[k] = jnum(node, count_field[k]);
	d->parity = jget(node, stripe_field[S_FULL], J_NUM) != NULL;
	for (int k = 0; d->parity && k < NR_S; k++)
		d->stripe[k] = jnum(node, stripe_field[k]);
	for (int k = 0; k < 2; k++) {
		const struct jv *lat = jget(node, k ? "write_lat" : "read_lat", J_OBJ);
		const struct jv *h = jget(lat, "hist", J_OBJ);

		d->c[C_LAT_NS] += jnum(lat, "sum_ns");
		for (const struct jv *b = h ? h->kid : NULL; b; b = b->next) {
			char *end;
			uint64_t lower = strtoull(b->key, &end, 10);

			if (!digit(*b->key) || *end || b->type != J_NUM) {
				*why = "latency histogram key or count is not a number";
				return -EINVAL;
			}
			d->hist[bdev_lat_bucket(lower)] += b->u;
		}
	}
	for (m = members ? members->kid : NULL; m; m = m->next, i++) {
		char sub[sizeof(d->addr)];

		if (m->type != J_OBJ) {
			*why = "a member is not an object";
			return -EINVAL;
		}
		if (snprintf(sub, sizeof(sub), "%s%s%d", addr, depth ? "." : "", i) >=
		    (int)sizeof(sub)) {
			*why = "device tree too deep";
			return -EINVAL;
		}
		ret = collect(s, m, sub, depth + 1, why);
		if (ret)
			return ret;
	}
	return 0;
}

/* Read and parse @path into @s; on failure say why on stderr. */
static int snap_read(struct snap *s, const char *path)
{
	size_t len = 0, cap = 64 << 10;
	const char *why = NULL;
	struct jp j;
	char *p;
	ssize_t n;
	int fd, ret = 0;

	memset(s, 0, sizeof(*s));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "rawvec stat: %s: %s\n", path, strerror(-ret));
		return ret;
	}
	s->t_ns = loop_now_ns(); /* the file's snapshot is taken at open */
	for (;;) {
		if (!s->text || len + 1 == cap) {
			if (s->text && cap >= STATS_MAX) {
				why = "larger than 256 MiB";
				ret = -EFBIG;
				goto out;
			}
			p = realloc(s->text, s->text ? cap *= 2 : cap);
			if (!p) {
				why = strerror(ENOMEM);
				ret = -ENOMEM;
				goto out;
			}
			s->text = p;
		}
		n = read(fd, s->text + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			why = strerror(errno);
			goto out;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	s->text[len] = '\0';
	j = (struct jp){ s->text, s->text, 0 };
	ret = jvalue(&j, &s->root);
	if (!ret) {
		jws(&j);
		if (j.p != s->text + len) /* trailing text, or a NUL inside */
			ret = -EINVAL;
	}
	if (ret) {
		if (ret == -ENOMEM)
			why = strerror(ENOMEM);
		else
			fprintf(stderr, "rawvec stat: %s: bad JSON at byte %zu\n", path,
				(size_t)(j.p - s->text));
		goto out;
	}
	s->transport = jstr(s->root, "transport");
	if (!jget(s->root, "target", J_OBJ)) {
		why = "no \"target\" device tree (not a rawvec mount?)";
		ret = -EINVAL;
		goto out;
	}
	ret = collect(s, jget(s->root, "target", J_OBJ), "", 0, &why);
	if (ret == -ENOMEM)
		why = strerror(ENOMEM);
out:
	if (why)
		fprintf(stderr, "rawvec stat: %s: %s\n", path, why);
	close(fd);
	if (ret)
		snap_free(s);
	return ret;
}

static bool same_shape(const struct snap *a, const struct snap *b)
{
	if (a->nr != b->nr)
		return false;
	for (int i = 0; i < a->nr; i++)
		if (strcmp(a->dev[i].addr, b->dev[i].addr))
			return false;
	return true;
}

/* What @c is compared with.  A replaced member is a new device at the old
 * address, counting from zero: all it has done lies in this interval. */
static const struct dev *dev_base(const struct dev *p, const struct dev *c)
{
	static const struct dev zero;

	if (strcmp(p->name, c->name))
		return &zero;
	for (int k = 0; k < NR_C; k++)
		if (c->c[k] < p->c[k])
			return &zero;
	for (int b = 0; b < BDEV_LAT_BUCKETS; b++)
		if (c->hist[b] < p->hist[b])
			return &zero;
	for (int k = 0; k < NR_S; k++)
		if (c->stripe[k] < p->stripe[k])
			return &zero;
	return p;
}

/* The device column: indent, address, name, and the kind when the name
 * (a path) does not already say it.  A long name keeps its tail. */
static void label(const struct dev *d, char *buf, size_t len)
{
	int pre = snprintf(buf, len, "%*s%s%s", 2 * d->depth, "", d->addr, *d->addr ? " " : "");
	bool show_kind = strcmp(d->name, d->kind);
	int kind_len = show_kind ? (int)strlen(d->kind) + 3 : 0;
	int name_len = (int)strlen(d->name), keep = LABEL_MAX - pre - kind_len - 3;

	if (keep < 8)
		keep = 8;
	if (pre + name_len + kind_len <= LABEL_MAX || keep > name_len)
		keep = name_len;
	snprintf(buf + pre, len - pre, "%s%s%s%s%s", keep < name_len ? "..." : "",
		 d->name + name_len - keep, show_kind ? " (" : "", show_kind ? d->kind : "",
		 show_kind ? ")" : "");
}

static void fmt_lat(char *buf, size_t len, const uint64_t *hist, double q, uint64_t n)
{
	double ns = (double)bdev_lat_percentile(hist, q);

	if (!n)
		snprintf(buf, len, "-");
	else if (ns < 10e3)
		snprintf(buf, len, "%.1fus", ns / 1e3);
	else if (ns < 1e6)
		snprintf(buf, len, "%.0fus", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.2fms", ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", ns / 1e9);
}

static int report(const struct snap *p, const struct snap *c, const char *mnt, bool tty,
		  bool first)
{
	double secs = (double)(c->t_ns - p->t_ns) / 1e9;
	char when[64], lab[LABEL_MAX + 256], p50[16], p99[16];
	time_t now = time(NULL);
	struct tm tm;
	int w = 6;

	if (secs <= 0)
		secs = 1e-9;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
	for (int i = 0; i < c->nr; i++) {
		label(&c->dev[i], lab, sizeof(lab));
		if ((int)strlen(lab) > w)
			w = (int)strlen(lab);
	}
	printf("%s", tty ? "\033[H\033[J" : first ? "" : "\n");
	printf("rawvec stat %s  transport %s  %s  (%.2f s)\n", mnt, c->transport, when, secs);
	printf("%-*s %-10s %9s %9s %8s %8s %8s %7s %8s %8s %6s %s\n", w, "device", "state",
	       "r/s", "w/s", "rMB/s", "wMB/s", "areq-KiB", "aqu-sz", "p50", "p99", "err",
	       "sweep");
	for (int i = 0; i < c->nr; i++) {
		const struct dev *d = &c->dev[i], *b = dev_base(&p->dev[i], d);
		uint64_t dc[NR_C], hist[BDEV_LAT_BUCKETS], ios;

		for (int k = 0; k < NR_C; k++)
			dc[k] = d->c[k] - b->c[k];
		for (int k = 0; k < BDEV_LAT_BUCKETS; k++)
			hist[k] = d->hist[k] - b->hist[k];
		ios = dc[C_READS] + dc[C_WRITES];
		fmt_lat(p50, sizeof(p50), hist, 0.5, ios);
		fmt_lat(p99, sizeof(p99), hist, 0.99, ios);
		label(d, lab, sizeof(lab));
		printf("%-*s %-10s %9.1f %9.1f %8.2f %8.2f %8.1f %7.2f %8s %8s %6llu", w, lab,
		       d->state, dc[C_READS] / secs, dc[C_WRITES] / secs,
		       dc[C_RBYTES] / secs / 1e6, dc[C_WBYTES] / secs / 1e6,
		       ios ? (double)(dc[C_RBYTES] + dc[C_WBYTES]) / ios / 1024 : 0.0,
		       dc[C_LAT_NS] / secs / 1e9, p50, p99, (unsigned long long)dc[C_ERRORS]);
		if (d->sweeping)
			printf(" %5.1f%%", d->sweep_pct);
		putchar('\n');
		if (d->parity) {
			printf("%*s stripes/s:", 2 * d->depth, "");
			for (int k = 0; k < NR_S; k++)
				printf(" %s %.1f", stripe_label[k],
				       (double)(d->stripe[k] - b->stripe[k]) / secs);
			putchar('\n');
		}
	}
	if (fflush(stdout)) {
		fprintf(stderr, "rawvec stat: standard output: %s\n", strerror(errno));
		return -EIO;
	}
	return 0;
}

/* Sleep until monotonic @deadline; true if SIGINT or SIGTERM came.  They
 * stay blocked throughout, so one sent while a report is made still ends
 * the next wait at once instead of being lost in a race. */
static bool pause_until(uint64_t deadline, const sigset_t *sigs)
{
	for (;;) {
		uint64_t now = loop_now_ns(), rel = now < deadline ? deadline - now : 0;
		struct timespec ts = { (time_t)(rel / 1000000000), (long)(rel % 1000000000) };

		if (sigtimedwait(sigs, NULL, &ts) > 0)
			return true;
		if (now >= deadline)
			return false;
	}
}

__attribute__((format(printf, 1, 0)))
static int usage_error(const char *fmt, const char *arg)
{
	fputs("rawvec stat: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry 'rawvec stat --help'.\n", stderr);
	return 2;
}

int rv_stat_main(int argc, char **argv)
{
	struct snap a, b, *prev = &a, *cur = &b, *t;
	unsigned long count = 0, done = 0;
	uint64_t first_ns, step_ns, next;
	double interval = 1;
	char path[PATH_MAX], *end;
	const char *mnt;
	sigset_t sigs;
	bool tty;
	int ret = 1;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (argc < 2 || argc > 4) {
		fputs(usage_text, stderr);
		return 2;
	}
	mnt = argv[1];
	if (mnt[0] == '-')
		return usage_error("unknown option '%s'", mnt);
	if (argc > 2) {
		interval = strtod(argv[2], &end);
		/* The bound keeps the ns arithmetic below from overflowing. */
		if (end == argv[2] || *end || !(interval > 0 && interval <= 1e6))
			return usage_error("INTERVAL '%s' is not a positive number of seconds "
					   "(at most 1000000)", argv[2]);
	}
	if (argc > 3) {
		errno = 0;
		count = strtoul(argv[3], &end, 10);
		if (!digit(argv[3][0]) || *end || errno || !count)
			return usage_error("COUNT '%s' is not a positive whole number", argv[3]);
	}
	if (snprintf(path, sizeof(path), "%s/stats", mnt) >= (int)sizeof(path)) {
		fprintf(stderr, "rawvec stat: %s: %s\n", mnt, strerror(ENAMETOOLONG));
		return 1;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	tty = isatty(STDOUT_FILENO);
	/* A live view redraws in one write, so the terminal does not flicker. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);

	first_ns = (uint64_t)((interval < 1 ? interval : 1) * 1e9);
	step_ns = (uint64_t)(interval * 1e9);
	if (snap_read(prev, path))
		return 1;
	next = prev->t_ns + first_ns;
	while (!count || done < count) {
		if (pause_until(next, &sigs)) {
			ret = 0;
			goto out;
		}
		if (snap_read(cur, path))
			goto out;
		if (!same_shape(prev, cur)) {
			/* A replace put a layout where a leaf was: no interval
			 * to compare, so start over with a first report. */
			snap_free(prev);
			t = prev, prev = cur, cur = t;
			next = prev->t_ns + first_ns;
			continue;
		}
		if (report(prev, cur, mnt, tty, !done))
			goto out;
		snap_free(prev);
		t = prev, prev = cur, cur = t;
		done++;
		next += step_ns;
		if (next < loop_now_ns()) /* fell behind (slow read): no burst */
			next = loop_now_ns();
	}
	ret = 0;
out:
	snap_free(prev);
	return ret;
}
