#!/usr/bin/env python3
"""raid_ref: an independent reference model of rawvec's TARGET layouts, for
t_raid_layouts.sh.  It shares no code with rawvec: its own little parser
for the expression, its own mapping of logical bytes onto member bytes.

Layouts (what the test holds rawvec to):
  linear(m...)        members back to back, each rounded down to ALIGN
  slice(m, offset=, size=)  bytes [offset, offset+size) of m (size default:
                      to the end of m)
  raid0(m..., chunk=) Linux md raid0 with one zone: array chunk k is chunk
                      k // n of member k % n; every member uses the smallest
                      member's size rounded down to whole chunks; default
                      chunk 512k
  raid1(m...)         every mirror holds the array at the same offsets;
                      size = smallest member rounded down to ALIGN

Sub-commands (run in the directory holding the member images; pristine
copies of the members live in ORIG, default ./orig):
  init EXPR SEED NAME=SIZE...   create the member images with random
        bytes (raid1 mirrors made identical over the part in use, as after
        a resync), copy them to ORIG, write the logical image to init.bin
        and print the array size
  size EXPR                     the array size
  boundaries EXPR               logical offsets where a write changes
        member or jumps on one (a selection when there are many)
  statoff EXPR LEN              a 512-aligned offset for a LEN-byte write
        that crosses the first boundary (0 if none is reachable)
  apply MODEL JOURNAL POOL      apply "OFF LEN POOLOFF" lines to MODEL
  check EXPR MODEL              the member images must equal ORIG with the
        logical image MODEL written through the reference mapping
  stats EXPR STATS              the stats tree must have the layout's
        shape: kinds, names, sizes, raid0 chunk and member_size
  statsdelta EXPR OFF LEN BEFORE AFTER   the counters moved exactly as one
        LEN-byte write at OFF must move them
  mirrorreads EXPR STATS        every raid1 mirror served reads
  noerrors STATS                no layer or member counted an I/O error
  after EXPR STATS              mirrorreads and noerrors
"""
import json
import os
import random
import shutil
import sys

ALIGN = 512
DEFAULT_CHUNK = 512 * 1024
ORIG = os.environ.get("ORIG", "orig")


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
        self.kind = kind        # "file", "linear", "slice", "raid0", "raid1"
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
        return n.size
    sizes = [size_tree(k, leaf_size) for k in n.kids]
    if n.kind == "linear":
        n.starts = [0]
        for s in sizes:
            n.starts.append(n.starts[-1] + s - s % ALIGN)
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
        n.msize = m - m % ALIGN
        n.size = n.msize
    else:
        die("unknown kind " + n.kind)
    return n.size


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
    """Like leaf_runs, but through every mirror."""
    if n.kind == "file":
        return [(n.path, off, length, logical)]
    if n.kind == "raid1":
        return [r for k in n.kids for r in all_runs(k, off, length, logical)]
    out, done = [], 0
    for m, mpos, take in pieces(n, off, length):
        out += all_runs(n.kids[m], mpos, take, logical + done)
        done += take
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
    # Mirrors in sync over what is in use (top-down, so nested mirrors
    # inherit their parent's content).
    for n in nodes(root):
        if n.kind == "raid1":
            data = read(n.kids[0], 0, n.msize, bufs)
            for k in n.kids[1:]:
                write(k, 0, data, bufs)
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


def cmd_boundaries(expr):
    root = load(expr, ORIG)
    b = boundary_list(root)
    if len(b) > 24:
        # Every member-to-member step of the first two stripes (wrap to
        # the next row included), the last ones, and a few in between.
        first = b[:2 * len(leaves(root)) + 2]
        last = b[-2:]
        rest = b[len(first):-2]
        mid = random.Random(len(b)).sample(rest, min(6, len(rest)))
        b = sorted(set(first + mid + last))
    print(" ".join(map(str, b)))


def cmd_statoff(expr, length):
    root = load(expr, ORIG)
    length = int(length)
    for b in boundary_list(root):
        off = max(0, b - length // 4)
        off -= off % ALIGN
        if off + length <= root.size and off < b < off + length:
            print(off)
            return
    print(0)


def cmd_apply(model, journal, pool):
    pool = open(pool, "rb").read()
    with open(model, "r+b") as m:
        for line in open(journal):
            if not line.strip():
                continue
            off, length, poff = map(int, line.split())
            m.seek(off)
            m.write(pool[poff:poff + length])


def cmd_check(expr, model):
    root = load(expr, ORIG)
    data = open(model, "rb").read()
    if len(data) != root.size:
        die("check: model is %d bytes, the array %d" % (len(data), root.size))
    bufs = read_bufs(root, ORIG)
    write(root, 0, memoryview(data), bufs)
    orig = runs = None
    bad = 0
    for l in leaves(root):
        got = open(l.path, "rb").read()
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
        first = next(i for i in range(0, len(got), 4096)
                     if got[i:i + 4096] != want[i:i + 4096])
        first += next(i for i in range(4096) if got[first + i] != want[first + i])
        ndiff = sum(1 for i in range(0, len(got), 512)
                    if got[i:i + 512] != want[i:i + 512])
        owner = [r for r in runs if r[0] == l.path and r[1] <= first < r[1] + r[2]]
        if owner:
            lo = owner[0][3] + first - owner[0][1]
            where = "array byte %d" % lo
            src = data.find(got[first:first + 64]) if first + 64 <= len(got) else -1
            if src >= 0:
                where += "; holds array byte %d's data instead" % src
        else:
            where = "outside the part in use (must keep its old bytes)"
            if got[first:first + 64] == orig[l.path][first:first + 64]:
                where += "; it does"
        print("%s: %d of %d 512-byte blocks differ; first at byte %d (%s)" %
              (l.path, ndiff, len(got) // 512, first, where))
    if bad:
        die("check: %d member image(s) differ from the reference mapping of %s"
            % (bad, expr))


def walk(n, s, path, errs):
    kind = {"file": "file"}.get(n.kind, n.kind)
    if s.get("kind") != kind:
        errs.append("%s: kind %r, want %r" % (path, s.get("kind"), kind))
        return
    if n.kind == "file" and s.get("name") != n.path:
        errs.append("%s: name %r, want %r" % (path, s.get("name"), n.path))
    if s.get("size") != n.size:
        errs.append("%s: size %r, want %d" % (path, s.get("size"), n.size))
    if n.kind == "raid0":
        if s.get("chunk") != n.chunk:
            errs.append("%s: chunk %r, want %d" % (path, s.get("chunk"), n.chunk))
        if s.get("member_size") != n.msize:
            errs.append("%s: member_size %r, want %d" % (path, s.get("member_size"), n.msize))
    if n.kind != "file":
        ms = s.get("members", [])
        if len(ms) != len(n.kids):
            errs.append("%s: %d members, want %d" % (path, len(ms), len(n.kids)))
            return
        for i, (k, m) in enumerate(zip(n.kids, ms)):
            walk(k, m, "%s.members[%d]" % (path, i), errs)


def cmd_stats(expr, stats):
    root = load(expr, ORIG)
    s = json.load(open(stats))
    errs = []
    walk(root, s["target"], "target", errs)
    if errs:
        die("stats: " + "; ".join(errs))


COUNTERS = ("writes", "write_bytes", "reads", "read_bytes", "splits", "pieces",
            "merged")


def expect_write(n, off, length, path, out):
    """Expected counter deltas of one write, per stats path."""
    d = {"writes": 1, "write_bytes": length, "reads": 0, "read_bytes": 0}
    out[path] = d
    if n.kind == "file":
        return
    if n.kind == "raid1":
        for i, k in enumerate(n.kids):
            expect_write(k, off, length, "%s.members[%d]" % (path, i), out)
        # A mirror write is copied, not mapped: no pieces.  (Whether it
        # counts as a split is left open.)
        d.update(pieces=0, merged=0)
        return
    ps = pieces(n, off, length)
    runs = {}
    for m, mpos, take in ps:
        if m in runs:
            start, end = runs[m]
            assert end == mpos, "reference: non-contiguous run on one member"
            runs[m] = (start, end + take)
        else:
            runs[m] = (mpos, mpos + take)
    d.update(pieces=len(ps), merged=len(ps) - len(runs),
             splits=1 if len(runs) > 1 else 0)
    for i, k in enumerate(n.kids):
        if i in runs:
            expect_write(k, runs[i][0], runs[i][1] - runs[i][0],
                         "%s.members[%d]" % (path, i), out)
        else:
            zero(k, "%s.members[%d]" % (path, i), out)


def zero(n, path, out):
    out[path] = {"writes": 0, "write_bytes": 0, "reads": 0, "read_bytes": 0}
    if n.kind != "file":
        out[path].update(pieces=0, merged=0, splits=0)
    for i, k in enumerate(n.kids):
        zero(k, "%s.members[%d]" % (path, i), out)


def lookup(s, path):
    for part in path.split(".")[1:]:
        name, idx = part[:-1].split("[")
        s = s[name][int(idx)]
    return s


def cmd_statsdelta(expr, off, length, before, after):
    root = load(expr, ORIG)
    b = json.load(open(before))["target"]
    a = json.load(open(after))["target"]
    out = {}
    expect_write(root, int(off), int(length), "target", out)
    errs = []
    for path, want in out.items():
        sb, sa = lookup(b, path), lookup(a, path)
        for k, v in want.items():
            got = sa.get(k, 0) - sb.get(k, 0)
            if got != v:
                errs.append("%s (%s) %s +%d, want +%d" % (path, sa.get("name"), k, got, v))
    if errs:
        die("one %s-byte write at %s: %s" % (length, off, "; ".join(errs)))
    top = out["target"]
    print("pieces +%s merged +%s splits +%s" % (top.get("pieces", "-"),
          top.get("merged", "-"), top.get("splits", "-")))


def cmd_mirrorreads(expr, stats):
    root = load(expr, ORIG)
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


def cmd_after(expr, stats):
    cmd_mirrorreads(expr, stats)
    cmd_noerrors(stats)


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


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    cmds = {"init": cmd_init, "size": cmd_size, "boundaries": cmd_boundaries,
            "statoff": cmd_statoff, "apply": cmd_apply, "check": cmd_check,
            "stats": cmd_stats, "statsdelta": cmd_statsdelta,
            "mirrorreads": cmd_mirrorreads, "noerrors": cmd_noerrors, "after": cmd_after}
    if sys.argv[1] not in cmds:
        die("unknown command " + sys.argv[1])
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
