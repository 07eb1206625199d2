/* layer: the split-and-merge engine shared by every RAID/LVM level.  A
 * request becomes one child per contiguous run on a member; children carry
 * slices of the parent's segments (no data copied) and complete it. */
#include "blockdev/levels/layer.h"
#include "blockdev/core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/**
 * struct layer_piece - one stretch of a request that maps contiguously
 * onto one member: [@lp_off, @lp_off + @lp_len) of the request lands at
 * @lp_mpos of member @lp_member.  @lp_next chains a child's pieces.
 */
struct layer_piece {
	int lp_member;
	int lp_next;
	uint64_t lp_mpos, lp_off, lp_len;
};

/**
 * struct layer_child - the pieces that join into one member I/O: a run of
 * member bytes [@lc_pos, @lc_end), its vector a window of li_vec.
 */
struct layer_child {
	struct bdev_req lc_req;
	int lc_member;
	int lc_first, lc_last;
	uint64_t lc_pos, lc_end;
};

/**
 * struct layer_io - a request in flight through a layer.  Kept on a
 * free list and reused: after warm-up the hot path allocates nothing.
 * Children's vectors are consecutive windows of @li_vec: together they
 * never hold more than the parent's segments plus one per piece.
 */
struct layer_io {
	struct layer_io *li_next;
	struct layer *li_layer;
	struct bdev_req *li_parent;
	struct bdev_req li_req; /* parent of the member children */
	int li_nr_children;
	int li_nr_failed;  /* mirrored: children that failed */
	bool li_mirrored;  /* a mirror write succeeds if one child does */
	int li_read_from;  /* mirrored read: the member tried */
	struct layer_io *li_wnext; /* on l_writes while a mirrored write runs */
	struct layer_child *li_child;
	struct layer_piece *li_piece;
	struct pvec *li_vec;
	struct iovec *li_iov;
};

bool bdev_is_layer(const struct bdev *dev)
{
	return dev->bd_ops->destroy == layer_destroy;
}

uint32_t layer_max_pieces(size_t max_io_bytes, uint64_t chunk, int nr)
{
	uint64_t pieces = chunk ? max_io_bytes / chunk + 2 : 1;

	/* Plus one per member boundary a request may cross (linear). */
	return (uint32_t)pieces + (uint32_t)nr;
}

int layer_create(const char *kind, struct bdev **members, int nr,
		 uint64_t chunk, size_t max_io_bytes, uint32_t in_segs,
		 const struct bdev_ops *ops, struct layer **out)
{
	struct layer *l = calloc(1, sizeof(*l));

	if (!l) {
		layer_free_members(members, nr);
		return -ENOMEM;
	}
	l->l_kind = kind;
	l->l_members = members;
	l->l_bdev.bd_members = members;
	l->l_nr = nr;
	l->l_bdev.bd_nr_members = nr;
	l->l_chunk = chunk;
	l->l_max_pieces = layer_max_pieces(max_io_bytes, chunk, nr);
	l->l_vec_cap = in_segs + l->l_max_pieces;
	l->l_bdev.bd_ops = ops;
	l->l_bdev.bd_name = strdup(kind);
	l->l_bdev.bd_kind = kind;
	l->l_bdev.bd_align = 512;
	l->l_bdev.bd_mem_align = 512;
	for (int i = 0; i < nr; i++) {
		if (members[i]->bd_align > l->l_bdev.bd_align)
			l->l_bdev.bd_align = members[i]->bd_align;
		if (members[i]->bd_mem_align > l->l_bdev.bd_mem_align)
			l->l_bdev.bd_mem_align = members[i]->bd_mem_align;
		l->l_bdev.bd_read_only |= members[i]->bd_read_only;
	}
	*out = l;
	return 0;
}

void layer_destroy(struct bdev *dev)
{
	struct layer *l = layer_of(dev);

	layer_free_members(l->l_members, l->l_nr);
	while (l->l_free) {
		struct layer_io *io = l->l_free;

		l->l_free = io->li_next;
		free(io);
	}
	free(l->l_start);
	if (l->l_md_ops)
		l->l_md_ops->free(l);
	if (l->l_free_private)
		l->l_free_private(l);
	free(dev->bd_name);
	free(l);
}

static struct layer_io *io_get(struct layer *l)
{
	struct layer_io *io = l->l_free;
	size_t nch = l->l_max_pieces, nv = l->l_vec_cap;
	/* Whole-request children (mirrors, flushes) each need iovecs for
	 * all of the parent's segments. */
	size_t niov = nv * (size_t)l->l_nr;
	char *p;

	if (io) {
		l->l_free = io->li_next;
		return io;
	}
	/* Grows to the high-water mark of concurrent requests, then only
	 * recycles. */
	io = malloc(sizeof(*io) + nch * sizeof(struct layer_child) +
		    nch * sizeof(struct layer_piece) +
		    nv * sizeof(struct pvec) + niov * sizeof(struct iovec));
	if (!io)
		return NULL;
	io->li_layer = l;
	p = (char *)(io + 1);
	io->li_child = (struct layer_child *)p;
	p += nch * sizeof(struct layer_child);
	io->li_piece = (struct layer_piece *)p;
	p += nch * sizeof(struct layer_piece);
	io->li_vec = (struct pvec *)p;
	p += nv * sizeof(struct pvec);
	io->li_iov = (struct iovec *)p;
	return io;
}

static void mirror_read(struct layer *l, struct layer_io *io, int after);
static void mirror_child_end(struct bdev_req *req);

/* All member children done: recycle the io, then finish the parent. */
static bool in_sweep_range(const struct layer *l, const struct bdev_req *req)
{
	return l->l_sweep_lo < req->br_pos + req->br_len && req->br_pos < l->l_sweep_hi;
}

static void io_end(struct bdev_req *req)
{
	struct layer_io *io = req->br_private;
	struct bdev_req *parent = io->li_parent;
	struct layer *l = io->li_layer;
	int err = req->br_error;

	if (io->li_mirrored && parent->br_op != BDEV_READ) {
		struct layer_io **pp = &l->l_writes;

		while (*pp != io)
			pp = &(*pp)->li_wnext;
		*pp = io->li_wnext;
		/* A sweep step that copied this range may have raced it. */
		if (in_sweep_range(l, parent))
			l->l_sweep_dirty = true;
	}
	if (io->li_mirrored && err) {
		if (parent->br_op == BDEV_READ) {
			/* Try the next readable mirror, if there is one. */
			mirror_read(l, io, io->li_read_from);
			return;
		}
		if (io->li_nr_failed < io->li_nr_children)
			err = 0; /* some mirror holds the data */
	}

	io->li_next = l->l_free;
	l->l_free = io;
	bdev_req_complete(parent, err);
}

static struct layer_io *io_start(struct layer *l, struct bdev_req *req)
{
	struct layer_io *io = io_get(l);

	if (!io) {
		bdev_req_complete(req, -ENOMEM);
		return NULL;
	}
	io->li_parent = req;
	io->li_nr_children = 0;
	io->li_nr_failed = 0;
	io->li_mirrored = false;
	bdev_req_init(&io->li_req, req->br_op, req->br_pos, req->br_len,
		      req->br_vec, req->br_iter, io_end, io);
	bdev_req_like(&io->li_req, req);
	return io;
}

/* Submit the children gathered in @io, then drop the splitter's ref. */
static void io_submit_children(struct layer *l, struct layer_io *io, int err)
{
	if (io->li_nr_children > 1)
		l->l_stats.splits++;
	for (int i = 0; i < io->li_nr_children && !err; i++) {
		struct layer_child *c = &io->li_child[i];

		if (l->l_state[c->lc_member] == LAYER_MEMBER_FAILED)
			bdev_req_complete(&c->lc_req, -EIO);
		else
			layer_member_submit(l, c->lc_member, &c->lc_req);
	}
	bdev_req_complete(&io->li_req, err);
}

/*
 * Pass 1 cuts the request into pieces with the level's map and joins each
 * piece to its member's open run when it continues it (the merge); pass 2
 * lays every child's slices out in one shared vector, child after child.
 */
void layer_submit_mapped(struct layer *l, struct bdev_req *req)
{
	bool data = req->br_op == BDEV_READ || req->br_op == BDEV_WRITE;
	uint64_t pos = req->br_pos, off = 0, left = req->br_len;
	int open_child[LAYER_MAX_MEMBERS];
	struct layer_io *io;
	int nr_pieces = 0, nv = 0, err = 0;

	if (req->br_op == BDEV_FLUSH) {
		layer_submit_all(l, req);
		return;
	}
	io = io_start(l, req);
	if (!io)
		return;
	for (int i = 0; i < l->l_nr; i++)
		open_child[i] = -1;
	while (left) {
		struct layer_piece *pc;
		struct layer_child *c;
		uint64_t mpos, max, n;
		int m;

		l->l_map(l, pos, &m, &mpos, &max);
		n = left < max ? left : max;
		if (nr_pieces == (int)l->l_max_pieces) {
			err = -EIO; /* the map cut finer than promised */
			break;
		}
		pc = &io->li_piece[nr_pieces];
		*pc = (struct layer_piece){ .lp_member = m, .lp_next = -1,
					    .lp_mpos = mpos, .lp_off = off,
					    .lp_len = n };
		l->l_stats.pieces++;
		if (open_child[m] >= 0 &&
		    io->li_child[open_child[m]].lc_end == mpos) {
			c = &io->li_child[open_child[m]];
			io->li_piece[c->lc_last].lp_next = nr_pieces;
			c->lc_last = nr_pieces;
			l->l_stats.merged++;
		} else {
			open_child[m] = io->li_nr_children++;
			c = &io->li_child[open_child[m]];
			c->lc_member = m;
			c->lc_first = c->lc_last = nr_pieces;
			c->lc_pos = c->lc_end = mpos;
		}
		c->lc_end += n;
		nr_pieces++;
		pos += n;
		off += n;
		left -= n;
	}
	for (int i = 0; i < io->li_nr_children && !err; i++) {
		struct layer_child *c = &io->li_child[i];
		int first = nv;

		for (int p = c->lc_first; data && p >= 0;
		     p = io->li_piece[p].lp_next) {
			struct pvec_iter it;

			pvec_slice(req->br_vec, req->br_iter, io->li_piece[p].lp_off,
				   io->li_piece[p].lp_len, &it);
			/* A new child starts a new segment run: never join
			 * across children. */
			nv = pvec_append(io->li_vec + first, nv - first,
					 (int)l->l_vec_cap - first, req->br_vec, it);
			if (nv < 0) {
				err = -EIO;
				break;
			}
			nv += first;
		}
		if (err)
			break;
		bdev_req_init(&c->lc_req, req->br_op, c->lc_pos,
			      c->lc_end - c->lc_pos, data ? io->li_vec + first : NULL,
			      data ? pvec_iter_init(io->li_vec + first, nv - first) :
				     (struct pvec_iter){ 0 },
			      l->l_autofail ? mirror_child_end : NULL, io);
		c->lc_req.br_iov = io->li_iov + first;
		c->lc_req.br_iov_max = data ? nv - first : 0;
		bdev_req_chain(&io->li_req, &c->lc_req);
	}
	io_submit_children(l, io, err);
}

/* A whole-request child is a plain re-slice of the parent: its vector is
 * the parent's, its iovecs a window of li_iov. */
static void add_whole_child(struct layer *l, struct layer_io *io, int m,
			    uint64_t pos)
{
	int i = io->li_nr_children++;
	struct layer_child *c = &io->li_child[i];

	c->lc_member = m;
	bdev_req_child(&io->li_req, &c->lc_req, 0, io->li_req.br_len, pos,
		       NULL, NULL);
	c->lc_req.br_iov = io->li_iov + (size_t)i * l->l_vec_cap;
	c->lc_req.br_iov_max = (int)l->l_vec_cap;
}

/* A child that fails takes its member out, as md does. */
static void mirror_child_end(struct bdev_req *req)
{
	struct layer_io *io = req->br_private;
	struct layer *l = io->li_layer;
	int m = ((struct layer_child *)req)->lc_member; /* lc_req is first */

	if (!req->br_error)
		return;
	io->li_nr_failed++;
	if (l->l_state[m] != LAYER_MEMBER_FAILED) {
		layer_set_state(l, m, LAYER_MEMBER_FAILED);
		bdev_log("%s member %d failed (%s): running degraded",
			l->l_kind, m, strerror(-req->br_error));
	}
}

static void mirror_read(struct layer *l, struct layer_io *io, int after)
{
	struct bdev_req *req = io->li_parent;
	uint64_t end = req->br_pos + req->br_len;

	for (int k = 1; k <= l->l_nr; k++) {
		int m = (after + k) % l->l_nr;

		if (!layer_readable(l, m, end))
			continue;
		/* Re-arm the io for this attempt (io_end may be retrying). */
		io->li_nr_children = 0;
		io->li_read_from = m;
		bdev_req_init(&io->li_req, req->br_op, req->br_pos, req->br_len,
			      req->br_vec, req->br_iter, io_end, io);
		bdev_req_like(&io->li_req, req);
		add_whole_child(l, io, m, req->br_pos);
		io->li_child[0].lc_req.br_end = mirror_child_end;
		io->li_child[0].lc_req.br_private = io;
		io_submit_children(l, io, 0);
		return;
	}
	io->li_next = l->l_free;
	l->l_free = io;
	bdev_req_complete(req, -EIO);
}

/* A mirrored write: every mirror not failed gets the whole request. */
static void mirror_write(struct layer *l, struct layer_io *io)
{
	if (in_sweep_range(l, io->li_parent))
		l->l_sweep_dirty = true;
	io->li_wnext = l->l_writes;
	l->l_writes = io;
	for (int i = 0; i < l->l_nr; i++) {
		if (l->l_state[i] == LAYER_MEMBER_FAILED)
			continue;
		add_whole_child(l, io, i, io->li_parent->br_pos);
		io->li_child[io->li_nr_children - 1].lc_req.br_end = mirror_child_end;
		io->li_child[io->li_nr_children - 1].lc_req.br_private = io;
	}
	if (!io->li_nr_children) {
		io_submit_children(l, io, -EIO);
		return;
	}
	io_submit_children(l, io, 0);
}

void layer_submit_mirrored(struct layer *l, struct bdev_req *req)
{
	struct layer_io *io;

	if (req->br_op == BDEV_FLUSH) {
		layer_submit_all(l, req);
		return;
	}
	io = io_start(l, req);
	if (!io)
		return;
	io->li_mirrored = true;
	if (req->br_op == BDEV_READ) {
		int start = l->l_reads_first ? 0 : l->l_next_read;

		/* Spread reads: the next mirror each time, unless they may
		 * differ, when every read must see the same one. */
		if (!l->l_reads_first)
			l->l_next_read = (start + 1) % l->l_nr;
		mirror_read(l, io, start - 1 + l->l_nr);
		return;
	}
	if (l->l_sweep_barrier && in_sweep_range(l, req)) {
		io->li_next = NULL;
		if (l->l_held_tail)
			l->l_held_tail->li_next = io;
		else
			l->l_held = io;
		l->l_held_tail = io;
		l->l_stats.held_writes++;
		return;
	}
	mirror_write(l, io);
}

void layer_sweep_release(struct layer *l)
{
	struct layer_io *io = l->l_held;

	l->l_sweep_barrier = false;
	l->l_held = l->l_held_tail = NULL;
	while (io) {
		struct layer_io *next = io->li_next; /* io may be recycled */

		mirror_write(l, io);
		io = next;
	}
}

void layer_submit_one(struct layer *l, struct bdev_req *req, int m,
		      uint64_t pos)
{
	struct layer_io *io = io_start(l, req);

	if (!io)
		return;
	add_whole_child(l, io, m, pos);
	io_submit_children(l, io, 0);
}

void layer_submit_all(struct layer *l, struct bdev_req *req)
{
	struct layer_io *io = io_start(l, req);

	if (!io)
		return;
	/* A failed member holds nothing to flush. */
	for (int i = 0; i < l->l_nr; i++)
		if (l->l_state[i] != LAYER_MEMBER_FAILED)
			add_whole_child(l, io, i, req->br_pos);
	io_submit_children(l, io, 0);
}

bool layer_writes_overlap(const struct layer *l, uint64_t lo, uint64_t hi)
{
	for (const struct layer_io *io = l->l_writes; io; io = io->li_wnext)
		if (io->li_parent->br_pos < hi &&
		    lo < io->li_parent->br_pos + io->li_parent->br_len)
			return true;
	return false;
}

void layer_set_state(struct layer *l, int m, enum layer_member_state st)
{
	if (l->l_state[m] == st)
		return;
	if ((l->l_state[m] == LAYER_MEMBER_OK) != (st == LAYER_MEMBER_OK))
		l->l_nr_bad += st == LAYER_MEMBER_OK ? -1 : 1;
	l->l_state[m] = (uint8_t)st;
	if (l->l_md_ops)
		l->l_md_ops->changed(l, m);
}

static void layer_mapped_submit(struct bdev *dev, struct bdev_req *req)
{
	layer_submit_mapped(layer_of(dev), req);
}

const struct bdev_ops layer_mapped_ops = {
	.submit = layer_mapped_submit,
	.destroy = layer_destroy,
};

void layer_free_members(struct bdev **members, int nr)
{
	for (int i = 0; i < nr; i++)
		bdev_destroy(members[i]);
	free(members);
}

uint64_t layer_common_size(struct bdev **members, int nr, uint64_t data_offset,
			   uint64_t unit)
{
	uint64_t size = UINT64_MAX;

	for (int i = 0; i < nr; i++)
		if (members[i]->bd_size < size)
			size = members[i]->bd_size;
	size = size > data_offset ? size - data_offset : 0;
	return size - size % unit;
}

int layer_check_chunk(struct bdev **members, int nr, uint64_t data_offset,
		      uint64_t chunk, uint64_t *member_size, char *err,
		      size_t errlen)
{
	if (!chunk || (chunk & (chunk - 1)) || chunk < 4096) {
		snprintf(err, errlen, "chunk %llu is not a power of two of at least 4k",
			 (unsigned long long)chunk);
		return -EINVAL;
	}
	*member_size = layer_common_size(members, nr, data_offset, chunk);
	if (!*member_size) {
		snprintf(err, errlen, "members are smaller than one chunk (%llu bytes)",
			 (unsigned long long)chunk);
		return -EINVAL;
	}
	return 0;
}

void layer_sweep_begin(struct layer *l, struct loop *loop,
		       enum layer_sweep_kind kind, uint64_t total, uint64_t unit)
{
	l->l_sweep_running = true;
	l->l_sweep_loop = loop;
	l->l_sweep_pos = 0;
	l->l_sweep_total = total;
	l->l_sweep_unit = unit;
	l->l_sweep_start_ns = loop_now_ns();
	if (kind != LAYER_SWEEP_REBUILD)
		l->l_mismatch_sectors = 0;
}

void layer_sweep_end(struct layer *l)
{
	l->l_sweep_running = false;
	l->l_sweep_end_ns = loop_now_ns();
}

double layer_sweep_rate(const struct layer *l)
{
	uint64_t end = l->l_sweep_running ? loop_now_ns() : l->l_sweep_end_ns;
	double secs = (double)(end - l->l_sweep_start_ns) / 1e9;

	if (!l->l_sweep_start_ns || secs <= 0)
		return 0;
	return (double)l->l_sweep_pos * l->l_sweep_unit / secs;
}

int layer_create_wrapper(const char *kind, struct bdev *member,
			 const struct bdev_ops *ops, size_t priv_size,
			 void (*free_priv)(struct layer *l), size_t max_io_bytes,
			 uint32_t in_segs, struct layer **out, char *err,
			 size_t errlen)
{
	struct bdev **members = malloc(sizeof(*members));
	struct layer *l;

	if (!members) {
		bdev_destroy(member);
		goto out_nomem;
	}
	members[0] = member;
	if (layer_create(kind, members, 1, 0, max_io_bytes, in_segs, ops, &l))
		goto out_nomem;
	l->l_private = calloc(1, priv_size);
	if (!l->l_private) {
		layer_destroy(&l->l_bdev);
		goto out_nomem;
	}
	l->l_free_private = free_priv;
	l->l_member_size = member->bd_size;
	l->l_bdev.bd_size = member->bd_size;
	l->l_bdev.bd_byte_zero = member->bd_byte_zero;
	*out = l;
	return 0;
out_nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

int layer_parse_opts(const char *opts,
		     int (*set)(void *ctx, const char *key, const char *val),
		     void *ctx, const char *usage, char *err, size_t errlen)
{
	char buf[512], *save = NULL;

	if (strlen(opts) >= sizeof(buf)) {
		snprintf(err, errlen, "options too long");
		return -EINVAL;
	}
	strcpy(buf, opts);
	for (char *kv = strtok_r(buf, ", \t\n", &save); kv;
	     kv = strtok_r(NULL, ", \t\n", &save)) {
		char *v = strchr(kv, '=');
		int ret;

		if (!v) {
			snprintf(err, errlen, "'%s' is not key=value (%s)", kv, usage);
			return -EINVAL;
		}
		*v++ = '\0';
		ret = set(ctx, kv, v);
		if (ret == -ENOENT)
			snprintf(err, errlen, "unknown option '%s' (%s)", kv, usage);
		else if (ret)
			snprintf(err, errlen, "bad value '%s' for %s (%s)", v, kv, usage);
		if (ret)
			return -EINVAL;
	}
	return 0;
}
