#!/bin/bash
# A raid1 rebuild gets past a range that writers keep hitting: fio writes
# 4k at QD32 into one MiB of a mirror whose surviving member is slow
# (sim lat=2ms, so writes are always in flight there) while a replaced
# member rebuilds.  The rebuild must finish while the storm still runs
# (it used to redo that step until the writers stopped), the writes it
# held back show in sweep_held_writes, and afterwards both mirrors hold
# the same bytes.
. "$(dirname "$0")/lib.sh"
requires fio python3

for m in a b c; do make_image "$T/$m.img" 32M zero; done
start_rawvec "raid1(sim($T/a.img, lat=2ms), $T/b.img)"
echo 'fail 1' >"$MNT/control" || die "fail 1 refused"
fio --name=storm --filename="$MNT/disk" --rw=randwrite --bs=4k --iodepth=32 \
	--ioengine=io_uring --direct=1 --offset=8m --size=1m --runtime=12 \
	--time_based >"$T/fio.out" 2>&1 &
fio_pid=$!
track_pid $fio_pid
sleep 1
echo "replace 1 $T/c.img" >"$MNT/control" || die "replace refused"
done_after=
for i in $(seq 1 40); do
	sleep 0.25
	if [ "$(stat_value target.sweep_running)" = false ] &&
	   [ "$(stat_value target.members.1.state)" = ok ]; then
		done_after=$i
		break
	fi
done
kill -0 $fio_pid 2>/dev/null || die "the storm ended before the check (fio: $(tail -3 "$T/fio.out"))"
[ -n "$done_after" ] ||
	die "rebuild stalled under the write storm at $(stat_value target.sweep_done_pct)%"
held=$(stat_value target.sweep_held_writes)
[ "$held" -gt 0 ] || die "sweep_held_writes is $held: the rebuild never met the storm"
log "rebuild done after $(python3 -c "print($done_after / 4)") s under the storm, $held writes held back"
wait $fio_pid || die "fio failed: $(tail -5 "$T/fio.out")"
stop_rawvec
same_bytes "$T/a.img" "$T/c.img" "mirror a.img and rebuilt c.img"
log pass
