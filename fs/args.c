/* args: the command line of a mount (options, sizes, users, transports)
 * and --help, whose layout lines the kind registry writes. */
#include "fs/args.h"
#include "blockdev/kind.h"
#include "blockdev/layout.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

void rv_usage(FILE *f)
{
	fprintf(f,
		"usage: rawvec [options] MOUNTPOINT TARGET\n"
		"       rawvec stat MOUNTPOINT [INTERVAL [COUNT]]\n"
		"       rawvec trace [--csv] FILE\n"
		"\n"
		"Serve TARGET (an image file, a block device or a layout) as\n"
		"MOUNTPOINT/disk, with statistics in MOUNTPOINT/stats and commands\n"
		"in MOUNTPOINT/control.\n"
		"\n"
		"  -f                      stay in the foreground, log to stderr\n"
		"  -o ro                   read-only: writes fail with EROFS\n"
		"  -o allow_other          let other users access the mount\n"
		"  -o uid=USER,gid=GROUP   disk's owner (default: the mounting user)\n"
		"  -o umask=OCTAL          disk's mode is 0666 without these bits\n"
		"                          (default 077: 0600)\n"
		"  -o pool=SIZE            pinned buffer pool (default 256m), shared\n"
		"                          out among the event loops\n"
		"  -o threads=N|auto       event loops, each a thread serving the FUSE\n"
		"                          queues q with q mod N = its number (default\n"
		"                          auto: one per two CPUs, one per CPU when every\n"
		"                          member is null or mem; one when the target holds\n"
		"                          a device that keeps state: sim, faulty,\n"
		"                          -o trace; raid1 runs on every loop,\n"
		"                          raid5/6 shard their stripes)\n"
		"  -o pin=auto|on|off      pin each loop to its queues' CPUs (auto: on\n"
		"                          with several loops over null or mem, else off)\n"
		"  -o trace=FILE           record every device's I/O into FILE\n"
		"                          (read it with `rawvec trace FILE`)\n"
		"  -o log=FILE             append the log to FILE (default: stderr\n"
		"                          with -f, syslog once started without)\n"
		"  -o control_timeout=DUR  how long a control write waits for its\n"
		"                          paths to open (default 10s, up to 3600s)\n"
		"  --create SIZE           create a missing image file of SIZE (sparse);\n"
		"                          with a layout, every missing member image\n"
		"  --transport=auto|uring|dev\n"
		"                          FUSE-over-io_uring, /dev/fuse, or the ring\n"
		"                          when the kernel offers it (default auto)\n"
		"  --enable-uring          root: set the fuse module's enable_uring=Y\n"
		"  -h, --help              this text\n"
		"  -V, --version           print the version\n"
		"\n"
		"SIZE takes k, m, g, t suffixes (powers of 1024).\n"
		"\n"
		"Layouts (a member M is a path or a layout; chunk: a power of 2 >= 4k,\n"
		"default 512k):\n");
	bdev_kind_usage(f);
	fprintf(f,
		"\n"
		"Commands (echo one into MOUNTPOINT/control; ADDR: 2, or 1.0 nested):\n"
		"  fail ADDR                         mark member ADDR failed\n"
		"  replace ADDR PATH                 PATH in place of failed member ADDR,\n"
		"                                    rebuilt in the background\n"
		"  fault ADDR K=V ...                change a faulty() member's options\n"
		"  check                             verify parity and mirrors\n"
		"  repair                            check, and rewrite what mismatches\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	return bdev_parse_size(s, strlen(s), out);
}

/* A number, or a name for getpwnam(). */
static int parse_user(const char *s, uid_t *out)
{
	struct passwd *pw;
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (*s && !*end && !errno && n < (uid_t)-1) {
		*out = (uid_t)n;
		return 0;
	}
	pw = *s ? getpwnam(s) : NULL;
	if (!pw) {
		fprintf(stderr, "rawvec: -o uid=%s: no such user\n", s);
		return -EINVAL;
	}
	*out = pw->pw_uid;
	return 0;
}

static int parse_group(const char *s, gid_t *out)
{
	struct group *gr;
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (*s && !*end && !errno && n < (gid_t)-1) {
		*out = (gid_t)n;
		return 0;
	}
	gr = *s ? getgrnam(s) : NULL;
	if (!gr) {
		fprintf(stderr, "rawvec: -o gid=%s: no such group\n", s);
		return -EINVAL;
	}
	*out = gr->gr_gid;
	return 0;
}

static int parse_o(struct rv_opts *o, char *list)
{
	char *save = NULL;

	for (char *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "ro")) {
			o->read_only = true;
		} else if (!strcmp(tok, "rw")) {
			o->read_only = false;
		} else if (!strcmp(tok, "allow_other")) {
			o->allow_other = true;
		} else if (!strncmp(tok, "trace=", 6)) {
			if (!tok[6]) {
				fprintf(stderr,
					"rawvec: -o trace: no file named\n");
				return -EINVAL;
			}
			o->trace_path = tok + 6;
		} else if (!strncmp(tok, "log=", 4)) {
			if (!tok[4]) {
				fprintf(stderr,
					"rawvec: -o log: no file named\n");
				return -EINVAL;
			}
			o->log_path = tok + 4;
		} else if (!strncmp(tok, "uid=", 4)) {
			if (parse_user(tok + 4, &o->disk_uid))
				return -EINVAL;
			o->uid_set = true;
		} else if (!strncmp(tok, "gid=", 4)) {
			if (parse_group(tok + 4, &o->disk_gid))
				return -EINVAL;
			o->gid_set = true;
		} else if (!strncmp(tok, "umask=", 6)) {
			char *end;
			unsigned long m = strtoul(tok + 6, &end, 8);

			if (!tok[6] || *end || m > 0777) {
				fprintf(stderr,
					"rawvec: -o umask=%s: not an octal mode from 0 to 777\n",
					tok + 6);
				return -EINVAL;
			}
			o->disk_umask = (mode_t)m;
		} else if (!strncmp(tok, "threads=", 8)) {
			char *end;
			long n = strtol(tok + 8, &end, 10);

			if (!strcmp(tok + 8, "auto")) {
				o->threads = 0;
			} else if (!tok[8] || *end || n < 1 || n > LOOP_MAX) {
				fprintf(stderr,
					"rawvec: -o threads=%s: not auto or a number from 1 to %d\n",
					tok + 8, LOOP_MAX);
				return -EINVAL;
			} else {
				o->threads = (int)n;
			}
		} else if (!strncmp(tok, "control_timeout=", 16)) {
			const char *v = tok + 16;

			if (bdev_parse_duration(v, strlen(v),
						&o->control_timeout_ns) ||
			    o->control_timeout_ns < 1000000000ull ||
			    o->control_timeout_ns > 3600ull * 1000000000) {
				fprintf(stderr,
					"rawvec: -o control_timeout=%s: not a duration from 1s to 3600s\n",
					v);
				return -EINVAL;
			}
		} else if (!strncmp(tok, "pin=", 4)) {
			if (!strcmp(tok + 4, "auto"))
				o->pin = 0;
			else if (!strcmp(tok + 4, "off"))
				o->pin = -1;
			else if (!strcmp(tok + 4, "on"))
				o->pin = 1;
			else {
				fprintf(stderr,
					"rawvec: -o pin=%s: not auto, on or off\n",
					tok + 4);
				return -EINVAL;
			}
		} else if (!strncmp(tok, "pool=", 5)) {
			o->pool_set = true;
			if (parse_size(tok + 5, &o->pool_bytes)) {
				fprintf(stderr,
					"rawvec: -o pool: bad size '%s'\n",
					tok + 5);
				return -EINVAL;
			}
			/* io_uring registers at most 1 GiB as one buffer. */
			if (o->pool_bytes > (1ull << 30)) {
				fprintf(stderr,
					"rawvec: -o pool=%s: at most 1g\n",
					tok + 5);
				return -EINVAL;
			}
		} else {
			fprintf(stderr, "rawvec: unknown mount option '%s'\n",
				tok);
			return -EINVAL;
		}
	}
	return 0;
}

int rv_parse_args(int argc, char **argv, struct rv_opts *o)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "create", required_argument, NULL, 'c' },
		{ "transport", required_argument, NULL, 't' },
		{ "enable-uring", no_argument, NULL, 'u' },
		{ "foreground", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->pool_bytes = 256ull << 20;
	o->disk_umask = 077;
	/* A control worker stuck on a hung filesystem must not keep the
	 * writer (in uninterruptible sleep on its FUSE write) and the control
	 * file forever. */
	o->control_timeout_ns = 10ull * 1000000000;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+fo:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->foreground = true;
			break;
		case 'o':
			if (parse_o(o, optarg))
				return -EINVAL;
			break;
		case 'c':
			if (parse_size(optarg, &o->create_size)) {
				fprintf(stderr,
					"rawvec: --create: bad size '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 't':
			if (!strcmp(optarg, "auto")) {
				o->transport = RV_TRANSPORT_AUTO;
			} else if (!strcmp(optarg, "uring")) {
				o->transport = RV_TRANSPORT_URING;
			} else if (!strcmp(optarg, "dev")) {
				o->transport = RV_TRANSPORT_DEV;
			} else {
				fprintf(stderr,
					"rawvec: --transport: '%s' is not auto, uring or dev\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'u':
			o->enable_uring = true;
			break;
		case 'h':
			rv_usage(stdout);
			exit(0);
		case 'V':
			printf("rawvec %s\n", RAWVEC_VERSION);
			exit(0);
		default:
			if (optopt == 'c' || optopt == 't')
				fprintf(stderr,
					"rawvec: option %s needs an argument\n",
					optopt == 'c' ? "--create" :
							"--transport");
			else if (optopt == 'o')
				fprintf(stderr,
					"rawvec: option -o needs an argument\n");
			else if (optopt && optopt != '?')
				fprintf(stderr, "rawvec: unknown option -%c\n",
					optopt);
			else
				fprintf(stderr, "rawvec: unknown option '%s'\n",
					argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr,
			"rawvec: expected MOUNTPOINT and TARGET, got %d argument%s\n",
			argc - optind, argc - optind == 1 ? "" : "s");
		return -EINVAL;
	}
	o->mountpoint = argv[optind];
	o->target = argv[optind + 1];
	/* The kernel lets nobody but the mounting user in without
	 * allow_other, whatever the disk's owner. */
	if (!o->allow_other && ((o->uid_set && o->disk_uid != getuid()) ||
				(o->gid_set && o->disk_gid != getgid()))) {
		bool u = o->uid_set && o->disk_uid != getuid();

		fprintf(stderr,
			"rawvec: -o %s=%u: another user or group reaches the disk only with -o allow_other\n",
			u ? "uid" : "gid",
			u ? (unsigned)o->disk_uid : (unsigned)o->disk_gid);
		return -EINVAL;
	}
	return 0;
}
