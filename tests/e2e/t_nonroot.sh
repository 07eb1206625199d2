#!/bin/bash
# transports: uring dev
# rawvec run by an ordinary user (a throw-away one, removed at exit):
#   - it mounts (libfuse goes through fusermount3), serves the user's image
#     and stops on the user's fusermount3 -u;
#   - a mem() over RLIMIT_MEMLOCK is refused with exit 2, naming the limit
#     and how to raise it, and so is a limit too small for any pool (not
#     an -o pool= the user never gave);
#   - a second mount whose pool does not fit beside the first one's
#     (io_uring counts pinned memory per user) fails naming RLIMIT_MEMLOCK,
#     the per-user count and what to do, not an option the user never gave;
#   - where the user cannot open /dev/fuse (mode 0600, no udev to make it
#     0666), fusermount3 cannot either (it opens it as the user): exit 2
#     before anything starts, saying so and what to do.
# All of it in a private mount namespace, with /dev/fuse nodes of our own
# (0666 as udev makes it, then 0600) bound over the machine's.
if [ -z "${RAWVEC_NONROOT_NS:-}" ]; then
	command -v unshare >/dev/null 2>&1 || { echo "SKIP: requires unshare"; exit 77; }
	RAWVEC_NONROOT_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
requires_transport
requires useradd userdel setpriv prlimit pgrep mknod

U=rvt$$
useradd -M -d /nonexistent -s /usr/sbin/nologin -U "$U" >/dev/null 2>&1 ||
	skip "useradd $U failed"
# The user's processes (all ours) go first: userdel refuses a user in use.
at_exit "fusermount3 -uz '$MNT'; for p in \$(pgrep -u $(id -u "$U")); do kill \$p; done; sleep 0.5; userdel '$U'"

# The limit Debian gives an ordinary user (8 MiB), set explicitly (root
# may not be allowed to raise its own).
lim=$((8 << 20))
hard=$(ulimit -Hl)
[ "$hard" = unlimited ] || [ "$hard" -ge 8192 ] || skip "hard RLIMIT_MEMLOCK is below 8 MiB"

# as_user NAME CMD...: CMD as user NAME with RLIMIT_MEMLOCK $lim, at most 30 s.
as_user()
{
	local u=$1
	shift
	timeout 30 prlimit --memlock="$lim" \
		setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --clear-groups "$@"
}

# dev_fuse MODE: a node of /dev/fuse's numbers with MODE, bound over it.
dev_fuse()
{
	local maj min
	read -r maj min < <(stat -c '%t %T' /dev/fuse)
	rm -f "$T/fuse$1"
	mknod "$T/fuse$1" c $((0x$maj)) $((0x$min)) && chmod "$1" "$T/fuse$1" &&
		mount --bind "$T/fuse$1" /dev/fuse || die "a /dev/fuse of mode $1"
}

# wait_gone PID: up to 10 s.
wait_gone()
{
	local i
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# daemon_of MNT IMG: the daemon's pid, tracked.
daemon_of()
{
	local pid
	pid=$(pgrep -f -- "$1 $2")
	case $pid in '' | *[!0-9]*) die "no daemon for $1: '$pid'" ;; esac
	track_pid "$pid"
	echo "$pid"
}

chmod 755 "$T"
mkdir "$T/mnt2"
make_image "$T/u.img" 16M random
make_image "$T/v.img" 16M
cp "$T/u.img" "$T/ref"
head -c 12288 /dev/urandom >"$T/src"
chmod 644 "$T/src"
chown "$U" "$MNT" "$T/mnt2" "$T/u.img" "$T/v.img"
dev_fuse 666

out=$(as_user $U "$RAWVEC" "$(transport_opt)" "$MNT" "$T/u.img" 2>&1)
rc=$?
[ $rc = 0 ] || die "user $U: mount: exit $rc: $out"
pid=$(daemon_of "$MNT" "$T/u.img") || exit 1
grep " $MNT fuse.rawvec " /proc/mounts | grep -q "user_id=$(id -u $U)" ||
	die "not mounted as $U: $(grep " $MNT " /proc/mounts)"
as_user $U dd if="$T/src" of="$MNT/disk" bs=4096 seek=7 conv=notrunc status=none 2>"$T/err" ||
	die "user $U: write to the disk: $(cat "$T/err")"
dd if="$T/src" of="$T/ref" bs=4096 seek=7 conv=notrunc status=none
log "user $U: $(as_user $U cat "$MNT/stats" | grep -o '"transport": "[a-z]*"')"

out=$(as_user $U "$RAWVEC" -f "$(transport_opt)" "$T/mnt2" "$T/v.img" 2>&1)
rc=$?
log "a second mount of $U's: exit $rc: $(echo "$out" | grep -v 'limited to' | tr '\n' '|')"
[ $rc = 1 ] || die "user $U: second mount beside the first: exit $rc, want 1 ($out)"
echo "$out" | grep -q "RLIMIT_MEMLOCK (8 MiB) .*uid $(id -u $U).*other rawvec mounts.*ulimit -l" ||
	die "second mount: the message lacks RLIMIT_MEMLOCK, the per-user count or the remedy: $out"
echo "$out" | grep -q "pool=[0-9]* is too small" && die "second mount: blames an -o pool= never given: $out"
mountpoint -q "$T/mnt2" && die "the failed second mount left $T/mnt2 mounted"
as_user $U fusermount3 -u "$MNT" || die "user $U: fusermount3 -u"
wait_gone "$pid" || die "user $U: daemon $pid still running 10 s after unmount"
mountpoint -q "$MNT" && die "$MNT still mounted"
same_bytes "$T/u.img" "$T/ref" "the user's image after its write"

out=$(as_user $U "$RAWVEC" -f "$(transport_opt)" "$T/mnt2" 'mem(size=64m)' 2>&1)
rc=$?
log "mem(size=64m) under RLIMIT_MEMLOCK 8 MiB: exit $rc: $(echo "$out" | grep mem:)"
[ $rc = 2 ] || die "mem(size=64m) over RLIMIT_MEMLOCK: exit $rc, want 2 ($out)"
echo "$out" | grep -q "64 MiB of locked memory is more than RLIMIT_MEMLOCK (8 MiB).*ulimit -l" ||
	die "mem() over RLIMIT_MEMLOCK: the message lacks the limit or the remedy: $out"

lim=$((1 << 20))
out=$(as_user $U "$RAWVEC" -f "$(transport_opt)" "$T/mnt2" "$T/v.img" 2>&1)
rc=$?
lim=$((8 << 20))
log "RLIMIT_MEMLOCK 1 MiB: exit $rc: $(echo "$out" | grep -v 'limited to')"
[ $rc = 2 ] || die "RLIMIT_MEMLOCK 1 MiB: exit $rc, want 2 ($out)"
echo "$out" | grep -q "RLIMIT_MEMLOCK (1 MiB) leaves room for a .* pinned pool.*ulimit -l" ||
	die "RLIMIT_MEMLOCK 1 MiB: the message lacks the limit or the remedy: $out"
echo "$out" | grep -q -- "-o pool=" && die "RLIMIT_MEMLOCK 1 MiB: blames an -o pool= never given: $out"

dev_fuse 600
out=$(as_user $U "$RAWVEC" -f "$(transport_opt)" --create 16m "$T/mnt2" "$T/new.img" 2>&1)
rc=$?
log "a 0600 /dev/fuse: exit $rc: $out"
[ $rc = 2 ] || die "user $U with a 0600 /dev/fuse: exit $rc, want 2 ($out)"
echo "$out" | grep -q "/dev/fuse: Permission denied: uid $(id -u $U) .*mode 0600.*chmod 0666 /dev/fuse" ||
	die "a 0600 /dev/fuse: the message lacks the reason or the remedy: $out"
[ -e "$T/new.img" ] && die "a start refused for /dev/fuse created $T/new.img"
mountpoint -q "$T/mnt2" && die "$T/mnt2 mounted"
log "pass"
