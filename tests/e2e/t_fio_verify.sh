#!/bin/bash
# variants: uring/1 uring/2 dev/1 dev/2
# fio random writes with crc32c verification: io_uring and psync, direct
# and buffered, 4k, unaligned (3584, 1000-9000) and over-max_write (1.5M)
# block sizes, 2-4 jobs at once.  fio verifies through the mount, then (verify_only) once more in
# the image file after a clean unmount.
. "$(dirname "$0")/lib.sh"
requires_transport
requires fio

make_image "$T/img" 80M random

# jobfile ENGINE_OVERRIDE: five groups on disjoint regions, run one
# after the other.  With "image" every group reads the image with psync.
jobfile()
{
	local img=$1
	cat <<EOF
[global]
filename=\${TARGET}
rw=randwrite
verify=crc32c
verify_fatal=1
verify_state_save=0
do_verify=1
randrepeat=1
size=3m
group_reporting
stonewall

[uring-4k-direct]
offset=0
offset_increment=4m
numjobs=4
bs=4k
ioengine=${img:-io_uring}
iodepth=16
direct=${img:+0}${img:-1}

[psync-3584-buffered]
offset=16m
offset_increment=4m
numjobs=2
bs=3584
ioengine=psync
direct=0

[uring-bsrange-direct]
offset=32m
offset_increment=4m
numjobs=3
bsrange=1000-9000
ioengine=${img:-io_uring}
iodepth=8
direct=${img:+0}${img:-1}

[psync-3584-direct]
offset=48m
offset_increment=4m
numjobs=2
bs=3584
ioengine=psync
direct=${img:+0}${img:-1}

# Bigger than max_write: the kernel splits each into several requests.
[uring-1536k-direct]
offset=64m
offset_increment=6m
size=6m
numjobs=2
bs=1536k
ioengine=${img:-io_uring}
iodepth=8
direct=${img:+0}${img:-1}
EOF
}
jobfile "" >"$T/mount.fio"
jobfile psync >"$T/image.fio"

start_rawvec "$T/img"
log "fio through the mount"
cd "$T" || die "cd $T" # fio drops files in the current directory
TARGET=$MNT/disk fio --output="$T/fio.out" "$T/mount.fio" ||
	{ cat "$T/fio.out"; die "fio (write + verify through the mount) failed"; }
grep -iE 'verify|err=' "$T/fio.out" | grep -v 'err= 0' | head -5
grep -E 'err= *[1-9]' "$T/fio.out" && die "fio reported errors"
errs=$(stat_field errors) || exit 1
log "stats: errors=$errs rmw_writes=$(stat_field rmw_writes) range_lock_waits=$(stat_field range_lock_waits)"
stop_rawvec

log "fio verify_only on the image"
TARGET=$T/img fio --verify_only --output="$T/fio2.out" "$T/image.fio" ||
	{ cat "$T/fio2.out"; die "fio verify_only on the image after unmount failed"; }
log "pass"
