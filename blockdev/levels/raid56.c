/* raid56: RAID-5 (P) and RAID-6 (P+Q) in Linux md's default left-symmetric
 * layouts.  Healthy reads go through the mapped splitter; writes, degraded
 * reads, rebuild and scrub run as stripe operations under a stripe lock. */
#include "blockdev/levels/raid56.h"
#include "blockdev/core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockdev/levels/parity.h"

enum so_kind {
	SO_WRITE,   /* new data from the request's vector */
	SO_ZERO,    /* new data is zeroes (discard/zero of part of a stripe) */
	SO_READ,    /* degraded read: reconstruct into the request's vector */
	SO_CHECK,   /* scrub: count parity mismatches */
	SO_REPAIR,  /* scrub: rewrite parity where it mismatches */
	SO_REBUILD, /* recompute the rebuilding member's chunk */
};

enum so_mode { MODE_FULL, MODE_RCW, MODE_RMW, MODE_RECON };

/* A write that covers consecutive full stripes is done as one op over up
 * to this many member bytes per member: each member's chunks of those
 * stripes lie back to back, so they go out as one member I/O whose
 * vector interleaves the request's pages with parity scratch.  Zeroing
 * (discard, zero-range) needs neither, so its batches span the request:
 * zeroes everywhere are a consistent stripe, parity included. */
#define R56_BATCH_BYTES (128u << 10)
#define R56_ZERO_BATCH_MAX (1u << 30)

/* Writes into part of a stripe are merged with their neighbours on the
 * same stripe while they wait (md's stripe cache does this): the merged
 * op's data vector re-slices every request's pages, each chunk's part in
 * no more pieces than a member takes in one request (l_vec_cap).  A
 * partial write that could run is held (plugged) until the end of the
 * batch of requests it came in, and a sequential one sometimes longer
 * (hold_ns()), hoping the rest of its stripe comes: the stripe then goes
 * out as a full-stripe write, no reads. */
#define R56_HOLD_MIN_NS 100000ull
#define R56_HOLD_MAX_NS 100000000ull
#define R56_IDLE_HOLD_NS 500000ull

/**
 * struct stripe_op - one operation on one stripe, over the in-chunk column
 * range [so_c0, so_c1) of every member.  Scratch holds one column per
 * member slot (member order, not logical order).  A batch (so_nstripes
 * > 1) is a full-stripe write of stripes [so_stripe, + so_nstripes): its
 * scratch holds the parity columns of each stripe in turn, and so_mvec a
 * gathered vector per member.
 */
struct stripe_op {
	struct stripe_op *so_next;
	struct layer *so_l;
	struct loop *so_loop; /* its request's, or the sweep's: it runs there */
	enum so_kind so_kind;
	enum so_mode so_mode;
	uint64_t so_stripe;
	uint32_t so_nstripes;  /* stripes locked and written: 1 unless a batch */
	uint64_t so_lo, so_hi; /* data bytes of the stripe, [0, ndata * chunk) */
	uint64_t so_c0, so_c1;
	int so_tries;
	uint8_t *so_buf;
	struct bdev_req so_req;	  /* child of the layer request (or none) */
	struct bdev_req so_stage; /* parent of one stage's member I/Os */
	struct bdev_req so_sub[LAYER_MAX_MEMBERS];
	struct pvec so_subvec[LAYER_MAX_MEMBERS];
	struct iovec *so_iov; /* r56.vec_cap per member I/O */
	struct pvec *so_mvec; /* batches: r56.vec_cap per member */
	int so_sub_member[LAYER_MAX_MEMBERS];
	int so_nr_sub;
	/* Slots (data..., P, Q) unreadable when the op planned its reads:
	 * fixed for the op, as a rebuild may move on meanwhile. */
	uint64_t so_unreadable;
	bool so_has_req;
	/* Plugged: a partial-stripe write held in the wait list (until the
	 * ring's next submit, or so_hold_ns longer), so that neighbours
	 * can join it and make the stripe full. */
	bool so_plugged;
	uint64_t so_hold_ns; /* how long past its batch it may be held */
	uint64_t so_plug_ns; /* when it was plugged */
	uint64_t so_run_ns;  /* when it first ran */
	/* The new data, bytes [so_lo, so_hi) of the stripe: the request's own
	 * vector, or so_dvec once writes were merged in (so_peers, which
	 * complete with this op). */
	const struct pvec *so_vec;
	struct pvec_iter so_it;
	struct pvec *so_dvec; /* ndata * l_vec_cap segments */
	struct stripe_op *so_peers;
	void (*so_done)(struct stripe_op *so, int err); /* background ops */
	void *so_private;
};

/* A request waiting for stripe operations to become free. */
struct r56_cursor {
	struct r56_cursor *rc_next;
	struct bdev_req *rc_req;
	uint64_t rc_off; /* bytes of the request already handed to ops */
	struct bdev_req rc_sub; /* a healthy read tried through the map */
	struct layer *rc_l;
};

struct r56 {
	int nparity, ndata;
	uint64_t chunk, stripes;
	uint32_t batch_max; /* stripes one batch may cover (1: no batches) */
	/* Per op: segments a member I/O may gather (a run of the request's
	 * segments per data chunk plus a parity column per stripe), and
	 * scratch columns (one per member, or a batch's parity). */
	uint32_t vec_cap;
	uint32_t scratch_cols;
	struct stripe_op *free_ops;
	int nr_ops, max_ops;
	struct stripe_op *active;
	struct stripe_op *wait_head, *wait_tail;
	struct r56_cursor *cur_head, *cur_tail, *cur_free;
	struct loop_hook unplug;
	uint64_t seq_end; /* where the last write op ended, array bytes */
	uint64_t write_op_ns; /* moving average of a write op's run time */
	int last_write_reqs;  /* requests the last write op carried */
	/* A check or repair sweep's copy of the parity read (chunk bytes per
	 * parity), allocated when it starts: no stripe can fail for memory. */
	uint8_t *scrub_save;
	struct raid56_stats st;
};

static struct r56 *r56_of(const struct layer *l)
{
	return l->l_private;
}

/* Member holding logical data chunk @dd of @stripe, and P/Q members. */
static int data_member(const struct layer *l, uint64_t stripe, int dd)
{
	const struct r56 *r = r56_of(l);
	int n = l->l_nr, pd;

	if (r->nparity == 1) {
		pd = r->ndata - (int)(stripe % n);
		return (pd + 1 + dd) % n;
	}
	pd = n - 1 - (int)(stripe % n);
	return (pd + 2 + dd) % n;
}

static int p_member(const struct layer *l, uint64_t stripe)
{
	const struct r56 *r = r56_of(l);
	int n = l->l_nr;

	return r->nparity == 1 ? r->ndata - (int)(stripe % n) :
				 n - 1 - (int)(stripe % n);
}

static int q_member(const struct layer *l, uint64_t stripe)
{
	return (p_member(l, stripe) + 1) % l->l_nr;
}

void raid56_layout(const struct layer *l, uint64_t stripe, int *slots)
{
	const struct r56 *r = r56_of(l);

	for (int j = 0; j < r->ndata; j++)
		slots[j] = data_member(l, stripe, j);
	slots[r->ndata] = p_member(l, stripe);
	if (r->nparity == 2)
		slots[r->ndata + 1] = q_member(l, stripe);
}

static void r56_map(const struct layer *l, uint64_t pos, int *member,
		    uint64_t *member_pos, uint64_t *piece_max)
{
	const struct r56 *r = r56_of(l);
	uint64_t k = pos / r->chunk, in = pos % r->chunk;
	uint64_t stripe = k / r->ndata;

	*member = data_member(l, stripe, (int)(k % r->ndata));
	*member_pos = stripe * r->chunk + in;
	*piece_max = r->chunk - in;
}

/* ---- stripe locks and op allocation --------------------------------- */

static void so_run(struct stripe_op *so);
static void r56_resume(struct layer *l);
static bool touched(const struct stripe_op *so, int j, uint64_t *a, uint64_t *b);
static void start_waiters(struct r56 *r, const struct stripe_op *freed);

static bool overlap(const struct stripe_op *a, const struct stripe_op *b)
{
	return a->so_stripe < b->so_stripe + b->so_nstripes &&
	       b->so_stripe < a->so_stripe + a->so_nstripes;
}

/* Whether @so overlaps an op in @list before @stop (NULL: the whole list). */
static bool overlaps_any(const struct stripe_op *list, const struct stripe_op *stop,
			 const struct stripe_op *so)
{
	for (const struct stripe_op *o = list; o != stop; o = o->so_next)
		if (overlap(o, so))
			return true;
	return false;
}

/* The in-chunk columns [so_c0, so_c1) that data bytes [so_lo, so_hi) of
 * the stripe touch in any chunk. */
static void so_set_cols(struct stripe_op *so)
{
	uint64_t a, b;

	so->so_c0 = so->so_l->l_chunk;
	so->so_c1 = 0;
	for (int j = 0; j < r56_of(so->so_l)->ndata; j++) {
		if (!touched(so, j, &a, &b))
			continue;
		if (a < so->so_c0)
			so->so_c0 = a;
		if (b > so->so_c1)
			so->so_c1 = b;
	}
}

/* Whether the op's data bytes are its whole stripe. */
static bool whole_stripe(const struct r56 *r, const struct stripe_op *so)
{
	return so->so_lo == 0 && so->so_hi == r->ndata * r->chunk;
}

static bool mergeable(const struct stripe_op *so)
{
	return so->so_has_req && so->so_kind == SO_WRITE && so->so_nstripes == 1;
}

/* Merge write @so into the newest waiting op on its stripe when their
 * bytes are neighbours: that op then writes both, its vector the two
 * requests' vectors back to back, and @so completes with it.  The newest
 * waiter is the one @so would queue behind, so the order of overlapping
 * writes is kept. */
static bool so_merge(struct r56 *r, struct stripe_op *so)
{
	struct stripe_op *w = NULL, *first, *second;
	struct pvec *v = so->so_dvec; /* unused by @so: build the new one here */
	uint64_t c = r->chunk;
	int cap = r->ndata * (int)so->so_l->l_vec_cap, n;
	struct pvec_iter it;

	if (!mergeable(so))
		return false;
	for (struct stripe_op *o = r->wait_head; o; o = o->so_next)
		if (overlap(o, so))
			w = o;
	if (!w || !mergeable(w))
		return false;
	if (w->so_hi == so->so_lo) {
		first = w;
		second = so;
	} else if (so->so_hi == w->so_lo) {
		first = so;
		second = w;
	} else {
		return false;
	}
	n = pvec_append(v, 0, cap, first->so_vec, first->so_it);
	if (n >= 0)
		n = pvec_append(v, n, cap, second->so_vec, second->so_it);
	if (n < 0)
		return false;
	/* Each data chunk's part goes to its member as one request. */
	it = pvec_iter_init(v, n);
	for (uint64_t s = first->so_lo / c * c; s < second->so_hi; s += c) {
		uint64_t a = s > first->so_lo ? s : first->so_lo;
		uint64_t b = s + c < second->so_hi ? s + c : second->so_hi;
		struct pvec_iter part;

		pvec_slice(v, it, a - first->so_lo, b - a, &part);
		if (pvec_runs(v, part) > (int)so->so_l->l_vec_cap)
			return false;
	}
	so->so_dvec = w->so_dvec;
	w->so_dvec = v;
	w->so_vec = v;
	w->so_it = pvec_iter_init(w->so_dvec, n);
	w->so_lo = first->so_lo;
	w->so_hi = second->so_hi;
	so_set_cols(w);
	so->so_next = w->so_peers;
	w->so_peers = so;
	r->st.merged_writes++;
	r->seq_end = w->so_stripe * r->ndata * r->chunk + w->so_hi;
	if (w->so_plugged && whole_stripe(r, w)) {
		/* Full now: nothing more to wait for. */
		w->so_plugged = false;
		start_waiters(r, NULL);
	}
	return true;
}

/* How long past its batch partial write @so may wait for neighbours.
 * Only a write that continues a sequential stream (@seq) waits, and only
 * when more of its stripe is likely on the way:
 *  - other stripe ops run: the writer's next writes are stuck behind
 *    them, so wait up to one write op's time (a moving average);
 *  - the array is idle but the last write op carried enough requests to
 *    fill a stripe from its start, where this one begins: the writer keeps
 *    that many in flight, and the rest were sent with this one, so wait a
 *    little (at most R56_IDLE_HOLD_NS).
 * A writer at queue depth 1 meets neither and never waits. */
static uint64_t hold_ns(const struct r56 *r, const struct stripe_op *so, bool seq)
{
	uint64_t op = r->write_op_ns;

	op = op < R56_HOLD_MIN_NS ? R56_HOLD_MIN_NS : op > R56_HOLD_MAX_NS ? R56_HOLD_MAX_NS : op;
	if (!seq)
		return 0;
	if (r->active)
		return op;
	if (!so->so_lo && (uint64_t)r->last_write_reqs * so->so_hi >= r->ndata * r->chunk)
		return op < R56_IDLE_HOLD_NS ? op : R56_IDLE_HOLD_NS;
	return 0;
}

static void so_lock_or_wait(struct stripe_op *so)
{
	struct r56 *r = r56_of(so->so_l);
	uint64_t at = so->so_stripe * r->ndata * r->chunk;
	bool blocked;

	so->so_next = NULL;
	so->so_plugged = false;
	if (so_merge(r, so))
		return;
	if (mergeable(so)) {
		so->so_hold_ns = hold_ns(r, so, at + so->so_lo == r->seq_end);
		r->seq_end = at + so->so_hi;
	}
	/* First come, first served per stripe: never pass a waiter. */
	blocked = overlaps_any(r->wait_head, NULL, so) || overlaps_any(r->active, NULL, so);
	if (!blocked && !(so->so_loop && mergeable(so) && !whole_stripe(r, so))) {
		so->so_next = r->active;
		r->active = so;
		so_run(so);
		return;
	}
	if (blocked) {
		r->st.stripe_waits++;
	} else {
		so->so_plugged = true;
		so->so_plug_ns = loop_now_ns();
		loop_hook_arm(so->so_loop, &r->unplug);
	}
	if (r->wait_tail)
		r->wait_tail->so_next = so;
	else
		r->wait_head = so;
	r->wait_tail = so;
}

/* Start every waiter that overlaps neither a running op nor an older
 * waiter, nor is plugged; with @freed, only those it may have held up. */
static void start_waiters(struct r56 *r, const struct stripe_op *freed)
{
	struct stripe_op *prev, *w;

	/* so_run() may finish ops and re-enter here, which changes both
	 * lists: start one, then look again from the top. */
again:
	for (prev = NULL, w = r->wait_head; w; prev = w, w = w->so_next) {
		if ((freed && !overlap(w, freed)) || w->so_plugged ||
		    overlaps_any(r->active, NULL, w) || overlaps_any(r->wait_head, w, w))
			continue;
		if (prev)
			prev->so_next = w->so_next;
		else
			r->wait_head = w->so_next;
		if (r->wait_tail == w)
			r->wait_tail = prev;
		w->so_next = r->active;
		r->active = w;
		so_run(w);
		goto again;
	}
}

static void so_unlock(struct stripe_op *so)
{
	struct r56 *r = r56_of(so->so_l);
	struct stripe_op **pp = &r->active;

	while (*pp != so)
		pp = &(*pp)->so_next;
	*pp = so->so_next;
	start_waiters(r, so);
}

/* The end of a batch of requests, or the time a held write was due: what
 * was held for neighbours and is not to be held longer goes. */
static void r56_unplug(struct loop_hook *h)
{
	struct r56 *r = container_of(h, struct r56, unplug);
	uint64_t now = loop_now_ns(), next = 0;

	for (struct stripe_op *w = r->wait_head; w; w = w->so_next) {
		if (!w->so_plugged)
			continue;
		if (now - w->so_plug_ns < w->so_hold_ns) {
			if (!next || w->so_plug_ns + w->so_hold_ns < next)
				next = w->so_plug_ns + w->so_hold_ns;
			continue;
		}
		w->so_plugged = false;
	}
	start_waiters(r, NULL);
	if (next)
		loop_hook_arm_at(h->lh_loop, h, next);
}

static struct stripe_op *so_alloc(struct layer *l)
{
	const struct r56 *r = r56_of(l);
	struct stripe_op *so = calloc(1, sizeof(*so));
	size_t nvec = (size_t)l->l_nr * r->vec_cap;

	if (!so)
		return NULL;
	so->so_iov = calloc(nvec, sizeof(*so->so_iov));
	so->so_mvec = r->batch_max > 1 ? calloc(nvec, sizeof(*so->so_mvec)) : NULL;
	so->so_dvec = calloc((size_t)r->ndata * l->l_vec_cap, sizeof(*so->so_dvec));
	if (!so->so_iov || (r->batch_max > 1 && !so->so_mvec) || !so->so_dvec ||
	    posix_memalign((void **)&so->so_buf, 4096, (size_t)r->scratch_cols * l->l_chunk)) {
		free(so->so_iov);
		free(so->so_mvec);
		free(so->so_dvec);
		free(so);
		return NULL;
	}
	so->so_l = l;
	return so;
}

static void so_free(struct stripe_op *so)
{
	free(so->so_iov);
	free(so->so_mvec);
	free(so->so_dvec);
	free(so->so_buf);
	free(so);
}

/* Ops grow to max_ops and are then recycled; NULL means wait. */
static struct stripe_op *so_get(struct layer *l)
{
	struct r56 *r = r56_of(l);
	struct stripe_op *so = r->free_ops;

	if (so) {
		r->free_ops = so->so_next;
		return so;
	}
	if (r->nr_ops == r->max_ops || !(so = so_alloc(l)))
		return NULL;
	r->nr_ops++;
	return so;
}

static void so_put(struct stripe_op *so)
{
	struct r56 *r = r56_of(so->so_l);

	so->so_next = r->free_ops;
	r->free_ops = so;
	if (r->cur_head)
		r56_resume(so->so_l);
}

static void so_finish(struct stripe_op *so, int err)
{
	if (!so->so_has_req) {
		/* Background: publish progress (rebuild_pos) before a
		 * waiter on this stripe plans its reads, then go on. */
		so->so_done(so, err);
		return;
	}
	struct r56 *r = r56_of(so->so_l);
	int reqs = 1;

	if (so->so_kind == SO_WRITE) {
		int64_t d = (int64_t)(loop_now_ns() - so->so_run_ns) - (int64_t)r->write_op_ns;

		r->write_op_ns += d / 8;
	}
	so_unlock(so);
	for (; so->so_peers; reqs++) {
		struct stripe_op *p = so->so_peers;

		so->so_peers = p->so_next;
		bdev_req_complete(&p->so_req, err);
		so_put(p);
	}
	if (so->so_kind == SO_WRITE)
		r->last_write_reqs = reqs;
	bdev_req_complete(&so->so_req, err);
	so_put(so);
}

/* ---- the stages -------------------------------------------------------- */

static uint8_t *col(struct stripe_op *so, int member)
{
	return so->so_buf + (size_t)member * so->so_l->l_chunk;
}

/* N_j: the part of data chunk @j the op writes or reads, in-chunk. */
static bool touched(const struct stripe_op *so, int j, uint64_t *a, uint64_t *b)
{
	uint64_t c = so->so_l->l_chunk, s = j * c, e = s + c;
	uint64_t lo = so->so_lo > s ? so->so_lo : s;
	uint64_t hi = so->so_hi < e ? so->so_hi : e;

	if (lo >= hi)
		return false;
	*a = lo - s;
	*b = hi - s;
	return true;
}

static void stage_end(struct bdev_req *req);

static void stage_begin(struct stripe_op *so)
{
	bdev_req_init(&so->so_stage, BDEV_READ, 0, 0, NULL,
		      (struct pvec_iter){ 0 }, stage_end, so);
	so->so_stage.br_loop = so->so_loop;
	so->so_nr_sub = 0;
}

/* One member I/O of the current stage over member bytes of this stripe
 * [so_c0 + @off, + @len), from @buf or (when NULL) from @vec/@it. */
static void stage_io(struct stripe_op *so, enum bdev_op op, int m,
		     uint64_t off, uint64_t len, uint8_t *buf,
		     const struct pvec *vec, struct pvec_iter it)
{
	int i = so->so_nr_sub++;
	struct bdev_req *sub = &so->so_sub[i];
	uint64_t mpos = so->so_stripe * so->so_l->l_chunk + so->so_c0 + off;

	if (buf) {
		pvec_from_buf(&so->so_subvec[i], 1, buf, len, 0);
		vec = &so->so_subvec[i];
		it = pvec_iter_init(vec, 1);
	}
	bdev_req_init(sub, op, mpos, len, vec, it, NULL, NULL);
	sub->br_iov = so->so_iov + (size_t)i * r56_of(so->so_l)->vec_cap;
	sub->br_iov_max = (int)r56_of(so->so_l)->vec_cap;
	so->so_sub_member[i] = m;
	bdev_req_chain(&so->so_stage, sub);
}

static void stage_submit(struct stripe_op *so)
{
	struct layer *l = so->so_l;

	for (int i = 0; i < so->so_nr_sub; i++)
		layer_member_submit(l, so->so_sub_member[i], &so->so_sub[i]);
	bdev_req_complete(&so->so_stage, 0);
}

/* The request's bytes for data chunk @j of the op's stripe @t (0 unless
 * a batch), in-chunk [a, b). */
static struct pvec_iter req_slice(struct stripe_op *so, uint32_t t, int j,
				  uint64_t a, uint64_t b)
{
	const struct r56 *r = r56_of(so->so_l);
	struct pvec_iter it;
	uint64_t off = t * r->ndata * r->chunk + j * r->chunk + a - so->so_lo;

	pvec_slice(so->so_vec, so->so_it, off, b - a, &it);
	return it;
}

static void plan(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	uint64_t mend = so->so_stripe * l->l_chunk + so->so_c1, a, b;
	int slots[LAYER_MAX_MEMBERS], lost = 0, full = 0, nt = 0;

	so->so_unreadable = 0;
	if (so->so_nstripes > 1) {
		/* Nothing to read, so nothing unreadable: a failed member is
		 * left out of the writes, a rebuilding one written. */
		so->so_mode = MODE_FULL;
		return;
	}
	raid56_layout(l, so->so_stripe, slots);
	for (int i = 0; i < r->ndata + r->nparity; i++) {
		if (!layer_readable(l, slots[i], mend)) {
			so->so_unreadable |= 1ull << i;
			lost++;
		}
	}
	if (so->so_kind != SO_WRITE && so->so_kind != SO_ZERO) {
		so->so_mode = MODE_RECON;
		return;
	}
	for (int j = 0; j < r->ndata; j++) {
		if (!touched(so, j, &a, &b))
			continue;
		nt++;
		full += a == so->so_c0 && b == so->so_c1;
	}
	/* New data for every data column needs nothing read, with members
	 * lost too (while parity covers them): parity comes from it, and a
	 * failed member is left out. */
	if (full == r->ndata && lost <= r->nparity)
		so->so_mode = MODE_FULL;
	else if (lost)
		so->so_mode = MODE_RECON;
	else if (nt + r->nparity < r->ndata - full)
		so->so_mode = MODE_RMW;
	else
		so->so_mode = MODE_RCW;
}

/* Read what the plan needs, then compute, then write. */
static void so_run(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	uint64_t w = so->so_c1 - so->so_c0, a, b;
	int slots[LAYER_MAX_MEMBERS], n = r->ndata + r->nparity, lost = 0;

	if (!so->so_tries)
		so->so_run_ns = loop_now_ns();
	plan(so);
	raid56_layout(l, so->so_stripe, slots);
	so->so_stage.br_op = BDEV_READ;
	stage_begin(so);
	switch (so->so_mode) {
	case MODE_FULL:
		r->st.full_stripe_writes += so->so_nstripes;
		break;
	case MODE_RCW:
		r->st.rcw_writes++;
		for (int j = 0; j < r->ndata; j++) {
			if (touched(so, j, &a, &b) && a == so->so_c0 && b == so->so_c1)
				continue;
			stage_io(so, BDEV_READ, slots[j], 0, w, col(so, slots[j]),
				 NULL, (struct pvec_iter){ 0 });
			r->st.parity_reads++;
		}
		break;
	case MODE_RMW:
		r->st.rmw_writes++;
		for (int j = 0; j < r->ndata; j++) {
			if (!touched(so, j, &a, &b))
				continue;
			stage_io(so, BDEV_READ, slots[j], a - so->so_c0, b - a,
				 col(so, slots[j]) + (a - so->so_c0), NULL,
				 (struct pvec_iter){ 0 });
			r->st.parity_reads++;
		}
		for (int i = r->ndata; i < n; i++) {
			stage_io(so, BDEV_READ, slots[i], 0, w, col(so, slots[i]),
				 NULL, (struct pvec_iter){ 0 });
			r->st.parity_reads++;
		}
		break;
	case MODE_RECON:
		for (int i = 0; i < n; i++)
			lost += !!(so->so_unreadable & (1ull << i));
		if (lost > r->nparity) {
			/* More lost than parity covers: nothing to read. */
			bdev_req_complete(&so->so_stage, -EIO);
			return;
		}
		for (int i = 0; i < n; i++)
			if (!(so->so_unreadable & (1ull << i)))
				stage_io(so, BDEV_READ, slots[i], 0, w, col(so, slots[i]),
					 NULL, (struct pvec_iter){ 0 });
		if (lost)
			r->st.degraded_ops++;
		break;
	}
	stage_submit(so);
}

/* Bring the new data for data chunk @j into its column at [a, b). */
static void overlay(struct stripe_op *so, int j, int m, uint64_t a, uint64_t b)
{
	uint8_t *dst = col(so, m) + (a - so->so_c0);

	if (so->so_kind == SO_ZERO)
		memset(dst, 0, b - a);
	else
		pvec_copy_to(dst, so->so_vec, req_slice(so, 0, j, a, b), b - a);
	r56_of(so->so_l)->st.parity_copy_bytes += b - a;
}

/* dst ^= the request's bytes of data chunk @j over the op's columns,
 * straight from its segments (or dst = them, with @first). */
static void xor_from_req(struct stripe_op *so, uint32_t t, int j, uint8_t *dst,
			 bool first)
{
	struct pvec_iter it = req_slice(so, t, j, so->so_c0, so->so_c1);
	const struct pvec *vec = so->so_vec;

	while (it.pi_size) {
		struct pvec cur = pvec_iter_cur(vec, it);

		if (first)
			memcpy(dst, pvec_addr(&cur), cur.pv_len);
		else
			parity_xor(dst, pvec_addr(&cur), cur.pv_len);
		dst += cur.pv_len;
		pvec_iter_advance(vec, &it, cur.pv_len);
	}
}

/* A full stripe's parity needs no copy of its data: P and Q are built
 * from the request's segments, which then go to the members as they are. */
static void full_stripe_parity(struct stripe_op *so, uint32_t t, uint8_t **blk,
			       uint64_t w)
{
	struct r56 *r = r56_of(so->so_l);
	int nd = r->ndata;

	for (int j = 0; j < nd; j++)
		xor_from_req(so, t, j, blk[nd], j == 0);
	if (r->nparity < 2)
		return;
	/* Horner, as parity_compute(): Q = ((D_n-1 * 2) ^ D_n-2) * 2 ... */
	xor_from_req(so, t, nd - 1, blk[nd + 1], true);
	for (int j = nd - 2; j >= 0; j--) {
		parity_mul2(blk[nd + 1], w);
		xor_from_req(so, t, j, blk[nd + 1], false);
	}
}

static int compute(struct stripe_op *so, int *slots, uint8_t **blk)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	uint64_t w = so->so_c1 - so->so_c0, a, b;
	int n = r->ndata + r->nparity, lost[2], nr_lost = 0;

	for (int i = 0; i < n; i++)
		blk[i] = col(so, slots[i]);
	if (so->so_mode == MODE_RMW) {
		/* P ^= old ^ new, Q ^= 2^j (old ^ new), over each N_j. */
		uint8_t *delta;

		for (int j = 0; j < r->ndata; j++) {
			if (!touched(so, j, &a, &b))
				continue;
			delta = blk[j] + (a - so->so_c0);
			if (so->so_kind == SO_ZERO) {
				/* new = 0: delta is the old data itself */
			} else {
				uint8_t tmp[4096];

				for (uint64_t o = a; o < b; o += sizeof(tmp)) {
					uint64_t len = b - o < sizeof(tmp) ? b - o : sizeof(tmp);

					pvec_copy_to(tmp, so->so_vec,
						     req_slice(so, 0, j, o, o + len), len);
					parity_xor(delta + (o - a), tmp, len);
				}
				r->st.parity_copy_bytes += b - a;
			}
			parity_xor(blk[r->ndata] + (a - so->so_c0), delta, b - a);
			if (r->nparity == 2)
				parity_mul_xor(blk[r->ndata + 1] + (a - so->so_c0),
					       delta, gf_pow2(j), b - a);
			if (so->so_kind == SO_ZERO)
				memset(delta, 0, b - a); /* what gets written */
		}
		return 0;
	}
	if (so->so_mode == MODE_RECON) {
		for (int i = 0; i < n; i++)
			if (so->so_unreadable & (1ull << i))
				lost[nr_lost++] = i;
		if (nr_lost && parity_recover(blk, r->ndata, r->nparity, lost,
					      nr_lost, w))
			return -EIO;
	}
	if (so->so_mode == MODE_FULL && so->so_kind == SO_WRITE) {
		full_stripe_parity(so, 0, blk, w);
		return 0;
	}
	if (so->so_kind == SO_WRITE || so->so_kind == SO_ZERO) {
		for (int j = 0; j < r->ndata; j++)
			if (touched(so, j, &a, &b))
				overlay(so, j, slots[j], a, b);
		parity_compute(blk, r->ndata, r->nparity, w);
	}
	return 0;
}

/* Scrub: compare the parity read with parity recomputed from the data. */
static void scrub(struct stripe_op *so, uint8_t **blk)
{
	struct r56 *r = r56_of(so->so_l);
	uint64_t w = so->so_c1 - so->so_c0;
	uint8_t *save = r->scrub_save;
	bool bad = false;

	for (int k = 0; k < r->nparity; k++)
		memcpy(save + k * w, blk[r->ndata + k], w);
	parity_compute(blk, r->ndata, r->nparity, w);
	/* md counts mismatches in 512-byte sectors of whole 4k pages. */
	for (uint64_t o = 0; o < w; o += 4096) {
		uint64_t len = w - o < 4096 ? w - o : 4096;
		bool page_bad = false;

		for (int k = 0; k < r->nparity; k++)
			page_bad |= memcmp(save + k * w + o, blk[r->ndata + k] + o, len) != 0;
		if (page_bad) {
			so->so_l->l_mismatch_sectors += len / 512;
			bad = true;
		}
	}
	if (!bad || so->so_kind == SO_CHECK) {
		/* Nothing to write: restore what was read. */
		for (int k = 0; k < r->nparity; k++)
			memcpy(blk[r->ndata + k], save + k * w, w);
		so->so_mode = MODE_FULL; /* marker: no writes */
		so->so_kind = SO_CHECK;
	}
}

/* A batch: parity of each stripe into its scratch columns, then one write
 * per member over all the stripes, gathered from the request and parity. */
static void batch_write_stage(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	int n = r->ndata + r->nparity, nv[LAYER_MAX_MEMBERS] = { 0 };
	int slots[LAYER_MAX_MEMBERS];
	uint8_t *blk[LAYER_MAX_MEMBERS];
	struct pvec col_vec;

	if (l->l_nr_bad > r->nparity) {
		so_finish(so, -EIO); /* as a stripe op that finds too few */
		return;
	}
	if (so->so_kind == SO_ZERO) {
		/* Members zero their range their own way: no payload at all.
		 * A discard stays one where it surely reads back zeroes (a
		 * hole punched in an image file); elsewhere (BLKDISCARD may
		 * not zero) it becomes a zero-out, so parity stays right. */
		stage_begin(so);
		for (int m = 0; m < n; m++) {
			const struct bdev *md = l->l_members[m];
			bool hole = so->so_req.br_op == BDEV_DISCARD &&
				    md->bd_discard_zeroes;

			if (l->l_state[m] != LAYER_MEMBER_FAILED)
				stage_io(so, hole ? BDEV_DISCARD : BDEV_ZERO, m, 0,
					 so->so_nstripes * r->chunk, NULL, NULL,
					 (struct pvec_iter){ 0 });
		}
		so->so_tries = -1;
		stage_submit(so);
		return;
	}
	for (uint32_t t = 0; t < so->so_nstripes; t++) {
		raid56_layout(l, so->so_stripe + t, slots);
		for (int k = 0; k < r->nparity; k++)
			blk[r->ndata + k] = so->so_buf +
					    ((size_t)t * r->nparity + k) * r->chunk;
		full_stripe_parity(so, t, blk, r->chunk);
		for (int i = 0; i < n; i++) {
			struct pvec *dst = so->so_mvec + (size_t)slots[i] * r->vec_cap;
			const struct pvec *src = &col_vec;
			struct pvec_iter it;

			if (i < r->ndata) {
				src = so->so_vec;
				it = req_slice(so, t, i, 0, r->chunk);
			} else {
				pvec_from_buf(&col_vec, 1, blk[i], r->chunk, 0);
				it = pvec_iter_init(&col_vec, 1);
			}
			nv[slots[i]] = pvec_append(dst, nv[slots[i]], (int)r->vec_cap,
						   src, it);
			if (nv[slots[i]] < 0) {
				so_finish(so, -EIO); /* the cap above is wrong */
				return;
			}
		}
	}
	stage_begin(so);
	for (int m = 0; m < n; m++) {
		const struct pvec *v = so->so_mvec + (size_t)m * r->vec_cap;

		if (l->l_state[m] != LAYER_MEMBER_FAILED)
			stage_io(so, BDEV_WRITE, m, 0, so->so_nstripes * r->chunk, NULL,
				 v, pvec_iter_init(v, nv[m]));
	}
	so->so_tries = -1; /* stage_end: this was the last stage */
	stage_submit(so);
}

static void write_stage(struct stripe_op *so)
{
	struct layer *l = so->so_l;
	struct r56 *r = r56_of(l);
	uint64_t w = so->so_c1 - so->so_c0, a, b;
	int slots[LAYER_MAX_MEMBERS], n = r->ndata + r->nparity;
	uint8_t *blk[LAYER_MAX_MEMBERS];
	int err;

	if (so->so_nstripes > 1) {
		batch_write_stage(so);
		return;
	}
	raid56_layout(l, so->so_stripe, slots);
	err = compute(so, slots, blk);
	if (err) {
		so_finish(so, err);
		return;
	}
	stage_begin(so);
	switch (so->so_kind) {
	case SO_READ:
		for (int j = 0; j < r->ndata; j++)
			if (touched(so, j, &a, &b))
				pvec_copy_from(so->so_vec, req_slice(so, 0, j, a, b),
					       blk[j] + (a - so->so_c0), b - a);
		break;
	case SO_CHECK:
	case SO_REPAIR:
		scrub(so, blk);
		if (so->so_kind == SO_REPAIR)
			for (int i = r->ndata; i < n; i++)
				if (l->l_state[slots[i]] != LAYER_MEMBER_FAILED)
					stage_io(so, BDEV_WRITE, slots[i], 0, w, blk[i],
						 NULL, (struct pvec_iter){ 0 });
		break;
	case SO_REBUILD:
		for (int i = 0; i < n; i++)
			if (l->l_state[slots[i]] == LAYER_MEMBER_REBUILDING)
				stage_io(so, BDEV_WRITE, slots[i], 0, w, blk[i], NULL,
					 (struct pvec_iter){ 0 });
		break;
	case SO_WRITE:
	case SO_ZERO:
		for (int i = 0; i < n; i++) {
			int m = slots[i];
			bool data_touched = i < r->ndata && touched(so, i, &a, &b);

			if (l->l_state[m] == LAYER_MEMBER_FAILED)
				continue;
			if (i >= r->ndata) {
				stage_io(so, BDEV_WRITE, m, 0, w, blk[i], NULL,
					 (struct pvec_iter){ 0 });
			} else if (data_touched && so->so_kind == SO_WRITE &&
				   so->so_mode == MODE_FULL) {
				/* The whole column, rebuilding or not. */
				stage_io(so, BDEV_WRITE, m, 0, w, NULL, so->so_vec,
					 req_slice(so, 0, i, a, b));
			} else if (so->so_unreadable & (1ull << i)) {
				/* Rebuilding past this stripe: bring the whole
				 * column up to date while we have it. */
				stage_io(so, BDEV_WRITE, m, 0, w, blk[i], NULL,
					 (struct pvec_iter){ 0 });
			} else if (data_touched && so->so_kind == SO_WRITE) {
				/* The payload goes to the member straight from
				 * the request's vector: a re-slice, no copy. */
				stage_io(so, BDEV_WRITE, m, a - so->so_c0, b - a, NULL,
					 so->so_vec, req_slice(so, 0, i, a, b));
			} else if (data_touched) {
				stage_io(so, BDEV_WRITE, m, a - so->so_c0, b - a,
					 blk[i] + (a - so->so_c0), NULL,
					 (struct pvec_iter){ 0 });
			}
		}
		break;
	}
	so->so_tries = -1; /* stage_end: this was the last stage */
	stage_submit(so);
}

static void stage_end(struct bdev_req *req)
{
	struct stripe_op *so = req->br_private;
	struct layer *l = so->so_l;
	int err = req->br_error;

	if (err) {
		/* A member that fails I/O is failed, as md does; then the
		 * stripe is tried again degraded while parity allows. */
		bool failed_one = false;

		for (int i = 0; i < so->so_nr_sub; i++) {
			int m = so->so_sub_member[i];

			if (so->so_sub[i].br_error && l->l_state[m] != LAYER_MEMBER_FAILED) {
				layer_set_state(l, m, LAYER_MEMBER_FAILED);
				bdev_log("%s member %d failed (%s): running degraded",
					l->l_kind, m, strerror(-so->so_sub[i].br_error));
				failed_one = true;
			}
		}
		if (failed_one && so->so_tries >= 0 && so->so_tries++ < 3) {
			so_run(so);
			return;
		}
		/* A failed write to a member parity still covers leaves the
		 * stripe consistent (parity holds the new data): done. */
		if (failed_one && so->so_tries < 0 &&
		    l->l_nr_bad <= r56_of(l)->nparity)
			err = 0;
		so_finish(so, err);
		return;
	}
	if (so->so_tries < 0) {
		so_finish(so, 0);
		return;
	}
	write_stage(so);
}

/* ---- request entry ----------------------------------------------------- */

/* Hand the request's bytes from cursor @off on to stripe ops; returns the
 * offset reached (less than br_len when ops ran out). */
static uint64_t r56_issue(struct layer *l, struct bdev_req *req, uint64_t off,
			  enum so_kind kind)
{
	struct r56 *r = r56_of(l);
	uint64_t sdata = r->chunk * r->ndata;

	while (off < req->br_len) {
		uint64_t pos = req->br_pos + off, stripe = pos / sdata;
		uint64_t lo = pos % sdata, hi = sdata;
		struct stripe_op *so;
		uint64_t nfull = lo ? 0 : (req->br_len - off) / sdata;
		uint32_t ns = 1;

		if (hi - lo > req->br_len - off)
			hi = lo + (req->br_len - off);
		if (kind == SO_WRITE && nfull > 1 && r->batch_max > 1) {
			ns = nfull < r->batch_max ? (uint32_t)nfull : r->batch_max;
			hi = ns * sdata;
		} else if (kind == SO_ZERO && nfull > 1) {
			ns = nfull < R56_ZERO_BATCH_MAX ? (uint32_t)nfull : R56_ZERO_BATCH_MAX;
			hi = ns * sdata;
		}
		so = so_get(l);
		if (!so)
			break;
		so->so_kind = kind;
		so->so_stripe = stripe;
		so->so_nstripes = ns;
		so->so_lo = lo;
		so->so_hi = hi;
		so->so_tries = 0;
		so->so_has_req = true;
		so->so_loop = req->br_loop;
		so->so_peers = NULL;
		so_set_cols(so);
		bdev_req_child(req, &so->so_req, off, hi - lo, pos, NULL, NULL);
		so->so_vec = so->so_req.br_vec;
		so->so_it = so->so_req.br_iter;
		off += hi - lo;
		so_lock_or_wait(so);
	}
	return off;
}

static struct r56_cursor *cursor_get(struct r56 *r)
{
	struct r56_cursor *c = r->cur_free;

	if (c)
		r->cur_free = c->rc_next;
	else
		c = malloc(sizeof(*c));
	return c;
}

static void r56_defer(struct layer *l, struct bdev_req *req, uint64_t off)
{
	struct r56 *r = r56_of(l);
	struct r56_cursor *c = cursor_get(r);

	if (!c) {
		bdev_req_complete(req, -ENOMEM);
		return;
	}
	c->rc_req = req;
	c->rc_off = off;
	c->rc_next = NULL;
	if (r->cur_tail)
		r->cur_tail->rc_next = c;
	else
		r->cur_head = c;
	r->cur_tail = c;
}

static enum so_kind kind_of(const struct layer *l, const struct bdev_req *req)
{
	if (req->br_op == BDEV_READ)
		return SO_READ;
	(void)l;
	return req->br_op == BDEV_WRITE ? SO_WRITE : SO_ZERO;
}

static void r56_resume(struct layer *l)
{
	struct r56 *r = r56_of(l);

	while (r->cur_head && r->free_ops) {
		struct r56_cursor *c = r->cur_head;
		struct bdev_req *req = c->rc_req;

		c->rc_off = r56_issue(l, req, c->rc_off, kind_of(l, req));
		if (c->rc_off < req->br_len)
			return;
		r->cur_head = c->rc_next;
		if (!r->cur_head)
			r->cur_tail = NULL;
		c->rc_next = r->cur_free;
		r->cur_free = c;
		bdev_req_complete(req, 0); /* the submitter's reference */
	}
}

/* A healthy read failed on a member (now marked failed): read it again
 * through stripe ops, which reconstruct from parity. */
static void healthy_read_end(struct bdev_req *sub)
{
	struct r56_cursor *c = sub->br_private;
	struct layer *l = c->rc_l;
	struct r56 *r = r56_of(l);
	struct bdev_req *req = c->rc_req;
	uint64_t off;

	c->rc_next = r->cur_free;
	r->cur_free = c;
	if (!sub->br_error || l->l_nr_bad > r->nparity || !l->l_nr_bad) {
		bdev_req_complete(req, sub->br_error);
		return;
	}
	off = r->cur_head ? 0 : r56_issue(l, req, 0, SO_READ);
	if (off < req->br_len) {
		r56_defer(l, req, off);
		return;
	}
	bdev_req_complete(req, 0);
}

static void r56_submit(struct bdev *dev, struct bdev_req *req)
{
	struct layer *l = layer_of(dev);
	struct r56 *r = r56_of(l);
	uint64_t off;

	switch (req->br_op) {
	case BDEV_FLUSH:
		layer_submit_all(l, req);
		return;
	case BDEV_READ:
		if (!l->l_nr_bad) {
			struct r56_cursor *c = cursor_get(r);

			if (!c) {
				bdev_req_complete(req, -ENOMEM);
				return;
			}
			c->rc_req = req;
			c->rc_l = l;
			bdev_req_init(&c->rc_sub, BDEV_READ, req->br_pos, req->br_len,
				      req->br_vec, req->br_iter, healthy_read_end, c);
			bdev_req_like(&c->rc_sub, req);
			layer_submit_mapped(l, &c->rc_sub);
			return;
		}
		break;
	default:
		break;
	}
	/* A write or a degraded read always involves several members. */
	l->l_stats.splits++;
	/* Keep request order behind earlier deferred requests. */
	off = r->cur_head ? 0 : r56_issue(l, req, 0, kind_of(l, req));
	if (off < req->br_len) {
		r56_defer(l, req, off);
		return;
	}
	bdev_req_complete(req, 0);
}

/* ---- background: rebuild and scrub ------------------------------------ */

struct r56_sweep {
	struct layer *l;
	struct stripe_op *so; /* its own op: user I/O never starves it */
	enum so_kind kind;
	uint64_t next_stripe;
	int inflight;
	int err;
	void (*done)(struct layer *l, int err);
};

static void sweep_step(struct r56_sweep *sw);

static void sweep_op_done(struct stripe_op *so, int err)
{
	struct r56_sweep *sw = so->so_private;

	sw->inflight--;
	if (err && !sw->err)
		sw->err = err;
	if (sw->kind == SO_REBUILD && !sw->err) {
		struct layer *l = sw->l;
		/* Stripes complete in order (one in flight at a time). */
		l->l_rebuild_pos = (so->so_stripe + 1) * l->l_chunk;
	}
	so_unlock(so);
	sweep_step(sw);
}

static void sweep_step(struct r56_sweep *sw)
{
	struct layer *l = sw->l;
	struct r56 *r = r56_of(l);
	struct stripe_op *so;

	if (sw->inflight)
		return;
	if (sw->err || sw->next_stripe >= r->stripes) {
		void (*done)(struct layer *, int) = sw->done;
		int err = sw->err;

		so_free(sw->so);
		free(sw);
		free(r->scrub_save);
		r->scrub_save = NULL;
		layer_sweep_end(l);
		if (done)
			done(l, err);
		return;
	}
	so = sw->so;
	so->so_kind = sw->kind;
	so->so_stripe = sw->next_stripe++;
	so->so_nstripes = 1;
	so->so_lo = 0;
	so->so_hi = r->chunk * r->ndata;
	so->so_c0 = 0;
	so->so_c1 = r->chunk;
	so->so_tries = 0;
	so->so_has_req = false;
	so->so_loop = l->l_sweep_loop;
	so->so_done = sweep_op_done;
	so->so_private = sw;
	sw->inflight++;
	l->l_sweep_pos = sw->next_stripe;
	so_lock_or_wait(so);
}

/* The level's l_sweep: walk every stripe in the background, rebuilding the
 * members in state rebuilding or checking (repairing) parity; @done at the
 * end.  Returns 0, -EBUSY when a sweep already runs, or -ENOMEM. */
static int r56_sweep(struct layer *l, struct loop *loop, enum layer_sweep_kind kind,
		     void (*done)(struct layer *l, int err))
{
	static const enum so_kind op_of[] = {
		[LAYER_SWEEP_REBUILD] = SO_REBUILD,
		[LAYER_SWEEP_CHECK] = SO_CHECK,
		[LAYER_SWEEP_REPAIR] = SO_REPAIR,
	};
	struct r56 *r = r56_of(l);
	struct r56_sweep *sw;

	if (l->l_sweep_running)
		return -EBUSY;
	sw = calloc(1, sizeof(*sw));
	if (kind != LAYER_SWEEP_REBUILD)
		r->scrub_save = malloc(r->chunk * r->nparity);
	if (!sw || !(sw->so = so_alloc(l)) ||
	    (kind != LAYER_SWEEP_REBUILD && !r->scrub_save)) {
		if (sw && sw->so)
			so_free(sw->so);
		free(sw);
		free(r->scrub_save);
		r->scrub_save = NULL;
		return -ENOMEM;
	}
	sw->l = l;
	sw->kind = op_of[kind];
	sw->done = done;
	layer_sweep_begin(l, loop, kind, r->stripes, r->chunk);
	sweep_step(sw);
	return 0;
}

const struct raid56_stats *raid56_stats(const struct bdev *dev)
{
	return &r56_of(layer_of((struct bdev *)dev))->st;
}

/* ---- creation ------------------------------------------------------------ */

static void r56_free(struct layer *l)
{
	struct r56 *r = r56_of(l);

	if (!r)
		return;
	loop_hook_disarm(&r->unplug);
	free(r->scrub_save);
	while (r->free_ops) {
		struct stripe_op *so = r->free_ops;

		r->free_ops = so->so_next;
		so_free(so);
	}
	while (r->cur_free) {
		struct r56_cursor *c = r->cur_free;

		r->cur_free = c->rc_next;
		free(c);
	}
	free(r);
}

static const struct bdev_ops r56_ops = {
	.submit = r56_submit,
	.destroy = layer_destroy,
};

bool bdev_is_raid56(const struct bdev *dev)
{
	return dev->bd_ops == &r56_ops;
}

int raid56_create(int nparity, struct bdev **members, int nr,
		  uint64_t data_offset, uint64_t chunk,
		  size_t max_io_bytes, uint32_t in_segs, struct bdev **out, char *err, size_t errlen)
{
	uint64_t msize;
	struct layer *l;
	struct r56 *r;

	if (nr < nparity + 2) {
		snprintf(err, errlen, "raid%d needs at least %d members, got %d",
			 nparity == 1 ? 5 : 6, nparity + 2, nr);
		layer_free_members(members, nr);
		return -EINVAL;
	}
	if (layer_check_chunk(members, nr, data_offset, chunk, &msize, err, errlen)) {
		layer_free_members(members, nr);
		return -EINVAL;
	}
	if (layer_create(nparity == 1 ? "raid5" : "raid6", members, nr, chunk,
			 max_io_bytes, in_segs, &r56_ops, &l)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		layer_destroy(&l->l_bdev);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->nparity = nparity;
	r->ndata = nr - nparity;
	r->chunk = chunk;
	r->stripes = msize / chunk;
	r->unplug.lh_fn = r56_unplug;
	r->batch_max = chunk < R56_BATCH_BYTES ? R56_BATCH_BYTES / chunk : 1;
	r->vec_cap = l->l_vec_cap + 2 * r->batch_max;
	r->scratch_cols = r->batch_max * nparity > (uint32_t)nr ?
				  r->batch_max * nparity : (uint32_t)nr;
	/* Bound the ops' scratch to ~64 MiB. */
	r->max_ops = (int)((64ull << 20) / ((uint64_t)r->scratch_cols * chunk));
	if (r->max_ops < 4)
		r->max_ops = 4;
	if (r->max_ops > 256)
		r->max_ops = 256;
	l->l_private = r;
	l->l_free_private = r56_free;
	l->l_sweep = r56_sweep;
	l->l_autofail = true;
	/* Stripe ops work in whole 4k columns, like md's stripe pages. */
	if (l->l_bdev.bd_align < 4096)
		l->l_bdev.bd_align = 4096;
	l->l_member_size = msize;
	l->l_data_offset = data_offset;
	l->l_bdev.bd_size = msize / chunk * chunk * r->ndata;
	l->l_map = r56_map;
	*out = &l->l_bdev;
	return 0;
}
