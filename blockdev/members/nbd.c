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
#include <sys/socket.h>
#include <unistd.h>

static struct nbdm_dev *to_nbd(struct bdev *dev)
{
	return (struct nbdm_dev *)dev;
}

static void nbdm_free(struct nbdm_dev *nd)
{
	/* A reconnected handle the loop had no time to take. */
	for (int i = 0; i < nd->nr_conns; i++)
		nbd_close(nd->conns[i].new_h);
	if (nd->efd >= 0)
		close(nd->efd);
	free(nd->cmds);
	free(nd->nd_bdev.bd_name);
	free(nd);
}

void nbdm_put(struct nbdm_dev *nd)
{
	if (!__atomic_sub_fetch(&nd->refs, 1, __ATOMIC_ACQ_REL))
		nbdm_free(nd);
}

static void conn_arm(struct nbdm_conn *c, struct loop *lp);
static void nbdm_drain(struct nbdm_dev *nd);
static void nbdm_start_waiting(struct nbdm_dev *nd);

/* Shut @c's socket and close its handle.  A poll on it may still wait in
 * the SQ: submitted first, it holds this socket, which the shutdown wakes,
 * and not whatever file takes the number next. */
static void conn_close(struct nbdm_conn *c)
{
	struct nbdm_poll *p = c->pin.armed ? &c->pin : &c->pout;

	if (p->armed)
		loop_flush(p->np_loop);
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	nbd_close(c->h);
	c->h = NULL;
	c->fd = -1;
}

/* Mark @c dead and close it: after nbd_close() libnbd touches none of its
 * commands' buffers again, so they can be failed and reused.  It is
 * connected again later, from @lp. */
static void conn_kill(struct nbdm_conn *c, const char *why, struct loop *lp)
{
	struct nbdm_dev *nd = c->nd;

	if (c->dead)
		return;
	c->dead = true;
	__atomic_store_n(&nd->nr_live, nd->nr_live - 1, __ATOMIC_RELAXED);
	bdev_stat_add(&nd->st_conns_lost, 1);
	bdev_log("%s: connection %d lost: %s%s", nd->nd_bdev.bd_name,
		 (int)(c - nd->conns), why,
		 nd->nr_live ? "" :
			       "; the member fails its I/O until it is back");
	conn_close(c);
	for (int i = 0; i < nd->nr_cmds; i++) {
		struct nbdm_cmd *cmd = &nd->cmds[i];

		if (cmd->req && cmd->conn == c && !cmd->done) {
			cmd->err = -EIO;
			cmd->done = true;
			fifo_push(&nd->done, cmd, next);
		}
	}
	nbdm_reconnect_later(c, lp);
}

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
	fifo_push(&cmd->conn->nd->done, cmd, next);
	return 1;
}

static nbd_completion_callback cb_of(struct nbdm_cmd *cmd)
{
	return (nbd_completion_callback){ .callback = cmd_callback,
					  .user_data = cmd };
}

/* Issue @cmd's next piece on its connection; on refusal it is done. */
static void cmd_issue(struct nbdm_cmd *cmd, enum bdev_op op, void *buf,
		      uint64_t len, uint64_t pos, struct loop *lp)
{
	struct nbdm_conn *c = cmd->conn;
	int64_t r = -1;

	cmd->done = false;
	if (c->dead) {
		cmd->err = -EIO;
		cmd->done = true;
		fifo_push(&c->nd->done, cmd, next);
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
		bdev_stat_add(&c->nd->st_cmds, 1);
		return;
	}
	/* Refused before it was sent: the callback will not run. */
	cmd->err = nbd_get_errno() ? -nbd_get_errno() : -EIO;
	cmd->done = true;
	fifo_push(&c->nd->done, cmd, next);
	if (nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h))
		conn_kill(c, nbdm_why("closed"), lp);
}

static void cmd_put(struct nbdm_dev *nd, struct nbdm_cmd *cmd)
{
	cmd->req = NULL;
	cmd->next = nd->free;
	nd->free = cmd;
	nd->nr_free++;
}

/* Finish what libnbd called back, outside its lock; what they complete
 * may submit to this device again, which only queues more here. */
static void nbdm_drain(struct nbdm_dev *nd)
{
	struct nbdm_cmd *cmd;

	if (nd->draining)
		return;
	nd->draining = true;
	while ((cmd = fifo_pop(&nd->done, next))) {
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
					  range_step(cmd->left), cmd->pos,
					  req->br_loop);
				conn_arm(c, req->br_loop);
				continue;
			}
		}
		__atomic_store_n(&nd->st_inflight, nd->st_inflight - 1,
				 __ATOMIC_RELAXED);
		cmd_put(nd, cmd);
		bdev_req_complete(req, cmd->err);
	}
	nd->draining = false;
	nbdm_start_waiting(nd);
}

static void poll_done(struct loop_op *op, int res, unsigned flags);

void nbdm_poll_arm(struct nbdm_poll *p, unsigned mask, struct loop *lp)
{
	struct io_uring_sqe *sqe = loop_sqe(lp, &p->op);

	io_uring_prep_poll_add(sqe, p->conn ? p->conn->fd : p->nd->efd, mask);
	p->np_loop = lp;
	p->np_gen = p->conn ? p->conn->gen : 0;
	p->armed = true;
	__atomic_add_fetch(&p->nd->refs, 1, __ATOMIC_RELAXED);
}

/* Poll for what libnbd waits on: replies (always, while connected) and
 * room to send when a request did not fit in the socket. */
static void conn_arm(struct nbdm_conn *c, struct loop *lp)
{
	unsigned dir;

	if (c->dead)
		return;
	dir = nbd_aio_get_direction(c->h);
	if (!dir && (nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h))) {
		/* libnbd queues a command even when sending it kills the
		 * handle: a handle waiting for nothing may be dead. */
		conn_kill(c, nbdm_why("closed"), lp);
		return;
	}
	if ((dir & LIBNBD_AIO_DIRECTION_READ) && !c->pin.armed)
		nbdm_poll_arm(&c->pin, POLLIN, lp);
	if ((dir & LIBNBD_AIO_DIRECTION_WRITE) && !c->pout.armed)
		nbdm_poll_arm(&c->pout, POLLOUT, lp);
}

/*
 * Whether a reply is there to read now.  The poll that said so may be
 * stale: a command issued since can have run libnbd's state machine and
 * read it.  Told "readable" when idle, libnbd 1.14 leaves READY to wait
 * for a reply, and commands issued meanwhile queue behind it unsent: with
 * none on the wire the connection stops for good (seen here under raid1
 * with conns=2 until timeout= failed it).
 */
static bool sock_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

static void poll_done(struct loop_op *op, int res, unsigned flags)
{
	struct nbdm_poll *p = container_of(op, struct nbdm_poll, op);
	struct nbdm_conn *c = p->conn;
	struct nbdm_dev *nd = p->nd;
	struct loop *lp = p->np_loop;
	int r = 0;

	(void)flags;
	p->armed = false;
	if (__atomic_load_n(&nd->dying, __ATOMIC_ACQUIRE))
		goto out;
	if (!c) {
		nbdm_reconnect_done(nd, lp);
		goto out;
	}
	if (c->dead || p->np_gen != c->gen) {
		/* A poll of a handle closed since: poll the new one. */
		conn_arm(c, lp);
		goto out;
	}
	if (res < 0) {
		conn_kill(c, strerror(-res), lp);
	} else if (p == &c->pin) {
		if ((nbd_aio_get_direction(c->h) & LIBNBD_AIO_DIRECTION_READ) &&
		    sock_readable(c->fd))
			r = nbd_aio_notify_read(c->h);
	} else if (nbd_aio_get_direction(c->h) & LIBNBD_AIO_DIRECTION_WRITE) {
		r = nbd_aio_notify_write(c->h);
	}
	if (!c->dead &&
	    (r < 0 || nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h)))
		conn_kill(c, nbdm_why("the server closed it"), lp);
	conn_arm(c, lp);
	nbdm_drain(nd);
out:
	nbdm_put(nd);
}

/* The live connection with the fewest commands in flight. */
static struct nbdm_conn *pick_conn(struct nbdm_dev *nd)
{
	struct nbdm_conn *best = NULL;

	for (int i = 0; i < nd->nr_conns; i++)
		if (!nd->conns[i].dead &&
		    (!best || nd->conns[i].inflight < best->inflight))
			best = &nd->conns[i];
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

static struct nbdm_cmd *cmd_get(struct nbdm_dev *nd, struct nbdm_conn *c,
				struct bdev_req *req)
{
	struct nbdm_cmd *cmd = nd->free;

	nd->free = cmd->next;
	nd->nr_free--;
	cmd->req = req;
	cmd->conn = c;
	cmd->err = 0;
	cmd->left = 0;
	cmd->start_ns = loop_now_ns();
	bdev_stat_add(&nd->st_inflight, 1);
	if (nd->st_inflight > nd->st_inflight_max)
		__atomic_store_n(&nd->st_inflight_max, nd->st_inflight,
				 __ATOMIC_RELAXED);
	return cmd;
}

/* Start @req, whose @nr command slots are free. */
static void nbdm_start(struct nbdm_dev *nd, struct bdev_req *req, int nr)
{
	struct nbdm_conn *c = pick_conn(nd);
	struct nbdm_cmd *cmd;

	if (!c) {
		bdev_req_complete(req, -EIO);
		return;
	}
	if (nd->timeout_ns && !nd->timer.lh_armed)
		loop_hook_arm_at(req->br_loop, &nd->timer,
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
				cmd = cmd_get(nd, c, req);
				cmd_issue(cmd, req->br_op,
					  pvec_addr(&cur) + off, n, pos,
					  req->br_loop);
				off += n;
				pos += n;
			}
		}
	} else {
		cmd = cmd_get(nd, c, req);
		cmd->pos = req->br_pos;
		cmd->left = req->br_op == BDEV_FLUSH ? 0 : req->br_len;
		cmd_issue(cmd, req->br_op, NULL, range_step(req->br_len),
			  req->br_pos, req->br_loop);
	}
	conn_arm(c, req->br_loop);
	nbdm_drain(nd);
}

static void nbdm_start_waiting(struct nbdm_dev *nd)
{
	while (!fifo_empty(&nd->waiting)) {
		struct bdev_req *req = nd->waiting.head;
		int nr = cmds_needed(nd, req);

		if (nr > nd->nr_free)
			return;
		fifo_pop(&nd->waiting, br_qnext);
		nbdm_start(nd, req, nr);
	}
}

static void nbdm_submit(struct bdev *dev, struct bdev_req *req)
{
	struct nbdm_dev *nd = to_nbd(dev);
	int nr;

	if (!req->br_loop) {
		/* Its sockets are polled on the request's loop.  The device
		 * keeps state, so with several loops it is owned by one
		 * (bdev_tree_share()) and every request comes from there. */
		bdev_req_complete(req, -EINVAL);
		return;
	}
	if (!nd->nr_live) {
		bdev_req_complete(req, -EIO);
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
	if (nr > nd->nr_cmds) {
		bdev_req_complete(req, -EINVAL);
		return;
	}
	if (!fifo_empty(&nd->waiting) || nr > nd->nr_free) {
		fifo_push(&nd->waiting, req, br_qnext);
		return;
	}
	nbdm_start(nd, req, nr);
}

/* A command older than timeout= takes its connection down with it: the
 * server may still answer into the buffer, so only closing it makes the
 * buffer ours again. */
static void timer_run(struct loop_hook *h)
{
	struct nbdm_dev *nd = container_of(h, struct nbdm_dev, timer);
	uint64_t now = loop_now_ns(), oldest = 0;
	char why[64];

	for (int i = 0; i < nd->nr_cmds; i++) {
		struct nbdm_cmd *cmd = &nd->cmds[i];

		if (!cmd->req || cmd->done || cmd->conn->dead)
			continue;
		if (now - cmd->start_ns >= nd->timeout_ns) {
			bdev_stat_add(&nd->st_timeouts, 1);
			snprintf(why, sizeof(why),
				 "a request took more than timeout=%" PRIu64
				 "ms",
				 nd->timeout_ns / 1000000);
			conn_kill(cmd->conn, why, h->lh_loop);
			continue;
		}
		if (!oldest || cmd->start_ns < oldest)
			oldest = cmd->start_ns;
	}
	if (oldest)
		loop_hook_arm_at(h->lh_loop, h, oldest + nd->timeout_ns);
	nbdm_drain(nd);
}

void nbdm_destroy(struct bdev *dev)
{
	struct nbdm_dev *nd = to_nbd(dev);
	uint64_t one = 1;

	__atomic_store_n(&nd->dying, true, __ATOMIC_RELEASE);
	loop_hook_disarm(&nd->timer);
	loop_hook_disarm(&nd->retry);
	/* The polls let go once they return (at exit the ring goes first,
	 * and what they hold goes with the process). */
	for (int i = 0; i < nd->nr_conns; i++)
		conn_close(&nd->conns[i]);
	if (nd->pefd.armed)
		loop_flush(nd->pefd.np_loop);
	if (nd->pefd.armed && write(nd->efd, &one, sizeof(one)) < 0)
		bdev_log("%s: eventfd: %s", dev->bd_name, strerror(errno));
	nbdm_put(nd);
}

const struct bdev_ops nbdm_ops = {
	.submit = nbdm_submit,
	.destroy = nbdm_destroy,
};

void nbdm_init(struct nbdm_dev *nd)
{
	nd->refs = 1;
	nd->efd = -1;
	nd->timer.lh_fn = timer_run;
	nd->retry.lh_fn = nbdm_reconnect_run;
	nd->pefd.nd = nd;
	nd->pefd.op.lo_done = poll_done;
	for (int i = 0; i < NBD_MAX_CONNS; i++) {
		struct nbdm_conn *c = &nd->conns[i];

		c->nd = nd;
		c->fd = -1;
		c->dead = true;
		c->pin.nd = c->pout.nd = nd;
		c->pin.conn = c->pout.conn = c;
		c->pin.op.lo_done = c->pout.op.lo_done = poll_done;
	}
}

void nbdm_conn_up(struct nbdm_conn *c, struct nbd_handle *h, struct loop *lp)
{
	struct nbdm_dev *nd = c->nd;

	c->h = h;
	c->fd = nbd_aio_get_fd(h);
	c->dead = false;
	c->gen++;
	__atomic_store_n(&nd->nr_live, nd->nr_live + 1, __ATOMIC_RELAXED);
	if (lp)
		conn_arm(c, lp);
}

int nbdm_cmds_alloc(struct nbdm_dev *nd, int nr)
{
	nd->cmds = calloc(nr, sizeof(*nd->cmds));
	if (!nd->cmds)
		return -ENOMEM;
	nd->nr_cmds = nr;
	for (int i = nr - 1; i >= 0; i--)
		cmd_put(nd, &nd->cmds[i]);
	return 0;
}
