/* trace: every completed I/O of every device in the tree, recorded into a
 * compact binary file (-o trace=FILE); the format `rawvec trace` reads. */
#ifndef RAWVEC_TRACE_H
#define RAWVEC_TRACE_H

#include <stdint.h>

#include "blockdev/core/bdev.h"

/*
 * The file, in this machine's byte order (the magic tells a reader whose
 * order differs):
 *   struct bdev_trace_hdr
 *   struct bdev_trace_dev     x hdr.th_nr_devs, in tree order (parents first)
 *   struct bdev_trace_rec     to the end of the file, in completion order
 * A daemon that dies leaves a valid file up to its last flushed record;
 * a reader ignores a torn last record.
 */
#define BDEV_TRACE_MAGIC "RVTRACE1"
#define BDEV_TRACE_VERSION 1

struct bdev_trace_hdr {
	char th_magic[8];
	uint32_t th_version;
	uint32_t th_nr_devs;
	uint32_t th_dev_size;	   /* sizeof(struct bdev_trace_dev) */
	uint32_t th_rec_size;	   /* sizeof(struct bdev_trace_rec) */
	uint64_t th_start_unix_ns; /* wall clock when tracing began */
};

/**
 * struct bdev_trace_dev - one device: @td_addr is its control address
 * ("" for the top, "1", "1.0"), @td_parent the id of its layer (-1 for
 * the top).  A member put in by `replace` keeps the id of the one it
 * replaced.
 */
struct bdev_trace_dev {
	uint16_t td_id;
	int16_t td_parent;
	uint16_t td_depth;
	uint16_t td_pad;
	uint64_t td_size;
	char td_addr[32];
	char td_kind[16];
	char td_name[192];
};

/**
 * struct bdev_trace_rec - one completed request, 32 bytes.
 * @tr_start_ns: submission, ns since tracing began
 * @tr_lat_ns:   submission to completion
 * @tr_err:      0 or the errno (positive) it completed with
 */
struct bdev_trace_rec {
	uint64_t tr_start_ns;
	uint64_t tr_lat_ns;
	uint64_t tr_pos;
	uint32_t tr_len;
	uint16_t tr_dev;
	uint8_t tr_op; /* enum bdev_op */
	uint8_t tr_err;
};

struct bdev_trace;

/**
 * bdev_trace_open() - create (or truncate) @path and start recording
 * every completion of @root and the devices below it (through their
 * bd_observe: one record each, buffered, one write(2) per 4 MiB).  Returns 0, or
 * -errno with a message naming @path in @err.
 */
int bdev_trace_open(const char *path, struct bdev *root,
		    struct bdev_trace **out, char *err, size_t errlen);

/**
 * bdev_trace_close() - write what is buffered, detach the trace from
 * @root's tree and close the file.  Returns 0 or the first write error,
 * with the reason in @err.
 */
int bdev_trace_close(struct bdev_trace *t, struct bdev *root, char *err,
		     size_t errlen);

#endif
