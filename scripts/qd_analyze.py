#!/usr/bin/env python3
"""qd_analyze.py TRACE APP [SERVER]: break each read's life into
phases from a tracefs text dump (see scripts/qd_breakdown.sh for the events).
APP and SERVER are a command name (fio, rawvec) or a comma-separated list of
thread ids; only their threads' events count (other processes may trace too).

Links: the app's io_uring_submit_req -> the next fuse_request_send (or
block_bio_queue, raw image) of the same thread; fuse unique -> the server's
COMMIT (the URING_CMD submit just before fuse_request_end on the server's
thread); the server's handoff CQEs -> its READ SQEs and its read CQEs ->
its COMMIT SQEs in each ring's order, one ring per server event loop (a loop
queues one SQE per CQE, in CQE order,
and submits them on the next io_uring_enter), synchronised at the server's
second io_uring_enter in the trace and checked by the entry (user_data) the
COMMIT names; block requests by sector.
"""
import os
import re
import sys
from collections import defaultdict, deque

LINE = re.compile(r'^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): (.*)$')
RING = re.compile(r'ring (\w+), req \w+, user_data (0x[0-9a-f]+)')
OPC = re.compile(r'opcode (\w+)')
RES = re.compile(r'result (-?\d+)')
FSEND = re.compile(r'req (\d+) opcode (\d+)')
FEND = re.compile(r'req (\d+) len')
BIO = re.compile(r'^\d+,\d+ \w+ (\d+) \+ \d+')
RQ = re.compile(r'^\d+,\d+ \w+ (?:\d+ )?\(\S*\) (\d+) \+ \d+')
WAKE = re.compile(r'pid=(\d+)')
SW = re.compile(r'prev_pid=(\d+) .*==> next_comm=.* next_pid=(\d+)')
READ_OPS = ('READ', 'READ_FIXED', 'READV')


def pct(v, p):
    if not v:
        return float('nan')
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class who:
    """Threads by a list of ids, or by command name."""

    def __init__(self, spec):
        self.pids = None
        if re.fullmatch(r'[0-9,]+', spec):
            self.pids = {int(x) for x in spec.split(',') if x}
        self.name = spec

    def __call__(self, comm, pid):
        if self.pids is not None:
            return pid in self.pids
        return comm.startswith(self.name)


def load(path):
    ev = []
    with open(path, errors='replace') as f:
        for ln in f:
            if ln.startswith('#'):
                continue
            m = LINE.match(ln)
            if m:
                comm, pid, cpu, ts, name, rest = m.groups()
                ev.append((float(ts) * 1e6, comm, int(pid), int(cpu), name, rest))
    return ev


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    path = sys.argv[1]
    ext = []
    if os.environ.get('QD_EXTENTS'):
        with open(os.environ['QD_EXTENTS']) as f:
            ext = [tuple(int(x) for x in ln.split()) for ln in f if ln.strip()]
    app = who(sys.argv[2])
    srv = who(sys.argv[3] if len(sys.argv) > 3 else 'rawvec')
    ev = load(path)
    if not ev:
        print('no events in', path, file=sys.stderr)
        sys.exit(1)
    t0, t1 = ev[0][0], ev[-1][0]
    span = t1 - t0

    app_ring = None
    srv_rings = set()  # one per server event loop
    cmd_uds = set()
    for t, comm, pid, cpu, name, rest in ev:
        if name == 'io_uring_submit_req':
            r, ud = RING.search(rest).groups()
            op = OPC.search(rest).group(1)
            if app(comm, pid) and app_ring is None and op in READ_OPS:
                app_ring = r
            elif srv(comm, pid) and op in READ_OPS + ('URING_CMD',):
                srv_rings.add(r)
                if op == 'URING_CMD':
                    cmd_uds.add(ud)
    fuse = bool(srv_rings)

    st = defaultdict(int)
    st['handoffs at COMMIT (request waited in the FUSE queue)'] = 0
    pend_app = {}      # app pid -> (ud, t): submit awaiting send/bio
    pend_srv = {}      # server pid -> R: READ awaiting its bio
    pend_commit = {}   # server pid -> (E, t)
    pend_fetch = {}    # server pid -> E: commit ended a request; next CQE?
    u_of_x = {}
    req = {}           # fuse unique -> dict
    raw = {}           # app ud -> dict (raw image)
    by_sector = {}
    done = []
    enters = defaultdict(int)
    cqe_q = defaultdict(deque)  # ring -> its handoffs (E, t) in order
    rd_q = defaultdict(deque)   # ring -> its read CQEs in order
    read = {}          # R -> dict of the read in flight under that user_data
    reads = []
    read_uds = set()
    wake = {}
    wake_lat = defaultdict(list)
    oncpu = defaultdict(float)
    cur = {}           # cpu -> (pid running, since)
    asleep = set()
    tw = {'app': [], 'srv': []}
    names = {}
    dev_iss = {}       # sector -> block_rq_issue time (FILE's extents)
    dev_t = []
    dev_n = [0.0, 0, t0]  # integral of in-flight, in flight, last change
    app_cqe = {}       # app ud -> its CQE's time, until resubmitted
    turn = []

    for t, comm, pid, cpu, name, rest in ev:
        if app(comm, pid) or srv(comm, pid):
            names.setdefault(pid, comm)
        is_srv = srv(comm, pid)
        if is_srv and name != 'io_uring_complete':
            pend_fetch.pop(pid, None)
        if name == 'sys_enter':
            if is_srv and rest.startswith('NR 426 '):
                enters[pid] += 1
            continue
        if name == 'io_uring_submit_req':
            r, ud = RING.search(rest).groups()
            op = OPC.search(rest).group(1)
            if r == app_ring:
                pend_app[pid] = (ud, t)
                c = app_cqe.pop(ud, None)
                if c is not None:
                    turn.append(t - c)
                if not fuse:
                    raw[ud] = {'t_fsub': t}
            elif r in srv_rings and enters[pid] >= 2:
                if op == 'URING_CMD':
                    pend_commit[pid] = (ud, t)
                    if rd_q[r]:
                        d = rd_q[r].popleft()
                        if d is not None:
                            d['t_c'] = t
                            if d['E'] != ud:
                                st['commit/entry mismatch'] += 1
                                d['bad'] = True
                elif op in READ_OPS:
                    read_uds.add(ud)
                    if cqe_q[r]:
                        E, th = cqe_q[r].popleft()
                        read[ud] = {'E': E, 't_h': th, 't_rs': t}
                        reads.append(read[ud])
                        pend_srv[pid] = ud
            continue
        if name == 'fuse_request_send':
            u, opc = FSEND.search(rest).groups()
            d = {'t_send': t, 'op': int(opc)}
            a = pend_app.pop(pid, None)
            if a:
                d['X'], d['t_fsub'] = a
                u_of_x[a[0]] = u
            req[u] = d
            continue
        if name == 'fuse_request_end':
            u = FEND.search(rest).group(1)
            c = pend_commit.pop(pid, None)
            d = req.get(u)
            if d is not None:
                d['t_end'] = t
                if c:
                    d['E'], d['t_c'] = c
            if c:
                pend_fetch[pid] = (c[0], t)
            continue
        if name == 'io_uring_complete':
            r, ud = RING.search(rest).groups()
            if r in srv_rings:
                f = pend_fetch.pop(pid, None)
                if ud in cmd_uds:
                    if int(RES.search(rest).group(1)) != 0:
                        continue
                    st['handoffs'] += 1
                    if f and f[0] == ud and t - f[1] <= 5:
                        st['handoffs at COMMIT (request waited in the FUSE queue)'] += 1
                    if enters[pid] >= 1:
                        cqe_q[r].append((ud, t))
                elif enters[pid] >= 1:
                    d = read.pop(ud, None)
                    if d is not None:
                        d['t_rc'] = t
                    rd_q[r].append(d)
            elif r == app_ring:
                app_cqe[ud] = t
                if fuse:
                    u = u_of_x.pop(ud, None)
                    d = req.get(u) if u else None
                    if d is not None and 't_end' in d:
                        d['t_fc'] = t
                        done.append(d)
                else:
                    d = raw.pop(ud, None)
                    if d is not None:
                        d['t_fc'] = t
                        done.append(d)
            continue
        if name == 'block_bio_queue':
            m = BIO.search(rest)
            if not m:
                continue
            if not fuse:
                a = pend_app.pop(pid, None)
                if a and a[0] in raw:
                    raw[a[0]]['t_bio'] = t
                    by_sector[m.group(1)] = raw[a[0]]
            else:
                R = pend_srv.pop(pid, None)
                if R in read:
                    read[R]['t_bio'] = t
                    by_sector[m.group(1)] = read[R]
            continue
        if name in ('block_rq_issue', 'block_rq_complete'):
            m = RQ.search(rest)
            if m and (not ext or any(a <= int(m.group(1)) <= b for a, b in ext)):
                sec = m.group(1)
                if name == 'block_rq_issue':
                    dev_iss.setdefault(sec, t)
                    dev_n[0] += (t - dev_n[2]) * dev_n[1]
                    dev_n[1] += 1
                    dev_n[2] = t
                elif sec in dev_iss:
                    dev_t.append(t - dev_iss.pop(sec))
                    dev_n[0] += (t - dev_n[2]) * dev_n[1]
                    dev_n[1] -= 1
                    dev_n[2] = t
            if m and m.group(1) in by_sector:
                if name == 'block_rq_issue':
                    by_sector[m.group(1)].setdefault('t_iss', t)
                else:
                    by_sector.pop(m.group(1))['t_dev'] = t
            continue
        if name == 'io_uring_local_work_run':
            r = rest.split(',')[0].split()[1]
            n = int(re.search(r'count (\d+)', rest).group(1))
            if n:
                if r == app_ring or r in srv_rings:
                    tw['app' if r == app_ring else 'srv'].append(n)
            continue
        if name == 'sched_waking':
            p = int(WAKE.search(rest).group(1))
            if p in asleep:
                asleep.discard(p)
                wake[p] = t
            continue
        if name == 'sched_switch':
            m = SW.search(rest)
            if not m:
                continue
            prev, nxt = int(m.group(1)), int(m.group(2))
            st_prev = rest.split('prev_state=')[1].split()[0]
            was, s0 = cur.get(cpu, (prev, t0))
            key = ('idle', cpu) if prev == 0 else prev
            oncpu[key] += t - s0
            cur[cpu] = (nxt, t)
            if prev and not st_prev.startswith('R'):
                asleep.add(prev)
            w = wake.pop(nxt, None)
            if w is not None:
                wake_lat[nxt].append(t - w)
    for cpu, (p, s0) in cur.items():
        oncpu[('idle', cpu) if p == 0 else p] += t1 - s0
    if fuse:
        byc = {}
        for r in reads:
            if 't_c' in r and not r.get('bad'):
                byc[(r['E'], r['t_c'])] = r
        full = [d for d in done if d['op'] == 15 and 'X' in d]
        rows_src = []
        for d in full:
            r = byc.get((d.get('E'), d.get('t_c')))
            if r is None:
                continue
            x = dict(d)
            for k, v in r.items():
                x['r_' + k] = v
            rows_src.append(x)
        st['FUSE READs completed'] = len(full)
        st['linked end to end'] = len(rows_src)
        spec = [
            ('app submit -> fuse_request_send', 't_fsub', 't_send'),
            ('fuse_request_send -> handoff CQE posted in the server', 't_send', 'r_t_h'),
            ('handoff CQE -> server submits the disk read', 'r_t_h', 'r_t_rs'),
            ('disk read: submit -> its CQE', 'r_t_rs', 'r_t_rc'),
            ('  submit -> block_rq_issue', 'r_t_rs', 'r_t_iss'),
            ('  block_rq_issue -> block_rq_complete (device)', 'r_t_iss', 'r_t_dev'),
            ('  block_rq_complete -> read CQE posted', 'r_t_dev', 'r_t_rc'),
            ('read CQE -> server submits COMMIT', 'r_t_rc', 't_c'),
            ('COMMIT submit -> fuse_request_end', 't_c', 't_end'),
            ('fuse_request_end -> app CQE posted', 't_end', 't_fc'),
            ('total: app submit -> app CQE', 't_fsub', 't_fc'),
        ]
        n_done = len(full)
    else:
        rows_src = done
        spec = [
            ('app submit -> block_rq_issue', 't_fsub', 't_iss'),
            ('block_rq_issue -> block_rq_complete (device)', 't_iss', 't_dev'),
            ('block_rq_complete -> app CQE posted', 't_dev', 't_fc'),
            ('total: app submit -> app CQE', 't_fsub', 't_fc'),
        ]
        n_done = len(done)
    rate = n_done / span * 1e6
    print('trace %s: %.3f s, %d events, %.0f reads/s completed' % (
        path, span / 1e6, len(ev), rate))
    print()
    print('| phase | n | median us | p90 us | mean us | in stage (rate x mean) |')
    print('|---|--:|--:|--:|--:|--:|')
    for label, a, b in spec:
        v = [x[b] - x[a] for x in rows_src if a in x and b in x]
        if not v:
            continue
        mean = sum(v) / len(v)
        print('| %s | %d | %.1f | %.1f | %.1f | %.1f |' % (
            label, len(v), pct(v, 50), pct(v, 90), mean, rate * mean / 1e6))
    if dev_t:
        mean = sum(dev_t) / len(dev_t)
        print('| device, every request in the file (block_rq_issue -> complete) | %d | %.1f | %.1f | %.1f | %.1f (measured: %.1f) |' % (
            len(dev_t), pct(dev_t, 50), pct(dev_t, 90), mean,
            len(dev_t) / span * mean, dev_n[0] / max(1, dev_n[2] - t0)))
    if turn:
        mean = sum(turn) / len(turn)
        print('| app CQE posted -> app submits its next read (not in the total) | %d | %.1f | %.1f | %.1f | %.1f |' % (
            len(turn), pct(turn, 50), pct(turn, 90), mean, rate * mean / 1e6))
    print()
    if fuse:
        print('; '.join('%s %d' % kv for kv in sorted(st.items())))
    for k in ('app', 'srv'):
        if tw[k]:
            print('%s: CQEs posted per task-work run: median %d, mean %.1f, runs %d' % (
                k, pct(tw[k], 50), sum(tw[k]) / len(tw[k]), len(tw[k])))
    for p, comm in sorted(names.items()):
        w = wake_lat.get(p, [])
        if oncpu.get(p, 0) < 0.01 * span and not w:
            continue
        print('%s-%d: on CPU %.0f%%; %d wake-ups, sched_waking -> sched_switch in: median %.1f us, p90 %.1f us' % (
            comm, p, 100 * oncpu.get(p, 0) / span, len(w), pct(w, 50), pct(w, 90)))
    idle = ['cpu%d %.0f%%' % (k[1], 100 * v / span)
            for k, v in sorted(oncpu.items(), key=str) if isinstance(k, tuple)]
    if idle:
        print('idle: ' + ', '.join(idle))


if __name__ == '__main__':
    main()
