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
    'br_home': 'a request handed to its owner, the loop it returns to',
    'bd_owner': 'a device that keeps state, the one loop it runs on',
    'lo_to': 'a message in flight, the loop it goes to (to resend it)',
    'np_loop': 'a poll on an NBD socket, the loop it is armed on',
}
LAYER = {'vec': 0, 'blockdev': 1, 'fs': 2}
# No file a newcomer must read whole, no function longer than a screenful
# or two (issue 13: ~700 and ~100).
MAX_FILE_LINES = 720
MAX_FUNC_LINES = 110


def long_functions(lines):
    """(name, first line, length) of each function body longer than the limit:
    a definition starts at column 0 and ends at the first '}' there."""
    start = None
    for i, l in enumerate(lines):
        if start is None:
            m = re.match(r'^(?:static )?(?:inline )?[a-zA-Z_][\w \*]*?\b(\w+)\(', l)
            if m and not l.rstrip().endswith(';') and not l.startswith(('typedef', '#')):
                start = (i, m.group(1))
        elif l == '}':
            if i - start[0] + 1 > MAX_FUNC_LINES:
                yield start[1], start[0] + 1, i - start[0] + 1
            start = None
        elif l.rstrip().endswith(';') and lines[start[0] + 1:i + 1] and not any(
                x.startswith('{') for x in lines[start[0]:i + 1]):
            start = None  # a prototype over several lines


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
        lines = text.split('\n')
        if len(lines) - 1 > MAX_FILE_LINES:
            bad.append('%s: %d lines, more than %d: split it along its seams' %
                       (f, len(lines) - 1, MAX_FILE_LINES))
        for name, at, n in long_functions(lines):
            bad.append('%s:%d: %s() is %d lines, more than %d' % (f, at, name, n, MAX_FUNC_LINES))
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
            # Fields only: inside a struct's braces (a local in a function
            # body is not kept).
            bodies = ''.join(re.findall(r'^(?:typedef )?struct \w+ \{\n(.*?)^\}', text, re.M | re.S))
            for m in re.finditer(r'^\s+struct loop \*(\w+);', bodies, re.M):
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
