#!/bin/bash
# Access by other users: without -o allow_other another user cannot even
# stat the mount; with it they can read stats (0444) but not the disk
# (0600, owned by whoever runs rawvec).
. "$(dirname "$0")/lib.sh"
requires_transport
requires setpriv

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
chmod 755 "$T" "$MNT"
make_image "$T/img" 16M

start_rawvec "$T/img"
as_nobody stat "$MNT/stats" >/dev/null 2>&1 && die "without allow_other another user can stat $MNT/stats"
stop_rawvec

start_rawvec -o allow_other "$T/img"
as_nobody cat "$MNT/stats" >"$T/stats" 2>"$T/err" || die "allow_other: another user cannot read stats: $(cat "$T/err")"
grep -q '"transport"' "$T/stats" || die "allow_other: stats read by another user: $(cat "$T/stats")"
as_nobody dd if="$MNT/disk" of=/dev/null bs=4096 count=1 status=none 2>/dev/null &&
	die "allow_other: another user can read the 0600 disk"
as_nobody dd if=/dev/zero of="$MNT/disk" bs=4096 count=1 conv=notrunc status=none 2>/dev/null &&
	die "allow_other: another user can write the 0600 disk"
cmp -n 4096 "$T/img" /dev/zero >/dev/null || die "the image changed"
stop_rawvec
log "pass"
