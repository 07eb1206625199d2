/* test_super: md v1.2 superblocks: the byte layout md_p.h fixes, the
 * checksum, and super_plan()'s assembly decisions, case by case. */
#include "tests/unit/unit.h"

#include "blockdev/levels/super.h"

#include <errno.h>
#include <stdio.h>

static uint8_t blk[SUPER_BLOCK_BYTES];

/* An array of @nr members as mdadm would have made it: member i has
 * dev_number i and role i, @events everywhere, clean. */
static void make_array(struct super_probe *p, int nr, int32_t level,
		       uint64_t events)
{
	static char names[LAYER_MAX_MEMBERS][24];

	memset(p, 0, sizeof(*p) * nr);
	for (int i = 0; i < nr; i++) {
		struct super_info *si = &p[i].sb;

		snprintf(names[i], sizeof(names[i]), "m%d.img", i);
		p[i].name = names[i];
		p[i].found = true;
		p[i].bytes = 64 << 20;
		memset(si->set_uuid, 0x5a, 16);
		si->level = level;
		si->layout = level >= 5 ? SUPER_LAYOUT_LEFT_SYMMETRIC : 0;
		si->chunksize = 128; /* 64k */
		si->raid_disks = (uint32_t)nr;
		si->size = (63u << 20) / 512;
		si->data_offset = 2048;
		si->data_size = (uint64_t)(63u << 20) / 512;
		si->super_offset = 8;
		si->dev_number = (uint32_t)i;
		si->events = events;
		si->resync_offset = SUPER_MAX_SECTOR;
		si->max_dev = (uint32_t)nr;
		for (int d = 0; d < nr; d++)
			si->dev_roles[d] = (uint16_t)d;
	}
}

START_TEST(test_layout_and_roundtrip)
{
	struct super_probe p[4];
	struct super_info back;
	char err[256];

	make_array(p, 4, 5, 42);
	snprintf(p[2].sb.set_name, sizeof(p[2].sb.set_name), "host:data");
	p[2].sb.dev_roles[1] = SUPER_ROLE_FAULTY;
	p[2].sb.feature_map = SUPER_FEATURE_RECOVERY_OFFSET;
	p[2].sb.recovery_offset = 777;
	super_encode(&p[2].sb, blk);
	/* Fields where struct mdp_superblock_1 puts them, little-endian. */
	ck_assert_uint_eq(blk[0] | blk[1] << 8 | blk[2] << 16 |
				  (uint32_t)blk[3] << 24,
			  SUPER_MAGIC);
	ck_assert_uint_eq(blk[72], 5);			   /* level */
	ck_assert_uint_eq(blk[76], 2);			   /* layout */
	ck_assert_uint_eq(blk[88], 128);		   /* chunksize */
	ck_assert_uint_eq(blk[128] | blk[129] << 8, 2048); /* data_offset */
	ck_assert_uint_eq(blk[144], 8);			   /* super_offset */
	ck_assert_uint_eq(blk[152] | blk[153] << 8, 777);  /* recovery_offset */
	ck_assert_uint_eq(blk[160], 2);			   /* dev_number */
	ck_assert_uint_eq(blk[200], 42);		   /* events */
	ck_assert_uint_eq(blk[220], 4);			   /* max_dev */
	ck_assert_uint_eq(blk[256 + 2] | blk[257 + 2] << 8, SUPER_ROLE_FAULTY);
	ck_assert_mem_eq(blk + 32, "host:data", 9);
	ck_assert_int_eq(super_decode(blk, &back, err, sizeof(err)), 0);
	ck_assert_mem_eq(&back, &p[2].sb, sizeof(back));
}
END_TEST

START_TEST(test_checksum)
{
	struct super_probe p[3];
	struct super_info back;
	uint64_t sum = 0;
	char err[256];

	make_array(p, 3, 1, 7);
	super_encode(&p[0].sb, blk);
	/* A device number past the role table would index out of it. */
	p[1].sb.dev_number = SUPER_MAX_DEV;
	super_encode(&p[1].sb, blk + 0);
	ck_assert_int_eq(super_decode(blk, &back, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "device number"));
	/* mdadm's 384-entry role table is read. */
	p[1].sb.dev_number = 1;
	p[1].sb.max_dev = 384;
	super_encode(&p[1].sb, blk);
	ck_assert_int_eq(super_decode(blk, &back, err, sizeof(err)), 0);
	super_encode(&p[0].sb, blk);
	/* md's rule, spelled out: the le32 words of 256 + 2 * max_dev
	 * bytes (the csum word as zero), a 16-bit tail, carries folded. */
	for (int i = 0; i + 4 <= 256 + 6; i += 4)
		if (i != 216)
			sum += blk[i] | blk[i + 1] << 8 | blk[i + 2] << 16 |
			       (uint64_t)blk[i + 3] << 24;
	sum += blk[260] | blk[261] << 8;
	sum = (sum & 0xffffffff) + (sum >> 32);
	ck_assert_uint_eq(blk[216] | blk[217] << 8 | blk[218] << 16 |
				  (uint32_t)blk[219] << 24,
			  (uint32_t)sum);
	blk[100] ^= 1;
	ck_assert_int_eq(super_decode(blk, &back, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "checksum"));
	memset(blk, 0, sizeof(blk));
	ck_assert_int_eq(super_decode(blk, &back, err, sizeof(err)), -ENOENT);
}
END_TEST

static int plan(struct super_probe *p, int nr, const char *level,
		uint64_t chunk, enum super_mode mode, struct super_plan *pl,
		char *err)
{
	struct super_want w = { .level = level, .chunk = chunk, .mode = mode };

	err[0] = '\0';
	return super_plan(p, nr, &w, pl, err, 512);
}

START_TEST(test_plan_headerless_and_create)
{
	struct super_probe p[4] = { { .name = "a" },
				    { .name = "b" },
				    { .name = "c" },
				    { .name = "d" } };
	struct super_plan pl;
	char err[512];

	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_AUTO, &pl, err), 0);
	ck_assert_int_eq(pl.action, SUPER_PLAN_NONE);
	ck_assert_uint_eq(pl.data_offset, 0);
	ck_assert_ptr_nonnull(strstr(pl.note, "will not be remembered"));
	/* Images --create just made: superblocks, no initial resync. */
	for (int i = 0; i < 4; i++)
		p[i].fresh = true;
	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_AUTO, &pl, err), 0);
	ck_assert_int_eq(pl.action, SUPER_PLAN_CREATE);
	ck_assert_uint_eq(pl.data_offset, SUPER_DATA_OFFSET_BYTES);
	ck_assert(!pl.resync);
	/* super=none never writes one. */
	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_NONE, &pl, err), 0);
	ck_assert_int_eq(pl.action, SUPER_PLAN_NONE);
	/* super=1.2 on old contents: superblocks, and a resync. */
	p[3].fresh = false;
	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_V12, &pl, err), 0);
	ck_assert_int_eq(pl.action, SUPER_PLAN_CREATE);
	ck_assert(pl.resync);
	ck_assert_int_eq(plan(p, 4, "md", 0, SUPER_AUTO, &pl, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "none carries one"));
}
END_TEST

START_TEST(test_plan_assemble)
{
	struct super_probe p[4];
	struct super_plan pl;
	char err[512];

	make_array(p, 4, 5, 9);
	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_AUTO, &pl, err), 0);
	ck_assert_int_eq(pl.action, SUPER_PLAN_ASSEMBLE);
	ck_assert_uint_eq(pl.chunk, 64 << 10);
	ck_assert_uint_eq(pl.data_offset, 1 << 20);
	ck_assert(!pl.resync);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pl.slot_of[i], i);
		ck_assert_int_eq(pl.state[i], LAYER_MEMBER_OK);
	}
	/* The expression contradicts the superblocks. */
	ck_assert_int_eq(plan(p, 4, "raid6", 0, SUPER_AUTO, &pl, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "says raid5"));
	ck_assert_int_eq(plan(p, 4, "raid5", 128 << 10, SUPER_AUTO, &pl, err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "chunk=64k"));
	ck_assert_int_eq(plan(p, 3, "raid5", 0, SUPER_AUTO, &pl, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "has 4 devices"));
	/* super=none reads them as data, and says so. */
	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_NONE, &pl, err), 0);
	ck_assert_int_eq(pl.action, SUPER_PLAN_NONE);
	ck_assert_ptr_nonnull(strstr(pl.note, "read as data"));
	/* Unclean: resync. */
	for (int i = 0; i < 4; i++)
		p[i].sb.resync_offset = 0;
	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_AUTO, &pl, err), 0);
	ck_assert(pl.resync);
	ck_assert_ptr_nonnull(strstr(pl.note, "uncleanly"));
}
END_TEST

START_TEST(test_plan_order)
{
	struct super_probe p[4], q[4];
	struct super_plan pl;
	char err[512];

	make_array(p, 4, 6, 3);
	q[0] = p[2], q[1] = p[0], q[2] = p[3], q[3] = p[1];
	ck_assert_int_eq(plan(q, 4, "raid6", 0, SUPER_AUTO, &pl, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "m2.img is device 2"));
	ck_assert_ptr_nonnull(strstr(err, "given as member 0"));
	/* md() puts each where its superblock says. */
	ck_assert_int_eq(plan(q, 4, "md", 0, SUPER_AUTO, &pl, err), 0);
	ck_assert_str_eq(pl.level, "raid6");
	ck_assert_int_eq(pl.slot_of[0], 2);
	ck_assert_int_eq(pl.slot_of[1], 0);
	ck_assert_int_eq(pl.slot_of[2], 3);
	ck_assert_int_eq(pl.slot_of[3], 1);
	/* Two members that claim one role. */
	q[1] = p[2];
	ck_assert_int_eq(plan(q, 4, "md", 0, SUPER_AUTO, &pl, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "both say they are device 2"));
	/* A member of another array. */
	make_array(q, 4, 6, 3);
	q[3].sb.set_uuid[0] = 0x11;
	ck_assert_int_eq(plan(q, 4, "raid6", 0, SUPER_AUTO, &pl, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "different arrays"));
	ck_assert_ptr_nonnull(strstr(err, "m3.img belongs to array 115a5a5a"));
}
END_TEST

START_TEST(test_plan_stale_and_failed)
{
	struct super_probe p[4];
	struct super_plan pl;
	char err[512];

	/* Member 1 was failed: the others went on (events 12) and mark
	 * it faulty; its own superblock stopped at 10. */
	make_array(p, 4, 5, 12);
	p[1].sb.events = 10;
	for (int i = 0; i < 4; i++)
		if (i != 1)
			p[i].sb.dev_roles[1] = SUPER_ROLE_FAULTY;
	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_AUTO, &pl, err), 0);
	ck_assert_int_eq(pl.state[1], LAYER_MEMBER_FAILED);
	ck_assert_int_eq(pl.state[0], LAYER_MEMBER_OK);
	ck_assert_ptr_nonnull(
		strstr(pl.note, "m1.img (member 1): marked faulty"));
	/* Only stale (the failure never reached the others' table). */
	make_array(p, 4, 5, 12);
	p[1].sb.events = 10;
	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_AUTO, &pl, err), 0);
	ck_assert_int_eq(pl.state[1], LAYER_MEMBER_FAILED);
	ck_assert_ptr_nonnull(strstr(pl.note, "events 10, behind 12"));
	/* Two gone is more than raid5 survives. */
	p[2].sb.events = 9;
	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_AUTO, &pl, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "cannot run"));
	ck_assert_ptr_nonnull(strstr(err, "m2.img (member 2): events 9"));
	/* One behind: an update a crash cut short, not missed writes. */
	make_array(p, 4, 5, 12);
	p[0].sb.events = p[3].sb.events = 11;
	ck_assert_int_eq(plan(p, 4, "raid5", 0, SUPER_AUTO, &pl, err), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pl.state[i], LAYER_MEMBER_OK);
	/* raid0 survives none; a member without a superblock is missing. */
	make_array(p, 2, 0, 5);
	p[1].found = false;
	ck_assert_int_eq(plan(p, 2, "raid0", 0, SUPER_AUTO, &pl, err), -EINVAL);
	ck_assert_ptr_nonnull(
		strstr(err, "m1.img (member 1): carries no md superblock"));
	/* An unfinished rebuild is resumed. */
	make_array(p, 2, 1, 5);
	p[1].sb.feature_map = SUPER_FEATURE_RECOVERY_OFFSET;
	p[1].sb.recovery_offset = 100;
	ck_assert_int_eq(plan(p, 2, "raid1", 0, SUPER_AUTO, &pl, err), 0);
	ck_assert_int_eq(pl.state[1], LAYER_MEMBER_REBUILDING);
	/* A member too small for the array, one grown since. */
	make_array(p, 2, 1, 5);
	p[0].bytes = 32 << 20;
	ck_assert_int_eq(plan(p, 2, "raid1", 0, SUPER_AUTO, &pl, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "m0.img has 33554432 bytes"));
	make_array(p, 2, -1, 5);
	p[1].bytes = 65 << 20;
	ck_assert_int_eq(plan(p, 2, "linear", 0, SUPER_AUTO, &pl, err),
			 -EINVAL);
	ck_assert_ptr_nonnull(
		strstr(err,
		       "m1.img has 68157440 bytes, its md superblock says 67108864: it grew"));
}
END_TEST

Suite *super_suite(void)
{
	Suite *s = suite_create("super");
	TCase *tc = tcase_create("super");

	tcase_set_timeout(tc, UT_TIMEOUT_SEC);
	tcase_add_test(tc, test_layout_and_roundtrip);
	tcase_add_test(tc, test_checksum);
	tcase_add_test(tc, test_plan_headerless_and_create);
	tcase_add_test(tc, test_plan_assemble);
	tcase_add_test(tc, test_plan_order);
	tcase_add_test(tc, test_plan_stale_and_failed);
	suite_add_tcase(s, tc);
	return s;
}
