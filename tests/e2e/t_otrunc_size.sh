#!/bin/bash
# transports: uring dev
# Opening the disk with O_TRUNC (dd without conv=notrunc, `: > disk`) must
# not truncate it, not even in the kernel's cached size, which the kernel
# uses without asking rawvec:
#   - asynchronous O_DIRECT reads (linux-aio here; io_uring, qemu and fio
#     take the same path) are clipped to it: they must still return full
#     blocks after such an open, with nobody calling stat() in between;
#   - O_APPEND writes start at it: they must still fail with ENOSPC (the
#     end of the disk), not overwrite the start of the disk.
. "$(dirname "$0")/lib.sh"
requires_transport
requires python3

case $(uname -m) in
x86_64 | aarch64) ;;
*) skip "linux-aio syscall numbers known for x86_64 and aarch64 only" ;;
esac

cat >"$T/aio.py" <<'PY'
"""aio.py PATH OFFSET LEN: one linux-aio O_DIRECT read; print its bytes' count
and exit 3 if they differ from the same range of REF (argv[4]), if given."""
import ctypes, mmap, os, platform, sys

NR = {"x86_64": (206, 207, 209, 208), "aarch64": (0, 1, 2, 4)}

class iocb(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("key", ctypes.c_uint32),
                ("rw_flags", ctypes.c_int32), ("opcode", ctypes.c_uint16),
                ("reqprio", ctypes.c_int16), ("fildes", ctypes.c_uint32),
                ("buf", ctypes.c_uint64), ("nbytes", ctypes.c_uint64),
                ("offset", ctypes.c_int64), ("reserved2", ctypes.c_uint64),
                ("flags", ctypes.c_uint32), ("resfd", ctypes.c_uint32)]

class io_event(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("obj", ctypes.c_uint64),
                ("res", ctypes.c_int64), ("res2", ctypes.c_int64)]

def aio_pread(path, off, n):
    setup, destroy, submit, getevents = NR[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ctx = ctypes.c_ulong(0)
    if libc.syscall(setup, 1, ctypes.byref(ctx)) < 0:
        sys.exit("io_setup: %s" % os.strerror(ctypes.get_errno()))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, n)  # page-aligned
    cb = iocb(opcode=0, fildes=fd, nbytes=n, offset=off,  # IOCB_CMD_PREAD
              buf=ctypes.addressof(ctypes.c_char.from_buffer(buf)))
    cbp = ctypes.pointer(cb)
    if libc.syscall(submit, ctx, 1, ctypes.byref(cbp)) != 1:
        sys.exit("io_submit: %s" % os.strerror(ctypes.get_errno()))
    ev = io_event()
    if libc.syscall(getevents, ctx, 1, 1, ctypes.byref(ev), None) != 1:
        sys.exit("io_getevents: %s" % os.strerror(ctypes.get_errno()))
    os.close(fd)
    libc.syscall(destroy, ctx)
    if ev.res < 0:
        sys.exit("aio read at %d: %s" % (off, os.strerror(-ev.res)))
    return bytes(buf[:ev.res])

path, off, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
got = aio_pread(path, off, n)
print(len(got))
if len(sys.argv) > 4:
    with open(sys.argv[4], "rb") as f:
        f.seek(off)
        if got != f.read(len(got)):
            sys.exit(3)
PY

SIZE=$((16 << 20))
make_image "$T/img" 16M random
cp "$T/img" "$T/ref"
start_rawvec "$T/img"
D=$MNT/disk

# aio_check WHEN: full 4k aio reads at 0, 8M and the last block; prints
# what went wrong and returns 1.  (No stat() here: it would refresh the
# kernel's cached size and hide the problem.)
aio_check()
{
	local off n bad=0
	for off in 0 $((8 << 20)) $((SIZE - 4096)); do
		if ! n=$(python3 "$T/aio.py" "$D" $off 4096 "$T/ref"); then
			echo "$1: aio read at $off failed or returned wrong bytes ($n)"
			bad=1
		elif [ "$n" != 4096 ]; then
			echo "$1: async O_DIRECT read of 4096 bytes at $off returned $n"
			bad=1
		fi
	done
	return $bad
}

fails=()
# aio_try WHEN: record a failure instead of stopping, so every effect shows.
aio_try()
{
	local out
	out=$(aio_check "$1") || fails+=("$out")
}
# append_check WHEN: an O_APPEND write must fail with ENOSPC and change nothing.
append_check()
{
	if echo appended >>"$D" 2>"$T/err"; then
		fails+=("$1: an O_APPEND write succeeded (it belongs past the end: ENOSPC)")
	elif ! grep -q 'No space left' "$T/err"; then
		fails+=("$1: O_APPEND write: $(cat "$T/err"), want ENOSPC")
	fi
	dd if="$D" bs=4096 count=1 status=none >"$T/back"
	dd if="$T/ref" bs=4096 count=1 status=none >"$T/want"
	cmp -s "$T/back" "$T/want" || {
		fails+=("$1: the O_APPEND write landed at the start of the disk")
		cp "$T/back" "$T/b0" # keep the reference in step for later checks
		dd if="$T/b0" of="$T/ref" conv=notrunc status=none
	}
}

aio_try "on a fresh mount"
append_check "on a fresh mount"
python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC))' "$D" ||
	die "open(O_TRUNC) failed"
aio_try "after open(O_WRONLY|O_TRUNC)"
head -c 4096 /dev/urandom >"$T/src"
dd if="$T/src" of="$D" bs=4096 count=1 status=none || die "dd without conv=notrunc"
dd if="$T/src" of="$T/ref" bs=4096 count=1 conv=notrunc status=none
aio_try "after dd without conv=notrunc"
: >"$D" || die ": > disk"
append_check "after : > disk"
[ "$(stat -c %s "$D")" = $SIZE ] || fails+=("size after the O_TRUNC opens: $(stat -c %s "$D")")
stop_rawvec
same_bytes "$T/img" "$T/ref" "image after O_TRUNC opens"
if [ ${#fails[@]} != 0 ]; then
	printf 'FAIL: %s\n' "${fails[@]}"
	die "${#fails[@]} checks failed"
fi
log "pass"
