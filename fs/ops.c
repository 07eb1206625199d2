/* ops: every FUSE opcode rawvec answers, written once for both transports.
 * A three-entry namespace (/, disk, stats); disk I/O goes through bdev_rw. */
#include "fs/fs.h"

#include <errno.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ATTR_TIMEOUT_S 3600 /* the namespace never changes */

struct name_ent {
	const char *name;
	uint64_t ino;
	uint32_t type;
};

static const struct name_ent names[] = {
	{ "disk", RV_INO_DISK, S_IFREG },
	{ "stats", RV_INO_STATS, S_IFREG },
	{ "control", RV_INO_CONTROL, S_IFREG },
};

static const char control_help[] =
	"commands (echo one into this file):\n"
	"  fail ADDR           mark member ADDR failed (ADDR: 2, or 1.0 when nested)\n"
	"  replace ADDR PATH   put image/device PATH in place of failed member ADDR, rebuild\n"
	"  check               verify parity and mirrors, count mismatches (see stats)\n"
	"  repair              like check, and rewrite what mismatches\n"
	"  fault ADDR K=V ...  change a faulty() member: read_eio=P write_eio=P\n"
	"                      at=LO..HI|none unreadable=LO..HI|none after=N\n"
	"                      lat_spike=DUR@P|none\n";

/* A stats file open: the JSON is taken once, at open, so one read(2) loop
 * sees one consistent snapshot. */
struct stats_snap {
	size_t len;
	char text[];
};

/* The reply leaves from the loop the request came in on. */
void rv_forward_reply(struct rv_req *req)
{
	struct rv_counters *c = &req->rl->cnt;
	int err = req->out_error;

	if (err) {
		uint32_t op = req->in->opcode;

		bdev_stat_add(&c->errors, 1);
		if (req->in->nodeid == RV_INO_DISK &&
		    (op == FUSE_READ || op == FUSE_WRITE || op == FUSE_FSYNC ||
		     op == FUSE_FALLOCATE))
			bdev_stat_add(&c->io_errors, 1);
	}
	req->t->reply(req);
}

static void reply(struct rv_req *req, int err, const void *data, size_t len)
{
	req->out_error = err;
	req->out_data = err ? NULL : data;
	req->out_len = err ? 0 : len;
	if (req->fwd)
		rv_forward(req); /* back to its own loop */
	else
		rv_forward_reply(req);
}

static void fill_attr(struct rv_fs *fs, uint64_t ino, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->uid = fs->uid;
	a->gid = fs->gid;
	a->blksize = 4096;
	a->nlink = 1;
	a->atime = a->mtime = a->ctime = fs->mount_time;
	switch (ino) {
	case RV_INO_ROOT:
		a->mode = S_IFDIR | 0755;
		a->nlink = 2;
		break;
	case RV_INO_DISK:
		a->uid = fs->disk_uid;
		a->gid = fs->disk_gid;
		a->mode = S_IFREG |
			  (fs->disk_mode & (fs->read_only ? 0444 : 0666));
		a->size = fs->dev->bd_size;
		a->blocks = fs->dev->bd_size / 512;
		break;
	case RV_INO_STATS:
		a->mode = S_IFREG | 0444;
		break;
	case RV_INO_CONTROL:
		a->mode = S_IFREG | 0600;
		a->size = sizeof(control_help) - 1;
		break;
	}
}

static bool known_ino(uint64_t ino)
{
	return ino >= RV_INO_ROOT && ino <= RV_INO_CONTROL;
}

static void do_init(struct rv_req *req)
{
	const struct fuse_init_in *in = req->arg;
	struct rv_fs *fs = req->fs;
	struct fuse_init_out *out = &req->out_small.init;
	uint64_t kflags = in->flags;
	uint64_t want;

	memset(out, 0, sizeof(*out));
	out->major = FUSE_KERNEL_VERSION;
	if (in->major != FUSE_KERNEL_VERSION) {
		rv_log("kernel FUSE protocol %u.%u is not %u.x", in->major,
		       in->minor, FUSE_KERNEL_VERSION);
		reply(req, -EPROTO, NULL, 0);
		return;
	}
	if (kflags & FUSE_INIT_EXT)
		kflags |= (uint64_t)in->flags2 << 32;
	fs->proto_minor = in->minor;
	fs->uring_offered = !!(kflags & FUSE_OVER_IO_URING);
	/* Not FUSE_ATOMIC_O_TRUNC: with it the kernel takes an O_TRUNC open
	 * to have made the file empty and serves async direct reads as
	 * past the end.  Without it the open sends SETATTR size 0 with no
	 * file handle, which a disk ignores (do_setattr). */
	want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ASYNC_DIO |
	       FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_INIT_EXT;
	if (fs->uring_offered && fs->transport != RV_TRANSPORT_DEV)
		want |= FUSE_OVER_IO_URING;
	want &= kflags;
	fs->use_uring = !!(want & FUSE_OVER_IO_URING);
	out->minor = in->minor < FUSE_KERNEL_MINOR_VERSION ?
			     in->minor :
			     FUSE_KERNEL_MINOR_VERSION;
	/* The kernel only reads flags2 / ring setup past minor 36 when we
	 * say we speak its minor; the struct layout is unchanged since. */
	if (fs->use_uring)
		out->minor = in->minor;
	out->flags = (uint32_t)want;
	out->flags2 = (uint32_t)(want >> 32);
	out->max_readahead = in->max_readahead;
	out->max_background = 256;
	out->congestion_threshold = 192;
	out->max_write = fs->max_write;
	out->max_pages = fs->max_write / 4096;
	out->time_gran = 1;
	fs->init_done = true;
	reply(req, 0, out, sizeof(*out));
}

static void do_lookup(struct rv_req *req)
{
	const char *name = req->arg;
	struct fuse_entry_out *e = &req->out_small.entry;

	if (req->in->nodeid != RV_INO_ROOT) {
		reply(req, -ENOTDIR, NULL, 0);
		return;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].name))
			continue;
		memset(e, 0, sizeof(*e));
		e->nodeid = names[i].ino;
		e->entry_valid = ATTR_TIMEOUT_S;
		e->attr_valid = ATTR_TIMEOUT_S;
		fill_attr(req->fs, names[i].ino, &e->attr);
		reply(req, 0, e, sizeof(*e));
		return;
	}
	reply(req, -ENOENT, NULL, 0);
}

static void do_getattr(struct rv_req *req)
{
	struct fuse_attr_out *a = &req->out_small.attr;

	if (!known_ino(req->in->nodeid)) {
		reply(req, -ENOENT, NULL, 0);
		return;
	}
	memset(a, 0, sizeof(*a));
	a->attr_valid = ATTR_TIMEOUT_S;
	fill_attr(req->fs, req->in->nodeid, &a->attr);
	reply(req, 0, a, sizeof(*a));
}

static void do_setattr(struct rv_req *req)
{
	const struct fuse_setattr_in *in = req->arg;
	struct rv_fs *fs = req->fs;
	uint64_t ino = req->in->nodeid;
	/* O_TRUNC opens (`echo fail 1 > control`, `dd of=disk`) arrive as
	 * SETATTR size 0 without a file handle; ftruncate(2) carries one. */
	bool o_trunc = !(in->valid & FATTR_FH) && !in->size;

	if ((in->valid & FATTR_SIZE) && ino == RV_INO_DISK) {
		if (in->size > fs->dev->bd_size) {
			rv_log("refusing to grow disk to %llu bytes: a disk's size is fixed (%llu)",
			       (unsigned long long)in->size,
			       (unsigned long long)fs->dev->bd_size);
			reply(req, -EINVAL, NULL, 0);
			return;
		}
		/*
		 * The size never changes, and nothing is discarded.  A block
		 * device ignores O_TRUNC, and dd seek=N without conv=notrunc
		 * truncates to where its writes start, which on a block
		 * device fails and dd does not mind; on a regular file it
		 * would, so a shrink succeeds here without doing anything.
		 */
		if (in->size < fs->dev->bd_size && !o_trunc)
			rv_log("disk: truncate to %llu bytes ignored: a disk's size is fixed (%llu), nothing is discarded",
			       (unsigned long long)in->size,
			       (unsigned long long)fs->dev->bd_size);
	} else if ((in->valid & FATTR_SIZE) &&
		   !(o_trunc && ino != RV_INO_STATS)) {
		rv_log("refusing to resize a control file to %llu bytes",
		       (unsigned long long)in->size);
		reply(req, -EINVAL, NULL, 0);
		return;
	}
	if (in->valid & (FATTR_MODE | FATTR_UID | FATTR_GID)) {
		reply(req, -EPERM, NULL, 0);
		return;
	}
	do_getattr(req);
}

static void do_open(struct rv_req *req)
{
	const struct fuse_open_in *in = req->arg;
	struct rv_fs *fs = req->fs;
	struct fuse_open_out *o = &req->out_small.open;
	int acc = in->flags & O_ACCMODE;

	memset(o, 0, sizeof(*o));
	switch (req->in->nodeid) {
	case RV_INO_DISK:
		if (fs->read_only && acc != O_RDONLY) {
			reply(req, -EROFS, NULL, 0);
			return;
		}
		/* rawvec orders overlapping writes itself (rw.c), so the
		 * kernel need not serialise them on the inode lock. */
		o->open_flags = FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
		break;
	case RV_INO_STATS: {
		struct stats_snap *s;
		size_t cap = 64 * 1024;

		if (acc != O_RDONLY) {
			reply(req, -EACCES, NULL, 0);
			return;
		}
		/* Deep layouts with busy histograms outgrow any fixed size:
		 * grow until the text fits. */
		for (;;) {
			ssize_t n;

			s = malloc(sizeof(*s) + cap);
			if (!s) {
				reply(req, -ENOMEM, NULL, 0);
				return;
			}
			n = rv_stats_json(fs, s->text, cap);
			if (n >= 0) {
				s->len = (size_t)n;
				break;
			}
			free(s);
			if (n != -ENOSPC) {
				reply(req, (int)n, NULL, 0);
				return;
			}
			cap *= 2;
		}
		o->fh = (uintptr_t)s;
		o->open_flags = FOPEN_DIRECT_IO;
		break;
	}
	case RV_INO_CONTROL:
		o->open_flags = FOPEN_DIRECT_IO;
		break;
	default:
		reply(req, -EISDIR, NULL, 0);
		return;
	}
	reply(req, 0, o, sizeof(*o));
}

static void do_release(struct rv_req *req)
{
	const struct fuse_release_in *in = req->arg;

	if (req->in->nodeid == RV_INO_STATS)
		free((void *)(uintptr_t)in->fh);
	reply(req, 0, NULL, 0);
}

static void io_done(struct bdev_rw *rw, ssize_t res)
{
	struct rv_req *req = rw->rw_private;
	struct rv_counters *c = &req->rl->cnt;

	bdev_stat_leave(&c->inflight);
	if (res < 0) {
		reply(req, (int)res, NULL, 0);
		return;
	}
	switch (req->in->opcode) {
	case FUSE_READ:
		bdev_stat_add(&c->read_bytes, (uint64_t)res);
		reply(req, 0, req->payload, res);
		break;
	case FUSE_WRITE:
		bdev_stat_add(&c->write_bytes, (uint64_t)res);
		memset(&req->out_small.write, 0, sizeof(req->out_small.write));
		req->out_small.write.size = (uint32_t)res;
		reply(req, 0, &req->out_small.write,
		      sizeof(req->out_small.write));
		break;
	default:
		reply(req, 0, NULL, 0);
	}
}

static void start_io(struct rv_req *req, enum bdev_op op, uint64_t pos,
		     size_t len)
{
	struct rv_counters *c = &req->rl->cnt;
	void *buf = op == BDEV_READ || op == BDEV_WRITE ? req->payload : NULL;

	bdev_stat_enter(&c->inflight, &c->inflight_max);
	bdev_rw_start(&req->rl->rwc, &req->rw, op, pos, buf, len, io_done, req);
}

static void do_read(struct rv_req *req)
{
	const struct fuse_read_in *in = req->arg;
	struct rv_fs *fs = req->fs;

	if (req->in->nodeid == RV_INO_STATS) {
		const struct stats_snap *s = (void *)(uintptr_t)in->fh;
		size_t n = 0;

		if (in->offset < s->len) {
			n = s->len - in->offset;
			if (n > in->size)
				n = in->size;
			memcpy(req->payload, s->text + in->offset, n);
		}
		reply(req, 0, req->payload, n);
		return;
	}
	if (req->in->nodeid == RV_INO_CONTROL) {
		size_t n = 0, total = sizeof(control_help) - 1;

		if (in->offset < total) {
			n = total - in->offset < in->size ? total - in->offset :
							    in->size;
			memcpy(req->payload, control_help + in->offset, n);
		}
		reply(req, 0, req->payload, n);
		return;
	}
	if (req->in->nodeid != RV_INO_DISK) {
		reply(req, -EISDIR, NULL, 0);
		return;
	}
	if (in->size > fs->max_write) {
		reply(req, -EINVAL, NULL, 0);
		return;
	}
	bdev_stat_add(&req->rl->cnt.reads, 1);
	start_io(req, BDEV_READ, in->offset, in->size);
}

/* A control write's reply, now or once its commands are carried out. */
static void control_done(struct rv_req *req, int err)
{
	const struct fuse_write_in *in = req->arg;

	if (err) {
		reply(req, err, NULL, 0);
		return;
	}
	memset(&req->out_small.write, 0, sizeof(req->out_small.write));
	req->out_small.write.size = in->size;
	reply(req, 0, &req->out_small.write, sizeof(req->out_small.write));
}

static void do_write(struct rv_req *req)
{
	const struct fuse_write_in *in = req->arg;
	struct rv_fs *fs = req->fs;

	if (req->in->nodeid == RV_INO_CONTROL && in->size <= req->payload_len) {
		int err = rv_control(fs, req, req->payload, in->size,
				     control_done);

		if (err != RV_CONTROL_PENDING)
			control_done(req, err);
		return;
	}
	if (req->in->nodeid != RV_INO_DISK) {
		reply(req, -EACCES, NULL, 0);
		return;
	}
	if (fs->read_only) {
		reply(req, -EROFS, NULL, 0);
		return;
	}
	if (in->size > fs->max_write || in->size > req->payload_len) {
		reply(req, -EINVAL, NULL, 0);
		return;
	}
	bdev_stat_add(&req->rl->cnt.writes, 1);
	start_io(req, BDEV_WRITE, in->offset, in->size);
}

static void do_fsync(struct rv_req *req)
{
	if (req->in->nodeid != RV_INO_DISK || req->fs->read_only) {
		reply(req, 0, NULL, 0);
		return;
	}
	bdev_stat_add(&req->rl->cnt.fsyncs, 1);
	start_io(req, BDEV_FLUSH, 0, 0);
}

static void do_fallocate(struct rv_req *req)
{
	const struct fuse_fallocate_in *in = req->arg;
	struct rv_fs *fs = req->fs;
	uint32_t mode = in->mode & ~FALLOC_FL_KEEP_SIZE;
	uint64_t length;

	if (req->in->nodeid != RV_INO_DISK) {
		reply(req, -EOPNOTSUPP, NULL, 0);
		return;
	}
	if (fs->read_only) {
		reply(req, -EROFS, NULL, 0);
		return;
	}
	length = in->length;
	if (in->offset >= fs->dev->bd_size ||
	    length > fs->dev->bd_size - in->offset) {
		/* A disk cannot grow: allocating past the end fails; punching
		 * or zeroing there acts on the part inside. */
		if (!mode) {
			reply(req, -ENOSPC, NULL, 0);
			return;
		}
		if (in->offset >= fs->dev->bd_size) {
			reply(req, 0, NULL, 0);
			return;
		}
		length = fs->dev->bd_size - in->offset;
	}
	switch (mode) {
	case 0:
		reply(req, 0, NULL, 0); /* every block of a disk exists */
		return;
	case FALLOC_FL_PUNCH_HOLE:
		bdev_stat_add(&req->rl->cnt.discards, 1);
		start_io(req, BDEV_DISCARD, in->offset, length);
		return;
	case FALLOC_FL_ZERO_RANGE:
		bdev_stat_add(&req->rl->cnt.zeroes, 1);
		start_io(req, BDEV_ZERO, in->offset, length);
		return;
	default:
		reply(req, -EOPNOTSUPP, NULL, 0);
	}
}

static void do_statfs(struct rv_req *req)
{
	struct fuse_statfs_out *o = &req->out_small.statfs;

	memset(o, 0, sizeof(*o));
	o->st.bsize = 4096;
	o->st.frsize = 4096;
	o->st.blocks = req->fs->dev->bd_size / 4096;
	o->st.files = 4;
	o->st.namelen = 255;
	reply(req, 0, o, sizeof(*o));
}

static size_t add_dirent(char *buf, size_t cap, size_t pos, uint64_t ino,
			 const char *name, uint32_t type, uint64_t off)
{
	struct fuse_dirent *d = (struct fuse_dirent *)(buf + pos);
	size_t namelen = strlen(name);
	size_t sz = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);

	if (pos + sz > cap)
		return 0;
	memset(d, 0, sz);
	d->ino = ino;
	d->off = off;
	d->namelen = (uint32_t)namelen;
	d->type = type >> 12;
	memcpy(d->name, name, namelen);
	return sz;
}

static void do_readdir(struct rv_req *req)
{
	const struct fuse_read_in *in = req->arg;
	char *buf = req->out_small.dirents;
	size_t cap = sizeof(req->out_small.dirents), pos = 0, sz;
	uint64_t i;

	if (req->in->nodeid != RV_INO_ROOT) {
		reply(req, -ENOTDIR, NULL, 0);
		return;
	}
	if (cap > in->size)
		cap = in->size;
	/* Entry i: ".", "..", then names[]; d_off is the next index. */
	for (i = in->offset; i < 2 + sizeof(names) / sizeof(names[0]); i++) {
		if (i < 2)
			sz = add_dirent(buf, cap, pos, RV_INO_ROOT,
					i ? ".." : ".", S_IFDIR, i + 1);
		else
			sz = add_dirent(buf, cap, pos, names[i - 2].ino,
					names[i - 2].name, names[i - 2].type,
					i + 1);
		if (!sz)
			break;
		pos += sz;
	}
	reply(req, 0, buf, pos);
}

static void do_opendir(struct rv_req *req)
{
	struct fuse_open_out *o = &req->out_small.open;

	if (req->in->nodeid != RV_INO_ROOT) {
		reply(req, -ENOTDIR, NULL, 0);
		return;
	}
	memset(o, 0, sizeof(*o));
	reply(req, 0, o, sizeof(*o));
}

/* What another loop serves itself: disk I/O, which touches nothing of
 * loop 0's.  The rest (metadata, stats, control, DESTROY) is rare and
 * goes to loop 0, which owns what it reads and changes. */
static bool served_anywhere(const struct rv_req *req)
{
	switch (req->in->opcode) {
	case FUSE_READ:
	case FUSE_WRITE:
	case FUSE_FSYNC:
	case FUSE_FALLOCATE:
	case FUSE_FLUSH:
		return req->in->nodeid == RV_INO_DISK;
	default:
		return false;
	}
}

void rv_dispatch(struct rv_req *req)
{
	bdev_stat_add(&req->rl->cnt.requests, 1);
	req->fwd = false;
	switch (req->in->opcode) {
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT: /* nothing we run can be interrupted */
		return;
	}
	if (req->rl->id && !served_anywhere(req)) {
		req->fwd = true;
		rv_forward(req);
		return;
	}
	rv_serve(req);
}

void rv_serve(struct rv_req *req)
{
	struct rv_fs *fs = req->fs;

	if (req->in->opcode == FUSE_INIT) {
		do_init(req);
		return;
	}
	/* Other loops start serving after INIT: only loop 0 reads this. */
	if (!req->rl->id && !fs->init_done) {
		reply(req, -EIO, NULL, 0);
		return;
	}
	switch (req->in->opcode) {
	case FUSE_LOOKUP:
		do_lookup(req);
		break;
	case FUSE_GETATTR:
		do_getattr(req);
		break;
	case FUSE_SETATTR:
		do_setattr(req);
		break;
	case FUSE_OPEN:
		do_open(req);
		break;
	case FUSE_READ:
		do_read(req);
		break;
	case FUSE_WRITE:
		do_write(req);
		break;
	case FUSE_FSYNC:
		do_fsync(req);
		break;
	case FUSE_FALLOCATE:
		do_fallocate(req);
		break;
	case FUSE_RELEASE:
		do_release(req);
		break;
	case FUSE_STATFS:
		do_statfs(req);
		break;
	case FUSE_OPENDIR:
		do_opendir(req);
		break;
	case FUSE_READDIR:
		do_readdir(req);
		break;
	case FUSE_FLUSH:
	case FUSE_RELEASEDIR:
	case FUSE_FSYNCDIR:
	case FUSE_ACCESS:
		reply(req, 0, NULL, 0);
		break;
	case FUSE_DESTROY:
		fs->destroyed = true;
		fs->stopping = true;
		reply(req, 0, NULL, 0);
		break;
	case FUSE_MKNOD:
	case FUSE_MKDIR:
	case FUSE_CREATE:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_RENAME:
	case FUSE_RENAME2:
	case FUSE_LINK:
	case FUSE_SYMLINK:
		reply(req, -EPERM, NULL, 0);
		break;
	default:
		/* ENOSYS makes the kernel stop asking (xattrs, lseek, ...). */
		reply(req, -ENOSYS, NULL, 0);
	}
}
