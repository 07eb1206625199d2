#!/bin/bash
# variants: uring/2 dev/1
# Rebuild after `replace`, with writes running throughout, for raid1 (2
# mirrors), raid5 (4 members), raid6 (5 members, two failures replaced one
# after the other: the first rebuild runs with the other member still
# failed) and raid10 (raid0 over two raid1 pairs, nested address 1.0):
#   - fill the disk with random data, `fail` a member, write more while
#     degraded (aligned and unaligned);
#   - start a writer (raid_ref.py churn: random aligned and unaligned
#     pwrites, the same bytes into a model file), `replace` the failed
#     member with a new image (created by rawvec), and keep writing while
#     the rebuild runs; poll stats until no member is "rebuilding" and no
#     sweep runs (timeout), then stop the writer;
#   - cycles (raid1, raid5): with two writers on the two halves of the
#     disk running all along, fail and replace every member in turn,
#     each rebuild starting while writes are in flight;
#   - reads during the rebuild (raid1; raid5, and raid6 with one more
#     member failed, chunk 4k; no writes): four readers read the whole
#     disk over and over while the rebuild runs, and every read must
#     equal the model;
#   - the disk reads back as the model; stats say degraded 0, all ok,
#     rebuild_pos = member_size;
#   - after unmount every member image, the new one included, equals byte
#     for byte what md holds for the model (raid_ref.py mdcheck: raid5/6
#     parity from the model, raid1 mirrors equal the data, raid10 pairs
#     equal).
. "$(dirname "$0")/lib.sh"
requires_transport
has_python || skip "requires python3"

REF=$E2E_DIR/raid_ref.py
. "$(dirname "$0")/raid_lib.sh"
D=$MNT/disk
MODEL=$T/model
POOL=$T/pool
POOL_SIZE=$((8 << 20))
head -c $POOL_SIZE /dev/urandom >"$POOL" || die "pool"
POFF=0
CASE=
SIZE=0
SEED=${RAID_SEED:-$$}
log "seed $SEED"
K=1024
M=$((1024 * 1024))

verify()
{
	local out
	dd if="$D" iflag=direct bs=1M status=none >"$T/disk.now" 2>"$T/dd.err" ||
		die "$CASE: $1: reading the disk failed: $(cat "$T/dd.err")"
	out=$(cmp "$T/disk.now" "$MODEL" 2>&1) || die "$CASE: $1: disk differs from the model: $out"
	rm -f "$T/disk.now"
}

fill()
{
	SIZE=$(stat -c %s "$D") || die "stat $D"
	head -c "$SIZE" /dev/urandom >"$MODEL"
	dd if="$MODEL" of="$D" bs=1M oflag=direct conv=notrunc status=none 2>"$T/dd.err" ||
		die "$CASE: filling the disk: $(cat "$T/dd.err")"
	verify "after filling"
}

# degraded_writes CHUNK STRIPE_DATA_BYTES
degraded_writes()
{
	local c=$1 sw=$2
	put 0 4096 direct
	put $((sw * 2)) "$sw" direct
	put $((SIZE / 2)) $((1 << 20)) direct
	put $((c - 500)) 70001
	put $((sw * 5 - 777)) 1554
	put $((SIZE - 3)) 3
	put $((SIZE / 4 + 1)) 300007
}

# check_rebuilt_stats LAYER_PATH: the layer (python path into "target")
# reports degraded 0, all members ok, no sweep, rebuild_pos = member_size.
check_rebuilt_stats()
{
	cat "$MNT/stats" >"$T/st.json" || die "$CASE: stats"
	python3 - "$T/st.json" "$1" <<-'EOF' || die "$CASE: stats after the rebuild: $(cat "$T/st.json")"
		import json, sys
		n = json.load(open(sys.argv[1]))["target"]
		for i in [int(x) for x in sys.argv[2].split(".") if x]:
		    n = n["members"][i]
		errs = []
		if n["degraded"] != 0: errs.append("degraded %r" % n["degraded"])
		if n["sweep_running"]: errs.append("sweep_running")
		st = [m["state"] for m in n["members"]]
		if any(s != "ok" for s in st): errs.append("states %r" % st)
		if n["rebuild_pos"] != n["member_size"]:
		    errs.append("rebuild_pos %r, member_size %r" % (n["rebuild_pos"], n["member_size"]))
		if errs:
		    print("raid layer at '%s': %s" % (sys.argv[2], "; ".join(errs)), file=sys.stderr)
		    sys.exit(1)
	EOF
}

# rebuild ADDR NEWIMG LAYERPATH: replace ADDR by NEWIMG while a writer
# runs, wait for the rebuild, stop the writer.
rebuild()
{
	local addr=$1 new=$2 lpath=$3 wpid n
	rm -f "$T/stop"
	ref churn "$D" "$MODEL" "$T/stop" "$((SEED + RANDOM))" >"$T/churn.out" 2>&1 &
	wpid=$!
	sleep 0.3
	kill -0 "$wpid" 2>/dev/null || { cat "$T/churn.out"; die "$CASE: the writer died before the replace"; }
	ctl "replace $addr $new"
	wait_rebuilt "replace $addr"
	sleep 0.2
	touch "$T/stop"
	wait "$wpid" || { cat "$T/churn.out"; die "$CASE: the writer failed during the rebuild"; }
	n=$(cat "$T/churn.out")
	log "$CASE: $n writes by the writer around the rebuild"
	[ -e "$new" ] || die "$CASE: replace did not create $new"
	check_rebuilt_stats "$lpath"
	verify "after the rebuild of $addr"
}

# cycles LAYER_PATH ROUNDS ADDR...: two writers (disjoint halves) run
# while each ADDR in turn is failed and replaced by a new image (named
# after the round), waiting for each rebuild.  NEWIMGS gets the names.
cycles()
{
	local lpath=$1 rounds=$2 r a w1 w2 i
	shift 2
	rm -f "$T/stop"
	ref churn "$D" "$MODEL" "$T/stop" "$((SEED + 11))" 0 $((SIZE / 2)) >"$T/churn1.out" 2>&1 &
	w1=$!
	ref churn "$D" "$MODEL" "$T/stop" "$((SEED + 12))" $((SIZE / 2)) "$SIZE" >"$T/churn2.out" 2>&1 &
	w2=$!
	sleep 0.3
	NEWIMGS=()
	for r in $(seq "$rounds"); do
		for a in "$@"; do
			ctl "fail $a"
			sleep 0.05
			replace_retry "$a" "$T/$CASE/r$r-$a.img"
			NEWIMGS+=("r$r-$a.img")
			wait_rebuilt "round $r, member $a"
		done
	done
	touch "$T/stop"
	wait "$w1" || { cat "$T/churn1.out"; die "$CASE: writer 1 failed"; }
	wait "$w2" || { cat "$T/churn2.out"; die "$CASE: writer 2 failed"; }
	log "$CASE: $(cat "$T/churn1.out") + $(cat "$T/churn2.out") writes during $rounds round(s) of rebuilds"
	check_rebuilt_stats "$lpath"
	verify "after the rebuild cycles"
}

final_check()
{
	(cd "$T/$CASE" && ref mdcheck "$@") || die "$CASE: member images after unmount"
}

# ---- raid1 ---------------------------------------------------------------
newcase raid1 'raid1(a.img, b.img)'
make_image a.img 16M; make_image b.img 16M
start_rawvec 'raid1(a.img, b.img)'
fill
ctl 'fail 0'
degraded_writes $((64 * K)) $((64 * K))
verify "degraded"
rebuild 0 "$T/raid1/n.img" ""
stop_rawvec
[ "$(stat -c %s n.img)" = $((16 * M)) ] || die "$CASE: n.img is $(stat -c %s n.img) bytes"
final_check raid1 0 "$MODEL" n.img b.img

# ---- raid5, 4 members ------------------------------------------------------
newcase raid5 'raid5(a.img, b.img, c.img, d.img, chunk=16k)'
for m in a b c d; do make_image $m.img 8M; done
start_rawvec 'raid5(a.img, b.img, c.img, d.img, chunk=16k)'
fill
ctl 'fail 1'
degraded_writes $((16 * K)) $((48 * K))
verify "degraded"
rebuild 1 "$T/raid5/n.img" ""
stop_rawvec
final_check raid5 $((16 * K)) "$MODEL" a.img n.img c.img d.img

# ---- raid6, two failures, replaced one after the other -----------------------
newcase raid6-2 'raid6(a.img, b.img, c.img, d.img, e.img, chunk=32k)'
for m in a b c d e; do make_image $m.img 8M; done
start_rawvec 'raid6(a.img, b.img, c.img, d.img, e.img, chunk=32k)'
fill
ctl 'fail 0'
ctl 'fail 2'
degraded_writes $((32 * K)) $((96 * K))
verify "two failed"
# The first rebuild runs with the other member still failed.
rm -f "$T/stop"
ref churn "$D" "$MODEL" "$T/stop" "$((SEED + 7))" >"$T/churn.out" 2>&1 &
wpid=$!
sleep 0.3
ctl "replace 2 $T/raid6-2/n2.img"
wait_rebuilt "replace 2 (member 0 still failed)"
touch "$T/stop"
wait "$wpid" || { cat "$T/churn.out"; die "$CASE: the writer failed"; }
[ "$(stat_field target.degraded)" = 1 ] || die "$CASE: degraded after the first rebuild is not 1"
verify "after the first rebuild"
rebuild 0 "$T/raid6-2/n0.img" ""
stop_rawvec
final_check raid6 $((32 * K)) "$MODEL" n0.img b.img n2.img d.img e.img

# ---- raid10: raid0 over raid1 pairs, nested address ---------------------------
EXPR='raid0(raid1(a.img, b.img), raid1(c.img, d.img), chunk=64k)'
newcase raid10 "$EXPR"
for m in a b c d; do make_image $m.img 8M; done
start_rawvec "$EXPR"
fill
ctl 'fail 1.0'
cat "$MNT/stats" >"$T/st.json"
python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["target"]["members"][1]; assert [m["state"] for m in n["members"]]==["failed","ok"] and n["degraded"]==1, n' "$T/st.json" ||
	die "$CASE: stats after fail 1.0: $(cat "$T/st.json")"
degraded_writes $((64 * K)) $((128 * K))
verify "degraded"
rebuild 1.0 "$T/raid10/n.img" "1"
stop_rawvec
final_check raid10 $((64 * K)) "$MODEL" a.img b.img n.img d.img

# ---- cycles: every member failed and rebuilt in turn under two writers -------
newcase raid1-cycles 'raid1(a.img, b.img)'
make_image a.img 8M; make_image b.img 8M
start_rawvec 'raid1(a.img, b.img)'
fill
cycles "" 2 0 1
stop_rawvec
final_check raid1 0 "$MODEL" r2-0.img r2-1.img

newcase raid5-cycles 'raid5(a.img, b.img, c.img, d.img, chunk=16k)'
for m in a b c d; do make_image $m.img 8M; done
start_rawvec 'raid5(a.img, b.img, c.img, d.img, chunk=16k)'
fill
cycles "" 1 0 1 2 3
stop_rawvec
final_check raid5 $((16 * K)) "$MODEL" r1-0.img r1-1.img r1-2.img r1-3.img

# ---- reads while the rebuild runs -----------------------------------------------
# readers_rebuild ADDR NEWIMG: fail ADDR, start four readers (each reads the
# whole disk three times with O_DIRECT, 1M requests, and compares it with
# the model), replace ADDR while they run, wait for readers and rebuild.
readers_rebuild()
{
	local addr=$1 new=$2 k pids=() bad=0
	ctl "fail $addr"
	for k in 1 2 3 4; do
		(
			for j in 1 2 3; do
				dd if="$D" iflag=direct bs=1M status=none | cmp - "$MODEL" ||
					exit 1
			done
		) >"$T/reader.$k" 2>&1 &
		pids+=($!)
	done
	sleep 0.05
	ctl "replace $addr $new"
	for k in "${!pids[@]}"; do
		wait "${pids[k]}" || {
			bad=$((bad + 1))
			log "$CASE: reader $((k + 1)): $(head -1 "$T/reader.$((k + 1))")"
		}
	done
	wait_rebuilt "replace $addr under readers"
	[ $bad = 0 ] || die "$CASE: $bad of 4 readers read data that differs from the model while member $addr was rebuilt (first differences above)"
	verify "after the rebuild under readers"
}

newcase raid5-reads 'raid5(a.img, b.img, c.img, d.img, chunk=4k)'
for m in a b c d; do make_image $m.img 8M; done
start_rawvec 'raid5(a.img, b.img, c.img, d.img, chunk=4k)'
fill
readers_rebuild 1 "$T/raid5-reads/n.img"
stop_rawvec
final_check raid5 4096 "$MODEL" a.img n.img c.img d.img

newcase raid6-reads 'raid6(a.img, b.img, c.img, d.img, e.img, chunk=4k)'
for m in a b c d e; do make_image $m.img 8M; done
start_rawvec 'raid6(a.img, b.img, c.img, d.img, e.img, chunk=4k)'
fill
ctl 'fail 4'
readers_rebuild 2 "$T/raid6-reads/n.img"
stop_rawvec
final_check raid6 4096 "$MODEL" a.img b.img n.img d.img e.img --skip 4

newcase raid1-reads 'raid1(a.img, b.img)'
make_image a.img 16M; make_image b.img 16M
start_rawvec 'raid1(a.img, b.img)'
fill
readers_rebuild 0 "$T/raid1-reads/n.img"
stop_rawvec
final_check raid1 0 "$MODEL" n.img b.img

log "pass (${SECONDS}s)"
