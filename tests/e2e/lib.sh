# lib.sh: helpers shared by every tests/e2e/t_*.sh (bash; source it first).
#
#   . "$(dirname "$0")/lib.sh"      # makes $T (temp dir under /tmp), $MNT=$T/mnt
#   requires_transport              # skip if RAWVEC_TRANSPORT=uring cannot work
#   requires fio mkfs.ext4 python3  # exit 77 (skip) when a tool is missing
#   make_image "$T/img" 64M random  # sparse, zero or random image file
#   start_rawvec [OPTIONS] TARGET   # rawvec -f --transport=$TRANSPORT ... $MNT TARGET
#                                   # in the background, log in $RAWVEC_LOG;
#                                   # waits for $MNT/disk (10 s) or fails
#   x=$(stat_field copied_bytes) || exit 1   # a number from $MNT/stats
#   stat_value transport / target.blockdev   # any value, bare
#   same_bytes A B "what"           # cmp in 1 MiB reads, fail on a difference
#   stop_rawvec                     # fusermount3 -u, wait, insist on exit 0
#   wait_rawvec_exit [S]            # after a signal: status in RAWVEC_STATUS
#   track_mount DIR / track_loop DEV / track_pid PID / at_exit 'CMD'
#   nbd_serve NAME memory 64M ; nbd_uri NAME   # an nbdkit on $T/NAME.sock
#   uring_set Y|N                   # enable_uring, restored at exit
#   log MSG / die MSG / skip MSG / expect_fail DESC CMD... / file_state PATH
#
# Exit codes: 0 pass, 77 skip (the reason is the last line printed), other
# fail.  The EXIT trap always unmounts (inner mounts, then $MNT with
# fusermount3 -uz / umount -l), detaches loop devices, stops what we
# started and removes $T (never across a mount), and prints nothing, so a
# skip's reason stays the last line of the log.  python3 is optional: the
# stats helpers fall back to grep/sed.

set -u

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
RAWVEC=${RAWVEC:-$ROOT/build/rawvec}
# auto | uring | dev: check.sh sets it per "# transports:" line.
TRANSPORT=${RAWVEC_TRANSPORT:-auto}
# RAWVEC_THREADS=N: every mount gets -o threads=N (unless it names one).
THREADS=${RAWVEC_THREADS:-}
URING_PARAM=/sys/module/fuse/parameters/enable_uring

T=                 # the temp dir (under /tmp)
MNT=               # rawvec's mountpoint, $T/mnt
RAWVEC_PID=        # the rawvec started by start_rawvec
RAWVEC_LOG=        # its stdout+stderr
_SKIP_REASON=
_LOOPS=()          # loop devices to detach
_MOUNTS=()         # other mounts to undo (innermost last)
_PIDS=()           # background processes to reap
_URING_RESTORE=    # enable_uring value to put back
_ATEXIT=()         # commands (strings) run first by the cleanup
_WATCHDOG=         # pid of the watchdog subshell

# The first line of a ThreadSanitizer or AddressSanitizer report.
SAN_REPORT='^WARNING: ThreadSanitizer\|^==[0-9]*==ERROR: '

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

# die MSG: fail the test, with rawvec's log tail when there is one.
die()
{
	{
		printf 'FAIL: %s\n' "$*"
		if [ -n "$RAWVEC_LOG" ] && [ -s "$RAWVEC_LOG" ]; then
			echo "--- rawvec log ($RAWVEC_LOG) ---"
			# A sanitizer's report is longer than the tail: the lines
			# before it, then all of it.
			if grep -q "$SAN_REPORT" "$RAWVEC_LOG"; then
				sed "/$SAN_REPORT/,\$d" "$RAWVEC_LOG" | grep -v "^=*\$" | tail -10
				echo "--- sanitizer report ---"
				sed -n "/$SAN_REPORT/,/^SUMMARY: /p" "$RAWVEC_LOG" | head -300
			else
				tail -20 "$RAWVEC_LOG"
			fi
		fi
	} >&2
	exit 1
}

# skip MSG: exit 77; the trap prints MSG last.
skip()
{
	_SKIP_REASON="SKIP: $*"
	exit 77
}

# requires TOOL...: skip unless every tool is on PATH.
requires()
{
	local t
	for t in "$@"; do
		if [ "$t" = python3 ]; then
			has_python || skip "requires python3"
			continue
		fi
		command -v "$t" >/dev/null 2>&1 || skip "requires $t"
	done
}

requires_root()
{
	[ "$(id -u)" = 0 ] || skip "must run as root"
}

# requires_transport: skip when the requested transport cannot work here.
requires_transport()
{
	case $TRANSPORT in
	uring)
		[ -r "$URING_PARAM" ] ||
			skip "kernel has no FUSE-over-io_uring ($URING_PARAM missing)"
		grep -q '^[Y1]' "$URING_PARAM" ||
			skip "$URING_PARAM is not Y (check.sh sets it as root)"
		;;
	dev|auto) ;;
	*) die "RAWVEC_TRANSPORT=$TRANSPORT is not auto, uring or dev" ;;
	esac
}

# python3 is optional (stat_value falls back to grep/sed; tests that need
# it say `requires python3`).  Resolve it once: a pyenv shim on PATH costs
# half a second per start.
PYTHON=
if [ -x /usr/bin/python3 ]; then
	PYTHON=/usr/bin/python3
elif command -v python3 >/dev/null 2>&1; then
	PYTHON=$(command python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
fi
if [ -n "$PYTHON" ]; then
	python3() { "$PYTHON" "$@"; }
fi
has_python() { [ -n "$PYTHON" ]; }

_cleanup()
{
	local rc=$? i p
	trap - EXIT INT TERM
	{
		kill "$_WATCHDOG"
		for ((i = ${#_ATEXIT[@]} - 1; i >= 0; i--)); do
			eval "${_ATEXIT[i]}"
		done
		# Inner mounts first (e.g. ext4 on a loop over $MNT/disk).
		for ((i = ${#_MOUNTS[@]} - 1; i >= 0; i--)); do
			umount "${_MOUNTS[i]}" || umount -l "${_MOUNTS[i]}"
		done
		for p in "${_PIDS[@]}"; do
			kill "$p"
		done
		for ((i = ${#_LOOPS[@]} - 1; i >= 0; i--)); do
			losetup -d "${_LOOPS[i]}"
		done
		if [ -n "$MNT" ] && grep -q " $MNT fuse" /proc/mounts; then
			fuse_abort "$MNT" # a stuck rawvec must not keep us here
			fusermount3 -uz "$MNT" || umount -l "$MNT"
		fi
		if [ -n "$RAWVEC_PID" ] && kill -0 "$RAWVEC_PID"; then
			for i in $(seq 50); do
				kill -0 "$RAWVEC_PID" || break
				sleep 0.1
			done
			kill -KILL "$RAWVEC_PID"
		fi
		wait
		[ -n "$_URING_RESTORE" ] && echo "$_URING_RESTORE" >"$URING_PARAM"
		# --one-file-system: never delete through a mount left behind.
		[ -n "$T" ] && rm -rf --one-file-system "$T"
	} >/dev/null 2>&1
	[ -n "$_SKIP_REASON" ] && echo "$_SKIP_REASON"
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

T=$(mktemp -d /tmp/rawvec-e2e.XXXXXX) || { echo "FAIL: mktemp"; exit 1; }
MNT=$T/mnt
mkdir "$MNT"

# fuse_abort DIR: abort the FUSE connection mounted on DIR, found through
# mountinfo (a stat of DIR would hang on a stuck server).  Every request
# waiting on it fails with ENOTCONN; the server sees ENODEV.
fuse_abort()
{
	local dev
	dev=$(awk -v m="$1" '$5 == m && $9 ~ /^fuse/ { print $3 }' /proc/self/mountinfo | tail -1)
	[ -n "$dev" ] && echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort"
}

# Watchdog: a request rawvec never answers blocks its caller beyond any
# signal (once rawvec has read it), and with it this script and its EXIT
# trap, past check.sh's timeout.  After E2E_TIMEOUT seconds abort our
# connection, kill our rawvec, and end the script (exit 143 = failure).
E2E_TIMEOUT=${E2E_TIMEOUT:-240}
(
	trap 'kill $s 2>/dev/null; exit 0' TERM
	sleep "$E2E_TIMEOUT" </dev/null >/dev/null 2>&1 &
	s=$!
	wait $s || exit 0
	echo "FAIL: watchdog: still running after ${E2E_TIMEOUT}s; aborting the FUSE connection on $MNT" >&2
	fuse_abort "$MNT" 2>/dev/null
	[ -s "$T/rawvec.pid" ] && kill -KILL "$(cat "$T/rawvec.pid")" 2>/dev/null
	kill -TERM $$
) &
_WATCHDOG=$!

requires_root
[ -x "$RAWVEC" ] || skip "$RAWVEC not built (make all)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
requires fusermount3 mountpoint cmp dd timeout

# track_loop DEV / track_mount DIR / track_pid PID: undo them at exit.
# at_exit 'CMD': run CMD (a string, eval'd) first thing at exit.
at_exit() { _ATEXIT+=("$1"); }
track_loop() { _LOOPS+=("$1"); }
track_mount() { _MOUNTS+=("$1"); }
track_pid() { _PIDS+=("$1"); }

# untrack_mount DIR: after a successful umount.
untrack_mount()
{
	local i
	for i in "${!_MOUNTS[@]}"; do
		[ "${_MOUNTS[i]}" = "$1" ] && unset '_MOUNTS[i]'
	done
	_MOUNTS=("${_MOUNTS[@]}")
}

# make_image PATH SIZE [sparse|zero|random]: an image file.
make_image()
{
	local path=$1 size=$2 kind=${3:-sparse} mib
	rm -f "$path"
	case $kind in
	sparse) truncate -s "$size" "$path" ;;
	zero) truncate -s "$size" "$path" &&
		fallocate -l "$size" "$path" 2>/dev/null; true ;;
	random)
		mib=$(numfmt --from=iec "$size")
		[ $((mib % 1048576)) = 0 ] || die "make_image: random needs whole MiB"
		dd if=/dev/urandom of="$path" bs=1M count=$((mib / 1048576)) \
			status=none iflag=fullblock ;;
	*) die "make_image: kind $kind" ;;
	esac || die "make_image $path $size $kind"
}

# transport_opt: the --transport option for this run.
transport_opt() { echo "--transport=$TRANSPORT"; }

# ctl CMD: one control command; fail with rawvec's reason if refused.
ctl()
{
	echo "$1" >"$MNT/control" 2>"$T/ctl.err" ||
		die "$CASE: echo '$1' > control failed: $(cat "$T/ctl.err")"
}

# replace_retry ADDR PATH: `replace ADDR PATH` through the control file,
# tried again for 5 s while it is refused: a member with I/O still in
# flight is refused (EBUSY), and retrying is the documented answer.
replace_retry()
{
	local i
	for i in $(seq 50); do
		echo "replace $1 $2" >"$MNT/control" 2>/dev/null && return 0
		sleep 0.1
	done
	die "${CASE:+$CASE: }replace $1 $2 refused 50 times: $(tail -3 "$RAWVEC_LOG")"
}

# nbd_serve NAME NBDKIT_ARGS...: nbdkit (killed at exit) serving on
# $T/NAME.sock, its pid in NBDKIT_NAME; waits for the socket.
# nbd_uri NAME: its URI.
nbd_serve()
{
	local name=$1 i
	shift
	nbdkit -f --exit-with-parent -U "$T/$name.sock" "$@" >>"$T/nbdkit-$name.log" 2>&1 &
	track_pid $!
	eval "NBDKIT_$name=$!"
	for i in $(seq 50); do
		[ -S "$T/$name.sock" ] && return 0
		sleep 0.1
	done
	die "nbdkit $*: no socket after 5 s: $(cat "$T/nbdkit-$name.log")"
}
nbd_uri() { echo "nbd+unix:///?socket=$T/$1.sock"; }

# start_rawvec [OPTIONS] TARGET: run rawvec -f in the background on $MNT,
# with --transport=$TRANSPORT unless OPTIONS name one (and -o threads=
# $RAWVEC_THREADS when set, unless they name that); wait until
# $MNT/disk exists (10 s), else fail with the log.
start_rawvec()
{
	local args=("$@") a have_tr=0 have_th=0 i
	for a in "${args[@]}"; do
		case $a in
		--transport=*) have_tr=1 ;;
		*threads=*) have_th=1 ;;
		esac
	done
	[ $have_tr = 1 ] || args=("$(transport_opt)" "${args[@]}")
	[ $have_th = 1 ] || [ -z "$THREADS" ] ||
		args=(-o "threads=$THREADS" "${args[@]}")
	local target=${args[${#args[@]} - 1]}
	unset 'args[${#args[@]}-1]'
	[ -z "$RAWVEC_PID" ] || die "start_rawvec: one is already running"
	RAWVEC_LOG=$T/rawvec.log
	log "start: $RAWVEC -f ${args[*]} $MNT $target"
	"$RAWVEC" -f "${args[@]}" "$MNT" "$target" >>"$RAWVEC_LOG" 2>&1 &
	RAWVEC_PID=$!
	echo "$RAWVEC_PID" >"$T/rawvec.pid"
	# Polled every 20 ms: make check mounts ~280 times, and most mounts
	# are ready within 50 ms.
	for i in $(seq 500); do
		if ! kill -0 "$RAWVEC_PID" 2>/dev/null; then
			wait "$RAWVEC_PID"
			a=$?
			RAWVEC_PID=
			die "rawvec exited with status $a before mounting"
		fi
		if mountpoint -q "$MNT" && timeout 5 stat "$MNT/disk" >/dev/null 2>&1; then
			log "mounted (pid $RAWVEC_PID)"
			return 0
		fi
		sleep 0.02
	done
	die "$MNT/disk did not appear within 10 s"
}

# wait_rawvec_exit [SECONDS]: wait for the rawvec we started; its status
# in RAWVEC_STATUS; fail if it outlives SECONDS (default 20).
wait_rawvec_exit()
{
	local secs=${1:-20} i
	for i in $(seq $((secs * 50))); do
		kill -0 "$RAWVEC_PID" 2>/dev/null || break
		sleep 0.02
	done
	kill -0 "$RAWVEC_PID" 2>/dev/null && die "rawvec (pid $RAWVEC_PID) still running after ${secs}s"
	wait "$RAWVEC_PID"
	RAWVEC_STATUS=$?
	RAWVEC_PID=
}

# stop_rawvec: unmount $MNT, wait for rawvec to exit, insist on status 0.
stop_rawvec()
{
	local i out
	[ -n "$RAWVEC_PID" ] || die "stop_rawvec: rawvec is not running"
	for i in $(seq 50); do
		out=$(fusermount3 -u "$MNT" 2>&1) && break
		sleep 0.1
	done
	mountpoint -q "$MNT" && die "fusermount3 -u $MNT failed: $out"
	wait_rawvec_exit 20
	[ "$RAWVEC_STATUS" = 0 ] || die "rawvec exited with status $RAWVEC_STATUS after unmount"
	# Under a sanitizer that does not halt (TSAN_OPTIONS halt_on_error=0),
	# a report still fails the test.
	! grep -q "$SAN_REPORT" "$RAWVEC_LOG" ||
		die "sanitizer report in rawvec's log"
	log "unmounted, rawvec exited 0"
}

# stat_value NAME: a top-level value of $MNT/stats (number, true/false or
# string, printed bare); NAME may be a path such as target.FIELD or, with
# python3, target.members.0.read_lat.p50_us.
stat_value()
{
	local f=$T/stats.json
	cat "$MNT/stats" >"$f" || die "cannot read $MNT/stats"
	if has_python; then
		python3 - "$f" "$1" <<-'EOF' || die "stats: no field $1 in $(cat "$f")"
			import json, sys
			d = json.load(open(sys.argv[1]))
			for k in sys.argv[2].split('.'):
			    d = d[int(k)] if isinstance(d, list) else d[k]
			print(str(d).lower() if isinstance(d, bool) else d)
		EOF
	else
		local name=$1 v
		case $name in
		target.*) v=$(sed -n 's/.*"target": *{//p' "$f" |
				grep -o "\"${name#target.}\": *[^,}]*" | head -1) ;;
		*) v=$(grep -o "\"$name\": *[^,}]*" "$f" | head -1) ;;
		esac
		[ -n "$v" ] || die "stats: no field $name in $(cat "$f")"
		echo "$v" | sed 's/^"[^"]*": *//; s/^"//; s/"$//'
	fi
}

# stat_field NAME: a top-level number of $MNT/stats.  In $(...) a failure
# only ends the subshell: write  x=$(stat_field NAME) || exit 1
stat_field()
{
	local v
	v=$(stat_value "$1") || exit 1
	case $v in
	'' | *[!0-9]*) die "stats: $1 is '$v', not a number" ;;
	esac
	echo "$v"
}

# file_state PATH: size and mtime (ns), for "left untouched" checks.
file_state() { stat -c '%s %y' "$1"; }

# same_bytes A B [WHAT]: cmp, failing with the first difference.  Reads in
# 1 MiB pieces: cmp alone reads st_blksize (4k) at a time, slow on a loop
# device with direct I/O.
same_bytes()
{
	local out
	out=$(cmp <(dd if="$1" bs=1M status=none) <(dd if="$2" bs=1M status=none) 2>&1) ||
		die "${3:-$1 vs $2}: ${out:-cmp failed}"
}

# expect_fail DESC CMD...: CMD must exit non-zero.
expect_fail()
{
	local desc=$1
	shift
	if "$@" >"$T/expect_fail.out" 2>&1; then
		die "$desc: succeeded, expected failure: $*"
	fi
}

# uring_set Y|N: set enable_uring, restoring the old value at exit.
uring_set()
{
	[ -w "$URING_PARAM" ] || skip "cannot write $URING_PARAM"
	[ -n "$_URING_RESTORE" ] || _URING_RESTORE=$(cat "$URING_PARAM")
	echo "$1" >"$URING_PARAM" || die "cannot set $URING_PARAM to $1"
}
