/* tracecmd: `rawvec trace [--csv] FILE` prints what -o trace=FILE recorded:
 * every record as CSV, or per-device totals, latency and an offset heat map. */
#include "fs/fs.h"
#include "blockdev/core/trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAT_COLS 64

/* Per device: what the summary prints. */
struct dev_sum {
	uint64_t ops[BDEV_NR_OPS];
	uint64_t bytes[BDEV_NR_OPS];
	uint64_t errors;
	struct bdev_lat lat;	  /* reads and writes */
	uint64_t heat[HEAT_COLS]; /* bytes read or written per column */
};

struct trace_file {
	const char *path;
	FILE *f;
	struct bdev_trace_hdr h;
	struct bdev_trace_dev *devs;
};

static void trace_usage(FILE *f)
{
	fputs("usage: rawvec trace [--csv] FILE\n"
	      "\n"
	      "Print a trace written by `rawvec -o trace=FILE`: per device (by its\n"
	      "control address; the top device has none) the requests, bytes, errors,\n"
	      "latency percentiles and a heat map of the offsets it served.\n"
	      "  --csv   every record instead: start_us,addr,kind,op,offset,length,\n"
	      "          latency_us,result (0 or -errno), in completion order\n"
	      "\n"
	      "Exit status: 0 done, 1 out of memory or output unwritable, 2 bad usage\n"
	      "or FILE missing or not a rawvec trace.\n",
	      f);
}

static int trace_open(struct trace_file *t)
{
	size_t n;

	t->f = fopen(t->path, "rb");
	if (!t->f) {
		fprintf(stderr, "rawvec trace: %s: %s\n", t->path,
			strerror(errno));
		return -errno;
	}
	if (fread(&t->h, sizeof(t->h), 1, t->f) != 1 ||
	    memcmp(t->h.th_magic, BDEV_TRACE_MAGIC, sizeof(t->h.th_magic))) {
		fprintf(stderr, "rawvec trace: %s: not a rawvec trace\n",
			t->path);
		return -EINVAL;
	}
	if (t->h.th_version != BDEV_TRACE_VERSION ||
	    t->h.th_dev_size != sizeof(struct bdev_trace_dev) ||
	    t->h.th_rec_size != sizeof(struct bdev_trace_rec) ||
	    !t->h.th_nr_devs || t->h.th_nr_devs > 65536) {
		fprintf(stderr,
			"rawvec trace: %s: trace version %u is not this rawvec's (%d)\n",
			t->path, t->h.th_version, BDEV_TRACE_VERSION);
		return -EINVAL;
	}
	n = t->h.th_nr_devs;
	t->devs = calloc(n, sizeof(*t->devs));
	if (!t->devs)
		return -ENOMEM;
	if (fread(t->devs, sizeof(*t->devs), n, t->f) != n) {
		fprintf(stderr, "rawvec trace: %s: truncated device table\n",
			t->path);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		t->devs[i].td_addr[sizeof(t->devs[i].td_addr) - 1] = '\0';
		t->devs[i].td_kind[sizeof(t->devs[i].td_kind) - 1] = '\0';
		t->devs[i].td_name[sizeof(t->devs[i].td_name) - 1] = '\0';
	}
	return 0;
}

/* Calls @fn on every whole record; a torn last one (a crash) is ignored. */
static int for_each_rec(struct trace_file *t,
			int (*fn)(struct trace_file *t,
				  const struct bdev_trace_rec *r, void *ctx),
			void *ctx)
{
	enum { CHUNK = 8192 };
	static struct bdev_trace_rec buf[CHUNK];
	size_t n;
	int ret;

	while ((n = fread(buf, sizeof(buf[0]), CHUNK, t->f)) > 0)
		for (size_t i = 0; i < n; i++)
			if ((ret = fn(t, &buf[i], ctx)))
				return ret;
	if (ferror(t->f)) {
		fprintf(stderr, "rawvec trace: %s: %s\n", t->path,
			strerror(errno));
		return -EIO;
	}
	return 0;
}

static const char *addr_of(const struct bdev_trace_dev *d)
{
	return *d->td_addr ? d->td_addr : "-";
}

static int bad_rec(struct trace_file *t, const struct bdev_trace_rec *r)
{
	if (r->tr_dev < t->h.th_nr_devs && r->tr_op < BDEV_NR_OPS)
		return 0;
	fprintf(stderr, "rawvec trace: %s: corrupt record (device %u, op %u)\n",
		t->path, r->tr_dev, r->tr_op);
	return -EINVAL;
}

static int csv_rec(struct trace_file *t, const struct bdev_trace_rec *r,
		   void *ctx)
{
	const struct bdev_trace_dev *d;

	(void)ctx;
	if (bad_rec(t, r))
		return -EINVAL;
	d = &t->devs[r->tr_dev];
	printf("%.3f,%s,%s,%s,%llu,%u,%.3f,%d\n", r->tr_start_ns / 1e3,
	       addr_of(d), d->td_kind, bdev_op_name(r->tr_op),
	       (unsigned long long)r->tr_pos, r->tr_len, r->tr_lat_ns / 1e3,
	       -(int)r->tr_err);
	return 0;
}

struct summary {
	struct dev_sum *sums;
	uint64_t records, first_ns, last_ns;
};

/* Spread [pos, pos + len) over the device's HEAT_COLS columns by bytes. */
static void heat_add(uint64_t *heat, uint64_t size, uint64_t pos, uint64_t len)
{
	uint64_t col_bytes = (size + HEAT_COLS - 1) / HEAT_COLS;

	if (!col_bytes)
		return;
	while (len && pos < size) {
		uint64_t c = pos / col_bytes, end = (c + 1) * col_bytes;
		uint64_t n = end - pos < len ? end - pos : len;

		heat[c] += n;
		pos += n;
		len -= n;
	}
}

static int sum_rec(struct trace_file *t, const struct bdev_trace_rec *r,
		   void *ctx)
{
	struct summary *s = ctx;
	struct dev_sum *d;
	uint64_t end = r->tr_start_ns + r->tr_lat_ns;

	if (bad_rec(t, r))
		return -EINVAL;
	d = &s->sums[r->tr_dev];
	if (!s->records++ || r->tr_start_ns < s->first_ns)
		s->first_ns = r->tr_start_ns;
	if (end > s->last_ns)
		s->last_ns = end;
	d->ops[r->tr_op]++;
	d->bytes[r->tr_op] += r->tr_len;
	d->errors += r->tr_err != 0;
	if (r->tr_op != BDEV_READ && r->tr_op != BDEV_WRITE)
		return 0;
	bdev_lat_add(&d->lat, r->tr_lat_ns);
	heat_add(d->heat, t->devs[r->tr_dev].td_size, r->tr_pos, r->tr_len);
	return 0;
}

/* A heat row: ' ' untouched, then ten steps up to the device's busiest column. */
static void heat_row(const uint64_t *heat, char *out)
{
	static const char steps[] = ".:-=+*#%@";
	uint64_t max = 0;

	for (int c = 0; c < HEAT_COLS; c++)
		if (heat[c] > max)
			max = heat[c];
	for (int c = 0; c < HEAT_COLS; c++)
		out[c] =
			!heat[c] ?
				' ' :
				steps[(heat[c] * (sizeof(steps) - 2) + max - 1) /
				      max];
	out[HEAT_COLS] = '\0';
}

static void print_summary(struct trace_file *t, const struct summary *s)
{
	double secs = s->records ? (s->last_ns - s->first_ns) / 1e9 : 0;
	char heat[HEAT_COLS + 1];

	printf("%s: %llu records over %.3f s, %u devices\n\n", t->path,
	       (unsigned long long)s->records, secs, t->h.th_nr_devs);
	printf("%-10s %-8s %9s %9s %7s %9s %9s %8s %9s %9s %9s %7s\n", "device",
	       "kind", "reads", "writes", "other", "read_MB", "write_MB",
	       "IOPS", "p50_us", "p99_us", "max_us", "errors");
	for (uint32_t i = 0; i < t->h.th_nr_devs; i++) {
		const struct bdev_trace_dev *d = &t->devs[i];
		const struct dev_sum *m = &s->sums[i];
		uint64_t rw = m->ops[BDEV_READ] + m->ops[BDEV_WRITE], other = 0;
		char label[64];

		for (int op = BDEV_FLUSH; op < BDEV_NR_OPS; op++)
			other += m->ops[op];
		snprintf(label, sizeof(label), "%*s%s", 2 * d->td_depth, "",
			 addr_of(d));
		printf("%-10s %-8s %9llu %9llu %7llu %9.1f %9.1f %8.0f %9.1f %9.1f %9.1f %7llu\n",
		       label, d->td_kind, (unsigned long long)m->ops[BDEV_READ],
		       (unsigned long long)m->ops[BDEV_WRITE],
		       (unsigned long long)other, m->bytes[BDEV_READ] / 1e6,
		       m->bytes[BDEV_WRITE] / 1e6, secs > 0 ? rw / secs : 0.0,
		       bdev_lat_quantile(&m->lat, 0.5) / 1e3,
		       bdev_lat_quantile(&m->lat, 0.99) / 1e3,
		       m->lat.max_ns / 1e3, (unsigned long long)m->errors);
	}
	printf("\noffset heat map (bytes read+written; %d columns from 0 to each device's size,\n"
	       "' ' none, '.' to '@' up to the device's busiest column)\n",
	       HEAT_COLS);
	for (uint32_t i = 0; i < t->h.th_nr_devs; i++) {
		const struct bdev_trace_dev *d = &t->devs[i];
		char label[64];

		heat_row(s->sums[i].heat, heat);
		snprintf(label, sizeof(label), "%*s%s", 2 * d->td_depth, "",
			 addr_of(d));
		printf("%-10s |%s| %s\n", label, heat, d->td_name);
	}
}

int rv_trace_main(int argc, char **argv)
{
	struct trace_file t = { 0 };
	struct summary s = { 0 };
	bool csv = false, bad_file = false;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			trace_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--csv")) {
			csv = true;
		} else if (argv[i][0] == '-' || t.path) {
			fprintf(stderr,
				"rawvec trace: unexpected argument '%s'\n",
				argv[i]);
			trace_usage(stderr);
			return 2;
		} else {
			t.path = argv[i];
		}
	}
	if (!t.path) {
		trace_usage(stderr);
		return 2;
	}
	ret = trace_open(&t);
	if (ret && ret != -ENOMEM) {
		/* No such file, or none of ours: the caller's mistake. */
		bad_file = true;
		goto out;
	}
	if (ret)
		goto out;
	if (csv) {
		printf("start_us,addr,kind,op,offset,length,latency_us,result\n");
		ret = for_each_rec(&t, csv_rec, NULL);
		goto out;
	}
	s.sums = calloc(t.h.th_nr_devs, sizeof(*s.sums));
	if (!s.sums) {
		ret = -ENOMEM;
		goto out;
	}
	ret = for_each_rec(&t, sum_rec, &s);
	if (!ret)
		print_summary(&t, &s);
out:
	if (ret == -ENOMEM)
		fprintf(stderr, "rawvec trace: out of memory\n");
	if (fflush(stdout) && !ret) {
		fprintf(stderr, "rawvec trace: writing the output: %s\n",
			strerror(errno));
		ret = -EIO;
	}
	free(s.sums);
	free(t.devs);
	if (t.f)
		fclose(t.f);
	return bad_file ? 2 : ret ? 1 : 0;
}
