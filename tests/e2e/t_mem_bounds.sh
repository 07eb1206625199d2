#!/bin/bash
# Start-up stays within the machine and can be stopped:
#   - mem() members that, with the pinned pool, need more than MemAvailable
#     are refused with exit 2 and the numbers, before anything is locked,
#     and so are two that each fit alone (run under an address-space
#     limit, so a rawvec that tried to map them anyway fails instead of
#     pushing the machine into swap);
#   - a SIGTERM while a mem() that fits is being locked stops the start:
#     with -f, exit 1 and the log says what it stopped; without -f the
#     signal goes to the parent (the child has a session of its own), and
#     the child must stop too, not mount.
. "$(dirname "$0")/lib.sh"
requires_transport
requires pgrep prlimit

avail_kib=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
[ -n "$avail_kib" ] || skip "no MemAvailable in /proc/meminfo"

big=$((avail_kib * 2 / 1048576 + 1))g
out=$(timeout 60 prlimit --as=$((4 << 30)) "$RAWVEC" -f "$(transport_opt)" "$MNT" "mem(size=$big)" 2>&1)
rc=$?
log "mem(size=$big): exit $rc: $(echo "$out" | head -1)"
[ $rc = 2 ] || die "mem(size=$big) with $avail_kib KiB available: exit $rc, want 2 ($out)"
echo "$out" | grep -q "${big%g} GiB of locked memory.* is more than the .* available (MemAvailable)" ||
	die "mem(size=$big): the message lacks the numbers: $out"
# Each fits alone, the two do not; room to map one of them (no more).
two=$((avail_kib * 6 / 10 / 1024))m
out=$(timeout 60 prlimit --as=$(((avail_kib * 6 / 10 + (4 << 20)) * 1024)) "$RAWVEC" -f "$(transport_opt)" "$MNT" \
	"raid1(mem(size=$two), mem(size=$two))" 2>&1)
rc=$?
[ $rc = 2 ] || die "two mem(size=$two) (each alone fits): exit $rc, want 2 ($out)"
echo "$out" | grep -q "2 mem() members" || die "two mem(size=$two): the sum is not named: $out"
mountpoint -q "$MNT" && die "a refused mem() left $MNT mounted"

# A size that fits easily and takes a while to lock.
small=$((avail_kib / 4 / 1024))
[ $small -gt 2048 ] && small=2048
[ $small -ge 256 ] || skip "only $avail_kib KiB available"

# locking_pid PID: wait until PID has locked some memory (VmLck > 0).
locking_pid()
{
	local i
	for i in $(seq 200); do
		[ "$(awk '/^VmLck:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" -gt 0 ] 2>/dev/null && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

"$RAWVEC" -f "$(transport_opt)" "$MNT" "mem(size=${small}m)" >"$T/fg.log" 2>&1 &
pid=$!
track_pid $pid
locking_pid $pid || die "-f mem(size=${small}m): never started locking: $(cat "$T/fg.log")"
kill -TERM $pid
wait $pid
rc=$?
log "-f: SIGTERM while locking ${small}m: exit $rc: $(tr '\n' '|' <"$T/fg.log")"
[ $rc = 1 ] || die "-f: SIGTERM during start-up: exit $rc, want 1"
grep -q "signal 15 during start-up" "$T/fg.log" || die "-f: the log does not say why it stopped"
grep -q "stopped after locking" "$T/fg.log" || die "-f: the log does not say what it stopped"
mountpoint -q "$MNT" && die "-f: mounted after SIGTERM"

"$RAWVEC" "$(transport_opt)" "$MNT" "mem(size=${small}m)" >"$T/bg.log" 2>&1 &
parent=$!
child=
for i in $(seq 100); do
	child=$(pgrep -P $parent)
	[ -n "$child" ] && break
	sleep 0.05
done
case $child in '' | *[!0-9]*) die "daemon start: no child of $parent: '$child'" ;; esac
track_pid "$child"
locking_pid "$child" || die "daemon mem(size=${small}m): never started locking: $(cat "$T/bg.log")"
kill -TERM $parent
wait $parent
rc=$?
for i in $(seq 100); do
	kill -0 "$child" 2>/dev/null || break
	sleep 0.1
done
log "daemon: SIGTERM to the parent while locking: exit $rc: $(tr '\n' '|' <"$T/bg.log")"
kill -0 "$child" 2>/dev/null && die "the daemon child $child still runs 10 s after SIGTERM to its parent"
mountpoint -q "$MNT" && die "the daemon mounted after SIGTERM to its parent"
[ $rc = 1 ] || die "daemon: SIGTERM during start-up: the parent exited $rc, want 1"
grep -q "signal 15 during start-up" "$T/bg.log" || die "daemon: the log does not say why it stopped"
log "pass"
