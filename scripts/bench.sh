#!/usr/bin/env bash
# bench: compare rawvec with the raw image and with qemu-storage-daemon's
# FUSE export (section "core"), measure the RAID layers (section "raid")
# what several event loops gain over one (section "threads") and NBD
# members against nbdfuse and qemu-storage-daemon (section "nbd"), in one
# run, in rounds.
#
# Usage: scripts/bench.sh [core|raid|threads|nbd|all]...
#                         (no argument: all, in the order core, raid,
#                         threads, nbd)
#        scripts/bench.sh -h|--help
#   core     raw image vs rawvec (uring and dev transports) vs
#            qemu-storage-daemon, on an image on the real disk
#   raid     rawvec over RAID layouts of tmpfs-backed images: raid0 vs one
#            image, and raid5 full-stripe writes vs raid0
#   threads  rawvec with one event loop vs the default (-o threads=auto):
#            core's image, the null member, raid5 on tmpfs
#   nbd      rawvec's nbd() vs nbdfuse vs qemu-storage-daemon driver=nbd on
#            one nbdkit memory export; raid0 of two exports vs one
#            (scripts/bench_nbd.sh says how)
#   all      the four sections
# `make bench` runs all four.
#
# core: the targets, all on the SAME image file (same extents, same disk),
# never two of them at once: fio directly on the image (the limit), rawvec
# --transport=uring, rawvec --transport=dev, and qemu-storage-daemon
# --export type=fuse.  Each FUSE daemon is mounted for one fio job and
# unmounted after it, so exactly one is mounted over the image at a time.
#
# raid: a private tmpfs is mounted at $BENCH_DIR/raid-tmpfs (unmounted on
# exit) with six member images m0..m5 of RAID_MEMBER each and one image of
# 4 x RAID_MEMBER, all written full of random data.  The targets, rawvec
# --transport=$RAID_TRANSPORT over
#   single  the one image
#   raid0   raid0(m0, m1, m2, m3, chunk=64k)
#   raid5   raid5(m0, m1, m2, m3, m4, chunk=64k): 4 data chunks, so a
#           256k full stripe; the same data capacity as raid0
#   raid6   raid6(m0, ..., m5, chunk=64k): the same 4 data chunks, P and Q
# measure the layers' CPU cost, not a disk.  Jobs: 4k randread QD32 (single,
# raid0) and 1M seq write QD8 (single, raid0, raid5, raid6: every 1M write
# is 4 full stripes).  Reported: raid0/single (the striping layer's
# overhead; issue target >= 0.9 at 4k QD32) and raid5/raid0 for full-stripe
# writes (target >= 0.6), raid6/raid5 (what Q costs; no target), and
# raid5's stripe counters (full_stripe_writes vs rmw_writes/rcw_writes)
# after each run.  After a raid5 or raid6 run that rewrote the whole array,
# a parity `check` must find 0 mismatched sectors.
#
# threads: rawvec --transport=uring, one mount at a time, as
#   t1     -o threads=1: one event loop, as before -o threads= existed
#   auto   no threads option: the default a user gets (threads=auto: one
#          loop per two online CPUs, one per CPU when every member is null
#          or mem, one when the tree holds a device that keeps state;
#          pin=auto: pinned with several loops over null and mem, else
#          not).  What it chose (stats "threads", "pinned", "threads_why")
#          goes into the TSV and the report, per job.
#   t2pin  -o threads=2,pin=on, in the pinned 2-job job only: two loops
#          over the image, each pinned to its queue's CPU, which is then
#          the CPU of the fio job feeding it.  It measures the choice
#          pin=auto makes over a disk (off), so only where fio's jobs are
#          pinned does it add anything: unpinned fio threads move between
#          CPUs and so between queues.
#   t2     -o threads=2 (pin=auto), in the raid5 and raid1 jobs: the raid5's members
#          are headerless (made before, no --create), so the stripes are
#          sharded between the two loops, each computing the parity of its
#          own groups; the raid1 runs on both loops, each with its own
#          read cursor.
# Jobs, fio ioengine=io_uring, direct=1, 2-job ones with numjobs=2 (each
# job QD16 or QD8, IOPS and bandwidth summed over the jobs):
#   rr4k32       4k randread QD32, 1 job, on core's image (the same file,
#                written once and reused; SIZE, REFILL as for core)
#   rr4k16x2     4k randread 2 jobs x QD16, on the image, unpinned
#   rr4k16x2pin  the same with the jobs pinned to separate CPUs
#                (cpus_allowed=<first two CPUs>, cpus_allowed_policy=split);
#                t1, auto and t2pin
#   rr4k1        4k randread QD1, on the image: mean latency
#   null16x2     4k randread 2 jobs x QD16 on null(size=4g): no disk, the
#                loops' own ceiling
#   null4k1      4k randread QD1 on null(size=4g): the FUSE round trip and
#                its wake-ups alone (no target)
#   r5sw1m8x2    1M seq write 2 jobs x QD8 over raid5(m0..m4, chunk=64k) of
#                the raid section's tmpfs set-up (members only, no
#                single.img); each job writes its own half of the array
#                (size and offset_increment = half): full stripes only.
#                After a run in which each job rewrote its whole half, a
#                parity check must find 0 mismatched sectors.
#   r5mem1m8x2   the same over raid5 of five mem(RAID_MEMBER) (chunk 64k,
#                headerless): parity and member copies in the loops alone,
#                no tmpfs io-wq copy beside them, so auto runs a loop per
#                CPU and computes parity on each
#   r1null16x2pin 4k randread 2 jobs x QD16, pinned, on raid1 of two
#                null(size=4g): the mirror level's cost on one loop and on
#                two (t1 and t2; no target)
#   r5md16x2pin  4k randread 2 jobs x QD16, pinned, on a clean md raid5 of
#                four mem(size=64m), chunk 64k: gathered on loop 0 for md,
#                its healthy reads on both loops at t2 (t1 and t2; no
#                target)
# fio runs without group_reporting, so each job's numbers stay in the JSON
# (the parity check needs each half's bytes); bench.py sums IOPS and
# bandwidth and weights the mean latency by I/Os, as group_reporting does.
# Reported: auto vs t1, the median of the per-round ratios, "> 1: auto is
# better": auto/t1 for IOPS and MB/s, t1/auto for QD1 latency.  Issue
# targets (2 CPUs): rr4k16x2 >= 1.15, rr4k16x2pin >= 1.15, null16x2 >= 1.3,
# r5sw1m8x2 >= 1.5 (also r5mem1m8x2), rr4k32 >= 0.97 (no loss for one job), QD1 latency
# t1/auto >= 0.97.  The report says per job how many loops auto chose:
# on 2 CPUs it chooses one over files (that ratio is then ~1) and two
# over null and mem (null16x2, r5mem1m8x2); t2 vs t1 is the sharded
# raid5's (target >= 1.5 too) and the raid1's (no target).  Also t2pin vs
# auto (no target).
# Needs at least 2 CPUs: `all` skips the section on one, `threads` fails.
#
# The disk's speed drifts (2x within minutes), and CPU-bound numbers drift
# with what else runs, so every round runs every job on every target back to
# back, in an order rotated per round and per job, and what counts are the
# per-round ratios and their medians.
#
# Environment (defaults in brackets):
#   RUNTIME    seconds measured per fio job [10]
#   RAMP       seconds of fio ramp-up before measuring [2]
#   ROUNDS     rounds [3]
#   SIZE       core, threads: image size, k/M/G suffixes, a multiple of 1M
#              [1G]
#   BENCH_DIR  where the image, mount points and results go; must be on the
#              real disk, not tmpfs, for core and threads
#              [/var/tmp/rawvec-bench]
#   RAWVEC     the rawvec binary [build/rawvec]; it is copied first, so a
#              rebuild during the run does not mix two versions
#   RAWVEC_BASE  core: a second rawvec binary (an earlier commit's build),
#              measured as one more target, base-uring, in the same rounds:
#              the report adds uring/base, the change's own speed-up [none]
#   REFILL=1   core, threads: rewrite the image even if a complete one of
#              SIZE exists
#   RAID_MEMBER     raid, threads: size of each member image, a multiple of
#                   1M, at least 16M [256M]; the arrays and the single image
#                   hold 4 x RAID_MEMBER; the tmpfs needs 9 x RAID_MEMBER of
#                   RAM (threads: 5 x RAID_MEMBER)
#   RAID_TRANSPORT  raid: rawvec's transport, uring or dev [uring]
#                   (threads always uses uring)
#   THR_ONLY   threads: only these jobs (ids, blank-separated, e.g.
#              THR_ONLY=r5sw1m8x2) [all]
#
# Output: a table per job on stdout; $BENCH_DIR/results.md (Markdown, for
# docs/bench.md: one table per section run, core first);
# $BENCH_DIR/results.tsv, results-raid.tsv and results-threads.tsv (every
# measurement of core, raid and threads; threads' also what each run's
# rawvec chose: loops, pinning, threads_why, requests per loop, messages
# between loops, the raid5 parity check); the fio JSON and rawvec stats of
# every run in $BENCH_DIR/runs/ (core), $BENCH_DIR/runs/raid/ and
# $BENCH_DIR/runs/threads/ (with each run's rawvec log).
# Running one section replaces only that section's files (results.md
# always holds just the sections of this run).
# Targets that are missed are reported as MISS and do not fail the script;
# errors, including wrong data found by a raid5 parity check, do
# (non-zero exit).
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
RAWVEC_BASE=${RAWVEC_BASE:-}
REFILL=${REFILL:-0}
RAID_MEMBER=${RAID_MEMBER:-256M}
RAID_TRANSPORT=${RAID_TRANSPORT:-uring}

URING_PARAM=/sys/module/fuse/parameters/enable_uring
TARGETS=(raw rawvec-uring rawvec-dev qsd)
[[ -z $RAWVEC_BASE ]] || TARGETS+=(base-uring)
# id|label|fio rw|bs|iodepth
JOBS=(
	"rr4k32|4k randread QD32|randread|4k|32"
	"rw4k32|4k randwrite QD32|randwrite|4k|32"
	"sr1m8|1M seq read QD8|read|1M|8"
	"sw1m8|1M seq write QD8|write|1M|8"
	"rr4k1|4k randread QD1|randread|4k|1"
)
# raid: id|label|fio rw|bs|iodepth|targets (rotated like core's)
RAID_JOBS=(
	"rr4k32|4k randread QD32|randread|4k|32|single raid0"
	"sw1m8|1M seq write QD8|write|1M|8|single raid0 raid5 raid6"
)
RAID_CHUNK=64k  # the issue's chunk: raid5's full stripe is 4 x 64k = 256k
# threads: id|label|fio rw|bs|iodepth per job|jobs|fio CPUs (pin: the jobs
# pinned to separate CPUs; -: not)|what is mounted (image: core's image,
# null, raid1null: raid1 of two such nulls, raid5: on the tmpfs,
# raid5mem: raid5 of five mem() members, raid5md: md raid5 of mem()
# members)|targets
# (rotated like core's)
THR_JOBS=(
	"rr4k32|4k randread QD32|randread|4k|32|1|-|image|t1 auto"
	"rr4k16x2|4k randread 2 jobs x QD16|randread|4k|16|2|-|image|t1 auto"
	"rr4k16x2pin|4k randread 2 jobs x QD16 pinned|randread|4k|16|2|pin|image|t1 auto t2pin"
	"rr4k1|4k randread QD1|randread|4k|1|1|-|image|t1 auto"
	"null16x2|null 4k randread 2 jobs x QD16|randread|4k|16|2|-|null|t1 auto"
	"null4k1|null 4k randread QD1|randread|4k|1|1|-|null|t1 auto"
	"r5sw1m8x2|raid5 1M seq write 2 jobs x QD8|write|1M|8|2|-|raid5|t1 auto t2"
	"r5mem1m8x2|raid5 of 5 mem 1M seq write 2 jobs x QD8|write|1M|8|2|-|raid5mem|t1 auto"
	"r1null16x2pin|raid1 of 2 null 4k randread 2 jobs x QD16 pinned|randread|4k|16|2|pin|raid1null|t1 t2"
	"r5md16x2pin|md raid5 of 4 mem 4k randread 2 jobs x QD16 pinned|randread|4k|16|2|pin|raid5md|t1 t2"
)
THR_NULL="null(size=4g)"
THR_NULL_BYTES=$((4 << 30))

die() {
	echo "bench: error: $*" >&2
	exit 1
}
note() { echo "bench: $*"; }

# The comment block at the top, without its '#'s.
usage() {
	sed -n '2,/^set -euo pipefail/{/^#/{s/^# \{0,1\}//;p}}' "${BASH_SOURCE[0]}"
}
RUN_CORE=0
RUN_RAID=0
RUN_THREADS=0   # 1: asked for by name; 2: through all (skipped on 1 CPU)
RUN_NBD=0
(($#)) || set -- all
for arg in "$@"; do
	case $arg in
	core) RUN_CORE=1 ;;
	raid) RUN_RAID=1 ;;
	threads) RUN_THREADS=1 ;;
	nbd) RUN_NBD=1 ;;
	all)
		RUN_CORE=1 RUN_RAID=1 RUN_NBD=1
		((RUN_THREADS)) || RUN_THREADS=2
		;;
	-h | --help | help)
		usage
		exit 0
		;;
	*)
		echo "bench: unknown section '$arg'" >&2
		echo "usage: $0 [core|raid|threads|nbd|all]...  (no argument: all; --help for more)" >&2
		exit 2
		;;
	esac
done

# ---- state the cleanup trap undoes --------------------------------------
DAEMON_PID=""   # the one rawvec or qemu-storage-daemon running, if any
DAEMON_NAME=""
DAEMON_LOG=""
TMPD=""
MNT=""          # rawvec's mount point (a directory)
QMNT=""         # qemu-storage-daemon's mount point (a regular file)
RAID_TMPFS=""   # raid: the private tmpfs holding the member images

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
	for m in "$MNT" "$QMNT" "${NBD_MNT:-}"; do
		if [[ -n $m ]] && is_mounted "$m"; then
			unmount_quietly "$m"
			did+=" unmounted $m;"
		fi
	done
	# After the daemons: rawvec holds the images on it open.
	if [[ -n $RAID_TMPFS ]] && is_mounted "$RAID_TMPFS"; then
		umount "$RAID_TMPFS" || umount -l "$RAID_TMPFS"
		did+=" unmounted the tmpfs $RAID_TMPFS;"
	fi
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
NEED=(fio)
((RUN_CORE || RUN_NBD)) && NEED+=(qemu-storage-daemon)
for c in "${NEED[@]}"; do
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
case $RAID_TRANSPORT in
uring | dev) ;;
*) die "RAID_TRANSPORT=$RAID_TRANSPORT: not uring or dev" ;;
esac
# threads and nbd: the first two CPUs this process may run on (fio's
# pinned 2-job runs).
THR_CPUS=""
if ((RUN_THREADS || RUN_NBD)); then
	THR_CPUS=$("$PY" -c 'import os; c = sorted(os.sched_getaffinity(0)); print("%d,%d" % tuple(c[:2]) if len(c) > 1 else "")') ||
		die "python3 cannot read this process's CPU affinity"
	if [[ -z $THR_CPUS ]]; then
		((RUN_THREADS != 1)) || die "threads: needs at least 2 CPUs to run on (nproc: $(nproc)): one loop per CPU is one loop"
		((RUN_THREADS)) && note "threads: skipped, only one CPU to run on (nproc: $(nproc))"
		RUN_THREADS=0
	fi
fi
if ((RUN_CORE || RUN_THREADS || RUN_NBD)) || [[ $RUN_RAID == 1 && $RAID_TRANSPORT == uring ]]; then
	[[ -e $URING_PARAM ]] ||
		die "$URING_PARAM missing: this kernel has no FUSE-over-io_uring (needs 6.14+ with CONFIG_FUSE_IO_URING), so --transport=uring cannot be measured"
fi

SIZE_BYTES=$(numfmt --from=iec "${SIZE^^}" 2>/dev/null) || die "SIZE=$SIZE: not a size (e.g. 256M, 1G)"
((SIZE_BYTES >= 16 << 20 && SIZE_BYTES % (1 << 20) == 0)) ||
	die "SIZE=$SIZE: must be a multiple of 1M and at least 16M"
SIZE_MB=$((SIZE_BYTES >> 20))
RAID_MEMBER_BYTES=$(numfmt --from=iec "${RAID_MEMBER^^}" 2>/dev/null) ||
	die "RAID_MEMBER=$RAID_MEMBER: not a size (e.g. 256M)"
((RAID_MEMBER_BYTES >= 16 << 20 && RAID_MEMBER_BYTES % (1 << 20) == 0)) ||
	die "RAID_MEMBER=$RAID_MEMBER: must be a multiple of 1M and at least 16M"
RAID_ARRAY_BYTES=$((4 * RAID_MEMBER_BYTES))
# Six members and the single image (threads: five members only), plus
# room for tmpfs's own blocks.
raid_tmpfs_bytes() { echo $(($1 * RAID_MEMBER_BYTES + (16 << 20))); }
check_raid_ram() {
	local sec=$1 n=$2 need memavail
	need=$(raid_tmpfs_bytes "$n")
	memavail=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
	memavail=$((memavail * 1024))
	((memavail > need + (1 << 30))) ||
		die "$sec: the tmpfs needs $((need >> 20)) MiB of RAM ($n x RAID_MEMBER=$RAID_MEMBER) plus 1 GiB to spare; MemAvailable is $((memavail >> 20)) MiB: lower RAID_MEMBER"
}
((!RUN_RAID)) || check_raid_ram raid 10
# threads: the five tmpfs members, and r5mem1m8x2's five mem() members
# of the same size while they are still there.
((!RUN_THREADS)) || check_raid_ram threads 10

mkdir -p "$BENCH_DIR" || die "cannot create BENCH_DIR=$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd -P)
fstype=$(findmnt -n -o FSTYPE -T "$BENCH_DIR" | head -1)
[[ -n $fstype ]] || fstype=$(stat -f -c %T "$BENCH_DIR")
case $fstype in
tmpfs | ramfs) ((!RUN_CORE && !RUN_THREADS)) || die "BENCH_DIR=$BENCH_DIR is on $fstype: put it on the real disk (io_uring punts tmpfs reads to io-wq threads, so nothing there measures a disk)" ;;
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
RAID_RUNS=$RUNS/raid
RAID_TSV=$BENCH_DIR/results-raid.tsv
THR_RUNS=$RUNS/threads
THR_TSV=$BENCH_DIR/results-threads.tsv
TMPD=$(mktemp -d)
# Leftovers of a run that was killed hard: this directory is ours (locked).
# The tmpfs last: a leftover rawvec mount may hold its images open.
for m in "$MNT" "$QMNT" "$BENCH_DIR/nbdfuse-mnt" "$BENCH_DIR/raid-tmpfs"; do
	if is_mounted "$m"; then
		note "unmounting a leftover mount at $m"
		unmount_quietly "$m"
		! is_mounted "$m" || die "cannot unmount the leftover mount at $m"
	fi
done
mkdir -p "$MNT"
if ((RUN_CORE || RUN_NBD)); then
	[[ -d $QMNT ]] && die "$QMNT is a directory; qemu-storage-daemon's FUSE export needs a regular file"
	: >"$QMNT"
fi
. "$here/scripts/bench_nbd.sh"
# Replace only the files of the sections that run.
mkdir -p "$RUNS"
if ((RUN_CORE)); then
	find "$RUNS" -maxdepth 1 -type f -delete
fi
if ((RUN_RAID)); then
	rm -rf "$RAID_RUNS"
	mkdir -p "$RAID_RUNS"
fi
if ((RUN_THREADS)); then
	rm -rf "$THR_RUNS"
	mkdir -p "$THR_RUNS"
fi

# A private copy of the binary: others may rebuild build/rawvec meanwhile.
RV_BIN=$TMPD/rawvec
cp "$RAWVEC" "$RV_BIN"
RV_VERSION=$("$RV_BIN" -V 2>&1 | head -1) || die "$RAWVEC -V failed"
BASE_BIN=$TMPD/rawvec-base
if [[ -n $RAWVEC_BASE ]]; then
	[[ -x $RAWVEC_BASE ]] || die "RAWVEC_BASE=$RAWVEC_BASE is not an executable"
	cp "$RAWVEC_BASE" "$BASE_BIN"
fi

# ---- core: the image, fully written once, so no read hits a hole ---------
prepare_image() {
	local stamp=$BENCH_DIR/image.filled img_ok=0 avail
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
}

# ---- fio JSON, rawvec stats, the report: scripts/bench.py ---------------
helper() { "$PY" "$here/scripts/bench.py" "$@"; }

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

# start_rawvec TRANSPORT [TARGET LOG DIR]: mount TARGET (default: the image)
# at $MNT, logging to LOG [$RUNS/daemon.log], started in DIR (layouts name
# their members relative to it); the binary is $START_BIN [$RV_BIN], with
# -o $START_OPTS if that is set.
start_rawvec() {
	local transport=$1 target=${2:-$IMG} dir=${4:-.} bin=${START_BIN:-$RV_BIN}
	local args=(-f "--transport=$transport")
	[[ $transport == uring ]] && args+=(--enable-uring)
	[[ -n ${START_OPTS:-} ]] && args+=(-o "$START_OPTS")
	DAEMON_NAME="rawvec --transport=$transport"
	[[ -n ${START_OPTS:-} ]] && DAEMON_NAME+=" -o $START_OPTS"
	[[ -n ${2:-} ]] && DAEMON_NAME+=" '$target'"
	DAEMON_LOG=${3:-$RUNS/daemon.log}
	# Its own session: a Ctrl-C meant for the bench must not unmount it
	# under fio; the cleanup stops it in order.  (The subshell execs
	# setsid, which execs rawvec: $! is rawvec's pid.)
	(cd "$dir" && exec setsid "$bin" "${args[@]}" "$MNT" "$target") >"$DAEMON_LOG" 2>&1 &
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

# run_fio OUT FILE SIZE JID RW BS QD LABEL TARGET [FIO_OPTION...]: run one
# fio job on FILE into OUT.json, with the watchdog running (the caller
# stops it when done with the daemon).  Further --options go to the job.
# Dies if fio fails or hangs.
run_fio() {
	local out=$1 file=$2 size=$3 jid=$4 rw=$5 bs=$6 qd=$7 label=$8 target=$9
	shift 9
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
		--size="$size" \
		--ioengine=io_uring --direct=1 --rw="$rw" --bs="$bs" \
		--iodepth="$qd" --time_based --runtime="$RUNTIME" \
		--ramp_time="$RAMP" --output-format=json --output="$out.json" \
		"$@" >"$out.log" 2>&1; then
		stop_watchdog
		tail -n 15 "$out.log" | sed 's/^/    /' >&2
		[[ -n $DAEMON_LOG ]] && tail -n 15 "$DAEMON_LOG" | sed 's/^/    /' >&2
		[[ -e $WATCHDOG_FILE ]] &&
			die "fio $label on $target hung: $DAEMON_NAME stopped answering; killed it (its kernel stacks: $WATCHDOG_FILE)"
		die "fio $label on $target failed (see $out.log)"
	fi
}

# print_result LABEL TARGET BS QD IOPS BW LAT STATS: one line per run, the
# label $LABEL_W [17] wide.
print_result() {
	local label=$1 target=$2 bs=$3 qd=$4 iops=$5 bw=$6 lat=$7 stats=$8 res
	if [[ $bs == 1M ]]; then
		printf -v res '%8.1f MB/s' "$(bc_div "$bw" 1000000)"
	else
		printf -v res '%8.0f IOPS' "$iops"
	fi
	[[ $qd == 1 ]] && res+=$(printf '  lat %7.1f us' "$lat")
	[[ -n $stats ]] && res+="  $stats"
	printf '  %-*s %-13s %s\n' "${LABEL_W:-17}" "$label" "$target" "$res"
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
	base-uring) START_BIN=$BASE_BIN start_rawvec uring; file=$MNT/disk ;;
	qsd)
		start_qsd || die "$DAEMON_NAME failed to start"
		file=$QMNT
		;;
	esac
	run_fio "$out" "$file" "$SIZE_BYTES" "$jid" "$rw" "$bs" "$qd" "$label" "$target"
	res=$(helper fio "$out.json" "$rw") || die "fio $label on $target: bad result"
	IFS=$'\t' read -r iops bw lat <<<"$res"
	case $target in
	rawvec-* | base-*)
		cat "$MNT/stats" >"$out.stats" || die "reading $MNT/stats failed"
		stop_watchdog
		stats=$(helper stats "$out.stats" "${target#*-}") ||
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
	print_result "$label" "$target" "$bs" "$qd" "$iops" "$bw" "$lat" "$stats"
}
bc_div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

# ---- core: the raw image vs rawvec vs qemu-storage-daemon ---------------
run_core() {
	local nruns est spec jid label rw bs qd r j t k start_time elapsed
	prepare_image
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
	helper report "$TSV" "$TMPD/jobs.tsv" "$TMPD/core.md" "$TMPD/meta"
	write_md
	echo
	note "measured for $((elapsed / 60)) min $((elapsed % 60)) s; qemu-storage-daemon aio=$QSD_AIO"
	note "Markdown table: $MD; all measurements: $TSV; fio JSON: $RUNS/"
}

# ---- raid: rawvec over raid0/raid5 of tmpfs images vs one image ----------
# The layout expression of each raid target; names relative to $RAID_TMPFS.
raid_expr() {
	case $1 in
	single) echo "single.img" ;;
	raid0) echo "raid0(m0.img, m1.img, m2.img, m3.img, chunk=$RAID_CHUNK)" ;;
	raid5) echo "raid5(m0.img, m1.img, m2.img, m3.img, m4.img, chunk=$RAID_CHUNK)" ;;
	raid6) echo "raid6(m0.img, m1.img, m2.img, m3.img, m4.img, m5.img, chunk=$RAID_CHUNK)" ;;
	*) die "raid_expr: unknown target '$1'" ;;
	esac
}

# prepare_raid [members]: a private tmpfs with the five members and the
# single image (with "members": the five members only), full of random
# data (so no read hits a hole).  The cleanup unmounts it, and so does
# raid_tmpfs_done.
prepare_raid() {
	local mb=$((RAID_MEMBER_BYTES >> 20)) i bytes sec=raid what n=6
	if [[ ${1:-} == members ]]; then
		bytes=$(raid_tmpfs_bytes 5) sec=threads what="" n=5
	else
		bytes=$(raid_tmpfs_bytes 10) what=" and one image of $((4 * mb))M"
	fi
	mkdir -p "$BENCH_DIR/raid-tmpfs"
	RAID_TMPFS=$BENCH_DIR/raid-tmpfs
	mount -t tmpfs -o "size=$bytes,mode=0700" rawvec-bench "$RAID_TMPFS" ||
		die "mounting a tmpfs of $((bytes >> 20)) MiB at $RAID_TMPFS failed"
	note "$sec: filling $n members of $RAID_MEMBER$what with random data on a tmpfs at $RAID_TMPFS"
	for ((i = 0; i < n; i++)); do
		dd if=/dev/urandom of="$RAID_TMPFS/m$i.img" bs=1M count="$mb" \
			iflag=fullblock status=none || die "writing $RAID_TMPFS/m$i.img failed"
	done
	[[ -n $what ]] || return 0
	dd if=/dev/urandom of="$RAID_TMPFS/single.img" bs=1M count="$((4 * mb))" \
		iflag=fullblock status=none || die "writing $RAID_TMPFS/single.img failed"
}

# Done with the images: give the RAM back now.
raid_tmpfs_done() {
	umount "$RAID_TMPFS" || die "unmounting the tmpfs $RAID_TMPFS failed"
}

# raid5_check OUT: run `check` on the mounted raid5 and wait for it; sets
# CHECK to the mismatched sectors it found.  Dies unless that is 0.
CHECK=""
raid5_check() {
	local out=$1 n=600 st=""
	echo check >"$MNT/control" ||
		die "raid5: 'echo check > $MNT/control' failed (log: $DAEMON_LOG)"
	while :; do
		cat "$MNT/stats" >"$out.check.stats" || die "reading $MNT/stats failed"
		st=$(helper sweep "$out.check.stats") ||
			die "raid5: bad state during the parity check (see $out.check.stats)"
		[[ $st == done* ]] && break
		((n-- > 0)) || die "raid5: the parity check did not finish within 60 s (now: $st)"
		sleep 0.1
	done
	CHECK=${st#done }
	((CHECK == 0)) ||
		die "WRONG DATA: after full-stripe writes that rewrote the whole raid5, a parity check found $CHECK mismatched sectors (stats: $out.check.stats, log: $DAEMON_LOG)"
}

# raid_run_one ROUND JOB_SPEC TARGET: mount TARGET's layout with rawvec, run
# the fio job, read (and for raid5 check) the array, unmount; append
# "round job target iops bytes/s lat_us" to $RAID_TSV.
raid_run_one() {
	local round=$1 spec=$2 target=$3 jid label rw bs qd _tg out res
	local iops bw lat io stats full rmw rcw preads wbytes sbytes check=-
	IFS='|' read -r jid label rw bs qd _tg <<<"$spec"
	out=$RAID_RUNS/r$round-$jid-$target
	start_rawvec "$RAID_TRANSPORT" "$(raid_expr "$target")" "$out.daemon.log" "$RAID_TMPFS"
	run_fio "$out" "$MNT/disk" "$RAID_ARRAY_BYTES" "$jid" "$rw" "$bs" "$qd" "$label" "$target"
	res=$(helper fio "$out.json" "$rw" io_bytes) || die "fio $label on $target: bad result"
	IFS=$'\t' read -r iops bw lat io <<<"$res"
	cat "$MNT/stats" >"$out.stats" || die "reading $MNT/stats failed"
	res=$(helper rstats "$out.stats" "$RAID_TRANSPORT" "${target/single/file}" "$RAID_ARRAY_BYTES") ||
		die "$target: wrong transport or layout, I/O errors or failed members (see $out.stats)"
	IFS=$'\t' read -r stats full rmw rcw preads wbytes sbytes <<<"$res"
	if [[ $target == raid[56] ]]; then
		# Sequential writes that covered the whole array since the ramp
		# left no stripe with old parity: a check must find nothing.
		if [[ $rw == write ]] && ((io >= RAID_ARRAY_BYTES)); then
			raid5_check "$out"
			check=$CHECK
			stats+="; check: $check mismatched"
		fi
	fi
	if [[ $target == raid5 ]]; then
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$full" "$rmw" "$rcw" \
			"$preads" "$wbytes" "$sbytes" "$check" >>"$TMPD/raid-stripes.tsv"
	fi
	stop_watchdog
	stop_daemon "$MNT" umount
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$jid" "$target" "$iops" "$bw" "$lat" >>"$RAID_TSV"
	print_result "$label" "$target" "$bs" "$qd" "$iops" "$bw" "$lat" "$stats"
}

# Sections whose jobs are "id|label|rw|bs|qd|targets" (raid, nbd); JOBS
# is the name of the array of them.
# spec_runs JOBS: how many fio runs ROUNDS rounds of them are.
spec_runs() {
	local -n specs=$1
	local spec jid label rw bs qd tg n=0
	local -a tgts
	for spec in "${specs[@]}"; do
		IFS='|' read -r jid label rw bs qd tg <<<"$spec"
		read -r -a tgts <<<"$tg"
		n=$((n + ROUNDS * ${#tgts[@]}))
	done
	echo "$n"
}

# spec_jobs_tsv JOBS FILE: the jobs, one tab-separated line each, for
# bench.py.
spec_jobs_tsv() {
	local -n specs=$1
	local spec jid label rw bs qd tg
	: >"$2"
	for spec in "${specs[@]}"; do
		IFS='|' read -r jid label rw bs qd tg <<<"$spec"
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$jid" "$label" "$rw" "$bs" "$qd" "$tg" >>"$2"
	done
}

# spec_rounds JOBS SECTION RUN_ONE: ROUNDS rounds of every job on each of
# its targets, RUN_ONE ROUND SPEC TARGET per run, the target order rotated
# by round and job as in core.
spec_rounds() {
	local -n specs=$1
	local jid label rw bs qd tg r j t k
	local -a tgts
	for ((r = 1; r <= ROUNDS; r++)); do
		note "$2: round $r of $ROUNDS"
		for ((j = 0; j < ${#specs[@]}; j++)); do
			IFS='|' read -r jid label rw bs qd tg <<<"${specs[j]}"
			read -r -a tgts <<<"$tg"
			for ((t = 0; t < ${#tgts[@]}; t++)); do
				k=$(((t + r - 1 + j) % ${#tgts[@]}))
				"$3" "$r" "${specs[j]}" "${tgts[k]}"
			done
		done
	done
}

run_raid() {
	local nruns est start_time elapsed
	nruns=$(spec_runs RAID_JOBS)
	est=$((nruns * (RUNTIME + RAMP + 2)))
	prepare_raid
	note "rawvec: $RV_VERSION ($RAWVEC); $(fio --version); transport: $RAID_TRANSPORT"
	note "raid: arrays of $((RAID_ARRAY_BYTES >> 20))M on tmpfs, chunk $RAID_CHUNK, RUNTIME=${RUNTIME}s RAMP=${RAMP}s ROUNDS=$ROUNDS: $nruns fio runs, about $((est / 60)) min $((est % 60)) s"

	printf 'round\tjob\ttarget\tiops\tbw_bytes\tlat_us\n' >"$RAID_TSV"
	spec_jobs_tsv RAID_JOBS "$TMPD/raid-jobs.tsv"
	: >"$TMPD/raid-stripes.tsv"

	start_time=$SECONDS
	spec_rounds RAID_JOBS raid raid_run_one
	elapsed=$((SECONDS - start_time))

	{
		echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs"
		echo "$RV_VERSION, --transport=$RAID_TRANSPORT; $(fio --version)"
		echo "images on a tmpfs, full of random data: members m0..m4 of $RAID_MEMBER each, single.img of $((RAID_ARRAY_BYTES >> 20))M; every array holds $((RAID_ARRAY_BYTES >> 20))M"
		echo "single = rawvec on single.img; raid0 = rawvec on raid0(m0..m3, chunk=$RAID_CHUNK); raid5 = rawvec on raid5(m0..m4, chunk=$RAID_CHUNK), a $((4 * $(numfmt --from=iec "${RAID_CHUNK^^}") >> 10))k full stripe; raid6 = rawvec on raid6(m0..m5, chunk=$RAID_CHUNK), the same data per stripe"
		echo "fio io_uring, O_DIRECT on MOUNTPOINT/disk, ${RUNTIME}s per job after ${RAMP}s ramp, rounds: $ROUNDS, target order rotated per round and job"
	} >"$TMPD/raid-meta"
	raid_tmpfs_done
	helper raid_report "$RAID_TSV" "$TMPD/raid-jobs.tsv" "$TMPD/raid-stripes.tsv" \
		"$TMPD/raid.md" "$TMPD/raid-meta"
	write_md
	echo
	note "raid: measured for $((elapsed / 60)) min $((elapsed % 60)) s"
	note "Markdown tables: $MD; all raid measurements: $RAID_TSV; fio JSON and stats: $RAID_RUNS/"
}

# ---- threads: one event loop vs threads=auto ----------------------------
# thr_opts TARGET: rawvec's -o options for a threads target.
thr_opts() {
	case $1 in
	t1) echo "threads=1" ;;
	auto) echo "" ;;
	t2pin) echo "threads=2,pin=on" ;;
	t2) echo "threads=2" ;;
	*) die "thr_opts: unknown target '$1'" ;;
	esac
}

# thr_run_one ROUND JOB_SPEC TARGET: mount what the job names with TARGET's
# options, run the fio job, check the stats (and after raid5 writes that
# rewrote both halves, the parity), unmount; append a line to $THR_TSV.
thr_run_one() {
	local round=$1 spec=$2 target=$3 jid label rw bs qd nj cpus on _tg out res
	local expr dir=. kind size fsize iops bw lat minio perjob nl pin msgs lreq
	local stats why check=- full rmw rcw in_mem
	local -a fopts=()
	IFS='|' read -r jid label rw bs qd nj cpus on _tg <<<"$spec"
	out=$THR_RUNS/r$round-$jid-$target
	case $on in
	image) expr=$IMG kind=file size=$SIZE_BYTES ;;
	null) expr=$THR_NULL kind=null size=$THR_NULL_BYTES ;;
	raid1null) expr="raid1($THR_NULL, $THR_NULL)" kind=raid1 size=$THR_NULL_BYTES ;;
	raid5) expr=$(raid_expr raid5) dir=$RAID_TMPFS kind=raid5 size=$RAID_ARRAY_BYTES ;;
	raid5mem)
		expr="raid5($(printf 'mem(size=%s), ' "$RAID_MEMBER"{,,,,})chunk=$RAID_CHUNK)"
		kind=raid5 size=$RAID_ARRAY_BYTES ;;
	raid5md)
		# md keeps 1 MiB of each member for its superblock; new, it
		# resyncs (in well under the ramp) and is then clean.
		expr="raid5(mem(size=64m), mem(size=64m), mem(size=64m), mem(size=64m), chunk=64k, super=1.2)"
		kind=raid5 size=$((3 * (63 << 20))) ;;
	*) die "threads: job $jid: unknown device '$on'" ;;
	esac
	fsize=$size
	((nj == 1)) || fopts+=("--numjobs=$nj")
	[[ $cpus == pin ]] && fopts+=("--cpus_allowed=$THR_CPUS" --cpus_allowed_policy=split)
	if [[ $on == raid5 || $on == raid5mem ]]; then
		# Each job its own part of the array, written in order.
		fsize=$((size / nj))
		((nj == 1)) || fopts+=("--offset_increment=$fsize")
	fi
	START_OPTS=$(thr_opts "$target") start_rawvec uring "$expr" "$out.daemon.log" "$dir"
	run_fio "$out" "$MNT/disk" "$fsize" "$jid" "$rw" "$bs" "$qd" "$label" "$target" "${fopts[@]}"
	res=$(helper tfio "$out.json" "$rw" "$nj") || die "fio $label on $target: bad result"
	IFS=$'\t' read -r iops bw lat minio perjob <<<"$res"
	cat "$MNT/stats" >"$out.stats" || die "reading $MNT/stats failed"
	# pin=auto pins several loops over members in memory, when rawvec may
	# run on every online CPU.
	in_mem=0
	[[ $on == null || $on == raid1null || $on == raid5mem || $on == raid5md ]] &&
		(($(nproc) == $(getconf _NPROCESSORS_ONLN))) && in_mem=1
	res=$(helper tstats "$out.stats" "$kind" "$size" "$target" "$in_mem") ||
		die "threads: $target on $on: wrong transport, loops or layout, I/O errors or failed members (see $out.stats)"
	IFS=$'\t' read -r nl pin msgs lreq stats why <<<"$res"
	((nj == 1)) || stats+="; per job $perjob"
	if [[ $on == raid5 || $on == raid5mem ]]; then
		res=$(helper rstats "$out.stats" uring raid5 "$size") ||
			die "threads: raid5: bad stats (see $out.stats)"
		IFS=$'\t' read -r _ full rmw rcw _ <<<"$res"
		stats+="; stripes $full full, $rmw rmw, $rcw rcw"
		# Every job rewrote its whole part since the ramp: no stripe is
		# left with the random data's parity, so a check must find nothing.
		if [[ $rw == write ]] && ((minio >= fsize)); then
			raid5_check "$out"
			check=$CHECK
			stats+="; check: $check mismatched"
		fi
	fi
	stop_watchdog
	stop_daemon "$MNT" umount
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$jid" "$target" \
		"$iops" "$bw" "$lat" "$nl" "$pin" "$msgs" "$lreq" "$check" "$why" >>"$THR_TSV"
	LABEL_W=32 print_result "$label" "$target" "$bs" "$qd" "$iops" "$bw" "$lat" "$stats"
}

run_threads() {
	local nruns=0 est spec jid label rw bs qd nj cpus on tg r j t k start_time elapsed
	local -a tgts only=()
	if [[ -n ${THR_ONLY:-} ]]; then
		for spec in "${THR_JOBS[@]}"; do
			[[ " $THR_ONLY " == *" ${spec%%|*} "* ]] && only+=("$spec")
		done
		((${#only[@]})) || die "THR_ONLY='$THR_ONLY' names no threads job"
		THR_JOBS=("${only[@]}")
	fi
	for spec in "${THR_JOBS[@]}"; do
		IFS='|' read -r jid label rw bs qd nj cpus on tg <<<"$spec"
		read -r -a tgts <<<"$tg"
		nruns=$((nruns + ROUNDS * ${#tgts[@]}))
	done
	est=$((nruns * (RUNTIME + RAMP + 2)))
	prepare_image
	prepare_raid members
	note "rawvec: $RV_VERSION ($RAWVEC); $(fio --version); transport: uring"
	note "threads: image $IMG ($SIZE on $fstype), $THR_NULL, raid5 of $((RAID_ARRAY_BYTES >> 20))M on tmpfs; $(nproc) CPUs, the pinned job on CPUs $THR_CPUS"
	note "threads: RUNTIME=${RUNTIME}s RAMP=${RAMP}s ROUNDS=$ROUNDS: $nruns fio runs, about $((est / 60)) min $((est % 60)) s"

	printf 'round\tjob\ttarget\tiops\tbw_bytes\tlat_us\tthreads\tpinned\tmsgs_sent\tloop_requests\tcheck\tthreads_why\n' >"$THR_TSV"
	: >"$TMPD/thr-jobs.tsv"
	for spec in "${THR_JOBS[@]}"; do
		IFS='|' read -r jid label rw bs qd nj cpus on tg <<<"$spec"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$jid" "$label" "$rw" "$bs" "$qd" \
			"$nj" "$cpus" "$on" "$tg" >>"$TMPD/thr-jobs.tsv"
	done

	start_time=$SECONDS
	for ((r = 1; r <= ROUNDS; r++)); do
		note "threads: round $r of $ROUNDS"
		for ((j = 0; j < ${#THR_JOBS[@]}; j++)); do
			IFS='|' read -r jid label rw bs qd nj cpus on tg <<<"${THR_JOBS[j]}"
			read -r -a tgts <<<"$tg"
			# Rotated as in core.
			for ((t = 0; t < ${#tgts[@]}; t++)); do
				k=$(((t + r - 1 + j) % ${#tgts[@]}))
				thr_run_one "$r" "${THR_JOBS[j]}" "${tgts[k]}"
			done
		done
	done
	elapsed=$((SECONDS - start_time))

	{
		echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs"
		echo "$RV_VERSION, --transport=uring; $(fio --version)"
		echo "t1 = rawvec -o threads=1; auto = rawvec with no threads option (threads=auto, pin=auto); t2pin = rawvec -o threads=2,pin=on (pinned 2-job job only); t2 = rawvec -o threads=2 (raid5: headerless, stripes sharded over both loops; raid1 of two nulls; md raid5 of mem members, clean, its reads on both loops; over the nulls and mem members pin=auto pins the two loops, since 2026-12-03)"
		echo "image: core's, $SIZE, fully written, on $fstype; null: $THR_NULL; raid5: raid5(m0..m4, chunk=$RAID_CHUNK) of $RAID_MEMBER members on a tmpfs, full of random data, each fio job writing its own half; raid5mem: the same over five mem(size=$RAID_MEMBER); raid5md: raid5 of four mem(size=64m), chunk=64k, super=1.2"
		echo "fio io_uring, O_DIRECT on MOUNTPOINT/disk, ${RUNTIME}s per job after ${RAMP}s ramp; 2-job jobs: numjobs=2, IOPS and MB/s summed; pinned: cpus_allowed=$THR_CPUS, cpus_allowed_policy=split; rounds: $ROUNDS, target order rotated per round and job"
	} >"$TMPD/thr-meta"
	raid_tmpfs_done
	helper threads_report "$THR_TSV" "$TMPD/thr-jobs.tsv" "$TMPD/threads.md" "$TMPD/thr-meta"
	write_md
	echo
	note "threads: measured for $((elapsed / 60)) min $((elapsed % 60)) s"
	note "Markdown tables: $MD; all threads measurements: $THR_TSV; fio JSON, stats and logs: $THR_RUNS/"
}

# results.md: the tables of the sections run so far, core first, a blank
# line between two.
write_md() {
	local f sep=""
	for f in "$TMPD/core.md" "$TMPD/raid.md" "$TMPD/threads.md" "$TMPD/nbd.md"; do
		[[ -f $f ]] || continue
		printf '%s' "$sep"
		cat "$f"
		sep=$'\n'
	done >"$MD"
}

# ---- main ----------------------------------------------------------------
start_all=$SECONDS
if ((RUN_CORE)); then
	run_core
fi
if ((RUN_RAID)); then
	run_raid
fi
if ((RUN_THREADS)); then
	run_threads
fi
if ((RUN_NBD)); then
	run_nbd
fi
if ((RUN_CORE + RUN_RAID + (RUN_THREADS > 0) + RUN_NBD > 1)); then
	echo
	note "the sections took $(((SECONDS - start_all) / 60)) min $(((SECONDS - start_all) % 60)) s"
fi
