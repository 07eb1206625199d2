#!/bin/bash
# variants: uring/1 uring/2 dev/1 dev/2
# Concurrent unaligned writers on disjoint byte ranges inside shared 4k
# blocks: every write is a read-modify-write of the same blocks, so a lost
# range lock shows up as one writer's bytes overwritten with stale data.
# Writer i owns bytes [50 + 100 i, 150 + 100 i) of each block; one more
# writer owns [4050, 4146), straddling every block boundary.  Half of them
# use O_DIRECT.  After several rounds each writer's last pattern must be
# intact and the bytes nobody owns unchanged, in the mount and the image.
. "$(dirname "$0")/lib.sh"
requires_transport
requires python3

NW=8          # writers inside a block, plus the straddling one
NBLK=128      # blocks: 512 KiB at offset BASE
ROUNDS=4
BASE=$((3 << 20))
make_image "$T/img" 16M random
cp "$T/img" "$T/orig"

cat >"$T/ow.py" <<'EOF'
import os, random, sys
BLK = 4096

def rng(w, nw):
    """Byte range of writer w inside block b (relative to b*BLK)."""
    return (4050, 4146) if w == nw else (50 + 100 * w, 150 + 100 * w)

def pattern(w, r, b, n):
    return bytes(((w * 31 + r * 7 + b * 13 + k) % 251) for k in range(n))

def write(path, w, nw, nblk, rounds, base):
    flags = os.O_WRONLY | (os.O_DIRECT if w % 2 else 0)
    fd = os.open(path, flags)
    lo, hi = rng(w, nw)
    rnd = random.Random(w)
    for r in range(rounds):
        order = list(range(nblk - (1 if w == nw else 0)))
        rnd.shuffle(order)
        for b in order:
            data = pattern(w, r, b, hi - lo)
            n = os.pwrite(fd, data, base + b * BLK + lo)
            if n != len(data):
                sys.exit("writer %d: short write %d at block %d" % (w, n, b))
    os.close(fd)

def check(path, orig, nw, nblk, rounds, base):
    with open(path, 'rb') as f:
        f.seek(base)
        got = bytearray(f.read(nblk * BLK))
    with open(orig, 'rb') as f:
        f.seek(base)
        want = bytearray(f.read(nblk * BLK))
    for w in range(nw + 1):
        lo, hi = rng(w, nw)
        for b in range(nblk - (1 if w == nw else 0)):
            want[b * BLK + lo:b * BLK + hi] = pattern(w, rounds - 1, b, hi - lo)
    if got == want:
        return
    bad = [i for i in range(len(got)) if got[i] != want[i]]
    i = bad[0]
    b, o = divmod(i, BLK)
    owner = [w for w in range(nw + 1)
             if rng(w, nw)[0] <= o < rng(w, nw)[1] or
             (w == nw and o < 50 and b > 0)]
    sys.exit("%s: %d bytes differ; first at block %d byte %d (owner %s): "
             "got %02x want %02x" % (path, len(bad), b, o,
             owner or "nobody", got[i], want[i]))

if sys.argv[1] == 'write':
    write(sys.argv[2], *map(int, sys.argv[3:8]))
else:
    check(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8]))
EOF

start_rawvec "$T/img"
pids=()
for w in $(seq 0 $NW); do
	python3 "$T/ow.py" write "$MNT/disk" $w $NW $NBLK $ROUNDS $BASE &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || die "a writer failed (exit $?)"
done
log "writers done; rmw_writes=$(stat_field rmw_writes) range_lock_waits=$(stat_field range_lock_waits)"
python3 "$T/ow.py" check "$MNT/disk" "$T/orig" $NW $NBLK $ROUNDS $BASE ||
	die "bytes lost, read through the mount"
stop_rawvec
python3 "$T/ow.py" check "$T/img" "$T/orig" $NW $NBLK $ROUNDS $BASE ||
	die "bytes lost, in the image after unmount"
# Outside the region nothing changed.
cmp -n $BASE "$T/img" "$T/orig" >/dev/null || die "bytes before the region changed"
cmp -i $((BASE + NBLK * 4096)) "$T/img" "$T/orig" >/dev/null ||
	die "bytes after the region changed"
log "pass"
