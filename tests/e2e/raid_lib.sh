#!/bin/bash
# raid_lib: helpers the RAID e2e tests share, sourced after lib.sh.  The
# caller sets REF (raid_ref.py), POOL/POOL_SIZE/POFF (random bytes to
# write from), D (the disk), MODEL (its expected contents) and CASE.

ref() { python3 "$REF" "$@"; }

# put OFF LEN [direct]: write LEN pool bytes at OFF of the disk (one dd
# write, O_DIRECT when asked) and of the model.
put()
{
	local off=$1 len=$2 fl=
	[ "${3:-}" = direct ] && fl=,direct
	[ $((POFF + len)) -le $POOL_SIZE ] || POFF=0
	dd if="$POOL" iflag=skip_bytes,count_bytes skip=$POFF count=$len bs=$len \
		of="$D" oflag=seek_bytes$fl seek=$off conv=notrunc status=none 2>"$T/dd.err" ||
		die "$CASE: write of $len bytes at $off${fl:+ (O_DIRECT)}: $(cat "$T/dd.err")"
	dd if="$POOL" iflag=skip_bytes,count_bytes skip=$POFF count=$len bs=$len \
		of="$MODEL" oflag=seek_bytes seek=$off conv=notrunc status=none ||
		die "model write"
	POFF=$(((POFF + len + 4099) % (POOL_SIZE / 2)))
}

# fill_model: random bytes over the whole disk, the same into $MODEL.
fill_model()
{
	local size
	size=$(stat -c %s "$D") || die "stat $D"
	head -c "$size" /dev/urandom >"$MODEL"
	dd if="$MODEL" of="$D" bs=1M oflag=direct conv=notrunc status=none 2>"$T/dd.err" ||
		die "$CASE: filling the disk: $(cat "$T/dd.err")"
}

# newcase NAME [WHAT]: a fresh directory $T/NAME to work in, no model yet.
newcase()
{
	CASE=$1
	mkdir "$T/$CASE" && cd "$T/$CASE" || die "mkdir $T/$CASE"
	rm -f "$MODEL"
	log "--- $CASE${2:+: $2}"
}

# scrub CMD: run check or repair and wait (30 s) until no layer sweeps;
# prints the sum of mismatch_sectors over the redundant layers.
scrub()
{
	local i out
	ctl "$1"
	for i in $(seq 300); do
		cat "$MNT/stats" >"$T/st.json" || die "$CASE: stats"
		out=$(python3 - "$T/st.json" <<-'EOF'
			import json, sys
			busy, mism = False, 0
			def walk(n):
			    global busy, mism
			    busy |= bool(n.get("sweep_running"))
			    mism += n.get("mismatch_sectors", 0)
			    for m in n.get("members", []):
			        walk(m)
			walk(json.load(open(sys.argv[1]))["target"])
			print("busy" if busy else mism)
		EOF
		)
		[ "$out" != busy ] && { echo "$out"; return 0; }
		sleep 0.1
	done
	die "$CASE: $1 still running after 30 s: $(cat "$T/st.json")"
}

# sweep_state: "busy" while any node is rebuilding or sweeping, else
# "idle"; and the sum of degraded over raid layers.
sweep_state()
{
	cat "$MNT/stats" >"$T/st.json" 2>/dev/null || { echo "nostats"; return; }
	python3 - "$T/st.json" <<-'EOF'
		import json, sys
		busy, deg = False, 0
		def walk(n):
		    global busy, deg
		    if n.get("state") == "rebuilding" or n.get("sweep_running"):
		        busy = True
		    deg += n.get("degraded", 0)
		    for m in n.get("members", []):
		        walk(m)
		walk(json.load(open(sys.argv[1]))["target"])
		print("busy" if busy else "idle", deg)
	EOF
}

# wait_rebuilt WHAT: poll until idle (40 s); counts the busy samples.
wait_rebuilt()
{
	local i st busy=0
	for i in $(seq 400); do
		st=$(sweep_state)
		case $st in
		busy*) busy=$((busy + 1)) ;;
		idle*) break ;;
		*) die "$CASE: $1: cannot read stats" ;;
		esac
		kill -0 "$RAWVEC_PID" 2>/dev/null || die "$CASE: $1: rawvec died"
		sleep 0.1
	done
	case $st in
	idle*) ;;
	*) die "$CASE: $1: still rebuilding after 40 s: $(cat "$T/st.json")" ;;
	esac
	log "$CASE: $1: rebuild done ($busy busy samples at 0.1 s)"
}
