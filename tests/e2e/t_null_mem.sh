#!/bin/bash
# transports: uring dev
# null() reads zeroes and drops writes; mem() keeps what is written, in RAM,
# also as raid5 members (fio verify); a failed member of an array holding
# data is not replaced by a null(); raid5/6 sweeps over them end; both
# show their kind in stats; threads=auto runs a loop per CPU over them
# (one per two CPUs over a file); and a null()/mem() without size= is
# refused with exit 2.
. "$(dirname "$0")/lib.sh"
requires_transport
requires fio python3

start_rawvec 'null(size=64m)'
[ "$(stat -c %s "$MNT/disk")" = $((64 << 20)) ] || die "null: size $(stat -c %s "$MNT/disk")"
head -c 1M /dev/urandom | dd of="$MNT/disk" bs=1M oflag=direct conv=notrunc status=none ||
	die "null: a write failed"
dd if="$MNT/disk" bs=1M count=1 iflag=direct status=none >"$T/back" || die "null: read"
cmp -s "$T/back" <(head -c 1M /dev/zero) || die "null: read back non-zero bytes after a write"
grep -q '"kind": "null"' "$MNT/stats" || die "null: stats lacks kind null"
stop_rawvec

start_rawvec 'mem(size=32m)'
head -c 4M /dev/urandom >"$T/data"
dd if="$T/data" of="$MNT/disk" bs=1000 seek=7 conv=notrunc status=none || die "mem: write"
dd if="$MNT/disk" bs=1000 skip=7 count=4195 status=none | head -c 4M >"$T/back"
same_bytes "$T/back" "$T/data" "mem: unaligned write read back"
grep -q '"kind": "mem"' "$MNT/stats" || die "mem: stats lacks kind mem"
stop_rawvec

start_rawvec 'raid5(mem(size=8m), mem(size=8m), mem(size=8m), mem(size=8m), chunk=16k)'
fio --name=v --filename="$MNT/disk" --rw=randwrite --bs=4k --iodepth=16 \
	--ioengine=io_uring --direct=1 --size=24m --verify=crc32c --do_verify=1 \
	--verify_state_save=0 --directory="$T" >"$T/fio.out" 2>&1 ||
	{ cat "$T/fio.out"; die "fio verify on raid5 of mem members"; }
stop_rawvec

# A failed member of an array holding data is not replaced by null(),
# alone or inside a layout: rebuilt "ok", it read back zeroes in place of
# the data (and dropped what was written after).  mem() keeps it, and an
# array of null() members alone may take another.
start_rawvec 'raid1(mem(size=8m), mem(size=8m))'
head -c 8M /dev/urandom >"$T/r1"
dd if="$T/r1" of="$MNT/disk" bs=1M oflag=direct conv=notrunc status=none || die "raid1 of mem: fill"
ctl 'fail 1'
for r in 'null(size=8m)' 'linear(null(size=8m))'; do
	echo "replace 1 $r" >"$MNT/control" 2>/dev/null && die "replace 1 $r was accepted"
	grep -qF "$r: null() keeps nothing written to it, and the array's other members hold data" "$RAWVEC_LOG" ||
		die "no log line says why 'replace 1 $r' was refused: $(grep -F "'replace 1 $r'" "$RAWVEC_LOG")"
done
[ "$(stat_value target.members.1.state)" = failed ] || die "member 1 is $(stat_value target.members.1.state) after the refusals"
ctl 'replace 1 mem(size=8m)'
for i in $(seq 100); do [ "$(stat_value target.sweep_running)" = false ] && break; sleep 0.1; done
ctl 'fail 0'
dd if="$MNT/disk" bs=1M iflag=direct status=none >"$T/r1.back" || die "raid1: read from the rebuilt mem()"
same_bytes "$T/r1.back" "$T/r1" "raid1: the mem() rebuilt"
stop_rawvec
start_rawvec 'raid1(null(size=8m), null(size=8m))'
ctl 'fail 1'
ctl 'replace 1 null(size=8m)'
stop_rawvec

# Members that complete inside their submit: a resync and a check walk
# thousands of stripes without a frame per stripe (both crashed rawvec on
# a stack overflow: the md raid5's resync at start, the raid6's check).
# Nothing here depends on the transport: the ring's run alone does it.
[ "$TRANSPORT" = dev ] || {
	start_rawvec 'raid5(mem(size=256m), mem(size=256m), mem(size=256m), mem(size=256m), chunk=64k, super=1.2)'
	for i in $(seq 100); do grep -q 'resync done' "$RAWVEC_LOG" && break; sleep 0.1; done
	grep -q 'resync done: 0 mismatched' "$RAWVEC_LOG" || die "raid5 of mem: no resync done in $(tail -3 "$RAWVEC_LOG")"
	stop_rawvec
	start_rawvec 'raid6(null(size=1g), null(size=1g), null(size=1g), null(size=1g))'
	ctl check
	for i in $(seq 100); do [ "$(stat_value target.sweep_running)" = false ] && break; sleep 0.1; done
	grep -q 'scrub done: 0 mismatched' "$RAWVEC_LOG" || die "raid6 of null: no scrub done in $(tail -3 "$RAWVEC_LOG")"
	stop_rawvec
}

# threads=auto: over members in memory the loops are the limit, so one per
# CPU; over a file one per two CPUs (at most one per FUSE queue, 64).
# pin=auto pins several loops over members in memory, unless rawvec may
# run on fewer CPUs than are online, and nothing else; one loop (a trace
# makes it one) is never pinned by auto.
cpus=$(nproc) queues=$(getconf _NPROCESSORS_CONF) online=$(getconf _NPROCESSORS_ONLN)
want_mem=$((cpus < queues ? cpus : queues))
want_file=$((cpus / 2 < queues ? cpus / 2 : queues))
[ $want_mem -gt 64 ] && want_mem=64
[ $want_file -gt 64 ] && want_file=64
[ $want_file -ge 1 ] || want_file=1
truncate -s 16m "$T/file.img"
for e in 'null(size=64m)' 'raid1(mem(size=8m), null(size=8m))' "$T/file.img"; do
	start_rawvec -o threads=auto "$e"
	want=$want_mem
	[ "$e" = "$T/file.img" ] && want=$want_file
	[ "$(stat_value threads)" = $want ] ||
		die "threads=auto over $e: $(stat_value threads) loops ($(stat_value threads_why)), want $want"
	pin=false
	[ $want -gt 1 ] && [ "$e" != "$T/file.img" ] && [ $cpus = $online ] && pin=true
	[ "$(stat_value pinned)" = $pin ] ||
		die "pin=auto over $e with $want loops: pinned $(stat_value pinned), want $pin"
	log "threads=auto over $e: $want, pinned $pin ($(stat_value threads_why))"
	stop_rawvec
done
start_rawvec -o threads=auto,pin=off 'null(size=64m)'
[ "$(stat_value pinned)" = false ] || die "pin=off: pinned $(stat_value pinned)"
stop_rawvec
start_rawvec -o threads=auto,trace="$T/null.trace" 'null(size=64m)'
[ "$(stat_value threads)" = 1 ] && [ "$(stat_value pinned)" = false ] ||
	die "traced null: $(stat_value threads) loops, pinned $(stat_value pinned), want 1 unpinned"
stop_rawvec

for e in 'null()' 'mem(a.img)' 'null(size=0)' 'mem(size=1g, chunk=4k)'; do
	out=$("$RAWVEC" -f "$MNT" "$e" 2>&1)
	rc=$?
	[ $rc = 2 ] || die "'$e': exit $rc, want 2 ($out)"
	echo "$out" | grep -q '\^' || die "'$e': no caret line in: $out"
	log "refused '$e': $(echo "$out" | head -1)"
done
log pass
