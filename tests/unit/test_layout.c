/* test_layout: the TARGET grammar.  Every documented layout parses into the
 * tree it describes; a bad expression is refused with its message and the
 * caret under the column README and t_raid_bad_expr.sh promise, and leaves
 * no file behind; sizes and durations read as the options take them. */
#include "tests/unit/unit.h"
#include "tests/unit/unit_layer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockdev/layout.h"
#include "blockdev/levels/layer.h"

#define ERR_BYTES 16384
#define EXPR_BYTES 4096

/* Member files for the cases that need paths: a.img to d.img (4 MiB each),
 * link.img a symlink to a.img, hard.img a hard link to b.img, x(1).img. */
static char dir[] = "/tmp/rawvec-layout.XXXXXX";
static bool have_dir;

static void files_setup(void)
{
	static const char *const names[] = { "a.img", "b.img", "c.img", "d.img",
					     "x(1).img" };
	char path[256], to[256], err[512];
	struct bdev *d;

	if (!mkdtemp(dir))
		return;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || ftruncate(fd, 4 << 20))
			return;
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/link.img", dir);
	if (symlink("a.img", path))
		return;
	snprintf(path, sizeof(path), "%s/hard.img", dir);
	snprintf(to, sizeof(to), "%s/b.img", dir);
	if (link(to, path))
		return;
	/* Where /tmp takes no O_DIRECT the file cases are left out. */
	snprintf(path, sizeof(path), "%s/a.img", dir);
	if (bdev_file_open(path, &(struct bdev_file_opts){ 0 }, &d, err,
			   sizeof(err)))
		return;
	bdev_destroy(d);
	have_dir = true;
}

static void files_teardown(void)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* @tmpl with every "@/" made the member directory's path ('@' alone is
 * lat_spike's). */
static const char *expand(const char *tmpl, char *out)
{
	size_t n = 0;

	for (const char *c = tmpl; *c; c++) {
		if (c[0] == '@' && c[1] == '/')
			n += (size_t)snprintf(out + n, EXPR_BYTES - n, "%s",
					      dir);
		else if (n + 1 < EXPR_BYTES)
			out[n++] = *c;
	}
	out[n < EXPR_BYTES ? n : EXPR_BYTES - 1] = '\0';
	return out;
}

static bool needs_dir(const char *tmpl)
{
	return strstr(tmpl, "@/") != NULL;
}

/* Open @expr without superblock I/O, which needs no loop. */
static int open_expr(const char *expr, uint64_t create_size, struct bdev **out,
		     char *err)
{
	struct bdev_layout_opts o = { .no_io = true,
				      .max_io_bytes = 1 << 20,
				      .create_size = create_size };

	err[0] = '\0';
	return bdev_layout_open(expr, NULL, &o, out, err, ERR_BYTES);
}

/* ---- accepted ---- */

#define G (1ull << 30)
#define M (1ull << 20)
#define K (1ull << 10)

/* What a good expression must build: the top's kind and size, its
 * members' kinds in order, and chunk or slice offset where they apply. */
struct good {
	const char *expr; /* "@/": in the member directory */
	const char *kind;
	uint64_t size;
	const char *members; /* kinds, comma-separated; "" for none */
	uint64_t chunk, offset;
};

/* clang-format off */
static const struct good good[] = {
	/* README's layouts, over null() (no memory) and mem() members. */
	{ "linear(null(size=1g), null(size=2g), null(size=512m))", "linear",
	  3 * G + 512 * M, "null,null,null", 0, 0 },
	{ "slice(null(size=20g), offset=1g, size=10g)", "slice", 10 * G, "null", 0, G },
	{ "raid0(null(size=1g), null(size=1g), null(size=1g), chunk=64k)", "raid0",
	  3 * G, "null,null,null", 64 * K, 0 },
	{ "raid1(null(size=1g), null(size=1g))", "raid1", G, "null,null", 0, 0 },
	{ "raid5(null(size=1g), null(size=1g), null(size=1g), null(size=1g), chunk=64k)",
	  "raid5", 3 * G, "null,null,null,null", 64 * K, 0 },
	{ "raid6(null(size=1g), null(size=1g), null(size=1g), null(size=1g), chunk=64k)",
	  "raid6", 2 * G, "null,null,null,null", 64 * K, 0 },
	{ "raid0(raid1(null(size=1g), null(size=1g)), raid1(null(size=1g), null(size=1g)), "
	  "chunk=128k)", "raid0", 2 * G, "raid1,raid1", 128 * K, 0 },
	{ "linear(raid5(null(size=1g), null(size=1g), null(size=1g)), "
	  "slice(null(size=1g), offset=1m))", "linear", 3 * G - M, "raid5,slice", 0, 0 },
	{ "null(size=10g)", "null", 10 * G, "", 0, 0 },
	{ "mem(size=1m)", "mem", M, "", 0, 0 },
	{ "faulty(null(size=16m), read_eio=0.001, write_eio=0, at=4m..8m, after=1000, "
	  "lat_spike=50ms@0.01, unreadable=1m..1028k)", "faulty", 16 * M, "null", 0, 0 },
	{ "sim(null(size=16m), lat=200us, bw=500m, qd=32)", "sim", 16 * M, "null", 0, 0 },
	/* md's default chunk; the smallest chunk; the array options. */
	{ "raid0(null(size=4m), null(size=4m))", "raid0", 8 * M, "null,null", 512 * K, 0 },
	{ "raid5(null(size=1m), null(size=1m), null(size=1m), chunk=4k, super=none, "
	  "name=data)", "raid5", 2 * M, "null,null,null", 4 * K, 0 },
	{ "raid1(null(size=1m), null(size=1m), super=1.2)", "raid1", M, "null,null", 0, 0 },
	{ "linear(null(size=1m), super=auto, name=0123456789012345678901234567890)",
	  "linear", M, "null", 0, 0 },
	/* Members cut to the smallest, in whole chunks. */
	{ "raid0(null(size=1m), null(size=1100k), chunk=64k)", "raid0", 2 * M,
	  "null,null", 64 * K, 0 },
	/* Blanks and tabs around members and names. */
	{ " raid0 (\tnull(size=1m) ,  null(size=1m)\t, chunk=4k )\t", "raid0", 2 * M,
	  "null,null", 4 * K, 0 },
	{ "raid0(slice(null(size=1m), offset=0), slice(null(size=1m), size=1m), chunk=4k)",
	  "raid0", 2 * M, "slice,slice", 4 * K, 0 },
	/* Paths: a bare path, a path with parentheses that exists, and two
	 * slices of one image that do not overlap (two extents). */
	{ "@/a.img", "file", 4 * M, "", 0, 0 },
	{ "@/x(1).img", "file", 4 * M, "", 0, 0 },
	{ "raid5(@/a.img, @/b.img, @/c.img, @/d.img, chunk=64k)", "raid5", 12 * M,
	  "file,file,file,file", 64 * K, 0 },
	{ "linear(slice(@/c.img, size=1m), slice(@/c.img, offset=1m))", "linear", 4 * M,
	  "slice,slice", 0, 0 },
};
/* clang-format on */

static void check_good(const struct good *g)
{
	char expr[EXPR_BYTES], kinds[512] = "", err[ERR_BYTES];
	struct bdev *dev;
	struct layer *l;
	size_t n = 0;
	int ret;

	expand(g->expr, expr);
	ret = open_expr(expr, 0, &dev, err);
	ck_assert_msg(!ret, "%s: refused (%d): %s", expr, ret, err);
	ck_assert_msg(!strcmp(dev->bd_kind, g->kind), "%s: kind %s, want %s",
		      expr, dev->bd_kind, g->kind);
	UT_EQ(dev->bd_size, g->size, "%s: size", expr);
	if (bdev_is_layer(dev)) {
		l = layer_of(dev);
		for (int i = 0; i < l->l_nr; i++)
			n += (size_t)snprintf(kinds + n, sizeof(kinds) - n,
					      "%s%s", i ? "," : "",
					      l->l_members[i]->bd_kind);
		UT_EQ(l->l_chunk, g->chunk, "%s: chunk", expr);
		UT_EQ(ut_window_start(l), g->offset, "%s: offset", expr);
	}
	ck_assert_msg(!strcmp(kinds, g->members), "%s: members %s, want %s",
		      expr, kinds, g->members);
	bdev_destroy(dev);
}

START_TEST(test_accepts)
{
	char expr[EXPR_BYTES], err[ERR_BYTES];
	struct bdev *dev;
	size_t n;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (have_dir || !needs_dir(good[i].expr))
			check_good(&good[i]);
	/* As many members as a level takes. */
	n = (size_t)snprintf(expr, sizeof(expr), "raid0(");
	for (int i = 0; i < LAYER_MAX_MEMBERS; i++)
		n += (size_t)snprintf(expr + n, sizeof(expr) - n,
				      "null(size=1m), ");
	snprintf(expr + n, sizeof(expr) - n, "chunk=4k)");
	ck_assert_msg(!open_expr(expr, 0, &dev, err), "64 members: %s", err);
	UT_EQ(dev->bd_size, LAYER_MAX_MEMBERS * M, "64 members");
	bdev_destroy(dev);
}
END_TEST

/* ---- refused ---- */

/**
 * struct bad - an expression that must be refused.
 * @msg:   the message line; a trailing "..." matches any rest of it
 * @at:    the caret is under where @at occurs (the @nth time), plus
 *         @delta; NULL: column 0; "$": the end of the expression, plus @delta
 */
struct bad {
	const char *expr, *msg, *at;
	int nth, delta;
};

#define N1 "null(size=1m)"
#define UNKNOWN \
	" (linear, slice, raid0, raid1, raid5, raid6, md, faulty, sim, null, mem, nbd)"
#define BAD_SIZE " (a number with an optional k, m, g or t, above zero)"
#define NOENT ": No such file or directory"

/* clang-format off */
static const struct bad bad[] = {
	/* Unknown levels. */
	{ "raid7(" N1 ", " N1 ")", "unknown layout 'raid7'" UNKNOWN, NULL, 1, 0 },
	{ "raid0(" N1 ", mirror(" N1 ", " N1 "))", "unknown layout 'mirror'" UNKNOWN,
	  "mirror", 1, 0 },
	{ "stripe(" N1 ", " N1 ", chunk=64k)", "unknown layout 'stripe'" UNKNOWN, NULL, 1, 0 },
	/* Member counts. */
	{ "raid5(" N1 ", " N1 ")", "raid5 needs at least 3 members, got 2", NULL, 1, 0 },
	{ "raid6(" N1 ", " N1 ", " N1 ")", "raid6 needs at least 4 members, got 3",
	  NULL, 1, 0 },
	{ "linear(" N1 ", raid5(" N1 ", " N1 "))", "raid5 needs at least 3 members, got 2",
	  "raid5", 1, 0 },
	{ "raid1(" N1 ")", "raid1 needs at least 2 members, got 1", NULL, 1, 0 },
	{ "raid0(" N1 ", chunk=64k)", "raid0 needs at least 2 members, got 1", NULL, 1, 0 },
	{ "raid0(raid1(" N1 "), " N1 ")", "raid1 needs at least 2 members, got 1",
	  "raid1", 1, 0 },
	{ "slice(" N1 ", " N1 ")", "slice takes one member", "null", 2, 0 },
	/* An option without its key reads as a member: say what it takes. */
	{ "slice(" N1 ", 4m, 40m)", "slice takes one member; options are key=value: "
	  "slice(M, offset=SIZE, size=SIZE)", "4m", 1, 0 },
	{ "faulty(" N1 ", 0.1)", "faulty takes one member; options are key=value: "
	  "faulty(M, read_eio=P, ...", "0.1", 1, 0 },
	{ "null(mem(size=1m), size=1m)", "null takes no members", "mem", 1, 0 },
	/* Chunks: not a power of two, below 4k, not a size, too big. */
	{ "raid5(" N1 ", " N1 ", " N1 ", chunk=48k)",
	  "chunk 49152 is not a power of two of at least 4k", "chunk", 1, 0 },
	{ "raid0(" N1 ", " N1 ", chunk=4100)",
	  "chunk 4100 is not a power of two of at least 4k", "chunk", 1, 0 },
	{ "raid0(" N1 ", " N1 ", chunk=2k)",
	  "chunk 2048 is not a power of two of at least 4k", "chunk", 1, 0 },
	{ "raid0(raid1(" N1 ", " N1 "), raid1(" N1 ", " N1 "), chunk=1k)",
	  "chunk 1024 is not a power of two of at least 4k", "chunk", 1, 0 },
	{ "raid0(" N1 ", " N1 ", chunk=0)", "bad size '0'" BAD_SIZE, "chunk=", 1, 6 },
	{ "raid0(" N1 ", " N1 ", chunk=-4k)", "bad size '-4k'" BAD_SIZE, "chunk=", 1, 6 },
	{ "raid0(" N1 ", " N1 ", chunk=4x)", "bad size '4x'" BAD_SIZE, "chunk=", 1, 6 },
	{ "raid0(" N1 ", " N1 ", chunk=64kb)", "bad size '64kb'" BAD_SIZE, "chunk=", 1, 6 },
	{ "raid0(" N1 ", " N1 ", chunk=)", "bad size ''" BAD_SIZE, "chunk=", 1, 6 },
	{ "raid0(" N1 ", " N1 ", chunk=99999999999999999999k)",
	  "bad size '99999999999999999999k'" BAD_SIZE, "chunk=", 1, 6 },
	{ "raid0(" N1 ", " N1 ", chunk=16777216t)", "bad size '16777216t'" BAD_SIZE,
	  "chunk=", 1, 6 },
	{ "raid0(" N1 ", " N1 ", chunk=18446744073709551616)",
	  "bad size '18446744073709551616'" BAD_SIZE, "chunk=", 1, 6 },
	/* Slices outside their member (4 MiB). */
	{ "slice(null(size=4m), offset=1m, size=16777215t)",
	  "slice: offset 1048576 + size 18446742974197923840 is beyond the member's "
	  "4194304 bytes", NULL, 1, 0 },
	{ "slice(null(size=4m), offset=18446744073709551615, size=1m)",
	  "slice: offset 18446744073709551615 + size 1048576 is beyond the member's "
	  "4194304 bytes", NULL, 1, 0 },
	{ "slice(null(size=4m), offset=5m)",
	  "slice: offset 5242880 + size 0 is beyond the member's 4194304 bytes", NULL, 1, 0 },
	{ "slice(null(size=4m), offset=4m)",
	  "slice: offset 4194304 + size 0 is beyond the member's 4194304 bytes", NULL, 1, 0 },
	{ "slice(null(size=4m), offset=1m, size=4m)",
	  "slice: offset 1048576 + size 4194304 is beyond the member's 4194304 bytes",
	  NULL, 1, 0 },
	{ "linear(null(size=4m), slice(null(size=4m), offset=8m))",
	  "slice: offset 8388608 + size 0 is beyond the member's 4194304 bytes", "slice", 1, 0 },
	{ "slice(raid5(" N1 ", " N1 ", " N1 ", chunk=4k), offset=512)",
	  "slice: offset and size must be multiples of 4096", NULL, 1, 0 },
	/* Parentheses. */
	{ "raid0(" N1 ", " N1, "missing ')'", "$", 1, 0 },
	{ "raid0(raid1(" N1 ", " N1 "), raid1(" N1 ", " N1 ")", "missing ')'", "$", 1, 0 },
	{ "raid0(raid1(" N1 ", " N1 ", raid1(" N1 ", " N1 "), chunk=64k)", "missing ')'",
	  "$", 1, 0 },
	{ "raid0(" N1 ", " N1 "))", "unbalanced ')'", "$", 1, -1 },
	{ "linear(" N1 "), " N1 ")", "unexpected text after the expression", "), null", 1, 1 },
	{ "raid0((" N1 ", " N1 ")", "expected a member here", "((", 1, 1 },
	/* Empty members. */
	{ "raid0(" N1 ",," N1 ")", "expected a member here", ",,", 1, 1 },
	{ "raid0(" N1 ", " N1 ",)", "expected a member here", ",)", 1, 1 },
	{ "raid0(, " N1 ", " N1 ")", "expected a member here", ",", 1, 0 },
	{ "raid0()", "expected a member here", ")", 1, 0 },
	{ "raid1(" N1 ", " N1 ", , " N1 ")", "expected a member here", ", ,", 1, 2 },
	{ "raid0(" N1 ", " N1 ", chunk=64k", "missing ')'", "$", 1, 0 },
	/* Options. */
	{ "raid0(" N1 ", " N1 ", chnk=64k)", "raid0() takes no option 'chnk'", "chnk", 1, 0 },
	{ "linear(" N1 ", " N1 ", chunk=64k)", "linear() takes no option 'chunk'",
	  "chunk", 1, 0 },
	{ "raid1(" N1 ", " N1 ", offset=1m)", "raid1() takes no option 'offset'",
	  "offset", 1, 0 },
	{ "slice(" N1 ", chunk=64k)", "slice() takes no option 'chunk'", "chunk", 1, 0 },
	{ "mem(size=1m, name=x)", "mem() takes no option 'name'", "name", 1, 0 },
	{ "null(sise=1m)", "null() needs size=SIZE", "(", 1, 1 },
	{ "null()", "expected a member here", ")", 1, 0 },
	{ "mem(size=0)", "bad size '0'" BAD_SIZE, "0", 1, 0 },
	{ "raid5(" N1 ", " N1 ", " N1 ", super=2.0)", "super=2.0: not auto, 1.2 or none",
	  "2.0", 1, 0 },
	{ "raid1(" N1 ", " N1 ", name=)", "name=: 1 to 31 characters", "name=", 1, 5 },
	{ "raid1(" N1 ", " N1 ", name=01234567890123456789012345678901)",
	  "name=01234567890123456789012345678901: 1 to 31 characters", "name=", 1, 5 },
	{ "md(" N1 ", super=none)",
	  "md() assembles from superblocks: super=none makes no sense here", NULL, 1, 0 },
	{ "raid0(" N1 ", " N1 ", a=1, b=2, c=3, d=4, e=5, f=6, g=7)", "too many options",
	  "g=7", 1, 0 },
	{ "faulty(" N1 ", read_eio=2)", "faulty: bad value '2' for read_eio (...", NULL, 1, 0 },
	{ "faulty(" N1 ", rate=1)", "faulty: unknown option 'rate' (...", NULL, 1, 0 },
	{ "faulty(" N1 ", unreadable=1000..4096)",
	  "faulty: bad value '1000..4096' for unreadable (...", NULL, 1, 0 },
	{ "faulty(" N1 ", unreadable=0..2g)", "faulty: bad value '0..2g' for unreadable (...",
	  NULL, 1, 0 },
	{ "sim(" N1 ", lat=fast)", "sim: bad value 'fast' for lat (...", NULL, 1, 0 },
	/* An NBD URI is one argument, its '=' and '?' its own; options come
	 * after it and are checked before anything connects. */
	{ "nbd()", "nbd() needs a URI first", ")", 1, 0 },
	{ "nbd(nbd://h/e x)", "expected ',' or ')'", "x", 1, 0 },
	{ "nbd(nbd+unix:///e?socket=@/s.sock, conns=0)",
	  "nbd: bad value '0' for conns (...", NULL, 1, 0 },
	{ "nbd(nbd+unix:///e?socket=@/s.sock, timeout=90000s)",
	  "nbd: bad value '90000s' for timeout (...", NULL, 1, 0 },
	{ "nbd(nbd+unix:///e?socket=@/s.sock, connect_timeout=0)",
	  "nbd: bad value '0' for connect_timeout (...", NULL, 1, 0 },
	{ "nbd(nbd+unix:///e?socket=@/s.sock, socket=1)",
	  "nbd: unknown option 'socket' (...", NULL, 1, 0 },
	{ "nbd(nbd+unix:///e?socket=@/nosuch.sock)",
	  "nbd: nbd+unix:///e?socket=@/nosuch.sock: ...", NULL, 1, 0 },
	{ "raid1(" N1 ", nbd(nbd+unix:///e?socket=@/s.sock)", "missing ')'", "$", 1, 0 },
	/* Member files: missing, twice (by name, ./, symlink, hard link, in
	 * two mirrors, sliced and bare), a level name without its '('. */
	{ "raid0(@/a.img, @/nosuch.img)", "@/nosuch.img" NOENT, "@/nosuch.img", 1, 0 },
	{ "raid1(@/a.img, @/b.img, @/gone/c.img)", "@/gone/c.img" NOENT, "@/gone", 1, 0 },
	{ "linear(slice(@/nosuch.img, offset=1m), @/a.img)", "@/nosuch.img" NOENT,
	  "@/nosuch.img", 1, 0 },
	{ "raid1(@/a.img, @/a.img)", "@/a.img is already a member (column 6)", "@/a.img", 2, 0 },
	{ "raid0(@/a.img, @/./a.img)", "@/./a.img is already a member (column 6)",
	  "@/./a.img", 1, 0 },
	{ "raid0(@/a.img, @/link.img)", "@/link.img is already a member (column 6)",
	  "@/link.img", 1, 0 },
	{ "raid1(@/b.img, @/hard.img)", "@/hard.img is already a member (column 6)",
	  "@/hard.img", 1, 0 },
	{ "linear(slice(@/c.img, size=1m), @/d.img, @/c.img)",
	  "@/c.img is already a member (column 13), and the two slices of it overlap",
	  "@/c.img", 2, 0 },
	{ "linear @/a.img, @/b.img)", "expected '(' after 'linear'", " @/a.img", 1, 0 },
	/* README's own example. */
	{ "raid0(@/a.img, @/b.img, chnk=4k)", "raid0() takes no option 'chnk'", "chnk", 1, 0 },
};
/* clang-format on */

/* Where @b's caret belongs in the expanded @expr. */
static size_t want_col(const struct bad *b, const char *expr)
{
	char at[EXPR_BYTES];
	const char *p = expr;

	if (!b->at)
		return 0;
	if (!strcmp(b->at, "$"))
		return strlen(expr) + (size_t)b->delta;
	expand(b->at, at);
	for (int i = 0; p && i < b->nth; i++)
		p = strstr(i ? p + 1 : p, at);
	ck_assert_msg(p, "test table: no '%s' (#%d) in %s", at, b->nth, expr);
	return (size_t)(p - expr) + (size_t)b->delta;
}

/*
 * @err must be "MSG\n  EXPR\n  <col blanks>^": the message @msg (up to
 * its "..." if it ends so), then the expression, then the caret.
 */
static void check_report(const char *expr, const char *err, const char *msg,
			 size_t col)
{
	const char *l2 = strchr(err, '\n'), *l3;
	size_t mlen = strlen(msg), elen = strlen(expr), got;
	bool prefix = mlen >= 3 && !strcmp(msg + mlen - 3, "...");

	UT_CHECK(l2, "%s: no expression under the message '%s'", expr, err);
	if (prefix)
		UT_CHECK(!strncmp(err, msg, mlen - 3),
			 "%s: message '%.*s', want '%s'", expr, (int)(l2 - err),
			 err, msg);
	else
		UT_CHECK((size_t)(l2 - err) == mlen && !strncmp(err, msg, mlen),
			 "%s: message '%.*s', want '%s'", expr, (int)(l2 - err),
			 err, msg);
	l2++;
	l3 = strchr(l2, '\n');
	UT_CHECK(l3 && (size_t)(l3 - l2) == elen + 2 && !strncmp(l2, "  ", 2) &&
			 !strncmp(l2 + 2, expr, elen),
		 "%s: the expression line is '%.*s'", expr,
		 l3 ? (int)(l3 - l2) : (int)strlen(l2), l2);
	l3++;
	got = strspn(l3, " ");
	UT_CHECK(got >= 2 && !strcmp(l3 + got, "^"), "%s: no caret line: '%s'",
		 expr, l3);
	UT_EQ(got - 2, col, "%s: caret column (message '%s')", expr, msg);
}

START_TEST(test_refuses)
{
	char expr[EXPR_BYTES], msg[EXPR_BYTES], err[ERR_BYTES];
	struct bdev *dev;
	size_t n;
	int ret;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (needs_dir(bad[i].expr) && !have_dir)
			continue;
		expand(bad[i].expr, expr);
		dev = NULL;
		ret = open_expr(expr, 0, &dev, err);
		if (!ret)
			bdev_destroy(dev);
		UT_EQ(ret, -EINVAL,
		      "%s: accepted, or refused for another reason (%s)", expr,
		      err);
		check_report(expr, err, expand(bad[i].msg, msg),
			     want_col(&bad[i], expr));
	}
	/* One member more than a level takes: the caret under it. */
	n = (size_t)snprintf(expr, sizeof(expr), "linear(");
	for (int i = 0; i <= LAYER_MAX_MEMBERS; i++)
		n += (size_t)snprintf(expr + n, sizeof(expr) - n, "%s" N1,
				      i ? ", " : "");
	snprintf(expr + n, sizeof(expr) - n, ")");
	ck_assert_int_eq(open_expr(expr, 0, &dev, err), -EINVAL);
	check_report(expr, err, "more than 64 members",
		     strlen("linear(") + LAYER_MAX_MEMBERS * strlen(N1 ", "));
}
END_TEST

/* With --create a missing member is made, but a refused expression leaves
 * none behind: refused before anything is created, or after (a later
 * level fails), its files are removed again. */
START_TEST(test_create_leaves_nothing)
{
	/* clang-format off */
	static const struct bad t[] = {
		{ "raid0(@/a.img, @/new.img, chunk=48k)",
		  "chunk 49152 is not a power of two of at least 4k", "chunk", 1, 0 },
		{ "raid1(@/new.img)", "raid1 needs at least 2 members, got 1", NULL, 1, 0 },
		{ "raid0(@/a.img, @/new.img, @/gone/x.img)",
		  "@/gone/x.img: cannot create it" NOENT, "@/gone", 1, 0 },
		{ "raid1(@/new.img, @/new.img)", "@/new.img is already a member",
		  "@/new.img", 2, 0 },
		{ "raid0(@/new.img, @/./new.img)", "@/./new.img is already a member",
		  "@/./new.img", 1, 0 },
		{ "raid0(@/a.img, @/new.img, chnk=4k)", "raid0() takes no option 'chnk'",
		  "chnk", 1, 0 },
		{ "linear(@/new.img, slice(@/a.img, offset=8m))",
		  "slice: offset 8388608 + size 0 is beyond the member's 4194304 bytes",
		  "slice", 1, 0 },
	};
	/* clang-format on */
	char expr[EXPR_BYTES], msg[EXPR_BYTES], err[ERR_BYTES], path[256];
	struct bdev *dev;
	struct stat st;

	if (!have_dir)
		return;
	snprintf(path, sizeof(path), "%s/new.img", dir);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		expand(t[i].expr, expr);
		UT_EQ(open_expr(expr, 4 * M, &dev, err), -EINVAL, "%s: %s",
		      expr, err);
		check_report(expr, err, expand(t[i].msg, msg),
			     want_col(&t[i], expr));
		UT_CHECK(stat(path, &st) && errno == ENOENT,
			 "%s left %s behind", expr, path);
	}
	/* The same, good: made at the size asked for. */
	expand("raid1(@/new.img, @/b.img)", expr);
	ck_assert_msg(!open_expr(expr, 4 * M, &dev, err), "%s: %s", expr, err);
	UT_CHECK(layer_of(dev)->l_members[0]->bd_created, "%s: not created",
		 expr);
	UT_EQ(dev->bd_size, 4 * M, "%s", expr);
	bdev_destroy(dev);
	UT_CHECK(!stat(path, &st) && st.st_size == (off_t)(4 * M), "%s: %s",
		 expr, path);
	unlink(path);
}
END_TEST

/* ---- the paths an expression names, sizes, durations ---- */

START_TEST(test_leaves)
{
	/* clang-format off */
	static const struct {
		const char *expr, *want[4];
		int nr;
	} t[] = {
		{ "raid0(raid1(a.img, b.img), c.img, chunk=64k)", { "a.img", "b.img", "c.img" }, 3 },
		{ "a.img", { "a.img" }, 1 },
		{ "linear(slice(x.img, offset=1m), null(size=1m), mem(size=1m))", { "x.img" }, 1 },
		/* A syntax error ends the list: what came before it stays. */
		{ "raid0(a.img, b.img", { "a.img", "b.img" }, 2 },
		{ "raid0(a.img,, b.img)", { "a.img" }, 1 },
	};
	/* clang-format on */
	char *out[8];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int nr = bdev_layout_leaves(t[i].expr, out, 8);

		UT_EQ(nr, t[i].nr, "%s", t[i].expr);
		for (int k = 0; k < nr; k++) {
			UT_CHECK(!strcmp(out[k], t[i].want[k]),
				 "%s: leaf %d is %s, want %s", t[i].expr, k,
				 out[k], t[i].want[k]);
			free(out[k]);
		}
	}
	UT_EQ(bdev_layout_leaves(t[0].expr, out, 2), 2, "at most max");
	free(out[0]);
	free(out[1]);
}
END_TEST

/* The members that make threads=auto run one loop per CPU. */
START_TEST(test_in_memory)
{
	/* clang-format off */
	static const struct {
		const char *expr;
		bool want;
	} t[] = {
		{ "null(size=1g)", true },
		{ "mem(size=64m)", true },
		{ "raid5(mem(size=1m), mem(size=1m), mem(size=1m), chunk=64k, super=1.2)", true },
		{ "linear(slice(null(size=4m), offset=1m), raid1(mem(size=1m), null(size=1m)))", true },
		{ "raid0(null(size=1m), a.img)", false },
		{ "a.img", false },
		{ "raid1(null(size=1m), sim(null(size=1m)))", false },
		{ "faulty(mem(size=1m))", false },
		{ "nbd(nbd+unix:///?socket=/x.sock)", false },
		{ "md(a.img, b.img)", false },
		{ "raid0(null(size=1m), null(size=1m)", false },
		{ "raid0()", false },
	};
	/* clang-format on */

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		UT_EQ(bdev_layout_in_memory(t[i].expr), t[i].want, "%s",
		      t[i].expr);
}
END_TEST

START_TEST(test_sizes_and_durations)
{
	/* clang-format off */
	static const struct {
		const char *s;
		int len; /* -1: all of it */
		int ret;
		uint64_t want;
	} sz[] = {
		{ "4096", -1, 0, 4096 }, { "64k", -1, 0, 64 * K }, { "64K", -1, 0, 64 * K },
		{ "1m", -1, 0, M }, { "1G", -1, 0, G }, { "2t", -1, 0, 2ull << 40 },
		{ "18446744073709551615", -1, 0, UINT64_MAX },
		{ "16777215t", -1, 0, 16777215ull << 40 },
		{ "64k,", 3, 0, 64 * K }, { "1m)", 2, 0, M },
		{ "", -1, -EINVAL, 0 }, { "0", -1, -EINVAL, 0 }, { "0k", -1, -EINVAL, 0 },
		{ "k", -1, -EINVAL, 0 }, { "-1", -1, -EINVAL, 0 }, { "4x", -1, -EINVAL, 0 },
		{ "1kb", -1, -EINVAL, 0 }, { "1 k", -1, -EINVAL, 0 },
		{ "18446744073709551616", -1, -EINVAL, 0 },
		{ "16777216t", -1, -EINVAL, 0 }, { "99999999999999999999k", -1, -EINVAL, 0 },
	}, dur[] = {
		{ "500ns", -1, 0, 500 }, { "200us", -1, 0, 200000 }, { "2ms", -1, 0, 2000000 },
		{ "1s", -1, 0, 1000000000 }, { "0ns", -1, 0, 0 }, { "50ms@0.01", 4, 0, 50000000 },
		{ "18446744073709551615ns", -1, 0, UINT64_MAX },
		{ "", -1, -EINVAL, 0 }, { "5", -1, -EINVAL, 0 }, { "1m", -1, -EINVAL, 0 },
		{ "-1ms", -1, -EINVAL, 0 }, { "ms", -1, -EINVAL, 0 }, { "1 ms", -1, -EINVAL, 0 },
		{ "18446744074s", -1, -EINVAL, 0 },
		{ "000000000000000000000000000001ns", -1, -EINVAL, 0 }, /* too long */
	};
	/* clang-format on */
	uint64_t v;

	for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
		size_t len = sz[i].len < 0 ? strlen(sz[i].s) :
					     (size_t)sz[i].len;

		v = 7;
		UT_EQ(bdev_parse_size(sz[i].s, len, &v), sz[i].ret, "size '%s'",
		      sz[i].s);
		if (!sz[i].ret)
			UT_CHECK(v == sz[i].want, "size '%s': %llu", sz[i].s,
				 (unsigned long long)v);
	}
	for (size_t i = 0; i < sizeof(dur) / sizeof(dur[0]); i++) {
		size_t len = dur[i].len < 0 ? strlen(dur[i].s) :
					      (size_t)dur[i].len;

		v = 7;
		UT_EQ(bdev_parse_duration(dur[i].s, len, &v), dur[i].ret,
		      "duration '%s'", dur[i].s);
		if (!dur[i].ret)
			UT_CHECK(v == dur[i].want, "duration '%s': %llu",
				 dur[i].s, (unsigned long long)v);
	}
}
END_TEST

Suite *layout_suite(void)
{
	Suite *s = suite_create("layout");
	TCase *tc = tcase_create("layout");

	tcase_set_timeout(tc, UT_TIMEOUT_SEC);
	/* Unchecked: made once in the runner, removed whatever the tests do. */
	tcase_add_unchecked_fixture(tc, files_setup, files_teardown);
	tcase_add_test(tc, test_accepts);
	tcase_add_test(tc, test_refuses);
	tcase_add_test(tc, test_create_leaves_nothing);
	tcase_add_test(tc, test_leaves);
	tcase_add_test(tc, test_in_memory);
	tcase_add_test(tc, test_sizes_and_durations);
	suite_add_tcase(s, tc);
	return s;
}
