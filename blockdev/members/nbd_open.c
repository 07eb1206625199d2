/* nbd_open: an nbd(URI, ...) member's options, its connections (made
 * within connect_timeout=, and again in the background when lost), stats. */
#include "blockdev/members/nbd.h"
#include "blockdev/core/log.h"
#include "blockdev/kind.h"
#include "blockdev/layout.h"
#include "blockdev/levels/layer.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct nbdm_opts {
	uint64_t conns; /* 0: auto */
	uint64_t timeout_ns, connect_timeout_ns;
};

/* A duration up to a day ("0" alone where @zero_ok: none). */
static int parse_timeout(const char *v, uint64_t *ns, bool zero_ok)
{
	if (!strcmp(v, "0") && zero_ok) {
		*ns = 0;
		return 0;
	}
	if (bdev_parse_duration(v, strlen(v), ns) || (!*ns && !zero_ok) ||
	    *ns > 86400ull * 1000000000)
		return -EINVAL;
	return 0;
}

static int nbdm_set(void *ctx, const char *key, const char *v)
{
	struct nbdm_opts *o = ctx;
	char *end;

	if (!strcmp(key, "conns")) {
		unsigned long n = strtoul(v, &end, 10);

		if (!strcmp(v, "auto")) {
			o->conns = 0;
			return 0;
		}
		if (end == v || *end || n < 1 || n > NBD_MAX_CONNS)
			return -EINVAL;
		o->conns = n;
		return 0;
	}
	if (!strcmp(key, "timeout"))
		return parse_timeout(v, &o->timeout_ns, true);
	if (!strcmp(key, "connect_timeout"))
		return parse_timeout(v, &o->connect_timeout_ns, false);
	return -ENOENT;
}

/*
 * Connect @h to @uri within @timeout_ns: libnbd's own connect blocks for
 * as long as TCP tries (minutes for an address nobody answers), so it is
 * driven here through the asynchronous calls and poll(2).  Start-up and
 * the control path's opening thread only: never on the event loop.
 */
static int connect_bounded(struct nbd_handle *h, const char *uri,
			   uint64_t timeout_ns, char *err, size_t errlen)
{
	uint64_t deadline = loop_now_ns() + timeout_ns;

	/* Simple replies: a read's reply is its header and its data, two
	 * reads of the socket where a structured one takes three, and rawvec
	 * asks for nothing structured replies add (block status, sparse
	 * reads). */
	if (nbd_set_request_structured_replies(h, false) < 0 ||
	    /* The URI is the user's, as on nbdinfo's command line: its
	     * tls-psk-file= and tls-certificates= name their files. */
	    nbd_set_uri_allow_local_file(h, true) < 0 ||
	    nbd_aio_connect_uri(h, uri) < 0)
		goto fail;
	while (!nbd_aio_is_ready(h)) {
		struct pollfd pfd = { .fd = nbd_aio_get_fd(h) };
		unsigned dir = nbd_aio_get_direction(h);
		uint64_t now = loop_now_ns();
		int r;

		if (nbd_aio_is_dead(h) || nbd_aio_is_closed(h) || pfd.fd < 0)
			goto fail;
		if (now >= deadline) {
			snprintf(err, errlen,
				 "%s: no answer within connect_timeout=%" PRIu64
				 "ms",
				 uri, timeout_ns / 1000000);
			return -ETIMEDOUT;
		}
		pfd.events = (dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
			     (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0);
		r = poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1);
		if (r < 0 && errno != EINTR) {
			snprintf(err, errlen, "%s: poll: %s", uri,
				 strerror(errno));
			return -errno;
		}
		if (r <= 0)
			continue;
		/* Only what libnbd waits for: while connecting it takes a
		 * write notification alone, also for a refused address, which
		 * it answers by trying the next one. */
		if ((dir & LIBNBD_AIO_DIRECTION_WRITE) &&
		    (pfd.revents & (POLLOUT | POLLHUP | POLLERR))) {
			if (nbd_aio_notify_write(h) < 0)
				goto fail;
		} else if ((dir & LIBNBD_AIO_DIRECTION_READ) &&
			   (pfd.revents & (POLLIN | POLLHUP | POLLERR)) &&
			   nbd_aio_notify_read(h) < 0) {
			goto fail;
		}
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", uri, nbdm_why("cannot connect"));
	return nbd_get_errno() ? -nbd_get_errno() : -EIO;
}

/* What the server offers, from the first connection. */
static int learn_export(struct nbdm_dev *nd, const char *uri, bool read_only,
			uint64_t conns, char *err, size_t errlen)
{
	struct nbd_handle *h = nd->conns[0].h;
	int64_t size = nbd_get_size(h);
	struct bdev *d = &nd->nd_bdev;

	if (size < 0) {
		snprintf(err, errlen, "%s: no size: %s", uri, nbd_get_error());
		return -EIO;
	}
	d->bd_read_only = nbd_is_read_only(h) == 1;
	if (d->bd_read_only && !read_only) {
		snprintf(err, errlen,
			 "%s: the export is read-only, and the layout writable (-o ro serves it read-only)",
			 uri);
		return -EROFS;
	}
	d->bd_read_only |= read_only;
	nd->can_flush = nbd_can_flush(h) == 1;
	nd->can_fua = nbd_can_fua(h) == 1;
	nd->can_trim = nbd_can_trim(h) == 1;
	nd->can_zero = nbd_can_zero(h) == 1;
	d->bd_discard_zeroes = nd->can_zero;
	nd->multi_conn = nbd_can_multi_conn(h) == 1;
	nd->tls = nbd_get_tls_negotiated(h) == 1;
	nd->block_min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
	nd->block_pref = nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED);
	nd->block_max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
	if (conns > 1 && !nd->multi_conn) {
		snprintf(err, errlen,
			 "%s: conns=%" PRIu64
			 ": the server does not offer multi-conn, so writes on one connection are not seen on the others",
			 uri, conns);
		return -EINVAL;
	}
	d->bd_align = 512;
	if (nd->block_min > 512) {
		if (nd->block_min & (nd->block_min - 1) ||
		    nd->block_min > 65536) {
			snprintf(err, errlen,
				 "%s: the server's minimum block size %" PRId64
				 " is not a power of two up to 64k",
				 uri, nd->block_min);
			return -EINVAL;
		}
		d->bd_align = (uint32_t)nd->block_min;
	}
	if ((uint64_t)size % d->bd_align || !size) {
		snprintf(err, errlen,
			 "%s: size %" PRId64 " is not a multiple of %u", uri,
			 size, d->bd_align);
		return -EINVAL;
	}
	d->bd_size = (uint64_t)size;
	nd->max_payload = NBD_DEFAULT_MAX_PAYLOAD;
	if (nd->block_max > 0 && (uint64_t)nd->block_max < nd->max_payload)
		nd->max_payload = (uint64_t)nd->block_max &
				  ~(uint64_t)(d->bd_align - 1);
	if (nd->max_payload < d->bd_align) {
		snprintf(err, errlen,
			 "%s: the server's maximum block size %" PRId64
			 " is below its alignment %u",
			 uri, nd->block_max, d->bd_align);
		return -EINVAL;
	}
	return 0;
}

/* A stable number for the export, so that a layout or a replace naming
 * the same URI twice is caught like a file named twice (FNV-1a). */
static uint64_t uri_id(const char *uri)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *uri; uri++)
		h = (h ^ (unsigned char)*uri) * 0x100000001b3ull;
	return h | 1ull << 63;
}

/* conns=auto: a connection per event loop where the server offers
 * multi-conn (so each loop runs a part of its own), else one. */
static uint64_t auto_conns(const struct nbdm_dev *nd, int nr_loops)
{
	if (!nd->multi_conn || nr_loops < 2)
		return 1;
	return nr_loops < NBD_MAX_CONNS ? (uint64_t)nr_loops : NBD_MAX_CONNS;
}

static int nbdm_create(const struct bdev_kind_args *a, struct bdev **out,
		       char *err, size_t errlen)
{
	struct nbdm_opts o = { .conns = 0,
			       .timeout_ns = 30ull * 1000000000,
			       .connect_timeout_ns = 10ull * 1000000000 };
	const char *uri = a->ka_path;
	struct nbdm_dev *nd;
	bool auto_n;
	int ret;

	if (!uri || !*uri) {
		snprintf(err, errlen,
			 "nbd() needs a URI, such as nbd://127.0.0.1/export or nbd+unix:///export?socket=PATH");
		return -EINVAL;
	}
	if (layer_parse_opts(a->ka_opts ? a->ka_opts : "", nbdm_set, &o,
			     "conns=1..64 or auto, timeout=DUR up to 1 day (0: none), connect_timeout=DUR",
			     err, errlen))
		return -EINVAL;
	nd = calloc(1, sizeof(*nd));
	if (!nd || !(nd->nd_bdev.bd_name = strdup(uri))) {
		free(nd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	nd->nd_bdev.bd_ops = &nbdm_ops;
	nd->nd_bdev.bd_kind = nbd_kind.bk_name;
	nd->nd_bdev.bd_desc = &nbd_kind;
	nd->nd_bdev.bd_mem_align = 512;
	nd->nd_bdev.bd_id_ino = uri_id(uri);
	nd->timeout_ns = o.timeout_ns;
	nd->connect_timeout_ns = o.connect_timeout_ns;
	ret = nbdm_init(nd);
	if (ret) {
		snprintf(err, errlen, "eventfd: %s", strerror(-ret));
		goto fail;
	}
	/* conns=auto: one per event loop, once the first connection says
	 * the server offers multi-conn (otherwise one). */
	auto_n = !o.conns;
	for (uint64_t i = 0; i < (o.conns ? o.conns : 1); i++) {
		struct nbd_handle *h = nbd_create();

		nd->nr_conns++;
		if (!h) {
			snprintf(err, errlen, "%s: %s", uri, nbd_get_error());
			ret = -ENOMEM;
			goto fail;
		}
		ret = connect_bounded(h, uri, o.connect_timeout_ns, err,
				      errlen);
		if (ret && auto_n && i) {
			/* A server that limits its clients: what it took is
			 * enough (fewer than the loops: loop 0's). */
			nbd_close(h);
			nd->nr_conns--;
			bdev_log("%s; conns=auto goes on with %d connection%s",
				 err, nd->nr_conns,
				 nd->nr_conns == 1 ? "" : "s");
			err[0] = '\0';
			ret = 0;
			break;
		}
		if (ret) {
			nbd_close(h);
			goto fail;
		}
		nbdm_conn_up(&nd->conns[i], h);
		if (i)
			continue;
		ret = learn_export(nd, uri, a->ka_file && a->ka_file->read_only,
				   o.conns, err, errlen);
		if (ret)
			goto fail;
		if (!o.conns)
			o.conns = auto_conns(nd, a->ka_nr_loops);
	}
	if (a->ka_max_io_bytes)
		/* Room for the biggest request there is, in 4k runs. */
		nd->nr_cmds_min =
			(int)(a->ka_max_io_bytes / 4096 + a->ka_in_segs + 1);
	ret = nbdm_parts_ready(nd);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*out = &nd->nd_bdev;
	return 0;
fail:
	nbdm_destroy(&nd->nd_bdev);
	return ret;
}

/* Connection @k goes to part @k mod the parts there are. */
static void parts_assign(struct nbdm_dev *nd)
{
	for (int i = 0; i < nd->nr_parts; i++) {
		nd->parts[i].nr_conns = 0;
		nd->parts[i].nr_live = 0;
	}
	for (int k = 0; k < NBD_MAX_CONNS; k++) {
		struct nbdm_conn *c = &nd->conns[k];
		struct nbdm_part *p = &nd->parts[k % nd->nr_parts];

		c->part = c->pin.part = c->pout.part = p;
		if (k >= nd->nr_conns)
			continue;
		p->conns[p->nr_conns++] = c;
		if (!c->dead)
			p->nr_live++;
	}
}

int nbdm_parts_ready(struct nbdm_dev *nd)
{
	parts_assign(nd);
	for (int i = 0; i < nd->nr_parts; i++) {
		struct nbdm_part *p = &nd->parts[i];
		int nr = p->nr_conns * NBD_CMDS_PER_CONN;

		if (nr < nd->nr_cmds_min)
			nr = nd->nr_cmds_min;
		if (nbdm_part_cmds(p, nr))
			return -ENOMEM;
	}
	return 0;
}

struct moved {
	struct nbdm_dev *nd;
	int nr_loops;
};

/* Whether no connection that left part 0 has a poll armed any more. */
static bool moved_unpolled(void *arg)
{
	const struct moved *m = arg;

	for (int k = 0; k < m->nd->nr_conns; k++) {
		const struct nbdm_conn *c = &m->nd->conns[k];

		if (k % m->nr_loops && (c->pin.armed || c->pout.armed))
			return false;
	}
	return true;
}

/*
 * I/O ran before the split (an array's superblock probe, on part 0's
 * loop, at start-up): the polls of the connections that left part 0 are
 * still armed there.  Cancel them and wait, so that from now on only
 * their new part's loop polls them (one that completes meanwhile finds
 * its part on another loop and only lets go).
 */
static int unpoll_moved(struct nbdm_dev *nd, int nr_loops)
{
	struct loop *lp = nd->parts[0].loop;
	struct moved m = { nd, nr_loops };

	if (!lp)
		return 0;
	if (!loop_is_mine(lp))
		return -EBUSY;
	for (int k = 0; k < nd->nr_conns; k++) {
		struct nbdm_conn *c = &nd->conns[k];
		struct nbdm_poll *polls[2] = { &c->pin, &c->pout };

		if (!(k % nr_loops))
			continue; /* stays in part 0 */
		for (int i = 0; i < 2; i++)
			if (polls[i]->armed)
				io_uring_prep_poll_remove(loop_sqe(lp, NULL),
							  (uintptr_t)&polls[i]
								  ->op);
	}
	return loop_run_until(lp, moved_unpolled, &m);
}

int nbdm_split(struct bdev *dev, int nr_loops)
{
	struct nbdm_dev *nd = (struct nbdm_dev *)dev;
	int ret;

	if (nr_loops > nd->nr_conns)
		return -EINVAL;
	for (int i = nd->nr_parts; i < nr_loops; i++) {
		ret = nbdm_part_init(nd, i);
		if (ret)
			return ret;
	}
	ret = nbdm_parts_ready(nd);
	return ret ? ret : unpoll_moved(nd, nr_loops);
}

/* Reconnecting.  connect_bounded() may wait up to connect_timeout= and
 * resolve a host name: never on the loop, so a thread per attempt. */
#define RETRY_FIRST_NS 1000000000ull
#define RETRY_MAX_NS 30000000000ull

static void *reconnect_thread(void *arg)
{
	struct nbdm_conn *c = arg;
	struct nbdm_dev *nd = c->part->nd;
	struct nbd_handle *h = nbd_create();
	const char *uri = nd->nd_bdev.bd_name;
	int64_t size;

	c->new_err[0] = '\0';
	if (!h)
		snprintf(c->new_err, sizeof(c->new_err), "%s", nbd_get_error());
	else if (!connect_bounded(h, uri, nd->connect_timeout_ns, c->new_err,
				  sizeof(c->new_err)) &&
		 (size = nbd_get_size(h)) != (int64_t)nd->nd_bdev.bd_size)
		/* Another export answers there now: not the member's. */
		snprintf(c->new_err, sizeof(c->new_err),
			 "%s: the export has %" PRId64
			 " bytes now, not %" PRIu64,
			 uri, size, nd->nd_bdev.bd_size);
	if (c->new_err[0] || __atomic_load_n(&nd->dying, __ATOMIC_ACQUIRE)) {
		nbd_close(h);
		h = NULL;
	}
	c->new_h = h;
	__atomic_store_n(&c->finished, true, __ATOMIC_RELEASE);
	nbdm_part_wake(c->part);
	nbdm_put(nd);
	return NULL;
}

void nbdm_reconnect_later(struct nbdm_conn *c)
{
	struct nbdm_part *p = c->part;
	uint64_t now = loop_now_ns();

	if (__atomic_load_n(&p->nd->dying, __ATOMIC_ACQUIRE) || !p->loop)
		return;
	c->retry_ns = !c->retry_ns		     ? RETRY_FIRST_NS :
		      c->retry_ns * 2 > RETRY_MAX_NS ? RETRY_MAX_NS :
						       c->retry_ns * 2;
	c->retry_at_ns = now + c->retry_ns;
	loop_hook_arm_at(p->loop, &p->retry, c->retry_at_ns);
}

void nbdm_reconnect_run(struct loop_hook *hk)
{
	struct nbdm_part *p = container_of(hk, struct nbdm_part, retry);
	struct nbdm_dev *nd = p->nd;
	uint64_t now = loop_now_ns();

	for (int i = 0; i < p->nr_conns; i++) {
		struct nbdm_conn *c = p->conns[i];
		pthread_attr_t attr;
		pthread_t tid;
		int ret;

		if (!c->dead || c->reconnecting)
			continue;
		if (c->retry_at_ns > now) {
			loop_hook_arm_at(hk->lh_loop, hk, c->retry_at_ns);
			continue;
		}
		c->reconnecting = true;
		c->finished = false;
		__atomic_add_fetch(&nd->refs, 1, __ATOMIC_RELAXED);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ret = pthread_create(&tid, &attr, reconnect_thread, c);
		pthread_attr_destroy(&attr);
		if (ret) {
			c->reconnecting = false;
			__atomic_sub_fetch(&nd->refs, 1, __ATOMIC_RELAXED);
			nbdm_reconnect_later(c);
		}
	}
}

void nbdm_reconnect_done(struct nbdm_part *p)
{
	struct nbdm_dev *nd = p->nd;
	uint64_t n;

	if (read(p->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		bdev_log("%s: eventfd: %s", nd->nd_bdev.bd_name,
			 strerror(errno));
	for (int j = 0; j < p->nr_conns; j++) {
		struct nbdm_conn *c = p->conns[j];
		int i = (int)(c - nd->conns);

		if (!c->reconnecting ||
		    !__atomic_load_n(&c->finished, __ATOMIC_ACQUIRE))
			continue;
		c->reconnecting = false;
		if (!c->new_h) {
			/* Said once, not at every step of the backoff. */
			if (!c->said_down)
				bdev_log("%s (connection %d); trying again, at least every %d s",
					 c->new_err, i,
					 (int)(RETRY_MAX_NS / 1000000000));
			c->said_down = true;
			nbdm_reconnect_later(c);
			continue;
		}
		nbdm_conn_up(c, c->new_h);
		c->new_h = NULL;
		c->retry_ns = 0;
		c->said_down = false;
		bdev_stat_add(&p->st_reconnects, 1);
		bdev_log("%s: connection %d is back", nd->nd_bdev.bd_name, i);
	}
}

/* Every part's counters, summed (inflight_max: bdev_stat_mark()). */
struct part_sums {
	uint64_t live, lost, reconnects, timeouts, cmds, handed;
	uint32_t inflight, inflight_max;
};

static void sum_parts(struct nbdm_dev *nd, struct part_sums *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < nd->nr_parts; i++) {
		const struct nbdm_part *p = &nd->parts[i];
		uint32_t m =
			__atomic_load_n(&p->st_inflight_max, __ATOMIC_RELAXED);

		s->live += __atomic_load_n(&p->nr_live, __ATOMIC_RELAXED);
		s->lost += bdev_stat_read(&p->st_conns_lost);
		s->reconnects += bdev_stat_read(&p->st_reconnects);
		s->timeouts += bdev_stat_read(&p->st_timeouts);
		s->cmds += bdev_stat_read(&p->st_cmds);
		s->handed += bdev_stat_read(&p->st_handed);
		s->inflight +=
			__atomic_load_n(&p->st_inflight, __ATOMIC_RELAXED);
		if (m > s->inflight_max)
			s->inflight_max = m;
	}
	bdev_stat_mark(&nd->inflight_max_seen, s->inflight, &s->inflight_max);
}

static void nbdm_stats_fields(const struct bdev *dev, bdev_stat_fn emit,
			      void *ctx)
{
	/* The stats reader keeps the high-water mark it saw. */
	struct nbdm_dev *nd = (struct nbdm_dev *)dev;
	struct part_sums s;

	sum_parts(nd, &s);
	emit(ctx, "nbd_conns", (uint64_t)nd->nr_conns);
	emit(ctx, "nbd_conns_live", s.live);
	emit(ctx, "nbd_conns_lost", s.lost);
	emit(ctx, "nbd_reconnects", s.reconnects);
	emit(ctx, "nbd_timeouts", s.timeouts);
	emit(ctx, "nbd_loops", (uint64_t)nd->nr_parts);
	emit(ctx, "nbd_handed", s.handed);
	emit(ctx, "nbd_commands", s.cmds);
	emit(ctx, "nbd_inflight", s.inflight);
	emit(ctx, "nbd_inflight_max", s.inflight_max);
	emit(ctx, "nbd_block_min",
	     nd->block_min > 0 ? (uint64_t)nd->block_min : 0);
	emit(ctx, "nbd_block_preferred",
	     nd->block_pref > 0 ? (uint64_t)nd->block_pref : 0);
	emit(ctx, "nbd_block_max",
	     nd->block_max > 0 ? (uint64_t)nd->block_max : 0);
	emit(ctx, "nbd_max_payload", nd->max_payload);
	emit(ctx, "nbd_can_flush", nd->can_flush);
	emit(ctx, "nbd_can_trim", nd->can_trim);
	emit(ctx, "nbd_can_zero", nd->can_zero);
	emit(ctx, "nbd_can_fua", nd->can_fua);
	emit(ctx, "nbd_multi_conn", nd->multi_conn);
	emit(ctx, "nbd_tls", nd->tls);
	emit(ctx, "nbd_timeout_ms", nd->timeout_ns / 1000000);
}

/* Loops it can run on at once: one part per loop, each with a
 * connection of its own. */
static int nbdm_max_loops(const struct bdev *dev)
{
	return ((const struct nbdm_dev *)dev)->nr_conns;
}

const struct bdev_kind nbd_kind = {
	.bk_name = "nbd",
	.bk_help =
		"  nbd(URI, conns=N|auto, timeout=DUR, connect_timeout=DUR)\n"
		"                                    an NBD export: nbd://HOST[:PORT]/NAME,\n"
		"                                    nbd+unix:///NAME?socket=PATH; TLS:\n"
		"                                    nbds://USER@HOST/NAME?tls-psk-file=KEYS\n",
	.bk_flags = BK_URI | BK_OWN_OPTS,
	.bk_create = nbdm_create,
	.bk_max_loops = nbdm_max_loops,
	.bk_share = nbdm_split,
	.bk_stats = nbdm_stats_fields,
};
