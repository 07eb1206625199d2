/* super_format: md v1.2 superblocks on disk (md_p.h byte for byte, md's
 * checksum), reading one at start-up, and assembly from what was read. */
#include "blockdev/levels/super.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the on-disk format ------------------------------------------------ */

/* Byte offsets in struct mdp_superblock_1. */
enum {
	SB_MAGIC = 0,
	SB_MAJOR = 4,
	SB_FEATURE = 8,
	SB_SET_UUID = 16,
	SB_SET_NAME = 32,
	SB_CTIME = 64,
	SB_LEVEL = 72,
	SB_LAYOUT = 76,
	SB_SIZE = 80,
	SB_CHUNK = 88,
	SB_RAID_DISKS = 92,
	SB_DATA_OFFSET = 128,
	SB_DATA_SIZE = 136,
	SB_SUPER_OFFSET = 144,
	SB_RECOVERY = 152,
	SB_DEV_NUMBER = 160,
	SB_DEV_UUID = 168,
	SB_UTIME = 192,
	SB_EVENTS = 200,
	SB_RESYNC = 208,
	SB_CSUM = 216,
	SB_MAX_DEV = 220,
	SB_ROLES = 256,
};

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *b, uint32_t v)
{
	put16(b, (uint16_t)v);
	put16(b + 2, (uint16_t)(v >> 16));
}
static void put64(uint8_t *b, uint64_t v)
{
	put32(b, (uint32_t)v);
	put32(b + 4, (uint32_t)(v >> 32));
}
static uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] | b[1] << 8);
}
static uint32_t get32(const uint8_t *b)
{
	return get16(b) | (uint32_t)get16(b + 2) << 16;
}
static uint64_t get64(const uint8_t *b)
{
	return get32(b) | (uint64_t)get32(b + 4) << 32;
}

uint32_t super_csum(const uint8_t *buf)
{
	uint32_t max_dev = get32(buf + SB_MAX_DEV);
	size_t size =
		SB_ROLES +
		2 * (size_t)(max_dev > SUPER_MAX_DEV ? SUPER_MAX_DEV : max_dev);
	uint64_t sum = 0;
	size_t i;

	/* md sums little-endian words with the checksum itself as zero,
	 * then folds the carries back in once. */
	for (i = 0; i + 4 <= size; i += 4)
		if (i != SB_CSUM)
			sum += get32(buf + i);
	if (size - i == 2)
		sum += get16(buf + i);
	return (uint32_t)((sum & 0xffffffffu) + (sum >> 32));
}

void super_encode(const struct super_info *si, uint8_t *b)
{
	memset(b, 0, SUPER_BLOCK_BYTES);
	put32(b + SB_MAGIC, SUPER_MAGIC);
	put32(b + SB_MAJOR, 1);
	put32(b + SB_FEATURE, si->feature_map);
	memcpy(b + SB_SET_UUID, si->set_uuid, 16);
	memcpy(b + SB_SET_NAME, si->set_name, 32);
	put64(b + SB_CTIME, si->ctime);
	put32(b + SB_LEVEL, (uint32_t)si->level);
	put32(b + SB_LAYOUT, si->layout);
	put64(b + SB_SIZE, si->size);
	put32(b + SB_CHUNK, si->chunksize);
	put32(b + SB_RAID_DISKS, si->raid_disks);
	put64(b + SB_DATA_OFFSET, si->data_offset);
	put64(b + SB_DATA_SIZE, si->data_size);
	put64(b + SB_SUPER_OFFSET, si->super_offset);
	put64(b + SB_RECOVERY, si->recovery_offset);
	put32(b + SB_DEV_NUMBER, si->dev_number);
	memcpy(b + SB_DEV_UUID, si->device_uuid, 16);
	put64(b + SB_UTIME, si->utime);
	put64(b + SB_EVENTS, si->events);
	put64(b + SB_RESYNC, si->resync_offset);
	put32(b + SB_MAX_DEV, si->max_dev);
	for (uint32_t i = 0; i < si->max_dev && i < SUPER_MAX_DEV; i++)
		put16(b + SB_ROLES + 2 * i, si->dev_roles[i]);
	put32(b + SB_CSUM, super_csum(b));
}

int super_decode(const uint8_t *b, struct super_info *si, char *err,
		 size_t errlen)
{
	uint32_t csum;

	if (get32(b + SB_MAGIC) != SUPER_MAGIC)
		return -ENOENT;
	memset(si, 0, sizeof(*si));
	if (get32(b + SB_MAJOR) != 1) {
		snprintf(err, errlen,
			 "md superblock of major version %u (rawvec reads 1)",
			 get32(b + SB_MAJOR));
		return -EINVAL;
	}
	si->max_dev = get32(b + SB_MAX_DEV);
	if (si->max_dev > SUPER_MAX_DEV) {
		snprintf(err, errlen,
			 "md superblock with %u device slots (rawvec reads up to %u)",
			 si->max_dev, SUPER_MAX_DEV);
		return -EINVAL;
	}
	csum = get32(b + SB_CSUM);
	if (csum != super_csum(b)) {
		snprintf(err, errlen,
			 "md superblock checksum %08x, expected %08x: it is damaged",
			 csum, super_csum(b));
		return -EINVAL;
	}
	si->feature_map = get32(b + SB_FEATURE);
	if (si->feature_map & ~SUPER_FEATURE_RECOVERY_OFFSET) {
		snprintf(err, errlen,
			 "md superblock with features 0x%x (bitmap, reshape, bad blocks or journal), which rawvec cannot run",
			 si->feature_map);
		return -EINVAL;
	}
	memcpy(si->set_uuid, b + SB_SET_UUID, 16);
	memcpy(si->set_name, b + SB_SET_NAME, 32);
	si->ctime = get64(b + SB_CTIME);
	si->level = (int32_t)get32(b + SB_LEVEL);
	si->layout = get32(b + SB_LAYOUT);
	si->size = get64(b + SB_SIZE);
	si->chunksize = get32(b + SB_CHUNK);
	si->raid_disks = get32(b + SB_RAID_DISKS);
	si->data_offset = get64(b + SB_DATA_OFFSET);
	si->data_size = get64(b + SB_DATA_SIZE);
	si->super_offset = get64(b + SB_SUPER_OFFSET);
	si->recovery_offset = get64(b + SB_RECOVERY);
	si->dev_number = get32(b + SB_DEV_NUMBER);
	memcpy(si->device_uuid, b + SB_DEV_UUID, 16);
	si->utime = get64(b + SB_UTIME);
	si->events = get64(b + SB_EVENTS);
	si->resync_offset = get64(b + SB_RESYNC);
	for (uint32_t i = 0; i < si->max_dev; i++)
		si->dev_roles[i] = get16(b + SB_ROLES + 2 * i);
	if (si->dev_number >= SUPER_MAX_DEV) {
		snprintf(err, errlen,
			 "md superblock of device number %u (at most %u)",
			 si->dev_number, SUPER_MAX_DEV - 1);
		return -EINVAL;
	}
	/* Data after the superblock, on whole 4 KiB blocks. */
	if (si->data_offset < (SUPER_OFFSET_BYTES + SUPER_BLOCK_BYTES) / 512 ||
	    si->data_offset % 8) {
		snprintf(err, errlen,
			 "md superblock with its data at sector %llu (rawvec runs data at whole 4 KiB blocks past the superblock)",
			 (unsigned long long)si->data_offset);
		return -EINVAL;
	}
	if (si->super_offset != SUPER_OFFSET_BYTES / 512) {
		snprintf(err, errlen,
			 "md superblock says it lies at sector %llu, not 8 (not v1.2)",
			 (unsigned long long)si->super_offset);
		return -EINVAL;
	}
	if (!super_level_name(si->level)) {
		snprintf(err, errlen,
			 "md superblock of level %d, which rawvec cannot run",
			 si->level);
		return -EINVAL;
	}
	if (!si->raid_disks || si->raid_disks > LAYER_MAX_MEMBERS) {
		snprintf(err, errlen,
			 "md superblock with %u devices (rawvec runs 1 to %d)",
			 si->raid_disks, LAYER_MAX_MEMBERS);
		return -EINVAL;
	}
	return 0;
}

void super_uuid_str(const uint8_t *u, char out[36])
{
	char *o = out;

	for (int i = 0; i < 16; i++)
		o += sprintf(o, "%s%02x", i && !(i & 3) ? ":" : "", u[i]);
}

/* The array levels md numbers: BK_ARRAY, and not taking the level from
 * the superblocks (md() has no number of its own). */
static bool numbered(const struct bdev_kind *k)
{
	return (k->bk_flags & (BK_ARRAY | BK_FROM_SUPER)) == BK_ARRAY;
}

const char *super_level_name(int32_t level)
{
	for (const struct bdev_kind *const *k = bdev_levels; *k; k++)
		if (numbered(*k) && (*k)->bk_md_level == level)
			return (*k)->bk_name;
	return NULL;
}

/* Members a level runs without. */
int super_redundancy(const char *level, int nr)
{
	return bdev_kind_redundancy(bdev_kind_find(level, strlen(level)), nr);
}

/* Whether @w names a level that takes everything from the superblocks
 * (md()), not one they must agree with. */
static bool any_level(const struct super_want *w)
{
	const struct bdev_kind *k = bdev_kind_find(w->level, strlen(w->level));

	return k && (k->bk_flags & BK_FROM_SUPER);
}

/* ---- start-up I/O ------------------------------------------------------ */

void *super_block_alloc(void)
{
	void *b = NULL;

	return posix_memalign(&b, 4096, SUPER_BLOCK_BYTES) ? NULL : b;
}

struct sync_io {
	struct bdev_req req;
	struct pvec vec;
	bool done;
};

static void sync_end(struct bdev_req *req)
{
	((struct sync_io *)req->br_private)->done = true;
}

static bool sync_done(void *arg)
{
	return ((struct sync_io *)arg)->done;
}

/* Start-up only, before the loop serves anything: run the ring until the
 * read of the block at @pos of @m into @buf has completed. */
static int sync_read_block(struct loop *loop, struct bdev *m, uint64_t pos,
			   uint8_t *buf)
{
	struct sync_io io = { 0 };
	int ret;

	pvec_from_buf(&io.vec, 1, buf, SUPER_BLOCK_BYTES, 0);
	bdev_req_init(&io.req, BDEV_READ, pos, SUPER_BLOCK_BYTES, &io.vec,
		      pvec_iter_init(&io.vec, 1), sync_end, &io);
	io.req.br_meta = true;
	io.req.br_loop = loop;
	bdev_submit(m, &io.req);
	ret = loop_run_until(loop, sync_done, &io);
	return ret ? ret : io.req.br_error;
}

int super_probe_member(struct loop *loop, struct bdev *m, struct super_probe *p,
		       char *err, size_t errlen)
{
	uint8_t *buf;
	char why[256];
	int ret;

	p->name = m->bd_name;
	p->bytes = m->bd_size;
	p->found = false;
	if (m->bd_size < SUPER_OFFSET_BYTES + SUPER_BLOCK_BYTES)
		return 0;
	buf = super_block_alloc();
	if (!buf)
		return -ENOMEM;
	ret = sync_read_block(loop, m, SUPER_OFFSET_BYTES, buf);
	if (ret) {
		snprintf(err, errlen, "%s: reading its md superblock: %s",
			 m->bd_name, strerror(-ret));
		goto out;
	}
	ret = super_decode(buf, &p->sb, why, sizeof(why));
	p->found = !ret;
	if (ret == -ENOENT)
		ret = 0;
	else if (ret)
		snprintf(err, errlen, "%s: %s", m->bd_name, why);
out:
	free(buf);
	return ret;
}

/* ---- assembly --------------------------------------------------------- */

static void note(struct super_plan *plan, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(struct super_plan *plan, const char *fmt, ...)
{
	size_t n = strlen(plan->note);
	va_list ap;

	if (n >= sizeof(plan->note) - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(plan->note + n, sizeof(plan->note) - n, fmt, ap);
	va_end(ap);
}

/* What assembly works with: the probes, the freshest superblock (@a, of
 * probe @au) and, per member, the slot claimed and why it is failed. */
struct assembly {
	const struct super_probe *p;
	int nr, au;
	bool md_form;
	const struct super_info *a;
	char uuid[36];
	int claimed[LAYER_MAX_MEMBERS];
	char why[LAYER_MAX_MEMBERS][128];
};

/* The array's geometry, from @as->a, against what the expression says. */
static int plan_geometry(const struct assembly *as, const struct super_want *w,
			 struct super_plan *plan, char *err, size_t errlen)
{
	const struct super_info *a = as->a;
	const char *au = as->p[as->au].name;

	plan->level = super_level_name(a->level);
	if (!as->md_form && strcmp(plan->level, w->level)) {
		snprintf(err, errlen,
			 "%s: its md superblock says %s (array %s), the expression %s",
			 au, plan->level, as->uuid, w->level);
		return -EINVAL;
	}
	if ((a->level == 5 || a->level == 6) &&
	    a->layout != SUPER_LAYOUT_LEFT_SYMMETRIC) {
		snprintf(err, errlen,
			 "%s: %s layout %u; rawvec runs md's default, left-symmetric (2)",
			 au, plan->level, a->layout);
		return -EINVAL;
	}
	plan->chunk = a->level == 0 || a->level >= 4 ?
			      (uint64_t)a->chunksize * 512 :
			      0;
	if (w->chunk && w->chunk != plan->chunk) {
		snprintf(err, errlen,
			 "%s: its md superblock says chunk=%lluk, the expression %lluk",
			 au, (unsigned long long)plan->chunk >> 10,
			 (unsigned long long)w->chunk >> 10);
		return -EINVAL;
	}
	if (a->raid_disks != (uint32_t)as->nr) {
		snprintf(err, errlen,
			 "%s: array %s has %u devices, the expression names %d",
			 au, as->uuid, a->raid_disks, as->nr);
		return -EINVAL;
	}
	plan->data_offset = a->data_offset * 512;
	return 0;
}

/* Member @i: refused outright (another array, another size, a slot taken
 * twice), or given its slot, or noted as failed in as->why[i]. */
static int plan_member(struct assembly *as, int i, struct super_plan *plan,
		       char *err, size_t errlen)
{
	const struct super_probe *p = as->p;
	const struct super_info *si = &p[i].sb, *a = as->a;
	int nr = as->nr;
	unsigned role;

	plan->slot_of[i] = -1;
	as->why[i][0] = '\0';
	if (!p[i].found) {
		if (as->md_form) {
			snprintf(err, errlen,
				 "%s carries no md superblock: md() takes every member's role from its superblock",
				 p[i].name);
			return -EINVAL;
		}
		snprintf(as->why[i], sizeof(as->why[i]),
			 "carries no md superblock");
		return 0;
	}
	if (memcmp(si->set_uuid, a->set_uuid, 16)) {
		char other[36];

		super_uuid_str(si->set_uuid, other);
		snprintf(err, errlen,
			 "%s belongs to array %s, %s to array %s: members of different arrays",
			 p[i].name, other, p[as->au].name, as->uuid);
		return -EINVAL;
	}
	if (si->data_offset != a->data_offset) {
		snprintf(err, errlen,
			 "%s: data offset %llu sectors, %s's is %llu",
			 p[i].name, (unsigned long long)si->data_offset,
			 p[as->au].name, (unsigned long long)a->data_offset);
		return -EINVAL;
	}
	if (p[i].bytes < (si->data_offset + a->size) * 512) {
		snprintf(err, errlen,
			 "%s has %llu bytes, array %s needs %llu on each member",
			 p[i].name, (unsigned long long)p[i].bytes, as->uuid,
			 (unsigned long long)(si->data_offset + a->size) * 512);
		return -EINVAL;
	}
	/* Geometry (linear's member starts above all) comes from the sizes
	 * the array was made with. */
	if (p[i].bytes / 512 != si->data_offset + si->data_size) {
		snprintf(err, errlen,
			 "%s has %llu bytes, its md superblock says %llu: it grew or shrank since array %s was made, and rawvec does not reshape",
			 p[i].name, (unsigned long long)p[i].bytes,
			 (unsigned long long)(si->data_offset + si->data_size) *
				 512,
			 as->uuid);
		return -EINVAL;
	}
	role = si->dev_number < a->max_dev ? a->dev_roles[si->dev_number] :
					     SUPER_ROLE_SPARE;
	if (role < (unsigned)nr) {
		if (!as->md_form && role != (unsigned)i) {
			snprintf(err, errlen,
				 "%s is device %u of array %s, given as member %d: list the members in their order, or use md(...)",
				 p[i].name, role, as->uuid, i);
			return -EINVAL;
		}
		if (as->claimed[role] >= 0) {
			snprintf(err, errlen,
				 "%s and %s both say they are device %u of array %s",
				 p[as->claimed[role]].name, p[i].name, role,
				 as->uuid);
			return -EINVAL;
		}
		as->claimed[role] = i;
		plan->slot_of[i] = (int)role;
	}
	if (role == SUPER_ROLE_FAULTY)
		snprintf(as->why[i], sizeof(as->why[i]),
			 "marked faulty in the array's superblocks");
	else if (role >= (unsigned)nr)
		snprintf(as->why[i], sizeof(as->why[i]),
			 "no longer part of the array (replaced)");
	else if (si->events + 1 < a->events)
		/* One behind is an update cut short by a crash: no write
		 * passes before every member has it (md's margin too). */
		snprintf(as->why[i], sizeof(as->why[i]),
			 "events %llu, behind %llu: it missed writes",
			 (unsigned long long)si->events,
			 (unsigned long long)a->events);
	return 0;
}

/* Members without a place of their own keep their expression slot (md():
 * the first free one) and count as failed. */
static int plan_free_slots(struct assembly *as, struct super_plan *plan,
			   char *err, size_t errlen)
{
	for (int i = 0; i < as->nr; i++) {
		if (plan->slot_of[i] >= 0)
			continue;
		for (int s = as->md_form ? 0 : i; s < as->nr; s++) {
			if (as->claimed[s] < 0) {
				as->claimed[s] = i;
				plan->slot_of[i] = s;
				break;
			}
		}
		if (plan->slot_of[i] < 0) {
			snprintf(err, errlen,
				 "%s: member %d's place is taken by %s",
				 as->p[i].name, i, as->p[as->claimed[i]].name);
			return -EINVAL;
		}
	}
	return 0;
}

/* Each slot's state; an array missing more than it survives is refused. */
static int plan_states(const struct assembly *as, struct super_plan *plan,
		       char *err, size_t errlen)
{
	const struct super_info *a = as->a;
	int nr = as->nr, nr_bad = 0, spare;

	for (int i = 0; i < nr; i++) {
		int s = plan->slot_of[i];
		const struct super_info *si = &as->p[i].sb;

		plan->state[s] = LAYER_MEMBER_OK;
		if (as->why[i][0]) {
			plan->state[s] = LAYER_MEMBER_FAILED;
			nr_bad++;
			note(plan, "%s%s (member %d): %s",
			     plan->note[0] ? "; " : "", as->p[i].name, s,
			     as->why[i]);
		} else if ((si->feature_map & SUPER_FEATURE_RECOVERY_OFFSET) &&
			   si->recovery_offset < a->size) {
			plan->state[s] = LAYER_MEMBER_REBUILDING;
			nr_bad++;
			note(plan,
			     "%s%s (member %d): its rebuild was not finished",
			     plan->note[0] ? "; " : "", as->p[i].name, s);
		}
	}
	spare = super_redundancy(plan->level, nr);
	if (nr_bad > spare) {
		snprintf(err, errlen,
			 "array %s cannot run: %s; %s runs with at most %d member%s missing",
			 as->uuid, plan->note, plan->level, spare,
			 spare == 1 ? "" : "s");
		return -EINVAL;
	}
	plan->resync = a->resync_offset != SUPER_MAX_SECTOR && spare;
	if (plan->resync && nr_bad)
		note(plan,
		     "%sshut down uncleanly while degraded: parity or mirrors of stripes written then may not match, and what the missing member held there cannot be checked",
		     plan->note[0] ? "; " : "");
	else if (plan->resync)
		note(plan, "%sshut down uncleanly: resyncing",
		     plan->note[0] ? "; " : "");
	return 0;
}

static int plan_assemble(const struct super_probe *p, int nr,
			 const struct super_want *w, struct super_plan *plan,
			 char *err, size_t errlen)
{
	struct assembly as = {
		.p = p, .nr = nr, .au = -1, .md_form = any_level(w)
	};
	int ret;

	for (int i = 0; i < nr; i++)
		if (p[i].found &&
		    (as.au < 0 || p[i].sb.events > p[as.au].sb.events))
			as.au = i;
	as.a = &p[as.au].sb;
	plan->authority = as.au;
	super_uuid_str(as.a->set_uuid, as.uuid);
	ret = plan_geometry(&as, w, plan, err, errlen);
	if (ret)
		return ret;
	for (int s = 0; s < nr; s++)
		as.claimed[s] = -1;
	for (int i = 0; i < nr; i++)
		if ((ret = plan_member(&as, i, plan, err, errlen)))
			return ret;
	if ((ret = plan_free_slots(&as, plan, err, errlen)) ||
	    (ret = plan_states(&as, plan, err, errlen)))
		return ret;
	plan->action = SUPER_PLAN_ASSEMBLE;
	return 0;
}

int super_plan(const struct super_probe *p, int nr, const struct super_want *w,
	       struct super_plan *plan, char *err, size_t errlen)
{
	int found = 0, fresh = 0;

	memset(plan, 0, sizeof(*plan));
	plan->level = w->level;
	plan->chunk = w->chunk;
	for (int i = 0; i < nr; i++) {
		plan->slot_of[i] = i;
		found += p[i].found;
		fresh += p[i].fresh;
	}
	if (found && w->mode != SUPER_NONE)
		return plan_assemble(p, nr, w, plan, err, errlen);
	if (any_level(w)) {
		snprintf(err, errlen,
			 "%s() takes level, chunk and order from the members' md superblocks, and none carries one",
			 w->level);
		return -EINVAL;
	}
	if (found) {
		note(plan,
		     "super=none: the md superblocks on the members are read as data");
		return 0;
	}
	if (w->mode == SUPER_V12 || (w->mode == SUPER_AUTO && fresh == nr)) {
		plan->action = SUPER_PLAN_CREATE;
		plan->data_offset = SUPER_DATA_OFFSET_BYTES;
		/* New zeroes are in sync (parity of zeroes is zero); old
		 * contents are not. */
		plan->resync = fresh < nr && super_redundancy(w->level, nr);
		note(plan,
		     "new array with md v1.2 superblocks; data starts %u KiB into each member%s",
		     SUPER_DATA_OFFSET_BYTES >> 10,
		     plan->resync ? ", resyncing" : "");
		return 0;
	}
	if (w->mode == SUPER_AUTO)
		note(plan,
		     "members carry no md superblock: failed members, rebuilds and unclean shutdowns will not be remembered across restarts (super=1.2 writes superblocks)");
	return 0;
}
