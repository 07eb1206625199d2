"""bench.py: bench.sh's reader of fio JSON and rawvec stats, and its report
(the tables on stdout and results.md).  bench.sh runs one command per call:

  fio PATH RW [io_bytes]        iops, bytes/s, mean latency of one fio run
  stats PATH TRANSPORT          check a core run's rawvec stats
  report TSV JOBS MD META       the core section's tables
  rstats PATH TRANSPORT KIND SIZE   check a raid run's stats (raid5: counters)
  sweep PATH                    the state of a parity check
  raid_report TSV JOBS STRIPES MD META   the raid section's tables
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
    for label, unit, num, den, r, goal, v in goals_out:
        if latency_word and unit.startswith("mean"):
            unit = "latency"
        what = "%s %s: %s/%s %s %g" % (label, unit, num, den, goal[0], goal[1])
        out.append("  %-52s %6s  %s" % (what, fmt("%.2f", r), v or "n/a"))
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

def cmd_rstats(path, want, kind, size):
    """Check a raid run's stats: transport, the layout, no errors or failed
    members anywhere in the tree.  Print one line: a short summary, and for
    raid5 '<TAB>full<TAB>rmw<TAB>rcw<TAB>parity_reads<TAB>write_bytes
    <TAB>stripe_bytes' of the array."""
    with open(path) as f:
        s = json.load(f)
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
    odd = ["%s=%s" % (k, s[k]) for k in ("copied_bytes", "rmw_writes")
           if s.get(k)]
    summary = "(rawvec stats: " + ", ".join(odd) + ")" if odd else ""
    if kind != "raid5":
        print(summary)
        return
    stripe = t["chunk"] * (len(t["members"]) - 1)
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

RAID_DESC = {"single": "1 image", "raid0": "4 members", "raid5": "5 members"}
RAID_TARGETS = ["single", "raid0", "raid5"]
RAID_PAIRS = [("raid0", "single"), ("raid5", "raid0")]
RAID_GOALS = {
    ("rr4k32", "iops", "raid0", "single"): (">=", 0.9),
    ("sw1m8", "mbs", "raid5", "raid0"): (">=", 0.6),
}

def cmd_raid_report(tsv, jobs_tsv, stripes_tsv, md_path, meta_path):
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
    stripes = []
    with open(stripes_tsv) as f:
        for line in f:
            stripes.append(line.rstrip("\n").split("\t"))
    with open(meta_path) as f:
        meta = f.read().strip().splitlines()
    rounds = sorted({r for d in data.values() for r in d})
    nr = "%d round%s" % (len(rounds), "" if len(rounds) == 1 else "s")
    out = []
    md = ["## rawvec RAID layers", ""] + ["- " + m for m in meta] + [""]
    md += ["Medians over %s; ratios are medians of the per-round ratios." % nr,
           "", "| job | metric | %s | %s |" % (
               " | ".join("%s (%s)" % (t, RAID_DESC[t]) for t in RAID_TARGETS),
               " | ".join("%s/%s" % p for p in RAID_PAIRS)),
           "|---|---|" + "--:|" * (len(RAID_TARGETS) + len(RAID_PAIRS))]
    goals_out = []
    for jid, label, metrics, tgts in jobs:
        out.append("")
        out.append("== RAID: %s (median of %s) ==" % (label, nr))
        for m in metrics:
            unit, f, higher = METRICS[m]
            vals = {t: [data.get((jid, t), {}).get(r, {}).get(m) for r in rounds]
                    for t in tgts}
            out.append("  %-22s %12s   per round" % ("target", unit))
            for t in tgts:
                got = [v for v in vals[t] if v is not None]
                out.append("  %-22s %12s   %s" % (
                    "%s (%s)" % (t, RAID_DESC[t]), fmt(f, med(got)),
                    " ".join(fmt(f, v) for v in vals[t])))
            out.append("  %-22s %7s   %-8s %-5s  per round" %
                       ("ratio" + ("" if higher else " (lower is better)"),
                        "median", "target", ""))
            cells = ratio_cells(out, goals_out, RAID_GOALS, RAID_PAIRS, vals,
                                jid, m, label, unit, tgts)
            md.append("| %s | %s | %s | %s |" % (
                label, unit,
                " | ".join(fmt(f, med([v for v in vals[t] if v is not None]))
                           if t in tgts else "-" for t in RAID_TARGETS),
                " | ".join(cells)))
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

if __name__ == "__main__":
    cmd = sys.argv[1]
    {"fio": cmd_fio, "stats": cmd_stats, "report": cmd_report,
     "rstats": cmd_rstats, "sweep": cmd_sweep,
     "raid_report": cmd_raid_report}[cmd](*sys.argv[2:])
