/* file: the leaf backend, an image file or block device opened O_DIRECT and
 * driven through the shared io_uring; fixed buffers where a piece allows. */
#include "blockdev/core/bdev.h"
#include "blockdev/core/log.h"
#include "blockdev/kind.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

/*
 * An image's lock, shared by every open of it in this process.  OFD locks
 * belong to an open file description, so a second open of the same image
 * (a layout's twin, found and refused by the layout; a failed member
 * replaced by itself) would conflict with our own first one.  Instead it
 * takes a reference here; the lock lives on a dup of the first open's fd,
 * so it outlasts that open and goes with the last reference.  Images are
 * opened from the one event loop only: no locking of the list itself.
 */
struct file_lock {
	struct file_lock *fl_next;
	dev_t fl_dev;
	ino_t fl_ino;
	int fl_fd;     /* shares the open file description that holds it */
	short fl_type; /* F_RDLCK or F_WRLCK */
	int fl_refs;
};

static struct file_lock *file_locks;

struct file_dev {
	struct bdev fd_bdev;
	struct file_lock *fd_lock; /* NULL: a block device, or unlockable */
	int fd_fd;
};

static struct file_dev *to_file(struct bdev *dev)
{
	return (struct file_dev *)dev;
}

static void file_queue(struct file_dev *f, struct bdev_req *req);

/* The fallback discard for block devices without a zeroing one: liburing
 * 2.3 has no io_uring discard, so it runs inline (rare: mkfs, fstrim). */
static int blkdev_range_ioctl(int fd, unsigned long cmd, uint64_t pos,
			      uint64_t len)
{
	uint64_t range[2] = { pos, len };

	return ioctl(fd, cmd, range) ? -errno : 0;
}

static void file_done(struct loop_op *op, int res, unsigned flags)
{
	struct bdev_req *req = container_of(op, struct bdev_req, br_loop_op);

	(void)flags;
	if (res == -EOPNOTSUPP && req->br_op == BDEV_DISCARD &&
	    req->br_dev->bd_is_blockdev) {
		/* No zeroing discard (write-zeroes with unmap) on this
		 * device: a plain one, synchronous, is what is left. */
		res = blkdev_range_ioctl(to_file(req->br_dev)->fd_fd,
					 BLKDISCARD, req->br_pos, req->br_len);
		bdev_req_complete(req, res);
		return;
	}
	if (res == -EOPNOTSUPP && req->br_op == BDEV_ZERO &&
	    !req->br_dev->bd_is_blockdev) {
		/* No ZERO_RANGE in this filesystem (tmpfs): a hole reads
		 * back zeroes as well, and every one that holds images
		 * punches them.  Synchronous, as the fallback above. */
		res = fallocate(to_file(req->br_dev)->fd_fd,
				FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
				(off_t)req->br_pos, (off_t)req->br_len) ?
			      -errno :
			      0;
		bdev_req_complete(req, res);
		return;
	}
	if (res < 0) {
		bdev_req_complete(req, res);
		return;
	}
	if ((req->br_op == BDEV_READ || req->br_op == BDEV_WRITE) &&
	    (uint64_t)res < req->br_iter.pi_size) {
		/* Short transfer, adjust and requeue; zero means the file
		 * shrank under us, which only an error can describe. */
		if (!res) {
			bdev_req_complete(req, -EIO);
			return;
		}
		pvec_iter_advance(req->br_vec, &req->br_iter, res);
		req->br_pos += res;
		file_queue(to_file(req->br_dev), req);
		return;
	}
	bdev_req_complete(req, 0);
}

static void file_queue(struct file_dev *f, struct bdev_req *req)
{
	struct io_uring_sqe *sqe;
	int nr;

	switch (req->br_op) {
	case BDEV_READ:
	case BDEV_WRITE:
		nr = pvec_to_iovec(req->br_vec, req->br_iter, req->br_iov,
				   req->br_iov_max);
		if (nr < 0) {
			bdev_req_complete(req, nr);
			return;
		}
		sqe = loop_sqe(req->br_loop, &req->br_loop_op);
		if (nr == 1 &&
		    loop_in_pool(req->br_loop, req->br_iov[0].iov_base,
				 req->br_iov[0].iov_len)) {
			if (req->br_op == BDEV_READ)
				io_uring_prep_read_fixed(sqe, f->fd_fd,
							 req->br_iov[0].iov_base,
							 req->br_iov[0].iov_len,
							 req->br_pos, 0);
			else
				io_uring_prep_write_fixed(sqe, f->fd_fd,
							  req->br_iov[0]
								  .iov_base,
							  req->br_iov[0].iov_len,
							  req->br_pos, 0);
		} else if (req->br_op == BDEV_READ) {
			io_uring_prep_readv(sqe, f->fd_fd, req->br_iov, nr,
					    req->br_pos);
		} else {
			io_uring_prep_writev(sqe, f->fd_fd, req->br_iov, nr,
					     req->br_pos);
		}
		return;
	case BDEV_FLUSH:
		sqe = loop_sqe(req->br_loop, &req->br_loop_op);
		io_uring_prep_fsync(sqe, f->fd_fd, IORING_FSYNC_DATASYNC);
		return;
	case BDEV_DISCARD:
	case BDEV_ZERO:
		/* io_uring runs fallocate in a worker, so a long zero-out
		 * never stalls the loop.  On a block device PUNCH_HOLE is a
		 * discard that reads back zeroes, ZERO_RANGE a zero-out. */
		sqe = loop_sqe(req->br_loop, &req->br_loop_op);
		io_uring_prep_fallocate(sqe, f->fd_fd,
					FALLOC_FL_KEEP_SIZE |
						(req->br_op == BDEV_DISCARD ?
							 FALLOC_FL_PUNCH_HOLE :
							 FALLOC_FL_ZERO_RANGE),
					req->br_pos, req->br_len);
		return;
	default:
		bdev_req_complete(req, -EOPNOTSUPP);
	}
}

static void file_submit(struct bdev *dev, struct bdev_req *req)
{
	if (!req->br_loop) { /* a caller's bug: nothing to submit it on */
		bdev_req_complete(req, -EINVAL);
		return;
	}
	req->br_loop_op.lo_done = file_done;
	file_queue(to_file(dev), req);
}

static void file_lock_put(struct file_lock *lk)
{
	struct file_lock **pp;

	if (!lk || --lk->fl_refs)
		return;
	for (pp = &file_locks; *pp != lk; pp = &(*pp)->fl_next)
		;
	*pp = lk->fl_next;
	close(lk->fl_fd); /* the description's last fd: the lock goes */
	free(lk);
}

static void file_destroy(struct bdev *dev)
{
	struct file_dev *f = to_file(dev);

	fdatasync(f->fd_fd);
	close(f->fd_fd);
	file_lock_put(f->fd_lock);
	free(dev->bd_name);
	free(f);
}

static const struct bdev_ops file_ops = {
	.submit = file_submit,
	.destroy = file_destroy,
};

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Learn the direct-I/O alignment: what the device or filesystem reports,
 * else one page, which every Linux O_DIRECT implementation accepts. */
static void learn_alignment(int fd, bool is_blk, uint32_t *align,
			    uint32_t *mem_align)
{
	struct statx stx;
	int ssz;

	*align = 4096;
	*mem_align = 4096;
	if (is_blk) {
		if (!ioctl(fd, BLKSSZGET, &ssz) && is_pow2(ssz))
			*align = *mem_align = ssz;
		return;
	}
	if (!statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) &&
	    (stx.stx_mask & STATX_DIOALIGN) &&
	    is_pow2(stx.stx_dio_offset_align) &&
	    is_pow2(stx.stx_dio_mem_align)) {
		*align = stx.stx_dio_offset_align;
		*mem_align = stx.stx_dio_mem_align;
	}
}

/* Who holds a lock on @st's inode that conflicts with a lock of @type.
 * F_OFD_GETLK reports no pid for OFD locks, but /proc/PID/fdinfo/FD lists
 * the locks held through that fd with the inode they lock.  rawvec
 * processes are looked at first, then the others, at most
 * FILE_HOLDER_SCAN fds in all: failing to find the holder only loses its
 * name.  Only readlink and fdinfo are read, never the files themselves,
 * so a stuck mount (ours included) cannot hang the search. */
#define FILE_HOLDER_SCAN 16384

static void proc_read(pid_t pid, const char *what, char *buf, size_t len)
{
	char path[64];
	size_t n = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	fp = fopen(path, "re");
	if (fp) {
		n = fread(buf, 1, len - 1, fp);
		fclose(fp);
	}
	buf[n] = '\0';
}

/* @pid's command name: comm, but whole when comm cut it at 15
 * characters ("qemu-storage-da") and argv[0] has the rest. */
static void proc_comm(pid_t pid, char *comm, size_t len)
{
	char argv0[256];
	const char *base;

	proc_read(pid, "comm", comm, len);
	comm[strcspn(comm, "\n")] = '\0';
	if (strlen(comm) != 15)
		return;
	proc_read(pid, "cmdline", argv0, sizeof(argv0));
	base = strrchr(argv0, '/') ? strrchr(argv0, '/') + 1 : argv0;
	if (!strncmp(base, comm, 15)) {
		size_t n = strnlen(base, len - 1);

		memcpy(comm, base, n);
		comm[n] = '\0';
	}
}

/* Whether fd @fd of @pid holds a lock on @st's inode in conflict with
 * @type; if so, the lock's type in *@held. */
static bool fd_holds_lock(pid_t pid, int fd, const struct stat *st, short type,
			  short *held)
{
	char path[96], line[256], cls[16], mode[16], kind[16];
	unsigned maj, min;
	unsigned long ino;
	bool found = false;
	ssize_t n;
	FILE *fp;
	int lpid;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	n = readlink(path, line, sizeof(line) - 1);
	/* Sockets, pipes, io_uring (whose fdinfo is long): never images. */
	if (n <= 0 || line[0] != '/')
		return false;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	fp = fopen(path, "re");
	if (!fp)
		return false;
	while (!found && fgets(line, sizeof(line), fp)) {
		/* "lock:	1: OFDLCK ADVISORY  WRITE -1 fe:00:10952946 0 EOF";
		 * a waiter's line has "->" where the class is. */
		if (sscanf(line, "lock: %*d: %15s %15s %15s %d %x:%x:%lu", cls,
			   mode, kind, &lpid, &maj, &min, &ino) != 7)
			continue;
		if ((strcmp(cls, "OFDLCK") && strcmp(cls, "POSIX")) ||
		    maj != major(st->st_dev) || min != minor(st->st_dev) ||
		    ino != (unsigned long)st->st_ino)
			continue;
		if (!strcmp(kind, "WRITE"))
			*held = F_WRLCK;
		else if (!strcmp(kind, "READ") && type == F_WRLCK)
			*held = F_RDLCK;
		else
			continue;
		found = true;
	}
	fclose(fp);
	return found;
}

static pid_t file_lock_holder(const struct stat *st, short type, short *held,
			      char *comm, size_t comm_len)
{
	int budget = FILE_HOLDER_SCAN;
	pid_t found = 0;

	for (int pass = 0; pass < 2 && !found && budget > 0; pass++) {
		DIR *proc = opendir("/proc");
		struct dirent *pe;

		if (!proc)
			return 0;
		while (!found && budget > 0 && (pe = readdir(proc))) {
			char path[64];
			struct dirent *fe;
			pid_t pid;
			DIR *fds;

			if (!isdigit((unsigned char)pe->d_name[0]))
				continue;
			pid = atoi(pe->d_name);
			proc_comm(pid, comm, comm_len);
			if ((strcmp(comm, "rawvec") != 0) != pass)
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
			fds = opendir(path);
			if (!fds)
				continue;
			while (!found && budget > 0 && (fe = readdir(fds))) {
				if (!isdigit((unsigned char)fe->d_name[0]))
					continue;
				budget--;
				if (fd_holds_lock(pid, atoi(fe->d_name), st,
						  type, held))
					found = pid;
			}
			closedir(fds);
		}
		closedir(proc);
	}
	return found;
}

/*
 * A lock in the way that no process holds: the image's last server has
 * just died, and the kernel has not yet let go of the files its io_uring
 * held (the ring is torn down after the process is gone; seen right after
 * kill -9 with I/O in flight).  Rather than refuse naming nobody, try
 * again for up to FILE_ORPHAN_WAIT_MS.  Returns whether @type was taken.
 */
#define FILE_ORPHAN_WAIT_MS 1000

static bool file_lock_orphan_wait(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	for (int ms = 0; ms < FILE_ORPHAN_WAIT_MS; ms += 10) {
		usleep(10000);
		if (!fcntl(fd, F_OFD_SETLK, &fl))
			return true;
		if (errno != EAGAIN && errno != EACCES)
			return false;
	}
	return false;
}

/* A lock of @type on @fd is in the way: refuse, naming its holder (-EBUSY),
 * or take it once a holder that is no process lets go (0). */
static int file_lock_busy(const char *path, int fd, const struct stat *st,
			  short type, char *err, size_t err_len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
	short held = F_WRLCK;
	char comm[64] = "";
	pid_t pid;

	/* A POSIX lock in the way comes with its owner's pid. */
	if (!fcntl(fd, F_OFD_GETLK, &fl) && fl.l_type != F_UNLCK)
		held = fl.l_type;
	pid = fl.l_pid > 0 ? fl.l_pid : 0;
	if (pid)
		proc_comm(pid, comm, sizeof(comm));
	else
		pid = file_lock_holder(st, type, &held, comm, sizeof(comm));
	if (pid == getpid())
		snprintf(err, err_len,
			 "%s: in use by this process, which holds a %s lock on it through another open",
			 path, held == F_WRLCK ? "write" : "read");
	else if (pid)
		snprintf(err, err_len,
			 "%s: in use by another process (pid %d, %s) holding a %s lock; two servers on one image corrupt it",
			 path, (int)pid, comm[0] ? comm : "?",
			 held == F_WRLCK ? "write" : "read");
	else if (file_lock_orphan_wait(fd, type))
		return 0;
	else
		snprintf(err, err_len,
			 "%s: in use by another process holding a %s lock; two servers on one image corrupt it",
			 path, held == F_WRLCK ? "write" : "read");
	return -EBUSY;
}

/* Lock image @fd (@st its fstat) as qemu does: a write lock to serve it
 * read-write, a read lock for -o ro, so that ro servers share an image
 * and nothing else does.  Whole-file, so it also meets the byte locks
 * qemu takes.  On a filesystem without locks the image goes unlocked,
 * with a warning. */
static int file_lock_take(const char *path, int fd, const struct stat *st,
			  bool read_only, struct file_lock **out, char *err,
			  size_t err_len)
{
	short type = read_only ? F_RDLCK : F_WRLCK;
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
	struct file_lock *lk;

	*out = NULL;
	for (lk = file_locks; lk; lk = lk->fl_next) {
		if (lk->fl_dev != st->st_dev || lk->fl_ino != st->st_ino)
			continue;
		/* Every open in one process has the same -o ro, so a read
		 * lock never needs to become a write lock here. */
		if (lk->fl_type == F_RDLCK && type == F_WRLCK) {
			snprintf(err, err_len,
				 "%s: already open read-only here", path);
			return -EBUSY;
		}
		lk->fl_refs++;
		*out = lk;
		return 0;
	}
	if (fcntl(fd, F_OFD_SETLK, &fl)) {
		int e = errno;

		if (e == EAGAIN || e == EACCES) {
			int ret = file_lock_busy(path, fd, st, type, err,
						 err_len);

			if (ret)
				return ret;
		} else if (e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS ||
			   e == EINVAL) {
			bdev_log("%s: cannot be locked (%s): nothing keeps a second server off it",
				 path, strerror(e));
			return 0;
		} else {
			snprintf(err, err_len, "%s: cannot lock: %s", path,
				 strerror(e));
			return -e;
		}
	}
	lk = calloc(1, sizeof(*lk));
	if (!lk) {
		snprintf(err, err_len, "%s: out of memory", path);
		return -ENOMEM;
	}
	lk->fl_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (lk->fl_fd < 0) {
		int e = errno;

		snprintf(err, err_len, "%s: cannot keep its lock: %s", path,
			 strerror(e));
		free(lk);
		return -e;
	}
	lk->fl_dev = st->st_dev;
	lk->fl_ino = st->st_ino;
	lk->fl_type = type;
	lk->fl_refs = 1;
	lk->fl_next = file_locks;
	file_locks = lk;
	*out = lk;
	return 0;
}

/* Open @path as @opts say (creating a missing image when asked): returns
 * the fd, with what it is in @st and whether it was made now in @created,
 * or -errno with the reason in @err. */
static int file_open_fd(const char *path, const struct bdev_file_opts *opts,
			struct stat *st, bool *created, char *err,
			size_t err_len)
{
	int flags = (opts->read_only ? O_RDONLY : O_RDWR) | O_DIRECT |
		    O_CLOEXEC;
	int fd, ret;

	*created = false;
	if (!stat(path, st)) {
		if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
			snprintf(err, err_len,
				 "%s: not a regular file or block device",
				 path);
			return -EINVAL;
		}
		/* Exclusive, as mkfs and md open devices: a device that is
		 * mounted or in use elsewhere is refused (EBUSY). */
		if (S_ISBLK(st->st_mode))
			flags |= O_EXCL;
	}
	fd = open(path, flags);
	if (fd < 0 && errno == ENOENT && opts->create_size &&
	    !opts->read_only) {
		fd = open(path, flags | O_CREAT | O_EXCL, 0600);
		*created = fd >= 0;
	}
	if (fd < 0 && errno == EINVAL) {
		snprintf(err, err_len,
			 "%s: the filesystem refuses O_DIRECT (tmpfs before 6.6?)",
			 path);
		return -EINVAL;
	}
	if (fd < 0) {
		ret = -errno;
		snprintf(err, err_len, "%s: %s%s", path, strerror(-ret),
			 ret == -EBUSY ? " (mounted or in use)" : "");
		return ret;
	}
	if (fstat(fd, st)) {
		ret = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(-ret));
		goto out_close;
	}
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
		ret = -EINVAL;
		snprintf(err, err_len, "%s: not a regular file or block device",
			 path);
		goto out_close;
	}
	return fd;
out_close:
	if (*created)
		unlink(path);
	close(fd);
	return ret;
}

/* Size and alignment of the open @fd; a size alignment does not divide,
 * or 0, is refused. */
static int file_geometry(struct file_dev *f, const struct stat *st,
			 const char *path, char *err, size_t err_len)
{
	struct bdev *d = &f->fd_bdev;
	uint64_t size = (uint64_t)st->st_size;

	d->bd_is_blockdev = S_ISBLK(st->st_mode);
	if (d->bd_is_blockdev && ioctl(f->fd_fd, BLKGETSIZE64, &size)) {
		int ret = -errno;

		snprintf(err, err_len, "%s: BLKGETSIZE64: %s", path,
			 strerror(-ret));
		return ret;
	}
	learn_alignment(f->fd_fd, d->bd_is_blockdev, &d->bd_align,
			&d->bd_mem_align);
	if (!size) {
		snprintf(err, err_len, "%s: size is 0", path);
		return -EINVAL;
	}
	if (size % d->bd_align) {
		snprintf(err, err_len, "%s: size %llu is not a multiple of %u",
			 path, (unsigned long long)size, d->bd_align);
		return -EINVAL;
	}
	d->bd_size = size;
	return 0;
}

int bdev_file_open(const char *path, const struct bdev_file_opts *opts,
		   struct bdev **out, char *err, size_t err_len)
{
	struct file_lock *lock = NULL;
	struct file_dev *f = NULL;
	bool created;
	struct stat st;
	int fd, ret;

	fd = file_open_fd(path, opts, &st, &created, err, err_len);
	if (fd < 0)
		return fd;
	/* Block devices are exclusive through O_EXCL already.  A new image
	 * is locked before it gets its size, so no one else serves it. */
	if (S_ISREG(st.st_mode)) {
		ret = file_lock_take(path, fd, &st, opts->read_only, &lock, err,
				     err_len);
		if (ret == -EBUSY)
			/* Its holder opened it: not ours to remove. */
			created = false;
		if (ret)
			goto out_close;
	}
	if (created) {
		if (ftruncate(fd, opts->create_size)) {
			ret = -errno;
			snprintf(err, err_len, "%s: cannot set size: %s", path,
				 strerror(-ret));
			goto out_close;
		}
		st.st_size = opts->create_size;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->fd_bdev.bd_name = strdup(path))) {
		ret = -ENOMEM;
		snprintf(err, err_len, "%s: out of memory", path);
		goto out_close;
	}
	f->fd_fd = fd;
	ret = file_geometry(f, &st, path, err, err_len);
	if (ret)
		goto out_close;
	f->fd_bdev.bd_created = created;
	/* fallocate zeroes partial blocks itself; device ioctls do not. */
	f->fd_bdev.bd_byte_zero = !S_ISBLK(st.st_mode);
	f->fd_bdev.bd_discard_zeroes = S_ISREG(st.st_mode);
	f->fd_bdev.bd_id_dev = S_ISBLK(st.st_mode) ? 0 : st.st_dev;
	f->fd_bdev.bd_id_ino = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_ino;
	f->fd_bdev.bd_ops = &file_ops;
	f->fd_bdev.bd_kind = f->fd_bdev.bd_is_blockdev ? "blockdev" : "file";
	f->fd_bdev.bd_desc = &file_kind;
	f->fd_bdev.bd_read_only = opts->read_only;
	f->fd_lock = lock;
	*out = &f->fd_bdev;
	return 0;
out_close:
	if (created)
		unlink(path);
	close(fd);
	file_lock_put(lock);
	if (f)
		free(f->fd_bdev.bd_name);
	free(f);
	return ret;
}

static int file_create(const struct bdev_kind_args *a, struct bdev **out,
		       char *err, size_t errlen)
{
	return bdev_file_open(a->ka_path, a->ka_file, out, err, errlen);
}

const struct bdev_kind file_kind = {
	.bk_name = "file",
	.bk_flags = BK_PATH | BK_SHARED,
	.bk_create = file_create,
};
