#!/bin/bash
# -o uid=, gid=, umask= set the disk's owner and mode (numbers or names);
# control stays the mounting user's, mode 0600, whatever they say:
#   - allow_other,uid=nobody: nobody reads and writes the disk, reads
#     stats, and cannot write control;
#   - allow_other,umask=022: everyone reads the disk, only its owner writes;
#   - a uid= of another user without allow_other, an unknown user or group
#     and a bad umask are usage errors (exit 2).
. "$(dirname "$0")/lib.sh"
requires_transport
requires setpriv getent

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
user=$(getent passwd 65534 | cut -d: -f1)
group=$(getent group 65534 | cut -d: -f1)
[ -n "$user" ] && [ -n "$group" ] || skip "no user and group 65534"
chmod 755 "$T" "$MNT"
make_image "$T/img" 16M random
cp "$T/img" "$T/ref"

start_rawvec -o allow_other,uid="$user",gid="$group" "$T/img"
[ "$(stat -c '%u %g %a' "$MNT/disk")" = "65534 65534 600" ] ||
	die "uid=$user,gid=$group: disk is '$(stat -c '%u %g %a' "$MNT/disk")'"
[ "$(stat -c '%u %g %a' "$MNT/control")" = "$(id -u) $(id -g) 600" ] ||
	die "uid=$user: control is '$(stat -c '%u %g %a' "$MNT/control")', want the mounting user's, 600"
head -c 8192 /dev/urandom >"$T/src"
chmod 644 "$T/src"
as_nobody dd if="$T/src" of="$MNT/disk" bs=4096 seek=3 conv=notrunc status=none 2>"$T/err" ||
	die "uid=$user: $user cannot write the disk: $(cat "$T/err")"
dd if="$T/src" of="$T/ref" bs=4096 seek=3 conv=notrunc status=none
as_nobody dd if="$MNT/disk" bs=4096 skip=3 count=2 status=none 2>"$T/err" | cmp -s - "$T/src" ||
	die "uid=$user: $user cannot read back what it wrote: $(cat "$T/err")"
as_nobody cat "$MNT/stats" >/dev/null 2>&1 || die "uid=$user: $user cannot read stats"
as_nobody sh -c "echo check >'$MNT/control'" 2>/dev/null && die "uid=$user: $user can write control"
as_nobody cat "$MNT/control" >/dev/null 2>&1 && die "uid=$user: $user can read control"
stop_rawvec
same_bytes "$T/img" "$T/ref" "image after $user's write"

start_rawvec -o allow_other,umask=022 "$T/img"
[ "$(stat -c '%u %a' "$MNT/disk")" = "$(id -u) 644" ] || die "umask=022: disk is '$(stat -c '%u %a' "$MNT/disk")'"
as_nobody dd if="$MNT/disk" of=/dev/null bs=4096 count=1 status=none 2>/dev/null ||
	die "umask=022: another user cannot read the 0644 disk"
as_nobody dd if=/dev/zero of="$MNT/disk" bs=4096 count=1 conv=notrunc status=none 2>/dev/null &&
	die "umask=022: another user can write the 0644 disk"
stop_rawvec
same_bytes "$T/img" "$T/ref" "image after umask=022"

for o in "uid=65534" "gid=65534" "uid=no-such-user-here" "allow_other,gid=no-such-group-here" \
	 "umask=8" "umask=1777" "umask="; do
	out=$("$RAWVEC" -f "$(transport_opt)" -o "$o" "$MNT" "$T/img" 2>&1)
	rc=$?
	[ $rc = 2 ] || die "-o $o: exit $rc, want 2 ($out)"
	log "-o $o: $(echo "$out" | head -1)"
done
mountpoint -q "$MNT" && die "a refused option left $MNT mounted"
log "pass"
