#!/bin/bash
# transports: uring dev
# The stats file proves which path requests took: aligned direct writes
# and reads (1 MiB and 4 KiB) leave copied_bytes, rmw_writes and
# unaligned_reads at 0; an unaligned write makes copied_bytes and
# rmw_writes grow, an unaligned read unaligned_reads; "transport" is the
# one requested, and the requests travelled on it.
. "$(dirname "$0")/lib.sh"
requires_transport

make_image "$T/img" 32M random
cp "$T/img" "$T/ref"
start_rawvec "$T/img"
D=$MNT/disk

tr=$(stat_value transport) || exit 1
[ "$TRANSPORT" = auto ] || [ "$tr" = "$TRANSPORT" ] ||
	die "stats: transport '$tr', requested '$TRANSPORT'"

zero_copy()
{
	local f v
	for f in copied_bytes rmw_writes unaligned_reads; do
		v=$(stat_field $f) || exit 1
		[ "$v" = 0 ] || die "after $1: $f = $v, want 0: $(cat "$MNT/stats")"
	done
}

dev0=$(stat_field dev_requests) || exit 1
head -c $((8 << 20)) /dev/urandom >"$T/a"
dd if="$T/a" of="$D" bs=1M seek=4 oflag=direct conv=notrunc status=none || die "aligned 1M direct write"
dd if="$T/a" of="$T/ref" bs=1M seek=4 conv=notrunc status=none
dd if="$T/a" of="$D" bs=4k seek=7 count=64 oflag=direct conv=notrunc status=none || die "aligned 4k direct write"
dd if="$T/a" of="$T/ref" bs=4k seek=7 count=64 conv=notrunc status=none
w=$(stat_field write_bytes) || exit 1
[ "$w" -ge $(((8 << 20) + 64 * 4096)) ] || die "stats: write_bytes $w after 8.25 MiB of writes"
zero_copy "aligned direct writes"
dd if="$D" of="$T/back" bs=1M skip=4 count=8 iflag=direct status=none || die "aligned 1M direct read"
same_bytes "$T/back" "$T/a" "aligned 1M direct read"
dd if="$D" of=/dev/null bs=4k skip=3 count=100 iflag=direct status=none || die "aligned 4k direct read"
zero_copy "aligned direct reads"

# One unaligned write: read-modify-write through a bounce buffer.
head -c 1000 /dev/urandom >"$T/b"
dd if="$T/b" of="$D" bs=1000 seek=1 conv=notrunc status=none || die "unaligned write"
dd if="$T/b" of="$T/ref" bs=1000 seek=1 conv=notrunc status=none
c=$(stat_field copied_bytes) || exit 1
r=$(stat_field rmw_writes) || exit 1
[ "$c" -gt 0 ] && [ "$r" -gt 0 ] || die "after an unaligned write: copied_bytes $c, rmw_writes $r, want both > 0"
[ "$(stat_field unaligned_reads)" = 0 ] || die "an unaligned write counted as an unaligned read"
dd if="$D" of="$T/back" bs=1000 skip=1 count=1 status=none || die "unaligned read"
same_bytes "$T/back" "$T/b" "unaligned read back"
u=$(stat_field unaligned_reads) || exit 1
[ "$u" -gt 0 ] || die "after an unaligned read: unaligned_reads $u"

case $tr in
uring) n=$(stat_field ring_requests) || exit 1
	[ "$n" -gt 0 ] || die "transport uring but ring_requests $n"
	dev1=$(stat_field dev_requests) || exit 1
	[ "$dev1" = "$dev0" ] || die "transport uring but $((dev1 - dev0)) requests came through /dev/fuse" ;;
dev) n=$(stat_field ring_requests) || exit 1
	[ "$n" = 0 ] || die "transport dev but ring_requests $n" ;;
*) die "stats: transport '$tr' is neither uring nor dev" ;;
esac
same_bytes "$D" "$T/ref" "disk vs reference"
stop_rawvec
same_bytes "$T/img" "$T/ref" "image vs reference"
log "pass"
