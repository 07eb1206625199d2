/* pathcheck: leaves of a TARGET expression, and whether a path leads into
 * a given mount, directly or through devices and mounts stacked on it. */
#include "fs/pathcheck.h"
#include "blockdev/layout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define DEP_DEPTH 8	      /* hops followed from a path to the mount */
#define DEP_SEEN 64	      /* devices looked at per question */
#define DEP_MOUNTS 64	      /* rawvec mounts considered */
#define STATS_MAX (16u << 20) /* the most of another mount's stats read */

/* ---- where a path leads ----------------------------------------------------- */

/*
 * The canonical absolute path of @path, or for a missing file of where
 * open(O_CREAT) would make it: dangling symlinks followed, then the real
 * directory plus the base name.  NULL when that directory is missing too.
 */
static char *resolve_for_create(const char *path)
{
	char cur[PATH_MAX], link[PATH_MAX], *slash, *base, *dir, *res, *out;
	struct stat st;
	ssize_t n;

	if (snprintf(cur, sizeof(cur), "%s", path) >= (int)sizeof(cur))
		return NULL;
	for (int hop = 0; hop < 16; hop++) {
		res = realpath(cur, NULL);
		if (res || errno != ENOENT)
			return res;
		if (lstat(cur, &st) || !S_ISLNK(st.st_mode))
			break;
		n = readlink(cur, link, sizeof(link) - 1);
		if (n < 0)
			return NULL;
		link[n] = '\0';
		slash = strrchr(cur, '/');
		if (link[0] == '/' || !slash)
			snprintf(cur, sizeof(cur), "%s", link);
		else if (snprintf(slash + 1,
				  sizeof(cur) - (size_t)(slash + 1 - cur), "%s",
				  link) >=
			 (int)(sizeof(cur) - (size_t)(slash + 1 - cur)))
			return NULL;
	}
	slash = strrchr(cur, '/');
	base = slash ? slash + 1 : cur;
	if (!slash) {
		dir = realpath(".", NULL);
	} else if (slash == cur) {
		dir = strdup("/");
	} else {
		*slash = '\0';
		dir = realpath(cur, NULL);
	}
	if (!dir)
		return NULL;
	if (asprintf(&out, "%s/%s", strcmp(dir, "/") ? dir : "", base) < 0)
		out = NULL;
	free(dir);
	return out;
}

int rv_target_outside(const char *mountpoint, const char *expr, char *err,
		      size_t errlen)
{
	char *leaves[256];
	struct stat mp, st;
	int n, ret = 0;

	if (stat(mountpoint, &mp))
		return 0; /* the mountpoint check has said why */
	n = bdev_layout_leaves(expr, leaves,
			       (int)(sizeof(leaves) / sizeof(leaves[0])));
	if (n < 0) {
		snprintf(err, errlen, "%s: out of memory", expr);
		return n;
	}
	for (int i = 0; i < n && !ret; i++) {
		char *res = resolve_for_create(leaves[i]), *slash;

		/* Up from the file: one of its directories may be the
		 * mountpoint by another name (symlink, bind mount). */
		for (char *p = res; p && !ret;) {
			if (!stat(p, &st) && st.st_dev == mp.st_dev &&
			    st.st_ino == mp.st_ino) {
				snprintf(err, errlen,
					 "%s is inside the mountpoint %s: the mount would hide it (keep members outside the mountpoint)",
					 leaves[i], mountpoint);
				ret = -EINVAL;
			}
			slash = strrchr(p, '/');
			if (!slash || !strcmp(p, "/"))
				break;
			if (slash == p)
				slash[1] = '\0';
			else
				*slash = '\0';
		}
		free(res);
	}
	for (int i = 0; i < n; i++)
		free(leaves[i]);
	return ret;
}

/* ---- what a device depends on ------------------------------------------------ */

struct dep_walk {
	dev_t self;
	struct {
		dev_t dev;
		char path[PATH_MAX];
	} mounts[DEP_MOUNTS];
	int nr_mounts;
	dev_t seen[DEP_SEEN];
	int nr_seen;
	char hops[DEP_DEPTH][PATH_MAX + 64]; /* hops[0..nr_hops) lead to self */
	int nr_hops;
};

static bool dev_depends(struct dep_walk *w, dev_t d, int depth);

/* mountinfo escapes blanks and backslashes in paths as \ooo. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Every fuse.rawvec mount this process can see, from /proc/self/mountinfo:
 * "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE ...". */
static void load_mounts(struct dep_walk *w)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0 && w->nr_mounts < DEP_MOUNTS) {
		char *save = NULL, *tok, *mp = NULL, *type = NULL;
		unsigned maj = 0, min = 0;
		bool ok = false, dash = false;

		for (int i = 0; (tok = strtok_r(i ? NULL : line, " \n", &save));
		     i++) {
			if (i == 2)
				ok = sscanf(tok, "%u:%u", &maj, &min) == 2;
			else if (i == 4)
				mp = tok;
			else if (dash) {
				type = tok;
				break;
			} else if (i > 5 && !strcmp(tok, "-"))
				dash = true;
		}
		if (!ok || !mp || !type || strcmp(type, "fuse.rawvec"))
			continue;
		unescape(mp);
		w->mounts[w->nr_mounts].dev = makedev(maj, min);
		snprintf(w->mounts[w->nr_mounts].path, PATH_MAX, "%s", mp);
		w->nr_mounts++;
	}
	free(line);
	fclose(f);
}

/* A small text file (sysfs): 0 and its first line, or -1. */
static int read_line(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The members of the rawvec mount at @mp, by the st_dev (files) and
 * st_rdev (block devices) its stats give for each. */
static bool stats_depend(struct dep_walk *w, const char *mp, int depth)
{
	char path[PATH_MAX + 16], *buf = NULL, *p;
	size_t len = 0, cap = 0;
	bool found = false;
	int fd;

	snprintf(path, sizeof(path), "%s/stats", mp);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	for (;;) {
		ssize_t n;

		if (len + 65536 > cap) {
			char *nb;

			if (cap >= STATS_MAX)
				break;
			nb = realloc(buf, cap ? cap * 2 : 1 << 20);
			if (!nb)
				break;
			buf = nb;
			cap = cap ? cap * 2 : 1 << 20;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!buf)
		return false;
	buf[len] = '\0';
	/* Quotes inside JSON strings are escaped, so these keys cannot be
	 * part of a member's name. */
	for (p = buf; !found && (p = strstr(p, "\"st_")); p++) {
		unsigned maj, min;
		int skip;

		if (!strncmp(p, "\"st_dev\": \"", 11))
			skip = 11;
		else if (!strncmp(p, "\"st_rdev\": \"", 12))
			skip = 12;
		else
			continue;
		if (sscanf(p + skip, "%u:%u", &maj, &min) == 2)
			found = dev_depends(w, makedev(maj, min), depth);
	}
	free(buf);
	return found;
}

/* A block device: a loop device's backing file, a partition's disk, the
 * devices a device-mapper or md device sits on. */
static bool blockdev_depends(struct dep_walk *w, dev_t d, int depth)
{
	char sys[64], path[PATH_MAX + 64], line[PATH_MAX];
	unsigned maj, min;
	struct dirent *de;
	struct stat st;
	bool found = false;
	DIR *dir;

	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", major(d), minor(d));
	snprintf(path, sizeof(path), "%s/loop/backing_file", sys);
	if (!read_line(path, line, sizeof(line)) && !stat(line, &st)) {
		snprintf(w->hops[depth], sizeof(w->hops[depth]),
			 "loop device %u:%u over %s", major(d), minor(d), line);
		if (dev_depends(w, st.st_dev, depth + 1))
			return true;
	}
	snprintf(path, sizeof(path), "%s/partition", sys);
	if (!access(path, F_OK)) {
		snprintf(path, sizeof(path), "%s/../dev", sys);
		if (!read_line(path, line, sizeof(line)) &&
		    sscanf(line, "%u:%u", &maj, &min) == 2) {
			snprintf(w->hops[depth], sizeof(w->hops[depth]),
				 "partition %u:%u of %u:%u", major(d), minor(d),
				 maj, min);
			if (dev_depends(w, makedev(maj, min), depth + 1))
				return true;
		}
	}
	snprintf(path, sizeof(path), "%s/slaves", sys);
	dir = opendir(path);
	while (dir && !found && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/slaves/%s/dev", sys,
			 de->d_name);
		if (read_line(path, line, sizeof(line)) ||
		    sscanf(line, "%u:%u", &maj, &min) != 2)
			continue;
		snprintf(w->hops[depth], sizeof(w->hops[depth]),
			 "device %u:%u over %s", major(d), minor(d),
			 de->d_name);
		found = dev_depends(w, makedev(maj, min), depth + 1);
	}
	if (dir)
		closedir(dir);
	return found;
}

static bool dev_depends(struct dep_walk *w, dev_t d, int depth)
{
	if (d == w->self) {
		w->nr_hops = depth;
		return true;
	}
	if (depth >= DEP_DEPTH || w->nr_seen == DEP_SEEN)
		return false;
	for (int i = 0; i < w->nr_seen; i++)
		if (w->seen[i] == d)
			return false;
	w->seen[w->nr_seen++] = d;
	for (int i = 0; i < w->nr_mounts; i++) {
		if (w->mounts[i].dev != d)
			continue;
		snprintf(w->hops[depth], sizeof(w->hops[depth]),
			 "the rawvec mount at %s", w->mounts[i].path);
		if (stats_depend(w, w->mounts[i].path, depth + 1))
			return true;
	}
	return major(d) && blockdev_depends(w, d, depth);
}

int rv_dev_depends(dev_t self, dev_t d, char *why, size_t whylen)
{
	struct dep_walk *w = calloc(1, sizeof(*w));
	size_t len = 0;
	int found;

	if (!w)
		return 0;
	w->self = self;
	load_mounts(w);
	found = dev_depends(w, d, 0);
	if (found && whylen) {
		why[0] = '\0';
		for (int i = 0; i < w->nr_hops && len < whylen; i++)
			len += (size_t)snprintf(why + len, whylen - len,
						"%s -> ", w->hops[i]);
	}
	free(w);
	return found;
}

int rv_dev_check(dev_t self, dev_t d, const char *name, bool created, char *err,
		 size_t errlen)
{
	char why[2048];

	if (!rv_dev_depends(self, d, why, sizeof(why)))
		return 0;
	if (!why[0])
		snprintf(err, errlen,
			 "%s %s inside this rawvec mount: its I/O would wait on the mount itself",
			 name, created ? "would be created" : "is");
	else
		snprintf(err, errlen,
			 "%s %s this rawvec mount (%sthis mount): its I/O would come back into the mount",
			 name,
			 created ?
				 "would be created on a device that depends on" :
				 "depends on",
			 why);
	return -EINVAL;
}

int rv_path_depends(dev_t self, const char *path, char *err, size_t errlen)
{
	char *res, *slash;
	struct stat st;

	if (!stat(path, &st))
		return rv_dev_check(self,
				    S_ISBLK(st.st_mode) ? st.st_rdev :
							  st.st_dev,
				    path, false, err, errlen);
	if (errno != ENOENT)
		return 0; /* opening it will say why */
	res = resolve_for_create(path);
	if (!res)
		return 0;
	slash = strrchr(res, '/');
	if (slash == res)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(res, &st)) {
		free(res);
		return 0;
	}
	free(res);
	return rv_dev_check(self, st.st_dev, path, true, err, errlen);
}
