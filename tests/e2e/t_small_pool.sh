#!/bin/bash
# transports: uring dev
# A small pinned pool (-o pool=4m, 8m) still serves: rawvec shrinks
# max_write and the slot/entry counts to fit, and data stays right (odd
# dd sizes across the smaller request boundaries, a short fio verify,
# aligned 1 MiB writes still zero-copy).  A pool too small for anything
# (-o pool=1m) is a usage error naming the pool.
. "$(dirname "$0")/lib.sh"
requires_transport
requires fio

make_image "$T/img" 32M random
cp "$T/img" "$T/ref"

"$RAWVEC" -f "$(transport_opt)" -o pool=1m "$MNT" "$T/img" >"$T/out" 2>&1
rc=$?
mountpoint -q "$MNT" && { fusermount3 -u "$MNT"; die "-o pool=1m mounted"; }
[ $rc = 2 ] && grep -q pool "$T/out" || die "-o pool=1m: exit $rc, want 2 naming the pool: $(cat "$T/out")"

for pool in 4m 8m; do
	start_rawvec -o pool=$pool "$T/img"
	mw=$(stat_field max_write) || exit 1
	log "-o pool=$pool: max_write $mw, $(grep transport: "$RAWVEC_LOG" | tail -1)"
	head -c $((3 << 20)) /dev/urandom >"$T/src"
	dd if="$T/src" of="$MNT/disk" bs=$((mw + 1)) seek=1 conv=notrunc status=none || die "dd bs=max_write+1"
	dd if="$T/src" of="$T/ref" bs=$((mw + 1)) seek=1 conv=notrunc status=none
	c0=$(stat_field copied_bytes) || exit 1
	dd if="$T/src" of="$MNT/disk" bs=1M seek=8 oflag=direct conv=notrunc status=none || die "dd bs=1M direct"
	dd if="$T/src" of="$T/ref" bs=1M seek=8 conv=notrunc status=none
	c1=$(stat_field copied_bytes) || exit 1
	[ "$c0" = "$c1" ] || die "-o pool=$pool: aligned 1 MiB direct writes copied $((c1 - c0)) bytes"
	same_bytes "$MNT/disk" "$T/ref" "-o pool=$pool: disk vs reference"
	(cd "$T" && fio --name=small --filename="$MNT/disk" --offset=16m --size=8m \
		--rw=randwrite --bsrange=1000-200000 --ioengine=io_uring --iodepth=32 \
		--direct=1 --numjobs=1 --verify=crc32c --verify_fatal=1 --randrepeat=1 --verify_state_save=0 \
		--output="$T/fio.out") || { cat "$T/fio.out"; die "fio verify with -o pool=$pool"; }
	stop_rawvec
	# fio wrote [16m, 24m): take it into the reference from the image.
	dd if="$T/img" of="$T/ref" bs=1M skip=16 seek=16 count=8 conv=notrunc status=none
	same_bytes "$T/img" "$T/ref" "-o pool=$pool: image vs reference"
done
log "pass"
