#!/bin/bash
# Two slice()s of one image are two extents of one physical volume: they
# may be members of one layout when their ranges do not overlap, and each
# reads and writes its own range; overlapping ones are refused (exit 2,
# the overlap named), as a twin member is; members of different sizes are
# used at the smallest's size, and the log says how much is left unused.
. "$(dirname "$0")/lib.sh"
requires_transport

cd "$T" || die "cd $T"
make_image pv.img 16M random
cp pv.img pv.orig
start_rawvec 'linear(slice(pv.img, offset=8m, size=4m), slice(pv.img, offset=0, size=4m))'
[ "$(stat -c %s "$MNT/disk")" = $((8 << 20)) ] || die "disk of $(stat -c %s "$MNT/disk") bytes, want 8 MiB"
head -c $((8 << 20)) /dev/urandom >new
dd if=new of="$MNT/disk" bs=1M oflag=direct conv=notrunc status=none || die "write"
stop_rawvec
# The disk's first 4 MiB are pv.img's [8m, 12m), the next 4 MiB [0, 4m);
# [4m, 8m) and [12m, 16m) are as they were.
cmp -n $((4 << 20)) new pv.img --ignore-initial=0:$((8 << 20)) || die "first slice not at 8m"
cmp -n $((4 << 20)) new pv.img --ignore-initial=$((4 << 20)):0 || die "second slice not at 0"
cmp -n $((4 << 20)) pv.img pv.orig --ignore-initial=$((4 << 20)):$((4 << 20)) || die "[4m, 8m) was touched"
cmp -n $((4 << 20)) pv.img pv.orig --ignore-initial=$((12 << 20)):$((12 << 20)) || die "[12m, 16m) was touched"
log "two extents of one image: each in its range"

before=$(md5sum pv.img)
for e in 'linear(slice(pv.img, offset=0, size=9m), slice(pv.img, offset=8m))' \
	'linear(slice(pv.img, offset=4m), faulty(slice(pv.img, offset=0, size=5m)))' \
	'linear(pv.img, slice(pv.img, offset=15m))'; do
	"$RAWVEC" -f "$(transport_opt)" "$MNT" "$e" >"$T/bad.log" 2>&1
	rc=$?
	[ $rc = 2 ] || die "'$e': exit $rc, want 2: $(cat "$T/bad.log")"
	grep -q "pv.img is already a member" "$T/bad.log" || die "'$e': $(cat "$T/bad.log")"
	mountpoint -q "$MNT" && die "'$e' mounted"
done
grep -q "overlap" "$T/bad.log" || die "the refusal does not say the slices overlap: $(cat "$T/bad.log")"
[ "$(md5sum pv.img)" = "$before" ] || die "refused layouts changed pv.img"
log "overlapping slices refused"

make_image small.img 8M
make_image big.img 24M
start_rawvec 'raid1(small.img, big.img)'
grep -q "members differ in size: each contributes 8388608 bytes.*16777216 bytes of big.img are unused" "$RAWVEC_LOG" ||
	die "no log line for the unused part of big.img: $(cat "$RAWVEC_LOG")"
stop_rawvec
log pass
