#!/usr/bin/env python3
"""raid_md_ref: what Linux md holds on each member for a given logical
image, written from md's layout rules alone (it shares no code with
rawvec), for t_raid_degraded/rebuild/scrub/mkfs.sh.

Levels (members in expression order, data offset 0, no superblock):
  raid1    every mirror holds the logical image
  raid5    left-symmetric: stripe s (one chunk per member) has P on member
           (n-1) - s%n and data chunk d on member (P+1+d) % n; P = XOR
  raid6    P on member n-1 - s%n, Q on (P+1) % n, data chunk d on
           (P+2+d) % n; Q = sum 2^d * D_d over GF(2^8), poly 0x11d
  raid10   raid0(raid1(m0, m1), raid1(m2, m3), ..., chunk): array chunk k
           is chunk k // pairs of pair k % pairs, both mirrors alike
Member offset of stripe s is s * chunk; a member's part in use is the
smallest member rounded down to whole chunks (raid1: to 512 bytes).

Sub-commands:
  selftest                          the GF(2^8) packed arithmetic against a
                                    byte-by-byte table implementation
  check LEVEL CHUNK MODEL MEMBER... [--skip I,J] [--offset BYTES]
        every member (except those skipped) must equal, over its part in
        use, what md holds for the logical image MODEL; the report names
        the first differing byte's stripe and role.  --offset: the data
        starts BYTES into each member (after an md superblock)
  locate LEVEL N CHUNK STRIPE ROLE  "MEMBER OFFSET" of role P, Q or D<d>
                                    in STRIPE (offset of its first byte)
  churn DISK MODEL STOPFILE SEED [LO HI]
        write random ranges (4k-aligned and not, 1 byte to 200 KB) inside
        [LO, HI) (default: all of MODEL) to DISK with pwrite, and the same
        bytes to the file MODEL, until STOPFILE exists (8 writes at least);
        prints the number of writes.  Exits 1 on a failed write.
"""
import os
import random
import sys


def die(msg):
    print("raid_md_ref: " + msg, file=sys.stderr)
    sys.exit(1)


# ---- GF(2^8), poly 0x11d ---------------------------------------------------

def gf_mul_byte(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11d
        b >>= 1
    return r


class Packed:
    """Chunks as little-endian Python ints: XOR is ^, and multiply by 2
    in every byte lane at once is a shift, a mask and a reduction."""

    def __init__(self, nbytes):
        self.n = nbytes
        self.ones = int.from_bytes(b"\x01" * nbytes, "little")
        self.fe = self.ones * 0xFE

    def mul2(self, x):
        hi = (x >> 7) & self.ones
        return ((x << 1) & self.fe) ^ (hi * 0x1D)

    def q(self, data):
        """Q = sum 2^d D_d by Horner: (((D_{k-1})*2 ^ D_{k-2})*2 ...) ^ D_0."""
        acc = 0
        for x in reversed(data):
            acc = self.mul2(acc) ^ x
        return acc


def cmd_selftest():
    rnd = random.Random(7)
    pk = Packed(64)
    ds = [bytes(rnd.randrange(256) for _ in range(64)) for _ in range(7)]
    got = pk.q([int.from_bytes(d, "little") for d in ds]).to_bytes(64, "little")
    want = bytearray(64)
    for d, blk in enumerate(ds):
        g = 1
        for _ in range(d):
            g = gf_mul_byte(g, 2)
        for i in range(64):
            want[i] ^= gf_mul_byte(blk[i], g)
    if got != bytes(want):
        die("selftest: packed Q differs from the table Q")
    print("selftest ok")


# ---- layouts ---------------------------------------------------------------

def r56_roles(level, n, s):
    """{member: role} for stripe s; roles 'P', 'Q', ('D', d)."""
    if level == "raid5":
        p = (n - 1) - s % n
        roles = {p: "P"}
        for d in range(n - 1):
            roles[(p + 1 + d) % n] = ("D", d)
    else:
        p = n - 1 - s % n
        q = (p + 1) % n
        roles = {p: "P", q: "Q"}
        for d in range(n - 2):
            roles[(p + 2 + d) % n] = ("D", d)
    return roles


def expected(level, chunk, model, sizes):
    """Expected member contents over the part in use, and a function
    naming where member byte @off of member @m belongs."""
    n = len(sizes)
    if level == "raid1":
        msize = min(sizes) - min(sizes) % 512
        if len(model) != msize:
            die("model is %d bytes, raid1 of %d-byte members holds %d" %
                (len(model), min(sizes), msize))
        return [model] * n, lambda m, off: "array byte %d" % off
    msize = min(sizes) - min(sizes) % chunk
    stripes = msize // chunk
    if level == "raid10":
        if n % 2:
            die("raid10 wants pairs")
        pairs = n // 2
        if len(model) != msize * pairs:
            die("model is %d bytes, want %d" % (len(model), msize * pairs))
        outs = [bytearray(msize) for _ in range(pairs)]
        for k in range(stripes * pairs):
            outs[k % pairs][(k // pairs) * chunk:(k // pairs + 1) * chunk] = \
                model[k * chunk:(k + 1) * chunk]
        mem = [bytes(outs[i // 2]) for i in range(n)]

        def where(m, off):
            k = (off // chunk) * pairs + m // 2
            return "array byte %d (chunk %d)" % (k * chunk + off % chunk, k)
        return mem, where
    npar = 1 if level == "raid5" else 2
    ndata = n - npar
    if len(model) != msize * ndata:
        die("model is %d bytes, %s of %d x %d holds %d" %
            (len(model), level, n, msize, msize * ndata))
    pk = Packed(chunk)
    mem = [bytearray(msize) for _ in range(n)]
    for s in range(stripes):
        roles = r56_roles(level, n, s)
        base = s * ndata * chunk
        data = [model[base + d * chunk: base + (d + 1) * chunk] for d in range(ndata)]
        ints = [int.from_bytes(x, "little") for x in data]
        p = 0
        for x in ints:
            p ^= x
        for m, role in roles.items():
            if role == "P":
                blk = p.to_bytes(chunk, "little")
            elif role == "Q":
                blk = pk.q(ints).to_bytes(chunk, "little")
            else:
                blk = data[role[1]]
            mem[m][s * chunk:(s + 1) * chunk] = blk

    def where(m, off):
        s = off // chunk
        role = r56_roles(level, n, s)[m]
        if role in ("P", "Q"):
            return "stripe %d, %s chunk" % (s, role)
        d = role[1]
        return "stripe %d, data chunk %d = array byte %d" % (
            s, d, (s * ndata + d) * chunk + off % chunk)
    return [bytes(x) for x in mem], where


def cmd_check(level, chunk, model_path, *members):
    skip = set()
    offset = 0
    members = list(members)
    if "--skip" in members:
        i = members.index("--skip")
        skip = {int(x) for x in members[i + 1].split(",") if x}
        del members[i:i + 2]
    if "--offset" in members:
        i = members.index("--offset")
        offset = int(members[i + 1])
        del members[i:i + 2]
    chunk = int(chunk)
    model = open(model_path, "rb").read()
    sizes = [os.path.getsize(p) - offset for p in members]
    mem, where = expected(level, chunk, model, sizes)
    bad = 0
    for m, path in enumerate(members):
        if m in skip:
            continue
        want = mem[m]
        with open(path, "rb") as f:
            f.seek(offset)
            got = f.read(len(want))
        if got == want:
            continue
        bad += 1
        if len(got) != len(want):
            print("member %d (%s): %d bytes, want at least %d" %
                  (m, path, len(got), len(want)))
            continue
        first = next(i for i in range(0, len(got), 4096)
                     if got[i:i + 4096] != want[i:i + 4096])
        first += next(i for i in range(4096) if got[first + i] != want[first + i])
        nsect = sum(1 for i in range(0, len(got), 512)
                    if got[i:i + 512] != want[i:i + 512])
        print("member %d (%s): %d of %d sectors differ; first at byte %d (%s): "
              "got %02x, want %02x" % (m, path, nsect, len(got) // 512, first,
                                       where(m, first), got[first], want[first]))
    if bad:
        die("%d member(s) differ from md's %s layout of %s" % (bad, level, model_path))
    print("%s: %d member(s) match md's layout" % (level, len(members) - len(skip)))


def cmd_locate(level, n, chunk, stripe, role):
    n, chunk, s = int(n), int(chunk), int(stripe)
    want = role if role in ("P", "Q") else ("D", int(role[1:]))
    for m, r in r56_roles(level, n, s).items():
        if r == want:
            print(m, s * chunk)
            return
    die("no role %s in %s stripe %d" % (role, level, s))


def cmd_churn(disk, model, stopfile, seed, lo=0, hi=None):
    rnd = random.Random(int(seed))
    fd = os.open(disk, os.O_WRONLY)
    md = os.open(model, os.O_WRONLY)
    lo = int(lo)
    hi = int(hi) if hi else os.path.getsize(model)
    assert lo % 4096 == 0 and hi - lo >= 1 << 20
    n = 0
    while not os.path.exists(stopfile) or n < 8:
        if rnd.random() < 0.5:
            length = rnd.choice((4096, 8192, 65536, 131072, 4096 * rnd.randint(1, 48)))
            off = rnd.randrange(lo, hi - length + 1) & ~4095
        else:
            length = rnd.randint(1, 200000)
            off = rnd.randrange(lo, hi - length + 1)
        buf = rnd.randbytes(length)
        try:
            done = os.pwrite(fd, buf, off)
        except OSError as e:
            die("churn: write of %d bytes at %d: %s" % (length, off, e))
        if done != length:
            die("churn: write of %d bytes at %d wrote %d" % (length, off, done))
        os.pwrite(md, buf, off)
        n += 1
    os.close(fd)
    os.close(md)
    print(n)


def main():
    cmds = {"selftest": cmd_selftest, "check": cmd_check, "locate": cmd_locate,
            "churn": cmd_churn}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        die(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
