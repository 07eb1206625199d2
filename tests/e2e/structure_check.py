#!/usr/bin/env python3
# structure_check: the rules docs/design.md states for the source tree, read
# from the sources themselves.  Usage: structure_check.py ROOT; prints each
# breach and exits 1 when there is one.
import collections
import glob
import os
import re
import sys

# Fields of type struct loop * allowed in blockdev/, each with its owner:
# whatever else keeps a loop is a device storing one (loop.h forbids it).
LOOP_FIELDS = {
    'br_loop': 'a request carries the loop it runs on',
    'lh_loop': 'a hook, the loop it is armed on',
    'loop': "a bdev_rw_ctx, the loop it belongs to",
    'l_sweep_loop': 'a running sweep, the loop that started it',
    'so_loop': "a stripe op, its request's or its sweep's",
    'sa_loop': "an array's md metadata, the loop that owns it",
}
LAYER = {'vec': 0, 'blockdev': 1, 'fs': 2}


def sources(root):
    pats = ('vec/*.[ch]', 'blockdev/**/*.[ch]', 'fs/**/*.[ch]')
    for p in pats:
        for f in sorted(glob.glob(os.path.join(root, p), recursive=True)):
            yield os.path.relpath(f, root)


def main(root):
    bad = []
    deps = collections.defaultdict(set)
    for f in sources(root):
        text = open(os.path.join(root, f)).read()
        mod = f.rsplit('.', 1)[0]
        for inc in re.findall(r'^#include "([^"]+)"', text, re.M):
            if not os.path.exists(os.path.join(root, inc)):
                bad.append('%s: includes %s, which is not a path from the root' % (f, inc))
                continue
            dep = inc.rsplit('.', 1)[0]
            if dep == mod:
                continue
            deps[mod].add(dep)
            top, dtop = f.split('/')[0], inc.split('/')[0]
            if LAYER[dtop] > LAYER[top]:
                bad.append('%s includes %s: dependencies run fs -> blockdev -> vec' % (f, inc))
            if f.startswith('blockdev/core/') and not inc.startswith(('blockdev/core/', 'vec/')):
                bad.append('%s includes %s: blockdev/core/ knows no level, member or layout' % (f, inc))
        if f.startswith('blockdev/') and f != 'blockdev/core/loop.c':
            for m in re.finditer(r'^\s+struct loop \*(\w+);', text, re.M):
                if m.group(1) not in LOOP_FIELDS:
                    bad.append('%s: field %s keeps a loop: pass it on the request, or name its owner' % (f, m.group(1)))
    # A module is a .c file and its header; a header of its own without a
    # .c (raid56_int.h, layer_io.h) is part of the module it serves.
    def has_c(m):
        return os.path.exists(os.path.join(root, m + '.c'))
    for a in sorted(deps):
        for b in sorted(deps[a]):
            if a < b and a in deps.get(b, ()) and has_c(a) and has_c(b):
                bad.append('%s and %s include each other' % (a, b))
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
