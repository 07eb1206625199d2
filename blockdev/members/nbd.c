/* nbd: a member served by an NBD server, through libnbd's asynchronous API
 * driven from the request's event loop (io_uring polls on each socket). */
#include "blockdev/members/nbd.h"
#include "blockdev/core/log.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static struct nbdm_dev *to_nbd(struct bdev *dev)
{
	return (struct nbdm_dev *)dev;
}

static void nbdm_free(struct nbdm_dev *nd)
{
	/* A reconnected handle the loop had no time to take, and one made
	 * before a failed start-up handed it to a part. */
	for (int i = 0; i < nd->nr_conns; i++) {
		nbd_close(nd->conns[i].new_h);
		nbd_close(nd->conns[i].h);
	}
	for (int i = 0; i < nd->nr_parts; i++) {
		if (nd->parts[i].efd >= 0)
			close(nd->parts[i].efd);
		free(nd->parts[i].cmds);
	}
	free(nd->nd_bdev.bd_name);
	free(nd);
}

void nbdm_put(struct nbdm_dev *nd)
{
	if (!__atomic_sub_fetch(&nd->refs, 1, __ATOMIC_ACQ_REL))
		nbdm_free(nd);
}

static void part_start_waiting(struct nbdm_part *p);

/* The length of a ranged op's step that starts with @left bytes to go. */
static uint64_t range_step(uint64_t left)
{
	return left < NBD_MAX_RANGE ? left : NBD_MAX_RANGE;
}

static int cmd_callback(void *user_data, int *error)
{
	struct nbdm_cmd *cmd = user_data;

	/* libnbd's lock is held here: no nbd_* call, just note it.  A
	 * connection gone is EIO, as for every member. */
	cmd->err = !*error				     ? 0 :
		   *error == ENOTCONN || *error == ESHUTDOWN ? -EIO :
							       -*error;
	cmd->done = true;
	fifo_push(&cmd->conn->part->done, cmd, next);
	return 1;
}

static nbd_completion_callback cb_of(struct nbdm_cmd *cmd)
{
	return (nbd_completion_callback){ .callback = cmd_callback,
					  .user_data = cmd };
}

/* Issue @cmd's next piece on its connection; on refusal it is done. */
static void cmd_issue(struct nbdm_cmd *cmd, enum bdev_op op, void *buf,
		      uint64_t len, uint64_t pos)
{
	struct nbdm_conn *c = cmd->conn;
	int64_t r = -1;

	cmd->done = false;
	if (c->dead) {
		cmd->err = -EIO;
		cmd->done = true;
		fifo_push(&c->part->done, cmd, next);
		return;
	}
	switch (op) {
	case BDEV_READ:
		r = nbd_aio_pread(c->h, buf, len, pos, cb_of(cmd), 0);
		break;
	case BDEV_WRITE:
		r = nbd_aio_pwrite(c->h, buf, len, pos, cb_of(cmd), 0);
		break;
	case BDEV_FLUSH:
		r = nbd_aio_flush(c->h, cb_of(cmd), 0);
		break;
	case BDEV_DISCARD:
		/* A discard here must read back as zeroes (a hole punched in
		 * the disk file): NBD's TRIM promises nothing of the sort,
		 * WRITE_ZEROES does, and may trim to do it. */
		r = nbd_aio_zero(c->h, len, pos, cb_of(cmd), 0);
		break;
	case BDEV_ZERO:
		/* FALLOC_FL_ZERO_RANGE keeps the blocks allocated.  No
		 * FAST_ZERO: that would turn a slow zeroing into a failure. */
		r = nbd_aio_zero(c->h, len, pos, cb_of(cmd),
				 LIBNBD_CMD_FLAG_NO_HOLE);
		break;
	default:
		break;
	}
	if (r >= 0) {
		cmd->sent = true;
		c->inflight++;
		bdev_stat_add(&c->part->st_cmds, 1);
		return;
	}
	/* Refused before it was sent: the callback will not run. */
	cmd->err = nbd_get_errno() ? -nbd_get_errno() : -EIO;
	cmd->done = true;
	fifo_push(&c->part->done, cmd, next);
	if (nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h))
		nbdm_conn_kill(c, nbdm_why("closed"));
}

static void cmd_put(struct nbdm_part *p, struct nbdm_cmd *cmd)
{
	cmd->req = NULL;
	cmd->next = p->free;
	p->free = cmd;
	p->nr_free++;
}

/* Finish what libnbd called back, outside its lock; what they complete
 * may submit to this device again, which only queues more here. */
void nbdm_part_drain(struct nbdm_part *p)
{
	struct nbdm_cmd *cmd;

	if (p->draining)
		return;
	p->draining = true;
	while ((cmd = fifo_pop(&p->done, next))) {
		struct bdev_req *req = cmd->req;
		struct nbdm_conn *c = cmd->conn;

		if (cmd->sent) {
			cmd->sent = false;
			c->inflight--;
		}
		if (!cmd->err && cmd->left && c->dead)
			/* The rest of the range was never sent. */
			cmd->err = -EIO;
		if (!cmd->err && cmd->left) {
			/* A ranged op's next step. */
			uint64_t n = range_step(cmd->left);

			cmd->pos += n;
			cmd->left -= n;
			if (cmd->left) {
				/* timeout= holds for each step. */
				cmd->start_ns = loop_now_ns();
				cmd_issue(cmd, req->br_op, NULL,
					  range_step(cmd->left), cmd->pos);
				nbdm_conn_arm(c);
				continue;
			}
		}
		bdev_stat_leave(&p->st_inflight);
		cmd_put(p, cmd);
		bdev_req_complete(req, cmd->err);
	}
	p->draining = false;
	part_start_waiting(p);
}

/* The part's live connection with the fewest commands in flight. */
static struct nbdm_conn *pick_conn(struct nbdm_part *p)
{
	struct nbdm_conn *best = NULL;

	for (int i = 0; i < p->nr_conns; i++)
		if (!p->conns[i]->dead &&
		    (!best || p->conns[i]->inflight < best->inflight))
			best = p->conns[i];
	return best;
}

/* Command slots @req takes: one per run of memory and payload limit. */
static int cmds_needed(struct nbdm_dev *nd, const struct bdev_req *req)
{
	struct pvec_iter it = req->br_iter;
	struct pvec cur;
	int n = 0;

	if (req->br_op != BDEV_READ && req->br_op != BDEV_WRITE)
		return 1;
	pvec_for_each(cur, req->br_vec, it)
		n += (int)((cur.pv_len + nd->max_payload - 1) /
			   nd->max_payload);
	return n;
}

static struct nbdm_cmd *cmd_get(struct nbdm_part *p, struct nbdm_conn *c,
				struct bdev_req *req)
{
	struct nbdm_cmd *cmd = p->free;

	p->free = cmd->next;
	p->nr_free--;
	cmd->req = req;
	cmd->conn = c;
	cmd->err = 0;
	cmd->left = 0;
	cmd->start_ns = loop_now_ns();
	bdev_stat_enter(&p->st_inflight, &p->st_inflight_max);
	return cmd;
}

static void part_submit(struct nbdm_part *p, struct bdev_req *req, int nr);

static void handed_run(struct loop_op *op, int res, unsigned flags)
{
	struct bdev_req *req = container_of(op, struct bdev_req, br_loop_op);
	struct nbdm_dev *nd = (struct nbdm_dev *)req->br_dev;
	struct nbdm_part *p = &nd->parts[req->br_loop->lp_id % nd->nr_parts];
	int nr = cmds_needed(nd, req);
	struct bdev_stats *st;

	(void)res;
	(void)flags;
	st = bdev_stats_of(&nd->nd_bdev, req->br_loop);
	bdev_stat_enter(&st->inflight, &st->inflight_max);
	if (nr > p->nr_cmds)
		bdev_req_complete(req, -EINVAL);
	else
		part_submit(p, req, nr);
}

/*
 * A part whose connections are all down hands its requests to a part
 * that has one, as long as that part's loop is known (it has served a
 * request), and once only; the request comes back at completion
 * (br_home).  It is in flight on the other loop's stats shard meanwhile,
 * as each loop writes only its own shard, and on this loop's until it is
 * back (br_home_counted): counted somewhere all the way, so a replace
 * never sees the device idle while the message travels.
 */
static bool hand_over(struct nbdm_dev *nd, struct nbdm_part *from,
		      struct bdev_req *req)
{
	if (req->br_home)
		return false;
	for (int i = 0; i < nd->nr_parts; i++) {
		struct nbdm_part *to = &nd->parts[i];
		struct loop *lp = __atomic_load_n(&to->loop, __ATOMIC_ACQUIRE);

		if (to == from || !lp ||
		    !__atomic_load_n(&to->nr_live, __ATOMIC_RELAXED))
			continue;
		bdev_stat_add(&from->st_handed, 1);
		req->br_home_counted = true;
		req->br_home = req->br_loop;
		req->br_loop = lp;
		req->br_loop_op.lo_done = handed_run;
		loop_msg(req->br_home, lp, &req->br_loop_op);
		return true;
	}
	return false;
}

/* Start @req on @p, whose @nr command slots are free. */
static void part_start(struct nbdm_part *p, struct bdev_req *req, int nr)
{
	struct nbdm_dev *nd = p->nd;
	struct nbdm_conn *c = pick_conn(p);
	struct nbdm_cmd *cmd;

	if (!c) {
		if (!hand_over(nd, p, req))
			bdev_req_complete(req, -EIO);
		return;
	}
	if (nd->timeout_ns && !p->timer.lh_armed)
		loop_hook_arm_at(p->loop, &p->timer,
				 loop_now_ns() + nd->timeout_ns);
	if (req->br_op == BDEV_READ || req->br_op == BDEV_WRITE) {
		struct pvec_iter it = req->br_iter;
		uint64_t pos = req->br_pos;
		struct pvec cur;

		/* Each command completes one reference of @req's. */
		req->br_pending += nr - 1;
		pvec_for_each(cur, req->br_vec, it) {
			for (uint64_t off = 0; off < cur.pv_len;) {
				uint64_t n = cur.pv_len - off;

				if (n > nd->max_payload)
					n = nd->max_payload;
				cmd = cmd_get(p, c, req);
				cmd_issue(cmd, req->br_op,
					  pvec_addr(&cur) + off, n, pos);
				off += n;
				pos += n;
			}
		}
	} else {
		cmd = cmd_get(p, c, req);
		cmd->pos = req->br_pos;
		cmd->left = req->br_op == BDEV_FLUSH ? 0 : req->br_len;
		cmd_issue(cmd, req->br_op, NULL, range_step(req->br_len),
			  req->br_pos);
	}
	nbdm_conn_arm(c);
	nbdm_part_drain(p);
}

static void part_start_waiting(struct nbdm_part *p)
{
	while (!fifo_empty(&p->waiting)) {
		struct bdev_req *req = p->waiting.head;
		int nr = cmds_needed(p->nd, req);

		if (nr > p->nr_free)
			return;
		fifo_pop(&p->waiting, br_qnext);
		part_start(p, req, nr);
	}
}

/* On @p's loop: queue @req (@nr slots) or start it. */
static void part_submit(struct nbdm_part *p, struct bdev_req *req, int nr)
{
	if (!fifo_empty(&p->waiting) || nr > p->nr_free) {
		fifo_push(&p->waiting, req, br_qnext);
		return;
	}
	part_start(p, req, nr);
}

/* @p's first request: it runs on @lp from now on, and polls its eventfd. */
static void part_adopt(struct nbdm_part *p, struct loop *lp)
{
	__atomic_store_n(&p->loop, lp, __ATOMIC_RELEASE);
	nbdm_poll_arm(&p->pefd, POLLIN);
	for (int i = 0; i < p->nr_conns; i++) {
		struct nbdm_conn *c = p->conns[i];

		if (!c->dead)
			nbdm_conn_arm(c);
		else if (!c->reconnecting)
			/* Lost before nbdm_split() moved it here. */
			nbdm_reconnect_later(c);
	}
}

static void nbdm_submit(struct bdev *dev, struct bdev_req *req)
{
	struct nbdm_dev *nd = to_nbd(dev);
	struct nbdm_part *p;
	int nr;

	/* Its sockets are polled on the request's loop, the one its part
	 * runs on: with one part, one loop owns the whole device
	 * (bdev_tree_share()); split, part i is loop i's. */
	if (!req->br_loop) {
		bdev_req_complete(req, -EINVAL);
		return;
	}
	p = &nd->parts[req->br_loop->lp_id % nd->nr_parts];
	if (!p->loop)
		part_adopt(p, req->br_loop);
	if (p->loop != req->br_loop) {
		bdev_req_complete(req, -EINVAL);
		return;
	}
	/* A server without FLUSH has no write cache to flush (the kernel's
	 * nbd sends none then either); without WRITE_ZEROES there is no
	 * discard or zeroing that reads back zeroes. */
	if ((req->br_op == BDEV_FLUSH && !nd->can_flush) ||
	    ((req->br_op == BDEV_DISCARD || req->br_op == BDEV_ZERO) &&
	     !nd->can_zero)) {
		bdev_req_complete(req,
				  req->br_op == BDEV_FLUSH ? 0 : -EOPNOTSUPP);
		return;
	}
	nr = cmds_needed(nd, req);
	if (!nr) {
		bdev_req_complete(req, 0); /* nothing to move */
		return;
	}
	if (nr > p->nr_cmds) {
		bdev_req_complete(req, -EINVAL);
		return;
	}
	part_submit(p, req, nr);
}

/* A command older than timeout= takes its connection down with it: the
 * server may still answer into the buffer, so only closing it makes the
 * buffer ours again. */
static void timer_run(struct loop_hook *h)
{
	struct nbdm_part *p = container_of(h, struct nbdm_part, timer);
	uint64_t now = loop_now_ns(), oldest = 0, tmo = p->nd->timeout_ns;
	char why[64];

	for (int i = 0; i < p->nr_cmds; i++) {
		struct nbdm_cmd *cmd = &p->cmds[i];

		if (!cmd->req || cmd->done || cmd->conn->dead)
			continue;
		if (now - cmd->start_ns >= tmo) {
			bdev_stat_add(&p->st_timeouts, 1);
			snprintf(why, sizeof(why),
				 "a request took more than timeout=%" PRIu64
				 "ms",
				 tmo / 1000000);
			nbdm_conn_kill(cmd->conn, why);
			continue;
		}
		if (!oldest || cmd->start_ns < oldest)
			oldest = cmd->start_ns;
	}
	if (oldest)
		loop_hook_arm_at(p->loop, h, oldest + tmo);
	nbdm_part_drain(p);
}

void nbdm_part_wake(struct nbdm_part *p)
{
	uint64_t one = 1;

	if (write(p->efd, &one, sizeof(one)) < 0)
		bdev_log("%s: eventfd: %s", p->nd->nd_bdev.bd_name,
			 strerror(errno));
}

/* Close @p's hooks and connections, on its loop or with that loop gone.
 * The polls let go once they return (at exit the ring goes first, and
 * what they hold goes with the process). */
void nbdm_part_close(struct nbdm_part *p)
{
	loop_hook_disarm(&p->timer);
	loop_hook_disarm(&p->retry);
	for (int i = 0; i < p->nr_conns; i++)
		nbdm_conn_close(p->conns[i]);
	if (p->pefd.armed) {
		loop_flush(p->pefd.np_loop);
		nbdm_part_wake(p);
	}
}

void nbdm_destroy(struct bdev *dev)
{
	struct nbdm_dev *nd = to_nbd(dev);

	__atomic_store_n(&nd->dying, true, __ATOMIC_RELEASE);
	for (int i = 0; i < nd->nr_parts; i++) {
		struct nbdm_part *p = &nd->parts[i];
		struct loop *lp = __atomic_load_n(&p->loop, __ATOMIC_ACQUIRE);

		if (!lp || loop_is_mine(lp))
			nbdm_part_close(p);
		else
			/* Its loop runs on another thread: its eventfd's poll
			 * sees dying and closes it there. */
			nbdm_part_wake(p);
	}
	nbdm_put(nd);
}

const struct bdev_ops nbdm_ops = {
	.submit = nbdm_submit,
	.destroy = nbdm_destroy,
};

int nbdm_part_init(struct nbdm_dev *nd, int i)
{
	struct nbdm_part *p = &nd->parts[i];

	p->nd = nd;
	p->timer.lh_fn = timer_run;
	p->retry.lh_fn = nbdm_reconnect_run;
	p->pefd.part = p;
	p->pefd.op.lo_done = nbdm_poll_done;
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->efd < 0)
		return -errno;
	nd->nr_parts = i + 1;
	return 0;
}

int nbdm_init(struct nbdm_dev *nd)
{
	nd->refs = 1;
	for (int i = 0; i < NBD_MAX_CONNS; i++) {
		struct nbdm_conn *c = &nd->conns[i];

		nd->parts[i].efd = -1;
		c->part = c->pin.part = c->pout.part = &nd->parts[0];
		c->fd = -1;
		c->dead = true;
		c->pin.conn = c->pout.conn = c;
		c->pin.op.lo_done = c->pout.op.lo_done = nbdm_poll_done;
	}
	return nbdm_part_init(nd, 0);
}

int nbdm_part_cmds(struct nbdm_part *p, int nr)
{
	free(p->cmds);
	p->free = NULL;
	p->nr_free = 0;
	p->cmds = calloc(nr, sizeof(*p->cmds));
	if (!p->cmds)
		return -ENOMEM;
	p->nr_cmds = nr;
	for (int j = nr - 1; j >= 0; j--)
		cmd_put(p, &p->cmds[j]);
	return 0;
}
