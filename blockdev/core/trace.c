/* trace: buffered recording of completions into a -o trace=FILE; one
 * write(2) per 4 MiB of records keeps the cost off the I/O path. */
#include "blockdev/core/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRACE_BUF_RECS (4u << 20) / sizeof(struct bdev_trace_rec)

struct bdev_trace {
	int fd;
	uint64_t t0_ns; /* loop_now_ns() when tracing began */
	int error;	/* first write error; recording stopped */
	char *path;
	unsigned used;
	struct bdev_trace_rec buf[];
};

static int write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENOSPC;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

static void flush(struct bdev_trace *t)
{
	if (t->used && !t->error)
		t->error =
			write_all(t->fd, t->buf, t->used * sizeof(t->buf[0]));
	t->used = 0;
}

/* bd_observe: one record per completion, buffered; a full buffer goes
 * out in one write(2), and a failed one ends the trace (bdev_trace_close
 * reports it). */
static void trace_observe(struct bdev *dev, const struct bdev_req *req,
			  uint64_t now_ns)
{
	struct bdev_trace *t = dev->bd_observer;
	struct bdev_trace_rec *r;

	if (t->error)
		return;
	r = &t->buf[t->used];
	r->tr_start_ns = req->br_start_ns - t->t0_ns;
	r->tr_lat_ns = now_ns - req->br_start_ns;
	r->tr_pos = req->br_pos;
	r->tr_len = req->br_len > UINT32_MAX ? UINT32_MAX :
					       (uint32_t)req->br_len;
	r->tr_dev = dev->bd_trace_id;
	r->tr_op = (uint8_t)req->br_op;
	r->tr_err = (uint8_t)(req->br_error < 0 && req->br_error > -256 ?
				      -req->br_error :
				      0);
	if (++t->used == TRACE_BUF_RECS)
		flush(t);
}

/* Number @dev and everything below it, depth first, into @devs. */
static int walk(struct bdev_trace *t, struct bdev *dev, int parent, int depth,
		const char *addr, struct bdev_trace_dev *devs, int *nr, int max)
{
	struct bdev_trace_dev *d;
	int id = *nr;

	if (id >= max)
		return -E2BIG;
	d = &devs[(*nr)++];
	memset(d, 0, sizeof(*d));
	d->td_id = (uint16_t)id;
	d->td_parent = (int16_t)parent;
	d->td_depth = (uint16_t)depth;
	d->td_size = dev->bd_size;
	snprintf(d->td_addr, sizeof(d->td_addr), "%s", addr);
	snprintf(d->td_kind, sizeof(d->td_kind), "%s",
		 dev->bd_kind ? dev->bd_kind : "?");
	snprintf(d->td_name, sizeof(d->td_name), "%s",
		 dev->bd_name ? dev->bd_name : "");
	dev->bd_observe = trace_observe;
	dev->bd_observer = t;
	dev->bd_trace_id = (uint16_t)id;
	for (int i = 0; i < dev->bd_nr_members; i++) {
		char sub[sizeof(d->td_addr)];
		int ret;

		snprintf(sub, sizeof(sub), *addr ? "%s.%d" : "%s%d", addr, i);
		ret = walk(t, dev->bd_members[i], id, depth + 1, sub, devs, nr,
			   max);
		if (ret)
			return ret;
	}
	return 0;
}

/* Undo walk(): no device may point at a trace that is gone. */
static void detach(struct bdev *dev)
{
	dev->bd_observe = NULL;
	dev->bd_observer = NULL;
	for (int i = 0; i < dev->bd_nr_members; i++)
		detach(dev->bd_members[i]);
}

int bdev_trace_open(const char *path, struct bdev *root,
		    struct bdev_trace **out, char *err, size_t errlen)
{
	enum { MAX_DEVS = 4096 };
	struct bdev_trace_hdr h = { .th_magic = BDEV_TRACE_MAGIC };
	struct bdev_trace_dev *devs = NULL;
	struct bdev_trace *t;
	struct timespec now;
	int nr = 0, ret;

	t = malloc(sizeof(*t) + TRACE_BUF_RECS * sizeof(t->buf[0]));
	devs = calloc(MAX_DEVS, sizeof(*devs));
	if (!t || !devs) {
		snprintf(err, errlen, "trace file %s: out of memory", path);
		ret = -ENOMEM;
		goto out;
	}
	t->used = 0;
	t->error = 0;
	t->path = NULL;
	t->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (t->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "trace file %s: %s", path,
			 strerror(errno));
		goto out;
	}
	ret = walk(t, root, -1, 0, "", devs, &nr, MAX_DEVS);
	if (ret) {
		snprintf(err, errlen, "trace file %s: more than %d devices",
			 path, MAX_DEVS);
		goto out_close;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	h.th_version = BDEV_TRACE_VERSION;
	h.th_nr_devs = (uint32_t)nr;
	h.th_dev_size = sizeof(*devs);
	h.th_rec_size = sizeof(t->buf[0]);
	h.th_start_unix_ns =
		(uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	ret = write_all(t->fd, &h, sizeof(h));
	if (!ret)
		ret = write_all(t->fd, devs, nr * sizeof(*devs));
	if (ret) {
		snprintf(err, errlen, "trace file %s: %s", path,
			 strerror(-ret));
		goto out_close;
	}
	t->path = strdup(path);
	if (!t->path) {
		ret = -ENOMEM;
		snprintf(err, errlen, "trace file %s: out of memory", path);
		goto out_close;
	}
	t->t0_ns = loop_now_ns();
	*out = t;
	t = NULL;
	goto out;
out_close:
	detach(root);
	close(t->fd);
	unlink(path);
out:
	free(devs);
	free(t);
	return ret;
}

int bdev_trace_close(struct bdev_trace *t, struct bdev *root, char *err,
		     size_t errlen)
{
	int ret;

	if (!t)
		return 0;
	flush(t);
	detach(root);
	ret = t->error;
	if (close(t->fd) && !ret)
		ret = -errno;
	if (ret)
		snprintf(err, errlen,
			 "trace file %s: %s; records after that were dropped",
			 t->path, strerror(-ret));
	free(t->path);
	free(t);
	return ret;
}
