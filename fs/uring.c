/* uring: the FUSE-over-io_uring transport (kernel 6.14+).  Ring entries
 * are registered on /dev/fuse; each owns a pinned payload buffer that the
 * disk I/O reads into and writes from directly, and commit = reply. */
#include "fs/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The ABI of include/uapi/linux/fuse.h 7.42+, absent from Debian 12. */
#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ 128

struct fuse_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct fuse_uring_req_header {
	char in_out[FUSE_URING_IN_OUT_HEADER_SZ];
	char op_in[FUSE_URING_OP_IN_OUT_SZ];
	struct fuse_uring_ent_in_out ring_ent_in_out;
};

enum { FUSE_IO_URING_CMD_REGISTER = 1, FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2 };

struct fuse_uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct fuse_uring_req_header) == 288, "fuse ABI");
_Static_assert(sizeof(struct fuse_uring_cmd_req) == 24, "fuse ABI");

/**
 * struct ring_ent - one registered entry.  Either armed in the kernel
 * (@armed) or owned by the request it carries, never both.
 */
struct ring_ent {
	struct rv_req req;
	struct loop_op op;
	struct fuse_uring_req_header *hdr;
	char *payload;
	struct iovec iov[2]; /* the kernel keeps pointing at these buffers */
	uint16_t qid;
	bool armed;
	bool dead;
};

struct rv_uring_transport {
	struct rv_loop *rl;
	struct ring_ent *ents;
	struct fuse_uring_req_header *hdrs;
	int nr_ents;
	int nr_armed;
	int nr_dead;
	int nr_busy;
};

static void ent_submit(struct ring_ent *e, uint32_t cmd_op, uint64_t commit_id)
{
	struct rv_fs *fs = e->req.fs;
	struct io_uring_sqe *sqe = loop_sqe(&e->req.rl->loop, &e->op);
	struct fuse_uring_cmd_req *cmd = (void *)sqe->cmd;

	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fs->fuse_fd;
	sqe->cmd_op = cmd_op;
	if (cmd_op == FUSE_IO_URING_CMD_REGISTER) {
		sqe->addr = (uintptr_t)e->iov;
		sqe->len = 2;
	}
	cmd->qid = e->qid;
	cmd->commit_id = commit_id;
	e->armed = true;
	e->req.rl->urt->nr_armed++;
}

static void uring_reply(struct rv_req *req)
{
	struct ring_ent *e = (struct ring_ent *)req;
	struct fuse_out_header *out = (void *)e->hdr->in_out;
	uint64_t commit_id = e->hdr->ring_ent_in_out.commit_id;

	/* Out args travel in the payload buffer; a READ is already there. */
	if (req->out_len && req->out_data != e->payload)
		memcpy(e->payload, req->out_data, req->out_len);
	out->len = sizeof(*out) + req->out_len;
	out->error = req->out_error;
	out->unique = req->in->unique;
	e->hdr->ring_ent_in_out.payload_sz = req->out_len;
	req->rl->urt->nr_busy--;
	ent_submit(e, FUSE_IO_URING_CMD_COMMIT_AND_FETCH, commit_id);
}

static const struct rv_transport uring_transport = { .reply = uring_reply };

static void ent_done(struct loop_op *op, int res, unsigned flags)
{
	struct ring_ent *e = container_of(op, struct ring_ent, op);
	struct rv_loop *rl = e->req.rl;
	struct rv_uring_transport *t = rl->urt;
	struct rv_fs *fs = e->req.fs;
	const struct fuse_in_header *in = (const void *)e->hdr->in_out;

	(void)flags;
	e->armed = false;
	t->nr_armed--;
	if (res == -EAGAIN || res == -EINTR) {
		/* INIT not processed yet: the kernel asks us to retry. */
		ent_submit(e, FUSE_IO_URING_CMD_REGISTER, 0);
		return;
	}
	if (res < 0) {
		/* ENOTCONN/ECONNABORTED: unmounted; anything else loses the
		 * entry, and with the last one the transport. */
		if (res != -ENOTCONN && res != -ECONNABORTED &&
		    res != -ECANCELED)
			rv_log("fuse ring: entry on queue %u failed: %s",
			       e->qid, strerror(-res));
		e->dead = true;
		if (++t->nr_dead == t->nr_ents)
			rv_stop(rl);
		return;
	}
	if (rv_stopping(rl)) {
		/* Shutting down: leave it unanswered; closing /dev/fuse
		 * fails it for the caller, and nothing unacknowledged is
		 * lost. */
		return;
	}
	t->nr_busy++;
	bdev_stat_add(&rl->cnt.ring_requests, 1);
	e->req.in = in;
	/* LOOKUP's name travels in the payload (op_in is empty since 6.14). */
	e->req.arg = in->opcode == FUSE_LOOKUP ? e->payload : e->hdr->op_in;
	e->req.payload = e->payload;
	e->req.payload_len = e->hdr->ring_ent_in_out.payload_sz;
	if (in->opcode == FUSE_LOOKUP && e->req.payload_len < fs->max_write)
		e->payload[e->req.payload_len] = '\0';
	rv_dispatch(&e->req);
	if (in->opcode == FUSE_FORGET || in->opcode == FUSE_BATCH_FORGET ||
	    in->opcode == FUSE_INTERRUPT) {
		/* No reply owed, but the entry must be committed to re-arm. */
		e->req.out_error = 0;
		e->req.out_len = 0;
		uring_reply(&e->req);
	}
}

int rv_uring_start(struct rv_loop *rl)
{
	struct rv_fs *fs = rl->fs;
	struct rv_uring_transport *t;
	int nr = rl->nr_queues * (int)fs->ring_entries_per_queue;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ents = calloc(nr, sizeof(*t->ents));
	t->hdrs = calloc(nr, sizeof(*t->hdrs));
	if (!t->ents || !t->hdrs)
		goto out_nomem;
	t->rl = rl;
	t->nr_ents = nr;
	rl->urt = t;
	for (int i = 0; i < nr; i++) {
		struct ring_ent *e = &t->ents[i];

		e->payload = loop_pool_alloc(&rl->loop, fs->max_write);
		if (!e->payload) {
			rl->urt = NULL;
			goto out_nomem;
		}
		e->hdr = &t->hdrs[i];
		e->iov[0].iov_base = e->hdr;
		e->iov[0].iov_len = sizeof(*e->hdr);
		e->iov[1].iov_base = e->payload;
		e->iov[1].iov_len = fs->max_write;
		/* This loop's queues: q mod nr_loops == id, in turn. */
		e->qid =
			(uint16_t)(rl->id + (i % rl->nr_queues) * fs->nr_loops);
		e->op.lo_done = ent_done;
		e->req.fs = fs;
		e->req.rl = rl;
		e->req.t = &uring_transport;
	}
	for (int i = 0; i < nr; i++)
		ent_submit(&t->ents[i], FUSE_IO_URING_CMD_REGISTER, 0);
	return 0;
out_nomem:
	free(t->ents);
	free(t->hdrs);
	free(t);
	return -ENOMEM;
}

bool rv_uring_idle(struct rv_loop *rl)
{
	return !rl->urt || !rl->urt->nr_busy;
}

void rv_uring_stop(struct rv_loop *rl)
{
	if (!rl->urt)
		return;
	free(rl->urt->ents);
	free(rl->urt->hdrs);
	free(rl->urt);
	rl->urt = NULL;
}
