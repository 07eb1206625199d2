#!/bin/bash
# variants: uring/2 dev/1
# A real filesystem on the disk: mkfs.ext4 on MNT/disk, mount -o loop,
# copy a tree, umount, e2fsck -fn must be clean; then restart rawvec,
# e2fsck the image itself, mount again and compare the tree.
. "$(dirname "$0")/lib.sh"
requires_transport
requires mkfs.ext4 e2fsck losetup sha256sum

make_image "$T/img" 128M sparse
FS=$T/ext4
mkdir "$FS"

# A tree of generated files: empty, tiny, odd-sized, one over max_write,
# nested directories, a symlink; plus a slice of /usr/share/doc if any.
SRC=$T/src
mkdir -p "$SRC/a/b/c" "$SRC/empty_dir"
: >"$SRC/empty"
echo hello >"$SRC/a/tiny"
for i in $(seq 1 40); do
	head -c $((i * 997 + i * i * 131)) /dev/urandom >"$SRC/a/b/f$i"
done
head -c $((3 * 1048576 + 4097)) /dev/urandom >"$SRC/a/b/c/big"
ln -s ../a/tiny "$SRC/a/b/c/link"
if [ -d /usr/share/doc ]; then
	mkdir "$SRC/doc"
	find /usr/share/doc -maxdepth 2 -type f -size -64k -print0 | head -z -n 150 |
		xargs -0r cp -a --parents -t "$SRC/doc" 2>/dev/null
fi
(cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sums"
nfiles=$(wc -l <"$T/sums")

start_rawvec "$T/img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$MNT/disk" >"$T/mkfs.out" 2>&1 ||
	die "mkfs.ext4 on $MNT/disk: $(cat "$T/mkfs.out")"
mount -o loop "$MNT/disk" "$FS" || die "mount -o loop $MNT/disk"
track_mount "$FS"
cp -a "$SRC/." "$FS/" || die "cp into the ext4 mount"
sync -f "$FS/empty"
umount "$FS" || die "umount $FS"
untrack_mount "$FS"
e2fsck -fn "$MNT/disk" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; die "e2fsck -fn $MNT/disk is not clean"; }
log "copied $nfiles files; e2fsck clean through the mount"
stop_rawvec

e2fsck -fn "$T/img" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; die "e2fsck -fn of the image after unmount is not clean"; }

start_rawvec "$T/img"
mount -o loop "$MNT/disk" "$FS" || die "second mount -o loop $MNT/disk"
track_mount "$FS"
(cd "$FS" && sha256sum --quiet -c "$T/sums") || die "file contents differ after remount"
diff -r --no-dereference "$SRC" "$FS" -x lost+found >"$T/diff.out" 2>&1 ||
	{ head "$T/diff.out"; die "tree differs after remount"; }
[ "$(readlink "$FS/a/b/c/link")" = ../a/tiny ] || die "symlink lost"
umount "$FS" || die "second umount"
untrack_mount "$FS"
stop_rawvec
log "pass"
