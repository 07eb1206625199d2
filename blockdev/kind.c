/* kind: the registry of levels and member kinds, which everything that
 * needs to know the kinds walks, and the --help lines written from it. */
#include "blockdev/kind.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define BDEV_KIND_REF(n) &n##_kind,
const struct bdev_kind *const bdev_levels[] = { BDEV_LEVELS(BDEV_KIND_REF)
							NULL };
const struct bdev_kind *const bdev_members[] = { BDEV_MEMBERS(BDEV_KIND_REF)
							 NULL };

const struct bdev_kind *bdev_kind_find(const char *name, size_t len)
{
	const struct bdev_kind *const *lists[] = { bdev_levels, bdev_members };

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		for (const struct bdev_kind *const *k = lists[i]; *k; k++)
			if (!((*k)->bk_flags & BK_PATH) &&
			    strlen((*k)->bk_name) == len &&
			    !strncmp((*k)->bk_name, name, len))
				return *k;
	return NULL;
}

const struct bdev_kind *bdev_kind_path(void)
{
	for (const struct bdev_kind *const *k = bdev_members; *k; k++)
		if ((*k)->bk_flags & BK_PATH)
			return *k;
	return NULL;
}

void bdev_kind_names(char *buf, size_t len)
{
	const struct bdev_kind *const *lists[] = { bdev_levels, bdev_members };
	size_t n = 0;

	buf[0] = '\0';
	for (int leaves = 0; leaves < 2; leaves++)
		for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
			for (const struct bdev_kind *const *k = lists[i]; *k;
			     k++)
				if (!((*k)->bk_flags & BK_PATH) &&
				    ((*k)->bk_max_members == 0) == leaves &&
				    n < len)
					n += snprintf(buf + n, len - n, "%s%s",
						      n ? ", " : "",
						      (*k)->bk_name);
}

/* "linear, raid0/1/5/6": the names of @list's kinds with BK_ARRAY, not
 * BK_FROM_SUPER; a name that only changes the previous one's number is
 * written as "/number". */
static void array_names(const struct bdev_kind *const *list, char *buf,
			size_t len)
{
	const char *prev = NULL;
	size_t n = 0;

	buf[0] = '\0';
	for (; *list; list++) {
		const char *name = (*list)->bk_name;
		size_t stem = strcspn(name, "0123456789");

		if (((*list)->bk_flags & (BK_ARRAY | BK_FROM_SUPER)) !=
		    BK_ARRAY)
			continue;
		if (n < len && prev && name[stem] && strlen(prev) > stem &&
		    !strncmp(prev, name, stem) &&
		    isdigit((unsigned char)prev[stem]))
			n += snprintf(buf + n, len - n, "/%s", name + stem);
		else if (n < len)
			n += snprintf(buf + n, len - n, "%s%s",
				      prev ? ", " : "", name);
		prev = name;
	}
}

void bdev_kind_usage(FILE *f)
{
	char arrays[256];

	for (const struct bdev_kind *const *k = bdev_levels; *k; k++)
		fputs((*k)->bk_help ? (*k)->bk_help : "", f);
	array_names(bdev_levels, arrays, sizeof(arrays));
	fprintf(f,
		"  %s also take super=auto|1.2|none (md v1.2\n"
		"  superblocks; auto writes them on members --create makes) and name=\n",
		arrays);
	for (const struct bdev_kind *const *k = bdev_members; *k; k++)
		fputs((*k)->bk_help ? (*k)->bk_help : "", f);
}

/* A device runs on @nr_loops loops at once only when nothing of its own
 * changes on the I/O path but its sharded stats, or it keeps a part of
 * its state for each loop. */
static bool runs_anywhere(const struct bdev *d, int nr_loops)
{
	const struct bdev_kind *k = d->bd_desc;

	return k &&
	       ((k->bk_flags & BK_SHARED) ||
		(k->bk_max_loops && k->bk_max_loops(d) >= nr_loops)) &&
	       ((!d->bd_hold && !d->bd_hold_end) || d->bd_hold_any_loop) &&
	       !d->bd_observe;
}

const struct bdev *bdev_tree_first_owned(const struct bdev *top, int nr_loops)
{
	if (!runs_anywhere(top, nr_loops))
		return top;
	for (int i = 0; i < top->bd_nr_members; i++) {
		const struct bdev *d =
			bdev_tree_first_owned(top->bd_members[i], nr_loops);

		if (d)
			return d;
	}
	return NULL;
}

int bdev_tree_share(struct bdev *top, int nr_loops, struct loop *owner)
{
	bool shared = runs_anywhere(top, nr_loops);
	int owned = 0, ret;

	if (nr_loops < 2)
		return 0;
	ret = bdev_share(top, nr_loops, shared ? NULL : owner);
	if (!ret && shared && top->bd_desc->bk_share)
		ret = top->bd_desc->bk_share(top, nr_loops);
	if (ret || !shared)
		/* Below an owned device every request already runs on the
		 * owner: nothing there needs shards. */
		return ret ? ret : 1;
	for (int i = 0; i < top->bd_nr_members; i++) {
		ret = bdev_tree_share(top->bd_members[i], nr_loops, owner);
		if (ret < 0)
			return ret;
		owned += ret;
	}
	return owned;
}
