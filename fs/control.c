/* control: the MOUNTPOINT/control file's commands, one per line.  Every
 * rejected command is logged with its reason and fails the write(2). */
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../blockdev/faulty.h"
#include "../blockdev/layout.h"
#include "../blockdev/member.h"

static int run_line(struct rv_fs *fs, char *line)
{
	char orig[4096];
	char *save = NULL, *cmd;

	snprintf(orig, sizeof(orig), "%s", line); /* strtok_r cuts @line */
	cmd = strtok_r(line, " \t", &save);
	char *a1 = strtok_r(NULL, " \t", &save), *a2 = strtok_r(NULL, " \t", &save);
	char *extra = strtok_r(NULL, " \t", &save);
	char err[8192];
	struct layer *l;
	int m, ret;

	if (!cmd)
		return 0;
	if (!strcmp(cmd, "fail") && a1 && !a2) {
		ret = member_lookup(fs->dev, a1, &l, &m, err, sizeof(err));
		if (ret)
			goto bad;
		member_fail(l, m);
		rv_log("control: member %s (%s of %s) marked failed", a1,
		       l->l_members[m]->bd_name, l->l_kind);
		return 0;
	}
	if (!strcmp(cmd, "replace") && a1 && a2 && !extra) {
		struct bdev_layout_opts o = { .read_only = fs->read_only,
					      .max_io_bytes = fs->max_write + 2 * 65536 };
		struct bdev *dev;

		ret = member_lookup(fs->dev, a1, &l, &m, err, sizeof(err));
		if (!ret)
			ret = member_can_replace(fs->dev, a1, l, m, err, sizeof(err));
		if (ret)
			goto bad;
		/* A missing image is created at the size of what it replaces. */
		o.create_size = l->l_members[m]->bd_size;
		ret = bdev_layout_open(a2, &fs->ring, &o, &dev, err, sizeof(err));
		if (ret)
			goto bad;
		ret = member_replace(fs->dev, a1, l, m, dev, err, sizeof(err));
		if (ret) {
			if (dev->bd_created)
				unlink(a2);
			bdev_destroy(dev);
			goto bad;
		}
		rv_log("control: member %s of %s replaced by %s%s", a1, l->l_kind, a2,
		       l->l_sweep ? ", rebuilding" : "");
		return 0;
	}
	if (!strcmp(cmd, "fault") && a1 && a2) {
		struct bdev *node;

		ret = member_lookup(fs->dev, a1, &l, &m, err, sizeof(err));
		if (ret)
			goto bad;
		node = l->l_members[m];
		if (!bdev_is_faulty(node)) {
			snprintf(err, sizeof(err), "member %s is %s, not faulty()", a1,
				 node->bd_kind);
			ret = -EINVAL;
			goto bad;
		}
		/* Everything after the address: "read_eio=0.01 at=0..1m". */
		ret = faulty_configure(node, orig + (a2 - line), err, sizeof(err));
		if (ret)
			goto bad;
		rv_log("control: faults of member %s now: %s", a1, orig + (a2 - line));
		return 0;
	}
	if ((!strcmp(cmd, "check") || !strcmp(cmd, "repair")) && !a1) {
		ret = member_scrub(fs->dev, cmd[0] == 'r');
		if (ret == 0) {
			snprintf(err, sizeof(err), "no redundant layer to %s", cmd);
			ret = -EINVAL;
		}
		if (ret < 0) {
			if (ret == -EBUSY)
				snprintf(err, sizeof(err), "a rebuild or scrub is running");
			goto bad;
		}
		rv_log("control: %s started on %d layer%s", cmd, ret, ret == 1 ? "" : "s");
		return 0;
	}
	snprintf(err, sizeof(err), "unknown command or wrong arguments (see: cat control)");
	ret = -EINVAL;
bad:
	rv_log("control: '%s%s%s%s%s': %s", cmd, a1 ? " " : "", a1 ? a1 : "",
	       a2 ? " " : "", a2 ? a2 : "", err);
	return ret;
}

int rv_control(struct rv_fs *fs, const char *text, size_t len)
{
	char buf[4096], *save = NULL;

	if (len >= sizeof(buf)) {
		rv_log("control: command too long (%zu bytes)", len);
		return -EINVAL;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	for (char *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		/* The log line says why; the writer sees EINVAL for any
		 * command that was not carried out. */
		if (run_line(fs, line))
			return -EINVAL;
	}
	return 0;
}
