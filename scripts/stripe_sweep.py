"""stripe_sweep.py: stripe-sweep.sh's reader of fio JSON and rawvec stats;
writes the CSV rows, the gnuplot scripts and the closing summary.

  point CSV MEMBERS_CSV LEVEL N CHUNK CHUNK_BYTES JOB PATTERN BS QD FIO BEFORE AFTER
  plots CSV OUTDIR BALANCE_CHUNK MEMBER_DESC TERM
  summary CSV SECONDS TRANSPORT
"""
import csv, json, math, os, statistics, sys

import fio_json

HEADER = ["level", "members", "chunk", "chunk_bytes", "job", "pattern", "bs",
          "iodepth", "iops", "mbps", "clat_p50_us", "clat_p99_us",
          "lat_p50_us", "lat_p99_us", "disk_bytes", "member_bytes_total",
          "amplification", "member_bytes_min", "member_bytes_max",
          "member_max_min", "member_cov", "member_p99_us",
          "full_stripe_writes", "rmw_writes", "rcw_writes", "parity_reads",
          "stripe_waits", "merged_writes", "member_bytes"]
MEMBER_HEADER = ["level", "members", "chunk", "job", "member", "reads",
                 "read_bytes", "writes", "write_bytes", "p99_us"]
PARITY = ["full_stripe_writes", "rmw_writes", "rcw_writes", "parity_reads",
          "stripe_waits", "merged_writes"]


def die(msg):
    fio_json.die("stripe-sweep", msg)


def load(path):
    return fio_json.load_json(path, "stripe-sweep")


def disks(stats, level):
    """The nodes that stand for one MEMBER each, in expression order."""
    ms = stats["target"].get("members", [])
    if level == "raid10":
        return [d for m in ms for d in m.get("members", [])]
    return ms


def hist_delta(a, b):
    out = {}
    for k, v in b.items():
        d = v - a.get(k, 0)
        if d > 0:
            out[int(k)] = out.get(int(k), 0) + d
    return out


def hist_p(hist, q):
    """rawvec's percentile: the middle of the bucket holding rank ceil(q*n)
    (log-linear buckets: every power of two cut in 8)."""
    n = sum(hist.values())
    if not n:
        return 0.0
    rank = max(1, math.ceil(q * n - 1e-9))
    seen = 0
    for lo in sorted(hist):
        seen += hist[lo]
        if seen >= rank:
            width = 1 if lo < 8 else 1 << (lo.bit_length() - 4)
            return (lo + width / 2) / 1000.0
    return 0.0


def pct(sec, kind, p):
    return sec[kind].get("percentile", {}).get("%.6f" % p, 0) / 1000.0


def cmd_point(csv_path, mcsv_path, level, members, chunk, chunk_bytes, job,
              pattern, bs, iodepth, fio_path, before_path, after_path):
    fio = load(fio_path)
    fj = fio["jobs"][0]
    if fj.get("error"):
        die("%s: fio reports error %d (%s)" % (fio_path, fj["error"],
                                               os.strerror(fj["error"])))
    sec = fj["write" if pattern.endswith("write") else "read"]
    if not sec.get("total_ios"):
        die(fio_path + ": fio completed no I/O")
    a, b = load(before_path), load(after_path)
    da, db = disks(a, level), disks(b, level)
    if len(da) != int(members) or len(db) != int(members):
        die("%s: %d member nodes in stats, expected %s" %
            (after_path, len(db), members))
    terr = b["target"]["errors"] - a["target"]["errors"]
    if terr:
        print("stripe-sweep: warning: %d I/O errors in the layout during %s"
              % (terr, job), file=sys.stderr)
    per, mrows = [], []
    for i, (x, y) in enumerate(zip(da, db)):
        d = {k: y[k] - x[k] for k in ("reads", "read_bytes", "writes",
                                      "write_bytes")}
        h = hist_delta(x["read_lat"]["hist"], y["read_lat"]["hist"])
        for k, v in hist_delta(x["write_lat"]["hist"],
                               y["write_lat"]["hist"]).items():
            h[k] = h.get(k, 0) + v
        d["p99_us"] = hist_p(h, 0.99)
        per.append(d)
        mrows.append([level, members, chunk, job, i, d["reads"],
                      d["read_bytes"], d["writes"], d["write_bytes"],
                      "%.1f" % d["p99_us"]])
    mb = [d["read_bytes"] + d["write_bytes"] for d in per]
    total = sum(mb)
    disk = (b["read_bytes"] - a["read_bytes"]) + (b["write_bytes"] - a["write_bytes"])
    mean = total / len(mb)
    cov = statistics.pstdev(mb) / mean if mean else 0.0
    maxmin = ("%.3f" % (max(mb) / min(mb))) if min(mb) else ("inf" if max(mb) else "")
    t0, t1 = a["target"], b["target"]
    par = [str(t1[k] - t0[k]) if k in t1 else "" for k in PARITY]
    row = [level, members, chunk, chunk_bytes, job, pattern, bs, iodepth,
           "%.1f" % sec["iops"], "%.2f" % (sec["bw_bytes"] / 1e6),
           "%.1f" % pct(sec, "clat_ns", 50), "%.1f" % pct(sec, "clat_ns", 99),
           "%.1f" % pct(sec, "lat_ns", 50), "%.1f" % pct(sec, "lat_ns", 99),
           disk, total, "%.3f" % (total / disk) if disk else "",
           min(mb), max(mb), maxmin, "%.4f" % cov,
           "%.1f" % max(d["p99_us"] for d in per)] + par + [";".join(map(str, mb))]
    for path, hdr, rows in ((csv_path, HEADER, [row]),
                            (mcsv_path, MEMBER_HEADER, mrows)):
        new = not os.path.exists(path)
        with open(path, "a", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            if new:
                w.writerow(hdr)
            w.writerows(rows)
    small = int(bs) < 131072
    msg = ("%.0f IOPS" % sec["iops"]) if small else ("%.1f MB/s" % (sec["bw_bytes"] / 1e6))
    msg += ", p99 %.0f us, member max/min %s" % (pct(sec, "lat_ns", 99), maxmin or "-")
    if par[0]:
        msg += ", stripes full/rmw/rcw %s/%s/%s" % tuple(par[:3])
    print(msg)


def read_rows(csv_path):
    with open(csv_path, newline="") as f:
        r = csv.DictReader(f)
        if r.fieldnames != HEADER:
            die(csv_path + ": not a stripe-sweep results.csv (header differs)")
        return list(r)


def ordered(xs):
    seen, out = set(), []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def gq(s):
    """A gnuplot double-quoted string; a backslash-n in s is a newline."""
    return '"' + str(s).replace('"', '\\"') + '"'


def series_name(r):
    return "%s x%s" % (r["level"], r["members"]) + (
        " (no chunk)" if r["chunk_bytes"] == "0" else "")


def small_bs(r):
    return int(r["bs"]) < 131072


def job_title(r):
    kb = int(r["bs"])
    bs = ("%dm" % (kb >> 20)) if kb % (1 << 20) == 0 else (
        "%dk" % (kb >> 10) if kb % 1024 == 0 else str(kb))
    return "%s %s QD%s" % (r["pattern"], bs, r["iodepth"])


def slug(job):
    return job.replace(":", "-")


def head(term, png, title, subtitle):
    return ["set terminal %s noenhanced size 960,600 font 'sans,10'" % term,
            "set output %s" % gq(png),
            "set title %s" % gq(title + "\\n" + subtitle),
            "set grid", "set key outside right top box"]


def chunk_xaxis(chunks):
    lab = []
    for c in chunks:
        lab.append("%s %d" % (gq(label(c)), c))
    return ["set logscale x 2", "set xlabel 'chunk size'",
            "set xtics (%s)" % ", ".join(lab),
            "set xrange [%g:%g]" % (chunks[0] / 1.4, chunks[-1] * 1.4)]


def label(b):
    for unit, s in ((1 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")):
        if b % unit == 0:
            return "%d%s" % (b // unit, s)
    return str(b)


def line_plot(rows, job, chunks, value, ylabel, logy):
    """Datablocks and a plot command: one line per level x members over
    chunk; levels without a chunk (raid1) as a dashed level line."""
    out, plots = [], []
    for n, name in enumerate(ordered(series_name(r) for r in rows)):
        pts = sorted((int(r["chunk_bytes"]), value(r)) for r in rows
                     if series_name(r) == name)
        if pts[0][0] == 0:  # no chunk: the same value across the axis
            pts = [(chunks[0], pts[0][1]), (chunks[-1], pts[0][1])]
            style = "with lines dt 2 lw 2"
        else:
            style = "with linespoints lw 2 pt 7 ps 1.2"
        out.append("$S%d << EOD" % n)
        out += ["%d %s" % (c, v) for c, v in pts]
        out.append("EOD")
        plots.append("$S%d using 1:2 %s title %s" % (n, style, gq(name)))
    out.append("set ylabel %s" % gq(ylabel))
    if logy:
        out.append("set logscale y")
    else:
        out.append("set yrange [0:*]")
    out.append("plot " + ", \\\n     ".join(plots))
    return out


def cmd_plots(csv_path, outdir, balance_chunk, member_desc, term):
    rows = read_rows(csv_path)
    if not rows:
        die(csv_path + ": no rows")
    gpdir = os.path.join(outdir, "gnuplot")
    os.makedirs(gpdir, exist_ok=True)
    chunks = sorted({int(r["chunk_bytes"]) for r in rows} - {0})
    if not chunks:
        chunks = [4096, 1 << 20]
    bal = int(balance_chunk) if balance_chunk else chunks[len(chunks) // 2]
    if bal not in chunks:
        bal = chunks[len(chunks) // 2]
    sub = "members: " + member_desc
    written = []
    for job in ordered(r["job"] for r in rows):
        jr = [r for r in rows if r["job"] == job]
        title = job_title(jr[0])
        s = slug(job)

        # (1) throughput vs chunk
        png = "throughput-%s.png" % s
        if small_bs(jr[0]):
            metric, what = (lambda r: r["iops"]), "IOPS"
        else:
            metric, what = (lambda r: r["mbps"]), "MB/s (10^6 bytes/s)"
        gp = head(term, png, "%s: %s vs chunk size" % (title, what.split()[0]), sub)
        gp += chunk_xaxis(chunks)
        gp += line_plot(jr, job, chunks, metric, what, False)
        written.append((png, gp))

        # (3) p99 latency vs chunk; a log axis when it spans a lot
        png = "p99-%s.png" % s
        vals = [float(r["lat_p99_us"]) for r in jr if float(r["lat_p99_us"]) > 0]
        logy = bool(vals) and max(vals) / min(vals) > 30
        gp = head(term, png, "%s: p99 latency vs chunk size (fio, submit to completion)"
                  % title, sub)
        gp += chunk_xaxis(chunks)
        gp += line_plot(jr, job, chunks, lambda r: r["lat_p99_us"],
                        "p99 latency (us)", logy)
        written.append((png, gp))

        # (2) load balance at one chunk: each member's bytes against an
        # even share of the disk's bytes (disk bytes / members), so equal
        # bars mean balance and their height the redundancy's cost
        png = "balance-%s.png" % s
        br = [r for r in jr if int(r["chunk_bytes"]) in (bal, 0)]
        width = max(int(r["members"]) for r in br) if br else 1
        gp = head(term, png, "%s: bytes per member at chunk %s (read + write; 100 = disk bytes / members)"
                  % (title, label(bal)), sub)
        gp += ["set style data histograms",
               "set style histogram clustered gap 1",
               "set style fill solid 0.85 border -1", "set boxwidth 0.9",
               "set datafile missing '?'",
               "set ylabel \"member's bytes, % of (disk bytes / members)\"",
               "set xtics nomirror", "set bmargin 6", "$B << EOD"]
        top = 100.0
        for r in br:
            mb = [int(x) for x in r["member_bytes"].split(";")]
            share = int(r["disk_bytes"]) / len(mb) if mb else 0
            cells = ["%.2f" % (100.0 * x / share) if share else "?" for x in mb]
            if share:
                top = max(top, 100.0 * max(mb) / share)
            cells += ["?"] * (width - len(cells))
            amp = ("%.2f" % float(r["amplification"])) if r["amplification"] else "-"
            name = "%s x%s\\nmax/min %s\\namp %s" % (r["level"], r["members"],
                                                 r["member_max_min"] or "-", amp)
            gp.append(gq(name) + " " + " ".join(cells))
        gp.append("EOD")
        gp.append("set yrange [0:%.0f]" % (top * 1.12))
        gp.append("plot for [i=2:%d] $B using i:xtic(1) title sprintf('disk %%d', i-2), \\\n"
                  "     100 with lines dt 2 lc 'black' title 'even share'" % (width + 1))
        written.append((png, gp))
    for png, gp in written:
        path = os.path.join(gpdir, png[:-4] + ".gp")
        with open(path, "w") as f:
            f.write("# " + png + ": run from the sweep's directory: gnuplot gnuplot/"
                    + os.path.basename(path) + "\n")
            f.write("\n".join(gp) + "\n")
        print(path)


def cmd_summary(csv_path, seconds, transport):
    rows = read_rows(csv_path)
    best = []
    for job in ordered(r["job"] for r in rows):
        jr = [r for r in rows if r["job"] == job]
        key = "iops" if small_bs(jr[0]) else "mbps"
        r = max(jr, key=lambda r: float(r[key]))
        best.append("%s %s x%s@%s %.0f %s" % (
            job, r["level"], r["members"], r["chunk"], float(r[key]),
            "IOPS" if key == "iops" else "MB/s"))
    print("%d points in %s s over %s; best: %s" % (
        len(rows), seconds, transport, "; ".join(best)))


if __name__ == "__main__":
    cmds = {"point": cmd_point, "plots": cmd_plots, "summary": cmd_summary}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        die("helper: no such command")
    cmds[sys.argv[1]](*sys.argv[2:])
