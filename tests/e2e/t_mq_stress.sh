#!/bin/bash
# variants: dev/2
# (check.sh runs it on uring under ThreadSanitizer too; MQ_CASES="file
# raid5h" runs only those targets.)
# Two event loops under load on a file, raid0, a raid1 with md
# superblocks (run on both loops, gathered on loop 0 to sweep), a
# headerless raid5 and a raid6 with md superblocks (both sharded over the
# loops; MQ_CASES adds the other two): fio
# (4 jobs pinned to both CPUs, O_DIRECT 4k-64k, crc32c verify) plus two
# pinned unaligned writers sharing 4k blocks byte-disjointly (a lost RMW or
# range lock shows), and for raid1/5/6 a member failed and rebuilt meanwhile;
# before that, a faulty() member 1 gets latent sector errors in five ranges
# in turn, which reads mend while the writes go on (raid1's fixes race
# them), and a check must then find the members agreeing.
. "$(dirname "$0")/lib.sh"
requires_transport
requires fio python3 taskset
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs"

M=$((1024 * 1024))
MEMBER=64M        # each member image, created by rawvec
JOB=6             # MiB each fio job writes (4 jobs from offset 0)
FIO_LOOPS=2       # write + verify rounds per fio run; raid1/5/6 run fio
                  # again until the rebuild is over
UBASE=$((32 * M)) # the unaligned writers' region, after fio's
ULEN=$((1 * M))
CASE=
D=$MNT/disk
# E2E_SLOW=N: N times the time limits below (check.sh: under TSan).
SLOW=${E2E_SLOW:-1}

# Images on tmpfs: the member I/O is not the bottleneck to test.
mkdir "$T/img" && mount -t tmpfs -o size=1200m tmpfs "$T/img" || die "tmpfs"
track_mount "$T/img"

# Unaligned writers: records of 1000 bytes back to back from UBASE, record
# k owned by writer k % 2, so every 4k block holds both writers' bytes and
# records straddle block boundaries.  Each writer rewrites all its records
# in a shuffled order, round after round (pattern of writer, round, record)
# until STOP exists (40 rounds at most), and prints how many it finished.
cat >"$T/uw.py" <<'EOF'
import os, random, sys
REC = 1000

def pattern(w, r, k):
    b = bytes(((w * 89 + r * 7 + k * 13 + i) % 251) + 1 for i in range(251))
    return (b * (REC // 251 + 1))[:REC]

def write(path, w, base, length, stop):
    fd = os.open(path, os.O_WRONLY | (os.O_DIRECT if w else 0))
    mine = [k for k in range(length // REC) if k % 2 == w]
    rnd = random.Random(w)
    r = 0
    while True:
        rnd.shuffle(mine)
        for k in mine:
            n = os.pwrite(fd, pattern(w, r, k), base + k * REC)
            if n != REC:
                sys.exit("writer %d: short write %d" % (w, n))
        r += 1
        if r >= 40 or (r >= 2 and os.path.exists(stop)):
            break
    os.close(fd)
    print(r)

def expect(out, base, length, r0, r1):
    buf = bytearray(length)
    rounds = (r0, r1)
    for k in range(length // REC):
        buf[k * REC:(k + 1) * REC] = pattern(k % 2, rounds[k % 2] - 1, k)
    with open(out, "wb") as f:
        f.write(buf)

if sys.argv[1] == "write":
    write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
else:
    expect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
EOF

# fio: 4 jobs, job i on CPU i % 2 (split), each in its own JOB MiB region.
cat >"$T/job.fio" <<EOF
[global]
filename=$D
ioengine=io_uring
direct=1
rw=randwrite
bsrange=4k-64k
iodepth=16
verify=crc32c
verify_fatal=1
verify_state_save=0
do_verify=1
size=${JOB}m
loops=\${LOOPS}
offset=0
offset_increment=${JOB}m
numjobs=4
cpus_allowed=0-1
cpus_allowed_policy=split
group_reporting

[w]
EOF

# sweep_state: busy while a node rebuilds or sweeps, else idle.
sweep_state()
{
	cat "$MNT/stats" >"$T/st.json" 2>/dev/null || { echo nostats; return; }
	python3 - "$T/st.json" <<-'EOF'
		import json, sys
		def busy(n):
		    return (n.get("state") == "rebuilding" or bool(n.get("sweep_running"))
		            or any(busy(m) for m in n.get("members", [])))
		print("busy" if busy(json.load(open(sys.argv[1]))["target"]) else "idle")
	EOF
}

wait_idle()
{
	local st end=$((SECONDS + 30 * SLOW))
	while [ $SECONDS -lt $end ]; do
		st=$(sweep_state)
		[ "$st" = idle ] && return 0
		# A spread array is loop 0's alone while it sweeps.
		[ "$st" = busy ] && [ -n "$SHARDED" ] &&
			[ "$(stat_value target.loops)" = 1 ] && COLLAPSED_SEEN=1
		[ "$st" = busy ] || die "$CASE: $1: cannot read stats"
		kill -0 "$RAWVEC_PID" 2>/dev/null || die "$CASE: $1: rawvec died"
		sleep 0.1
	done
	die "$CASE: $1: still busy after $((30 * SLOW)) s: $(cat "$T/st.json")"
}

# bounded PID SECS WHAT: wait for PID (a child) at most SECS; a server that
# lost a request leaves it blocked: abort the connection and fail then.
bounded()
{
	local end=$((SECONDS + $2 * SLOW))
	while [ $SECONDS -lt $end ] && kill -0 "$1" 2>/dev/null; do
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		fuse_abort "$MNT" 2>/dev/null
		die "$CASE: $3 still running after $(($2 * SLOW)) s (requests unanswered?); connection aborted"
	fi
	wait "$1"
}

# Whether the raid1/5/6 runs on both loops, within 5 s (a raid5/6's
# stripes too).
sharded()
{
	local i
	for i in $(seq $((50 * SLOW))); do
		[ "$(stat_value target.loops)" = 2 ] || { sleep 0.1; continue; }
		case $expr in raid1*) return 0 ;; esac
		[ "$(stat_value target.stripe_loops)" = 2 ] && return 0
		sleep 0.1
	done
	return 1
}

# one NAME REDUNDANT EXPR: the whole exercise on one target.
one()
{
	local name=$1 red=$2 expr=$3 fpid w0 w1 r0 r1 i size out t0=$SECONDS
	case " ${MQ_CASES:-file raid0 raid1 raid5h raid6} " in *" $name "*) ;; *) return 0 ;; esac
	CASE=$name
	mkdir "$T/img/$name" && cd "$T/img/$name" || die "mkdir"
	log "--- $name: $expr"
	start_rawvec -o threads=2 --create "$MEMBER" "$expr"
	[ "$(stat_value threads)" = 2 ] || die "$CASE: stats threads is $(stat_value threads), not 2"
	wait_idle "initial state"
	size=$(stat -c %s "$D") || die "stat $D"
	[ "$size" -ge $((UBASE + ULEN)) ] || die "$CASE: disk of $size bytes is too small"

	rm -f "$T/stop"
	taskset -c 0 python3 "$T/uw.py" write "$D" 0 $UBASE $ULEN "$T/stop" >"$T/w0.out" 2>&1 &
	w0=$!
	taskset -c 1 python3 "$T/uw.py" write "$D" 1 $UBASE $ULEN "$T/stop" >"$T/w1.out" 2>&1 &
	w1=$!
	# fio runs, write + verify, until fio.stop exists (once at least).
	rm -f "$T/fio.stop" "$T/fio.runs"
	[ "$red" = 1 ] || touch "$T/fio.stop"
	(
		n=0
		while :; do
			LOOPS=$FIO_LOOPS fio --output="$T/fio.out" "$T/job.fio" || exit 1
			n=$((n + 1))
			[ -e "$T/fio.stop" ] && break
		done
		echo $n >"$T/fio.runs"
	) &
	fpid=$!
	track_pid $fpid # a failure stops the loop, or cleanup waits on it

	# A raid1/5/6 runs on both loops (with md superblocks once they say
	# active: from its first write after the resync).
	SHARDED= COLLAPSED_SEEN=
	case $expr in raid[156]*)
		SHARDED=1
		sharded || die "$CASE: loops is $(stat_value target.loops), not 2"
		;;
	esac
	if [ "$red" = 1 ]; then
		sleep 0.5
		kill -0 $fpid 2>/dev/null || die "$CASE: fio ended before the member failed"
		case $expr in *faulty*)
			# Five ranges one after the other: a range given
			# anew replaces the last, so a column written back
			# and not yet read back is never unreadable again.
			# A read of the first 8M meets them too, on any
			# target, and raid1's fixes then race fio's writes.
			for i in 0 1 2 3 4; do
				ctl "fault 1 unreadable=$((i * 1600 * 1024))..$(((i + 1) * 1600 * 1024))"
				dd if="$D" iflag=direct bs=256k count=32 of=/dev/null status=none ||
					die "$CASE: reading over the latent errors"
				sleep 0.2
			done
			ctl "fault 1 unreadable=none"
			sleep 0.5 # the fixes under way end
			out=$(stat_value target.degraded)
			[ "$out" = 0 ] || die "$CASE: degraded $out after mendable read errors: $(grep 'failed' "$RAWVEC_LOG" | tail -3)"
			ctl check
			wait_idle "check after the latent errors"
			out=$(stat_value target.mismatch_sectors)
			[ "$out" = 0 ] || die "$CASE: check after the latent errors: mismatch_sectors $out"
			log "$CASE: latent errors mended: corrected_sectors $(stat_value target.corrected_sectors), degraded $(stat_value target.degraded)"
			;;
		esac
		case $expr in
		*faulty*)
			# Failed by its own errors, on whichever loops meet them.
			ctl "fault 1 write_eio=1 read_eio=1"
			for i in $(seq 50); do
				[ "$(stat_value target.degraded)" = 1 ] && break
				sleep 0.1
			done
			;;
		*) ctl "fail 1" ;;
		esac
		sleep 0.2
		replace_retry 1 "$T/img/$name/new.img"
		log "$CASE: member 1 failed and replaced while fio runs"
		wait_idle "rebuild"
		kill -0 $fpid 2>/dev/null || die "$CASE: fio ended (failed) during the rebuild"
		touch "$T/fio.stop"
	fi

	bounded $fpid 60 fio || { grep -iE 'verify|err' "$T/fio.out" | head -20; die "$CASE: fio write+verify failed"; }
	log "$CASE: $(cat "$T/fio.runs") fio run(s) of $FIO_LOOPS write+verify rounds"
	touch "$T/stop"
	bounded $w0 20 "writer 0" || die "$CASE: writer 0: $(cat "$T/w0.out")"
	bounded $w1 20 "writer 1" || die "$CASE: writer 1: $(cat "$T/w1.out")"
	r0=$(cat "$T/w0.out") r1=$(cat "$T/w1.out")
	log "$CASE: fio done; unaligned writers did $r0 and $r1 rounds"

	if [ "$red" = 1 ]; then
		wait_idle "rebuild"
		[ -e "$T/img/$name/new.img" ] || die "$CASE: replace did not create new.img"
		[ "$(stat_value target.degraded)" = 0 ] || die "$CASE: degraded after the rebuild: $(cat "$T/st.json")"
		ctl check
		wait_idle "check"
		out=$(stat_value target.mismatch_sectors)
		[ "$out" = 0 ] || die "$CASE: check after the rebuild: mismatch_sectors $out"
	fi

	# Every byte of the disk: fio's regions by fio (again, after the
	# rebuild), the rest against the writers' bytes and zeroes.
	(cd "$T" && LOOPS=1 fio --verify_only --output="$T/fio2.out" "$T/job.fio") ||
		{ grep -iE 'verify|err' "$T/fio2.out" | head -20; die "$CASE: fio verify_only after the run failed"; }
	python3 "$T/uw.py" expect "$T/expect" $UBASE $ULEN "$r0" "$r1"
	dd if="$D" iflag=direct,skip_bytes skip=$((4 * JOB * M)) bs=1M status=none >"$T/rest" ||
		die "$CASE: reading the disk"
	{
		head -c $((UBASE - 4 * JOB * M)) /dev/zero
		cat "$T/expect"
		head -c $((size - UBASE - ULEN)) /dev/zero
	} >"$T/rest.want"
	out=$(cmp "$T/rest" "$T/rest.want" 2>&1) || {
		i=$(echo "$out" | sed -n 's/.*byte \([0-9]*\).*/\1/p')
		[ -n "$i" ] && i=$((i - 1 + 4 * JOB * M)) &&
			log "first difference at disk byte $i (unaligned region at $UBASE..$((UBASE + ULEN)))"
		die "$CASE: disk outside fio's regions differs from what was written: $out"
	}
	rm -f "$T/rest" "$T/rest.want" "$T/expect"

	if [ -n "$SHARDED" ]; then
		# Gathered while it swept, spread again after, and (raid5/6)
		# parts of requests still go to the loop owning their stripes.
		# (An md array idle since is gathered and marked clean: the
		# write below makes it active and spread again.)
		# (raid1's rebuild of 64M on tmpfs can end between two looks:
		# test_raid1_two_loops checks its gather.)
		case $expr in raid[56]*)
			[ -n "$COLLAPSED_SEEN" ] || die "$CASE: loops never 1 during the rebuild or check" ;;
		esac
		case $expr in raid[56]*) out=$(stat_value target.pieces_handed) ;; esac
		# (after the comparison above: these bytes are random)
		dd if=/dev/urandom of="$D" bs=1M count=2 seek=$((UBASE / M + 2)) oflag=direct conv=notrunc status=none ||
			die "$CASE: writing after the sweeps"
		sharded || die "$CASE: loops $(stat_value target.loops) after the sweeps, not 2"
		# A write that finds the md array idle again (200 ms, slower
		# under TSan) is gathered: tried a few times.
		case $expr in raid[56]*)
			for i in 1 2 3 4 5; do
				dd if=/dev/urandom of="$D" bs=1M count=2 seek=$((UBASE / M + 2)) oflag=direct conv=notrunc status=none ||
					die "$CASE: writing after the sweeps"
				[ "$(stat_value target.pieces_handed)" -gt "$out" ] && break
			done
			[ "$(stat_value target.pieces_handed)" -gt "$out" ] ||
				die "$CASE: no request part was handed to the other loop after the sweeps"
			;;
		esac
	fi
	# Both loops served requests: both CPUs' queues (or fds) were used.
	for i in 0 1; do
		out=$(stat_value loops.$i.requests)
		[ "$out" -gt 0 ] || die "$CASE: loop $i served no requests: $(cat "$T/stats.json")"
	done
	case $expr in *super=1.2*)
		log "$CASE: md: $(stat_value target.super.far_failures) member failure(s) met on loop 1, $(stat_value target.super.acks_held) acknowledgement(s) held for an update, state $(stat_value target.super.state)" ;;
	esac
	out=$(stat_value io_errors)/$(stat_value target.errors)
	[ "$out" = 0/0 ] || die "$CASE: stats io_errors/target.errors $out"
	log "$CASE: loops served $(stat_value loops.0.requests) + $(stat_value loops.1.requests) requests, $(stat_value loops.1.msgs_sent) messages from loop 1; rmw_writes $(stat_value rmw_writes), range_lock_waits $(stat_value range_lock_waits)"
	stop_rawvec
	cd "$T" || die "cd"
	rm -rf "$T/img/$name"
	log "$CASE: ok ($((SECONDS - t0)) s)"
}

one file 0 a.img
one raid0 0 "raid0(a.img, b.img, c.img, chunk=64k, super=none)"
# raid1 runs on both loops too (md superblocks, as --create writes them);
# its faulty() member is loop 0's, and both loops meet its errors.
one raid1 1 "raid1(a.img, faulty(b.img))"
# raid5 and raid6: the stripes are sharded over both loops (collapsed to
# loop 0 for the resync, the rebuild and the check, and with md
# superblocks while they say clean); member 1 of raid5h and raid6 fails by
# its own errors, met by both loops at once, and the md raid6 records it
# from loop 0 before either loop acknowledges a write that met it.
# MQ_CASES="raid5 raid6h" runs the other two.
one raid5 1 "raid5(a.img, b.img, c.img, d.img, chunk=64k)"
one raid6 1 "raid6(a.img, faulty(b.img), c.img, d.img, e.img, chunk=64k, super=1.2)"
one raid5h 1 "raid5(a.img, faulty(b.img), c.img, d.img, chunk=64k, super=none)"
one raid6h 1 "raid6(a.img, b.img, c.img, d.img, e.img, chunk=64k, super=none)"
log "pass (${SECONDS}s)"
