#!/bin/bash
# qd_breakdown.sh - where a 4k random read's time goes, phase by phase.
#
# Runs fio (4k randread, io_uring, O_DIRECT) on FILE at a queue depth, and
# records the kernel's tracepoints for a window in the middle of the run:
#   fuse:fuse_request_send, fuse:fuse_request_end,
#   io_uring:io_uring_submit_req, io_uring_complete, io_uring_local_work_run,
#   block:block_bio_queue, block_rq_issue, block_rq_complete,
#   sched:sched_waking, sched_switch, raw_syscalls:sys_enter (io_uring_enter)
# into OUT/NAME.trace (tracefs text, trace_clock mono), then prints a table
# of the phases (median, p90, mean, and how many requests are in each phase
# on average: completion rate x mean time, Little's law) with
# scripts/qd_analyze.py.  FILE is either an image itself (the phases are
# the block layer's and the device's) or MOUNTPOINT/disk of a FUSE server
# on the FUSE-over-io_uring transport (the phases add the FUSE queue, the
# server's loop and the COMMIT).  Only the events of this run's fio threads
# and of the server serving FILE's mount count (the server: the process
# whose name starts with SERVER, default rawvec, and whose command line
# names that mount point; SERVER_PID overrides), so other processes may
# run beside it.
#
# Block events count only inside the image's extents (filefrag): FILE
# itself, or for a mount the server's last argument when it is a file
# (IMAGE overrides).  -l traces the block layer alone (block_rq_issue and
# block_rq_complete): the device time and depth at a tracing cost low
# enough not to change them much.
#
# usage: scripts/qd_breakdown.sh [-l] [-q QD] [-r RUNTIME] [-w WINDOW]
#                                [-o OUT] [-n NAME] FILE
#   -l          light: block events only
#   -q QD       fio iodepth [32]
#   -r RUNTIME  fio runtime, seconds [6]
#   -w WINDOW   seconds traced, starting RUNTIME/2 - WINDOW/2 in [1]
#   -o OUT      directory for NAME.trace, NAME.fio.json, NAME.txt [/tmp/qd]
#   -n NAME     [qdQD]
# Environment: SERVER [rawvec], SERVER_PID [found], IMAGE [found],
#   BUF_KB per-CPU trace buffer [131072].
# Needs root, fio, python3 and tracefs.  Tracing costs CPU: the traced
# window runs slower than the rest (fio's JSON has the whole run's figures).
# Exit status: 0 done, 2 bad usage, 1 a failure.
set -euo pipefail

usage() {
	sed -n '/^# usage:/,/^# Exit/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit "${1:-2}"
}
die2() { echo "qd_breakdown.sh: $*" >&2; exit 2; }

QD=32 RUNTIME=6 WINDOW=1 OUT=/tmp/qd NAME= LIGHT=
while getopts lq:r:w:o:n:h opt; do
	case $opt in
	l) LIGHT=1 ;;
	q) QD=$OPTARG ;;
	r) RUNTIME=$OPTARG ;;
	w) WINDOW=$OPTARG ;;
	o) OUT=$OPTARG ;;
	n) NAME=$OPTARG ;;
	h) usage 0 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
FILE=$1
for v in q:QD r:RUNTIME w:WINDOW; do
	n=${v#*:}; [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die2 "-${v%%:*} wants a positive integer, not '${!n}'"
done
[ "$WINDOW" -lt "$RUNTIME" ] || die2 "the window (-w $WINDOW) must be shorter than the run (-r $RUNTIME)"
[ -e "$FILE" ] || die2 "$FILE: no such file"
[ "$(id -u)" = 0 ] || die2 "needs root (tracefs)"
command -v fio >/dev/null || die2 "fio is not installed"
command -v python3 >/dev/null || die2 "python3 is not installed"
NAME=${NAME:-qd$QD}
SERVER=${SERVER:-rawvec}
BUF_KB=${BUF_KB:-131072}
HERE=$(cd "$(dirname "$0")" && pwd)

T=/sys/kernel/tracing
MOUNTED=
if [ ! -d $T/events ]; then
	mount -t tracefs nodev $T 2>/dev/null || die2 "no tracefs at $T"
	MOUNTED=1
fi
for e in fuse io_uring block sched raw_syscalls; do
	[ -d $T/events/$e ] || die2 "the kernel has no $e tracepoints"
done
mkdir -p "$OUT"

# The server: only for FILE on a FUSE mount.
tids() { for p; do ls /proc/"$p"/task 2>/dev/null; done | paste -sd, -; }
SRV_TIDS=
mnt=$(findmnt -n -o TARGET -T "$FILE" 2>/dev/null || true)
fstype=$(findmnt -n -o FSTYPE -T "$FILE" 2>/dev/null || true)
if [[ $fstype == fuse* ]]; then
	if [ -z "${SERVER_PID:-}" ]; then
		for p in $(pgrep "^$SERVER" || true); do
			if tr '\0' '\n' </proc/"$p"/cmdline | grep -qxF -- "$mnt"; then
				SERVER_PID=$p
			fi
		done
	fi
	[ -n "${SERVER_PID:-}" ] || die2 "no $SERVER process serves $mnt (set SERVER_PID)"
	SRV_TIDS=$(tids "$SERVER_PID")
	if [ -z "${IMAGE:-}" ]; then
		IMAGE=$(tr '\0' '\n' </proc/"$SERVER_PID"/cmdline | tail -1)
	fi
else
	IMAGE=${IMAGE:-$FILE}
fi
EXT=$OUT/$NAME.extents
: >"$EXT"
if [ -f "$IMAGE" ]; then
	filefrag -v -b512 "$IMAGE" |
		awk '/^ *[0-9]+:/ { sub(/\.\./, " ", $4); print $4, $5 + 0 }' >"$EXT"
fi

EVENTS="fuse/fuse_request_send fuse/fuse_request_end
io_uring/io_uring_submit_req io_uring/io_uring_complete
io_uring/io_uring_local_work_run block/block_bio_queue block/block_rq_issue
block/block_rq_complete sched/sched_waking sched/sched_switch
raw_syscalls/sys_enter"
[ -z "$LIGHT" ] || EVENTS="block/block_rq_issue block/block_rq_complete"
old_clock=$(sed 's/.*\[\(.*\)\].*/\1/' $T/trace_clock)
old_buf=$(sed 's/.*expanded: \([0-9]*\).*/\1/' $T/buffer_size_kb)
cleanup() {
	echo 0 >$T/tracing_on
	for e in $EVENTS; do echo 0 >$T/events/$e/enable; done
	echo 0 >$T/events/raw_syscalls/sys_enter/filter
	echo >$T/trace
	echo "$old_buf" >$T/buffer_size_kb
	echo "$old_clock" >$T/trace_clock
	[ -z "${FIO_PID:-}" ] || kill "$FIO_PID" 2>/dev/null || true
	[ -z "$MOUNTED" ] || umount $T 2>/dev/null || true
}
trap cleanup EXIT

echo 0 >$T/tracing_on
echo >$T/trace
echo mono >$T/trace_clock
echo "$BUF_KB" >$T/buffer_size_kb
echo 'id == 426' >$T/events/raw_syscalls/sys_enter/filter
for e in $EVENTS; do echo 1 >$T/events/$e/enable; done

fio --name=r --filename="$FILE" --rw=randread --bs=4k --iodepth="$QD" \
	--ioengine=io_uring --direct=1 --runtime="$RUNTIME" --time_based \
	--output-format=json >"$OUT/$NAME.fio.json" &
FIO_PID=$!
sleep "$(awk -v r="$RUNTIME" -v w="$WINDOW" 'BEGIN { print r / 2 - w / 2 }')"
APP_TIDS=$(tids "$FIO_PID" $(pgrep -P "$FIO_PID" || true))
echo 1 >$T/tracing_on
sleep "$WINDOW"
echo 0 >$T/tracing_on
wait "$FIO_PID" || { FIO_PID=; echo "qd_breakdown.sh: fio failed" >&2; exit 1; }
FIO_PID=
overrun=$(awk '/^overrun/ { s += $2 } END { print s + 0 }' $T/per_cpu/cpu*/stats)
cp $T/trace "$OUT/$NAME.trace"
{
	echo "# $NAME: fio 4k randread QD$QD on $FILE, $RUNTIME s, traced ${WINDOW} s; $(date -u '+%F %T UTC')"
	jq -r '.jobs[0].read | "fio, whole run: \(.iops | floor) IOPS, clat mean \(.clat_ns.mean / 1000 | floor) us, p50 \(.clat_ns.percentile["50.000000"] / 1000) us, p90 \(.clat_ns.percentile["90.000000"] / 1000) us"' \
		"$OUT/$NAME.fio.json" 2>/dev/null || true
	echo "trace buffer overruns: $overrun (lost events make fewer requests link)"
	QD_EXTENTS=$EXT python3 "$HERE/qd_analyze.py" "$OUT/$NAME.trace" "$APP_TIDS" "${SRV_TIDS:-none}"
} | tee "$OUT/$NAME.txt"
