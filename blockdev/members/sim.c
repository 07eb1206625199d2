/* sim: latency, bandwidth and queue depth for a member, so members that
 * share one real disk behave like separate disks in RAID experiments. */
#include "blockdev/members/sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockdev/layout.h"

struct sim_io {
	struct sim_io *next;
	struct sim *sim;
	struct bdev_req *parent;
	struct bdev_req child;
	uint64_t due_ns;
	int err;
};

struct sim {
	struct layer *l;
	uint64_t lat_lo_ns, lat_hi_ns;
	uint64_t bw;	       /* bytes per second, 0: unlimited */
	int qd, inflight;      /* qd 0: unlimited */
	uint64_t next_free_ns; /* when the simulated disk's transfer ends */
	uint64_t rng;
	struct sim_io *free;
	FIFO(struct sim_io) waiting; /* beyond qd, oldest first */
	/* Done below, waiting for their time, earliest first: one ring hook
	 * due at the head's time completes them, not a timeout per I/O. */
	struct sim_io *due_head, *due_tail;
	struct loop_hook due_hook;
};

static void sim_start(struct sim *s, struct sim_io *io);

static void sim_finish(struct sim_io *io)
{
	struct sim *s = io->sim;
	struct bdev_req *parent = io->parent;
	int err = io->err;

	s->inflight--;
	io->next = s->free;
	s->free = io;
	bdev_req_complete(parent, err);
	if (!fifo_empty(&s->waiting) && (!s->qd || s->inflight < s->qd))
		sim_start(s, fifo_pop(&s->waiting, next));
}

static void due_run(struct loop_hook *h)
{
	struct sim *s = container_of(h, struct sim, due_hook);
	uint64_t now = loop_now_ns();

	/* sim_finish() may start a waiting I/O that lands in the list. */
	while (s->due_head && s->due_head->due_ns <= now) {
		struct sim_io *io = s->due_head;

		s->due_head = io->next;
		if (!s->due_head)
			s->due_tail = NULL;
		sim_finish(io);
	}
	if (s->due_head)
		loop_hook_arm_at(h->lh_loop, h, s->due_head->due_ns);
}

static void child_end(struct bdev_req *req)
{
	struct sim_io *io = req->br_private;
	struct sim *s = io->sim;
	struct sim_io **pp = &s->due_head;

	io->err = req->br_error;
	if (io->due_ns <= loop_now_ns()) {
		sim_finish(io);
		return;
	}
	/* Later than all the others unless lat=A..B drew it short. */
	if (s->due_tail && s->due_tail->due_ns <= io->due_ns)
		pp = &s->due_tail->next;
	while (*pp && (*pp)->due_ns <= io->due_ns)
		pp = &(*pp)->next;
	io->next = *pp;
	*pp = io;
	if (!io->next)
		s->due_tail = io;
	if (s->due_head == io)
		loop_hook_arm_at(req->br_loop, &s->due_hook, io->due_ns);
}

static uint64_t draw_latency(struct sim *s)
{
	if (s->lat_hi_ns <= s->lat_lo_ns)
		return s->lat_lo_ns;
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->lat_lo_ns + s->rng % (s->lat_hi_ns - s->lat_lo_ns + 1);
}

static void sim_start(struct sim *s, struct sim_io *io)
{
	struct bdev_req *req = io->parent;
	uint64_t now = loop_now_ns(), due = now + draw_latency(s);

	s->inflight++;
	if (s->bw && (req->br_op == BDEV_READ || req->br_op == BDEV_WRITE)) {
		/* One transfer at a time at bw, queued behind the last. */
		uint64_t begin = s->next_free_ns > now ? s->next_free_ns : now;

		s->next_free_ns = begin + req->br_len * 1000000000ull / s->bw;
		if (s->next_free_ns > due)
			due = s->next_free_ns;
	}
	io->due_ns = due;
	bdev_req_init(&io->child, req->br_op, req->br_pos, req->br_len,
		      req->br_vec, req->br_iter, child_end, io);
	/* The parent is not submitted anywhere else: its iovecs are free. */
	io->child.br_iov = req->br_iov;
	io->child.br_iov_max = req->br_iov_max;
	bdev_req_like(&io->child, req);
	if (s->l->l_state[0] == LAYER_MEMBER_FAILED)
		bdev_req_complete(&io->child, -EIO);
	else
		bdev_submit(s->l->l_members[0], &io->child);
}

static void sim_submit(struct bdev *dev, struct bdev_req *req)
{
	struct sim *s = layer_of(dev)->l_private;
	struct sim_io *io = s->free;

	if (io)
		s->free = io->next;
	else if (!(io = calloc(1, sizeof(*io)))) {
		bdev_req_complete(req, -ENOMEM);
		return;
	}
	io->sim = s;
	io->parent = req;
	if (s->qd && s->inflight >= s->qd) {
		fifo_push(&s->waiting, io, next);
		return;
	}
	sim_start(s, io);
}

static void sim_free(struct layer *l)
{
	struct sim *s = l->l_private;

	loop_hook_disarm(&s->due_hook);
	while (s->free) {
		struct sim_io *io = s->free;

		s->free = io->next;
		free(io);
	}
	free(s);
}

static const struct bdev_ops sim_ops = {
	.submit = sim_submit,
	.destroy = layer_destroy,
};

static int sim_set(void *ctx, const char *key, const char *v)
{
	struct sim *s = ctx;
	const char *dots;
	char *end;
	long q;

	if (!strcmp(key, "lat")) {
		dots = strstr(v, "..");
		if (bdev_parse_duration(v,
					dots ? (size_t)(dots - v) : strlen(v),
					&s->lat_lo_ns))
			return -EINVAL;
		s->lat_hi_ns = s->lat_lo_ns;
		if (dots && (bdev_parse_duration(dots + 2, strlen(dots + 2),
						 &s->lat_hi_ns) ||
			     s->lat_hi_ns < s->lat_lo_ns))
			return -EINVAL;
		return 0;
	}
	if (!strcmp(key, "bw"))
		return bdev_parse_size(v, strlen(v), &s->bw);
	if (!strcmp(key, "qd")) {
		q = strtol(v, &end, 10);
		if (end == v || *end || q < 1 || q > 65536)
			return -EINVAL;
		s->qd = (int)q;
		return 0;
	}
	return -ENOENT;
}

/* Wrap the one member of @a, with the options (ka_opts) sim.h lists. */
static int sim_create(const struct bdev_kind_args *a, struct bdev **out,
		      char *err, size_t errlen)
{
	struct layer *l;
	struct sim *s;
	int ret;

	ret = layer_create_wrapper(&sim_kind, a, &sim_ops, sizeof(struct sim),
				   sim_free, &l, err, errlen);
	if (ret)
		return ret;
	s = l->l_private;
	s->l = l;
	s->due_hook.lh_fn = due_run;
	s->rng = 0x2545f4914f6cdd1dull;
	if (layer_parse_opts(a->ka_opts, sim_set, s,
			     "lat=200us or lat=100us..2ms, bw=500m, qd=32", err,
			     errlen)) {
		layer_destroy(&l->l_bdev);
		return -EINVAL;
	}
	*out = &l->l_bdev;
	return 0;
}

const struct bdev_kind sim_kind = {
	.bk_name = "sim",
	.bk_help =
		"  sim(M, lat=DUR|LO..HI, bw=SIZE, qd=N)  M as a disk of its own\n",
	.bk_min_members = 1,
	.bk_max_members = 1,
	.bk_flags = BK_OWN_OPTS | BK_SAME_BYTES,
	.bk_create = sim_create,
};
