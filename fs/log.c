/* log: where the daemon's messages go: its starter's stderr, -o log=FILE,
 * or syslog once detached; stderr itself is captured line by line. */
#include "fs/fs.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/*
 * Where the log goes.  While rawvec has its starter's stderr, there; with
 * -o log=FILE also (and, detached, only) to FILE; detached without a file,
 * to syslog, which journald reads too.  A daemon's stdio is /dev/null, so
 * without this every reason it gives would be lost.
 */
static int log_fd = -1;
static bool log_stderr = true;
static bool log_syslog;
static FILE *log_stream; /* what stderr became: see log_capture_stderr() */

/* One line to the file and syslog (not stderr): @line has no newline. */
static void log_line(const char *line, size_t len)
{
	static const char prefix[] = "rawvec: ";
	char buf[8192], stamp[64];
	struct tm tm;
	time_t now = time(NULL);
	ssize_t w;
	int n;

	/* Start-up errors go to stderr as "rawvec: ...": one prefix. */
	if (len >= sizeof(prefix) - 1 &&
	    !memcmp(line, prefix, sizeof(prefix) - 1)) {
		line += sizeof(prefix) - 1;
		len -= sizeof(prefix) - 1;
	}
	if (log_fd >= 0) {
		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
		n = snprintf(buf, sizeof(buf), "%s rawvec[%d]: %.*s\n", stamp,
			     (int)getpid(), (int)len, line);
		if (n >= (int)sizeof(buf)) {
			n = sizeof(buf);
			buf[n - 1] = '\n';
		}
		/* O_APPEND: one write(2) is one unbroken line.  A failed
		 * one has nowhere left to be reported. */
		w = write(log_fd, buf, (size_t)n);
		(void)w;
	}
	if (log_syslog)
		syslog(LOG_NOTICE, "%.*s", (int)len, line);
}

/* @text split at newlines into log_line()s.  With @rest (a stream's
 * bytes), a line without its newline yet waits there for the next call;
 * a line longer than @cap is cut. */
static void log_lines(const char *text, size_t len, char *rest,
		      size_t *rest_len, size_t cap)
{
	while (len) {
		const char *nl = memchr(text, '\n', len);
		size_t n = nl ? (size_t)(nl - text) : len;

		if (!rest) {
			log_line(text, n);
		} else {
			size_t take = n < cap - *rest_len ? n : cap - *rest_len;

			memcpy(rest + *rest_len, text, take);
			*rest_len += take;
			if (nl || *rest_len == cap) {
				log_line(rest, *rest_len);
				*rest_len = 0;
			}
		}
		if (!nl)
			break;
		text = nl + 1;
		len -= n + 1;
	}
}

static char cookie_rest[4096];
static size_t cookie_rest_len;

static ssize_t log_cookie_write(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	if (log_stderr && write(STDERR_FILENO, buf, size) < 0)
		log_stderr = false;
	log_lines(buf, size, cookie_rest, &cookie_rest_len,
		  sizeof(cookie_rest));
	return (ssize_t)size;
}

/*
 * Start-up errors and libfuse report with fprintf(stderr, ...) (blockdev/
 * through bdev_log(), which main.c points at rv_log()): point stderr
 * at a stream that passes its bytes on to the terminal as they are (the
 * layout's caret lines stay aligned) and line by line to the log.
 */
static void log_capture_stderr(void)
{
	cookie_io_functions_t io = { .write = log_cookie_write };
	FILE *f;

	if (log_stream)
		return;
	f = fopencookie(NULL, "w", io);
	if (!f)
		return;
	setvbuf(f, NULL, _IOLBF, 0);
	log_stream = f;
	stderr = f;
}

int rv_log_open(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -errno;
	log_fd = fd;
	log_capture_stderr();
	return 0;
}

void rv_log_detach(void)
{
	int fd = open("/dev/null", O_RDWR);

	log_capture_stderr();
	fflush(stderr);
	log_stderr = false;
	if (log_fd < 0) {
		openlog("rawvec", LOG_PID, LOG_DAEMON);
		log_syslog = true;
	}
	/* What writes to fd 2 itself (fusermount3 when it unmounts) goes
	 * to the file, or nowhere: never to the starter's terminal. */
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(log_fd >= 0 ? log_fd : fd, STDERR_FILENO);
		if (fd > 2)
			close(fd);
	}
}

void rv_log(const char *fmt, ...)
{
	char buf[16384];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (log_stderr) {
		struct iovec iov[3] = { { (void *)"rawvec: ", 8 },
					{ buf, (size_t)n },
					{ (void *)"\n", 1 } };

		if (writev(STDERR_FILENO, iov, 3) < 0)
			log_stderr = false;
	}
	log_lines(buf, (size_t)n, NULL, NULL, 0);
}
