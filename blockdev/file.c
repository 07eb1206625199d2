/* file: the leaf backend, an image file or block device opened O_DIRECT and
 * driven through the shared io_uring; fixed buffers where a piece allows. */
#include "bdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

struct file_dev {
	struct bdev fd_bdev;
	struct bdev_ring *fd_ring;
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

static void file_done(struct bdev_ring_op *op, int res, unsigned flags)
{
	struct bdev_req *req = (struct bdev_req *)((char *)op -
			offsetof(struct bdev_req, br_ring));

	(void)flags;
	if (res == -EOPNOTSUPP && req->br_op == BDEV_DISCARD &&
	    req->br_dev->bd_is_blockdev) {
		/* No zeroing discard (write-zeroes with unmap) on this
		 * device: a plain one, synchronous, is what is left. */
		res = blkdev_range_ioctl(to_file(req->br_dev)->fd_fd, BLKDISCARD,
					 req->br_pos, req->br_len);
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
		sqe = bdev_ring_sqe(f->fd_ring, &req->br_ring);
		if (nr == 1 && bdev_ring_in_pool(f->fd_ring, req->br_iov[0].iov_base,
						 req->br_iov[0].iov_len)) {
			if (req->br_op == BDEV_READ)
				io_uring_prep_read_fixed(sqe, f->fd_fd,
					req->br_iov[0].iov_base,
					req->br_iov[0].iov_len, req->br_pos, 0);
			else
				io_uring_prep_write_fixed(sqe, f->fd_fd,
					req->br_iov[0].iov_base,
					req->br_iov[0].iov_len, req->br_pos, 0);
		} else if (req->br_op == BDEV_READ) {
			io_uring_prep_readv(sqe, f->fd_fd, req->br_iov, nr,
					    req->br_pos);
		} else {
			io_uring_prep_writev(sqe, f->fd_fd, req->br_iov, nr,
					     req->br_pos);
		}
		return;
	case BDEV_FLUSH:
		sqe = bdev_ring_sqe(f->fd_ring, &req->br_ring);
		io_uring_prep_fsync(sqe, f->fd_fd, IORING_FSYNC_DATASYNC);
		return;
	case BDEV_DISCARD:
	case BDEV_ZERO:
		/* io_uring runs fallocate in a worker, so a long zero-out
		 * never stalls the loop.  On a block device PUNCH_HOLE is a
		 * discard that reads back zeroes, ZERO_RANGE a zero-out. */
		sqe = bdev_ring_sqe(f->fd_ring, &req->br_ring);
		io_uring_prep_fallocate(sqe, f->fd_fd,
			FALLOC_FL_KEEP_SIZE | (req->br_op == BDEV_DISCARD ?
				FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE),
			req->br_pos, req->br_len);
		return;
	default:
		bdev_req_complete(req, -EOPNOTSUPP);
	}
}

static void file_submit(struct bdev *dev, struct bdev_req *req)
{
	req->br_ring.ro_done = file_done;
	file_queue(to_file(dev), req);
}

static void file_destroy(struct bdev *dev)
{
	struct file_dev *f = to_file(dev);

	fdatasync(f->fd_fd);
	close(f->fd_fd);
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
	    (stx.stx_mask & STATX_DIOALIGN) && is_pow2(stx.stx_dio_offset_align) &&
	    is_pow2(stx.stx_dio_mem_align)) {
		*align = stx.stx_dio_offset_align;
		*mem_align = stx.stx_dio_mem_align;
	}
}

int bdev_file_open(const char *path, struct bdev_ring *ring,
		   const struct bdev_file_opts *opts, struct bdev **out,
		   char *err, size_t err_len)
{
	int flags = (opts->read_only ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC;
	struct file_dev *f = NULL;
	bool created = false;
	struct stat st;
	uint64_t size;
	int fd, ret;

	if (!stat(path, &st)) {
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			snprintf(err, err_len, "%s: not a regular file or block device",
				 path);
			return -EINVAL;
		}
		/* Exclusive, as mkfs and md open devices: a device that is
		 * mounted or in use elsewhere is refused (EBUSY). */
		if (S_ISBLK(st.st_mode))
			flags |= O_EXCL;
	}
	fd = open(path, flags);
	if (fd < 0 && errno == ENOENT && opts->create_size && !opts->read_only) {
		fd = open(path, flags | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			created = true;
			if (ftruncate(fd, opts->create_size)) {
				ret = -errno;
				snprintf(err, err_len, "%s: cannot set size: %s",
					 path, strerror(-ret));
				goto out_close;
			}
		}
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
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(-ret));
		goto out_close;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->fd_bdev.bd_name = strdup(path))) {
		ret = -ENOMEM;
		snprintf(err, err_len, "%s: out of memory", path);
		goto out_close;
	}
	if (S_ISBLK(st.st_mode)) {
		f->fd_bdev.bd_is_blockdev = true;
		if (ioctl(fd, BLKGETSIZE64, &size)) {
			ret = -errno;
			snprintf(err, err_len, "%s: BLKGETSIZE64: %s", path,
				 strerror(-ret));
			goto out_close;
		}
	} else if (S_ISREG(st.st_mode)) {
		size = st.st_size;
	} else {
		ret = -EINVAL;
		snprintf(err, err_len,
			 "%s: not a regular file or block device", path);
		goto out_close;
	}
	learn_alignment(fd, f->fd_bdev.bd_is_blockdev, &f->fd_bdev.bd_align,
			&f->fd_bdev.bd_mem_align);
	if (!size) {
		ret = -EINVAL;
		snprintf(err, err_len, "%s: size is 0", path);
		goto out_close;
	}
	if (size % f->fd_bdev.bd_align) {
		ret = -EINVAL;
		snprintf(err, err_len, "%s: size %llu is not a multiple of %u",
			 path, (unsigned long long)size, f->fd_bdev.bd_align);
		goto out_close;
	}
	f->fd_bdev.bd_created = created;
	/* fallocate zeroes partial blocks itself; device ioctls do not. */
	f->fd_bdev.bd_byte_zero = !S_ISBLK(st.st_mode);
	f->fd_bdev.bd_id_dev = S_ISBLK(st.st_mode) ? 0 : st.st_dev;
	f->fd_bdev.bd_id_ino = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_ino;
	f->fd_bdev.bd_ops = &file_ops;
	f->fd_bdev.bd_kind = f->fd_bdev.bd_is_blockdev ? "blockdev" : "file";
	f->fd_bdev.bd_size = size;
	f->fd_bdev.bd_read_only = opts->read_only;
	f->fd_ring = ring;
	f->fd_fd = fd;
	*out = &f->fd_bdev;
	return 0;
out_close:
	close(fd);
	if (created)
		unlink(path);
	if (f)
		free(f->fd_bdev.bd_name);
	free(f);
	return ret;
}
