#!/bin/bash
# transports: uring dev
# A daemon's log has a place: with -o log=FILE, a rawvec started without
# -f appends to FILE what it would have said on stderr, also after it has
# detached: a refused control command's reason, a member failed by the
# layer (printed by blockdev/ itself), the unmount and its exit status.  A log file that
# cannot be opened is a usage error (exit 2), before anything starts.
# (Without a file the log goes to syslog: t_log_syslog.sh.)
. "$(dirname "$0")/lib.sh"
requires_transport
requires pgrep

out=$("$RAWVEC" -o log="$T/no/such/dir/rawvec.log" "$MNT" 'null(size=1m)' 2>&1)
rc=$?
[ $rc = 2 ] || die "-o log= in a missing directory: exit $rc, want 2 ($out)"
case $out in *"$T/no/such/dir/rawvec.log"*"No such file"*) ;; *) die "-o log=: '$out' names neither the file nor the reason" ;; esac
mountpoint -q "$MNT" && die "-o log= failed but $MNT is mounted"

make_image "$T/a.img" 8M zero
make_image "$T/b.img" 8M zero
L=$T/daemon.log
echo "a line from before" >"$L"
out=$(timeout 20 "$RAWVEC" "$(transport_opt)" -o log="$L" "$MNT" \
	"raid1(faulty($T/a.img), faulty($T/b.img))" 2>&1)
rc=$?
[ $rc = 0 ] || die "daemon start with -o log=: exit $rc: $out"
pid=$(pgrep -f -- "$MNT raid1")
case $pid in '' | *[!0-9]*) die "daemon process for $MNT: '$pid'" ;; esac
track_pid "$pid"
head -1 "$L" | grep -qx "a line from before" || die "-o log= did not append: $(head -1 "$L")"
grep -q "serving raid1" "$L" || die "the start-up is not in the log: $(cat "$L")"

# Refused commands: EINVAL for the writer, the reason in the log.
echo bogus >"$MNT/control" 2>/dev/null && die "'bogus' was accepted"
echo 'fail 7' >"$MNT/control" 2>/dev/null && die "'fail 7' was accepted"
grep -q "control: 'bogus'" "$L" || die "the log lacks why 'bogus' was refused: $(cat "$L")"
grep -q "control: 'fail 7'" "$L" || die "the log lacks why 'fail 7' was refused: $(cat "$L")"

# A member failed by an I/O error: reported by the layer, not by fs/.
echo 'fault 1 write_eio=1' >"$MNT/control" || die "fault write_eio=1 refused"
dd if=/dev/urandom of="$MNT/disk" bs=4k count=1 oflag=direct conv=notrunc status=none ||
	die "raid1 did not survive a write error on one mirror"
grep -q "raid1 member 1 failed .*running degraded" "$L" ||
	die "the member failure is not in the log: $(cat "$L")"
# The last mirror failing is not "running degraded".
echo 'fault 0 write_eio=1' >"$MNT/control" || die "fault 0 write_eio=1 refused"
dd if=/dev/urandom of="$MNT/disk" bs=4k count=1 oflag=direct conv=notrunc status=none 2>/dev/null &&
	die "a write with both mirrors failing succeeded"
grep -q "raid1 member 0 failed (Input/output error): beyond its redundancy: I/O that needs the member fails" "$L" ||
	die "the last mirror's failure is not logged as beyond redundancy: $(grep 'member 0 failed' "$L")"
grep -q "rawvec: rawvec:" "$L" && die "doubled prefix in the log: $(grep 'rawvec: rawvec:' "$L")"

fusermount3 -u "$MNT" || die "fusermount3 -u"
for i in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null && die "daemon $pid still running 10 s after unmount"
grep -q "$MNT unmounted, exit status 0" "$L" || die "the log does not say the daemon stopped: $(tail -3 "$L")"
# Every line but ours: a time, rawvec and the daemon's pid.
bad=$(tail -n +2 "$L" | grep -Ev '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} rawvec\[[0-9]+\]: ')
[ -z "$bad" ] || die "log lines without time and pid: $bad"
log "pass ($(wc -l <"$L") log lines)"
