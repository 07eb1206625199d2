#!/bin/bash
# transports: uring dev
# The disk behaves like a fixed-size block device: reads past the end give
# 0 bytes, writes past it ENOSPC, across it a short count; its size cannot
# change (a truncate to it or below succeeds doing nothing, past it fails);
# punch-hole and zero-range read back zeros (and leave zeros in the image),
# also when the range runs past the end; fsync works; ls/stat show the right size and mode 0600.
# Every check runs and the failures are listed together.
. "$(dirname "$0")/lib.sh"
requires_transport
requires python3 fallocate truncate

SIZE=$((16 << 20))
make_image "$T/img" 16M random
cp "$T/img" "$T/ref"
start_rawvec "$T/img"
D=$MNT/disk

# Shell-level checks first.
fails=()

[ "$(stat -c '%s %a %F' "$D")" = "$SIZE 600 regular file" ] ||
	fails+=("stat disk: '$(stat -c '%s %a %F' "$D")', want '$SIZE 600 regular file'")
[ -f "$MNT/stats" ] && [ "$(stat -c %a "$MNT/stats")" = 444 ] ||
	fails+=("stat stats: '$(stat -c '%a %F' "$MNT/stats")', want a 0444 regular file")
ls_line=$(ls -ln "$D")
case $ls_line in
"-rw------- 1 0 0 $SIZE "*) ;;
*) fails+=("ls -ln disk: '$ls_line'") ;;
esac
# disk and stats are there (other control files may be too).
ls_all=" $(ls -A "$MNT" | tr '\n' ' ')"
case $ls_all in *" disk "*) ;; *) fails+=("ls $MNT:$ls_all, no disk") ;; esac
case $ls_all in *" stats "*) ;; *) fails+=("ls $MNT:$ls_all, no stats") ;; esac

# truncate: past the end fails; to the size or below it succeeds and
# changes nothing (what it leaves of the bytes: t_truncate.sh).
for s in $((SIZE - 4096)) $((SIZE + 4096)) 0 1; do
	if truncate -s "$s" "$D" 2>"$T/err"; then
		[ "$s" -le $SIZE ] || fails+=("truncate -s $s succeeded on a $SIZE-byte disk")
	else
		[ "$s" -gt $SIZE ] || fails+=("truncate -s $s failed on a $SIZE-byte disk: $(cat "$T/err")")
	fi
	[ "$(stat -c %s "$D")" = $SIZE ] || fails+=("after truncate -s $s: size $(stat -c %s "$D")")
done
truncate -s $SIZE "$D" 2>"$T/err" || fails+=("truncate -s $SIZE (same size) failed: $(cat "$T/err")")

# dd past the end: "No space left on device".
if dd if=/dev/zero of="$D" bs=4096 seek=$((SIZE / 4096)) count=1 conv=notrunc status=none 2>"$T/err"; then
	fails+=("dd past the end succeeded")
elif ! grep -q 'No space left' "$T/err"; then
	fails+=("dd past the end: '$(cat "$T/err")', want 'No space left on device'")
fi
# fsync through dd and sync(1).
head -c 8192 /dev/urandom >"$T/src"
dd if="$T/src" of="$D" bs=8192 seek=100 conv=notrunc,fsync status=none 2>"$T/err" ||
	fails+=("dd conv=fsync: $(cat "$T/err")")
dd if="$T/src" of="$T/ref" bs=8192 seek=100 conv=notrunc status=none
sync "$D" || fails+=("sync $D failed")

# The rest in python: byte-exact semantics against the reference file.
python3 - "$D" "$T/ref" "$SIZE" >"$T/py.out" 2>&1 <<'PY'
import errno, os, subprocess, sys
disk, ref, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
fails = []
def fail(msg):
    fails.append(msg)

fd = os.open(disk, os.O_RDWR)
rf = os.open(ref, os.O_RDWR)
def refw(off, data):
    os.pwrite(rf, data, off)

# Reads at and past the end give 0 bytes; across it, a short count.
for off in (size, size + 1, size + 4096, size + (1 << 30)):
    n = len(os.pread(fd, 4096, off))
    if n:
        fail("pread(4096) at %d (size %d) returned %d bytes, want 0" % (off, size, n))
got = os.pread(fd, 8192, size - 4096)
if len(got) != 4096:
    fail("pread(8192) at size-4096 returned %d bytes, want 4096" % len(got))
got = os.pread(fd, 3000, size - 1000)
if len(got) != 1000:
    fail("pread(3000) at size-1000 returned %d bytes, want 1000" % len(got))

# Writes at/past the end: ENOSPC; across it: short, the inside part written.
for off, n in ((size, 4096), (size, 1), (size + 12345, 100)):
    try:
        r = os.pwrite(fd, b'\xee' * n, off)
        fail("pwrite(%d) at %d succeeded (%d), want ENOSPC" % (n, off, r))
    except OSError as e:
        if e.errno != errno.ENOSPC:
            fail("pwrite(%d) at %d: %s, want ENOSPC" % (n, off, e))
data = os.urandom(8192)
r = os.pwrite(fd, data, size - 4096)
if r != 4096:
    fail("pwrite(8192) at size-4096 returned %d, want a short 4096" % r)
refw(size - 4096, data[:4096])
data = os.urandom(3000)
r = os.pwrite(fd, data, size - 1000)
if r != 1000:
    fail("pwrite(3000) at size-1000 returned %d, want a short 1000" % r)
refw(size - 1000, data[:1000])
# O_APPEND writes at the end: ENOSPC.
afd = os.open(disk, os.O_WRONLY | os.O_APPEND)
try:
    os.write(afd, b'x')
    fail("O_APPEND write succeeded")
except OSError as e:
    if e.errno != errno.ENOSPC:
        fail("O_APPEND write: %s, want ENOSPC" % e)
os.close(afd)

# fsync / fdatasync.
os.pwrite(fd, b'fsync-me', 5 << 20); refw(5 << 20, b'fsync-me')
os.fsync(fd)
os.fdatasync(fd)

def falloc(args):
    return subprocess.run(["fallocate"] + args + [disk],
                          capture_output=True, text=True)

def expect_zero(desc, off, n):
    got = os.pread(fd, n, off)
    if got != bytes(len(got)) or len(got) != n:
        nz = next((i for i, b in enumerate(got) if b), None)
        fail("%s: [%d, +%d) reads %d bytes, first non-zero at +%s" %
             (desc, off, n, len(got), nz))

# Punch holes and zero ranges inside the disk, aligned and not.
for mode in ("--punch-hole", "--zero-range"):
    for off, n in ((1 << 20, 1 << 20), (3 * 4096 + 100, 5000), (7 << 20, 4096)):
        off += 0 if mode == "--punch-hole" else (8 << 20)
        p = falloc([mode, "--keep-size", "-o", str(off), "-l", str(n)])
        if p.returncode:
            fail("fallocate %s -o %d -l %d: %s" % (mode, off, n, p.stderr.strip()))
            continue
        expect_zero("after fallocate %s -o %d -l %d" % (mode, off, n), off, n)
        refw(off, bytes(n))
        # The bytes just outside are untouched.
        for o, m in ((off - 10, 10), (off + n, 10)):
            if os.pread(fd, m, o) != os.pread(rf, m, o):
                fail("fallocate %s -o %d -l %d changed bytes at %d" % (mode, off, n, o))

# Ranges that run past the end: either fail, leaving the data, or zero the
# part inside.  Success with nothing zeroed loses the caller's discard.
for mode in (["--punch-hole", "--keep-size"], ["--zero-range", "--keep-size"],
             ["--zero-range"]):
    off, n = size - 8192, 16384
    os.pwrite(fd, b'\x5a' * 8192, off); refw(off, b'\x5a' * 8192)
    p = falloc(mode + ["-o", str(off), "-l", str(n)])
    desc = "fallocate %s -o size-8192 -l 16384 (past the end)" % " ".join(mode)
    inside = os.pread(fd, 8192, off)
    if p.returncode == 0:
        if inside != bytes(8192):
            fail("%s: succeeded but the 8192 bytes inside the disk are not zero "
                 "(%d non-zero)" % (desc, sum(1 for b in inside if b)))
        refw(off, bytes(8192))
    elif inside != b'\x5a' * 8192:
        fail("%s: failed (%s) but changed the data" % (desc, p.stderr.strip()))
    # Make the reference match whatever happened so later checks stay exact.
    refw(off, inside)

# Plain fallocate: inside is a no-op success, past the end ENOSPC.
p = falloc(["-o", "0", "-l", str(size)])
if p.returncode:
    fail("fallocate -o 0 -l size: %s" % p.stderr.strip())
p = falloc(["-o", str(size - 4096), "-l", "8192"])
if p.returncode == 0 or "No space" not in p.stderr:
    fail("fallocate across the end: rc %d '%s', want ENOSPC" % (p.returncode, p.stderr.strip()))

# Namespace: nothing can be created, removed or renamed.
mnt = os.path.dirname(disk)
for what, fn in (("create", lambda: os.open(mnt + "/new", os.O_CREAT | os.O_WRONLY, 0o600)),
                 ("mkdir", lambda: os.mkdir(mnt + "/d")),
                 ("unlink disk", lambda: os.unlink(disk)),
                 ("rename disk", lambda: os.rename(disk, mnt + "/disk2")),
                 ("chmod disk", lambda: os.chmod(disk, 0o644)),
                 ("write stats", lambda: os.open(mnt + "/stats", os.O_WRONLY))):
    try:
        fn()
        fail("%s succeeded" % what)
    except OSError:
        pass

if os.fstat(fd).st_size != size:
    fail("size is %d after all this, want %d" % (os.fstat(fd).st_size, size))
os.close(fd)
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
PY
rc=$?
cat "$T/py.out"
[ $rc = 0 ] || fails+=("python checks failed (above)")
got=$(stat_field fsyncs) || exit 1
[ "$got" -gt 0 ] || fails+=("stats: fsyncs is $got after fsync/fdatasync/sync")

same_bytes "$D" "$T/ref" "disk vs reference after all checks"
stop_rawvec
same_bytes "$T/img" "$T/ref" "image vs reference after unmount (holes must be zero in the image)"
if [ ${#fails[@]} != 0 ]; then
	printf 'FAIL: %s\n' "${fails[@]}"
	die "${#fails[@]} semantic checks failed"
fi
log "pass"
