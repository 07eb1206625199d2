#!/bin/bash
# transports: uring dev
# Images are locked: a second rawvec on an image another one serves, or a
# layout naming such an image (raid1, slice, --create beside it, a
# `replace`), is refused with exit 2 (EINVAL for replace), a message that
# names the image and the holder's pid, and the first mount's bytes
# untouched.  Two -o ro servers share an image, rw and ro do not.  The lock
# goes with the process, kill -9 included; a lock no process holds any
# more (a dead server's, its files still held by the kernel for a moment)
# is waited for, not refused.
. "$(dirname "$0")/lib.sh"
requires_transport

make_image "$T/img" 16M random
make_image "$T/a.img" 16M
make_image "$T/c.img" 16M
M2=$T/mnt2
M3=$T/mnt3
mkdir "$M2" "$M3"
# On code that does not lock, the second server mounts: unmount it at exit.
at_exit "fusermount3 -uz '$M2'; fusermount3 -uz '$M3'"

# second WHAT WANT_RC MOUNTPOINT [OPTIONS] TARGET: a second rawvec,
# daemonised (so one that wrongly starts does not hold the script), must
# exit WANT_RC; its output in $T/second.out.
second()
{
	local what=$1 want=$2 rc
	shift 2
	timeout 30 "$RAWVEC" "$(transport_opt)" "${@:2:$#-2}" "$1" "${@: -1}" \
		>"$T/second.out" 2>&1
	rc=$?
	[ "$rc" = "$want" ] || die "$what: exit $rc, want $want: $(cat "$T/second.out")"
}

# refused WHAT HOLDERS LOCK MOUNTPOINT [OPTIONS] TARGET: exit 2 with a
# message naming $T/img, one of the pids HOLDERS ("1 2") and the kind of
# lock it holds.
refused()
{
	local what=$1 holders=$2 kind=$3 pid
	shift 3
	second "$what" 2 "$@"
	pid=$(sed -n "s|^rawvec: $T/img: in use by another process (pid \([0-9]*\), rawvec) holding a $kind lock; .*|\1|p" \
		"$T/second.out")
	[ -n "$pid" ] && [[ " $holders " == *" $pid "* ]] ||
		die "$what: the message does not name $T/img, a $kind lock and one of pids $holders: $(cat "$T/second.out")"
	mountpoint -q "$1" && die "$what: $1 is mounted"
	return 0
}

# image_holders: the pids of the rawvecs that have $T/img open.
image_holders()
{
	local d
	for d in /proc/[0-9]*; do
		[ "$(cat "$d/comm" 2>/dev/null)" = rawvec ] || continue
		ls -l "$d/fd" 2>/dev/null | grep -q " $T/img\$" && echo "${d#/proc/}"
	done
}

start_rawvec "$T/img"
first=$RAWVEC_PID
dd if=/dev/urandom of="$T/ref" bs=1M count=16 status=none
dd if="$T/ref" of="$MNT/disk" bs=1M oflag=direct status=none || die "write through the first mount"

refused "second server, same image" "$first" write "$M2" "$T/img"
refused "second server, -o ro" "$first" write "$M2" -o ro "$T/img"
refused "raid1 with the served image" "$first" write "$M2" "raid1($T/a.img, $T/img)"
refused "slice of the served image" "$first" write "$M2" "slice($T/img, offset=1m)"
refused "--create beside the served image" "$first" write "$M2" --create 16m \
	"raid1($T/new.img, $T/img)"
[ -e "$T/new.img" ] && die "the refused --create layout left $T/new.img behind"
same_bytes "$MNT/disk" "$T/ref" "the first mount after the refused starts"

# One rawvec may open an image it serves again: a failed member replaced
# by itself.  One another rawvec serves is refused.
stop_rawvec
same_bytes "$T/img" "$T/ref" "the image after the first server stopped"
second "c.img served alone" 0 "$M3" "$T/c.img"
cp "$T/ref" "$T/a.img" # in sync, so the rebuild keeps the bytes
start_rawvec "raid1($T/a.img, $T/img)"
echo "fail 1" >"$MNT/control" || die "fail 1 refused"
if echo "replace 1 $T/c.img" >"$MNT/control" 2>"$T/ctl.err"; then
	die "replace by $T/c.img, which another rawvec serves, was accepted"
fi
grep -q "EINVAL\|Invalid argument" "$T/ctl.err" || die "replace refused, but not with EINVAL: $(cat "$T/ctl.err")"
grep -qF "$T/c.img: in use by another process (pid" "$RAWVEC_LOG" ||
	die "the log does not say why replace by $T/c.img was refused"
echo "replace 1 $T/img" >"$MNT/control" || die "replace of member 1 by itself refused"
for i in $(seq 200); do
	[ "$(stat_value target.sweep_running)" = false ] &&
		[ "$(stat_value target.degraded)" = 0 ] && break
	sleep 0.1
done
[ "$(stat_value target.degraded)" = 0 ] || die "raid1 still degraded after the replace by itself"
stop_rawvec
fusermount3 -u "$M3" || die "unmount $M3"
same_bytes "$T/img" "$T/ref" "the image after the raid1 rebuild onto itself"

# Read-only servers share it; a read-write one is refused beside them.
start_rawvec -o ro "$T/img"
second "second -o ro server" 0 "$M2" -o ro "$T/img"
same_bytes "$M2/disk" "$T/ref" "the second -o ro mount"
refused "read-write server beside two -o ro" "$(echo $(image_holders))" read \
	"$M3" "$T/img"
fusermount3 -u "$M2" || die "unmount $M2"
stop_rawvec

# kill -9: the lock goes with the process; once the dead mount is cleaned
# up, a new server takes the image.
start_rawvec "$T/img"
kill -KILL "$RAWVEC_PID"
wait_rawvec_exit 20
fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" || die "cannot clean $MNT after kill -9"
start_rawvec "$T/img"
same_bytes "$MNT/disk" "$T/ref" "the image served again after kill -9"
stop_rawvec

# A lock that no process holds: the kernel keeps it a moment after its
# holder died (io_uring lets go of its files after the process).  Here an
# image fd in flight on a unix socket holds it, 400 ms: rawvec waits for
# it instead of refusing with no holder to name.
has_python || skip "the orphaned-lock case needs python3"
python3 - "$T/img" >"$T/orphan.out" 2>&1 <<'EOF' &
import array, fcntl, os, socket, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))
a, b = socket.socketpair()
a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
os.close(fd)
print("locked", flush=True)
time.sleep(0.4)
EOF
ORPHAN=$!
for i in $(seq 50); do
	grep -q locked "$T/orphan.out" && break
	sleep 0.02
done
grep -q locked "$T/orphan.out" || die "orphaned lock: $(cat "$T/orphan.out")"
start_rawvec "$T/img"
wait "$ORPHAN"
same_bytes "$MNT/disk" "$T/ref" "the image served once the orphaned lock went"
stop_rawvec
log "pass: an orphaned lock is waited for"
