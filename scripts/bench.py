"""bench.py: bench.sh's reader of fio JSON and rawvec stats, and its report
(the tables on stdout and results.md).  bench.sh runs one command per call:

  fio PATH RW [io_bytes]        iops, bytes/s, mean latency of one fio run
  stats PATH TRANSPORT          check a core run's rawvec stats
  report TSV JOBS MD META       the core section's tables
  rstats PATH TRANSPORT KIND SIZE   check a raid run's stats (raid5: counters)
  sweep PATH                    the state of a parity check
  raid_report TSV JOBS STRIPES MD META   the raid section's tables
  tfio PATH RW NJOBS            a threads run's fio result, summed over jobs
  tstats PATH KIND SIZE TARGET  check a threads run's stats: what rawvec chose
  threads_report TSV JOBS MD META   the threads section's tables
  nbd_report TSV JOBS MD META   the nbd section's tables
"""
import json, statistics, sys

import fio_json

def die(msg):
    fio_json.die("bench", msg)

def load_json(path):
    return fio_json.load_json(path, "bench")

def cmd_fio(path, rw, io_bytes=""):
    """Print 'iops<TAB>bytes_per_s<TAB>mean_lat_us' of a one-job fio run,
    and with a third argument '<TAB>bytes done after the ramp' too."""
    d = load_json(path)
    job = d["jobs"][0]
    if job.get("error"):
        die("%s: fio reports error %d" % (path, job["error"]))
    sec = job["write" if "write" in rw else "read"]
    if not sec.get("total_ios"):
        die(path + ": fio completed no I/O")
    print("%.1f\t%d\t%.2f" % (sec["iops"], sec["bw_bytes"],
                              sec["lat_ns"]["mean"] / 1000.0) +
          ("\t%d" % sec["io_bytes"] if io_bytes else ""))

def cmd_stats(path, want):
    """Check the transport rawvec really used; print a short summary."""
    with open(path) as f:
        s = json.load(f)
    got = s.get("transport")
    if got != want:
        die("rawvec served over '%s', not '%s'" % (got, want))
    if want == "uring" and not s.get("ring_requests"):
        die("rawvec --transport=uring served no request over the ring")
    terr = s.get("target", {}).get("errors", 0)
    if terr:
        die("rawvec counted %d I/O errors on the image" % terr)
    # Aligned O_DIRECT I/O should need no bounce copies: say so if it did.
    odd = ["%s=%s" % (k, s[k]) for k in ("copied_bytes", "rmw_writes")
           if s.get(k)]
    if odd:
        print("(rawvec stats: " + ", ".join(odd) + ")")

TARGETS = ["raw", "rawvec-uring", "rawvec-dev", "qsd"]
PAIRS = [("rawvec-uring", "raw"), ("rawvec-uring", "qsd"),
         ("rawvec-dev", "raw"), ("rawvec-dev", "qsd")]
SHORT = {"rawvec-uring": "uring", "rawvec-dev": "dev", "raw": "raw", "qsd": "qsd",
         "base-uring": "base"}
# The targets: (job, metric, numerator, denominator) -> (op, bound)
GOALS = {
    ("rr4k32", "iops", "rawvec-uring", "raw"): (">=", 0.9),
    ("rr4k32", "iops", "rawvec-uring", "qsd"): (">=", 5.0),
    ("rw4k32", "iops", "rawvec-uring", "raw"): (">=", 0.8),
    ("sr1m8", "mbs", "rawvec-uring", "raw"): (">=", 0.9),
    ("sw1m8", "mbs", "rawvec-uring", "raw"): (">=", 0.9),
    ("rr4k1", "lat", "rawvec-uring", "raw"): ("<=", 1.25),
    ("rr4k32", "iops", "rawvec-dev", "qsd"): (">=", 2.5),
}
METRICS = {
    "iops": ("IOPS", "%.0f", True),
    "mbs": ("MB/s", "%.1f", True),
    "lat": ("mean lat us", "%.1f", False),
}

def med(xs):
    return statistics.median(xs) if xs else None

def fmt(f, v):
    return "-" if v is None else f % v

def verdict(goal, v):
    if not goal or v is None:
        return ""
    op, bound = goal
    ok = v >= bound if op == ">=" else v <= bound
    return "PASS" if ok else "MISS"

def finish_report(out, md, goals_out, title, md_title, md_path,
                  latency_word=False):
    """The targets met and missed, then print the text and write the
    Markdown."""
    out.append("== %s (median per-round ratio) ==" % title)
    md += ["", "### " + md_title, "", "| target | median ratio | result |",
           "|---|--:|---|"]
    npass = 0
    rows = []
    for label, unit, num, den, r, goal, v in goals_out:
        if latency_word and unit.startswith("mean"):
            unit = "latency"
        rows.append(("%s %s: %s/%s %s %g" % (label, unit, num, den, goal[0],
                                             goal[1]), r, v))
    w = max([52] + [len(x[0]) for x in rows])
    for what, r, v in rows:
        out.append("  %-*s %6s  %s" % (w, what, fmt("%.2f", r), v or "n/a"))
        md.append("| %s | %s | %s |" % (what, fmt("%.2f", r), v or "n/a"))
        npass += v == "PASS"
    out.append("  %d of %d targets met" % (npass, len(goals_out)))
    md.append("")
    md.append("%d of %d targets met." % (npass, len(goals_out)))
    print("\n".join(out))
    with open(md_path, "w") as f:
        f.write("\n".join(md) + "\n")

def ratio_cells(out, goals_out, goals, pairs, vals, jid, m, label, unit,
                present=None):
    """One text line per (num, den) pair: the median of the per-round
    ratios, its goal and verdict, each round's ratio; returns the Markdown
    cells, and collects the goals met or missed in goals_out.  A pair with
    a target not in @present is '-'."""
    cells = []
    for num, den in pairs:
        if present is not None and (num not in present or den not in present):
            cells.append("-")
            continue
        per = [a / b if a is not None and b else None
               for a, b in zip(vals[num], vals[den])]
        r = med([x for x in per if x is not None])
        goal = goals.get((jid, m, num, den))
        v = verdict(goal, r)
        gtxt = "%s %.2f" % goal if goal else ""
        out.append("  %-22s %7s   %-8s %-5s  %s" % (
            "%s/%s" % (num, den), fmt("%.2f", r), gtxt, v,
            " ".join(fmt("%.2f", x) for x in per)))
        cell = fmt("%.2f", r)
        if goal:
            cell += " (%s %g: %s)" % (goal[0], goal[1], v)
            goals_out.append((label, unit, num, den, r, goal, v))
        cells.append(cell)
    return cells

def cmd_report(tsv, jobs_tsv, md_path, meta_path):
    jobs = []
    with open(jobs_tsv) as f:
        for line in f:
            jid, label, rw, bs, qd = line.rstrip("\n").split("\t")
            metrics = ["mbs"] if bs.upper() == "1M" else ["iops"]
            if qd == "1":
                metrics.append("lat")
            jobs.append((jid, label, metrics))
    data = {}  # (job, target) -> {round: {metric: value}}
    with open(tsv) as f:
        next(f)
        for line in f:
            rnd, jid, tgt, iops, bw, lat = line.rstrip("\n").split("\t")
            data.setdefault((jid, tgt), {})[int(rnd)] = {
                "iops": float(iops), "mbs": float(bw) / 1e6, "lat": float(lat)}
    with open(meta_path) as f:
        meta = f.read().strip().splitlines()
    rounds = sorted({r for d in data.values() for r in d})
    # RAWVEC_BASE: the baseline binary's target, and this build against it.
    base = any(t == "base-uring" for _, t in data)
    targets = TARGETS + (["base-uring"] if base else [])
    pairs = PAIRS + ([("rawvec-uring", "base-uring")] if base else [])
    out = []
    md = ["## rawvec benchmark", ""] + ["- " + m for m in meta] + [""]
    md += ["Medians over %d round%s; ratios are medians of the per-round "
           "ratios (latency ratios: lower is better)." %
           (len(rounds), "" if len(rounds) == 1 else "s"), ""]
    md += ["| job | metric | raw | rawvec uring | rawvec dev | qsd | " +
           ("base uring | " if base else "") +
           "uring/raw | uring/qsd | dev/raw | dev/qsd |" +
           (" uring/base |" if base else ""),
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|" + ("--:|--:|" if base else "")]
    goals_out = []
    for jid, label, metrics in jobs:
        out.append("")
        out.append("== %s (median of %d round%s) ==" %
                   (label, len(rounds), "" if len(rounds) == 1 else "s"))
        for m in metrics:
            unit, f, higher = METRICS[m]
            vals = {t: [data.get((jid, t), {}).get(r, {}).get(m) for r in rounds]
                    for t in targets}
            out.append("  %-14s %12s   per round" % ("target", unit))
            for t in targets:
                got = [v for v in vals[t] if v is not None]
                out.append("  %-14s %12s   %s" % (
                    t, fmt(f, med(got)), " ".join(fmt(f, v) for v in vals[t])))
            out.append("  %-22s %7s   %-8s %-5s  per round" %
                       ("ratio" + ("" if higher else " (lower is better)"),
                        "median", "target", ""))
            row_ratios = ratio_cells(out, goals_out, GOALS, pairs, vals,
                                     jid, m, label, unit)
            md.append("| %s | %s | %s | %s |" % (
                label, unit,
                " | ".join(fmt(f, med([v for v in vals[t] if v is not None]))
                           for t in targets),
                " | ".join(row_ratios)))
    out.append("")
    finish_report(out, md, goals_out, "targets from the issue", "Targets", md_path,
                  latency_word=True)

# ---- raid section ----
def walk(node):
    yield node
    for m in node.get("members", []):
        yield from walk(m)

def tree_problems(t):
    bad = ["%s: %d I/O errors" % (n.get("name"), n["errors"])
           for n in walk(t) if n.get("errors")]
    bad += ["%s is %s" % (n.get("name"), n.get("state"))
            for n in walk(t) if n.get("state", "ok") != "ok"]
    bad += ["%s runs degraded (%d)" % (n.get("name"), n["degraded"])
            for n in walk(t) if n.get("degraded")]
    return bad

def check_run(s, want, kind, size):
    """Die unless the stats @s show transport @want, a target of @kind and
    @size, and no errors or failed members anywhere in the tree; return the
    target."""
    got = s.get("transport")
    if got != want:
        die("rawvec served over '%s', not '%s'" % (got, want))
    if want == "uring" and not s.get("ring_requests"):
        die("rawvec --transport=uring served no request over the ring")
    t = s.get("target", {})
    if t.get("kind") != kind:
        die("the target is a '%s', not a '%s'" % (t.get("kind"), kind))
    if t.get("size") != int(size):
        die("the %s holds %s bytes, not %s" % (kind, t.get("size"), size))
    bad = tree_problems(t)
    if bad:
        die("rawvec reports " + "; ".join(bad))
    # (The top-level "errors" counts protocol replies such as ENOSYS for
    # xattrs too; I/O errors are the tree's, checked above.)
    return t

def cmd_rstats(path, want, kind, size):
    """Check a raid run's stats: transport, the layout, no errors or failed
    members anywhere in the tree.  Print one line: a short summary, and for
    raid5/6 '<TAB>full<TAB>rmw<TAB>rcw<TAB>parity_reads<TAB>write_bytes
    <TAB>stripe_bytes' of the array."""
    with open(path) as f:
        s = json.load(f)
    t = check_run(s, want, kind, size)
    odd = ["%s=%s" % (k, s[k]) for k in ("copied_bytes", "rmw_writes")
           if s.get(k)]
    summary = "(rawvec stats: " + ", ".join(odd) + ")" if odd else ""
    if kind not in ("raid5", "raid6"):
        print(summary)
        return
    stripe = t["chunk"] * (len(t["members"]) - (1 if kind == "raid5" else 2))
    full, rmw, rcw = t["full_stripe_writes"], t["rmw_writes"], t["rcw_writes"]
    summary = ("stripes: %d full (bytes/stripe: %d), %d rmw, %d rcw, "
               "%d parity reads" % (full, t["write_bytes"] // stripe, rmw, rcw,
                                    t["parity_reads"])) + \
              (" " + summary if summary else "")
    print("\t".join(str(x) for x in (
        summary, full, rmw, rcw, t["parity_reads"], t["write_bytes"], stripe)))

def cmd_sweep(path):
    """Print 'running <pct>' while a check runs, then 'done <mismatched
    sectors>'."""
    with open(path) as f:
        t = json.load(f).get("target", {})
    if "sweep_running" not in t:
        die("the target (%s) has no check" % t.get("kind"))
    bad = tree_problems(t)
    if bad:
        die("rawvec reports " + "; ".join(bad))
    if t["sweep_running"] or t["sweep_done_pct"] < 100:
        print("running %.1f" % t["sweep_done_pct"])
    else:
        print("done %d" % t["mismatch_sectors"])

RAID_DESC = {"single": "1 image", "raid0": "4 members", "raid5": "5 members",
             "raid6": "6 members"}
RAID_TARGETS = ["single", "raid0", "raid5", "raid6"]
# raid6/raid5: the same 4 data chunks a stripe, Q besides P (no target).
RAID_PAIRS = [("raid0", "single"), ("raid5", "raid0"), ("raid6", "raid5")]
RAID_GOALS = {
    ("rr4k32", "iops", "raid0", "single"): (">=", 0.9),
    ("sw1m8", "mbs", "raid5", "raid0"): (">=", 0.6),
}

def jobs_tables(tsv, jobs_tsv, meta_path, heading, section, targets, desc,
                pairs, goals):
    """The tables of a section whose jobs each name their targets (raid,
    nbd): the text lines, the Markdown lines and the goals met or missed."""
    jobs = []
    with open(jobs_tsv) as f:
        for line in f:
            jid, label, rw, bs, qd, tgts = line.rstrip("\n").split("\t")
            metrics = ["mbs"] if bs.upper() == "1M" else ["iops"]
            if qd == "1":
                metrics.append("lat")
            jobs.append((jid, label, metrics, tgts.split()))
    data = {}  # (job, target) -> {round: {metric: value}}
    with open(tsv) as f:
        next(f)
        for line in f:
            rnd, jid, tgt, iops, bw, lat = line.rstrip("\n").split("\t")
            data.setdefault((jid, tgt), {})[int(rnd)] = {
                "iops": float(iops), "mbs": float(bw) / 1e6, "lat": float(lat)}
    with open(meta_path) as f:
        meta = f.read().strip().splitlines()
    rounds = sorted({r for d in data.values() for r in d})
    nr = "%d round%s" % (len(rounds), "" if len(rounds) == 1 else "s")
    out = []
    md = ["## " + heading, ""] + ["- " + m for m in meta] + [""]
    md += ["Medians over %s; ratios are medians of the per-round ratios "
           "(latency ratios: lower is better)." % nr,
           "", "| job | metric | %s | %s |" % (
               " | ".join("%s (%s)" % (t, desc[t]) for t in targets),
               " | ".join("%s/%s" % p for p in pairs)),
           "|---|---|" + "--:|" * (len(targets) + len(pairs))]
    goals_out = []
    for jid, label, metrics, tgts in jobs:
        out.append("")
        out.append("== %s: %s (median of %s) ==" % (section, label, nr))
        for m in metrics:
            unit, f, higher = METRICS[m]
            vals = {t: [data.get((jid, t), {}).get(r, {}).get(m) for r in rounds]
                    for t in tgts}
            out.append("  %-22s %12s   per round" % ("target", unit))
            for t in tgts:
                got = [v for v in vals[t] if v is not None]
                out.append("  %-22s %12s   %s" % (
                    "%s (%s)" % (t, desc[t]), fmt(f, med(got)),
                    " ".join(fmt(f, v) for v in vals[t])))
            out.append("  %-22s %7s   %-8s %-5s  per round" %
                       ("ratio" + ("" if higher else " (lower is better)"),
                        "median", "target", ""))
            cells = ratio_cells(out, goals_out, goals, pairs, vals,
                                jid, m, label, unit, tgts)
            md.append("| %s | %s | %s | %s |" % (
                label, unit,
                " | ".join(fmt(f, med([v for v in vals[t] if v is not None]))
                           if t in tgts else "-" for t in targets),
                " | ".join(cells)))
    return out, md, goals_out

def cmd_raid_report(tsv, jobs_tsv, stripes_tsv, md_path, meta_path):
    out, md, goals_out = jobs_tables(tsv, jobs_tsv, meta_path,
                                     "rawvec RAID layers", "RAID",
                                     RAID_TARGETS, RAID_DESC, RAID_PAIRS,
                                     RAID_GOALS)
    stripes = []
    with open(stripes_tsv) as f:
        for line in f:
            stripes.append(line.rstrip("\n").split("\t"))
    if stripes:
        out.append("")
        out.append("== raid5 stripe writes, per 1M seq write run (from its stats) ==")
        out.append("  %5s %12s %10s %10s %12s %14s %10s" % (
            "round", "full_stripe", "rmw", "rcw", "parity_reads",
            "bytes/stripe", "check"))
        tot = [0, 0, 0, 0, 0]
        checks = []
        for rnd, full, rmw, rcw, pr, wb, sb, chk in stripes:
            exp = int(wb) // int(sb)
            out.append("  %5s %12s %10s %10s %12s %14d %10s" % (
                rnd, full, rmw, rcw, pr, exp, chk))
            for i, x in enumerate((full, rmw, rcw, pr, exp)):
                tot[i] += int(x)
            checks.append(chk)
        ops = tot[0] + tot[1] + tot[2]
        pct = 100.0 * tot[0] / ops if ops else 0.0
        done = [c for c in checks if c != "-"]
        ctxt = ("parity check after %d of %d runs (those that rewrote the "
                "whole array): %s mismatched sectors" %
                (len(done), len(checks), "+".join(done) or "-"))
        out.append("  total: %d full-stripe (%.1f%%), %d rmw, %d rcw, %d parity "
                   "reads; written bytes / stripe size: %d" %
                   (tot[0], pct, tot[1], tot[2], tot[3], tot[4]))
        out.append("  " + ctxt)
        md += ["", "raid5 stripe writes in the 1M seq write runs: %d full-stripe "
               "(%.1f%%), %d read-modify-write, %d reconstruct-write, %d parity "
               "reads (written bytes / %d-byte stripe: %d); %s." %
               (tot[0], pct, tot[1], tot[2], tot[3], int(stripes[0][6]),
                tot[4], ctxt)]
    out.append("")
    finish_report(out, md, goals_out, "RAID targets from the issue",
                  "Targets (RAID)", md_path)

# ---- threads section ----
def cmd_tfio(path, rw, njobs):
    """Print 'iops<TAB>bytes_per_s<TAB>mean_lat_us<TAB>least bytes one job
    did after the ramp<TAB>each job's IOPS (a/b)' of an @njobs-job fio run
    without group_reporting: IOPS and bandwidth summed, the mean latency
    weighted by each job's I/Os (what group_reporting would print)."""
    d = load_json(path)
    jobs = d["jobs"]
    if len(jobs) != int(njobs):
        die("%s: %d fio jobs, not %s" % (path, len(jobs), njobs))
    secs = []
    for job in jobs:
        if job.get("error"):
            die("%s: fio reports error %d" % (path, job["error"]))
        sec = job["write" if "write" in rw else "read"]
        if not sec.get("total_ios"):
            die(path + ": a fio job completed no I/O")
        secs.append(sec)
    ios = sum(x["total_ios"] for x in secs)
    lat = sum(x["lat_ns"]["mean"] * x["total_ios"] for x in secs) / ios
    print("%.1f\t%d\t%.2f\t%d\t%s" % (
        sum(x["iops"] for x in secs), sum(x["bw_bytes"] for x in secs),
        lat / 1000.0, min(x["io_bytes"] for x in secs),
        "/".join("%.0f" % x["iops"] for x in secs)))

# What each threads target must have run: (loops or None, pinned).
# None: what pin=auto chooses: on with several loops over members in memory.
THR_WANT = {"t1": (1, False), "auto": (None, None), "t2pin": (2, True),
            "t2": (2, None)}

def cmd_tstats(path, kind, size, target, in_memory):
    """Check a threads run's stats: the ring transport, the layout, no
    errors, and the loops and pinning its options ask for (auto: whatever
    it chose, said to be auto; pin=auto: pinned just when in_memory is "1"
    and there are several loops).  Print 'threads<TAB>pinned
    (0/1)<TAB>msgs_sent<TAB>requests per loop (a,b)<TAB>a summary<TAB>
    threads_why'."""
    with open(path) as f:
        s = json.load(f)
    check_run(s, "uring", kind, size)
    n, pinned, why = s.get("threads"), s.get("pinned"), s.get("threads_why", "")
    loops = s.get("loops") or []
    if not isinstance(n, int) or n < 1 or len(loops) != n:
        die("stats: threads=%r with %d loops[] entries" % (n, len(loops)))
    wn, wpin = THR_WANT[target]
    if wn is not None and n != wn:
        die("%s ran %d loops (%s), not %d" % (target, n, why, wn))
    if wpin is None:
        wpin = in_memory == "1" and n > 1
    if bool(pinned) != wpin:
        die("%s ran with pinned=%s, not %s" % (target, pinned, wpin))
    if target == "auto" and not why.startswith("auto"):
        die("with no threads option, threads_why is '%s', not auto's" % why)
    reqs = [l.get("requests", 0) for l in loops]
    msgs = sum(l.get("msgs_sent", 0) for l in loops)
    tot = sum(reqs) or 1
    summary = "loops %d%s (requests %s), msgs %d" % (
        n, " pinned" if pinned else "",
        "/".join("%.0f%%" % (100.0 * r / tot) for r in reqs), msgs)
    print("\t".join(str(x) for x in (
        n, int(bool(pinned)), msgs, ",".join(str(r) for r in reqs), summary,
        why or "-")))

THR_TARGETS = ["t1", "auto", "t2pin", "t2"]
THR_DESC = {"t1": "threads=1", "auto": "default", "t2pin": "threads=2,pin=on",
            "t2": "threads=2"}
# (num, den) per metric kind, so that > 1 means num is better.
THR_PAIRS = {True: [("auto", "t1"), ("t2pin", "auto"), ("t2", "t1")],
             False: [("t1", "auto"), ("auto", "t2pin"), ("t1", "t2")]}
THR_GOALS = {
    ("rr4k32", "iops", "auto", "t1"): (">=", 0.97),
    ("rr4k16x2", "iops", "auto", "t1"): (">=", 1.15),
    ("rr4k16x2pin", "iops", "auto", "t1"): (">=", 1.15),
    ("rr4k1", "lat", "t1", "auto"): (">=", 0.97),
    ("null16x2", "iops", "auto", "t1"): (">=", 1.3),
    ("r5sw1m8x2", "mbs", "auto", "t1"): (">=", 1.5),
    # A headerless raid5 on two loops, its stripes sharded between them.
    ("r5sw1m8x2", "mbs", "t2", "t1"): (">=", 1.5),
    # The same parity work with no tmpfs copies: auto runs two loops.
    ("r5mem1m8x2", "mbs", "auto", "t1"): (">=", 1.5),
}

def cmd_threads_report(tsv, jobs_tsv, md_path, meta_path):
    jobs = []
    with open(jobs_tsv) as f:
        for line in f:
            jid, label, rw, bs, qd, nj, cpus, on, tgts = \
                line.rstrip("\n").split("\t")
            metrics = ["mbs"] if bs.upper() == "1M" else ["iops"]
            if qd == "1":
                metrics.append("lat")
            jobs.append((jid, label, metrics, tgts.split()))
    data = {}   # (job, target) -> {round: {metric: value}}
    chose = {}  # (job, target) -> {round: (threads, loop 0's share, why)}
    checks = []
    with open(tsv) as f:
        next(f)
        for line in f:
            (rnd, jid, tgt, iops, bw, lat, n, pin, msgs, lreq, chk,
             why) = line.rstrip("\n").split("\t")
            data.setdefault((jid, tgt), {})[int(rnd)] = {
                "iops": float(iops), "mbs": float(bw) / 1e6, "lat": float(lat)}
            reqs = [int(x) for x in lreq.split(",")]
            chose.setdefault((jid, tgt), {})[int(rnd)] = (
                int(n), 100.0 * reqs[0] / (sum(reqs) or 1), why)
            if jid.startswith("r5"):
                checks.append((rnd, tgt, chk))
    with open(meta_path) as f:
        meta = f.read().strip().splitlines()
    rounds = sorted({r for d in data.values() for r in d})
    nr = "%d round%s" % (len(rounds), "" if len(rounds) == 1 else "s")
    out = []
    md = ["## rawvec event loops (-o threads=)", ""] + ["- " + m for m in meta]
    md += ["", "Medians over %s; ratios are medians of the per-round ratios, "
           "each the way round that makes > 1 mean the first named is better "
           "(auto/t1 for IOPS and MB/s, t1/auto for latency)." % nr, "",
           "| job | metric | %s | auto's loops | auto vs t1 | t2pin vs auto "
           "| t2 vs t1 |" %
           " | ".join("%s (%s)" % (t, THR_DESC[t]) for t in THR_TARGETS),
           "|---|---|" + "--:|" * len(THR_TARGETS) + "---|--:|--:|--:|"]
    goals_out = []
    whys = {}
    for jid, label, metrics, tgts in jobs:
        out.append("")
        out.append("== threads: %s (median of %s) ==" % (label, nr))
        # What auto chose, in every round, and how loop 0's share of the
        # requests went.
        ch = chose.get((jid, "auto"), {})
        ns = sorted({c[0] for c in ch.values()})
        for c in ch.values():
            whys.setdefault(c[2], []).append(jid)
        share = med([c[1] for c in ch.values()])
        auto_loops = "/".join(str(n) for n in ns) or "-"
        if ns and ns != [1]:
            auto_loops += " (loop 0: %s)" % fmt("%.0f%%", share)
        out.append("  auto chose %s loop%s: %s; loop 0 served %s of the "
                   "requests (per round %s)" % (
                       auto_loops.split()[0], "" if ns == [1] else "s",
                       "; ".join(sorted({c[2] for c in ch.values()})) or "-",
                       fmt("%.0f%%", share),
                       " ".join("%.0f%%" % ch[r][1] for r in sorted(ch))))
        for m in metrics:
            unit, f, higher = METRICS[m]
            vals = {t: [data.get((jid, t), {}).get(r, {}).get(m) for r in rounds]
                    for t in tgts}
            out.append("  %-24s %10s   per round" % ("target", unit))
            for t in tgts:
                got = [v for v in vals[t] if v is not None]
                out.append("  %-24s %10s   %s" % (
                    "%s (%s)" % (t, THR_DESC[t]), fmt(f, med(got)),
                    " ".join(fmt(f, v) for v in vals[t])))
            out.append("  %-22s %7s   %-8s %-5s  per round" %
                       ("ratio, >1: 1st better", "median", "target", ""))
            cells = ratio_cells(out, goals_out, THR_GOALS, THR_PAIRS[higher],
                                vals, jid, m, label, unit, tgts)
            md.append("| %s | %s | %s | %s | %s |" % (
                label, unit,
                " | ".join(fmt(f, med([v for v in vals[t] if v is not None]))
                           if t in tgts else "-" for t in THR_TARGETS),
                auto_loops, " | ".join(cells)))
    md += [""] + ["auto's threads_why \"%s\" in: %s." % (w, ", ".join(sorted(set(j))))
                  for w, j in sorted(whys.items())]
    if checks:
        done = [c for c in checks if c[2] != "-"]
        ctxt = ("raid5 parity check after %d of %d runs (those in which each "
                "job rewrote its whole half): %s mismatched sectors" %
                (len(done), len(checks), "+".join(c[2] for c in done) or "-"))
        out += ["", "  " + ctxt]
        md += ["", ctxt + "."]
    out.append("")
    finish_report(out, md, goals_out, "threads targets from the issue",
                  "Targets (threads)", md_path, latency_word=True)

# ---- nbd section ----
NBD_DESC = {"rawvec": "nbd()", "nbdfuse": "nbdfuse", "qsd": "qsd driver=nbd",
            "raid0": "raid0 of 2, conns=2", "loops1": "conns=2, threads=1",
            "loops2": "conns=2, threads=2"}
NBD_TARGETS = ["rawvec", "nbdfuse", "qsd", "raid0", "loops1", "loops2"]
# raid0/rawvec: two exports with two connections each against one export
# with one; loops2/loops1: a connection per event loop against both on
# one.  Latency ratios: lower is better.
NBD_PAIRS = [("rawvec", "nbdfuse"), ("rawvec", "qsd"), ("raid0", "rawvec"),
             ("loops2", "loops1")]
NBD_GOALS = {
    ("rr4k32", "iops", "rawvec", "nbdfuse"): (">=", 2.0),
    ("rr4k32", "iops", "rawvec", "qsd"): (">=", 2.0),
    ("rw4k32", "iops", "rawvec", "nbdfuse"): (">=", 2.0),
    ("rw4k32", "iops", "rawvec", "qsd"): (">=", 2.0),
    ("rr4k32", "iops", "raid0", "rawvec"): (">=", 1.6),
}

def cmd_nbd_report(tsv, jobs_tsv, md_path, meta_path):
    out, md, goals_out = jobs_tables(tsv, jobs_tsv, meta_path,
                                     "rawvec over NBD", "NBD", NBD_TARGETS,
                                     NBD_DESC, NBD_PAIRS, NBD_GOALS)
    out.append("")
    finish_report(out, md, goals_out, "NBD targets from the issue",
                  "Targets (NBD)", md_path, latency_word=True)

def cmd_nbd_loops(path):
    """Print the nbd_loops of the stats file's target (an nbd() member)."""
    print(load_json(path)["target"]["nbd_loops"])

if __name__ == "__main__":
    cmd = sys.argv[1]
    {"fio": cmd_fio, "stats": cmd_stats, "report": cmd_report,
     "rstats": cmd_rstats, "sweep": cmd_sweep,
     "raid_report": cmd_raid_report, "tfio": cmd_tfio, "tstats": cmd_tstats,
     "threads_report": cmd_threads_report,
     "nbd_report": cmd_nbd_report,
     "nbd_loops": cmd_nbd_loops}[cmd](*sys.argv[2:])
