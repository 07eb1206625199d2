/* mem: a RAM-backed member, locked in memory, for fast tests and for
 * layouts whose members should cost nothing. */
#include "blockdev/core/bdev.h"
#include "blockdev/kind.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/* Locking a GiB takes about a second: in steps of this size a stop
 * request is seen within a fraction of one. */
#define MEM_LOCK_STEP (64ull << 20)

struct mem_dev {
	struct bdev md_bdev;
	char *md_data;
	bool md_locked;
	struct mem_dev *md_next; /* every live mem member of the process */
};

/*
 * Every live member, for the budget: what mem() members lock counts
 * against MemAvailable and (without privilege) RLIMIT_MEMLOCK, all of
 * them together, before any is locked.
 */
static struct mem_dev *mem_all;
static bool mem_deferring;
static uint64_t mem_reserved; /* the pinned pool, set aside at start-up */

static void mem_submit(struct bdev *dev, struct bdev_req *req)
{
	struct mem_dev *m = (struct mem_dev *)dev;
	char *at = m->md_data + req->br_pos;

	switch (req->br_op) {
	case BDEV_READ:
		pvec_copy_from(req->br_vec, req->br_iter, at, req->br_len);
		break;
	case BDEV_WRITE:
		pvec_copy_to(at, req->br_vec, req->br_iter, req->br_len);
		break;
	case BDEV_DISCARD:
	case BDEV_ZERO:
		memset(at, 0, req->br_len);
		break;
	default:
		break;
	}
	bdev_req_complete(req, 0);
}

static void mem_destroy(struct bdev *dev)
{
	struct mem_dev *m = (struct mem_dev *)dev;

	for (struct mem_dev **p = &mem_all; *p; p = &(*p)->md_next) {
		if (*p == m) {
			*p = m->md_next;
			break;
		}
	}
	munmap(m->md_data, dev->bd_size);
	free(dev->bd_name);
	free(m);
}

static const struct bdev_ops mem_ops = {
	.submit = mem_submit,
	.destroy = mem_destroy,
};

/* MemAvailable from /proc/meminfo in bytes; 0 when it cannot be read. */
static uint64_t mem_available(void)
{
	unsigned long long kb = 0;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/* "N of locked memory" with how many members make it up. */
static void mem_what(uint64_t total, unsigned n, char *buf, size_t len)
{
	char a[32];

	bdev_fmt_bytes(total, a, sizeof(a));
	if (n == 1)
		snprintf(buf, len, "%s of locked memory", a);
	else
		snprintf(buf, len, "%s of locked memory (%u mem() members)", a,
			 n);
}

/*
 * Would @add more bytes of mem() fit?  mlock(2) counts per process what
 * is locked against RLIMIT_MEMLOCK: every live member.  MemAvailable
 * already lacks what is locked: there the members not locked yet, and at
 * start-up the pinned pool (which io_uring counts apart, per user).
 */
static int mem_budget(uint64_t add, char *err, size_t errlen)
{
	uint64_t all = add, todo = add, avail;
	unsigned n_all = 1, n_todo = 1;
	char b[32], c[32], what[96];
	struct rlimit rl;

	for (struct mem_dev *m = mem_all; m; m = m->md_next) {
		all += m->md_bdev.bd_size;
		n_all++;
		if (!m->md_locked) {
			todo += m->md_bdev.bd_size;
			n_todo++;
		}
	}
	if (geteuid() && !getrlimit(RLIMIT_MEMLOCK, &rl) &&
	    rl.rlim_cur != RLIM_INFINITY && all > rl.rlim_cur) {
		mem_what(all, n_all, what, sizeof(what));
		bdev_fmt_bytes(rl.rlim_cur, b, sizeof(b));
		snprintf(err, errlen,
			 "%s is more than RLIMIT_MEMLOCK (%s) allows; raise it (ulimit -l, or memlock in /etc/security/limits.conf)",
			 what, b);
		return -ENOMEM;
	}
	avail = mem_available();
	if (avail && todo + mem_reserved > avail) {
		mem_what(todo, n_todo, what, sizeof(what));
		bdev_fmt_bytes(avail, b, sizeof(b));
		bdev_fmt_bytes(mem_reserved, c, sizeof(c));
		if (mem_reserved)
			snprintf(err, errlen,
				 "%s, with the %s pinned pool, is more than the %s available (MemAvailable)",
				 what, c, b);
		else
			snprintf(err, errlen,
				 "%s is more than the %s available (MemAvailable)",
				 what, b);
		return -ENOMEM;
	}
	return 0;
}

/* Lock @m in steps; -EINTR as soon as *@stop is set. */
static int mem_lock(struct mem_dev *m, const volatile sig_atomic_t *stop,
		    uint64_t *done, char *err, size_t errlen)
{
	uint64_t size = m->md_bdev.bd_size;

	for (uint64_t off = 0; off < size; off += MEM_LOCK_STEP) {
		uint64_t n = size - off < MEM_LOCK_STEP ? size - off :
							  MEM_LOCK_STEP;
		char a[32], b[32];

		if (stop && *stop)
			return -EINTR;
		if (mlock(m->md_data + off, n)) {
			int e = errno;

			bdev_fmt_bytes(size, a, sizeof(a));
			bdev_fmt_bytes(*done, b, sizeof(b));
			snprintf(err, errlen,
				 "locking a %s mem() member failed after %s: %s",
				 a, b, strerror(e));
			return -e;
		}
		*done += n;
	}
	m->md_locked = true;
	return 0;
}

int bdev_mem_create(uint64_t size, struct bdev **out, char *err, size_t errlen)
{
	struct mem_dev *m;
	uint64_t done = 0;
	int ret;

	size -= size % 512;
	ret = mem_budget(size, err, errlen);
	if (ret)
		return ret;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->md_bdev.bd_name = strdup("mem"))) {
		free(m);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->md_data = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->md_data == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %llu bytes: %s",
			 (unsigned long long)size, strerror(errno));
		free(m->md_bdev.bd_name);
		free(m);
		return -ENOMEM;
	}
	m->md_bdev.bd_ops = &mem_ops;
	m->md_bdev.bd_kind = mem_kind.bk_name;
	m->md_bdev.bd_desc = &mem_kind;
	m->md_bdev.bd_size = size;
	m->md_bdev.bd_align = 512;
	m->md_bdev.bd_mem_align = 512;
	m->md_bdev.bd_byte_zero = true;
	m->md_next = mem_all;
	mem_all = m;
	if (!mem_deferring) {
		ret = mem_lock(m, NULL, &done, err, errlen);
		if (ret) {
			mem_destroy(&m->md_bdev);
			return ret;
		}
	}
	*out = &m->md_bdev;
	return 0;
}

int bdev_mem_defer_lock(uint64_t reserve, char *err, size_t errlen)
{
	uint64_t avail = mem_available();
	char a[32], b[32];

	if (avail && reserve > avail) {
		bdev_fmt_bytes(reserve, a, sizeof(a));
		bdev_fmt_bytes(avail, b, sizeof(b));
		snprintf(err, errlen,
			 "the %s pinned pool (-o pool) is more than the %s available (MemAvailable)",
			 a, b);
		return -ENOMEM;
	}
	mem_reserved = reserve;
	mem_deferring = true;
	return 0;
}

uint64_t bdev_mem_deferred_bytes(void)
{
	uint64_t total = 0;

	for (struct mem_dev *m = mem_all; m; m = m->md_next)
		if (!m->md_locked)
			total += m->md_bdev.bd_size;
	return total;
}

int bdev_mem_lock_deferred(const volatile sig_atomic_t *stop, char *err,
			   size_t errlen)
{
	uint64_t total = bdev_mem_deferred_bytes(), done = 0;
	char a[32], b[32];
	int ret = 0;

	mem_deferring = false;
	mem_reserved = 0;
	for (struct mem_dev *m = mem_all; m && !ret; m = m->md_next)
		if (!m->md_locked)
			ret = mem_lock(m, stop, &done, err, errlen);
	if (ret == -EINTR) {
		bdev_fmt_bytes(done, a, sizeof(a));
		bdev_fmt_bytes(total, b, sizeof(b));
		snprintf(err, errlen,
			 "stopped after locking %s of the %s of mem() members",
			 a, b);
	}
	return ret;
}

static int mem_create(const struct bdev_kind_args *a, struct bdev **out,
		      char *err, size_t errlen)
{
	return bdev_mem_create(a->ka_size, out, err, errlen);
}

const struct bdev_kind mem_kind = {
	.bk_name = "mem",
	.bk_help = "  mem(size=SIZE)                    RAM, locked\n",
	.bk_flags = BK_SHARED | BK_IN_MEMORY,
	.bk_opts = {
		{ "size", BDEV_OPT_SIZE, offsetof(struct bdev_kind_args, ka_size), true },
	},
	.bk_create = mem_create,
};
