#!/bin/bash
# variants: uring/2 dev/1
# Layout TARGETs (raid0 with 2 and 4 members and 4k, 64k and the default
# chunk; linear over members of different sizes; slice; raid1 with 2 and 3
# mirrors; raid10 = raid0 over raid1 pairs; linear over a slice; raid5 of
# 3 and 5 members, 16k and 64k chunks; raid6 of 4 members with the default
# chunk and of 6 with 8k; linear over a raid5 and a slice), each on small
# member images full of random bytes (raid1 mirrors in sync, raid5/6
# parity consistent, as after a resync):
#   - the disk has the array size, the stats tree the layout's shape
#     (kinds, sizes, chunks, member sizes, alignment: 4096 from raid5/6 up),
#     and the disk reads back what the reference mapping (raid_ref.py,
#     written independently of rawvec) assembles from the members;
#   - fio randwrite with crc32c verify (bs=4k, and 512-64k at 512
#     alignment, or 4k-64k at 4k alignment when the disk wants 4096)
#     through the mount;
#   - direct I/Os move the stats counters of every layer and member exactly
#     as the reference says: one write across the first boundary (pieces,
#     merged, splits, and one child per member: e.g. raid0 chunk=4k turns
#     a 1M write into 256 pieces and one write per member); with raid5/6
#     on top, instead: a write of whole stripes (full_stripe_writes moves,
#     nothing is read), a 1M write from mid-chunk straddling stripes (the
#     partial stripes by read-modify-write or reconstruct-write, each
#     reading exactly what its method needs), a 4k write (rmw_writes or
#     rcw_writes moves) and a 1M read straddling stripes;
#   - dd writes: aligned (oflag=direct, bs=1M; full stripes on raid5/6),
#     unaligned (bs=1000 and odd sizes), writes straddling member/chunk
#     (and stripe) boundaries (all of them when there are few, else the
#     first two stripes, the last and some in between, with two stripe
#     boundaries among them on raid5/6): 1000 bytes, 4k direct at -2048,
#     and 8k direct at -4096 when the disk wants 4096, writes ending at
#     the very end; the whole disk must then equal a model file that took
#     the same writes;
#   - raid5/6 again: 1M direct writes of whole stripes last (nothing
#     rewrites their parity afterwards);
#   - after unmount, every member image equals, byte for byte, its pristine
#     copy with the model written through the reference mapping (bytes
#     outside the part in use keep their old contents); for raid0/5/6 that
#     mapping is md's layout.
# With -o threads=1 (make check's dev/1 variant) only the raid5/6 layouts.
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
# With one loop only the layouts whose code differs from two loops' run
# (raid5/6, whose stripes two loops shard; the others map the same way on
# every loop), unless RAID_CASES names cases: make check's budget.
if [ "$THREADS" = 1 ] && [ -z "${RAID_CASES:-}" ]; then
	RAID_CASES="r5-3x16k r5-5x64k r6-4xdefault r6-6x8k linear-r5-slice"
fi
log "seed $SEED (RAID_SEED=$SEED reproduces the member contents; RAID_CASES=\"NAME...\" runs only those cases)"

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
	local name=$1 want=$3 size got off len b last kind i n fio_bs
	# Set by eval "$(ref plan ...)"; MAXW (max_write) is for the log.
	local t0=$SECONDS MAXW ALIGN FALIGN STRIPE BOUNDS OPS plan op
	local -a io
	# RAID_CASES="r5-3x16k raid10": run only those.
	[ -z "${RAID_CASES:-}" ] || [[ " $RAID_CASES " == *" $name "* ]] || return 0
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
	# The stats tree's shape, and the plan: MAXW ALIGN FALIGN STRIPE
	# BOUNDS OPS (see raid_ref.py plan).
	snap s0
	plan=$(ref plan "$EXPR" s0.json) || die "$CASE: $EXPR: stats tree: $(cat s0.json)"
	eval "$plan"
	[ "$FALIGN" = 512 ] ||
		skip "the member images' filesystem needs $FALIGN-byte direct I/O; these layouts assume 512"

	# What is already on the members, assembled by the reference mapping.
	readback init.bin "initial contents differ from the reference assembly of the members"

	# fio through the mount, random writes over the whole disk, verified;
	# sizes and offsets in multiples of the disk's alignment.
	fio_bs=$((ALIGN > 512 ? ALIGN : 512))
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
	bsrange=$fio_bs-64k
	blockalign=$fio_bs
	EOF
	fio --output=fio.out fio.job >/dev/null 2>&1 ||
		{ cat fio.out; die "$CASE: $EXPR: fio write+verify failed"; }
	grep -qE 'err= *[1-9]' fio.out && { cat fio.out; die "$CASE: $EXPR: fio reported errors"; }

	# The model: the disk as fio left it, then the same writes as the disk.
	dd if="$D" iflag=direct bs=1M status=none >model.bin || die "$CASE: read"
	[ "$(stat -c %s model.bin)" = "$want" ] ||
		die "$CASE: $EXPR: reading the whole disk gave $(stat -c %s model.bin) bytes, want $want"
	: >journal

	# Direct I/Os, one at a time: exact counter deltas of each.
	snap st0
	i=0
	io=()
	for op in $OPS; do
		IFS=: read -r kind off len <<<"$op"
		if [ "$kind" = W ]; then
			wr "$off" "$len" "$len" direct
		else
			dd if="$D" of=/dev/null iflag=direct,skip_bytes skip="$off" bs="$len" \
				count=1 status=none || die "$CASE: $EXPR: direct read of $len bytes at $off"
		fi
		i=$((i + 1))
		snap st$i
		io+=("$op" "st$i.json")
	done
	got=$(ref statsdelta "$EXPR" st0.json "${io[@]}") ||
		die "$CASE: $EXPR: stats after direct I/Os $OPS (snapshots: $(for n in $(seq 0 $i); do cat st$n.json; done))"
	if [ "$STRIPE" = 0 ]; then
		log "$CASE: max_write $MAXW, alignment $ALIGN"
	else
		log "$CASE: max_write $MAXW, alignment $ALIGN, stripe $STRIPE data bytes"
	fi
	while read -r b; do log "$CASE: $b"; done <<<"$got"

	# Aligned: bs=1M direct near the start, and the last MiB (whole
	# stripes on raid5/6).
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
	# each, 8k direct and aligned over each when the disk wants 4096, and
	# a 3584-byte (7 sectors) direct one over the first.
	last=
	for b in $BOUNDS; do
		wr $((b - 500)) 1000 1000
		[ $((b + 2048)) -le "$want" ] && wr $((b - 2048)) 4096 4096 direct
		[ "$ALIGN" -gt 512 ] && [ $((b % ALIGN)) = 0 ] && [ $((b + 4096)) -le "$want" ] &&
			wr $((b - 4096)) 8192 8192 direct
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
	# raid5/6: full stripes last, so that the parity they computed is what
	# the members keep (a partial write after them recomputes parity over
	# its columns, which may be whole chunks, and would hide a wrong P/Q).
	if [ "$STRIPE" != 0 ] && [ "$want" -ge $((3 << 20)) ]; then
		: >journal
		wr $((1 << 20)) $((1 << 20)) 1048576 direct
		wr $((want - (1 << 20))) $((1 << 20)) 1048576 direct
		ref apply model.bin journal "$POOL" || die "$CASE: apply"
	fi
	snap s1
	stop_rawvec

	# Every member, byte for byte, against the reference mapping and (raid5/6)
	# md's layout; then, from the last stats: every raid1 mirror served
	# reads, no layer or member saw an I/O error (the top-level "errors"
	# counts every FUSE error reply, such as the ENOSYS for xattrs, so only
	# the device tree's are checked).
	ref check "$EXPR" model.bin s1.json || die "$CASE: $EXPR: member images after unmount"
	log "$CASE: $EXPR ok ($(echo $BOUNDS | wc -w) boundaries, $((SECONDS - t0))s)"
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
# raid5/6: the smallest member, rounded down to whole chunks, times the
# data members (n - 1, n - 2).
layout_case r5-3x16k 'raid5(a.img, b.img, c.img, chunk=16k)' $((2 * (4 * M + 16 * K))) \
	a.img=4m+20k b.img=5m c.img=4m+16k+512
layout_case r5-5x64k 'raid5(a.img, b.img, c.img, d.img, e.img, chunk=64k)' $((4 * 4 * M)) \
	a.img=4m+60k b.img=4m c.img=5m d.img=4m+64k e.img=4m+512
layout_case r6-4xdefault 'raid6(a.img, b.img, c.img, d.img)' $((2 * 4 * M)) \
	a.img=4m+300k b.img=5m c.img=4m+516k d.img=6m
layout_case r6-6x8k 'raid6(a.img, b.img, c.img, d.img, e.img, f.img, chunk=8k)' $((4 * 4 * M)) \
	a.img=4m+4k b.img=4m+12k c.img=5m d.img=4m+8k+512 e.img=4m+100k f.img=6m
# A raid5 and a slice back to back: the linear takes the raid5's 4096
# alignment, so the slice's 4m+512 is used as 4m (the 512 past it keep
# their bytes).
layout_case linear-r5-slice 'linear(raid5(a.img, b.img, c.img, chunk=32k), slice(d.img, offset=1m))' \
	$((2 * 4 * M + 4 * M)) a.img=4m b.img=4m+40k c.img=5m d.img=5m+512
log "pass ($NCASES layouts, ${SECONDS}s)"
