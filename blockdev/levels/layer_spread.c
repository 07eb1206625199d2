/* layer_spread: a level with state on the I/O path (raid1, raid5/6) on
 * every loop, gathered on loop 0 for what must run on one and spread again. */
#include "blockdev/levels/layer.h"

/* How often loop 0 looks whether the other loops have drained. */
#define LAYER_SPREAD_POLL_NS 200000ull

/* Whether reads may run where they come from now; stored before the
 * caller reads the other loops' in-flight counts (a gather for a sweep
 * then waits for the reads that saw it true).  Never while it gathers:
 * the gather waits for the other loops' requests to drain, and a loop that
 * kept reading would keep it gathering, and every write held, for ever. */
static bool reads_update(struct layer *l)
{
	struct layer_spread *s = &l->l_spread;
	bool stay = s->ls_ops->reads_stay &&
		    !(s->ls_why & LAYER_GATHER_SWEEP) &&
		    s->ls_mode != LAYER_GATHERING;

	__atomic_store_n(&l->l_bdev.bd_reads_stay, stay, __ATOMIC_SEQ_CST);
	return stay;
}

/* Loop 0 takes the level over or gives it back (its hook): once the other
 * loops' requests have drained, or the level has settled.  The requests
 * held meanwhile go first, then what waited for the gather (a sweep,
 * which may end, and scatter again, inside it). */
static void spread_move(struct loop_hook *h)
{
	struct layer *l = container_of(h, struct layer, l_spread.ls_hook);
	struct layer_spread *s = &l->l_spread;
	const struct layer_spread_ops *o = s->ls_ops;
	void (*then[2])(void *) = { NULL, NULL };
	void *arg[2] = { s->ls_then_arg[0], s->ls_then_arg[1] };
	struct bdev_req *req;

	if (s->ls_mode == LAYER_GATHERING) {
		if (bdev_others_inflight(&l->l_bdev, h->lh_loop) ||
		    (o->drained && !o->drained(l)))
			goto later;
		s->ls_mode = LAYER_GATHERED;
		reads_update(l);
		if (o->gathered)
			o->gathered(l);
		for (int k = 0; k < 2; k++) {
			then[k] = s->ls_then[k];
			s->ls_then[k] = NULL;
		}
	} else if (s->ls_mode == LAYER_SCATTERING) {
		if (o->settled && !o->settled(l))
			goto later;
		s->ls_mode = LAYER_SPREAD;
		if (o->scattered)
			o->scattered(l);
		bdev_owner_give_up(&l->l_bdev);
	} else {
		return;
	}
	req = fifo_take(&s->ls_held);
	while (req) {
		struct bdev_req *next = req->br_qnext;

		o->go(l, req);
		req = next;
	}
	for (int k = 0; k < 2; k++)
		if (then[k])
			then[k](arg[k]);
	/* Every reason was dropped while it gathered. */
	if (s->ls_mode == LAYER_GATHERED && !s->ls_why)
		layer_scatter(l, h->lh_loop, 0);
	return;
later:
	loop_hook_arm_at(h->lh_loop, h, loop_now_ns() + LAYER_SPREAD_POLL_NS);
}

void layer_spread_start(struct layer *l, const struct layer_spread_ops *ops)
{
	struct layer_spread *s = &l->l_spread;

	s->ls_ops = ops;
	s->ls_hook.lh_fn = spread_move;
	if (l->l_md && !l->l_bdev.bd_read_only)
		s->ls_why |= LAYER_GATHER_MD;
	reads_update(l);
	l->l_bdev.bd_owner_moves = true;
	if (!s->ls_why) {
		s->ls_mode = LAYER_SPREAD;
		return;
	}
	s->ls_mode = LAYER_GATHERED;
	if (ops->gathered)
		ops->gathered(l);
	bdev_owner_take(&l->l_bdev, loop_by_id(0));
}

void layer_gather(struct layer *l, struct loop *loop, unsigned why,
		  void (*then)(void *), void *arg)
{
	struct layer_spread *s = &l->l_spread;
	int k = why == LAYER_GATHER_MD;
	bool stayed = s->ls_ops && __atomic_load_n(&l->l_bdev.bd_reads_stay,
						   __ATOMIC_RELAXED);
	bool stays, spread;

	s->ls_why |= why;
	stays = s->ls_ops && reads_update(l);
	/* Gathered already, unless reads that ran on other loops must now
	 * drain too (a sweep comes while md alone gathered it). */
	if (s->ls_mode == LAYER_ONE ||
	    (s->ls_mode == LAYER_GATHERED && (stays || !stayed))) {
		if (then)
			then(arg);
		return;
	}
	s->ls_then[k] = then;
	s->ls_then_arg[k] = arg;
	spread = s->ls_mode == LAYER_SPREAD;
	s->ls_mode = LAYER_GATHERING;
	if (s->ls_ops)
		reads_update(l); /* false: before the owner, which reads see */
	if (spread)
		bdev_owner_take(&l->l_bdev, loop);
	loop_hook_arm(loop, &s->ls_hook);
}

void layer_scatter(struct layer *l, struct loop *loop, unsigned why)
{
	struct layer_spread *s = &l->l_spread;

	s->ls_why &= ~why;
	if (s->ls_ops)
		reads_update(l);
	if (s->ls_mode != LAYER_GATHERED || s->ls_why)
		return;
	s->ls_mode = LAYER_SCATTERING;
	loop_hook_arm(loop, &s->ls_hook);
}

bool layer_spread_hold(struct layer *l, struct bdev_req *req)
{
	struct layer_spread *s = &l->l_spread;

	/* Another loop gets here only while the level is spread (or before
	 * it saw loop 0 take it over, which then waits for it).  A request
	 * with no loop is a unit test's, on one thread. */
	if (!req->br_loop || loop_id(req->br_loop) ||
	    (s->ls_mode != LAYER_GATHERING && s->ls_mode != LAYER_SCATTERING))
		return false;
	fifo_push(&s->ls_held, req, br_qnext);
	return true;
}

int layer_loops(const struct layer *l)
{
	int n = l->l_bdev.bd_nr_shards;

	if (n < 2 || (layer_spreads(l) && l->l_spread.ls_mode != LAYER_SPREAD))
		return 1;
	return n;
}

int layer_spread_max_loops(const struct bdev *dev)
{
	(void)dev;
	return LOOP_MAX;
}
