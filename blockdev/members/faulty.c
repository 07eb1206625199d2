/* faulty: fault injection over one member, in the spirit of dm-flakey and
 * nbdkit's error filter: error rates, a bad range, sectors unreadable until
 * rewritten, errors after N I/Os and latency spikes (held on a list, due on
 * a loop hook, before the request reaches the member). */
#include "blockdev/members/faulty.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockdev/layout.h"

/* A request held back by a latency spike. */
struct spike {
	uint64_t due_ns;
	struct bdev_req *req;
	struct spike *next;
};

/* A spike longer than this holds its application, unkillable in the
 * kernel, longer than any test of a slow disk needs. */
#define FAULTY_SPIKE_MAX_NS (60ull * 1000 * 1000 * 1000)

/* unreadable=LO..HI keeps a bit per sector: 256 KiB at most. */
#define FAULTY_UNREADABLE_MAX_BYTES (1ull << 30)
#define FAULTY_SECTOR 512u

struct faulty {
	double read_eio, write_eio; /* probability per request */
	uint64_t bad_lo, bad_hi;    /* [lo, hi): reads and writes fail */
	/* [lo, hi): a read touching a sector whose bit is set fails, and a
	 * write clears the bits of the sectors it covers, as a disk remaps a
	 * pending sector; unr_new: given anew, every sector unreadable */
	uint64_t unr_lo, unr_hi;
	uint64_t *unr_map;
	bool unr_new;
	uint64_t after;	   /* requests that pass before all fail */
	uint64_t spike_ns; /* lat_spike=DUR@P: delay ... */
	double spike_rate; /* ... this fraction of requests */
	uint64_t nr_ios;
	uint64_t rng;
	struct layer *l;
	/* Held, oldest (first due) first: every spike lasts spike_ns, and a
	 * change of the faults releases them all. */
	struct spike *held, *held_tail;
	struct loop_hook due_hook;
	struct spike *free_spikes;
	struct faulty_stats st;
};

static struct faulty *faulty_of(const struct layer *l)
{
	return l->l_private;
}

/* xorshift64*: deterministic, so a run with the same I/O repeats. */
static double next_unit(struct faulty *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return (double)((f->rng * 0x2545f4914f6cdd1dull) >> 11) /
	       (double)(1ull << 53);
}

/* Send the held requests of @list on to the member, in order.  A request
 * may complete inside its submit and bring a new one, held anew. */
static void spikes_send(struct faulty *f, struct spike *list)
{
	while (list) {
		struct spike *sp = list;
		struct bdev_req *req = sp->req;

		list = sp->next;
		sp->next = f->free_spikes;
		f->free_spikes = sp;
		layer_submit_one(f->l, req, 0, req->br_pos);
	}
}

static void spikes_due(struct loop_hook *h)
{
	struct faulty *f = container_of(h, struct faulty, due_hook);
	uint64_t now = loop_now_ns();
	struct spike *due = f->held, **pp = &f->held;

	while (*pp && (*pp)->due_ns <= now)
		pp = &(*pp)->next;
	f->held = *pp;
	*pp = NULL;
	if (!f->held)
		f->held_tail = NULL;
	else
		loop_hook_arm_at(h->lh_loop, h, f->held->due_ns);
	if (f->held != due)
		spikes_send(f, due);
}

/* Every held request goes on now: the faults changed, or the mount
 * stops. */
static void spikes_release(struct faulty *f)
{
	struct spike *all = f->held;

	f->held = f->held_tail = NULL;
	loop_hook_disarm(&f->due_hook);
	spikes_send(f, all);
}

/* Hold @req back for spike_ns; false when no memory (it goes on at once). */
static bool delay(struct layer *l, struct faulty *f, struct bdev_req *req)
{
	struct spike *sp = f->free_spikes;

	if (!req->br_loop) /* nothing to time it on: a loopless caller */
		return false;
	(void)l;
	if (sp)
		f->free_spikes = sp->next;
	else if (!(sp = calloc(1, sizeof(*sp))))
		return false;
	sp->req = req;
	sp->due_ns = loop_now_ns() + f->spike_ns;
	sp->next = NULL;
	if (f->held_tail)
		f->held_tail->next = sp;
	else
		f->held = sp;
	f->held_tail = sp;
	if (f->held == sp)
		loop_hook_arm_at(req->br_loop, &f->due_hook, sp->due_ns);
	return true;
}

/* The sectors of [@pos, @pos + @len) inside the unreadable range, as bit
 * numbers [*@lo, *@hi); false when none.  @whole: only sectors it covers
 * whole (a write remaps no sector it half writes). */
static bool unr_bits(const struct faulty *f, uint64_t pos, uint64_t len,
		     bool whole, uint64_t *lo, uint64_t *hi)
{
	uint64_t a = pos > f->unr_lo ? pos : f->unr_lo;
	uint64_t b = pos + len < f->unr_hi ? pos + len : f->unr_hi;

	if (!f->unr_map || a >= b)
		return false;
	a -= f->unr_lo;
	b -= f->unr_lo;
	*lo = whole ? (a + FAULTY_SECTOR - 1) / FAULTY_SECTOR :
		      a / FAULTY_SECTOR;
	*hi = whole ? b / FAULTY_SECTOR :
		      (b + FAULTY_SECTOR - 1) / FAULTY_SECTOR;
	return *lo < *hi;
}

static bool unreadable(const struct faulty *f, const struct bdev_req *req)
{
	uint64_t lo, hi;

	if (!unr_bits(f, req->br_pos, req->br_len, false, &lo, &hi))
		return false;
	for (uint64_t i = lo; i < hi; i++)
		if (f->unr_map[i / 64] & (1ull << (i % 64)))
			return true;
	return false;
}

static void unr_rewritten(struct faulty *f, const struct bdev_req *req)
{
	uint64_t lo, hi;

	if (!unr_bits(f, req->br_pos, req->br_len, true, &lo, &hi))
		return;
	for (uint64_t i = lo; i < hi; i++) {
		uint64_t bit = 1ull << (i % 64);

		if (f->unr_map[i / 64] & bit) {
			f->unr_map[i / 64] &= ~bit;
			f->st.unreadable_sectors--;
		}
	}
}

static void faulty_submit(struct bdev *dev, struct bdev_req *req)
{
	struct layer *l = layer_of(dev);
	struct faulty *f = faulty_of(l);
	bool data = req->br_op == BDEV_READ || req->br_op == BDEV_WRITE;
	bool fail = false;

	/* Faults are the user's I/O's: superblock reads and writes pass,
	 * so they neither use up after=N nor shift the seeded draws. */
	if (data && !req->br_meta) {
		double rate = req->br_op == BDEV_READ ? f->read_eio :
							f->write_eio;

		f->nr_ios++;
		fail = (rate > 0 && next_unit(f) < rate) ||
		       (req->br_pos < f->bad_hi &&
			f->bad_lo < req->br_pos + req->br_len) ||
		       (f->after && f->nr_ios > f->after) ||
		       (req->br_op == BDEV_READ && unreadable(f, req));
		if (!fail && req->br_op == BDEV_WRITE)
			unr_rewritten(f, req);
	}
	if (fail) {
		f->st.injected[req->br_op]++;
		bdev_req_complete(req, -EIO);
		return;
	}
	if (data && !req->br_meta && f->spike_rate > 0 &&
	    next_unit(f) < f->spike_rate && delay(l, f, req)) {
		f->st.spikes++;
		return;
	}
	layer_submit_one(l, req, 0, req->br_pos);
}

static void faulty_free(struct layer *l)
{
	struct faulty *f = faulty_of(l);

	loop_hook_disarm(&f->due_hook);
	free(f->unr_map);
	/* Only at exit, with nothing left to answer: the held go too. */
	while (f->held) {
		struct spike *sp = f->held;

		f->held = sp->next;
		free(sp);
	}
	while (f->free_spikes) {
		struct spike *sp = f->free_spikes;

		f->free_spikes = sp->next;
		free(sp);
	}
	free(f);
}

static const struct bdev_ops faulty_ops = {
	.submit = faulty_submit,
	.destroy = layer_destroy,
};

const struct faulty_stats *faulty_stats(const struct bdev *dev)
{
	return &faulty_of(layer_of((struct bdev *)dev))->st;
}

/* A probability in decimal: strtod() alone also takes "0x1", "inf" and
 * "1e-400" (0, out of range). */
static int parse_rate(const char *v, double *out)
{
	char *end;
	double d;

	if (!*v || strspn(v, "0123456789.eE+-") != strlen(v))
		return -EINVAL;
	errno = 0;
	d = strtod(v, &end);
	if (end == v || *end || errno == ERANGE || !(d >= 0 && d <= 1) ||
	    (d > 0 && !isnormal(d)))
		return -EINVAL;
	*out = d;
	return 0;
}

/* at=LO..HI; LO may be empty or 0. */
static int parse_range(const char *v, uint64_t *lo, uint64_t *hi)
{
	const char *dots = strstr(v, "..");
	size_t n;

	if (!dots)
		return -EINVAL;
	n = dots - v;
	*lo = 0;
	if (n && !(n == 1 && v[0] == '0') && bdev_parse_size(v, n, lo))
		return -EINVAL;
	if (bdev_parse_size(dots + 2, strlen(dots + 2), hi))
		return -EINVAL;
	return *lo < *hi ? 0 : -EINVAL;
}

static int faulty_set(void *ctx, const char *key, const char *v)
{
	struct faulty *n = ctx;
	char *end;

	if (!strcmp(key, "read_eio"))
		return parse_rate(v, &n->read_eio);
	if (!strcmp(key, "write_eio"))
		return parse_rate(v, &n->write_eio);
	if (!strcmp(key, "after")) {
		if (*v < '0' || *v > '9')
			return -EINVAL;
		errno = 0;
		n->after = strtoull(v, &end, 10);
		return *end || errno == ERANGE ? -EINVAL : 0;
	}
	if (!strcmp(key, "lat_spike")) {
		/* lat_spike=DUR@P, or lat_spike=none */
		const char *at = strchr(v, '@');

		if (!strcmp(v, "none")) {
			n->spike_ns = 0;
			n->spike_rate = 0;
			return 0;
		}
		if (!at || bdev_parse_duration(v, at - v, &n->spike_ns) ||
		    n->spike_ns > FAULTY_SPIKE_MAX_NS ||
		    parse_rate(at + 1, &n->spike_rate))
			return -EINVAL;
		return 0;
	}
	if (!strcmp(key, "at")) {
		/* at=LO..HI (bytes of this member), or at=none */
		if (strcmp(v, "none"))
			return parse_range(v, &n->bad_lo, &n->bad_hi);
		n->bad_lo = n->bad_hi = 0;
		return 0;
	}
	if (!strcmp(key, "unreadable")) {
		/* unreadable=LO..HI (bytes of this member), or none */
		n->unr_new = true;
		if (!strcmp(v, "none")) {
			n->unr_lo = n->unr_hi = 0;
			return 0;
		}
		if (parse_range(v, &n->unr_lo, &n->unr_hi) ||
		    n->unr_lo % FAULTY_SECTOR || n->unr_hi % FAULTY_SECTOR ||
		    n->unr_hi - n->unr_lo > FAULTY_UNREADABLE_MAX_BYTES)
			return -EINVAL;
		return 0;
	}
	return -ENOENT;
}

/* A new unreadable range: every sector of it unreadable, until written. */
static int unr_renew(struct faulty *n)
{
	uint64_t bits = (n->unr_hi - n->unr_lo) / FAULTY_SECTOR;

	n->unr_new = false;
	n->unr_map = NULL;
	n->st.unreadable_sectors = 0;
	if (!bits)
		return 0;
	n->unr_map = malloc((bits + 63) / 64 * sizeof(uint64_t));
	if (!n->unr_map)
		return -ENOMEM;
	memset(n->unr_map, 0xff, (bits + 63) / 64 * sizeof(uint64_t));
	if (bits % 64)
		n->unr_map[bits / 64] = (1ull << (bits % 64)) - 1;
	n->st.unreadable_sectors = bits;
	return 0;
}

int faulty_configure(struct bdev *dev, const char *opts, char *err,
		     size_t errlen)
{
	struct faulty *f = faulty_of(layer_of(dev)), n = *f;

	/* All or nothing: a bad option changes none.  Only the options are
	 * parsed into @n: the held requests and the hook stay as they are. */
	if (layer_parse_opts(opts, faulty_set, &n,
			     "read_eio=P, write_eio=P with P in 0..1, at=LO..HI|none, "
			     "unreadable=LO..HI|none in 512-byte sectors, at most 1g, "
			     "after=N, lat_spike=DUR@P|none with DUR up to 60s",
			     err, errlen))
		return -EINVAL;
	if (n.unr_new) {
		if (unr_renew(&n)) {
			snprintf(err, errlen, "faulty: out of memory");
			return -ENOMEM;
		}
		free(f->unr_map);
	}
	*f = n;
	/* What an earlier spike holds is not kept waiting by faults that
	 * changed: it goes on now, under the new ones. */
	spikes_release(f);
	return 0;
}

void faulty_release(struct bdev *dev)
{
	spikes_release(faulty_of(layer_of(dev)));
}

/* Wrap the one member of @a, with the options (ka_opts) faulty.h lists. */
static int faulty_create(const struct bdev_kind_args *a, struct bdev **out,
			 char *err, size_t errlen)
{
	struct layer *l;
	int ret;

	ret = layer_create_wrapper(&faulty_kind, a, &faulty_ops,
				   sizeof(struct faulty), faulty_free, &l, err,
				   errlen);
	if (ret)
		return ret;
	faulty_of(l)->rng = 0x9e3779b97f4a7c15ull;
	faulty_of(l)->l = l;
	faulty_of(l)->due_hook.lh_fn = spikes_due;
	if (faulty_configure(&l->l_bdev, a->ka_opts, err, errlen)) {
		layer_destroy(&l->l_bdev);
		return -EINVAL;
	}
	*out = &l->l_bdev;
	return 0;
}

static void faulty_stats_fields(const struct bdev *dev, bdev_stat_fn emit,
				void *ctx)
{
	const struct faulty_stats *st = faulty_stats(dev);

	emit(ctx, "injected_read_errors", st->injected[BDEV_READ]);
	emit(ctx, "injected_write_errors", st->injected[BDEV_WRITE]);
	emit(ctx, "injected_spikes", st->spikes);
	emit(ctx, "unreadable_sectors", st->unreadable_sectors);
}

const struct bdev_kind faulty_kind = {
	.bk_name = "faulty",
	.bk_help =
		"  faulty(M, read_eio=P, write_eio=P, at=LO..HI, unreadable=LO..HI, after=N, lat_spike=DUR@P)\n"
		"                                    fails or delays I/O on demand\n",
	.bk_min_members = 1,
	.bk_max_members = 1,
	.bk_flags = BK_OWN_OPTS | BK_SAME_BYTES,
	.bk_create = faulty_create,
	.bk_stats = faulty_stats_fields,
	.bk_configure = faulty_configure,
};
