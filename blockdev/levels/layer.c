/* layer: the split-and-merge engine shared by every RAID/LVM level.  A
 * request becomes one child per contiguous run on a member; children carry
 * slices of the parent's segments (no data copied) and complete it. */
#include "blockdev/levels/layer.h"
#include "blockdev/levels/layer_io.h"
#include "blockdev/core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int layer_create(const struct bdev_kind *kind, struct bdev **members, int nr,
		 uint64_t chunk, size_t max_io_bytes, uint32_t in_segs,
		 const struct bdev_ops *ops, struct layer **out)
{
	struct layer *l = calloc(1, sizeof(*l));

	if (!l) {
		layer_free_members(members, nr);
		return -ENOMEM;
	}
	l->l_kind = kind->bk_name;
	l->l_members = members;
	l->l_bdev.bd_members = members;
	l->l_nr = nr;
	l->l_bdev.bd_nr_members = nr;
	l->l_chunk = chunk;
	l->l_max_pieces = layer_max_pieces(max_io_bytes, chunk, nr);
	l->l_vec_cap = in_segs + l->l_max_pieces;
	l->l_bdev.bd_ops = ops;
	l->l_bdev.bd_name = strdup(kind->bk_name);
	l->l_bdev.bd_kind = kind->bk_name;
	l->l_bdev.bd_desc = kind;
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

	loop_hook_disarm(&l->l_spread.ls_hook);
	layer_free_members(l->l_members, l->l_nr);
	for (int i = 0; i < LOOP_MAX; i++)
		while (l->l_free[i]) {
			struct layer_io *io = l->l_free[i];

			l->l_free[i] = io->li_next;
			free(io);
		}
	if (l->l_md_ops)
		l->l_md_ops->free(l);
	if (l->l_free_private)
		l->l_free_private(l);
	else
		free(l->l_private);
	free(dev->bd_name);
	free(l);
}

struct layer_stats layer_stats_sum(const struct layer *l)
{
	struct layer_stats t = { 0 };

	for (int i = 0; i < LOOP_MAX; i++) {
		const struct layer_stats *s = &l->l_stats[i];

		t.splits += bdev_stat_read(&s->splits);
		t.merged += bdev_stat_read(&s->merged);
		t.pieces += bdev_stat_read(&s->pieces);
		t.held_writes += bdev_stat_read(&s->held_writes);
	}
	return t;
}

static struct layer_io *io_get(struct layer *l, const struct loop *lp)
{
	unsigned id = loop_id(lp);
	struct layer_io *io = l->l_free[id];
	size_t nch = l->l_max_pieces, nv = l->l_vec_cap;
	/* Whole-request children (mirrors, flushes) each need iovecs for
	 * all of the parent's segments. */
	size_t niov = nv * (size_t)l->l_nr;
	char *p;

	if (io) {
		l->l_free[id] = io->li_next;
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
	io->li_loop_id = id;
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

void layer_io_finish(struct layer_io *io, int err)
{
	struct layer *l = io->li_layer;
	struct bdev_req *parent = io->li_parent;

	io->li_next = l->l_free[io->li_loop_id];
	l->l_free[io->li_loop_id] = io;
	bdev_req_complete(parent, err);
}

/* All member children done: recycle the io, then finish the parent. */
void layer_io_end(struct bdev_req *req)
{
	layer_io_finish(req->br_private, req->br_error);
}

struct layer_io *layer_io_start(struct layer *l, struct bdev_req *req,
				bdev_end_fn end)
{
	struct layer_io *io = io_get(l, req->br_loop);

	if (!io) {
		bdev_req_complete(req, -ENOMEM);
		return NULL;
	}
	io->li_parent = req;
	io->li_nr_children = 0;
	io->li_nr_failed = 0;
	bdev_req_init(&io->li_req, req->br_op, req->br_pos, req->br_len,
		      req->br_vec, req->br_iter, end ? end : layer_io_end, io);
	bdev_req_like(&io->li_req, req);
	return io;
}

void layer_io_submit(struct layer *l, struct layer_io *io, int err)
{
	if (io->li_nr_children > 1)
		bdev_stat_add(&layer_stats_of(l, io->li_req.br_loop)->splits,
			      1);
	for (int i = 0; i < io->li_nr_children && !err; i++) {
		struct layer_child *c = &io->li_child[i];

		if (layer_member_state(l, c->lc_member) == LAYER_MEMBER_FAILED)
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
	struct layer_stats *st = layer_stats_of(l, req->br_loop);
	struct layer_io *io;
	int nr_pieces = 0, nv = 0, err = 0;

	if (req->br_op == BDEV_FLUSH) {
		layer_submit_all(l, req);
		return;
	}
	io = layer_io_start(l, req, NULL);
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
		*pc = (struct layer_piece){ .lp_member = m,
					    .lp_next = -1,
					    .lp_mpos = mpos,
					    .lp_off = off,
					    .lp_len = n };
		bdev_stat_add(&st->pieces, 1);
		if (open_child[m] >= 0 &&
		    io->li_child[open_child[m]].lc_end == mpos) {
			c = &io->li_child[open_child[m]];
			io->li_piece[c->lc_last].lp_next = nr_pieces;
			c->lc_last = nr_pieces;
			bdev_stat_add(&st->merged, 1);
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

			pvec_slice(req->br_vec, req->br_iter,
				   io->li_piece[p].lp_off,
				   io->li_piece[p].lp_len, &it);
			/* A new child starts a new segment run: never join
			 * across children. */
			nv = pvec_append(io->li_vec + first, nv - first,
					 (int)l->l_vec_cap - first, req->br_vec,
					 it);
			if (nv < 0) {
				err = -EIO;
				break;
			}
			nv += first;
		}
		if (err)
			break;
		bdev_req_init(&c->lc_req, req->br_op, c->lc_pos,
			      c->lc_end - c->lc_pos,
			      data ? io->li_vec + first : NULL,
			      data ? pvec_iter_init(io->li_vec + first,
						    nv - first) :
				     (struct pvec_iter){ 0 },
			      l->l_autofail ? layer_child_autofail_end : NULL,
			      io);
		c->lc_req.br_iov = io->li_iov + first;
		c->lc_req.br_iov_max = data ? nv - first : 0;
		bdev_req_chain(&io->li_req, &c->lc_req);
	}
	layer_io_submit(l, io, err);
}

struct layer_child *layer_io_add_whole(struct layer *l, struct layer_io *io,
				       int m, uint64_t pos)
{
	int i = io->li_nr_children++;
	struct layer_child *c = &io->li_child[i];

	c->lc_member = m;
	bdev_req_child(&io->li_req, &c->lc_req, 0, io->li_req.br_len, pos, NULL,
		       NULL);
	c->lc_req.br_iov = io->li_iov + (size_t)i * l->l_vec_cap;
	c->lc_req.br_iov_max = (int)l->l_vec_cap;
	return c;
}

void layer_child_autofail_end(struct bdev_req *req)
{
	struct layer_io *io = req->br_private;
	struct layer *l = io->li_layer;
	int m = ((struct layer_child *)req)->lc_member; /* lc_req is first */

	if (!req->br_error)
		return;
	io->li_nr_failed++;
	if (req->br_op != BDEV_READ || !l->l_mend_reads)
		layer_fail_member_io(l, m, req);
}

void layer_fail_member_io(struct layer *l, int m, const struct bdev_req *req)
{
	/* A zeroing or discard the member cannot do says nothing of its
	 * health: failing it took a whole array down on one fallocate. */
	if (req->br_error == -EOPNOTSUPP)
		return;
	if (req->br_dev != __atomic_load_n(&l->l_members[m], __ATOMIC_ACQUIRE))
		return;
	/* Two loops may meet the same dead member: one says so. */
	if (layer_set_state(l, m, LAYER_MEMBER_FAILED))
		bdev_log("%s member %d failed (%s): %s", l->l_kind, m,
			 strerror(-req->br_error),
			 layer_nr_bad(l) <=
					 bdev_kind_redundancy(l->l_bdev.bd_desc,
							      l->l_nr) ?
				 "running degraded" :
				 "beyond its redundancy: I/O that needs the member fails");
}

void layer_rewritten(struct layer *l, int m, uint64_t pos, uint64_t len,
		     bool by_user, const char *from)
{
	uint64_t at = l->l_data_offset + pos;

	if (by_user)
		__atomic_fetch_add(&l->l_corrected_sectors, len / 512,
				   __ATOMIC_RELAXED);
	else
		l->l_rewritten_sectors += len / 512;
	bdev_log("%s member %d could not read member bytes %llu..%llu: rewritten from %s",
		 l->l_kind, m, (unsigned long long)at,
		 (unsigned long long)(at + len), from);
}

void layer_submit_one(struct layer *l, struct bdev_req *req, int m,
		      uint64_t pos)
{
	struct layer_io *io = layer_io_start(l, req, NULL);

	if (!io)
		return;
	layer_io_add_whole(l, io, m, pos);
	layer_io_submit(l, io, 0);
}

void layer_submit_all(struct layer *l, struct bdev_req *req)
{
	struct layer_io *io = layer_io_start(l, req, NULL);

	if (!io)
		return;
	/* A failed member holds nothing to flush. */
	for (int i = 0; i < l->l_nr; i++)
		if (layer_member_state(l, i) != LAYER_MEMBER_FAILED)
			layer_io_add_whole(l, io, i, req->br_pos);
	layer_io_submit(l, io, 0);
}

bool layer_set_state(struct layer *l, int m, enum layer_member_state st)
{
	uint8_t old = __atomic_load_n(&l->l_state[m], __ATOMIC_ACQUIRE);
	bool did = false;

	if (old == st)
		return false;
	/* The metadata counts the change before any loop can read it: a
	 * write that then goes out degraded waits for the record. */
	if (l->l_md_ops)
		l->l_md_ops->changing(l, m);
	/* A raid5/6 on several loops may fail one member from two loops at
	 * once: one of them changes it, and l_nr_bad counts it once. */
	while (old != st && !did)
		did = __atomic_compare_exchange_n(&l->l_state[m], &old,
						  (uint8_t)st, false,
						  __ATOMIC_ACQ_REL,
						  __ATOMIC_ACQUIRE);
	if (did && (old == LAYER_MEMBER_OK) != (st == LAYER_MEMBER_OK))
		__atomic_fetch_add(&l->l_nr_bad, st == LAYER_MEMBER_OK ? -1 : 1,
				   __ATOMIC_ACQ_REL);
	if (l->l_md_ops)
		l->l_md_ops->changed(l, m);
	return did;
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
		snprintf(err, errlen,
			 "chunk %llu is not a power of two of at least 4k",
			 (unsigned long long)chunk);
		return -EINVAL;
	}
	*member_size = layer_common_size(members, nr, data_offset, chunk);
	if (!*member_size) {
		snprintf(err, errlen,
			 "members are smaller than one chunk (%llu bytes)",
			 (unsigned long long)chunk);
		return -EINVAL;
	}
	return 0;
}

void layer_sweep_begin(struct layer *l, struct loop *loop,
		       enum layer_sweep_kind kind, uint64_t total,
		       uint64_t unit)
{
	l->l_sweep_running = true;
	l->l_sweep_loop = loop;
	l->l_sweep_pos = 0;
	l->l_sweep_total = total;
	l->l_sweep_unit = unit;
	l->l_sweep_start_ns = loop_now_ns();
	if (kind != LAYER_SWEEP_REBUILD)
		l->l_mismatch_sectors = l->l_rewritten_sectors = 0;
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

int layer_create_wrapper(const struct bdev_kind *kind,
			 const struct bdev_kind_args *a,
			 const struct bdev_ops *ops, size_t priv_size,
			 void (*free_priv)(struct layer *l), struct layer **out,
			 char *err, size_t errlen)
{
	struct bdev *member = a->ka_members[0];
	struct layer *l;

	if (layer_create(kind, a->ka_members, 1, 0, a->ka_max_io_bytes,
			 a->ka_in_segs, ops, &l))
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
			snprintf(err, errlen, "'%s' is not key=value (%s)", kv,
				 usage);
			return -EINVAL;
		}
		*v++ = '\0';
		ret = set(ctx, kv, v);
		if (ret == -ENOENT)
			snprintf(err, errlen, "unknown option '%s' (%s)", kv,
				 usage);
		else if (ret)
			snprintf(err, errlen, "bad value '%s' for %s (%s)", v,
				 kv, usage);
		if (ret)
			return -EINVAL;
	}
	return 0;
}
