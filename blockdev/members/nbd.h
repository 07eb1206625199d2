/* nbd: what the NBD member's I/O (nbd.c), its sockets (nbd_conn.c) and its
 * opening (nbd_open.c) share: the device, connections, command slots. */
#ifndef RAWVEC_NBD_H
#define RAWVEC_NBD_H

#include <libnbd.h>

#include "blockdev/core/bdev.h"

/* One per event loop there can be (LOOP_MAX), so that conns=auto splits a
 * member over every loop. */
#define NBD_MAX_CONNS 64
/* NBD's own default for servers that state no maximum (the spec's 32 MiB). */
#define NBD_DEFAULT_MAX_PAYLOAD (32u << 20)
/* TRIM and WRITE_ZEROES carry a 32-bit length: longer ranges go in steps. */
#define NBD_MAX_RANGE (1u << 30)
#define NBD_CMDS_PER_CONN 256

/*
 * One NBD command: a piece of a request.  A READ or WRITE becomes one
 * command per contiguous run of its memory (libnbd reads into and writes
 * from the pinned buffers directly), all on one connection and in flight
 * together; a TRIM or WRITE_ZEROES longer than NBD_MAX_RANGE is one
 * command slot that walks the range in steps (@pos, @left).
 */
struct nbdm_cmd {
	struct nbdm_cmd *next; /* free list, or the done list */
	struct nbdm_conn *conn;
	struct bdev_req *req; /* NULL: free */
	uint64_t start_ns;
	uint64_t pos, left; /* a ranged op's next step */
	int err;
	bool sent; /* accepted by libnbd: counted in its conn's inflight */
	bool done; /* finished (called back, refused or failed): on the
		    * done list */
};

/* A poll on a connection's socket (one for reading, one for writing), or
 * on its part's eventfd (@conn NULL). */
struct nbdm_poll {
	struct loop_op op;
	struct nbdm_part *part;
	struct nbdm_conn *conn;
	struct loop *np_loop; /* the loop it is armed on, or was last */
	unsigned np_gen;      /* the connection's gen when armed */
	bool armed;
};

/*
 * One NBD connection (a libnbd handle).  A dead one is connected again in
 * the background (nbd_open.c): a thread makes a new handle within
 * connect_timeout= and signals its part's eventfd, and the part's loop
 * adopts it; attempts back off from 1 s to 30 s.
 */
struct nbdm_conn {
	struct nbdm_part *part;
	struct nbd_handle *h;
	int fd;
	bool dead;
	unsigned gen;	   /* one more for every handle: stale polls */
	unsigned inflight; /* commands */
	struct nbdm_poll pin, pout;
	bool reconnecting;		/* a thread is connecting for it */
	bool finished;			/* that thread is done (atomic) */
	bool said_down;			/* its failed attempts were logged */
	struct nbd_handle *new_h;	/* what it made; NULL: it failed */
	char new_err[256];		/* why it failed */
	uint64_t retry_at_ns, retry_ns; /* next attempt, and the backoff */
};

/*
 * What one loop runs of a device: some of its connections, command slots
 * for them, the queues, the timeout and reconnect hooks, an eventfd.  A
 * device has one part, on the loop its requests come from, until it is
 * shared over several loops (nbdm_split(): conns= at least the loops);
 * then part i has connections i, i + loops, ... and serves loop i, so no
 * request travels to another loop while its own has a live connection.
 * Everything in a part but the atomics is touched on @loop only.
 */
struct nbdm_part {
	struct nbdm_dev *nd;
	struct nbdm_conn *conns[NBD_MAX_CONNS];
	int nr_conns;
	unsigned nr_live; /* atomic: other loops look, to hand over */
	struct nbdm_cmd *cmds;
	int nr_cmds, nr_free;
	struct nbdm_cmd *free;
	FIFO(struct nbdm_cmd) done;    /* called back, to complete */
	FIFO(struct bdev_req) waiting; /* for command slots, oldest first */
	bool draining;
	struct loop_hook timer;
	struct loop_hook retry; /* the next reconnect attempt */
	/* The loop it runs on, from its first request on (its eventfd is
	 * polled there from then on); NULL: none came yet. */
	struct loop *loop;
	/* Reconnecting threads say they are done, and nbdm_destroy() from
	 * another thread says the part is to close. */
	int efd;
	struct nbdm_poll pefd;
	/* stats, written on @loop */
	uint64_t st_cmds, st_timeouts, st_conns_lost, st_reconnects, st_handed;
	uint32_t st_inflight, st_inflight_max; /* bdev_stat_enter/leave */
};

struct nbdm_dev {
	struct bdev nd_bdev;
	struct nbdm_conn conns[NBD_MAX_CONNS];
	int nr_conns;
	struct nbdm_part parts[NBD_MAX_CONNS];
	int nr_parts;
	uint32_t inflight_max_seen; /* the stats reader's (bdev_stat_mark()) */
	uint64_t timeout_ns, connect_timeout_ns;
	uint64_t max_payload;
	int nr_cmds_min; /* command slots the biggest request takes */
	int64_t block_min, block_pref, block_max;
	bool can_flush, can_trim, can_zero, can_fua, multi_conn;
	bool tls; /* the first connection negotiated TLS (nbds:// URIs) */
	/* The device itself, each poll in the kernel and each reconnecting
	 * thread hold one: the last to let go frees it (atomic). */
	unsigned refs;
	bool dying; /* destroyed: what still holds it only lets go */
};

/** nbdm_why() - libnbd's last error on this thread, or @fallback. */
static inline const char *nbdm_why(const char *fallback)
{
	return nbd_get_error() ? nbd_get_error() : fallback;
}

extern const struct bdev_kind nbd_kind;
extern const struct bdev_ops nbdm_ops;

/** nbdm_init() - ready @nd, one part holding every connection slot,
 * before any connection.  0 or -errno (its eventfd). */
int nbdm_init(struct nbdm_dev *nd);

/** nbdm_part_init() - ready part @i of @nd, with its own eventfd (nd's
 * parts are then 0..@i); 0 or -errno. */
int nbdm_part_init(struct nbdm_dev *nd, int i);

/** nbdm_part_wake() - signal @p's eventfd (any thread): its loop looks at
 * reconnecting threads, and at the device dying. */
void nbdm_part_wake(struct nbdm_part *p);

/** nbdm_put() - let go of @nd; the last one frees it. */
void nbdm_put(struct nbdm_dev *nd);

/**
 * nbdm_reconnect_later() - connect the dead @c again, at its next backoff
 * step (nbd_open.c).  nbdm_reconnect_run() - the retry hook: start the
 * attempts that are due.  nbdm_reconnect_done() - the eventfd said a
 * thread is done: adopt what it made, or try later.  On the part's loop.
 */
void nbdm_reconnect_later(struct nbdm_conn *c);
void nbdm_reconnect_run(struct loop_hook *h);
void nbdm_reconnect_done(struct nbdm_part *p);

/** nbdm_conn_up() - @c runs on handle @h from now on: count it live and
 * poll it on its part's loop (none yet at start-up). */
void nbdm_conn_up(struct nbdm_conn *c, struct nbd_handle *h);

/*
 * The connection's side (nbd_conn.c), on its part's loop.
 * nbdm_conn_arm() - poll for what libnbd waits on: replies while connected,
 * room to send when a command did not fit.  nbdm_conn_kill() - @c failed
 * (@why is logged): close it, fail its commands onto the done list, and
 * connect it again later.  nbdm_conn_close() - shut its socket and close
 * its handle.  nbdm_poll_arm() - poll @np's fd (the socket, or the part's
 * eventfd) for @mask.  nbdm_poll_done() - every such poll's completion.
 */
void nbdm_conn_arm(struct nbdm_conn *c);
void nbdm_conn_kill(struct nbdm_conn *c, const char *why);
void nbdm_conn_close(struct nbdm_conn *c);
void nbdm_poll_arm(struct nbdm_poll *np, unsigned mask);
void nbdm_poll_done(struct loop_op *op, int res, unsigned flags);

/*
 * The part's side (nbd.c).  nbdm_part_drain() - complete the commands
 * libnbd called back, outside its lock, and start what waited for slots.
 * nbdm_part_close() - close @p's hooks and connections, on its loop or with
 * that loop gone.
 */
void nbdm_part_drain(struct nbdm_part *p);
void nbdm_part_close(struct nbdm_part *p);

/** nbdm_part_cmds() - @nr free command slots for @p, in place of what it
 * had (before any I/O); 0 or -ENOMEM. */
int nbdm_part_cmds(struct nbdm_part *p, int nr);

/** nbdm_parts_ready() - hand the connections made to the parts, and give
 * each part command slots: NBD_CMDS_PER_CONN per connection, and never
 * fewer than nr_cmds_min.  0 or -ENOMEM. */
int nbdm_parts_ready(struct nbdm_dev *nd);

/**
 * nbdm_split() - give each of @nr_loops loops a part of @dev's own (the
 * kind's bk_share; conns= at least @nr_loops, checked by bk_max_loops).
 * Before any I/O.  0 or -errno.
 */
int nbdm_split(struct bdev *dev, int nr_loops);

/** nbdm_destroy() - close every connection and free @dev (bd_ops). */
void nbdm_destroy(struct bdev *dev);

#endif
