/* nbd: what the NBD member's I/O (nbd.c) and its opening (nbd_open.c)
 * share: the device, its connections and its command slots. */
#ifndef RAWVEC_NBD_H
#define RAWVEC_NBD_H

#include <libnbd.h>

#include "blockdev/core/bdev.h"

#define NBD_MAX_CONNS 16
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
 * on the device's eventfd (@conn NULL). */
struct nbdm_poll {
	struct loop_op op;
	struct nbdm_dev *nd;
	struct nbdm_conn *conn;
	struct loop *np_loop; /* the loop it is armed on, or was last */
	unsigned np_gen;      /* the connection's gen when armed */
	bool armed;
};

/*
 * One NBD connection (a libnbd handle).  A dead one is connected again in
 * the background (nbd_open.c): a thread makes a new handle within
 * connect_timeout= and signals the device's eventfd, and the loop adopts
 * it; attempts back off from 1 s to 30 s.
 */
struct nbdm_conn {
	struct nbdm_dev *nd;
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

struct nbdm_dev {
	struct bdev nd_bdev;
	struct nbdm_conn conns[NBD_MAX_CONNS];
	int nr_conns, nr_live;
	struct nbdm_cmd *cmds;
	int nr_cmds, nr_free;
	struct nbdm_cmd *free;
	FIFO(struct nbdm_cmd) done;    /* called back, to complete */
	FIFO(struct bdev_req) waiting; /* for command slots, oldest first */
	bool draining;
	struct loop_hook timer;
	uint64_t timeout_ns, connect_timeout_ns;
	uint64_t max_payload;
	int64_t block_min, block_pref, block_max;
	bool can_flush, can_trim, can_zero, can_fua, multi_conn;
	/* The device itself, each poll in the kernel and each reconnecting
	 * thread hold one: the last to let go frees it (atomic). */
	unsigned refs;
	bool dying; /* destroyed: what still holds it only lets go */
	struct loop_hook retry; /* the next reconnect attempt */
	int efd;		/* reconnecting threads say they are done */
	struct nbdm_poll pefd;
	/* stats, written on the loop */
	uint64_t st_cmds, st_timeouts, st_conns_lost, st_reconnects,
		st_inflight, st_inflight_max;
};

/** nbdm_why() - libnbd's last error on this thread, or @fallback. */
static inline const char *nbdm_why(const char *fallback)
{
	return nbd_get_error() ? nbd_get_error() : fallback;
}

extern const struct bdev_kind nbd_kind;
extern const struct bdev_ops nbdm_ops;

/** nbdm_init() - ready @nd's hooks and polls before any connection. */
void nbdm_init(struct nbdm_dev *nd);

/** nbdm_put() - let go of @nd; the last one frees it. */
void nbdm_put(struct nbdm_dev *nd);

/** nbdm_poll_arm() - poll @p's fd (the socket, or the eventfd) for @mask
 * on @lp; its completion calls back into nbd.c. */
void nbdm_poll_arm(struct nbdm_poll *p, unsigned mask, struct loop *lp);

/**
 * nbdm_reconnect_later() - connect the dead @c again, at its next backoff
 * step (nbd_open.c).  nbdm_reconnect_run() - the retry hook: start the
 * attempts that are due.  nbdm_reconnect_done() - the eventfd said a
 * thread is done: adopt what it made, or try later.  On @lp, the loop the
 * device's requests run on.
 */
void nbdm_reconnect_later(struct nbdm_conn *c, struct loop *lp);
void nbdm_reconnect_run(struct loop_hook *h);
void nbdm_reconnect_done(struct nbdm_dev *nd, struct loop *lp);

/** nbdm_conn_up() - @c runs on handle @h from now on: count it live and
 * poll it on @lp (NULL: not yet, at start-up). */
void nbdm_conn_up(struct nbdm_conn *c, struct nbd_handle *h, struct loop *lp);

/** nbdm_cmds_alloc() - @nr command slots for @nd; 0 or -ENOMEM. */
int nbdm_cmds_alloc(struct nbdm_dev *nd, int nr);

/** nbdm_destroy() - close every connection and free @dev (bd_ops). */
void nbdm_destroy(struct bdev *dev);

#endif
