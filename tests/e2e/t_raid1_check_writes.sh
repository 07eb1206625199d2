#!/bin/bash
# variants: uring/2 dev/1
# A raid1 check or repair while writers run counts no mismatch: two jobs
# of 64k random writes at QD16 keep writes in flight to both mirrors, so
# the sweep often reads a range one mirror has and the other has not yet
# (it counted hundreds of sectors per check, and repair counted each
# redone step again).  Then, quiet, a check finds 0 and the mirrors hold
# the same bytes.  The images live on tmpfs: io_uring's worker threads
# run their writes there side by side, so more of them are in flight at
# once than on this machine's disk.
. "$(dirname "$0")/lib.sh"
requires fio python3
. "$(dirname "$0")/raid_lib.sh"

CASE=raid1
S=$(mktemp -d /dev/shm/rawvec-e2e.XXXXXX) || die "mktemp on /dev/shm"
at_exit "rm -rf $S"
for m in a b; do make_image "$S/$m.img" 64M zero; done
start_rawvec "raid1($S/a.img, $S/b.img)"
fio --name=w --filename="$MNT/disk" --rw=randwrite --bs=64k --iodepth=16 \
	--numjobs=2 --ioengine=io_uring --direct=1 --runtime=30 --time_based \
	>"$T/fio.out" 2>&1 &
fio_pid=$!
track_pid $fio_pid
sleep 1
for k in check repair check repair check; do
	got=$(scrub $k) || exit 1
	kill -0 $fio_pid 2>/dev/null ||
		die "the writers ended before the $k did (fio: $(tail -3 "$T/fio.out"))"
	log "$k under writes: $got mismatched sectors"
	[ "$got" = 0 ] || die "$k under writes counts $got mismatched sectors, want 0"
done
kill $fio_pid
wait $fio_pid
got=$(scrub check) || exit 1
[ "$got" = 0 ] || die "check after the writers counts $got mismatched sectors"
stop_rawvec
same_bytes "$S/a.img" "$S/b.img" "mirrors a.img and b.img"
log pass
