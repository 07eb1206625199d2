#!/bin/bash
# transports: uring dev
# ext4 on parity arrays: raid5 (4 x 32 MiB, chunk 64k) and raid6 (5 x 32
# MiB, chunk 64k):
#   - mkfs.ext4 on MNT/disk, mount -o loop, copy a small tree in, umount,
#     e2fsck -fn clean; mount again and compare the tree;
#   - fail a member (raid6: two): e2fsck -fn of the degraded array clean,
#     mount it, compare the tree, copy the tree in again while degraded,
#     umount, e2fsck -fn clean;
#   - replace the failed member(s), wait for the rebuild, e2fsck -fn
#     clean; after unmount every member equals md's layout of the disk's
#     final contents (raid_ref.py mdcheck).
. "$(dirname "$0")/lib.sh"
requires_transport
requires mkfs.ext4 e2fsck losetup sha256sum
has_python || skip "requires python3"

REF=$E2E_DIR/raid_ref.py
. "$(dirname "$0")/raid_lib.sh"
D=$MNT/disk
FS=$T/ext4
mkdir "$FS"
CASE=

# The tree: empty file and dir, tiny and odd-sized files, one bigger than
# a stripe and max_write, nested dirs, a symlink.
SRC=$T/src
mkdir -p "$SRC/a/b/c" "$SRC/empty_dir"
: >"$SRC/empty"
echo hello >"$SRC/a/tiny"
for i in $(seq 1 30); do
	head -c $((i * 1499 + i * i * 211)) /dev/urandom >"$SRC/a/b/f$i"
done
head -c $((2 * 1048576 + 12345)) /dev/urandom >"$SRC/a/b/c/big"
ln -s ../a/tiny "$SRC/a/b/c/link"
(cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sums"

fsck_clean()
{
	e2fsck -fn "$D" >"$T/fsck.out" 2>&1 ||
		{ cat "$T/fsck.out"; die "$CASE: e2fsck -fn $D is not clean ($1)"; }
	log "$CASE: e2fsck -fn clean ($1)"
}

mount_fs()
{
	mount -o loop "$D" "$FS" || die "$CASE: mount -o loop $D ($1)"
	track_mount "$FS"
}

umount_fs()
{
	umount "$FS" || die "$CASE: umount $FS ($1)"
	untrack_mount "$FS"
}

# compare_tree DIR WHAT: DIR (in the ext4 mount) holds the source tree.
compare_tree()
{
	(cd "$1" && sha256sum --quiet -c "$T/sums") >"$T/sha.out" 2>&1 ||
		{ head "$T/sha.out"; die "$CASE: file contents differ ($2)"; }
	diff -r --no-dereference "$SRC" "$1" -x lost+found -x again >"$T/diff.out" 2>&1 ||
		{ head "$T/diff.out"; die "$CASE: tree differs ($2)"; }
	[ "$(readlink "$1/a/b/c/link")" = ../a/tiny ] || die "$CASE: symlink lost ($2)"
}

wait_idle()
{
	local i
	for i in $(seq 300); do
		grep -q '"sweep_running": true\|"state": "rebuilding"' "$MNT/stats" || return 0
		sleep 0.1
	done
	die "$CASE: still rebuilding after 30 s"
}

# mkfs_case NAME LEVEL EXPR FAILED... (member indices; images are m0.img ...)
mkfs_case()
{
	local name=$1 level=$2 expr=$3 n i f members=()
	shift 3
	CASE=$name
	mkdir "$T/$name" && cd "$T/$name" || die "mkdir"
	n=$(echo "$expr" | grep -o 'm[0-9]\.img' | wc -l)
	for ((i = 0; i < n; i++)); do
		make_image "m$i.img" 32M
		members+=("m$i.img")
	done
	log "--- $CASE: $expr"
	start_rawvec "$expr"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$D" >"$T/mkfs.out" 2>&1 ||
		die "$CASE: mkfs.ext4 on $D: $(cat "$T/mkfs.out")"
	mount_fs "first mount"
	cp -a "$SRC/." "$FS/" || die "$CASE: cp into the ext4 mount"
	umount_fs "after the copy"
	fsck_clean "healthy"
	mount_fs "second mount"
	compare_tree "$FS" "healthy, remounted"
	umount_fs "healthy"

	for f in "$@"; do
		ctl "fail $f"
	done
	fsck_clean "degraded: failed $*"
	mount_fs "degraded"
	compare_tree "$FS" "degraded, failed $*"
	mkdir "$FS/again" && cp -a "$SRC/." "$FS/again/" || die "$CASE: cp while degraded"
	compare_tree "$FS/again" "copied while degraded"
	umount_fs "degraded"
	fsck_clean "degraded, after writing"

	for f in "$@"; do
		ctl "replace $f $T/$name/new$f.img"
		wait_idle
		members[f]=new$f.img
	done
	[ "$(stat_field target.degraded)" = 0 ] || die "$CASE: still degraded after the rebuild"
	fsck_clean "rebuilt"
	mount_fs "rebuilt"
	compare_tree "$FS" "rebuilt"
	compare_tree "$FS/again" "rebuilt, second copy"
	umount_fs "rebuilt"
	dd if="$D" iflag=direct bs=1M status=none >"$T/$name/final.bin" || die "$CASE: reading the disk"
	stop_rawvec
	ref mdcheck "$level" $((64 * 1024)) final.bin "${members[@]}" ||
		die "$CASE: member images differ from md's layout of the disk's contents"
	cd "$T" && rm -rf "${T:?}/$name"
}

mkfs_case raid5 raid5 'raid5(m0.img, m1.img, m2.img, m3.img, chunk=64k)' 1
mkfs_case raid6 raid6 'raid6(m0.img, m1.img, m2.img, m3.img, m4.img, chunk=64k)' 0 3
log "pass (${SECONDS}s)"
