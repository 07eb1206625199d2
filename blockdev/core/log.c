/* log: the library's log line, formatted once and handed to the daemon's
 * log (or stderr); messages are rare events, never per request. */
#include "blockdev/core/log.h"

#include <stdarg.h>
#include <stdio.h>

static bdev_log_fn log_fn;

void bdev_log_set(bdev_log_fn fn)
{
	log_fn = fn;
}

void bdev_log(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_fn)
		log_fn(buf);
	else
		fprintf(stderr, "rawvec: %s\n", buf);
}
