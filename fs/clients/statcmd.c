/* statcmd: `rawvec stat MOUNTPOINT [INTERVAL [COUNT]]`, iostat -x for a
 * mount's device tree, computed from successive reads of MOUNTPOINT/stats. */
#include "fs/fs.h"
#include "fs/json.h"
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
	"Exit status: 0 done or interrupted, 1 stats unreadable during the run,\n"
	"2 bad usage or MOUNTPOINT not a rawvec mount.\n";

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

enum { C_READS, C_WRITES, C_RBYTES, C_WBYTES, C_ERRORS, C_LAT_NS, NR_C };
static const char *const count_field[C_LAT_NS] = { "reads", "writes",
						   "read_bytes", "write_bytes",
						   "errors" };

enum { S_FULL, S_RMW, S_RCW, S_MERGED, S_PREADS, NR_S };
static const char *const stripe_field[NR_S] = { "full_stripe_writes",
						"rmw_writes", "rcw_writes",
						"merged_writes",
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
	bool parity; /* raid5/6: @stripe holds its stripe counters */
	uint64_t stripe[NR_S];
};

struct snap {
	char *text;
	struct json_val *root;
	const char *transport;
	struct dev *dev;
	int nr, cap;
	uint64_t t_ns;
};

static void snap_free(struct snap *s)
{
	json_free(s->root);
	free(s->text);
	free(s->dev);
	memset(s, 0, sizeof(*s));
}

static int collect(struct snap *s, const struct json_val *node,
		   const char *addr, int depth, const char **why)
{
	const struct json_val *members = json_get(node, "members", JSON_ARR),
			      *m;
	const struct json_val *sweep =
		json_get(node, "sweep_done_pct", JSON_NUM);
	const struct json_val *running =
		json_get(node, "sweep_running", JSON_BOOL);
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
	d->name = json_get_str(node, "name", "?");
	d->kind = json_get_str(node, "kind", "?");
	d->state = json_get_str(node, "state", "?");
	d->sweeping = running && running->jv_num;
	d->sweep_pct = sweep ? sweep->jv_num : 0;
	for (int k = 0; k < C_LAT_NS; k++)
		d->c[k] = json_get_u64(node, count_field[k]);
	d->parity = json_get(node, stripe_field[S_FULL], JSON_NUM) != NULL;
	for (int k = 0; d->parity && k < NR_S; k++)
		d->stripe[k] = json_get_u64(node, stripe_field[k]);
	for (int k = 0; k < 2; k++) {
		const struct json_val *lat =
			json_get(node, k ? "write_lat" : "read_lat", JSON_OBJ);
		const struct json_val *h = json_get(lat, "hist", JSON_OBJ);

		d->c[C_LAT_NS] += json_get_u64(lat, "sum_ns");
		for (const struct json_val *b = h ? h->jv_kid : NULL; b;
		     b = b->jv_next) {
			char *end;
			uint64_t lower = strtoull(b->jv_key, &end, 10);

			if (!digit(*b->jv_key) || *end ||
			    b->jv_type != JSON_NUM) {
				*why = "latency histogram key or count is not a number";
				return -EINVAL;
			}
			d->hist[bdev_lat_bucket(lower)] += b->jv_u;
		}
	}
	for (m = members ? members->jv_kid : NULL; m; m = m->jv_next, i++) {
		char sub[sizeof(d->addr)];

		if (m->jv_type != JSON_OBJ) {
			*why = "a member is not an object";
			return -EINVAL;
		}
		if (snprintf(sub, sizeof(sub), "%s%s%d", addr, depth ? "." : "",
			     i) >= (int)sizeof(sub)) {
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
	size_t len = 0, cap = 64 << 10, bad_at;
	const char *why = NULL;
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
	ret = json_parse(s->text, len, &s->root, &bad_at);
	if (ret) {
		if (ret == -ENOMEM)
			why = strerror(ENOMEM);
		else
			fprintf(stderr,
				"rawvec stat: %s: bad JSON at byte %zu\n", path,
				bad_at);
		goto out;
	}
	s->transport = json_get_str(s->root, "transport", "?");
	if (!json_get(s->root, "target", JSON_OBJ)) {
		why = "no \"target\" device tree (not a rawvec mount?)";
		ret = -EINVAL;
		goto out;
	}
	ret = collect(s, json_get(s->root, "target", JSON_OBJ), "", 0, &why);
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
	int pre = snprintf(buf, len, "%*s%s%s", 2 * d->depth, "", d->addr,
			   *d->addr ? " " : "");
	bool show_kind = strcmp(d->name, d->kind);
	int kind_len = show_kind ? (int)strlen(d->kind) + 3 : 0;
	int name_len = (int)strlen(d->name),
	    keep = LABEL_MAX - pre - kind_len - 3;

	if (keep < 8)
		keep = 8;
	if (pre + name_len + kind_len <= LABEL_MAX || keep > name_len)
		keep = name_len;
	snprintf(buf + pre, len - pre, "%s%s%s%s%s",
		 keep < name_len ? "..." : "", d->name + name_len - keep,
		 show_kind ? " (" : "", show_kind ? d->kind : "",
		 show_kind ? ")" : "");
}

static void fmt_lat(char *buf, size_t len, const uint64_t *hist, double q,
		    uint64_t n)
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

static int report(const struct snap *p, const struct snap *c, const char *mnt,
		  bool tty, bool first)
{
	double secs = (double)(c->t_ns - p->t_ns) / 1e9;
	char when[64], lab[LABEL_MAX + 256], p50[16], p99[16];
	time_t now = time(NULL);
	struct tm tm;
	int w = 6;

	if (secs <= 0)
		secs = 1e-9;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S",
		 localtime_r(&now, &tm));
	for (int i = 0; i < c->nr; i++) {
		label(&c->dev[i], lab, sizeof(lab));
		if ((int)strlen(lab) > w)
			w = (int)strlen(lab);
	}
	printf("%s", tty ? "\033[H\033[J" : first ? "" : "\n");
	printf("rawvec stat %s  transport %s  %s  (%.2f s)\n", mnt,
	       c->transport, when, secs);
	printf("%-*s %-10s %9s %9s %8s %8s %8s %7s %8s %8s %6s %s\n", w,
	       "device", "state", "r/s", "w/s", "rMB/s", "wMB/s", "areq-KiB",
	       "aqu-sz", "p50", "p99", "err", "sweep");
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
		printf("%-*s %-10s %9.1f %9.1f %8.2f %8.2f %8.1f %7.2f %8s %8s %6llu",
		       w, lab, d->state, dc[C_READS] / secs,
		       dc[C_WRITES] / secs, dc[C_RBYTES] / secs / 1e6,
		       dc[C_WBYTES] / secs / 1e6,
		       ios ? (double)(dc[C_RBYTES] + dc[C_WBYTES]) / ios /
				       1024 :
			     0.0,
		       dc[C_LAT_NS] / secs / 1e9, p50, p99,
		       (unsigned long long)dc[C_ERRORS]);
		if (d->sweeping)
			printf(" %5.1f%%", d->sweep_pct);
		putchar('\n');
		if (d->parity) {
			printf("%*s stripes/s:", 2 * d->depth, "");
			for (int k = 0; k < NR_S; k++)
				printf(" %s %.1f", stripe_label[k],
				       (double)(d->stripe[k] - b->stripe[k]) /
					       secs);
			putchar('\n');
		}
	}
	if (fflush(stdout)) {
		fprintf(stderr, "rawvec stat: standard output: %s\n",
			strerror(errno));
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
		uint64_t now = loop_now_ns(),
			 rel = now < deadline ? deadline - now : 0;
		struct timespec ts = { (time_t)(rel / 1000000000),
				       (long)(rel % 1000000000) };

		if (sigtimedwait(sigs, NULL, &ts) > 0)
			return true;
		if (now >= deadline)
			return false;
	}
}

__attribute__((format(printf, 1, 0))) static int usage_error(const char *fmt,
							     const char *arg)
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

	if (argc >= 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
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
		if (end == argv[2] || *end ||
		    !(interval > 0 && interval <= 1e6))
			return usage_error("INTERVAL '%s' is not a positive number of seconds "
					   "(at most 1000000)",
					   argv[2]);
	}
	if (argc > 3) {
		errno = 0;
		count = strtoul(argv[3], &end, 10);
		if (!digit(argv[3][0]) || *end || errno || !count)
			return usage_error("COUNT '%s' is not a positive whole number",
					   argv[3]);
	}
	if (snprintf(path, sizeof(path), "%s/stats", mnt) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "rawvec stat: %s: %s\n", mnt,
			strerror(ENAMETOOLONG));
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
	/* A path that is no mount of ours is the caller's mistake. */
	if (access(mnt, F_OK)) {
		fprintf(stderr, "rawvec stat: %s: %s\n", mnt, strerror(errno));
		return 2;
	}
	if (access(path, F_OK) && errno == ENOENT) {
		fprintf(stderr,
			"rawvec stat: %s: not a rawvec mount (it has no stats file)\n",
			mnt);
		return 2;
	}
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
		if (next <
		    loop_now_ns()) /* fell behind (slow read): no burst */
			next = loop_now_ns();
	}
	ret = 0;
out:
	snap_free(prev);
	return ret;
}
