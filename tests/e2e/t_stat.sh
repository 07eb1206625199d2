#!/bin/bash
# `rawvec stat`: on a terminal (under script(1)) and through a pipe it shows
# every device of a nested raid5 tree by address, with the column headers,
# live rates and a p99 while fio runs, and raid5's stripe writes by method; SIGINT exits 0, the mount going away
# exits 1, bad usage exits 2 and a directory that is no mount exits 1
# naming its stats path.
. "$(dirname "$0")/lib.sh"
requires_transport
requires fio script

for i in 0 1 2; do
	make_image "$T/m$i.img" 16M
done
start_rawvec "raid5($T/m0.img, $T/m1.img, $T/m2.img, raid1(mem(size=16m), mem(size=16m)), chunk=16k)"

fio --name=load --filename="$MNT/disk" --rw=randrw --bs=4k --iodepth=8 \
	--ioengine=io_uring --direct=1 --runtime=6 --time_based >"$T/fio.out" 2>&1 &
FIO=$!
track_pid $FIO
sleep 0.5

# The last report of a run, without carriage returns and screen clears.
last_report()
{
	sed $'s/\r$//; s/\x1b\\[[HJ]//g' "$1" | awk '/^rawvec stat /{n = 0; delete r} {r[n++] = $0} END{for (i = 0; i < n; i++) print r[i]}'
}

script -qfec "$RAWVEC stat $MNT 1 2" /dev/null >"$T/tty.out" 2>&1
rc=$?
[ $rc = 0 ] || die "stat under a tty: exit $rc: $(cat "$T/tty.out")"
[ "$(grep -c $'\x1b\\[H\x1b\\[J' "$T/tty.out")" = 2 ] ||
	die "stat under a tty: not two screen clears: $(cat -v "$T/tty.out")"
last_report "$T/tty.out" >"$T/tty.last"
log "tty report:"
cat "$T/tty.last"
grep -q "^rawvec stat $MNT  transport [a-z]" "$T/tty.last" || die "no header line with mount and transport"
grep -q "^device " "$T/tty.last" || die "no column header line"
for col in state r/s w/s rMB/s wMB/s areq-KiB aqu-sz p50 p99 err sweep; do
	grep -q "^device .* $col\\b" "$T/tty.last" || die "no column header $col"
done
for dev in "^raid5 " "^  0 $T/m0.img (file) " "^  1 $T/m1.img (file) " "^  2 $T/m2.img (file) " \
	"^  3 raid1 " "^    3.0 mem " "^    3.1 mem "; do
	grep -q "$dev" "$T/tty.last" || die "no row for '$dev'"
done
# Under the raid5 row, its stripe writes by method: randrw 4k on 16k
# chunks is all partial-stripe writes.
grep -A1 "^raid5 " "$T/tty.last" | tail -1 >"$T/stripes"
grep -qE "^ stripes/s: full [0-9.]+ rmw [0-9.]+ rcw [0-9.]+ merged [0-9.]+ parity-reads [0-9.]+$" "$T/stripes" ||
	die "no stripe line under raid5: $(cat "$T/stripes")"
awk '{ if ($5 + $7 <= 0 || $11 <= 0) exit 1 }' "$T/stripes" ||
	die "no partial-stripe writes or parity reads under fio's random writes: $(cat "$T/stripes")"
# Right to left (the device label has spaces): err p99 p50 aqu areq wMB rMB w/s r/s.
awk 'NR > 2 && !/^ *stripes\/s:/ {
	if ($(NF - 8) + $(NF - 7) <= 0) { print "idle under fio: " $0; bad = 1 }
	if ($(NF - 1) !~ /^[0-9.]+(us|ms|s)$/) { print "no p99: " $0; bad = 1 }
} END { exit bad }' "$T/tty.last" || die "rows without I/O or p99 (above)"
[ "$(grep -c . "$T/tty.last")" = 10 ] || die "want 7 device rows and a stripe line"

"$RAWVEC" stat "$MNT" 0.5 2 2>&1 | cat >"$T/pipe.out"
rc=${PIPESTATUS[0]}
[ $rc = 0 ] || die "stat into a pipe: exit $rc: $(cat "$T/pipe.out")"
[ "$(grep -c '^rawvec stat ' "$T/pipe.out")" = 2 ] || die "pipe: not two reports: $(cat "$T/pipe.out")"
[ "$(grep -c '^$' "$T/pipe.out")" = 1 ] || die "pipe: reports not separated by one blank line"
grep -q $'\x1b' "$T/pipe.out" && die "pipe: escape sequences in non-tty output"
log "pipe: two reports"
wait $FIO || { cat "$T/fio.out"; die "fio failed"; }

# Signal once it reports: before it blocks SIGINT, the default would kill it.
"$RAWVEC" stat "$MNT" 0.2 >"$T/int.out" 2>&1 &
p=$!
for i in $(seq 50); do
	grep -q '^rawvec stat ' "$T/int.out" && break
	sleep 0.1
done
kill -INT $p
wait $p
rc=$?
[ $rc = 0 ] || die "SIGINT: exit $rc, want 0"
log "SIGINT: exit 0 after $(grep -c '^rawvec stat ' "$T/int.out") reports"

"$RAWVEC" stat "$MNT" 0.2 >"$T/gone.out" 2>"$T/gone.err" &
p=$!
sleep 0.5
stop_rawvec
wait $p
rc=$?
[ $rc = 1 ] || die "mount gone: exit $rc, want 1"
grep -q "^rawvec stat: $MNT/stats: " "$T/gone.err" || die "mount gone: message: $(cat "$T/gone.err")"
log "mount gone: $(cat "$T/gone.err")"

for args in "" "$MNT 0" "$MNT abc" "$MNT -1" "$MNT 1 0" "$MNT 1 x" "$MNT 1 2 3"; do
	# shellcheck disable=SC2086 # word splitting wanted
	"$RAWVEC" stat $args >"$T/bad.out" 2>&1
	rc=$?
	[ $rc = 2 ] || die "'rawvec stat $args': exit $rc, want 2: $(cat "$T/bad.out")"
done
"$RAWVEC" stat --help | grep -q '^usage: rawvec stat MOUNTPOINT' || die "--help"
mkdir "$T/plain"
out=$("$RAWVEC" stat "$T/plain" 1 1 2>&1)
rc=$?
[ $rc = 2 ] || die "non-mount: exit $rc, want 2"
echo "$out" | grep -qxF "rawvec stat: $T/plain: not a rawvec mount (it has no stats file)" ||
	die "non-mount: message: $out"
out2=$("$RAWVEC" stat "$T/none" 1 1 2>&1)
rc=$?
[ $rc = 2 ] || die "no such path: exit $rc, want 2"
echo "$out2" | grep -qxF "rawvec stat: $T/none: No such file or directory" ||
	die "no such path: message: $out2"
log "refused bad usage, a plain directory and a missing one (2): $out; $out2"
log pass
