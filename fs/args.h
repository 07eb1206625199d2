/* args: rawvec's command line: the options of a mount into struct rv_opts,
 * and --help.  Every bad option is a message naming it and exit 2. */
#ifndef RAWVEC_ARGS_H
#define RAWVEC_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "fs/fs.h"

#define RAWVEC_VERSION "0.1.0"
#define EXIT_USAGE 2
#define EXIT_RUNTIME 1

/** struct rv_opts - what the command line asks of one mount. */
struct rv_opts {
	const char *mountpoint;
	const char *target;
	bool foreground;
	bool read_only;
	bool allow_other;
	bool enable_uring;
	uint64_t create_size;
	uint64_t pool_bytes;
	bool pool_set;
	const char *trace_path;
	const char *log_path;
	bool uid_set, gid_set;
	uid_t disk_uid;
	gid_t disk_gid;
	mode_t disk_umask;
	enum rv_transport_kind transport;
	int threads; /* 0: auto */
	int pin;     /* 1: on, -1: off, 0: auto (on over members in memory) */
	uint64_t control_timeout_ns; /* -o control_timeout=, 10 s */
};

/**
 * rv_parse_args() - fill @o from @argv; --help and --version print and
 * exit 0.  Returns 0, or -EINVAL after a message naming the bad argument.
 */
int rv_parse_args(int argc, char **argv, struct rv_opts *o);

/** rv_usage() - the --help text, to @f. */
void rv_usage(FILE *f);

#endif
