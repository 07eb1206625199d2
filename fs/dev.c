/* dev: the /dev/fuse transport.  A multishot poll says when requests wait;
 * they are read into pinned slots placed so a WRITE's payload is page
 * aligned, served asynchronously, and answered with one writev each. */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A WRITE arrives as fuse_in_header + fuse_write_in + data: reading it at
 * a page boundary minus this puts the data on the boundary. */
#define WRITE_HDR_BYTES \
	(sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))

struct dev_slot {
	struct rv_req req;
	char *buf; /* pinned: one header page, then the payload */
	struct fuse_out_header out;
	struct dev_slot *next_free;
};

struct rv_dev_transport {
	struct rv_loop *rl;
	struct dev_slot *slots;
	int nr_slots;
	int nr_busy;
	struct dev_slot *free;
	struct loop_op poll_op;
	bool poll_armed;
	bool readable;
	bool pumping; /* a synchronous reply inside dev_pump must not recurse */
	size_t read_len;
};

static void dev_pump(struct rv_dev_transport *t);

static void dev_reply(struct rv_req *req)
{
	struct dev_slot *s = (struct dev_slot *)req;
	struct rv_dev_transport *t = req->rl->devt;
	struct iovec iov[2];
	int nr = 1;

	s->out.unique = req->in->unique;
	s->out.error = req->out_error;
	s->out.len = sizeof(s->out) + req->out_len;
	iov[0].iov_base = &s->out;
	iov[0].iov_len = sizeof(s->out);
	if (req->out_len) {
		iov[1].iov_base = (void *)req->out_data;
		iov[1].iov_len = req->out_len;
		nr = 2;
	}
	/* The reply goes to the fd the request was read from: the kernel
	 * keeps each (cloned) fd's requests apart.
	 * ENOENT: the request was interrupted or aborted meanwhile;
	 * ENODEV: the connection is gone.  Neither is ours to report. */
	if (writev(req->rl->fuse_fd, iov, nr) < 0 && errno != ENOENT &&
	    errno != ENODEV)
		rv_log("/dev/fuse: reply to opcode %u failed: %s",
		       req->in->opcode, strerror(errno));
	s->next_free = t->free;
	t->free = s;
	t->nr_busy--;
	if (t->readable)
		dev_pump(t);
}

static const struct rv_transport dev_transport = { .reply = dev_reply };

static void dev_arm_poll(struct rv_dev_transport *t);

static void dev_poll_done(struct loop_op *op, int res, unsigned flags)
{
	struct rv_dev_transport *t =
		container_of(op, struct rv_dev_transport, poll_op);

	if (!(flags & IORING_CQE_F_MORE))
		t->poll_armed = false;
	if (res < 0) {
		if (res != -ECANCELED)
			rv_log("/dev/fuse: poll failed: %s", strerror(-res));
		return;
	}
	if (res & (POLLERR | POLLHUP))
		rv_stop(t->rl);
	t->readable = true;
	dev_pump(t);
}

static void dev_arm_poll(struct rv_dev_transport *t)
{
	struct io_uring_sqe *sqe;

	if (t->poll_armed || rv_stopping(t->rl))
		return;
	sqe = loop_sqe(&t->rl->loop, &t->poll_op);
	io_uring_prep_poll_multishot(sqe, t->rl->fuse_fd, POLLIN);
	t->poll_armed = true;
}

/* Read and dispatch requests until the device is empty or no slot is
 * free; the poll brings us back when more arrive. */
static void dev_pump(struct rv_dev_transport *t)
{
	struct rv_loop *rl = t->rl;

	if (t->pumping)
		return;
	t->pumping = true;
	while (t->free && !rv_stopping(rl)) {
		struct dev_slot *s = t->free;
		char *start = s->buf + PVEC_PAGE_SIZE - WRITE_HDR_BYTES;
		const struct fuse_in_header *in = (const void *)start;
		ssize_t n = read(rl->fuse_fd, start, t->read_len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				t->readable = false;
				dev_arm_poll(t);
				break;
			}
			if (errno != ENODEV)
				rv_log("/dev/fuse: read failed: %s",
				       strerror(errno));
			rv_stop(rl); /* ENODEV: unmounted */
			break;
		}
		if ((size_t)n < sizeof(*in) || in->len != (size_t)n) {
			rv_log("/dev/fuse: short request (%zd bytes)", n);
			continue;
		}
		t->free = s->next_free;
		t->nr_busy++;
		bdev_stat_add(&rl->cnt.dev_requests, 1);
		s->req.in = in;
		s->req.arg = start + sizeof(*in);
		s->req.payload = s->buf + PVEC_PAGE_SIZE;
		s->req.payload_len = in->opcode == FUSE_WRITE &&
						     (size_t)n >=
							     WRITE_HDR_BYTES ?
					     (size_t)n - WRITE_HDR_BYTES :
					     0;
		rv_dispatch(&s->req);
		if (in->opcode == FUSE_FORGET ||
		    in->opcode == FUSE_BATCH_FORGET ||
		    in->opcode == FUSE_INTERRUPT) {
			t->nr_busy--;
			s->next_free = t->free;
			t->free = s;
		}
	}
	t->pumping = false;
}

int rv_dev_start(struct rv_loop *rl, int nr_slots)
{
	struct rv_fs *fs = rl->fs;
	struct rv_dev_transport *t;
	size_t slot_bytes = PVEC_PAGE_SIZE + fs->max_write + PVEC_PAGE_SIZE;
	int fl;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->slots = calloc(nr_slots, sizeof(*t->slots));
	if (!t->slots) {
		free(t);
		return -ENOMEM;
	}
	t->rl = rl;
	t->nr_slots = nr_slots;
	t->read_len = slot_bytes - (PVEC_PAGE_SIZE - WRITE_HDR_BYTES);
	t->poll_op.lo_done = dev_poll_done;
	for (int i = 0; i < nr_slots; i++) {
		struct dev_slot *s = &t->slots[i];

		s->buf = loop_pool_alloc(&rl->loop, slot_bytes);
		if (!s->buf) {
			free(t->slots);
			free(t);
			return -ENOMEM;
		}
		s->req.fs = fs;
		s->req.rl = rl;
		s->req.t = &dev_transport;
		s->next_free = t->free;
		t->free = s;
	}
	fl = fcntl(rl->fuse_fd, F_GETFL);
	fcntl(rl->fuse_fd, F_SETFL, fl | O_NONBLOCK);
	rl->devt = t;
	t->readable = true;
	dev_pump(t);
	return 0;
}

bool rv_dev_idle(struct rv_loop *rl)
{
	return !rl->devt || !rl->devt->nr_busy;
}

void rv_dev_stop(struct rv_loop *rl)
{
	if (!rl->devt)
		return;
	free(rl->devt->slots);
	free(rl->devt);
	rl->devt = NULL;
}
