#!/bin/bash
# transports: uring dev
# A zeroing a member cannot do fails no member.  On tmpfs, which has no
# FALLOC_FL_ZERO_RANGE, `fallocate -z` on raid1, raid5 and raid6 used to
# fail every member with EOPNOTSUPP (the array down, and superblocks that
# could not be marked clean); now an image file zeroes by punching a hole
# instead: zeroes read back there, the rest is kept, nothing is failed and
# a check finds 0.  An nbd() member whose server has no WRITE_ZEROES (the
# nozero filter) makes a punch-hole fail with EOPNOTSUPP, and stays ok.
. "$(dirname "$0")/lib.sh"
requires_transport
requires python3 fallocate nbdkit
. "$(dirname "$0")/raid_lib.sh"
D=$MNT/disk
MODEL=$T/model
K=1024

S=$(mktemp -d /dev/shm/rawvec-e2e.XXXXXX) || die "mktemp on /dev/shm"
at_exit "rm -rf $S"

# zero_range OFF LEN: fallocate -z on the disk, and the model too.
zero_range()
{
	fallocate -z -o "$1" -l "$2" "$D" || die "$CASE: fallocate -z -o $1 -l $2 failed"
	python3 - "$MODEL" "$1" "$2" <<-'PY'
		import sys
		with open(sys.argv[1], "r+b") as f:
		    f.seek(int(sys.argv[2])); f.write(bytes(int(sys.argv[3])))
	PY
}

for expr in 'raid1(a.img, b.img)' 'raid5(a.img, b.img, c.img, chunk=16k)' \
	'raid6(a.img, b.img, c.img, d.img, chunk=16k)'; do
	CASE=${expr%%(*}
	rm -f "$S"/*.img
	for m in a b c d; do truncate -s 8M "$S/$m.img"; done
	start_rawvec "$(echo "$expr" | sed "s|\([a-d]\)\.img|$S/\1.img|g")"
	fill_model
	zero_range $((1024 * K)) $((64 * K))
	zero_range $((3 * 1024 * K + 4 * K)) $((100 * K))
	cmp -s <(dd if="$D" iflag=direct bs=1M status=none) "$MODEL" ||
		die "$CASE: the disk differs from the model after fallocate -z"
	[ "$(stat_field target.degraded)" = 0 ] ||
		die "$CASE: degraded $(stat_field target.degraded) after fallocate -z: $(grep failed "$RAWVEC_LOG")"
	got=$(scrub check) || exit 1
	[ "$got" = 0 ] || die "$CASE: check after fallocate -z counts $got mismatched sectors"
	stop_rawvec
	log "$CASE: fallocate -z on tmpfs members zeroed, none failed"
done

CASE=nbd
nbd_serve n0 --filter=nozero memory 8M zeromode=none
truncate -s 8M "$T/a.img"
start_rawvec "raid1(nbd($(nbd_uri n0)), $T/a.img)"
fallocate -p -o 1M -l 64K "$D" 2>"$T/fa.err" && die "$CASE: a punch-hole over a server without WRITE_ZEROES succeeded"
grep -qiE "not supported|unsupported" "$T/fa.err" || die "$CASE: fallocate -p: $(cat "$T/fa.err"), want EOPNOTSUPP"
[ "$(stat_value target.members.0.state)" = ok ] ||
	die "$CASE: the nbd() member is $(stat_value target.members.0.state) after an unsupported punch-hole"
dd if=/dev/urandom of="$D" bs=64k count=4 oflag=direct status=none || die "$CASE: a write after the punch-hole failed"
stop_rawvec
log pass
