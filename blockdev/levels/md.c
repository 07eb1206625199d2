/* md: an array built as its members' md v1.2 superblocks say (level,
 * chunk, member order), like mdadm --assemble; super.c reads them. */
#include "blockdev/levels/layer.h"

const struct bdev_kind md_kind = {
	.bk_name = "md",
	.bk_help =
		"  md(M, M, ...)                     level, chunk, order from the md\n"
		"                                    superblocks on the members\n",
	.bk_min_members = 1,
	.bk_max_members = LAYER_MAX_MEMBERS,
	.bk_flags = BK_ARRAY | BK_FROM_SUPER,
};
