#!/bin/bash
# transports: uring dev
# Layout TARGETs (raid0 with 2 and 4 members and 4k, 64k and the default
# chunk; linear over members of different sizes; slice; raid1 with 2 and 3
# mirrors; raid10 = raid0 over raid1 pairs; linear over a slice), each on
# small member images full of random bytes:
#   - the disk has the array size and reads back what the reference
#     mapping (raid_ref.py, written independently of rawvec) assembles
#     from the members;
#   - fio randwrite with crc32c verify (bs=4k, and 512-64k at 512
#     alignment) through the mount;
#   - dd writes: aligned (oflag=direct, bs=1M), unaligned (bs=1000 and
#     odd sizes), writes straddling member/chunk boundaries (all of them
#     when there are few, else the first two stripes, the last and some in
#     between), writes ending at the very end; the whole disk must then
#     equal a model file that took the same writes;
#   - one direct write moves the stats counters of every layer and member
#     exactly as the reference mapping says (pieces, merged, splits, and
#     one child per member: e.g. raid0 chunk=4k turns a 1M write into 256
#     pieces and one write per member);
#   - after unmount, every member image equals, byte for byte, its pristine
#     copy with the model written through the reference mapping (bytes
#     outside the part in use keep their old contents).
. "$(dirname "$0")/lib.sh"
requires_transport
requires fio head
has_python || skip "requires python3"

# Member sizes such as 5m+512 need 512-byte direct I/O on the members'
# filesystem (the temp dir's).
truncate -s 4096 "$T/probe" &&
	dd if="$T/probe" of=/dev/null iflag=direct bs=512 skip=1 count=1 status=none 2>/dev/null ||
	skip "$T's filesystem refuses 512-byte O_DIRECT reads; these layouts assume 512"
rm -f "$T/probe"

REF=$E2E_DIR/raid_ref.py
ref() { python3 "$REF" "$@"; }
SEED=${RAID_SEED:-$$}
log "seed $SEED (RAID_SEED=$SEED reproduces the member contents)"

POOL=$T/pool # the bytes every dd write takes, at a moving offset
POOL_SIZE=$((4 << 20))
head -c $POOL_SIZE /dev/urandom >"$POOL" || die "pool"
POFF=0
CASE=
EXPR=
D=$MNT/disk
NCASES=0

# snap NAME: the stats file now, as NAME.json in the case's directory.
snap() { cat "$MNT/stats" >"$1.json" || die "$CASE: cannot read $MNT/stats"; }

# wr OFF LEN BS [direct]: write LEN bytes (LEN a multiple of BS) at byte
# OFF of the disk with dd, bs=BS, and log it in the journal for the model.
# OFF a multiple of BS is given to dd as seek=OFF/BS, else as seek_bytes.
wr()
{
	local off=$1 len=$2 bs=$3 mode=${4:-} seek oflag=
	[ $((len % bs)) = 0 ] || die "wr: $len is not a multiple of $bs"
	[ $((POFF + len)) -le $POOL_SIZE ] || POFF=0
	if [ $((off % bs)) = 0 ]; then
		seek=$((off / bs))
	else
		seek=$off
		oflag=seek_bytes
	fi
	[ "$mode" = direct ] && oflag=${oflag:+$oflag,}direct
	dd if="$POOL" iflag=skip_bytes,fullblock skip=$POFF of="$D" bs=$bs \
		count=$((len / bs)) seek=$seek ${oflag:+oflag=$oflag} \
		conv=notrunc status=none 2>"$T/dd.err" ||
		die "$CASE: $EXPR: dd bs=$bs count=$((len / bs)) seek=$seek ${oflag:+oflag=$oflag} (byte $off, $len bytes): $(cat "$T/dd.err")"
	echo "$off $len $POFF" >>journal
	POFF=$(((POFF + len + 4099) % (POOL_SIZE - 4096)))
}

# readback FILE WHAT: the whole disk, read through the mount with
# O_DIRECT, must equal FILE.
readback()
{
	local out
	dd if="$D" iflag=direct bs=1M status=none >disk.now ||
		die "$CASE: $EXPR: reading the disk failed"
	out=$(cmp disk.now "$1" 2>&1) || die "$CASE: $EXPR: $2: $out"
	rm -f disk.now
}

# layout_case NAME EXPR SIZE MEMBER=SIZE...: the whole sequence for one
# layout; SIZE is the array size worked out by hand.
layout_case()
{
	local name=$1 want=$3 size got off len b bounds max_write align last
	local t0=$SECONDS
	EXPR=$2
	CASE=$name
	shift 3
	mkdir "$T/$name" && cd "$T/$name" || die "mkdir $T/$name"
	size=$(ref init "$EXPR" "$SEED" "$@") || die "$CASE: raid_ref init failed"
	[ "$size" = "$want" ] ||
		die "$CASE: the reference model makes $EXPR $size bytes, the table says $want"

	start_rawvec "$EXPR"
	got=$(stat -c %s "$D") || die "$CASE: stat $D"
	[ "$got" = "$want" ] || die "$CASE: $EXPR: $D is $got bytes, want $want"
	snap s0
	ref stats "$EXPR" s0.json || die "$CASE: $EXPR: stats tree: $(cat s0.json)"
	align=$(stat_value target.align) || exit 1
	[ "$align" = 512 ] ||
		skip "the member images' filesystem needs $align-byte direct I/O; these layouts assume 512"
	max_write=$(stat_field max_write) || exit 1

	# What is already on the members, assembled by the reference mapping.
	readback init.bin "initial contents differ from the reference assembly of the members"

	# fio through the mount, random writes over the whole disk, verified.
	cat >fio.job <<-EOF
	[global]
	filename=$D
	ioengine=io_uring
	iodepth=16
	direct=1
	rw=randwrite
	verify=crc32c
	verify_fatal=1
	do_verify=1
	verify_state_save=0
	randrepeat=0
	randseed=$((SEED + NCASES))
	size=$want
	io_size=2m
	stonewall

	[bs4k]
	bs=4k

	[bsrange]
	bsrange=512-64k
	blockalign=512
	EOF
	fio --output=fio.out fio.job >/dev/null 2>&1 ||
		{ cat fio.out; die "$CASE: $EXPR: fio write+verify failed"; }
	grep -qE 'err= *[1-9]' fio.out && { cat fio.out; die "$CASE: $EXPR: fio reported errors"; }

	# The model: the disk as fio left it, then the same writes as the disk.
	dd if="$D" iflag=direct bs=1M status=none >model.bin || die "$CASE: read"
	[ "$(stat -c %s model.bin)" = "$want" ] ||
		die "$CASE: $EXPR: reading the whole disk gave $(stat -c %s model.bin) bytes, want $want"
	: >journal

	# One direct write, across the first boundary: exact counter deltas.
	len=$((max_write < 1048576 ? max_write : 1048576))
	len=$((len < want ? len : want - want % 4096))
	off=$(ref statoff "$EXPR" $len) || die "$CASE: statoff"
	snap before
	wr "$off" "$len" "$len" direct
	snap after
	got=$(ref statsdelta "$EXPR" "$off" "$len" before.json after.json) ||
		die "$CASE: $EXPR: stats after one ${len}-byte direct write at $off (before: $(cat before.json) after: $(cat after.json))"
	log "$CASE: one ${len}-byte write at $off: $got"

	# Aligned: bs=1M direct near the start, and the last MiB.
	if [ "$want" -ge $((3 << 20)) ]; then
		wr $((1 << 20)) $((2 << 20)) 1048576 direct
		wr $((want - (1 << 20))) $((1 << 20)) 1048576 direct
	fi
	# Unaligned: bs=1000 (RMW) over ~700 KB in the middle, odd sizes at
	# the start, and writes ending exactly at the end of the disk.
	wr $(((want / 2000) * 1000)) 700000 1000
	wr 0 3885 777
	wr 333 1000 1000
	wr $((want - 3000)) 3000 1000
	wr $((want - 4096)) 4096 4096 direct
	wr $((want - 1000)) 1000 1000
	# Straddling boundaries: 1000 bytes (unaligned) and 4k (direct) over
	# each, and a 3584-byte (7 sectors) direct one over the first.
	bounds=$(ref boundaries "$EXPR") || die "$CASE: boundaries"
	last=
	for b in $bounds; do
		wr $((b - 500)) 1000 1000
		[ $((b + 2048)) -le "$want" ] && wr $((b - 2048)) 4096 4096 direct
		[ -n "$last" ] || wr $((b - 1024)) 3584 3584 direct
		last=$b
	done
	ref apply model.bin journal "$POOL" || die "$CASE: apply"
	readback model.bin "after the dd writes the disk differs from the model"
	# Unaligned reads too: bs=1000 over 1.5 MB around the middle, and the
	# last 3000 bytes.
	for b in $(((want / 2000) * 1000 - 400000)) $((want - 3000)); do
		dd if="$D" bs=1000 skip=$((b / 1000)) count=1500 status=none >part.disk ||
			die "$CASE: $EXPR: dd bs=1000 skip=$((b / 1000)) failed"
		dd if=model.bin bs=1000 skip=$((b / 1000)) count=1500 status=none >part.model
		cmp -s part.disk part.model ||
			die "$CASE: $EXPR: bs=1000 reads from byte $((b / 1000 * 1000)) differ from the model"
	done
	# Every raid1 mirror served reads; no layer or member saw an I/O
	# error.  (The top-level "errors" counts every FUSE error reply, such
	# as the ENOSYS for xattrs, so only the device tree's are checked.)
	snap s1
	ref after "$EXPR" s1.json || die "$CASE: $EXPR: $(cat s1.json)"
	stop_rawvec

	# Every member, byte for byte, against the reference mapping.
	ref check "$EXPR" model.bin || die "$CASE: $EXPR: member images after unmount"
	log "$CASE: $EXPR ok ($(echo $bounds | wc -w) boundaries, $((SECONDS - t0))s)"
	cd "$T" && rm -rf "${T:?}/$name"
	NCASES=$((NCASES + 1))
}

M=1048576
K=1024
# raid0: the smallest member, rounded down to whole chunks, times n.
layout_case r0-2x4k 'raid0(a.img, b.img, chunk=4k)' $((2 * (8 * M + 4 * K))) \
	a.img=8m+6k b.img=9m
layout_case r0-4x4k 'raid0(a.img, b.img, c.img, d.img, chunk=4k)' $((4 * 4 * M)) \
	a.img=4m b.img=4m+4k c.img=5m d.img=4m+3584
layout_case r0-4x64k 'raid0(a.img, b.img, c.img, d.img, chunk=64k)' $((4 * (8 * M + 64 * K))) \
	a.img=9m b.img=8m+100k c.img=8m+512k d.img=10m
layout_case r0-2xdefault 'raid0(a.img, b.img)' $((2 * (10 * M + 512 * K))) \
	a.img=12m b.img=10m+600k
layout_case r0-4xdefault 'raid0(a.img,b.img,c.img,d.img)' $((4 * 6 * M)) \
	a.img=6m b.img=6m+511k c.img=7m d.img=8m
# linear: members back to back.
layout_case linear3 'linear(a.img, b.img, c.img)' $((25 * M + 512)) \
	a.img=8m b.img=12m c.img=5m+512
layout_case slice 'slice(a.img, offset=1m, size=8m)' $((8 * M)) \
	a.img=12m
# raid1: the smallest mirror.
layout_case raid1x2 'raid1(a.img, b.img)' $((8 * M)) \
	a.img=8m b.img=9m+512
layout_case raid1x3 'raid1(a.img, b.img, c.img)' $((8 * M + 512)) \
	a.img=10m b.img=8m+512 c.img=9m
layout_case raid10 'raid0(raid1(a.img, b.img), raid1(c.img, d.img), chunk=128k)' $((2 * 8 * M)) \
	a.img=8m b.img=8m+4k c.img=8m+64k d.img=9m
layout_case linear-slice 'linear(slice(a.img, offset=4m), b.img)' $((16 * M)) \
	a.img=12m b.img=8m
log "pass ($NCASES layouts, ${SECONDS}s)"
