#!/bin/bash
# Merging of writes into part of a stripe (raid5/6): neighbouring writes
# in flight together join one stripe operation, so a stripe written in
# chunk-sized or smaller pieces still goes out as a full-stripe write.
#   - raid5 of 5, chunk 64k (256k stripes): fio sequential 64k writes at
#     QD16 over 128 stripes: merged_writes moves and at least a quarter of
#     the stripes are full-stripe writes (without merging every one of
#     those writes is a read-modify-write); then 4k sequential writes at
#     QD32 merge too, and 64k writes at QD4 (one stripe in flight) are
#     full-stripe writes for at least 40 of 64 stripes; fio verifies
#     every byte (crc32c);
#   - raid6 of 6, chunk 16k: a sequential writer and a random writer of
#     4k-48k at once, each verified;
#   - raid5 of 4 with a failed member: sequential 32k and 4k writes merge,
#     whole stripes are written without reads, and everything reads back
#     right, the failed member's chunks rebuilt from parity;
#   - after each: `check` finds 0 mismatched sectors, and (healthy cases)
#     every member equals md's layout of the disk's contents.
. "$(dirname "$0")/lib.sh"
requires_transport
requires fio
has_python || skip "requires python3"

REF=$E2E_DIR/raid_ref.py
. "$(dirname "$0")/raid_lib.sh"
D=$MNT/disk
MODEL=$T/model
K=1024

# fio_verify NAME ARGS...: one fio run on the disk that writes and verifies;
# ARGS are its jobs' options (--name=JOB ... per job, or one job NAME).
fio_verify()
{
	local name=$1
	shift
	case "$*" in *--name=*) ;; *) set -- --name="$name" "$@" ;; esac
	fio --filename="$D" --ioengine=io_uring --direct=1 \
		--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 \
		--output="$T/$CASE.$name.out" "$@" >/dev/null 2>&1 ||
		{ cat "$T/$CASE.$name.out"; die "$CASE: fio $name: write+verify failed"; }
	grep -qE 'err= *[1-9]' "$T/$CASE.$name.out" &&
		{ cat "$T/$CASE.$name.out"; die "$CASE: fio $name reported errors"; }
	true
}

counters()
{
	echo "full $(stat_value target.full_stripe_writes) rmw $(stat_value target.rmw_writes)" \
		"rcw $(stat_value target.rcw_writes) merged $(stat_value target.merged_writes)"
}

# members_match LEVEL CHUNK MEMBERS...: the disk's contents, then unmount;
# every member must hold md's layout of them.
members_match()
{
	local level=$1 chunk=$2
	shift 2
	dd if="$D" iflag=direct bs=1M status=none >"$MODEL" || die "$CASE: reading the disk"
	stop_rawvec
	(cd "$T/$CASE" && ref mdcheck "$level" "$chunk" "$MODEL" "$@") ||
		die "$CASE: the members are not md's $level layout of the disk"
}

# ---- raid5 of 5, 64k chunks: sequential chunk-sized writes ----------------
newcase raid5-seq
for m in a b c d e; do make_image $m.img 16M; done
start_rawvec 'raid5(a.img, b.img, c.img, d.img, e.img, chunk=64k)'
fio_verify seq64k --rw=write --bs=64k --iodepth=16 --size=32m
log "$CASE: after 512 writes of 64k over 128 stripes: $(counters)"
full=$(stat_value target.full_stripe_writes)
merged=$(stat_value target.merged_writes)
[ "$merged" -gt 0 ] || die "$CASE: no write was merged: $(counters)"
[ "$full" -ge 32 ] ||
	die "$CASE: $full of 128 stripes written whole, want at least 32: $(counters)"
fio_verify seq4k --rw=write --bs=4k --iodepth=32 --offset=32m --size=8m
log "$CASE: after 2048 writes of 4k: $(counters)"
[ "$(stat_value target.merged_writes)" -gt $((merged + 100)) ] ||
	die "$CASE: 4k sequential writes at QD32 merged fewer than 100 times: $(counters)"
# QD4 of 64k is one stripe in flight: each stripe's first write finds the
# array idle, and is held for the three behind it.
full=$(stat_value target.full_stripe_writes)
fio_verify qd4 --rw=write --bs=64k --iodepth=4 --offset=40m --size=16m
log "$CASE: after 256 writes of 64k at QD4 over 64 stripes: $(counters)"
[ $(($(stat_value target.full_stripe_writes) - full)) -ge 40 ] ||
	die "$CASE: fewer than 40 of 64 stripes written whole at QD4 (had $full before): $(counters)"
got=$(scrub check) || exit 1
[ "$got" = 0 ] || die "$CASE: check counts $got mismatched sectors"
members_match raid5 $((64 * K)) a.img b.img c.img d.img e.img

# ---- raid6 of 6, 16k chunks: a sequential and a random writer at once ------
newcase raid6-mixed
for m in a b c d e f; do make_image $m.img 8M; done
start_rawvec 'raid6(a.img, b.img, c.img, d.img, e.img, f.img, chunk=16k)'
fio_verify mixed --iodepth=16 --size=16m \
	--name=seq --rw=write --bs=16k --offset=0 \
	--name=rnd --rw=randwrite --bsrange=4k-48k --blockalign=4k --offset=16m \
	--randseed=7
log "$CASE: $(counters)"
[ "$(stat_value target.merged_writes)" -gt 0 ] || die "$CASE: no write was merged: $(counters)"
got=$(scrub check) || exit 1
[ "$got" = 0 ] || die "$CASE: check counts $got mismatched sectors"
members_match raid6 $((16 * K)) a.img b.img c.img d.img e.img f.img

# ---- raid5 of 4, member 1 failed: merged writes, degraded ------------------
newcase raid5-degraded
for m in a b c d; do make_image $m.img 8M; done
start_rawvec 'raid5(a.img, b.img, c.img, d.img, chunk=32k)'
ctl 'fail 1'
fio_verify seq32k --rw=write --bs=32k --iodepth=16 --size=12m
fio_verify seq4k --rw=write --bs=4k --iodepth=32 --offset=12m --size=4m
log "$CASE: $(counters)"
[ "$(stat_value target.merged_writes)" -gt 0 ] || die "$CASE: no write was merged: $(counters)"
# A full stripe needs nothing read, degraded or not.
[ "$(stat_value target.full_stripe_writes)" -gt 0 ] ||
	die "$CASE: no full-stripe write while degraded: $(counters)"
[ "$(stat_value target.errors)" = 0 ] || die "$CASE: the layer counts errors"
stop_rawvec
exit 0
