#!/bin/bash
# variants: uring/2 dev/2
# The stats file sums two loops' counters consistently: while two fio jobs,
# pinned to both CPUs, keep 32 reads each in flight over sim(null(), lat=2ms), every
# snapshot's top-level requests is the sum of the loops[].requests shown
# beside it (they were read at different moments, and differed by up to
# 17), inflight_max is never below inflight, at the top or in the target
# (each loop's own mark was taken as the mark: 64 in flight, max 32), and
# neither mark ever falls.
. "$(dirname "$0")/lib.sh"
requires_transport
requires fio python3 taskset
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs"

start_rawvec -o threads=2 "sim(null(size=1g), lat=2ms)"
[ "$(stat_value threads)" = 2 ] || die "threads is $(stat_value threads), not 2"
fio --name=r --filename="$MNT/disk" --rw=randread --bs=4k --iodepth=32 \
	--ioengine=io_uring --direct=1 --runtime=4 --time_based \
	--numjobs=2 --cpus_allowed=0,1 --cpus_allowed_policy=split \
	--group_reporting >"$T/fio.out" 2>&1 &
fio_pid=$!
track_pid $fio_pid
sleep 0.5
python3 - "$MNT/stats" <<'PY' || die "stats snapshots disagree (above)"
import json, sys, time
top_max = dev_max = 0
busy = 0
for n in range(60):
    with open(sys.argv[1]) as f:
        s = json.load(f)
    loops = sum(l["requests"] for l in s["loops"])
    if loops != s["requests"]:
        sys.exit(f"snapshot {n}: loops[].requests sum to {loops}, requests is {s['requests']}")
    t = s["target"]
    for what, node in (("top level", s), ("target", t)):
        if node["inflight"] > node["inflight_max"]:
            sys.exit(f"snapshot {n}: {what}: inflight {node['inflight']} > inflight_max {node['inflight_max']}")
    if s["inflight_max"] < top_max or t["inflight_max"] < dev_max:
        sys.exit(f"snapshot {n}: a high-water mark fell: {top_max} -> {s['inflight_max']}, {dev_max} -> {t['inflight_max']}")
    top_max, dev_max = s["inflight_max"], t["inflight_max"]
    busy += s["inflight"] > 32
    time.sleep(0.05)
if not busy:
    sys.exit("no snapshot had more than 32 in flight: one loop's share alone was tested")
print(f"60 snapshots agree; {busy} with more than 32 in flight; inflight_max {top_max}, target {dev_max}")
PY
wait $fio_pid || die "fio failed: $(tail -5 "$T/fio.out")"
log "loops served $(stat_value loops.0.requests) + $(stat_value loops.1.requests) requests"
stop_rawvec
log pass
