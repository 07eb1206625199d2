#!/usr/bin/env bash
# bench: compare rawvec with the raw image and with qemu-storage-daemon's
# FUSE export, in one run, in rounds.
#
# Targets, all on the SAME image file (same extents, same disk), never two
# of them at once: fio directly on the image (the limit), rawvec
# --transport=uring, rawvec --transport=dev, and qemu-storage-daemon
# --export type=fuse.  Each FUSE daemon is mounted for one fio job and
# unmounted after it, so exactly one is mounted over the image at a time.
#
# The disk's speed drifts (2x within minutes), so every round runs every job
# on every target back to back, in an order rotated per round and per job,
# and what counts are the per-round ratios and their medians.
#
# Environment (defaults in brackets):
#   RUNTIME    seconds measured per fio job [10]
#   RAMP       seconds of fio ramp-up before measuring [2]
#   ROUNDS     rounds [3]
#   SIZE       image size, k/M/G suffixes, a multiple of 1M [1G]
#   BENCH_DIR  where the image, mount points and results go; must be on the
#              real disk, not tmpfs [/var/tmp/rawvec-bench]
#   RAWVEC     the rawvec binary [build/rawvec]; it is copied first, so a
#              rebuild during the run does not mix two versions
#   REFILL=1   rewrite the image even if a complete one of SIZE exists
#
# Output: a table per job on stdout, $BENCH_DIR/results.md (Markdown, for
# the README), $BENCH_DIR/results.tsv (every measurement) and the fio JSON
# of every run in $BENCH_DIR/runs/.  Targets that are missed are reported
# as MISS and do not fail the script; errors do (non-zero exit).
#
# Run it as root, via `make bench` (installs fio and qemu-storage-daemon).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNTIME=${RUNTIME:-10}
RAMP=${RAMP:-2}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-1G}
BENCH_DIR=${BENCH_DIR:-/var/tmp/rawvec-bench}
RAWVEC=${RAWVEC:-$here/build/rawvec}
REFILL=${REFILL:-0}

URING_PARAM=/sys/module/fuse/parameters/enable_uring
TARGETS=(raw rawvec-uring rawvec-dev qsd)
# id|label|fio rw|bs|iodepth
JOBS=(
	"rr4k32|4k randread QD32|randread|4k|32"
	"rw4k32|4k randwrite QD32|randwrite|4k|32"
	"sr1m8|1M seq read QD8|read|1M|8"
	"sw1m8|1M seq write QD8|write|1M|8"
	"rr4k1|4k randread QD1|randread|4k|1"
)

die() {
	echo "bench: error: $*" >&2
	exit 1
}
note() { echo "bench: $*"; }

# ---- state the cleanup trap undoes --------------------------------------
DAEMON_PID=""   # the one rawvec or qemu-storage-daemon running, if any
DAEMON_NAME=""
DAEMON_LOG=""
TMPD=""
MNT=""          # rawvec's mount point (a directory)
QMNT=""         # qemu-storage-daemon's mount point (a regular file)

is_mounted() { findmnt -rn --mountpoint "$1" >/dev/null 2>&1; }

# Abort the FUSE connection of mount $1, so that whatever waits on its
# daemon fails instead: through fusectl if it is mounted, else umount -f
# (which aborts a FUSE connection before it tries to unmount).
fuse_abort() {
	local majmin minor
	majmin=$(findmnt -rn -o MAJ:MIN --mountpoint "$1" 2>/dev/null | head -1) || return 0
	minor=${majmin#*:}
	if [[ -n $minor && -w /sys/fs/fuse/connections/$minor/abort ]]; then
		echo 1 >"/sys/fs/fuse/connections/$minor/abort" 2>/dev/null
	else
		umount -f "$1" 2>/dev/null
	fi
	return 0
}

unmount_quietly() {
	local m=$1
	is_mounted "$m" || return 0
	umount "$m" 2>/dev/null && return 0
	fuse_abort "$m"
	is_mounted "$m" || return 0
	umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
}

# Wait up to $2 tenths of a second for process $1 to exit.
wait_gone() {
	local pid=$1 n=$2
	while kill -0 "$pid" 2>/dev/null && ((n-- > 0)); do
		sleep 0.1
	done
	! kill -0 "$pid" 2>/dev/null
}

cleanup() {
	local rc=$? did=""
	set +e
	trap - EXIT INT TERM
	[[ -n ${WATCHDOG_PID:-} ]] && kill -TERM "$WATCHDOG_PID" 2>/dev/null
	if [[ -n $DAEMON_PID ]]; then
		kill -TERM "$DAEMON_PID" 2>/dev/null
		wait_gone "$DAEMON_PID" 50 || kill -KILL "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
		did+=" stopped $DAEMON_NAME (pid $DAEMON_PID);"
	fi
	for m in "$MNT" "$QMNT"; do
		if [[ -n $m ]] && is_mounted "$m"; then
			unmount_quietly "$m"
			did+=" unmounted $m;"
		fi
	done
	[[ -n $TMPD ]] && rm -rf "$TMPD"
	[[ -z $did ]] || echo "bench: cleanup:${did%;}" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- checks --------------------------------------------------------------
[[ $(id -u) == 0 ]] || die "run as root (mounting, --enable-uring, O_DIRECT on the image): sudo make bench"
for v in RUNTIME ROUNDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: not a positive integer"
done
[[ $RAMP =~ ^[0-9]+$ ]] || die "RAMP=$RAMP: not a non-negative integer"
for c in fio qemu-storage-daemon; do
	command -v "$c" >/dev/null ||
		die "$c not found: run 'make bench' or 'sh scripts/deps.sh --bench' (as root) to install it"
done
for c in findmnt numfmt flock timeout dd; do
	command -v "$c" >/dev/null || die "$c not found (util-linux/coreutils)"
done
# fio depends on python3 in Debian, so /usr/bin/python3 is there with it.
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3) || die "python3 not found (needed to read fio's JSON)"
[[ -x $RAWVEC ]] || die "$RAWVEC not found or not executable: run 'make all' (or set RAWVEC=)"
[[ -c /dev/fuse ]] || die "/dev/fuse missing: modprobe fuse"
[[ -e $URING_PARAM ]] ||
	die "$URING_PARAM missing: this kernel has no FUSE-over-io_uring (needs 6.14+ with CONFIG_FUSE_IO_URING), so --transport=uring cannot be measured"

SIZE_BYTES=$(numfmt --from=iec "${SIZE^^}" 2>/dev/null) || die "SIZE=$SIZE: not a size (e.g. 256M, 1G)"
((SIZE_BYTES >= 16 << 20 && SIZE_BYTES % (1 << 20) == 0)) ||
	die "SIZE=$SIZE: must be a multiple of 1M and at least 16M"
SIZE_MB=$((SIZE_BYTES >> 20))

mkdir -p "$BENCH_DIR" || die "cannot create BENCH_DIR=$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd -P)
fstype=$(findmnt -n -o FSTYPE -T "$BENCH_DIR" | head -1)
[[ -n $fstype ]] || fstype=$(stat -f -c %T "$BENCH_DIR")
case $fstype in
tmpfs | ramfs) die "BENCH_DIR=$BENCH_DIR is on $fstype: put it on the real disk (io_uring punts tmpfs reads to io-wq threads, so nothing there measures a disk)" ;;
fuse* | overlayfs | nfs*) note "warning: BENCH_DIR is on $fstype, not a local disk file system" ;;
esac

exec 9>"$BENCH_DIR/.lock"
flock -n 9 || die "another bench run is using $BENCH_DIR"

IMG=$BENCH_DIR/image.raw
MNT=$BENCH_DIR/mnt
QMNT=$BENCH_DIR/qsd-export
RUNS=$BENCH_DIR/runs
TSV=$BENCH_DIR/results.tsv
MD=$BENCH_DIR/results.md
TMPD=$(mktemp -d)
# Leftovers of a run that was killed hard: this directory is ours (locked).
for m in "$MNT" "$QMNT"; do
	if is_mounted "$m"; then
		note "unmounting a leftover mount at $m"
		unmount_quietly "$m"
		! is_mounted "$m" || die "cannot unmount the leftover mount at $m"
	fi
done
mkdir -p "$MNT"
[[ -d $QMNT ]] && die "$QMNT is a directory; qemu-storage-daemon's FUSE export needs a regular file"
: >"$QMNT"
rm -rf "$RUNS"
mkdir -p "$RUNS"

# A private copy of the binary: others may rebuild build/rawvec meanwhile.
RV_BIN=$TMPD/rawvec
cp "$RAWVEC" "$RV_BIN"
RV_VERSION=$("$RV_BIN" -V 2>&1 | head -1) || die "$RAWVEC -V failed"

# ---- the image: fully written once, so no read hits a hole --------------
stamp=$BENCH_DIR/image.filled
img_ok=0
if [[ $REFILL != 1 && -f $IMG && -f $stamp && $(cat "$stamp") == "$SIZE_BYTES" &&
	$(stat -c %s "$IMG") == "$SIZE_BYTES" ]] &&
	(($(stat -c %b "$IMG") * $(stat -c %B "$IMG") >= SIZE_BYTES)); then
	img_ok=1
fi
if ((img_ok)); then
	note "reusing the fully written image $IMG ($SIZE) (REFILL=1 rewrites it)"
else
	rm -f "$IMG" "$stamp"
	avail=$(df --output=avail -B1 "$BENCH_DIR" | tail -1)
	((avail > SIZE_BYTES + (256 << 20))) ||
		die "not enough space in $BENCH_DIR for a $SIZE image"
	note "writing the image $IMG ($SIZE of random data, O_DIRECT)"
	dd if=/dev/urandom of="$IMG" bs=1M count="$SIZE_MB" iflag=fullblock \
		oflag=direct conv=fsync status=none || die "writing $IMG failed"
	echo "$SIZE_BYTES" >"$stamp"
fi

# ---- Python helpers: fio JSON, rawvec stats, the report ------------------
cat >"$TMPD/helper.py" <<'PYEOF'
import json, statistics, sys

def die(msg):
    print("bench: error: " + msg, file=sys.stderr)
    sys.exit(1)

def load_json(path):
    with open(path) as f:
        text = f.read()
    # fio may put a warning line before the JSON
    start = text.find("{")
    if start < 0:
        die(path + ": no JSON in fio's output")
    return json.loads(text[start:])

def cmd_fio(path, rw):
    """Print 'iops<TAB>bytes_per_s<TAB>mean_lat_us' of a one-job fio run."""
    d = load_json(path)
    job = d["jobs"][0]
    if job.get("error"):
        die("%s: fio reports error %d" % (path, job["error"]))
    sec = job["write" if "write" in rw else "read"]
    if not sec.get("total_ios"):
        die(path + ": fio completed no I/O")
    print("%.1f\t%d\t%.2f" % (sec["iops"], sec["bw_bytes"],
                              sec["lat_ns"]["mean"] / 1000.0))

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
SHORT = {"rawvec-uring": "uring", "rawvec-dev": "dev", "raw": "raw", "qsd": "qsd"}
# The issue's targets: (job, metric, numerator, denominator) -> (op, bound)
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
    out = []
    md = ["## rawvec benchmark", ""] + ["- " + m for m in meta] + [""]
    md += ["Medians over %d round%s; ratios are medians of the per-round "
           "ratios (latency ratios: lower is better)." %
           (len(rounds), "" if len(rounds) == 1 else "s"), ""]
    md += ["| job | metric | raw | rawvec uring | rawvec dev | qsd | "
           "uring/raw | uring/qsd | dev/raw | dev/qsd |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    goals_out = []
    for jid, label, metrics in jobs:
        out.append("")
        out.append("== %s (median of %d round%s) ==" %
                   (label, len(rounds), "" if len(rounds) == 1 else "s"))
        for m in metrics:
            unit, f, higher = METRICS[m]
            vals = {t: [data.get((jid, t), {}).get(r, {}).get(m) for r in rounds]
                    for t in TARGETS}
            out.append("  %-14s %12s   per round" % ("target", unit))
            for t in TARGETS:
                got = [v for v in vals[t] if v is not None]
                out.append("  %-14s %12s   %s" % (
                    t, fmt(f, med(got)), " ".join(fmt(f, v) for v in vals[t])))
            out.append("  %-22s %7s   %-8s %-5s  per round" %
                       ("ratio" + ("" if higher else " (lower is better)"),
                        "median", "target", ""))
            row_ratios = []
            for num, den in PAIRS:
                per = [a / b if a is not None and b else None
                       for a, b in zip(vals[num], vals[den])]
                r = med([x for x in per if x is not None])
                goal = GOALS.get((jid, m, num, den))
                v = verdict(goal, r)
                gtxt = "%s %.2f" % goal if goal else ""
                out.append("  %-22s %7s   %-8s %-5s  %s" % (
                    "%s/%s" % (num, den), fmt("%.2f", r), gtxt, v,
                    " ".join(fmt("%.2f", x) for x in per)))
                cell = fmt("%.2f", r)
                if goal:
                    cell += " (%s %g: %s)" % (goal[0], goal[1], v)
                    goals_out.append((label, unit, num, den, r, goal, v))
                row_ratios.append(cell)
            md.append("| %s | %s | %s | %s |" % (
                label, unit,
                " | ".join(fmt(f, med([v for v in vals[t] if v is not None]))
                           for t in TARGETS),
                " | ".join(row_ratios)))
    out.append("")
    out.append("== targets from the issue (median per-round ratio) ==")
    md += ["", "### Targets", "", "| target | median ratio | result |",
           "|---|--:|---|"]
    npass = 0
    for label, unit, num, den, r, goal, v in goals_out:
        what = "%s %s: %s/%s %s %g" % (label, "latency" if unit.startswith("mean")
                                        else unit, num, den, goal[0], goal[1])
        out.append("  %-52s %6s  %s" % (what, fmt("%.2f", r), v or "n/a"))
        md.append("| %s | %s | %s |" % (what, fmt("%.2f", r), v or "n/a"))
        npass += v == "PASS"
    out.append("  %d of %d targets met" % (npass, len(goals_out)))
    md.append("")
    md.append("%d of %d targets met." % (npass, len(goals_out)))
    print("\n".join(out))
    with open(md_path, "w") as f:
        f.write("\n".join(md) + "\n")

if __name__ == "__main__":
    cmd = sys.argv[1]
    {"fio": cmd_fio, "stats": cmd_stats, "report": cmd_report}[cmd](*sys.argv[2:])
PYEOF
helper() { "$PY" "$TMPD/helper.py" "$@"; }

# ---- daemons -------------------------------------------------------------
# Wait until $1 is mounted by $DAEMON_PID.  If the daemon exits first,
# show its log and return 1 (the caller decides whether that is fatal).
wait_mounted() {
	local m=$1 n=200 rc=0
	until is_mounted "$m"; do
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			wait "$DAEMON_PID" || rc=$?
			DAEMON_PID=""
			echo "bench: $DAEMON_NAME exited (status $rc) before mounting $m:" >&2
			sed 's/^/    /' "$DAEMON_LOG" >&2
			return 1
		fi
		((n-- > 0)) || die "$DAEMON_NAME did not mount $m within 20 s (log: $DAEMON_LOG)"
		sleep 0.1
	done
}

# Unmount, then wait for the daemon and insist on a clean exit.
stop_daemon() {
	local m=$1 how=$2 rc=0
	[[ -n $DAEMON_PID ]] || return 0
	if [[ $how == umount ]]; then
		umount "$m" || {
			fuse_abort "$m"
			die "umount $m failed ($DAEMON_NAME busy?)"
		}
	else
		kill -TERM "$DAEMON_PID"
	fi
	wait_gone "$DAEMON_PID" 300 || {
		sed 's/^/    /' "$DAEMON_LOG" >&2
		die "$DAEMON_NAME did not exit within 30 s of being unmounted"
	}
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=""
	if ((rc != 0)); then
		sed 's/^/    /' "$DAEMON_LOG" >&2
		die "$DAEMON_NAME exited with status $rc"
	fi
	! is_mounted "$m" || die "$m is still mounted after $DAEMON_NAME exited"
}

start_rawvec() {
	local transport=$1
	local args=(-f "--transport=$transport")
	[[ $transport == uring ]] && args+=(--enable-uring)
	DAEMON_NAME="rawvec --transport=$transport"
	DAEMON_LOG=$RUNS/daemon.log
	# Its own session: a Ctrl-C meant for the bench must not unmount it
	# under fio; the cleanup stops it in order.
	setsid "$RV_BIN" "${args[@]}" "$MNT" "$IMG" >"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	wait_mounted "$MNT" || die "$DAEMON_NAME failed to start"
}

QSD_AIO=io_uring
start_qsd() {
	DAEMON_NAME="qemu-storage-daemon (aio=$QSD_AIO)"
	DAEMON_LOG=$RUNS/daemon.log
	# QEMU option values escape a comma by doubling it.
	setsid qemu-storage-daemon \
		--blockdev "driver=file,node-name=file0,filename=${IMG//,/,,},cache.direct=on,aio=$QSD_AIO" \
		--blockdev driver=raw,node-name=raw0,file=file0 \
		--export "type=fuse,id=exp0,node-name=raw0,mountpoint=${QMNT//,/,,},writable=on" \
		>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	wait_mounted "$QMNT"
}

# qemu 7.2 takes aio=io_uring only when built with liburing (Debian's is);
# otherwise fall back to aio=native (Linux AIO), as QEMU itself would.
probe_qsd() {
	if start_qsd 2>"$TMPD/probe.err"; then
		stop_daemon "$QMNT" kill
		return 0
	fi
	if ! grep -qi 'io_uring\|aio' "$DAEMON_LOG"; then
		cat "$TMPD/probe.err" >&2
		die "qemu-storage-daemon cannot export $IMG over FUSE"
	fi
	note "qemu-storage-daemon refused aio=io_uring: $(head -1 "$DAEMON_LOG")"
	QSD_AIO=native
	note "falling back to aio=native (Linux AIO) for qemu-storage-daemon"
	start_qsd || die "qemu-storage-daemon failed with aio=native too"
	stop_daemon "$QMNT" kill
}

# ---- one measurement -----------------------------------------------------
WATCHDOG_PID=""
WATCHDOG_FILE=""
# watchdog SECONDS (in the background): if still running by then, save the
# daemon's kernel stacks to $WATCHDOG_FILE and kill it.
watchdog() {
	local sp
	trap - EXIT INT
	trap 'kill "$sp" 2>/dev/null; exit 0' TERM
	sleep "$1" &
	sp=$!
	wait "$sp"
	[[ -n $DAEMON_PID ]] || exit 0
	{
		echo "$DAEMON_NAME (pid $DAEMON_PID) hung; its threads' kernel stacks:"
		for t in /proc/"$DAEMON_PID"/task/*; do
			echo "-- ${t##*/} $(cat "$t/comm" 2>/dev/null)"
			cat "$t/stack" 2>/dev/null
		done
	} >"$WATCHDOG_FILE"
	kill -KILL "$DAEMON_PID" 2>/dev/null
	exit 0
}
stop_watchdog() {
	[[ -n $WATCHDOG_PID ]] || return 0
	kill -TERM "$WATCHDOG_PID" 2>/dev/null || true
	wait "$WATCHDOG_PID" 2>/dev/null || true
	WATCHDOG_PID=""
}

# run_one ROUND JOB_SPEC TARGET: mount TARGET, run the fio job, unmount,
# append "round job target iops bytes/s lat_us" to $TSV.
run_one() {
	local round=$1 spec=$2 target=$3 jid label rw bs qd file out res
	local iops bw lat stats=""
	IFS='|' read -r jid label rw bs qd <<<"$spec"
	out=$RUNS/r$round-$jid-$target
	case $target in
	raw) file=$IMG ;;
	rawvec-uring) start_rawvec uring; file=$MNT/disk ;;
	rawvec-dev) start_rawvec dev; file=$MNT/disk ;;
	qsd)
		start_qsd || die "$DAEMON_NAME failed to start"
		file=$QMNT
		;;
	esac
	# fio --thread is one process, so timeout --foreground can kill all of
	# it, and a Ctrl-C reaches it at once (timeout's own process group
	# would keep the terminal's signals away from fio).  A FUSE daemon that
	# stops answering leaves fio unkillable (it waits for the replies even
	# when killed), which the watchdog ends by killing the daemon.
	WATCHDOG_FILE=$out.hung
	watchdog $((RUNTIME + RAMP + 75)) &
	WATCHDOG_PID=$!
	if ! timeout --foreground -k 10 $((RUNTIME + RAMP + 60)) fio --thread \
		--name="$jid" --filename="$file" --allow_file_create=0 \
		--size="$SIZE_BYTES" \
		--ioengine=io_uring --direct=1 --rw="$rw" --bs="$bs" \
		--iodepth="$qd" --time_based --runtime="$RUNTIME" \
		--ramp_time="$RAMP" --output-format=json --output="$out.json" \
		>"$out.log" 2>&1; then
		stop_watchdog
		tail -n 15 "$out.log" | sed 's/^/    /' >&2
		[[ -n $DAEMON_LOG ]] && tail -n 15 "$DAEMON_LOG" | sed 's/^/    /' >&2
		[[ -e $WATCHDOG_FILE ]] &&
			die "fio $label on $target hung: $DAEMON_NAME stopped answering; killed it (its kernel stacks: $WATCHDOG_FILE)"
		die "fio $label on $target failed (see $out.log)"
	fi
	res=$(helper fio "$out.json" "$rw") || die "fio $label on $target: bad result"
	IFS=$'\t' read -r iops bw lat <<<"$res"
	case $target in
	rawvec-*)
		cat "$MNT/stats" >"$out.stats" || die "reading $MNT/stats failed"
		stop_watchdog
		stats=$(helper stats "$out.stats" "${target#rawvec-}") ||
			die "$target: wrong transport or I/O errors (see $out.stats)"
		stop_daemon "$MNT" umount
		;;
	qsd)
		stop_watchdog
		stop_daemon "$QMNT" kill
		;;
	*) stop_watchdog ;;
	esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$jid" "$target" "$iops" "$bw" "$lat" >>"$TSV"
	if [[ $bs == 1M ]]; then
		printf -v res '%8.1f MB/s' "$(bc_div "$bw" 1000000)"
	else
		printf -v res '%8.0f IOPS' "$iops"
	fi
	[[ $qd == 1 ]] && res+=$(printf '  lat %7.1f us' "$lat")
	[[ -n $stats ]] && res+="  $stats"
	printf '  %-17s %-13s %s\n' "$label" "$target" "$res"
}
bc_div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

# ---- main ----------------------------------------------------------------
nruns=$((ROUNDS * ${#JOBS[@]} * ${#TARGETS[@]}))
est=$((nruns * (RUNTIME + RAMP + 2)))
note "rawvec: $RV_VERSION ($RAWVEC); $(qemu-storage-daemon --version | head -1); $(fio --version)"
note "image $IMG ($SIZE on $fstype), RUNTIME=${RUNTIME}s RAMP=${RAMP}s ROUNDS=$ROUNDS: $nruns fio runs, about $((est / 60)) min $((est % 60)) s"
probe_qsd
note "qemu-storage-daemon: aio=$QSD_AIO"

printf 'round\tjob\ttarget\tiops\tbw_bytes\tlat_us\n' >"$TSV"
: >"$TMPD/jobs.tsv"
for spec in "${JOBS[@]}"; do
	IFS='|' read -r jid label rw bs qd <<<"$spec"
	printf '%s\t%s\t%s\t%s\t%s\n' "$jid" "$label" "$rw" "$bs" "$qd" >>"$TMPD/jobs.tsv"
done

start_time=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
	note "round $r of $ROUNDS"
	for ((j = 0; j < ${#JOBS[@]}; j++)); do
		# Rotate the target order by round and job, so each target takes
		# each place in the sequence equally often.
		for ((t = 0; t < ${#TARGETS[@]}; t++)); do
			k=$(((t + r - 1 + j) % ${#TARGETS[@]}))
			run_one "$r" "${JOBS[j]}" "${TARGETS[k]}"
		done
	done
done
elapsed=$((SECONDS - start_time))

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs"
	echo "$RV_VERSION; $(qemu-storage-daemon --version | head -1 | sed 's/ (.*//'), aio=$QSD_AIO, cache.direct=on; $(fio --version)"
	echo "image: $SIZE, fully written, on $fstype; fio io_uring, O_DIRECT, ${RUNTIME}s per job after ${RAMP}s ramp, rounds: $ROUNDS, target order rotated per round and job"
	echo "raw = fio on the image file itself; rawvec uring/dev = rawvec --transport=uring/dev; qsd = qemu-storage-daemon --export type=fuse"
} >"$TMPD/meta"
helper report "$TSV" "$TMPD/jobs.tsv" "$MD" "$TMPD/meta"
echo
note "measured for $((elapsed / 60)) min $((elapsed % 60)) s; qemu-storage-daemon aio=$QSD_AIO"
note "Markdown table: $MD; all measurements: $TSV; fio JSON: $RUNS/"
