#!/bin/bash
# transports: uring dev
# Without -f: the parent exits 0 only once the disk is served (no retry
# needed), with its stdio released (a $(...) around it returns at once);
# the daemon serves until fusermount3 -u, then exits.  --help and
# --version exit 0 on stdout.
. "$(dirname "$0")/lib.sh"
requires_transport
requires pgrep

out=$("$RAWVEC" --help) || die "--help exit $?"
case $out in *usage:*MOUNTPOINT*TARGET*) ;; *) die "--help: $out" ;; esac
out=$("$RAWVEC" --version) || die "--version exit $?"
case $out in "rawvec "[0-9]*) ;; *) die "--version: '$out'" ;; esac

make_image "$T/img" 16M random
cp "$T/img" "$T/ref"
start=$(date +%s)
out=$(timeout 20 "$RAWVEC" "$(transport_opt)" "$MNT" "$T/img" 2>&1)
rc=$?
[ $rc = 0 ] || die "daemon start: exit $rc: $out"
[ $(($(date +%s) - start)) -lt 10 ] || die "the parent took $(($(date +%s) - start)) s: does the daemon hold its stdio?"
mountpoint -q "$MNT" || die "parent exited 0 but $MNT is not mounted"
# Our daemon: the one process whose command line names our temp dir.
pid=$(pgrep -f -- "$MNT $T/img")
case $pid in
'' | *[!0-9]*) die "daemon process for $MNT: '$pid'" ;;
esac
track_pid "$pid"
[ "$(stat -c %s "$MNT/disk")" = $((16 << 20)) ] || die "disk not served right after the parent exited"
tr=$(stat_value transport) || exit 1
[ "$TRANSPORT" = auto ] || [ "$tr" = "$TRANSPORT" ] || die "daemon: transport $tr, requested $TRANSPORT"
head -c 100000 /dev/urandom >"$T/src"
dd if="$T/src" of="$MNT/disk" bs=100000 seek=3 conv=notrunc status=none || die "write to the daemon's disk"
dd if="$T/src" of="$T/ref" bs=100000 seek=3 conv=notrunc status=none
same_bytes "$MNT/disk" "$T/ref" "daemon disk vs reference"
fusermount3 -u "$MNT" || die "fusermount3 -u"
for i in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null && die "daemon $pid still running 10 s after unmount"
same_bytes "$T/img" "$T/ref" "image after the daemon exited"
log "pass"
