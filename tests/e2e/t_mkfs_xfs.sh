#!/bin/bash
# mkfs.xfs on MNT/disk (once, default transport), mount -o loop, write and
# read back files, umount, xfs_repair -n clean.  XFS refuses filesystems
# under 300 MB, so the image is a 320 MiB sparse file.
. "$(dirname "$0")/lib.sh"
requires_transport
requires mkfs.xfs xfs_repair losetup sha256sum

make_image "$T/img" 320M sparse
FS=$T/xfs
mkdir "$FS" "$T/src"
for i in $(seq 1 30); do
	head -c $((i * 4093 + 511)) /dev/urandom >"$T/src/f$i"
done
head -c $((2 * 1048576 + 1)) /dev/urandom >"$T/src/big"
(cd "$T/src" && sha256sum -- *) >"$T/sums"

start_rawvec "$T/img"
mkfs.xfs -q -f "$MNT/disk" >"$T/mkfs.out" 2>&1 || die "mkfs.xfs on $MNT/disk: $(cat "$T/mkfs.out")"
mount -o loop "$MNT/disk" "$FS" || die "mount -o loop (xfs)"
track_mount "$FS"
cp -a "$T/src/." "$FS/" || die "cp into xfs"
umount "$FS" || die "umount xfs"
untrack_mount "$FS"
xfs_repair -n "$MNT/disk" >"$T/repair.out" 2>&1 || { tail "$T/repair.out"; die "xfs_repair -n is not clean"; }
mount -o loop,ro "$MNT/disk" "$FS" || die "second mount (xfs)"
track_mount "$FS"
(cd "$FS" && sha256sum --quiet -c "$T/sums") || die "xfs file contents differ after remount"
umount "$FS" || die "second umount (xfs)"
untrack_mount "$FS"
stop_rawvec
xfs_repair -n -f "$T/img" >"$T/repair.out" 2>&1 || { tail "$T/repair.out"; die "xfs_repair -n of the image is not clean"; }
log "pass"
