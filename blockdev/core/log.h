/* log: how blockdev/ says what happened (a member failed, a rebuild ended)
 * without knowing where logs go; the daemon points it at its log. */
#ifndef RAWVEC_BDEV_LOG_H
#define RAWVEC_BDEV_LOG_H

/* Takes one message, without the "rawvec: " prefix or a newline. */
typedef void (*bdev_log_fn)(const char *msg);

/**
 * bdev_log_set() - send every bdev_log() message to @fn from now on; NULL
 * (the start) writes "rawvec: MESSAGE\n" to stderr.
 */
void bdev_log_set(bdev_log_fn fn);

/** bdev_log() - one message, printf-style. */
void bdev_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
