# bench_nbd: bench.sh's "nbd" section, sourced by it (it uses bench.sh's
# start_rawvec, run_fio, stop_daemon, spec_rounds, helper and print_result).
#
# Two nbdkit memory exports of NBD_SIZE each on Unix sockets in $TMPD (A
# and B), written full of random data once (nbdcopy), served for the whole
# section.  The targets, one mounted at a time:
#   rawvec   rawvec --transport=uring over nbd(A) (one connection)
#   nbdfuse  libnbd's own FUSE server over A (its default connections)
#   qsd      qemu-storage-daemon --blockdev driver=nbd over A, exported
#            with --export type=fuse
#   raid0    rawvec over raid0(nbd(A, conns=2), nbd(B, conns=2),
#            chunk=64k), fio over its first NBD_SIZE bytes
#   loops1, loops2  rawvec over nbd(A, conns=2) with -o threads=1, and
#            with threads=2 (a connection per loop, nbd_loops 2)
# Jobs as core's (4k randread/randwrite QD32, 1M seq read/write QD8, 4k
# randread QD1) on rawvec, nbdfuse and qsd; 4k randread QD32 also on
# raid0; 4k randread 2 jobs x QD16, the jobs pinned to the first two CPUs
# (a job id ending in j2), on loops1 and loops2.
# Issue targets: rawvec >= 2x the best of nbdfuse and qsd at 4k QD32 (read
# and write); raid0 of 2 members with conns=2 >= 1.6x one member at 4k
# randread QD32.  Every target shares the 2 CPUs with nbdkit: the numbers
# are the client's and the server's costs together, as on one machine.

NBD_SIZE=${NBD_SIZE:-1G}
NBD_JOBS=(
	"rr4k32|4k randread QD32|randread|4k|32|rawvec nbdfuse qsd raid0"
	"rw4k32|4k randwrite QD32|randwrite|4k|32|rawvec nbdfuse qsd"
	"sr1m8|1M seq read QD8|read|1M|8|rawvec nbdfuse qsd"
	"sw1m8|1M seq write QD8|write|1M|8|rawvec nbdfuse qsd"
	"rr4k1|4k randread QD1|randread|4k|1|rawvec nbdfuse qsd"
	"rr4k16j2|4k randread 2 jobs x QD16 pinned|randread|4k|16|loops1 loops2"
)
NBD_TSV=$BENCH_DIR/results-nbd.tsv
NBD_RUNS=$RUNS/nbd
NBD_MNT=$BENCH_DIR/nbdfuse-mnt

nbd_sock() { echo "$TMPD/nbd-$1.sock"; }
nbd_uri() { echo "nbd+unix:///?socket=$(nbd_sock "$1")"; }

# The two exports, filled; nbdkit exits with this shell (and the cleanup).
nbd_servers() {
	local e i
	for e in A B; do
		nbdkit -f --exit-with-parent -U "$(nbd_sock $e)" memory "$NBD_SIZE" \
			>"$NBD_RUNS/nbdkit-$e.log" 2>&1 &
		for i in $(seq 50); do
			[[ -S $(nbd_sock $e) ]] && break
			sleep 0.1
		done
		[[ -S $(nbd_sock $e) ]] || die "nbdkit did not start: $(cat "$NBD_RUNS/nbdkit-$e.log")"
		head -c "$NBD_SIZE_BYTES" /dev/urandom | nbdcopy - "$(nbd_uri $e)" ||
			die "filling export $e with nbdcopy failed"
	done
}

# The FUSE daemon of @target over export A, and the file fio runs on.
nbd_start() {
	case $1 in
	rawvec) start_rawvec uring "nbd($(nbd_uri A))" "$2.daemon.log" ;;
	raid0) start_rawvec uring "raid0(nbd($(nbd_uri A), conns=2), nbd($(nbd_uri B), conns=2), chunk=64k)" "$2.daemon.log" ;;
	loops1 | loops2)
		START_OPTS=threads=${1#loops} start_rawvec uring "nbd($(nbd_uri A), conns=2)" "$2.daemon.log"
		;;
	nbdfuse)
		DAEMON_NAME=nbdfuse
		DAEMON_LOG=$2.daemon.log
		setsid nbdfuse "$NBD_MNT" "$(nbd_uri A)" >"$DAEMON_LOG" 2>&1 &
		DAEMON_PID=$!
		wait_mounted "$NBD_MNT" || die "nbdfuse failed to start"
		;;
	qsd)
		DAEMON_NAME="qemu-storage-daemon driver=nbd"
		DAEMON_LOG=$2.daemon.log
		setsid qemu-storage-daemon \
			--blockdev "driver=nbd,node-name=n0,server.type=unix,server.path=$(nbd_sock A)" \
			--export "type=fuse,id=e0,node-name=n0,mountpoint=$QMNT,writable=on" \
			>"$DAEMON_LOG" 2>&1 &
		DAEMON_PID=$!
		wait_mounted "$QMNT" || die "qemu-storage-daemon failed to start"
		;;
	esac
}

nbd_file() {
	case $1 in
	rawvec | raid0 | loops*) echo "$MNT/disk" ;;
	nbdfuse) echo "$NBD_MNT/nbd" ;;
	qsd) echo "$QMNT" ;;
	esac
}

nbd_run_one() {
	local round=$1 spec=$2 target=$3 jid label rw bs qd _tg out res
	local iops bw lat stats="" nj=1 perjob
	local -a fopts=()
	IFS='|' read -r jid label rw bs qd _tg <<<"$spec"
	out=$NBD_RUNS/r$round-$jid-$target
	if [[ $jid == *j2 ]]; then
		[[ -n $THR_CPUS ]] || die "nbd: job $jid needs 2 CPUs"
		nj=2
		fopts=(--numjobs=2 "--cpus_allowed=$THR_CPUS" --cpus_allowed_policy=split)
	fi
	nbd_start "$target" "$out"
	run_fio "$out" "$(nbd_file "$target")" "$NBD_SIZE_BYTES" "$jid" "$rw" "$bs" "$qd" "$label" "$target" "${fopts[@]}"
	if ((nj == 1)); then
		res=$(helper fio "$out.json" "$rw") || die "fio $label on $target: bad result"
		IFS=$'\t' read -r iops bw lat <<<"$res"
	else
		res=$(helper tfio "$out.json" "$rw" "$nj") || die "fio $label on $target: bad result"
		IFS=$'\t' read -r iops bw lat _ perjob <<<"$res"
	fi
	case $target in
	rawvec | raid0 | loops*)
		cat "$MNT/stats" >"$out.stats" || die "reading $MNT/stats failed"
		stop_watchdog
		stats=$(helper stats "$out.stats" uring) ||
			die "$target: wrong transport or I/O errors (see $out.stats)"
		[[ $target == loops2 ]] && stats+="; nbd_loops $(helper nbd_loops "$out.stats")"
		((nj == 1)) || stats+="; per job $perjob"
		stop_daemon "$MNT" umount
		;;
	nbdfuse)
		stop_watchdog
		stop_daemon "$NBD_MNT" umount
		;;
	qsd)
		stop_watchdog
		stop_daemon "$QMNT" kill
		;;
	esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$jid" "$target" "$iops" "$bw" "$lat" >>"$NBD_TSV"
	print_result "$label" "$target" "$bs" "$qd" "$iops" "$bw" "$lat" "$stats"
}

run_nbd() {
	local nruns start_time elapsed j
	for c in nbdkit nbdcopy nbdfuse qemu-storage-daemon; do
		command -v "$c" >/dev/null ||
			die "$c not found: run 'make bench' or 'sh scripts/deps.sh --bench' (as root)"
	done
	NBD_SIZE_BYTES=$(numfmt --from=iec "${NBD_SIZE^^}" 2>/dev/null) ||
		die "NBD_SIZE=$NBD_SIZE: not a size"
	rm -rf "$NBD_RUNS"
	mkdir -p "$NBD_RUNS" "$NBD_MNT"
	[[ -f $QMNT ]] || : >"$QMNT"
	if [[ -z $THR_CPUS ]]; then
		note "nbd: the 2-job runs skipped, only one CPU to run on"
		for j in "${!NBD_JOBS[@]}"; do
			[[ ${NBD_JOBS[j]%%|*} == *j2 ]] && unset 'NBD_JOBS[j]'
		done
		NBD_JOBS=("${NBD_JOBS[@]}")
	fi
	nruns=$(spec_runs NBD_JOBS)
	note "nbd: two nbdkit memory exports of $NBD_SIZE; $nruns fio runs, about $((nruns * (RUNTIME + RAMP + 3) / 60)) min"
	nbd_servers
	printf 'round\tjob\ttarget\tiops\tbw_bytes\tlat_us\n' >"$NBD_TSV"
	spec_jobs_tsv NBD_JOBS "$TMPD/nbd-jobs.tsv"
	start_time=$SECONDS
	spec_rounds NBD_JOBS nbd nbd_run_one
	elapsed=$((SECONDS - start_time))
	{
		echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs"
		echo "$RV_VERSION, --transport=uring; $(nbdkit --version | head -1); $(nbdfuse --version | head -1); $(qemu-storage-daemon --version | head -1 | sed 's/ (.*//'); $(fio --version)"
		echo "two nbdkit memory exports of $NBD_SIZE (A, B) on Unix sockets, full of random data; nbdkit shares the CPUs with the client measured"
		echo "rawvec = nbd(A); nbdfuse = nbdfuse over A; qsd = qemu-storage-daemon driver=nbd over A, FUSE export; raid0 = raid0(nbd(A, conns=2), nbd(B, conns=2), chunk=64k); loops1/loops2 = nbd(A, conns=2) with -o threads=1/2, fio numjobs=2 on CPUs $THR_CPUS (split)"
		echo "fio io_uring, O_DIRECT, ${RUNTIME}s per job after ${RAMP}s ramp, rounds: $ROUNDS, target order rotated per round and job"
	} >"$TMPD/nbd-meta"
	helper nbd_report "$NBD_TSV" "$TMPD/nbd-jobs.tsv" "$TMPD/nbd.md" "$TMPD/nbd-meta"
	write_md
	echo
	note "nbd: measured for $((elapsed / 60)) min $((elapsed % 60)) s"
	note "Markdown tables: $MD; all nbd measurements: $NBD_TSV; fio JSON, stats and logs: $NBD_RUNS/"
}
