#!/usr/bin/env python3
"""raid_ref: an independent reference model of rawvec's TARGET layouts and
of what Linux md holds on each member, for the e2e tests.  It shares no
code with rawvec: its own little parser for the expression, its own
mapping of logical bytes onto member bytes, its own parity.

Layouts (what the tests hold rawvec to):
  alignment           files: ALIGN (512; the test skips otherwise); a level:
                      its members' largest, and at least 4096 for raid5/6
  linear(m...)        members back to back, each rounded down to the
                      linear's alignment
  slice(m, offset=, size=)  bytes [offset, offset+size) of m (size default:
                      to the end of m)
  raid0(m..., chunk=) Linux md raid0 with one zone: array chunk k is chunk
                      k // n of member k % n; every member uses the smallest
                      member's size rounded down to whole chunks; default
                      chunk 512k
  raid1(m...)         every mirror holds the array at the same offsets;
                      size = smallest member rounded down to its alignment
  raid5(m..., chunk=) Linux md raid5, left-symmetric (md's default): stripe
  raid6(m..., chunk=) s is chunk s of every member; P on member
                      n-1 - s%n, raid6's Q on (P+1)%n, data chunk d on
                      (P+1+d)%n (raid5) or (P+2+d)%n (raid6); P = XOR,
                      Q = sum 2^d D_d over GF(2^8) (poly 0x11d); members
                      used like raid0's; default chunk 512k; the layer's
                      direct-I/O alignment is at least 4096
  raid10 (LEVEL only) raid0(raid1(m0, m1), raid1(m2, m3), ..., chunk=)

Sub-commands on an expression (t_raid_layouts.sh; run in the directory
holding the member images; pristine copies of the members live in ORIG,
default ./orig):
  init EXPR SEED NAME=SIZE...   create the member images with random
        bytes (raid1 mirrors made identical over the part in use, as after
        a resync; raid5/6 parity made consistent), copy them to ORIG, write
        the logical image to init.bin and print the array size
  size EXPR                     the array size
  boundaries EXPR               logical offsets where a write changes
        member or jumps on one (a selection when there are many)
  statoff EXPR LEN              an ALIGN-aligned offset for a LEN-byte
        write that crosses the first boundary (0 if none is reachable)
  plan EXPR STATS               check the stats tree (as stats) and print,
        for the shell to eval: MAXW (max_write), ALIGN (the disk's
        direct-I/O alignment: 4096 with raid5/6 in the tree, else the
        members'), FALIGN (the largest member file alignment), BOUNDS
        (boundaries, plus stripe boundaries of a raid5/6 at the top), OPS
        (the direct I/Os whose counter deltas statsdelta checks: one write
        across the first boundary; with a raid5/6 at the top, a
        full-stripe write, a write straddling stripes, a 4k write and a
        read across stripes instead), and STRIPE
  apply MODEL JOURNAL POOL      apply "OFF LEN POOLOFF" lines to MODEL
  check EXPR MODEL [STATS]      the member images must equal ORIG with the
        logical image MODEL written through the reference mapping; with
        STATS, also `after`
  stats EXPR STATS              the stats tree must have the layout's
        shape: kinds, names, sizes, chunk, member_size, alignment
  statsdelta EXPR S0 OP1 S1 [OP2 S2 ...]   the counters moved between
        snapshots exactly as the direct I/O OPi (W:OFF:LEN or R:OFF:LEN)
        must move them (raid5/6: each partial stripe may be done by
        read-modify-write or reconstruct-write, every combination is tried;
        parity_copy_bytes counts partial stripes' payload, and full
        stripes' payload or not)
  mirrorreads EXPR STATS        every raid1 mirror served reads
  noerrors STATS                no layer or member counted an I/O error
  after EXPR STATS              mirrorreads and noerrors, and every node
        is ok (none failed, no level degraded)

Sub-commands on one LEVEL (raid1, raid5, raid6, raid10) over member
images in expression order, data offset 0 unless --offset, no superblock
(t_raid_degraded/rebuild/scrub/mkfs/merge.sh, t_md_super.sh,
t_control_safety.sh):
  mdcheck LEVEL CHUNK MODEL MEMBER... [--skip I,J] [--offset BYTES]
        every member (except those skipped) must equal, over its part in
        use, what md holds for the logical image MODEL; the report names
        the first differing byte's array byte or parity chunk.  --offset:
        the data starts BYTES into each member (after an md superblock)
  locate LEVEL N CHUNK STRIPE ROLE  "MEMBER OFFSET" of role P, Q or D<d>
                                    in STRIPE (offset of its first byte)
  churn DISK MODEL STOPFILE SEED [LO HI]
        write random ranges (4k-aligned and not, 1 byte to 200 KB) inside
        [LO, HI) (default: all of MODEL) to DISK with pwrite, and the same
        bytes to the file MODEL, until STOPFILE exists (8 writes at least);
        prints the number of writes.  Exits 1 on a failed write.
  selftest                      Q against a byte-by-byte GF(2^8) multiply
"""
import itertools
import json
import os
import random
import shutil
import sys

ALIGN = 512
R56_ALIGN = 4096  # raid5/6 work in whole 4k columns (docs/layouts.md: Sizes and chunks)
DEFAULT_CHUNK = 512 * 1024
ORIG = os.environ.get("ORIG", "orig")
R56 = ("raid5", "raid6")


def die(msg):
    print("raid_ref: " + msg, file=sys.stderr)
    sys.exit(1)


def parse_size(s):
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    s = s.strip()
    if s and s[-1].lower() in mult:
        return int(s[:-1]) * mult[s[-1].lower()]
    return int(s)


# ---- expression -> tree ------------------------------------------------

class Node:
    def __init__(self, kind, kids=(), opts=None, path=None):
        self.kind = kind        # "file", "linear", "slice", "raid0", "raid1",
                                # "raid5", "raid6"
        self.kids = list(kids)
        self.opts = opts or {}
        self.path = path
        self.size = 0

    def __repr__(self):
        if self.kind == "file":
            return self.path
        return "%s(%s)" % (self.kind, ", ".join(map(repr, self.kids)))


def parse(expr):
    pos = 0

    def ws():
        nonlocal pos
        while pos < len(expr) and expr[pos] in " \t":
            pos += 1

    def node():
        nonlocal pos
        ws()
        start = pos
        while pos < len(expr) and expr[pos] not in ",()":
            pos += 1
        name = expr[start:pos].strip()
        if not name:
            die("parse: empty name at %d in %r" % (start, expr))
        if pos >= len(expr) or expr[pos] != "(":
            return Node("file", path=name)
        pos += 1
        kids, opts = [], {}
        while True:
            ws()
            j = pos
            while j < len(expr) and (expr[j].isalnum() or expr[j] == "_"):
                j += 1
            if j > pos and j < len(expr) and expr[j] == "=":
                e = j + 1
                while e < len(expr) and expr[e] not in ",() ":
                    e += 1
                opts[expr[pos:j]] = parse_size(expr[j + 1:e])
                pos = e
            else:
                kids.append(node())
            ws()
            if pos < len(expr) and expr[pos] == ",":
                pos += 1
                continue
            if pos < len(expr) and expr[pos] == ")":
                pos += 1
                return Node(name, kids, opts)
            die("parse: expected , or ) at %d in %r" % (pos, expr))

    root = node()
    ws()
    if pos != len(expr):
        die("parse: trailing text in %r" % expr)
    return root


def leaves(n):
    if n.kind == "file":
        return [n]
    return [l for k in n.kids for l in leaves(k)]


def nodes(n):
    yield n
    for k in n.kids:
        yield from nodes(k)


def size_tree(n, leaf_size):
    """Fill in n.size (and layout parameters) bottom-up."""
    if n.kind == "file":
        n.size = leaf_size(n.path)
        n.align = ALIGN
        return n.size
    sizes = [size_tree(k, leaf_size) for k in n.kids]
    n.align = max([ALIGN] + [k.align for k in n.kids])
    if n.kind in R56:
        n.align = max(n.align, R56_ALIGN)
    if n.kind == "linear":
        n.starts = [0]
        for s in sizes:
            n.starts.append(n.starts[-1] + s - s % n.align)
        n.size = n.starts[-1]
    elif n.kind == "slice":
        n.offset = n.opts.get("offset", 0)
        n.size = n.opts.get("size", sizes[0] - n.offset)
        assert n.offset + n.size <= sizes[0]
    elif n.kind == "raid0":
        n.chunk = n.opts.get("chunk", DEFAULT_CHUNK)
        m = min(sizes)
        n.msize = m - m % n.chunk
        n.size = n.msize * len(n.kids)
    elif n.kind == "raid1":
        m = min(sizes)
        n.msize = m - m % n.align
        n.size = n.msize
    elif n.kind in R56:
        n.chunk = n.opts.get("chunk", DEFAULT_CHUNK)
        n.npar = 1 if n.kind == "raid5" else 2
        n.ndata = len(n.kids) - n.npar
        assert n.ndata >= 2, "%s needs %d members" % (n.kind, n.npar + 2)
        m = min(sizes)
        n.msize = m - m % n.chunk
        n.stripes = n.msize // n.chunk
        n.swidth = n.chunk * n.ndata  # data bytes of one stripe
        n.size = n.stripes * n.swidth
    else:
        die("unknown kind " + n.kind)
    return n.size


# ---- raid5/6 -----------------------------------------------------------

def r56_slots(kind, nm, s):
    """Members of stripe @s of a @kind ("raid5", "raid6") of @nm members:
    [data 0, ..., data ndata-1, P(, Q)], from the left-symmetric rules in
    the module doc."""
    p = nm - 1 - s % nm
    if kind == "raid5":
        return [(p + 1 + d) % nm for d in range(nm - 1)] + [p]
    q = (p + 1) % nm
    return [(p + 2 + d) % nm for d in range(nm - 2)] + [p, q]


def gf_mul_byte(a, b):
    """a * b in GF(2^8), poly 0x11d, bit by bit (selftest's reference)."""
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11d
        b >>= 1
    return r


# GF(2^8), poly 0x11d: multiply every byte by 2 with one bytes.translate.
MUL2 = bytes(((x << 1) ^ (0x1d if x & 0x80 else 0)) & 0xff for x in range(256))


def xor(a, b):
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(
        len(a), "little")


def r56_parity(npar, data):
    """[P] or (@npar 2) [P, Q] of the data chunks @data (D_0 first)."""
    p = data[0]
    for d in data[1:]:
        p = xor(p, d)
    if npar == 1:
        return [p]
    q = data[-1]                       # Horner: ((D_k-1 * 2) ^ D_k-2) * 2 ...
    for d in reversed(data[:-1]):
        q = xor(q.translate(MUL2), d)
    return [p, q]


def r56_fix_stripe(n, s, bufs):
    """Recompute the parity of stripe @s from its data chunks."""
    c, slots = n.chunk, r56_slots(n.kind, len(n.kids), s)
    data = [read(n.kids[m], s * c, c, bufs) for m in slots[:n.ndata]]
    for m, blk in zip(slots[n.ndata:], r56_parity(n.npar, data)):
        write(n.kids[m], s * c, blk, bufs)


def pieces(n, off, length):
    """[(kid index, kid offset, bytes)] for a mapped level (not raid1)."""
    out = []
    assert 0 <= off and off + length <= n.size, (n, off, length, n.size)
    while length > 0:
        if n.kind == "raid0":
            c, k = n.chunk, off // n.chunk
            inside = off % c
            m, mpos, room = k % len(n.kids), (k // len(n.kids)) * c + inside, c - inside
        elif n.kind == "linear":
            m = max(i for i in range(len(n.kids)) if n.starts[i] <= off and
                    n.starts[i + 1] > off)
            mpos, room = off - n.starts[m], n.starts[m + 1] - off
        elif n.kind == "slice":
            m, mpos, room = 0, n.offset + off, n.size - off
        elif n.kind in R56:
            c, k = n.chunk, off // n.chunk
            s, inside = k // n.ndata, off % c
            m = r56_slots(n.kind, len(n.kids), s)[k % n.ndata]
            mpos, room = s * c + inside, c - inside
        else:
            raise AssertionError(n.kind)
        take = min(room, length)
        out.append((m, mpos, take))
        off += take
        length -= take
    return out


def write(n, off, data, bufs):
    """Write logical bytes @data at @off of node @n into leaf buffers."""
    if not len(data):
        return
    if n.kind == "file":
        bufs[n.path][off:off + len(data)] = data
    elif n.kind == "raid1":
        assert off + len(data) <= n.size
        for k in n.kids:
            write(k, off, data, bufs)
    else:
        done = 0
        for m, mpos, take in pieces(n, off, len(data)):
            write(n.kids[m], mpos, data[done:done + take], bufs)
            done += take
        if n.kind in R56:
            for s in range(off // n.swidth, (off + len(data) - 1) // n.swidth + 1):
                r56_fix_stripe(n, s, bufs)


def read(n, off, length, bufs):
    if n.kind == "file":
        return bytes(bufs[n.path][off:off + length])
    if n.kind == "raid1":
        return read(n.kids[0], off, length, bufs)
    return b"".join(read(n.kids[m], mpos, take, bufs)
                    for m, mpos, take in pieces(n, off, length))


def leaf_runs(n, off, length, logical):
    """[(leaf path, leaf offset, bytes, logical offset)]; mirror 0 only."""
    if n.kind == "file":
        return [(n.path, off, length, logical)]
    if n.kind == "raid1":
        return leaf_runs(n.kids[0], off, length, logical)
    out, done = [], 0
    for m, mpos, take in pieces(n, off, length):
        out += leaf_runs(n.kids[m], mpos, take, logical + done)
        done += take
    return out


def all_runs(n, off, length, logical):
    """Like leaf_runs, but through every mirror, and with the raid5/6
    parity of the stripes touched (its "logical" is a description)."""
    if n.kind == "file":
        return [(n.path, off, length, logical)]
    if n.kind == "raid1":
        return [r for k in n.kids for r in all_runs(k, off, length, logical)]
    out, done = [], 0
    for m, mpos, take in pieces(n, off, length):
        out += all_runs(n.kids[m], mpos, take, logical + done)
        done += take
    if n.kind in R56 and length:
        for s in range(off // n.swidth, (off + length - 1) // n.swidth + 1):
            for i, m in enumerate(r56_slots(n.kind, len(n.kids), s)[n.ndata:]):
                what = "%s of stripe %d of %r" % ("PQ"[i], s, n)
                out += [r[:3] + (what,) for r in
                        all_runs(n.kids[m], s * n.chunk, n.chunk, 0)]
    return out


def load(expr, from_dir=None):
    root = parse(expr)
    base = from_dir or "."
    size_tree(root, lambda p: os.path.getsize(os.path.join(base, p)))
    return root


def read_bufs(root, from_dir):
    return {l.path: bytearray(open(os.path.join(from_dir, l.path), "rb").read())
            for l in leaves(root)}


# ---- sub-commands ----------------------------------------------------------

def cmd_init(expr, seed, *specs):
    rnd = random.Random(int(seed))
    want = {}
    for s in specs:
        name, size = s.split("=", 1)
        want[name] = sum(parse_size(t) for t in size.split("+"))
    root = parse(expr)
    for l in leaves(root):
        if l.path not in want:
            die("init: no size given for " + l.path)
    size_tree(root, lambda p: want[p])
    bufs = {p: bytearray(rnd.randbytes(s)) for p, s in want.items()}
    # Mirrors in sync and parity consistent over what is in use, as after
    # a resync (top-down, so nested levels inherit their parent's content).
    for n in nodes(root):
        if n.kind == "raid1":
            data = read(n.kids[0], 0, n.msize, bufs)
            for k in n.kids[1:]:
                write(k, 0, data, bufs)
        elif n.kind in R56:
            write(n, 0, read(n, 0, n.size, bufs), bufs)
    os.makedirs(ORIG, exist_ok=True)
    for p, b in bufs.items():
        with open(p, "wb") as f:
            f.write(b)
        shutil.copyfile(p, os.path.join(ORIG, p))
    with open("init.bin", "wb") as f:
        f.write(read(root, 0, root.size, bufs))
    print(root.size)


def cmd_size(expr):
    print(load(expr, ORIG).size)


def boundary_list(root):
    runs = leaf_runs(root, 0, root.size, 0)
    return [r[3] for r in runs[1:]]


def top_r56(root):
    """The raid5/6 node that holds the array's first bytes at the same
    offsets (the root, or the first member of a linear, recursively)."""
    n = root
    while n.kind == "linear" and n.kids:
        n = n.kids[0]
    return n if n.kind in R56 else None


def select_bounds(root):
    b = boundary_list(root)
    if len(b) > 24:
        # Every member-to-member step of the first two stripes (wrap to
        # the next row included), the last ones, and a few in between;
        # with raid5/6 at the top, two of those in between are stripe
        # boundaries (where parity moves to another member).
        first = b[:2 * len(leaves(root)) + 2]
        last = b[-2:]
        rest = b[len(first):-2]
        rnd = random.Random(len(b))
        mid = rnd.sample(rest, min(6, len(rest)))
        r = top_r56(root)
        if r is not None:
            sb = [x for x in rest if x % r.swidth == 0 and x < r.size and x not in mid]
            mid += rnd.sample(sb, min(2, len(sb)))
        b = sorted(set(first + mid + last))
    return b


def cmd_boundaries(expr):
    print(" ".join(map(str, select_bounds(load(expr, ORIG)))))


def statoff(root, length, align):
    for b in boundary_list(root):
        off = max(0, b - length // 4)
        off -= off % align
        if off + length <= root.size and off < b < off + length:
            return off
    return 0


def has_r56(root):
    return any(n.kind in R56 for n in nodes(root))


def cmd_statoff(expr, length):
    root = load(expr, ORIG)
    print(statoff(root, int(length), R56_ALIGN if has_r56(root) else ALIGN))


def stat_nodes(st):
    yield st
    for m in st.get("members", []):
        yield from stat_nodes(m)


def cmd_plan(expr, stats):
    root = load(expr, ORIG)
    st = json.load(open(stats))
    errs = []
    walk(root, st["target"], "target", errs)
    if errs:
        die("stats: " + "; ".join(errs))
    maxw, align = st["max_write"], st["target"]["align"]
    falign = max(x["align"] for x in stat_nodes(st["target"]) if x.get("kind") == "file")
    length = min(maxw, 1 << 20, root.size - root.size % 4096)
    r = top_r56(root)
    stripe = 0
    if r is None:
        ops = ["W:%d:%d" % (statoff(root, length, align), length)]
    else:
        # At the raid5/6's own offsets (it starts the array):
        #   - whole stripes, from stripe 1 on: full-stripe writes only;
        #   - from the middle of stripe 1's first chunk on: a partial
        #     stripe at each end, whole ones between (if any);
        #   - 4k inside data chunk 0 of stripe 2: one partial stripe;
        #   - a read over the same range as the second (the mapped path).
        stripe, c = r.swidth, r.chunk
        full = length - length % stripe
        if not full or r.stripes < 4 or 2 * stripe > r.size - length:
            die("plan: %r: stripe %d, %d stripes, writes of %d bytes: make the members "
                "bigger or the chunk smaller" % (r, stripe, r.stripes, length))
        mid = stripe + c // 2 - (c // 2) % align
        ops = ["W:%d:%d" % (stripe, full), "W:%d:%d" % (mid, length),
               "W:%d:4096" % (2 * stripe + 4096), "R:%d:%d" % (mid, length)]
    print("MAXW=%d ALIGN=%d FALIGN=%d STRIPE=%d" % (maxw, align, falign, stripe))
    print("BOUNDS='%s'" % " ".join(map(str, select_bounds(root))))
    print("OPS='%s'" % " ".join(ops))


def cmd_apply(model, journal, pool):
    pool = open(pool, "rb").read()
    with open(model, "r+b") as m:
        for line in open(journal):
            if not line.strip():
                continue
            off, length, poff = map(int, line.split())
            m.seek(off)
            m.write(pool[poff:poff + length])


def first_diff(got, want):
    first = next(i for i in range(0, len(got), 4096)
                 if got[i:i + 4096] != want[i:i + 4096])
    return first + next(i for i in range(4096) if got[first + i] != want[first + i])


def whose(runs, path, off):
    """What byte @off of leaf @path holds, from all_runs() @runs: a parity
    chunk's description, "array byte N", or None outside the part in use."""
    owner = [r for r in runs if r[0] == path and r[1] <= off < r[1] + r[2]]
    if not owner:
        return None
    if isinstance(owner[0][3], str):
        return owner[0][3]
    return "array byte %d" % (owner[0][3] + off - owner[0][1])


def cmd_check(expr, model, stats=None):
    root = load(expr, ORIG)
    data = open(model, "rb").read()
    if len(data) != root.size:
        die("check: model is %d bytes, the array %d" % (len(data), root.size))
    bufs = read_bufs(root, ORIG)
    write(root, 0, memoryview(data), bufs)
    got_bufs = read_bufs(root, ".")
    orig = runs = None
    bad = 0
    for l in leaves(root):
        got = got_bufs[l.path]
        want = bufs[l.path]
        if len(got) != len(want):
            print("%s: size %d, want %d (members must keep their size)" %
                  (l.path, len(got), len(want)))
            bad += 1
            continue
        if got == want:
            continue
        bad += 1
        if runs is None:
            orig = read_bufs(root, ORIG)
            runs = all_runs(root, 0, root.size, 0)
        # First difference, in blocks, and what the model says belongs there.
        first = first_diff(got, want)
        ndiff = sum(1 for i in range(0, len(got), 512)
                    if got[i:i + 512] != want[i:i + 512])
        where = whose(runs, l.path, first)
        if where is None:
            where = "outside the part in use (must keep its old bytes)"
            if got[first:first + 64] == orig[l.path][first:first + 64]:
                where += "; it does"
        elif where.startswith("array byte"):
            src = data.find(got[first:first + 64]) if first + 64 <= len(got) else -1
            if src >= 0:
                where += "; holds array byte %d's data instead" % src
        print("%s: %d of %d 512-byte blocks differ; first at byte %d (%s)" %
              (l.path, ndiff, len(got) // 512, first, where))
    if bad:
        die("check: %d member image(s) differ from the reference mapping of %s"
            % (bad, expr))
    if stats:
        after(root, stats)


def walk(n, s, path, errs):
    kind = {"file": "file"}.get(n.kind, n.kind)
    if s.get("kind") != kind:
        errs.append("%s: kind %r, want %r" % (path, s.get("kind"), kind))
        return
    if n.kind == "file" and s.get("name") != n.path:
        errs.append("%s: name %r, want %r" % (path, s.get("name"), n.path))
    if s.get("size") != n.size:
        errs.append("%s: size %r, want %d" % (path, s.get("size"), n.size))
    if n.kind in ("raid0",) + R56:
        if s.get("chunk") != n.chunk:
            errs.append("%s: chunk %r, want %d" % (path, s.get("chunk"), n.chunk))
        if s.get("member_size") != n.msize:
            errs.append("%s: member_size %r, want %d" % (path, s.get("member_size"), n.msize))
    if n.kind != "file":
        ms = s.get("members", [])
        if len(ms) != len(n.kids):
            errs.append("%s: %d members, want %d" % (path, len(ms), len(n.kids)))
            return
        # A layer takes its members' strictest alignment; raid5/6 at
        # least 4096.
        align = max([ALIGN] + [m.get("align", 0) for m in ms])
        if n.kind in R56:
            align = max(align, R56_ALIGN)
        if s.get("align") != align:
            errs.append("%s: align %r, want %d" % (path, s.get("align"), align))
        for i, (k, m) in enumerate(zip(n.kids, ms)):
            walk(k, m, "%s.members[%d]" % (path, i), errs)


def cmd_stats(expr, stats):
    root = load(expr, ORIG)
    s = json.load(open(stats))
    errs = []
    walk(root, s["target"], "target", errs)
    if errs:
        die("stats: " + "; ".join(errs))


# ---- expected counter deltas of one direct I/O ----------------------------

BASIC = ("writes", "write_bytes", "reads", "read_bytes")
MAPPED = ("splits", "pieces", "merged")
R56_COUNTERS = ("full_stripe_writes", "rmw_writes", "rcw_writes", "parity_reads",
                "parity_copy_bytes", "degraded_ops", "stripe_waits")


class Expect:
    """Expected deltas per stats path; @modes says how each partial raid5/6
    stripe is written ("rmw" or "rcw"), in the order they come."""

    def __init__(self, modes=()):
        self.modes = list(modes)
        self.picked = []
        self.d = {}
        self.open = set()  # (path, counter) left open
        self.atleast = {}  # (path, counter): a smaller delta that is fine too

    def add(self, path, key, v):
        dd = self.d.setdefault(path, {})
        dd[key] = dd.get(key, 0) + v

    def mode(self):
        i = len(self.picked)
        self.picked.append(self.modes[i] if i < len(self.modes) else "rcw")
        return self.picked[-1]


def kid_path(path, i):
    return "%s.members[%d]" % (path, i)


def zero_tree(n, path, e):
    for k in BASIC + (MAPPED if n.kind != "file" else ()) + (
            R56_COUNTERS if n.kind in R56 else ()):
        e.add(path, k, 0)
    for i, k in enumerate(n.kids):
        zero_tree(k, kid_path(path, i), e)


def account(n, op, off, length, path, e):
    """One request of @op ("R" or "W") of @length bytes at @off of @n."""
    e.add(path, "writes" if op == "W" else "reads", 1)
    e.add(path, "write_bytes" if op == "W" else "read_bytes", length)
    if n.kind == "file":
        return
    if n.kind == "raid1":
        if op == "R":
            die("statsdelta: reads through raid1 go to one mirror in turn: not modelled")
        # A mirror write is copied, not mapped: no pieces.  (Whether it
        # counts as a split is left open.)
        e.open.add((path, "splits"))
        for i, k in enumerate(n.kids):
            account(k, op, off, length, kid_path(path, i), e)
        return
    if n.kind in R56 and op == "W":
        # Stripe operations, not the map: no pieces.  (Whether a write
        # cut into stripes counts as a split is left open.)  The payload
        # of partial stripes is copied for parity (parity_copy_bytes); a
        # full stripe's parity is computed straight from the request's
        # segments since a10d129, which may count or not: its bytes are
        # the margin between the least and the most accepted.
        e.open.add((path, "splits"))
        e.add(path, "parity_copy_bytes", length)
        lo_key = (path, "parity_copy_bytes")
        e.atleast[lo_key] = e.atleast.get(lo_key, 0) + length
        # Sharded over loops (mark_groups), each group of stripes is one
        # loop's: the request is cut at group boundaries first.
        g = getattr(n, "group", 0) or off + length
        for part in range(off // g, (off + length - 1) // g + 1):
            r56_part(n, max(off, part * g), min(off + length, (part + 1) * g),
                     path, e)
        return
    # The map: pieces; a piece that continues its member's open run joins
    # it (merged), else it opens a new run; one member I/O per run.
    runs, open_run = [], {}
    ps = pieces(n, off, length)
    for m, mpos, take in ps:
        r = open_run.get(m)
        if r is not None and runs[r][1] + runs[r][2] == mpos:
            runs[r][2] += take
            e.add(path, "merged", 1)
        else:
            open_run[m] = len(runs)
            runs.append([m, mpos, take])
    e.add(path, "pieces", len(ps))
    e.add(path, "splits", 1 if len(runs) > 1 else 0)
    for m, mpos, take in runs:
        account(n.kids[m], op, mpos, take, kid_path(path, m), e)


R56_BATCH_BYTES = 128 << 10  # raid56.c's R56_BATCH_BYTES


def r56_batch_max(n):
    return R56_BATCH_BYTES // n.chunk if n.chunk < R56_BATCH_BYTES else 1


def r56_part(n, pos, end, path, e):
    """Bytes [pos, end) of a raid5/6 write, all in one group: batches of
    whole stripes and single-stripe operations."""
    while pos < end:
        s = pos // n.swidth
        lo, hi = pos - s * n.swidth, min(n.swidth, end - s * n.swidth)
        k = min((end - pos) // n.swidth if lo == 0 else 0, r56_batch_max(n))
        if k > 1:
            r56_batch(n, s, k, path, e)
            pos = (s + k) * n.swidth
            continue
        r56_write(n, s, lo, hi, path, e)
        pos = s * n.swidth + hi


def mark_groups(n, st):
    """A raid5/6 whose stats say its stripes run on several loops cuts
    requests at groups of at least 1 MiB of data in whole batches
    (raid56.c's r56_share)."""
    if n.kind in R56 and st.get("stripe_loops", 1) > 1:
        bm = r56_batch_max(n)
        stripes = -(-(1 << 20) // n.swidth)
        n.group = -(-stripes // bm) * bm * n.swidth
    for i, k in enumerate(n.kids):
        mark_groups(k, st["members"][i])


def r56_batch(n, s, k, path, e):
    """@k whole stripes from @s, written as one op: each member's chunks of
    them lie back to back, so each member gets one write of k chunks."""
    e.add(path, "full_stripe_writes", k)
    e.atleast[(path, "parity_copy_bytes")] -= k * n.swidth
    for m, kid in enumerate(n.kids):
        account(kid, "W", s * n.chunk, k * n.chunk, kid_path(path, m), e)


def r56_write(n, s, lo, hi, path, e):
    """One stripe operation: data bytes [lo, hi) of stripe @s.  It works on
    the column range [c0, c1) the write touches in any data chunk: a full
    stripe reads nothing; read-modify-write reads the old data it replaces
    and the parity columns; reconstruct-write reads the columns of the data
    chunks it does not wholly replace.  Then the new data goes to its
    members and the parity columns to theirs."""
    c, slots, base = n.chunk, r56_slots(n.kind, len(n.kids), s), s * n.chunk
    touched = []
    for j in range(n.ndata):
        a, b = max(lo, j * c) - j * c, min(hi, (j + 1) * c) - j * c
        if a < b:
            touched.append((j, a, b))
    c0, c1 = min(t[1] for t in touched), max(t[2] for t in touched)
    rd = lambda m, a, ln: account(n.kids[m], "R", base + a, ln, kid_path(path, m), e)
    if lo == 0 and hi == n.swidth:
        e.add(path, "full_stripe_writes", 1)
        e.atleast[(path, "parity_copy_bytes")] -= hi - lo
    elif e.mode() == "rcw":
        e.add(path, "rcw_writes", 1)
        whole = {j for j, a, b in touched if (a, b) == (c0, c1)}
        for j in range(n.ndata):
            if j not in whole:
                rd(slots[j], c0, c1 - c0)
                e.add(path, "parity_reads", 1)
    else:
        e.add(path, "rmw_writes", 1)
        for j, a, b in touched:
            rd(slots[j], a, b - a)
            e.add(path, "parity_reads", 1)
        for m in slots[n.ndata:]:
            rd(m, c0, c1 - c0)
            e.add(path, "parity_reads", 1)
    for j, a, b in touched:
        account(n.kids[slots[j]], "W", base + a, b - a, kid_path(path, slots[j]), e)
    for m in slots[n.ndata:]:
        account(n.kids[m], "W", base + c0, c1 - c0, kid_path(path, m), e)


def lookup(s, path):
    for part in path.split(".")[1:]:
        name, idx = part[:-1].split("[")
        s = s[name][int(idx)]
    return s


def expect_io(root, op, off, length, modes):
    e = Expect(modes)
    zero_tree(root, "target", e)
    account(root, op, off, length, "target", e)
    return e


def delta_errors(e, b, a):
    errs = []
    for path, want in e.d.items():
        sb, sa = lookup(b, path), lookup(a, path)
        for k, v in want.items():
            if (path, k) in e.open:
                continue
            got = sa.get(k, 0) - sb.get(k, 0)
            least = e.atleast.get((path, k), v)
            if not least <= got <= v:
                errs.append("%s (%s) %s +%d, want +%d%s" % (
                    path, sa.get("name"), k, got, v,
                    "" if least == v else " (or down to +%d)" % least))
    return errs


def cmd_statsdelta(expr, first, *rest):
    root = load(expr, ORIG)
    if len(rest) % 2:
        die("statsdelta: EXPR S0 OP1 S1 [OP2 S2 ...]")
    snaps = [first] + list(rest[1::2])
    out = []
    for i, opspec in enumerate(rest[0::2]):
        op, off, length = opspec.split(":")
        off, length = int(off), int(length)
        b = json.load(open(snaps[i]))["target"]
        a = json.load(open(snaps[i + 1]))["target"]
        mark_groups(root, b)
        # How many partial raid5/6 stripes: try every way of writing them.
        k = len(expect_io(root, op, off, length, ()).picked)
        if k > 10:
            die("statsdelta: %s: %d partial stripes, too many to try" % (opspec, k))
        best = None
        for modes in itertools.product(("rmw", "rcw"), repeat=k):
            e = expect_io(root, op, off, length, modes)
            errs = delta_errors(e, b, a)
            if not errs:
                break
            if best is None or len(errs) < len(best[1]):
                best = (modes, errs)
        else:
            die("one %d-byte %s at %d: %s%s" % (
                length, "write" if op == "W" else "read", off,
                "; ".join(best[1]),
                " (closest: partial stripes by %s)" % ",".join(best[0]) if k else ""))
        top = e.d["target"]
        msg = "%s pieces +%s merged +%s splits +%s" % (
            opspec, top.get("pieces", "-"), top.get("merged", "-"),
            "?" if ("target", "splits") in e.open else top.get("splits", "-"))
        for path, d in e.d.items():
            if "full_stripe_writes" in d and (d["full_stripe_writes"] or d["rmw_writes"]
                                              or d["rcw_writes"]):
                msg += " | %s: full %d rmw %d rcw %d parity_reads %d" % (
                    path, d["full_stripe_writes"], d["rmw_writes"], d["rcw_writes"],
                    d["parity_reads"])
        out.append(msg)
    print("\n".join(out))


def mirrorreads(root, stats):
    s = json.load(open(stats))["target"]
    errs = []

    def visit(n, st, path):
        if n.kind == "raid1":
            for i, m in enumerate(st["members"]):
                if not m.get("reads"):
                    errs.append("%s.members[%d] (%s) served no reads" %
                                (path, i, m.get("name")))
        for i, k in enumerate(n.kids):
            visit(k, st["members"][i], "%s.members[%d]" % (path, i))

    visit(root, s, "target")
    if errs:
        die("raid1 reads: " + "; ".join(errs))


def cmd_mirrorreads(expr, stats):
    mirrorreads(load(expr, ORIG), stats)


def healthy(stats):
    """Every node ok, no redundant level degraded."""
    errs = []

    def visit(st, path):
        if st.get("state") != "ok" or st.get("degraded"):
            errs.append("%s (%s) state %r degraded %r" % (path, st.get("name"),
                        st.get("state"), st.get("degraded")))
        for i, m in enumerate(st.get("members", [])):
            visit(m, "%s.members[%d]" % (path, i))

    visit(json.load(open(stats))["target"], "target")
    if errs:
        die("members not ok: " + "; ".join(errs))


def after(root, stats):
    mirrorreads(root, stats)
    cmd_noerrors(stats)
    healthy(stats)


def cmd_after(expr, stats):
    after(load(expr, ORIG), stats)


def cmd_noerrors(stats):
    errs = []

    def visit(st, path):
        if st.get("errors"):
            errs.append("%s (%s) errors=%d" % (path, st.get("name"), st["errors"]))
        for i, m in enumerate(st.get("members", [])):
            visit(m, "%s.members[%d]" % (path, i))

    visit(json.load(open(stats))["target"], "target")
    if errs:
        die("I/O errors: " + "; ".join(errs))


# ---- one md level over member images -------------------------------------

def level_tree(level, chunk, paths):
    """The tree of @level over the image files @paths (raid10: raid0 over
    raid1 pairs), as an expression of it would parse."""
    files = [Node("file", path=p) for p in paths]
    if level == "raid1":
        return Node("raid1", files)
    if level in R56:
        return Node(level, files, {"chunk": chunk})
    if level == "raid10":
        if len(files) % 2:
            die("raid10 wants pairs")
        pairs = [Node("raid1", files[i:i + 2]) for i in range(0, len(files), 2)]
        return Node("raid0", pairs, {"chunk": chunk})
    die("unknown level %s (raid1, raid5, raid6, raid10)" % level)


def cmd_mdcheck(level, chunk, model_path, *members):
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
    root = level_tree(level, int(chunk), members)
    got = {}
    for p in members:
        with open(p, "rb") as f:
            f.seek(offset)
            got[p] = bytearray(f.read())
    size_tree(root, lambda p: len(got[p]))
    model = open(model_path, "rb").read()
    if len(model) != root.size:
        die("model is %d bytes, %s of %s holds %d" % (
            len(model), level, " x ".join(str(len(got[p])) for p in members),
            root.size))
    # What md holds: the members as they are, the part in use rewritten
    # with the model (so only that part is compared).
    want = {p: bytearray(b) for p, b in got.items()}
    write(root, 0, memoryview(model), want)
    bad = 0
    runs = None
    for m, path in enumerate(members):
        if m in skip or got[path] == want[path]:
            continue
        bad += 1
        if runs is None:
            runs = all_runs(root, 0, root.size, 0)
        g, w = got[path], want[path]
        first = first_diff(g, w)
        nsect = sum(1 for i in range(0, len(g), 512) if g[i:i + 512] != w[i:i + 512])
        print("member %d (%s): %d of %d sectors differ; first at byte %d (%s): "
              "got %02x, want %02x" % (m, path, nsect, len(g) // 512, first,
                                       whose(runs, path, first), g[first], w[first]))
    if bad:
        die("%d member(s) differ from md's %s layout of %s" % (bad, level, model_path))
    print("%s: %d member(s) match md's layout" % (level, len(members) - len(skip)))


def cmd_locate(level, n, chunk, stripe, role):
    n, chunk, s = int(n), int(chunk), int(stripe)
    if level not in R56:
        die("locate: %s has no parity" % level)
    slots = r56_slots(level, n, s)
    ndata = n - (1 if level == "raid5" else 2)
    if role == "P":
        i = ndata
    elif role == "Q" and level == "raid6":
        i = ndata + 1
    elif role[:1] == "D" and role[1:].isdigit() and int(role[1:]) < ndata:
        i = int(role[1:])
    else:
        die("no role %s in %s stripe %d" % (role, level, s))
    print(slots[i], s * chunk)


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


def cmd_selftest():
    rnd = random.Random(7)
    ds = [rnd.randbytes(64) for _ in range(7)]
    got = r56_parity(2, ds)[1]
    want = bytearray(64)
    for d, blk in enumerate(ds):
        g = 1
        for _ in range(d):
            g = gf_mul_byte(g, 2)
        for i in range(64):
            want[i] ^= gf_mul_byte(blk[i], g)
    if got != bytes(want):
        die("selftest: Q differs from the byte-by-byte Q")
    print("selftest ok")


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    cmds = {"init": cmd_init, "size": cmd_size, "boundaries": cmd_boundaries,
            "statoff": cmd_statoff, "plan": cmd_plan, "apply": cmd_apply,
            "check": cmd_check, "stats": cmd_stats, "statsdelta": cmd_statsdelta,
            "mirrorreads": cmd_mirrorreads, "noerrors": cmd_noerrors, "after": cmd_after,
            "mdcheck": cmd_mdcheck, "locate": cmd_locate, "churn": cmd_churn,
            "selftest": cmd_selftest}
    if sys.argv[1] not in cmds:
        die("unknown command " + sys.argv[1])
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
