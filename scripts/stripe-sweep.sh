#!/bin/bash
# stripe-sweep: run a fio matrix (RAID level x member count x chunk x job)
# over rawvec layouts of simulated disks; write CSVs and gnuplot PNG plots.
#
# Usage: scripts/stripe-sweep.sh [--quick] [--plot-only DIR] [-h|--help]
#   (no option)      the default sweep (3 levels x 5 chunks x 4 jobs, about
#                    3 minutes on a 2-core machine)
#   --quick          1 level x 2 chunks x 1 job at 1 s: a smoke run (QUICK=1)
#   --plot-only DIR  redraw the plots of an earlier sweep from DIR/results.csv
#
# Every member is one MEMBER expression: by default a simulated disk,
# sim(null(size=1g), lat=1ms, bw=200m, qd=4), that takes 1 ms per I/O, 4 at
# a time (4000 IOPS), and at most 200 MiB/s: a network block volume, or an
# SSD at a shallow queue.  null() reads zeroes and drops writes, so the
# members behave like separate disks on one machine, and they stay slower
# than rawvec's CPU path: with SSD-fast members (lat=100us, qd=32) the 4k
# jobs on 2 CPUs measure the CPU and swing with other load.  For each
# (level, member count, chunk) rawvec mounts the layout once, each job runs
# fio on MOUNT/disk, and the member counters of MOUNT/stats are read before
# and after the job.
#
# Environment (defaults in brackets; the --quick defaults second):
#   LEVELS    raid0 raid1 raid5 raid6 raid10 [raid0 raid5 raid6 | raid0];
#             raid10 is raid0 over raid1 pairs; raid1 has no chunk and runs
#             once per member count
#   MEMBERS   member counts [5 | 4]; a level that cannot use a count (raid6
#             needs 4, raid10 an even number) skips it with a note
#   CHUNKS    chunk sizes, powers of two >= 4k [4k 16k 64k 256k 1m | 4k 64k]
#   JOBS      PATTERN:BS[:IODEPTH] with PATTERN randread, randwrite, seqread
#             or seqwrite; IODEPTH defaults to 32 below 128k, 8 from 128k
#             [randread:4k randwrite:4k seqread:1m seqwrite:1m | randread:4k]
#   RUNTIME   seconds measured per job [2 | 1]
#   RAMP      seconds of fio ramp-up before measuring [0.5 | 0.3]
#   MEMBER    one member's expression; %i becomes the member's index, for
#             image files: MEMBER='sim(/var/tmp/m%i.img, lat=4ms, qd=1)',
#             NBD exports: MEMBER='nbd(nbd+unix:///?socket=/run/m%i.sock)'
#             [sim(null(size=1g), lat=1ms, bw=200m, qd=4)]
#   BALANCE_CHUNK  the chunk of the load-balance plots [64k, else the middle]
#   OUT       output directory, must not hold a results.csv yet
#             [./sweep-out/YYYYmmdd-HHMMSS]
#   TRANSPORT rawvec --transport: auto, uring or dev [auto]
#   RAWVEC    the binary [build/rawvec]; copied first, so a rebuild during
#             the sweep does not mix two versions
#   TMPDIR    where the mount point and that copy live [/tmp]
#   FAILED    member indexes to fail after each mount, before its jobs: a
#             degraded sweep (FAILED=1: one member down; FAILED="0 3" two);
#             in raid10 index i is pair i/2's member i%2.  Points whose
#             level cannot lose those members (raid0, raid5 with two,
#             both of a raid10 pair, all of a raid1) are skipped with a
#             note, and so are counts that do not have such a member [none]
#
# Output in OUT:
#   results.csv   one row per point: fio IOPS, MB/s (10^6 B/s), completion
#                 (clat) and total (lat) latency p50/p99 in us, bytes at the
#                 disk and at the members, their ratio (amplification), the
#                 load balance over members (max/min and coefficient of
#                 variation of read+write bytes, and member_bytes: the bytes
#                 per member, ';'-separated), the slowest member's p99, and
#                 for raid5/6 the stripe writes by method
#   members.csv   one row per point and member: its I/Os, bytes and p99
#   throughput-JOB.png  IOPS (BS < 128k) or MB/s vs chunk, a line per level
#   p99-JOB.png         fio's p99 total latency vs chunk, a line per level
#   balance-JOB.png     at BALANCE_CHUNK, a cluster of bars per level:
#                       each member's bytes (read + write) as % of an even
#                       share of the disk's bytes (disk bytes / members);
#                       equal bars are balanced, their height above 100 is
#                       what the redundancy costs
#   gnuplot/*.gp  the plot scripts, self-contained (gnuplot FILE redraws)
#   raw/LAYOUT/   fio JSON, stats snapshots and rawvec's log of every mount
#   sweep.txt     the settings, rawvec's version and the transport used
# Member counters span fio's ramp-up as well as its measured runtime.
#
# Exit codes: 0 done, 2 bad input (nothing is run), 1 run-time failure.
# Needs fio, gnuplot (gnuplot-nox), python3 and fusermount3: run
# `sh scripts/deps.sh` as root to install them.  Runs as root or as a user
# who may mount FUSE (as root, --enable-uring allows the io_uring transport).
set -eu -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=stripe-sweep

die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
# bad: refuse the input before anything runs (exit 2, like rawvec).
bad() {
	echo "$PROG: $*" >&2
	exit 2
}
note() { echo "$PROG: $*"; }

# usage: the comment block at the top, without its '#'s.
usage() {
	sed -n '2,/^set -eu/{/^#/{s/^# \{0,1\}//;p}}' "${BASH_SOURCE[0]}"
}

QUICK=${QUICK:-0}
PLOT_ONLY=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--plot-only)
		[ $# -ge 2 ] || bad "--plot-only needs a directory"
		PLOT_ONLY=$2
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*) bad "unknown argument '$1' (try --help)" ;;
	esac
	shift
done
case $QUICK in
0 | 1) ;;
*) bad "QUICK=$QUICK: not 0 or 1" ;;
esac

if [ "$QUICK" = 1 ]; then
	LEVELS=${LEVELS:-raid0}
	MEMBERS=${MEMBERS:-4}
	CHUNKS=${CHUNKS:-4k 64k}
	JOBS=${JOBS:-randread:4k}
	RUNTIME=${RUNTIME:-1}
	RAMP=${RAMP:-0.3}
else
	LEVELS=${LEVELS:-raid0 raid5 raid6}
	MEMBERS=${MEMBERS:-5}
	CHUNKS=${CHUNKS:-4k 16k 64k 256k 1m}
	JOBS=${JOBS:-randread:4k randwrite:4k seqread:1m seqwrite:1m}
	RUNTIME=${RUNTIME:-2}
	RAMP=${RAMP:-0.5}
fi
MEMBER=${MEMBER:-sim(null(size=1g), lat=1ms, bw=200m, qd=4)}
BALANCE_CHUNK=${BALANCE_CHUNK:-}
FAILED=${FAILED:-}
TRANSPORT=${TRANSPORT:-auto}
RAWVEC=${RAWVEC:-$ROOT/build/rawvec}
OUT=${OUT:-./sweep-out/$(date +%Y%m%d-%H%M%S)}

# ---- tools ----------------------------------------------------------------
# A missing tool is named with the one command that installs it.
need_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 ||
			die "$t not found: run 'sh scripts/deps.sh' as root to install the packages"
	done
}
# python3 reads the JSON.  /usr/bin/python3 first: a pyenv shim on PATH
# costs half a second per start, and the sweep starts it once per point.
PY=/usr/bin/python3
if [ ! -x "$PY" ]; then
	PY=$(command -v python3) ||
		die "python3 not found: run 'sh scripts/deps.sh' as root (fio pulls it in)"
fi
# fio JSON and stats in, CSV rows, gnuplot scripts and the summary out.
HELPER=$ROOT/scripts/stripe_sweep.py

# ---- input checks ---------------------------------------------------------
# size_bytes SIZE: bytes of a k/m/g-suffixed size (powers of 1024), or fail.
size_bytes() {
	local n=${1%[kKmMgG]} mult=1
	case $1 in
	*[kK]) mult=1024 ;;
	*[mM]) mult=1048576 ;;
	*[gG]) mult=1073741824 ;;
	esac
	case $n in
	'' | *[!0-9]*) return 1 ;;
	esac
	[ ${#n} -le 12 ] || return 1
	echo $((10#$n * mult))
}

# size_label BYTES: the shortest k/m/g spelling, so 65536 and 64K both
# become "64k" in files and plots.
size_label() {
	local b=$1
	if [ $((b % 1073741824)) = 0 ]; then
		echo "$((b / 1073741824))g"
	elif [ $((b % 1048576)) = 0 ]; then
		echo "$((b / 1048576))m"
	elif [ $((b % 1024)) = 0 ]; then
		echo "$((b / 1024))k"
	else
		echo "$b"
	fi
}

# is_seconds VALUE: a number of seconds such as 3 or 0.5.
is_seconds() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

# ms SECONDS: the same in whole milliseconds, fio's unit here.
ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 + 0.5 }'; }

# level_min LEVEL: the fewest members rawvec accepts for LEVEL.
level_min() {
	case $1 in
	raid0 | raid1) echo 2 ;;
	raid5) echo 3 ;;
	raid6 | raid10) echo 4 ;;
	esac
}

check_input() {
	local l n c b j pat bs qd rest seen=" "
	[[ $LEVELS =~ [^[:space:]] ]] || bad "LEVELS is empty"
	for l in $LEVELS; do
		case $l in
		raid0 | raid1 | raid5 | raid6 | raid10) ;;
		*) bad "LEVELS: unknown level '$l' (choose from raid0 raid1 raid5 raid6 raid10)" ;;
		esac
	done
	[[ $MEMBERS =~ [^[:space:]] ]] || bad "MEMBERS is empty"
	for n in $MEMBERS; do
		[[ $n =~ ^[0-9]+$ ]] && [ "$((10#$n))" -ge 2 ] && [ "$((10#$n))" -le 32 ] ||
			bad "MEMBERS: '$n' is not a member count from 2 to 32"
	done
	[[ $CHUNKS =~ [^[:space:]] ]] || bad "CHUNKS is empty"
	CHUNK_BYTES=()
	for c in $CHUNKS; do
		b=$(size_bytes "$c") && [ "$b" -ge 4096 ] && [ $((b & (b - 1))) = 0 ] ||
			bad "CHUNKS: '$c' is not a power of two of at least 4k (e.g. 4k 64k 1m)"
		case $seen in *" $b "*) bad "CHUNKS: '$c' is listed twice" ;; esac
		seen="$seen$b "
		CHUNK_BYTES+=("$b")
	done
	[[ $JOBS =~ [^[:space:]] ]] || bad "JOBS is empty"
	JOB_SPECS=()
	seen=" "
	for j in $JOBS; do
		pat=${j%%:*}
		rest=${j#*:}
		[ "$rest" != "$j" ] || bad "JOBS: '$j' is not PATTERN:BS[:IODEPTH] (e.g. seqwrite:1m)"
		bs=${rest%%:*}
		qd=
		[ "$bs" = "$rest" ] || qd=${rest#*:}
		case $pat in
		randread | randwrite | seqread | seqwrite) ;;
		*) bad "JOBS: '$j': unknown pattern '$pat' (randread, randwrite, seqread, seqwrite)" ;;
		esac
		b=$(size_bytes "$bs") && [ "$b" -ge 512 ] && [ $((b % 512)) = 0 ] &&
			[ "$b" -le $((64 << 20)) ] ||
			bad "JOBS: '$j': block size '$bs' is not a multiple of 512 up to 64m"
		name="$pat:$(size_label "$b")"
		if [ -z "$qd" ]; then
			qd=32
			[ "$b" -lt 131072 ] || qd=8
		else
			[[ $qd =~ ^[0-9]+$ ]] && [ "$((10#$qd))" -ge 1 ] && [ "$((10#$qd))" -le 1024 ] ||
				bad "JOBS: '$j': iodepth '$qd' is not from 1 to 1024"
			qd=$((10#$qd))
			name="$name:$qd"
		fi
		case $seen in *" $pat:$b:$qd "*) bad "JOBS: '$j' is listed twice" ;; esac
		seen="$seen$pat:$b:$qd "
		# pattern|bs bytes|iodepth|name as listed (the CSV's job column)
		JOB_SPECS+=("$pat|$b|$qd|$name")
	done
	is_seconds "$RUNTIME" && [ "$(ms "$RUNTIME")" -ge 200 ] ||
		bad "RUNTIME=$RUNTIME: not a number of seconds of at least 0.2"
	is_seconds "$RAMP" || bad "RAMP=$RAMP: not a number of seconds"
	seen=" "
	for n in $FAILED; do
		[[ $n =~ ^[0-9]{1,2}$ ]] && [ "$((10#$n))" -lt 32 ] ||
			bad "FAILED: '$n' is not a member index from 0 to 31"
		case $seen in *" $((10#$n)) "*) bad "FAILED: member $n is listed twice" ;; esac
		seen="$seen$((10#$n)) "
	done
	case $TRANSPORT in
	auto | uring | dev) ;;
	*) bad "TRANSPORT=$TRANSPORT: not auto, uring or dev" ;;
	esac
	case $MEMBER in
	*[\'\"\;\|\&\$\`\\]* | '') bad "MEMBER='$MEMBER': empty, or has a quote, backslash or shell character" ;;
	esac
	if [ -n "$BALANCE_CHUNK" ]; then
		b=$(size_bytes "$BALANCE_CHUNK") ||
			bad "BALANCE_CHUNK=$BALANCE_CHUNK: not a size"
		[[ " ${CHUNK_BYTES[*]} " == *" $b "* ]] ||
			bad "BALANCE_CHUNK=$BALANCE_CHUNK is not one of CHUNKS ($CHUNKS)"
		BALANCE_BYTES=$b
	elif [[ " ${CHUNK_BYTES[*]} " == *" 65536 "* ]]; then
		BALANCE_BYTES=65536
	else
		# The middle of the sorted chunks.
		BALANCE_BYTES=$(printf '%s\n' "${CHUNK_BYTES[@]}" | sort -n |
			awk '{ c[NR] = $1 } END { print c[int((NR + 1) / 2)] }')
	fi
}

# ---- mounting, and the cleanup that always undoes it ----------------------
TMPD=
MNT=
RV_PID=
FIO_PID=

# fuse_abort DIR: abort the FUSE connection on DIR (found in mountinfo: a
# stat of DIR would hang on a stuck daemon), so whatever waits on it fails.
fuse_abort() {
	local dev
	dev=$(awk -v m="$1" '$5 == m && $9 ~ /^fuse/ { print $3 }' /proc/self/mountinfo | tail -1)
	[ -n "$dev" ] && [ -w "/sys/fs/fuse/connections/${dev#*:}/abort" ] &&
		echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort"
	return 0
}

is_mounted() { [ -n "$1" ] && grep -q " $1 fuse" /proc/mounts; }

# cleanup: on every exit, stop fio and rawvec and leave no mount behind.
cleanup() {
	local rc=$? i
	set +e
	trap - EXIT INT TERM
	if [ -n "$FIO_PID" ]; then
		kill "$FIO_PID" 2>/dev/null
		wait "$FIO_PID" 2>/dev/null
	fi
	if is_mounted "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || {
			fuse_abort "$MNT"
			fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
		}
	fi
	if [ -n "$RV_PID" ]; then
		for i in $(seq 50); do
			kill -0 "$RV_PID" 2>/dev/null || break
			[ "$i" = 20 ] && kill -TERM "$RV_PID" 2>/dev/null
			sleep 0.1
		done
		kill -KILL "$RV_PID" 2>/dev/null
		wait "$RV_PID" 2>/dev/null
	fi
	is_mounted "$MNT" && echo "$PROG: warning: could not unmount $MNT" >&2
	# --one-file-system: never delete through a mount left behind.
	[ -n "$TMPD" ] && rm -rf --one-file-system "$TMPD" 2>/dev/null
	exit "$rc"
}

# mount_layout EXPR DIR: start rawvec on EXPR with its log in DIR; return
# once MNT/disk is served, or fail with the log (exit 2 from rawvec is a
# bad expression: pass it on as bad input).
mount_layout() {
	local expr=$1 dir=$2 i st=0 opts=("--transport=$TRANSPORT")
	[ "$(id -u)" = 0 ] && [ -e /sys/module/fuse/parameters/enable_uring ] &&
		opts+=(--enable-uring)
	"$RV_BIN" -f "${opts[@]}" "$MNT" "$expr" >"$dir/rawvec.log" 2>&1 &
	RV_PID=$!
	for i in $(seq 200); do
		if ! kill -0 "$RV_PID" 2>/dev/null; then
			wait "$RV_PID" || st=$?
			RV_PID=
			cat "$dir/rawvec.log" >&2
			[ "$st" = 2 ] && bad "rawvec refused the layout $expr (exit 2; see above)"
			die "rawvec exited with status $st before mounting $expr"
		fi
		if is_mounted "$MNT" && timeout 5 stat "$MNT/disk" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	die "$MNT/disk did not appear within 10 s (log: $dir/rawvec.log)"
}

# unmount_layout: fusermount3 -u, and insist that rawvec exits 0 after it.
unmount_layout() {
	local i st=0
	for i in $(seq 50); do
		fusermount3 -u "$MNT" 2>/dev/null && break
		sleep 0.1
	done
	is_mounted "$MNT" && die "fusermount3 -u $MNT failed"
	for i in $(seq 200); do
		kill -0 "$RV_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$RV_PID" 2>/dev/null && die "rawvec (pid $RV_PID) still running 20 s after unmount"
	wait "$RV_PID" || st=$?
	RV_PID=
	[ "$st" = 0 ] || die "rawvec exited with status $st after unmount"
}

# snap FILE: a consistent snapshot of MNT/stats (each open takes one).
snap() { timeout 10 cat "$MNT/stats" >"$1" || die "cannot read $MNT/stats"; }

# layout_expr LEVEL N CHUNK_BYTES: the rawvec expression of one point.
layout_expr() {
	local level=$1 n=$2 chunk=$3 i m ms=""
	for i in $(seq 0 $((n - 1))); do
		m=${MEMBER//%i/$i}
		if [ "$level" = raid10 ] && [ $((i % 2)) = 0 ]; then
			ms="$ms${ms:+, }raid1($m"
		elif [ "$level" = raid10 ]; then
			ms="$ms, $m)"
		else
			ms="$ms${ms:+, }$m"
		fi
	done
	case $level in
	raid1) echo "raid1($ms)" ;;
	raid10) echo "raid0($ms, chunk=$(size_label "$chunk"))" ;;
	*) echo "$level($ms, chunk=$(size_label "$chunk"))" ;;
	esac
}

# render_plots DIR: gnuplot scripts from DIR/results.csv, then the PNGs.
render_plots() {
	local dir=$1 term=pngcairo gp desc
	gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1 || term=png
	desc=$(sed -n 's/^member: //p' "$dir/sweep.txt" 2>/dev/null | head -1)
	[ -n "$desc" ] || desc=$MEMBER
	"$PY" "$HELPER" plots "$dir/results.csv" "$dir" "${BALANCE_BYTES:-}" "$desc" "$term" \
		>"$TMPD/gp.list"
	while read -r gp; do
		(cd "$dir" && gnuplot "${gp#"$dir"/}") 2>"$TMPD/gnuplot.err" || {
			cat "$TMPD/gnuplot.err" >&2
			die "gnuplot failed on $gp"
		}
	done <"$TMPD/gp.list"
	PNGS=$(sed 's#.*/gnuplot/\(.*\)\.gp$#\1.png#' "$TMPD/gp.list")
}

# ---- main -------------------------------------------------------------------
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/stripe-sweep.XXXXXX")

if [ -n "$PLOT_ONLY" ]; then
	need_tools gnuplot
	[ -f "$PLOT_ONLY/results.csv" ] || bad "--plot-only: no results.csv in '$PLOT_ONLY'"
	if [ -n "$BALANCE_CHUNK" ]; then
		BALANCE_BYTES=$(size_bytes "$BALANCE_CHUNK") || bad "BALANCE_CHUNK=$BALANCE_CHUNK: not a size"
	else
		BALANCE_BYTES=65536
	fi
	render_plots "$PLOT_ONLY"
	note "plots in $PLOT_ONLY: $(echo "$PNGS" | tr '\n' ' ')"
	exit 0
fi

check_input
need_tools fio gnuplot fusermount3 timeout
[ -x "$RAWVEC" ] || die "$RAWVEC not found or not executable: run 'make' (or set RAWVEC=)"
[ -c /dev/fuse ] || die "/dev/fuse missing: modprobe fuse"
if [ -e "$OUT/results.csv" ]; then
	bad "OUT=$OUT already holds a results.csv: choose another OUT"
fi
# survives LEVEL N: whether LEVEL over N members keeps serving with the
# FAILED members down; prints why not.
survives() {
	local level=$1 n=$2 f nr=0 pairs=" "
	for f in $FAILED; do
		f=$((10#$f))
		[ "$f" -lt "$n" ] || { echo "x$n has no member $f"; return 1; }
		nr=$((nr + 1))
		case $pairs in *" $((f / 2)) "*)
			[ "$level" = raid10 ] && { echo "raid10 would lose both members of pair $((f / 2))"; return 1; } ;;
		esac
		pairs="$pairs$((f / 2)) "
	done
	case $level in
	raid0) [ "$nr" = 0 ] || { echo "raid0 has no redundancy"; return 1; } ;;
	raid1) [ "$nr" -lt "$n" ] || { echo "raid1 would lose every mirror"; return 1; } ;;
	raid5) [ "$nr" -le 1 ] || { echo "raid5 survives one failed member, not $nr"; return 1; } ;;
	raid6) [ "$nr" -le 2 ] || { echo "raid6 survives two failed members, not $nr"; return 1; } ;;
	esac
	return 0
}

# fail_members LEVEL: fail the FAILED members of the mounted layout.
fail_members() {
	local f addr
	for f in $FAILED; do
		f=$((10#$f))
		addr=$f
		[ "$1" = raid10 ] && addr=$((f / 2)).$((f % 2))
		echo "fail $addr" >"$MNT/control" ||
			die "'fail $addr' on $1 was refused (log: $dir/rawvec.log)"
	done
}

# The points: skip (with a note) counts a level cannot use.
POINTS=()
for level in $LEVELS; do
	for n in $MEMBERS; do
		n=$((10#$n))
		min=$(level_min "$level")
		if [ "$n" -lt "$min" ]; then
			note "skipping $level x$n: $level needs at least $min members"
			continue
		fi
		if [ "$level" = raid10 ] && [ $((n % 2)) = 1 ]; then
			note "skipping raid10 x$n: raid10 needs an even member count"
			continue
		fi
		if ! why=$(survives "$level" "$n"); then
			note "skipping $level x$n with FAILED=\"$FAILED\": $why"
			continue
		fi
		if [ "$level" = raid1 ]; then
			POINTS+=("$level|$n|0")
		else
			for c in "${CHUNK_BYTES[@]}"; do POINTS+=("$level|$n|$c"); done
		fi
	done
done
[ ${#POINTS[@]} -gt 0 ] || bad "no level in LEVELS=\"$LEVELS\" can use MEMBERS=\"$MEMBERS\"${FAILED:+ with FAILED=\"$FAILED\"}"

RV_BIN=$TMPD/rawvec
cp "$RAWVEC" "$RV_BIN"
MNT=$TMPD/mnt
mkdir "$MNT"

# Preflight: rawvec checks each level's widest layout (most members, biggest
# chunk: one bigger than a member fails) now, not minutes into the sweep,
# and before OUT exists.
mkdir "$TMPD/preflight"
for level in $LEVELS; do
	max_n=0
	max_c=0
	for p in "${POINTS[@]}"; do
		IFS='|' read -r l n c <<<"$p"
		[ "$l" = "$level" ] || continue
		[ "$n" -le "$max_n" ] || max_n=$n
		[ "$c" -le "$max_c" ] || max_c=$c
	done
	[ "$max_n" != 0 ] || continue
	mount_layout "$(layout_expr "$level" "$max_n" "$max_c")" "$TMPD/preflight"
	unmount_layout
done
mkdir -p "$OUT" || die "cannot create OUT=$OUT"
OUT=$(cd "$OUT" && pwd)
total=$((${#POINTS[@]} * ${#JOB_SPECS[@]}))
run_ms=$(ms "$RUNTIME")
ramp_ms=$(ms "$RAMP")
est=$(((${#POINTS[@]} * 700 + total * (run_ms + ramp_ms + 400)) / 1000))
{
	echo "date: $(date -Is)"
	echo "rawvec: $("$RV_BIN" -V 2>&1 | head -1) ($RAWVEC)"
	echo "kernel: $(uname -r), $(nproc) CPUs"
	echo "fio: $(fio --version)"
	echo "member: $MEMBER"
	echo "levels: $LEVELS"
	echo "members: $MEMBERS"
	echo "chunks: $CHUNKS"
	echo "jobs: $JOBS"
	echo "runtime: $RUNTIME s, ramp $RAMP s"
	echo "transport requested: $TRANSPORT"
	echo "failed: ${FAILED:-none}"
} >"$OUT/sweep.txt"
note "$total points (${#POINTS[@]} layouts x ${#JOB_SPECS[@]} jobs), about $est s; results in $OUT"

start=$(date +%s)
k=0
transport=
for p in "${POINTS[@]}"; do
	IFS='|' read -r level n chunk <<<"$p"
	if [ "$chunk" = 0 ]; then clabel=none; else clabel=$(size_label "$chunk"); fi
	expr=$(layout_expr "$level" "$n" "$chunk")
	dir=$OUT/raw/$level-x$n-$clabel
	mkdir -p "$dir"
	echo "$expr" >"$dir/layout.txt"
	mount_layout "$expr" "$dir"
	fail_members "$level"
	snap "$dir/stats-0.json"
	[ -n "$transport" ] ||
		transport=$(sed -n 's/.*"transport": *"\([a-z]*\)".*/\1/p' "$dir/stats-0.json" | head -1)
	i=0
	for js in "${JOB_SPECS[@]}"; do
		IFS='|' read -r pat bs qd name <<<"$js"
		i=$((i + 1))
		k=$((k + 1))
		case $pat in
		seqread) rw="read" ;;
		seqwrite) rw="write" ;;
		*) rw=$pat ;;
		esac
		printf '%s: [%d/%d] %s x%s chunk %s %s: ' "$PROG" "$k" "$total" "$level" "$n" "$clabel" "$name"
		# fio in the background with a deadline, so a stuck request can
		# neither hang the sweep nor escape the cleanup.
		timeout -k 5 $(((run_ms + ramp_ms) / 1000 + 60)) \
			fio --name="$pat" --filename="$MNT/disk" --rw="$rw" --bs="$bs" \
			--iodepth="$qd" --ioengine=io_uring --direct=1 --norandommap \
			--randrepeat=0 --time_based --runtime="${run_ms}ms" \
			--ramp_time="${ramp_ms}ms" --lat_percentiles=1 \
			--output-format=json --output="$dir/fio-$i.json" \
			>"$dir/fio-$i.log" 2>&1 &
		FIO_PID=$!
		st=0
		wait "$FIO_PID" || st=$?
		FIO_PID=
		if [ "$st" != 0 ]; then
			echo
			cat "$dir/fio-$i.log" >&2
			die "fio $name on $expr failed (exit $st; $dir/fio-$i.log)"
		fi
		snap "$dir/stats-$i.json"
		"$PY" "$HELPER" point "$OUT/results.csv" "$OUT/members.csv" "$level" "$n" \
			"$clabel" "$chunk" "$name" "$pat" "$bs" "$qd" "$dir/fio-$i.json" \
			"$dir/stats-$((i - 1)).json" "$dir/stats-$i.json"
	done
	unmount_layout
done
secs=$(($(date +%s) - start))
echo "transport used: ${transport:-?}" >>"$OUT/sweep.txt"
echo "seconds: $secs" >>"$OUT/sweep.txt"

render_plots "$OUT"
note "CSV:  $OUT/results.csv (per member: $OUT/members.csv)"
note "PNGs: $(echo "$PNGS" | sed "s#^#$OUT/#" | tr '\n' ' ')"
note "$("$PY" "$HELPER" summary "$OUT/results.csv" "$secs" "${transport:-?}")"
