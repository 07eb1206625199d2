#!/bin/bash
# transports: uring dev
# -o ro: the disk reads back the image, every way of writing fails (EROFS
# or EACCES), and the image's bytes and mtime stay the same.  A target
# that cannot be opened for writing at all serves fine with -o ro.
. "$(dirname "$0")/lib.sh"
requires_transport
requires python3 md5sum fallocate

make_image "$T/img" 16M random
touch -d '2001-02-03 04:05:06' "$T/img"
before="$(file_state "$T/img") $(md5sum <"$T/img")"

start_rawvec -o ro "$T/img"
D=$MNT/disk
[ "$(stat -c %a "$D")" = 400 ] || die "-o ro: disk mode $(stat -c %a "$D"), want 400"
[ "$(stat_value read_only)" = true ] || die "stats: read_only is not true"
same_bytes "$D" "$T/img" "read through the read-only mount"
dd if="$D" bs=4095 skip=7 count=3 status=none >"$T/back" || die "odd-sized read on -o ro"
dd if="$T/img" bs=4095 skip=7 count=3 status=none >"$T/want"
same_bytes "$T/back" "$T/want" "bs=4095 read on -o ro"

python3 - "$D" <<'PY' || die "write attempts on the -o ro disk"
import errno, os, sys
d = sys.argv[1]
ok = (errno.EROFS, errno.EACCES, errno.EPERM)
for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC,
              os.O_RDWR | os.O_DIRECT):
    try:
        fd = os.open(d, flags)
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.EACCES):
            sys.exit("open(%#o): %s, want EROFS or EACCES" % (flags, e))
        continue
    try:
        os.pwrite(fd, b'x' * 4096, 0)
    except OSError as e:
        if e.errno not in ok:
            sys.exit("open(%#o) succeeded, pwrite: %s" % (flags, e))
    else:
        sys.exit("open(%#o) and pwrite succeeded on -o ro" % flags)
    finally:
        os.close(fd)
# A read-only fd: reads fine, fsync harmless, writes EBADF.
fd = os.open(d, os.O_RDONLY)
assert len(os.pread(fd, 5000, 12345)) == 5000
os.fsync(fd)
try:
    os.pwrite(fd, b'x', 0)
    sys.exit("pwrite on an O_RDONLY fd succeeded")
except OSError as e:
    assert e.errno == errno.EBADF, e
os.close(fd)
for what, fn in (("chmod", lambda: os.chmod(d, 0o666)),
                 ("truncate", lambda: os.truncate(d, 4096)),
                 ("utime", lambda: os.utime(d, (0, 0)))):
    try:
        fn()
    except OSError as e:
        if e.errno not in ok:
            sys.exit("%s: %s, want EROFS/EACCES/EPERM" % (what, e))
    else:
        sys.exit("%s succeeded on -o ro" % what)
PY
expect_fail "dd conv=notrunc onto -o ro" dd if=/dev/zero of="$D" bs=4096 count=1 conv=notrunc status=none
grep -qiE 'read-only|permission' "$T/expect_fail.out" || die "dd onto -o ro: $(cat "$T/expect_fail.out")"
expect_fail "fallocate --punch-hole on -o ro" fallocate --punch-hole --keep-size -o 0 -l 4096 "$D"
expect_fail "fallocate --zero-range on -o ro" fallocate --zero-range --keep-size -o 0 -l 4096 "$D"
expect_fail "truncate -s (same size) on -o ro" truncate -s 16M "$D"
got=$(stat_field writes) || exit 1
[ "$got" = 0 ] || die "stats: $got writes reached rawvec on -o ro"
stop_rawvec
after="$(file_state "$T/img") $(md5sum <"$T/img")"
[ "$before" = "$after" ] || die "image changed under -o ro: $before -> $after"

# A target nobody can write (read-only bind mount): -o ro serves it.
mkdir "$T/ro"
cp "$T/img" "$T/ro/img"
mount --bind "$T/ro" "$T/ro" && track_mount "$T/ro" &&
	mount -o remount,bind,ro "$T/ro" || die "read-only bind mount"
start_rawvec -o ro "$T/ro/img"
same_bytes "$D" "$T/img" "read-only target through -o ro"
stop_rawvec
log "pass"
