/* control: the MOUNTPOINT/control file's commands, one per line.  Every
 * rejected command is logged with its reason and fails the write(2).
 *
 * `replace` opens paths, and a path may lead into this very mount: opened
 * from the event loop, the loop would wait on a FUSE request only it can
 * serve.  So the path work (checks, open, --create) runs in a short-lived
 * worker thread while the loop goes on serving, and the write is answered
 * when the worker is done.  The worker never touches the ring or the tree:
 * it gets copies, and hands back an opened device through an eventfd the
 * loop reads on the ring. */
#include "fs/fs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockdev/kind.h"
#include "blockdev/layout.h"
#include "blockdev/levels/member.h"
#include "blockdev/members/faulty.h"
#include "fs/pathcheck.h"

#define CTL_TEXT_MAX 4096
#define CTL_PENDING RV_CONTROL_PENDING
#define CTL_MAX_LEAVES 256

/* One file or block device of the tree, by identity (bdev bd_id_*). */
struct ctl_id {
	uint64_t dev, ino;
	char addr[MEMBER_ADDR_MAX];
	char *name;
};

/*
 * What the worker works on: copies of everything it reads, so it never
 * looks at loop state.  The loop owns it until it gives up waiting
 * (@abandoned, under @lock); then the worker frees it when it is done.
 */
struct ctl_prep {
	pthread_mutex_t lock;
	bool finished, abandoned;
	int efd;
	char *path;
	char *mountpoint;
	struct bdev_layout_opts lopts;
	struct ctl_id *ids;
	int nr_ids;
	uint64_t old_size;
	uint32_t align;
	bool array_keeps_data; /* a sibling of the member keeps what it is written */
	bool tree_has_md;      /* an array of the tree keeps md superblocks */
	char addr[MEMBER_ADDR_MAX];
	/* results */
	struct bdev *dev;
	int ret;
	char err[8192];
};

/* One write(2) to the control file, carried out line by line. */
struct ctl_job {
	struct rv_req *req;
	rv_control_done_fn done;
	char text[CTL_TEXT_MAX];
	char *save;
	bool started;
	/* the replace waiting for its worker */
	char cmd[CTL_TEXT_MAX];
	char addr[MEMBER_ADDR_MAX];
	struct layer *l;
	int m;
	struct ctl_prep *prep;
	bool quiesced; /* every loop has seen the member failed */
};

struct rv_ctl {
	struct loop_op efd_op;
	struct loop_hook timeout;
	struct rv_fs *fs;
	struct ctl_job *job; /* waiting for its worker */
	int efd;
	uint64_t efd_val;
	bool efd_armed;
};

/* ---- the worker --------------------------------------------------------- */

static int id_match(struct ctl_prep *p, uint64_t dev, uint64_t ino,
		    const char *what)
{
	for (int i = 0; i < p->nr_ids; i++) {
		if (p->ids[i].dev != dev || p->ids[i].ino != ino)
			continue;
		snprintf(p->err, sizeof(p->err), "%s is already member %s (%s)",
			 what, p->ids[i].addr, p->ids[i].name);
		return -EINVAL;
	}
	return 0;
}

/* Before anything is opened or created: a path naming a live member
 * (through any symlink or hard link), or leading into this mount. */
static int check_path(struct ctl_prep *p, dev_t self, const char *path)
{
	struct stat st;
	int ret = 0;

	if (!stat(path, &st))
		ret = S_ISBLK(st.st_mode) ?
			      id_match(p, 0, st.st_rdev, path) :
			      id_match(p, st.st_dev, st.st_ino, path);
	return ret ? ret : rv_path_depends(self, path, p->err, sizeof(p->err));
}

struct leaf_ctx {
	struct ctl_prep *p;
	dev_t self;
};

/* After opening: the same by what was opened, which no rename or symlink
 * swapped meanwhile can fool. */
static int check_opened(struct bdev *node, const char *addr, void *ctx)
{
	struct leaf_ctx *lc = ctx;
	int ret;

	(void)addr;
	if (bdev_is_layer(node) || (!node->bd_id_dev && !node->bd_id_ino))
		return 0;
	ret = id_match(lc->p, node->bd_id_dev, node->bd_id_ino, node->bd_name);
	if (!ret)
		ret = rv_dev_check(lc->self,
				   node->bd_is_blockdev ? node->bd_id_ino :
							  node->bd_id_dev,
				   node->bd_name, false, lc->p->err,
				   sizeof(lc->p->err));
	return ret;
}

static int unlink_created(struct bdev *node, const char *addr, void *ctx)
{
	(void)addr;
	(void)ctx;
	if (!bdev_is_layer(node) && node->bd_created)
		unlink(node->bd_name);
	return 0;
}

/* A device opened for nothing: what --create made goes too. */
static void drop_dev(struct bdev *dev)
{
	member_walk(dev, unlink_created, NULL);
	bdev_destroy(dev);
}

static int prep_open(struct ctl_prep *p)
{
	struct leaf_ctx lc = { .p = p };
	char *leaves[CTL_MAX_LEAVES];
	const char *kind = NULL;
	struct stat st;
	int n, ret = 0;

	if (stat(p->mountpoint, &st)) {
		ret = -errno;
		snprintf(p->err, sizeof(p->err),
			 "cannot stat the mountpoint %s: %s", p->mountpoint,
			 strerror(-ret));
		return ret;
	}
	lc.self = st.st_dev;
	n = bdev_layout_leaves(p->path, leaves, CTL_MAX_LEAVES);
	if (n < 0) {
		snprintf(p->err, sizeof(p->err), "out of memory");
		return n;
	}
	for (int i = 0; i < n; i++) {
		if (!ret)
			ret = check_path(p, lc.self, leaves[i]);
		free(leaves[i]);
	}
	if (ret)
		return ret;
	ret = bdev_layout_open(p->path, NULL, &p->lopts, &p->dev, p->err,
			       sizeof(p->err));
	if (ret)
		return ret;
	ret = member_walk(p->dev, check_opened, &lc);
	if (!ret && p->dev->bd_size < p->old_size) {
		snprintf(p->err, sizeof(p->err),
			 "%s has %llu bytes, member %s needs %llu", p->path,
			 (unsigned long long)p->dev->bd_size, p->addr,
			 (unsigned long long)p->old_size);
		ret = -ENOSPC;
	}
	if (!ret && p->array_keeps_data &&
	    (kind = member_find_kind(p->dev, BK_NO_DATA))) {
		/* Rebuilt "ok", it would serve zeroes where the data was. */
		snprintf(p->err, sizeof(p->err),
			 "%s: %s() keeps nothing written to it, and the array's other members hold data: as member %s it would read back zeroes in their place (an image, a block device or mem() keeps it)",
			 p->path, kind, p->addr);
		ret = -EINVAL;
	}
	if (!ret && p->tree_has_md &&
	    (kind = member_find_kind(p->dev, BK_ARRAY))) {
		/* Opened here it is headerless, and at the next start the
		 * parent's superblock in its first member reads as its own. */
		snprintf(p->err, sizeof(p->err),
			 "%s: a %s in a replacement gets no md superblocks of its own, and the next start would take the array's superblock in its first member for one; replace member %s with an image or a device (or fail and replace the members of a nested array one by one)",
			 p->path, kind, p->addr);
		ret = -EINVAL;
	}
	if (!ret && p->dev->bd_align > p->align) {
		snprintf(p->err, sizeof(p->err),
			 "%s needs %u-byte alignment, the array uses %u",
			 p->path, p->dev->bd_align, p->align);
		ret = -EINVAL;
	}
	if (ret) {
		drop_dev(p->dev);
		p->dev = NULL;
	}
	return ret;
}

static void prep_free(struct ctl_prep *p)
{
	for (int i = 0; i < p->nr_ids; i++)
		free(p->ids[i].name);
	free(p->ids);
	free(p->path);
	free(p->mountpoint);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static void *prep_thread(void *arg)
{
	struct ctl_prep *p = arg;
	uint64_t one = 1;
	bool abandoned;
	int efd = p->efd;

	p->ret = prep_open(p);
	pthread_mutex_lock(&p->lock);
	p->finished = true;
	abandoned = p->abandoned;
	pthread_mutex_unlock(&p->lock);
	if (abandoned) {
		if (p->dev)
			drop_dev(p->dev);
		prep_free(p);
		return NULL;
	}
	/* From here @p is the loop's again: wake it. */
	if (write(efd, &one, sizeof(one)) != sizeof(one))
		abort(); /* an eventfd write of 1 cannot fail */
	return NULL;
}

/* ---- the loop's side ------------------------------------------------------ */

struct snap_ctx {
	struct ctl_prep *p;
	const char *skip; /* the member being replaced: its subtree goes */
	int cap;
};

static int snap_id(struct bdev *node, const char *addr, void *ctx)
{
	struct snap_ctx *s = ctx;
	struct ctl_prep *p = s->p;
	size_t sl = strlen(s->skip);

	if (!strncmp(addr, s->skip, sl) && (!addr[sl] || addr[sl] == '.'))
		return 0;
	if (bdev_is_layer(node) || (!node->bd_id_dev && !node->bd_id_ino))
		return 0;
	if (p->nr_ids == s->cap) {
		struct ctl_id *n =
			realloc(p->ids,
				sizeof(*n) * (s->cap ? s->cap * 2 : 16));

		if (!n)
			return -ENOMEM;
		p->ids = n;
		s->cap = s->cap ? s->cap * 2 : 16;
	}
	p->ids[p->nr_ids].dev = node->bd_id_dev;
	p->ids[p->nr_ids].ino = node->bd_id_ino;
	snprintf(p->ids[p->nr_ids].addr, sizeof(p->ids[0].addr), "%s", addr);
	p->ids[p->nr_ids].name = strdup(node->bd_name);
	if (!p->ids[p->nr_ids].name)
		return -ENOMEM;
	p->nr_ids++;
	return 0;
}

static void ctl_arm_efd(struct rv_ctl *c)
{
	if (c->efd_armed)
		return;
	io_uring_prep_read(loop_sqe(&c->fs->loops[0].loop, &c->efd_op), c->efd,
			   &c->efd_val, sizeof(c->efd_val), 0);
	c->efd_armed = true;
}

/* Start the worker for `replace ADDR PATH`. */
static int prep_start(struct rv_ctl *c, struct ctl_job *job, const char *path,
		      char *err, size_t errlen)
{
	struct rv_fs *fs = c->fs;
	struct snap_ctx s = { .skip = job->addr };
	struct ctl_prep *p = calloc(1, sizeof(*p));
	pthread_attr_t attr;
	pthread_t tid;
	int ret;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	s.p = p;
	p->efd = c->efd;
	p->lopts.read_only = fs->read_only;
	p->lopts.no_io = true; /* the worker may not use the loop */
	p->lopts.max_io_bytes = fs->max_write + 2 * 65536;
	p->lopts.nr_loops = fs->nr_loops;
	/* A missing image is created at the size of what it replaces. */
	p->old_size = job->l->l_members[job->m]->bd_size;
	p->lopts.create_size = p->old_size;
	p->align = job->l->l_bdev.bd_align;
	for (int i = 0; i < job->l->l_nr; i++)
		if (i != job->m && member_keeps_data(job->l->l_members[i]))
			p->array_keeps_data = true;
	p->tree_has_md = member_has_md(fs->dev);
	snprintf(p->addr, sizeof(p->addr), "%s", job->addr);
	p->path = strdup(path);
	p->mountpoint = strdup(fs->mountpoint ? fs->mountpoint : ".");
	ret = member_walk(fs->dev, snap_id, &s);
	if (ret || !p->path || !p->mountpoint) {
		prep_free(p);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&tid, &attr, prep_thread, p);
	pthread_attr_destroy(&attr);
	if (ret) {
		prep_free(p);
		snprintf(err, errlen, "cannot start a thread to open it: %s",
			 strerror(ret));
		return -ret;
	}
	job->prep = p;
	ctl_arm_efd(c);
	loop_hook_arm_at(&fs->loops[0].loop, &c->timeout,
			 loop_now_ns() + fs->ctl_timeout_ns);
	return 0;
}

/* check or repair (@cmd) on every layer that can be: 0 or -errno, why in
 * @err. */
static int run_scrub(struct rv_fs *fs, const char *cmd, char *err,
		     size_t errlen)
{
	char why[1024];
	int ret = member_scrub(&fs->loops[0].loop, fs->dev, cmd[0] == 'r', why,
			       sizeof(why));

	if (ret == -EBUSY) {
		snprintf(err, errlen, "a rebuild or scrub is running");
		return ret;
	}
	if (ret < 0) {
		snprintf(err, errlen, "%s", strerror(-ret));
		return ret;
	}
	if (ret == 0) {
		if (why[0])
			snprintf(err, errlen, "%s", why);
		else
			snprintf(err, errlen, "no redundant layer to %s", cmd);
		return -EINVAL;
	}
	if (why[0])
		rv_log("control: %s: skipped: %s", cmd, why);
	rv_log("control: %s started on %d layer%s", cmd, ret,
	       ret == 1 ? "" : "s");
	return 0;
}

static int run_line(struct rv_ctl *c, struct ctl_job *job, char *line)
{
	struct rv_fs *fs = c->fs;
	char orig[CTL_TEXT_MAX];
	char *save = NULL, *cmd;

	snprintf(orig, sizeof(orig), "%s", line); /* strtok_r cuts @line */
	cmd = strtok_r(line, " \t", &save);
	char *a1 = strtok_r(NULL, " \t", &save);
	/* replace's expression is the rest of the line, spaces and all:
	 * "nbd(URI, conns=2)" is one argument. */
	char expr[CTL_TEXT_MAX];
	size_t el;

	snprintf(expr, sizeof(expr), "%s", save ? save : "");
	el = strlen(expr);
	while (el && strchr(" \t\n", expr[el - 1]))
		expr[--el] = '\0';
	char *a2 = strtok_r(NULL, " \t", &save);
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
		rv_log("control: member %s (%s of %s) %s", a1,
		       l->l_members[m]->bd_name, l->l_kind,
		       member_fail(l, m) ? "marked failed" :
					   "is failed already");
		return 0;
	}
	if (!strcmp(cmd, "replace") && a1 && a2 &&
	    (!extra || strchr(expr, '('))) {
		/* A layout is the rest of the line; a path is one word. */
		if (strchr(expr, '('))
			a2 = expr + strspn(expr, " \t");
		ret = member_lookup(fs->dev, a1, &l, &m, err, sizeof(err));
		if (!ret)
			ret = member_can_replace(fs->dev, a1, l, m, err,
						 sizeof(err));
		if (ret)
			goto bad;
		snprintf(job->cmd, sizeof(job->cmd), "replace %s %s", a1, a2);
		snprintf(job->addr, sizeof(job->addr), "%s", a1);
		job->l = l;
		job->m = m;
		ret = prep_start(c, job, a2, err, sizeof(err));
		if (ret)
			goto bad;
		return CTL_PENDING;
	}
	if (!strcmp(cmd, "fault") && a1 && a2) {
		struct bdev *node;

		ret = member_lookup(fs->dev, a1, &l, &m, err, sizeof(err));
		if (ret)
			goto bad;
		node = l->l_members[m];
		if (!node->bd_desc || !node->bd_desc->bk_configure) {
			snprintf(err, sizeof(err),
				 "member %s is %s, not faulty()", a1,
				 node->bd_kind);
			ret = -EINVAL;
			goto bad;
		}
		/* Everything after the address: "read_eio=0.01 at=0..1m". */
		ret = node->bd_desc->bk_configure(node, orig + (a2 - line), err,
						  sizeof(err));
		if (ret)
			goto bad;
		rv_log("control: faults of member %s now: %s", a1,
		       orig + (a2 - line));
		return 0;
	}
	if ((!strcmp(cmd, "check") || !strcmp(cmd, "repair")) && !a1) {
		ret = run_scrub(fs, cmd, err, sizeof(err));
		if (ret)
			goto bad;
		return 0;
	}
	snprintf(err, sizeof(err),
		 "unknown command or wrong arguments (see: cat control)");
	ret = -EINVAL;
bad:
	rv_log("control: '%s%s%s%s%s': %s", cmd, a1 ? " " : "", a1 ? a1 : "",
	       a2 ? " " : "", a2 ? a2 : "", err);
	return ret;
}

/* Carry out @job's lines from where it stopped: 0 when all were,
 * -EINVAL at the first refused, CTL_PENDING when one waits for a worker. */
static int ctl_continue(struct rv_ctl *c, struct ctl_job *job)
{
	for (;;) {
		char *line = strtok_r(job->started ? NULL : job->text, "\n",
				      &job->save);
		int ret;

		job->started = true;
		if (!line)
			return 0;
		ret = run_line(c, job, line);
		if (ret == CTL_PENDING) {
			c->job = job;
			return CTL_PENDING;
		}
		/* The log line says why; the writer sees EINVAL for any
		 * command that was not carried out. */
		if (ret)
			return -EINVAL;
	}
}

static void ctl_finish(struct rv_ctl *c);

static void ctl_quiesced(struct rv_fs *fs)
{
	ctl_finish(fs->ctl);
}

/* The worker is done: put its device in, then go on with the write. */
static void ctl_finish(struct rv_ctl *c)
{
	struct rv_fs *fs = c->fs;
	struct ctl_job *job = c->job;
	struct ctl_prep *p = job->prep;
	char err[8192];
	int ret = p->ret;

	/* A layer that runs on every loop (raid0, linear): the others may
	 * have read the member's state before it failed and be about to
	 * submit to it.  Once each has run a message sent now, all they
	 * started is counted in its in-flight, and none starts more. */
	if (!ret && fs->nr_loops > 1 && job->l->l_bdev.bd_stats_more &&
	    !job->quiesced) {
		job->quiesced = true;
		rv_loops_barrier(fs, ctl_quiesced);
		return;
	}
	c->job = NULL;
	job->prep = NULL;
	loop_hook_disarm(&c->timeout);
	if (ret) {
		rv_log("control: '%s': %s", job->cmd, p->err);
	} else {
		/* job->l and job->m still hold: nothing else changes the
		 * tree while a control write is being carried out. */
		ret = member_replace(&fs->loops[0].loop, fs->dev, job->addr,
				     job->l, job->m, p->dev, err, sizeof(err));
		if (ret) {
			/* Rare (the checks passed a moment ago); the device
			 * passed the path checks, so closing it here is safe. */
			drop_dev(p->dev);
			rv_log("control: '%s': %s", job->cmd, err);
		} else {
			rv_log("control: member %s of %s replaced by %s%s",
			       job->addr, job->l->l_kind, p->path,
			       job->l->l_sweep ? ", rebuilding" : "");
		}
	}
	prep_free(p);
	ret = ret ? -EINVAL : ctl_continue(c, job);
	if (ret == CTL_PENDING)
		return;
	job->done(job->req, ret);
	free(job);
}

static void ctl_efd_done(struct loop_op *op, int res, unsigned flags)
{
	struct rv_ctl *c = (struct rv_ctl *)op;
	bool finished = false;

	(void)flags;
	c->efd_armed = false;
	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		rv_log("control: eventfd read failed: %s", strerror(-res));
		return;
	}
	if (c->job) {
		pthread_mutex_lock(&c->job->prep->lock);
		finished = c->job->prep->finished;
		pthread_mutex_unlock(&c->job->prep->lock);
	}
	if (finished)
		ctl_finish(c);
	if (c->job)
		ctl_arm_efd(c);
}

/* Stop waiting for the worker of the job in hand, which fails with
 * EINVAL, and log @why; the worker frees what it opens.  Nothing to do
 * once the worker has finished: its eventfd wake-up is on the way. */
static void ctl_abandon(struct rv_ctl *c, const char *why)
{
	struct ctl_job *job = c->job;
	bool abandoned = false;

	if (!job || !job->prep)
		return;
	pthread_mutex_lock(&job->prep->lock);
	if (!job->prep->finished)
		abandoned = job->prep->abandoned = true;
	pthread_mutex_unlock(&job->prep->lock);
	if (!abandoned)
		return;
	rv_log("control: '%s': given up %s; what it opens is closed again",
	       job->cmd, why);
	loop_hook_disarm(&c->timeout);
	c->job = NULL;
	job->done(job->req, -EINVAL);
	free(job);
}

static void ctl_timeout(struct loop_hook *h)
{
	struct rv_ctl *c = container_of(h, struct rv_ctl, timeout);
	char why[256];

	snprintf(why, sizeof(why),
		 "after %llu ms (-o control_timeout=): checking and opening the path did not finish (a hung filesystem or mount, or a server slow to answer?)",
		 (unsigned long long)(c->fs->ctl_timeout_ns / 1000000ull));
	ctl_abandon(c, why);
}

static int release_spikes(struct bdev *node, const char *addr, void *ctx)
{
	(void)addr;
	(void)ctx;
	if (node->bd_desc == &faulty_kind)
		faulty_release(node);
	return 0;
}

void rv_control_stop(struct rv_fs *fs)
{
	if (fs->ctl)
		ctl_abandon(fs->ctl,
			    "while checking and opening the path: rawvec is stopping");
	if (fs->dev)
		member_walk(fs->dev, release_spikes, NULL);
}

static struct rv_ctl *ctl_get(struct rv_fs *fs)
{
	struct rv_ctl *c = fs->ctl;

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->efd = eventfd(0, EFD_CLOEXEC);
	if (c->efd < 0) {
		free(c);
		return NULL;
	}
	c->fs = fs;
	c->efd_op.lo_done = ctl_efd_done;
	c->timeout.lh_fn = ctl_timeout;
	fs->ctl = c;
	return c;
}

/* Whether @text is lines of text: a NUL would end it early (what follows
 * unread), a carriage return would hide in the log and make "1\r" no
 * address; the log shows which byte is neither. */
static bool ctl_is_text(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)text[i];

		if ((b >= 0x20 && b != 0x7f) || b == '\n' || b == '\t')
			continue;
		rv_log("control: byte %zu of the %zu written is 0x%02x (%s), not text: control takes lines of text, each ending in \\n",
		       i, len, b,
		       b == 0	 ? "a NUL" :
		       b == '\r' ? "a carriage return: write \\n, not \\r\\n" :
				   "a control character");
		return false;
	}
	return true;
}

int rv_control(struct rv_fs *fs, struct rv_req *req, const char *text,
	       size_t len, rv_control_done_fn done)
{
	struct rv_ctl *c = ctl_get(fs);
	struct ctl_job *job;
	int ret;

	if (len >= CTL_TEXT_MAX) {
		rv_log("control: command too long (%zu bytes)", len);
		return -EINVAL;
	}
	if (!ctl_is_text(text, len))
		return -EINVAL;
	if (!c || !(job = calloc(1, sizeof(*job)))) {
		rv_log("control: out of memory");
		return -EINVAL;
	}
	memcpy(job->text, text, len);
	job->text[len] = '\0';
	if (c->job) {
		/* One at a time: the tree must hold still under a replace. */
		rv_log("control: '%.*s': refused: '%s' is still being carried out, retry",
		       (int)strcspn(job->text, "\n"), job->text, c->job->cmd);
		free(job);
		return -EINVAL;
	}
	job->req = req;
	job->done = done;
	ret = ctl_continue(c, job);
	if (ret != CTL_PENDING)
		free(job);
	return ret;
}
