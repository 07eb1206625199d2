/* nbd_conn: an NBD connection's socket, polled on its part's loop, and
 * libnbd told what the polls say; a connection that fails is killed here. */
#include "blockdev/members/nbd.h"
#include "blockdev/core/log.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* Shut @c's socket and close its handle.  A poll on it may still wait in
 * the SQ: submitted first, it holds this socket, which the shutdown wakes,
 * and not whatever file takes the number next. */
void nbdm_conn_close(struct nbdm_conn *c)
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

/* Live connections over every part. */
static unsigned dev_live(const struct nbdm_dev *nd)
{
	unsigned n = 0;

	for (int i = 0; i < nd->nr_parts; i++)
		n += __atomic_load_n(&nd->parts[i].nr_live, __ATOMIC_RELAXED);
	return n;
}

/* Mark @c dead and close it: after nbd_close() libnbd touches none of its
 * commands' buffers again, so they can be failed and reused.  It is
 * connected again later, from its part's loop. */
void nbdm_conn_kill(struct nbdm_conn *c, const char *why)
{
	struct nbdm_part *p = c->part;
	struct nbdm_dev *nd = p->nd;

	if (c->dead)
		return;
	c->dead = true;
	__atomic_sub_fetch(&p->nr_live, 1, __ATOMIC_RELAXED);
	bdev_stat_add(&p->st_conns_lost, 1);
	bdev_log("%s: connection %d lost: %s%s", nd->nd_bdev.bd_name,
		 (int)(c - nd->conns), why,
		 dev_live(nd) ? "" :
				"; the member fails its I/O until it is back");
	nbdm_conn_close(c);
	for (int i = 0; i < p->nr_cmds; i++) {
		struct nbdm_cmd *cmd = &p->cmds[i];

		if (cmd->req && cmd->conn == c && !cmd->done) {
			cmd->err = -EIO;
			cmd->done = true;
			fifo_push(&p->done, cmd, next);
		}
	}
	nbdm_reconnect_later(c);
}

/* Poll @np's fd (the socket, or the part's eventfd) on its part's loop. */
void nbdm_poll_arm(struct nbdm_poll *np, unsigned mask)
{
	struct loop *lp = np->part->loop;
	struct io_uring_sqe *sqe = loop_sqe(lp, &np->op);

	io_uring_prep_poll_add(sqe, np->conn ? np->conn->fd : np->part->efd,
			       mask);
	np->np_loop = lp;
	np->np_gen = np->conn ? np->conn->gen : 0;
	np->armed = true;
	__atomic_add_fetch(&np->part->nd->refs, 1, __ATOMIC_RELAXED);
}

/* Poll for what libnbd waits on: replies (always, while connected) and
 * room to send when a request did not fit in the socket. */
void nbdm_conn_arm(struct nbdm_conn *c)
{
	unsigned dir;

	if (c->dead || !c->part->loop)
		return;
	dir = nbd_aio_get_direction(c->h);
	if (!dir && (nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h))) {
		/* libnbd queues a command even when sending it kills the
		 * handle: a handle waiting for nothing may be dead. */
		nbdm_conn_kill(c, nbdm_why("closed"));
		return;
	}
	if ((dir & LIBNBD_AIO_DIRECTION_READ) && !c->pin.armed)
		nbdm_poll_arm(&c->pin, POLLIN);
	if ((dir & LIBNBD_AIO_DIRECTION_WRITE) && !c->pout.armed)
		nbdm_poll_arm(&c->pout, POLLOUT);
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

/* A simple reply's header: what must be queued before another read pays. */
#define NBD_REPLY_HEADER_BYTES 16
/* Below this many commands in flight, the poll(2) checks a "readable", and
 * each reply waits for its own poll: reading replies back to back measured
 * 10% slower at 4k QD3-6 (QD8 and up gained 8-30%): the few requests bunch
 * into waves and the loop sleeps between them (docs/bench.md). */
#define NBD_BATCH_MIN_INFLIGHT 8
/* Reads of the socket per wake-up at most (a read takes one reply, or what
 * of it has come), so one busy connection cannot hold the loop while the
 * others and the FUSE queues wait. */
#define NBD_BATCH_MAX_READS 16

/* libnbd rests in READY with at least NBD_BATCH_MIN_INFLIGHT commands on
 * the wire: replies are coming, so reading needs no poll(2) first. */
static bool conn_busy(struct nbdm_conn *c)
{
	return nbd_aio_is_ready(c->h) &&
	       nbd_aio_in_flight(c->h) >= NBD_BATCH_MIN_INFLIGHT;
}

/* Bytes queued on @fd to read; 0 if FIONREAD fails. */
static int sock_queued_bytes(int fd)
{
	int n = 0;

	return ioctl(fd, FIONREAD, &n) < 0 ? 0 : n;
}

/*
 * Tell libnbd its socket is readable, as the poll said.  Resting in READY
 * with commands in flight, every command libnbd holds is on the wire: a
 * stale "readable" (seen 5 times in 1.5M) only makes it wait for a reply
 * that is coming anyway, and what is issued meanwhile goes out behind that
 * reply.  With many in flight the first of them ends the wait, so only
 * then is the poll(2) spared: it was one syscall of five per request.  With
 * one in flight the wait could be a whole FLUSH.
 *
 * libnbd reads one reply per call on a plain socket and has no way to say
 * more is buffered, so under load each reply cost a poll re-armed and a
 * loop turn.  While enough is queued in the socket (FIONREAD), the next
 * reply is read at once: 4k randread QD32 over nbdkit went from 1.2
 * io_uring_enter and 1.2 poll(2) per request to 0.21 and none (and one
 * FIONREAD); IOPS rose 1.3x (randread) and 1.4x (randwrite) under fio's
 * job processes, 1.04x and 1.0x under fio --thread, where the loop waits
 * less for the CPU.
 */
static int conn_notify_read(struct nbdm_conn *c)
{
	if (!(nbd_aio_get_direction(c->h) & LIBNBD_AIO_DIRECTION_READ))
		return 0;
	if (!conn_busy(c) && !sock_readable(c->fd))
		return 0;
	int r = nbd_aio_notify_read(c->h);
	for (int reads = 1; !r && reads < NBD_BATCH_MAX_READS; reads++) {
		if (!conn_busy(c) ||
		    sock_queued_bytes(c->fd) < NBD_REPLY_HEADER_BYTES)
			break;
		r = nbd_aio_notify_read(c->h);
	}
	return r;
}

void nbdm_poll_done(struct loop_op *op, int res, unsigned flags)
{
	struct nbdm_poll *np = container_of(op, struct nbdm_poll, op);
	struct nbdm_conn *c = np->conn;
	struct nbdm_part *p = np->part;
	struct nbdm_dev *nd = p->nd;
	int r = 0;

	(void)flags;
	np->armed = false;
	if (np->np_loop != p->loop)
		/* Armed before nbdm_split() moved its connection to another
		 * part, and cancelled there. */
		goto out;
	if (!c) {
		/* The eventfd: a reconnecting thread is done, or the device
		 * was destroyed (on another thread, or on this one after its
		 * part was closed).  Its read may swallow the wake-up that
		 * destroying sent, so the device is asked again after it. */
		if (!__atomic_load_n(&nd->dying, __ATOMIC_ACQUIRE))
			nbdm_reconnect_done(p);
		if (__atomic_load_n(&nd->dying, __ATOMIC_ACQUIRE))
			nbdm_part_close(p);
		else
			nbdm_poll_arm(np, POLLIN);
		goto out;
	}
	if (__atomic_load_n(&nd->dying, __ATOMIC_ACQUIRE))
		goto out;
	if (c->dead || np->np_gen != c->gen) {
		/* A poll of a handle closed since: poll the new one. */
		nbdm_conn_arm(c);
		goto out;
	}
	if (res < 0) {
		nbdm_conn_kill(c, strerror(-res));
	} else if (np == &c->pin) {
		r = conn_notify_read(c);
	} else if (nbd_aio_get_direction(c->h) & LIBNBD_AIO_DIRECTION_WRITE) {
		r = nbd_aio_notify_write(c->h);
	}
	if (!c->dead &&
	    (r < 0 || nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h)))
		nbdm_conn_kill(c, nbdm_why("the server closed it"));
	nbdm_conn_arm(c);
	nbdm_part_drain(p);
out:
	nbdm_put(nd);
}

void nbdm_conn_up(struct nbdm_conn *c, struct nbd_handle *h)
{
	c->h = h;
	c->fd = nbd_aio_get_fd(h);
	c->dead = false;
	c->gen++;
	__atomic_add_fetch(&c->part->nr_live, 1, __ATOMIC_RELAXED);
	nbdm_conn_arm(c);
}
