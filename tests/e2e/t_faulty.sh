#!/bin/bash
# transports: uring dev
# faulty() members fail exactly where and when configured: a bad range
# gives EIO there under raid0 and nowhere else; read_eio=1 under raid5 and
# raid1 is survived (the member is failed, data comes from parity or the
# mirror); after=N passes N requests; lat_spike=DUR@P delays about P of
# the requests by DUR, seen in the latency histograms, and can be switched
# off at run time, which sends on what a spike holds, as a stop does; bad
# fault options (a spike over 60 s, a rate in hex, an after= past 64 bits)
# fail with EINVAL or exit 2.
. "$(dirname "$0")/lib.sh"
requires_transport
requires python3

for i in 0 1 2 3; do make_image "$T/m$i.img" 8M zero; done

# raid0, chunk 64k: logical chunk 32 is member 0's chunk 16 = bytes 1m..
start_rawvec "raid0(faulty($T/m0.img, at=1m..2m), $T/m1.img, chunk=64k)"
expect_fail "read inside the bad range" dd if="$MNT/disk" of=/dev/null bs=64k skip=32 count=1 iflag=direct status=none
expect_fail "read at the bad range's end" dd if="$MNT/disk" of=/dev/null bs=64k skip=62 count=1 iflag=direct status=none
dd if="$MNT/disk" of=/dev/null bs=64k skip=30 count=1 iflag=direct status=none || die "read of member 0 below the range failed"
dd if="$MNT/disk" of=/dev/null bs=64k skip=64 count=1 iflag=direct status=none || die "read of member 0 past the range failed"
dd if="$MNT/disk" of=/dev/null bs=64k skip=33 count=1 iflag=direct status=none || die "read of member 1 failed"
[ "$(grep -o '"injected_read_errors": [0-9]*' "$MNT/stats" | grep -o '[0-9]*$')" = 2 ] ||
	die "injected_read_errors is not 2: $(grep -o '"injected_read_errors": [0-9]*' "$MNT/stats")"
printf 'fault 0 at=none\n' >"$MNT/control" || die "fault at=none refused"
dd if="$MNT/disk" of=/dev/null bs=64k skip=32 count=1 iflag=direct status=none || die "read after at=none failed"
expect_fail "unknown fault" sh -c "printf 'fault 0 bogus=1\n' >'$MNT/control'"
expect_fail "rate above 1" sh -c "printf 'fault 0 read_eio=2\n' >'$MNT/control'"
expect_fail "fault on a plain member" sh -c "printf 'fault 1 read_eio=1\n' >'$MNT/control'"
stop_rawvec

for lay in "raid5($T/m0.img, faulty($T/m1.img), $T/m2.img, $T/m3.img, chunk=16k)" \
	   "raid1(faulty($T/m0.img), $T/m1.img)"; do
	start_rawvec "$lay"
	python3 - "$MNT" <<'PY' || die "$lay: data lost after read errors"
import os, sys
m = sys.argv[1]
d = os.path.join(m, "disk")
size = os.path.getsize(d)
data = os.urandom(size)
fd = os.open(d, os.O_RDWR)
os.pwrite(fd, data, 0)
os.fsync(fd)
with open(os.path.join(m, "control"), "w") as c:
    c.write("fault 1 read_eio=1\n" if "raid5" in open(os.path.join(m, "stats")).read() else "fault 0 read_eio=1\n")
for _ in range(2):
    if os.pread(fd, size, 0) != data:
        sys.exit("read back differs")
PY
	grep -q '"state": "failed"' "$MNT/stats" || die "$lay: the faulty member was not failed"
	stop_rawvec
done

# after=N: the first N requests pass, the rest fail.
start_rawvec "linear(faulty($T/m0.img, after=3))"
for i in 1 2 3; do
	dd if="$MNT/disk" of=/dev/null bs=4k skip=$i count=1 iflag=direct status=none || die "request $i of 3 failed"
done
expect_fail "request 4 after after=3" dd if="$MNT/disk" of=/dev/null bs=4k skip=9 count=1 iflag=direct status=none
stop_rawvec

# lat_spike=20ms@0.2 over 100 reads: about 20 spikes (3 sigma: 8..35), a
# p99 at the spike and a p50 well below it; lat_spike=none ends them.
start_rawvec "linear(faulty(null(size=64m), lat_spike=20ms@0.2))"
dd if="$MNT/disk" of=/dev/null bs=4k count=100 iflag=direct status=none || die "reads under lat_spike failed"
spikes=$(stat_value target.members.0.injected_spikes)
[ "$spikes" -ge 8 ] && [ "$spikes" -le 35 ] || die "lat_spike=20ms@0.2: $spikes spikes in 100 reads"
p50=$(stat_value target.members.0.read_lat.p50_us)
p99=$(stat_value target.members.0.read_lat.p99_us)
python3 -c "import sys; p50, p99 = map(float, sys.argv[1:]); sys.exit(not (p50 < 5000 and 18000 <= p99 <= 40000))" "$p50" "$p99" ||
	die "lat_spike=20ms@0.2: read p50 ${p50} us, p99 ${p99} us"
log "lat_spike=20ms@0.2: $spikes spikes in 100 reads, p50 ${p50} us, p99 ${p99} us"
printf 'fault 0 lat_spike=none\n' >"$MNT/control" || die "fault lat_spike=none refused"
dd if="$MNT/disk" of=/dev/null bs=4k count=50 iflag=direct status=none || die "reads after lat_spike=none failed"
[ "$(stat_value target.members.0.injected_spikes)" = "$spikes" ] || die "spikes after lat_spike=none"
expect_fail "lat_spike without a rate" sh -c "printf 'fault 0 lat_spike=5ms\n' >'$MNT/control'"
expect_fail "lat_spike rate above 1" sh -c "printf 'fault 0 lat_spike=5ms@2\n' >'$MNT/control'"
expect_fail "lat_spike over 60 s" sh -c "printf 'fault 0 lat_spike=61s@1\n' >'$MNT/control'"
expect_fail "read_eio in hex" sh -c "printf 'fault 0 read_eio=0x1\n' >'$MNT/control'"
expect_fail "after= past 64 bits" sh -c "printf 'fault 0 after=99999999999999999999999\n' >'$MNT/control'"
# A read held by a 60 s spike goes on when the faults change: lat_spike=
# none used to leave it held (dd unkillable, a stop waiting it out).
printf 'fault 0 lat_spike=60s@1\n' >"$MNT/control" || die "fault lat_spike=60s@1 refused"
timeout 30 dd if="$MNT/disk" of=/dev/null bs=4k count=1 iflag=direct status=none &
held=$!
sleep 0.5
kill -0 $held 2>/dev/null || die "the read was not held by lat_spike=60s@1"
printf 'fault 0 lat_spike=none\n' >"$MNT/control" || die "fault lat_spike=none refused"
for i in $(seq 40); do kill -0 $held 2>/dev/null || break; sleep 0.05; done
kill -0 $held 2>/dev/null && die "the read is still held 2 s after lat_spike=none"
wait $held || die "the released read failed"
# And a stop sends what a spike holds on, instead of waiting it out.
printf 'fault 0 lat_spike=60s@1\n' >"$MNT/control" || die "fault lat_spike=60s@1 refused"
timeout 30 dd if="$MNT/disk" of=/dev/null bs=4k count=1 iflag=direct status=none &
held=$!
sleep 0.5
kill -TERM "$RAWVEC_PID"
wait_rawvec_exit 5
[ "$RAWVEC_STATUS" = 0 ] || die "rawvec exited $RAWVEC_STATUS on SIGTERM with a held read"
wait $held
log "a read held by a 60 s spike went on at lat_spike=none, and at SIGTERM"
out=$("$RAWVEC" -f "$MNT" 'faulty(null(size=1m), lat_spike=fast@0.1)' 2>&1)
rc=$?
[ $rc = 2 ] || die "lat_spike=fast@0.1: exit $rc, want 2 ($out)"
log "refused lat_spike=fast@0.1: $(echo "$out" | head -1)"
log pass
