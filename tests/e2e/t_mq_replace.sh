#!/bin/bash
# variants: uring/2 dev/2
# `fail` and `replace` of a member of a layer that runs on every event loop
# (a headerless raid0, -o threads=2) while fio writes through both loops:
# the new member gets a stats shard per loop (its in-flight count returns
# to 0, not a drifted or wrapped number), the old one is freed only once
# no loop can still submit to it, and a second fail/replace works.
. "$(dirname "$0")/lib.sh"
requires_transport
requires fio
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs"

for i in 0 1 2; do make_image "$T/m$i.img" 32m; done
start_rawvec -o threads=2 "raid0($T/m0.img, $T/m1.img, $T/m2.img, chunk=16k, super=none)"
[ "$(stat_value threads)" = 2 ] || die "threads: $(stat_value threads), want 2"

# Random 4k reads and writes from both CPUs for the whole test; while a
# member is failed its I/O fails, which is what fio is told to go on past.
fio --name=w --filename="$MNT/disk" --rw=randrw --bs=4k --iodepth=16 \
	--numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split \
	--ioengine=io_uring --direct=1 --time_based --runtime=30 \
	--continue_on_error=all --output="$T/fio.out" >/dev/null 2>&1 &
FIO=$!
sleep 1

# replace ADDR PATH: fail ADDR and put PATH in its place.
replace()
{
	ctl "fail $1"
	replace_retry "$1" "$2"
}

make_image "$T/n1.img" 32m
replace 1 "$T/n1.img"
sleep 2
make_image "$T/n2.img" 32m
replace 1 "$T/n2.img"
sleep 2
kill "$FIO" 2>/dev/null
wait "$FIO" 2>/dev/null
kill -0 "$RAWVEC_PID" 2>/dev/null || die "rawvec died: $(tail -5 "$RAWVEC_LOG")"

# Nothing in flight any more: every member's count is back at 0.
for m in 0 1 2; do
	n=$(stat_value "target.members.$m.inflight")
	[ "$n" = 0 ] || die "member $m: inflight $n with no I/O running"
done
[ "$(stat_value target.members.1.name)" = "$T/n2.img" ] ||
	die "member 1 is $(stat_value target.members.1.name), not n2.img"
w=$(stat_value target.members.1.writes)
[ "$w" -gt 0 ] || die "the new member 1 took no writes ($w)"
stop_rawvec
log "pass: two replaces under two loops; member 1 took $w writes, all counts back at 0"
