#!/bin/bash
# variants: uring/2 dev/1
# md v1.2 superblocks: arrays remember their state across restarts.
#   - mdadm --examine of every member of raid0/1/5/6/linear created by
#     --create agrees with stats: level, devices, layout, chunk, UUID,
#     role, state, events, data offset; raid1/5/6 data lies at the data
#     offset in md's layout (raid_ref.py mdcheck --offset); after a restart a
#     single write marks the array active and 200 ms later clean again;
#   - a failed member stays failed after a restart (superblocks and
#     stats say so, no stale byte is read), a replaced one is in its role
#     after the next; raid0 has no failed state on disk; a rebuild cut
#     short by kill -9 starts again;
#   - members in the wrong order, of another array, under another level,
#     or two stale members of raid5: exit 2 naming the member, nothing
#     written; md(...) assembles from any order;
#   - kill -9 during writes leaves the array active; -o ro writes
#     nothing then; the next read-write start resyncs (a parity chunk spoiled beforehand is repaired), the array
#     is clean after, check finds 0 mismatches and what was acknowledged
#     before the kill reads back;
#   - headerless images stay headerless (nothing written at 4 KiB) with
#     one log line, and nested arrays keep a superblock per level.
. "$(dirname "$0")/lib.sh"
requires_transport
requires mdadm python3

REF=$E2E_DIR/raid_ref.py
. "$(dirname "$0")/raid_lib.sh"
D=$MNT/disk
MODEL=$T/model
M=$((1024 * 1024))
OFF=$M

# sb FIELD: target.super.FIELD from stats.
sb() { stat_value "target.super.$1"; }

# examine IMG FIELD: mdadm --examine's value for FIELD ("Raid Level").
examine()
{
	mdadm --examine "$1" >"$T/ex.out" 2>&1 || die "$CASE: mdadm --examine $1: $(cat "$T/ex.out")"
	sed -n "s/^ *$2 : //p" "$T/ex.out" | head -1
}

# crash: kill -9 rawvec and clear the dead mount it leaves; its writers
# then fail with ENOTCONN and end.
crash()
{
	kill -9 "$RAWVEC_PID"
	wait "$RAWVEC_PID" 2>/dev/null
	RAWVEC_PID=
	fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"
}

# wait_clean: the array marks itself clean 200 ms after its last write.
wait_clean()
{
	local i
	for i in $(seq 50); do
		[ "$(sb state)" = clean ] && return 0
		sleep 0.1
	done
	die "$CASE: array still active 5 s after the last write"
}

# wait_sweeps: until no layer rebuilds or resyncs (30 s).
wait_sweeps()
{
	local i
	for i in $(seq 300); do
		[ "$(stat_value target.sweep_running)" = false ] &&
			[ "$(sb resync)" = none ] && return 0
		sleep 0.1
	done
	die "$CASE: sweep still running after 30 s: $(cat "$MNT/stats")"
}

# same_as_model WHAT: the disk reads back as $MODEL.
same_as_model() { same_bytes "$D" "$MODEL" "$CASE: $1"; }

# refused WHAT PATTERN EXPR: starting EXPR exits 2, logs PATTERN, and
# leaves every image in the current directory as it was.
refused()
{
	local before after rc
	before=$(md5sum ./*.img)
	"$RAWVEC" -f "$(transport_opt)" "$MNT" "$3" >"$T/refused.log" 2>&1
	rc=$?
	[ $rc = 2 ] || die "$CASE: $1: exit $rc, want 2: $(cat "$T/refused.log")"
	grep -Eq "$2" "$T/refused.log" || die "$CASE: $1: message lacks /$2/: $(cat "$T/refused.log")"
	after=$(md5sum ./*.img)
	[ "$before" = "$after" ] || die "$CASE: $1: images changed"
	log "refused ($1): $(head -1 "$T/refused.log")"
}

# ---- mdadm agrees, for every level ------------------------------------
for spec in "raid0 64k 2" "raid1 0 2" "raid5 64k 4" "raid6 32k 5" "linear 0 3"; do
	set -- $spec
	level=$1 chunk=$2 n=$3
	newcase "examine-$level"
	imgs=() expr=
	for i in $(seq 0 $((n - 1))); do
		imgs+=("m$i.img")
		expr="$expr${expr:+, }m$i.img"
	done
	[ "$chunk" = 0 ] && e="$level($expr)" || e="$level($expr, chunk=$chunk)"
	start_rawvec --create 16m "$e"
	grep -q "new array with md v1.2 superblocks" "$RAWVEC_LOG" || die "$CASE: no creation logged"
	fill_model
	wait_clean
	uuid=$(sb uuid) events=$(sb events) doff=$(sb data_offset)
	[ "$doff" = $OFF ] || die "$CASE: data_offset $doff"
	for i in $(seq 0 $((n - 1))); do
		img=m$i.img
		[ "$(examine $img Version)" = 1.2 ] || die "$CASE: $img: version"
		[ "$(examine $img 'Raid Level')" = "$level" ] || die "$CASE: $img: level $(examine $img 'Raid Level')"
		[ "$(examine $img 'Raid Devices')" = "$n" ] || die "$CASE: $img: devices"
		[ "$(examine $img 'Array UUID')" = "$uuid" ] || die "$CASE: $img: UUID $(examine $img 'Array UUID'), stats $uuid"
		[ "$(examine $img 'Device Role')" = "Active device $i" ] || die "$CASE: $img: role $(examine $img 'Device Role')"
		[ "$(examine $img State)" = clean ] || die "$CASE: $img: state $(examine $img State)"
		[ "$(examine $img Events)" = "$events" ] || die "$CASE: $img: events $(examine $img Events), stats $events"
		[ "$(examine $img 'Data Offset')" = "$((doff / 512)) sectors" ] || die "$CASE: $img: data offset"
		[ "$(examine $img 'Device UUID')" = "$(stat_value target.super.devices.$i.uuid)" ] || die "$CASE: $img: device UUID"
		examine $img Checksum | grep -q correct || die "$CASE: $img: checksum $(examine $img Checksum)"
		case $level in
		raid5 | raid6)
			[ "$(examine $img Layout)" = left-symmetric ] || die "$CASE: $img: layout"
			[ "$(examine $img 'Chunk Size')" = "${chunk%k}K" ] || die "$CASE: $img: chunk" ;;
		raid0)
			[ "$(examine $img 'Chunk Size')" = "${chunk%k}K" ] || die "$CASE: $img: chunk" ;;
		esac
	done
	stop_rawvec
	case $level in
	raid1 | raid5 | raid6)
		ref mdcheck "$level" $(( ${chunk%k} * 1024 )) "$MODEL" "${imgs[@]}" --offset $OFF >/dev/null ||
			die "$CASE: members differ from md's layout at the data offset" ;;
	esac
	# Restarted: the same array; one write, and it is clean again.
	start_rawvec "$e"
	[ "$(sb uuid)" = "$uuid" ] || die "$CASE: restart: another UUID"
	dd if="$MODEL" of="$D" bs=4k count=1 oflag=direct conv=notrunc status=none || die "$CASE: one write"
	wait_clean
	same_as_model "after a restart"
	stop_rawvec
	log "$level: mdadm --examine agrees; data at $doff in md's layout"
done

# ---- a failed member stays failed; replace persists --------------------
newcase failed "fail 1, restart, replace, restart"
E='raid5(a.img, b.img, c.img, d.img, chunk=64k)'
start_rawvec --create 16m "$E"
fill_model
ctl "fail 1"
head -c $((3 * M)) /dev/urandom >"$T/more"
dd if="$T/more" of="$D" bs=1M seek=2 oflag=direct conv=notrunc status=none || die "degraded write"
dd if="$T/more" of="$MODEL" bs=1M seek=2 conv=notrunc status=none
stop_rawvec
[ "$(examine a.img 'Array State')" = "A.AA ('A' == active, '.' == missing, 'R' == replacing)" ] ||
	die "$CASE: a.img: array state $(examine a.img 'Array State')"
ev_a=$(examine a.img Events) ev_b=$(examine b.img Events)
[ "$ev_b" -lt "$ev_a" ] || die "$CASE: failed member's events $ev_b not behind $ev_a"
start_rawvec "$E"
[ "$(stat_value target.members.1.state)" = failed ] || die "$CASE: member 1 is $(stat_value target.members.1.state) after restart"
[ "$(stat_value target.degraded)" = 1 ] || die "$CASE: degraded $(stat_value target.degraded)"
grep -q "b.img (member 1): marked faulty" "$RAWVEC_LOG" || die "$CASE: no log line for member 1"
same_as_model "degraded after restart: a stale byte was read"
ctl "replace 1 e.img"
wait_sweeps
[ "$(stat_value target.members.1.state)" = ok ] || die "$CASE: rebuild did not finish"
stop_rawvec
[ "$(examine e.img 'Device Role')" = "Active device 1" ] || die "$CASE: e.img: $(examine e.img 'Device Role')"
start_rawvec 'raid5(a.img, e.img, c.img, d.img)'
[ "$(stat_value target.degraded)" = 0 ] || die "$CASE: degraded after replace and restart"
[ "$(stat_value target.chunk)" = 65536 ] || die "$CASE: chunk not taken from the superblocks"
same_as_model "after replace and restart"
stop_rawvec
log "failed member remembered, replacement in its role"

# raid0 has no failed state on disk (md cannot fail its members): a member
# failed by hand only returned errors, and serves again after a restart.
newcase raid0-fail "fail, restart"
start_rawvec --create 16m 'raid0(a.img, b.img, chunk=64k)'
fill_model
ctl "fail 1"
stop_rawvec
start_rawvec 'raid0(a.img, b.img, chunk=64k)'
[ "$(stat_value target.members.1.state)" = ok ] || die "$CASE: member 1 is $(stat_value target.members.1.state) after a restart"
same_as_model "raid0 after fail and restart"
stop_rawvec
log "raid0: a failed member serves again after a restart"

# Superblock I/O is the array's, not the user's: no member counts it, also
# one below a one-member layer such as sim().
newcase meta-uncounted "superblock I/O under sim()"
start_rawvec --create 16m 'raid1(a.img, sim(b.img, lat=1ms))'
[ "$(sb updates)" -ge 1 ] || die "$CASE: no superblock update at creation"
for f in writes flushes; do
	for m in 0 1 1.0; do
		v=$(stat_value "target.members.${m//./.members.}.$f")
		[ "$v" = 0 ] || die "$CASE: member $m counts $v $f of superblock I/O"
	done
done
stop_rawvec
log "superblock writes and flushes are counted on no member"

# ---- a rebuild cut short by kill -9 starts again -----------------------
newcase rebuild "kill -9 during a rebuild"
start_rawvec --create 16m 'raid1(a.img, b.img)'
fill_model
ctl "fail 1"
ctl "replace 1 sim(e.img,bw=4m)"
sleep 1
[ "$(stat_value target.members.1.state)" = rebuilding ] || die "$CASE: member 1 is $(stat_value target.members.1.state)"
crash
examine e.img 'Recovery Offset' | grep -q sectors || die "$CASE: e.img records no rebuild in progress: $(cat "$T/ex.out")"
start_rawvec 'raid1(a.img, e.img)'
grep -q "e.img (member 1): its rebuild was not finished" "$RAWVEC_LOG" || die "$CASE: no restart of the rebuild logged"
wait_sweeps
[ "$(stat_value target.members.1.state)" = ok ] || die "$CASE: member 1 is $(stat_value target.members.1.state) after the rebuild"
same_as_model "after the restarted rebuild"
stop_rawvec
[ "$(examine e.img 'Device Role')" = "Active device 1" ] || die "$CASE: e.img: $(examine e.img 'Device Role')"
examine e.img 'Recovery Offset' | grep -q . && die "$CASE: e.img still records a rebuild"
cmp <(tail -c +$((OFF + 1)) a.img) <(tail -c +$((OFF + 1)) e.img) || die "$CASE: mirrors differ"
log "an interrupted rebuild starts again and completes"

# ---- a write a member failed is acknowledged only once that is on disk --
newcase ackfail "member failure, write, kill -9"
start_rawvec --create 16m 'raid1(faulty(a.img), sim(b.img, lat=300ms))'
# A writer elsewhere keeps the array active: no clean/active updates.
fio --name=bg --filename="$D" --rw=randwrite --bs=4k --iodepth=1 --ioengine=psync \
	--direct=1 --offset=8m --size=1m --time_based --runtime=30 >/dev/null 2>&1 &
BG=$!
track_pid $BG
sleep 1.5
[ "$(sb state)" = active ] || die "$CASE: not active under the writer"
u0=$(sb updates)
ctl "fault 0 write_eio=1"
head -c 4096 /dev/urandom >"$T/blk"
# The write fails on member 0 and goes on degraded on member 1 (300 ms);
# the update saying member 0 failed takes longer (superblock and flush,
# 300 ms each): the write may be acknowledged only after it.
dd if="$T/blk" of="$D" bs=4k oflag=direct conv=notrunc status=none || die "$CASE: write"
u1=$(sb updates)
[ "$u1" -gt "$u0" ] || die "$CASE: the write was acknowledged before the superblocks recorded member 0's failure"
crash
wait $BG 2>/dev/null
start_rawvec 'raid1(a.img, b.img)'
[ "$(stat_value target.members.0.state)" = failed ] ||
	die "$CASE: member 0 is $(stat_value target.members.0.state): it missed an acknowledged write"
for i in 1 2; do
	cmp -n 4096 "$D" "$T/blk" || die "$CASE: read $i of the acknowledged block differs"
done
stop_rawvec
log "an acknowledged write's member failure survives kill -9"

# ---- refusals ----------------------------------------------------------
newcase refuse "wrong order, other arrays, wrong level, too many stale"
E='raid5(a.img, b.img, c.img, d.img, chunk=16k)'
start_rawvec --create 16m "$E"
stop_rawvec
mkdir other && cd other || die "mkdir other"
start_rawvec --create 16m "$E"
stop_rawvec
cd .. && cp other/c.img x.img || die "copy x.img"
make_image n0.img 8M
make_image n1.img 8M
refused "wrong order" "b.img is device 1 of array .*given as member 0" 'raid5(b.img, a.img, c.img, d.img)'
refused "another array's member" "different arrays" 'raid5(a.img, b.img, x.img, d.img)'
refused "another level" "says raid5.*the expression raid6" 'raid6(a.img, b.img, c.img, d.img)'
refused "another chunk" "chunk=16k, the expression 64k" 'raid5(a.img, b.img, c.img, d.img, chunk=64k)'
refused "md() of headerless images" "none carries one" 'md(n0.img, n1.img)'
cp c.img c.old && cp d.img d.old || die "copy"
start_rawvec 'md(d.img, b.img, a.img, c.img)'
[ "$(stat_value target.members.0.name)" = a.img ] || die "$CASE: md() order: $(stat_value target.members.0.name)"
dd if=/dev/urandom of="$D" bs=64k count=1 oflag=direct conv=notrunc status=none || die "write"
stop_rawvec
mv c.old c.img && mv d.old d.img || die "restore"
refused "two stale members of raid5" "cannot run.*c.img \(member 2\): events" "$E"
log "refusals name the member; md() assembles any order"

# ---- kill -9: active on disk, resync at the next start -----------------
newcase unclean "kill -9 during writes"
E='raid5(a.img, b.img, c.img, d.img, chunk=64k)'
start_rawvec --create 16m "$E"
fill_model
stop_rawvec
# Spoil the parity of stripe 106 (array bytes 20.8-21M, written by no
# one below), as a crash between a data and its parity write would.
read -r pm poff < <(ref locate raid5 4 65536 106 P)
pimg=$(printf '%s' abcd | cut -c$((pm + 1))).img
head -c 65536 /dev/urandom | dd of="$pimg" bs=64k seek=$(((OFF + poff) / 65536)) conv=notrunc status=none
start_rawvec "$E"
# Acknowledged before the kill: new bytes, so a lost write shows.
head -c $((4 * M)) /dev/urandom | tee "$T/head" | dd of="$D" bs=1M oflag=direct conv=notrunc status=none || die "head write"
dd if="$T/head" of="$MODEL" bs=1M conv=notrunc status=none
fio --name=w --filename="$D" --rw=randwrite --bs=4k --iodepth=16 --ioengine=libaio \
	--direct=1 --offset=8m --size=4m --time_based --runtime=10 >/dev/null 2>&1 &
FIO=$!
track_pid $FIO
sleep 1
[ "$(sb state)" = active ] || die "$CASE: active while writing: $(sb state)"
crash
wait $FIO 2>/dev/null
[ "$(examine a.img State)" = active ] || die "$CASE: after kill -9 the superblock says $(examine a.img State)"
# Read-only, nothing is written: no resync, no superblock update.
sums=$(md5sum ./*.img)
start_rawvec -o ro "$E"
grep -q "read-only: its superblocks stay as they are" "$RAWVEC_LOG" || die "$CASE: -o ro: no log line"
[ "$(sb resync)" = pending ] || die "$CASE: -o ro: resync $(sb resync)"
cmp -n $((4 * M)) "$D" "$MODEL" || die "$CASE: -o ro: acknowledged writes unreadable"
stop_rawvec
[ "$(md5sum ./*.img)" = "$sums" ] || die "$CASE: -o ro wrote to the members"
start_rawvec "$E"
grep -q "shut down uncleanly: resyncing" "$RAWVEC_LOG" || die "$CASE: no resync announced"
wait_sweeps
grep -Eq "resync done: [1-9][0-9]* mismatched sectors repaired" "$RAWVEC_LOG" ||
	die "$CASE: the resync repaired nothing: $(grep resync "$RAWVEC_LOG")"
wait_clean
m=$(scrub check)
[ "$m" = 0 ] || die "$CASE: check after the resync: $m mismatched sectors"
cmp -n $((4 * M)) "$D" "$MODEL" || die "$CASE: acknowledged writes before the kill were lost"
stop_rawvec
[ "$(examine a.img State)" = clean ] || die "$CASE: clean stop: $(examine a.img State)"
log "kill -9: resynced, parity repaired, acknowledged data intact"

# ---- headerless stays headerless; nested arrays ------------------------
newcase headerless "old images, nesting"
for i in 0 1 2 3; do make_image h$i.img 8M random; done
sum=$(md5sum h*.img)
start_rawvec 'raid5(h0.img, h1.img, h2.img, h3.img, chunk=16k)'
[ "$(grep -c 'will not be remembered' "$RAWVEC_LOG")" = 1 ] || die "$CASE: want one log line about headerless members"
cat "$MNT/stats" | grep -q '"super"' && die "$CASE: a headerless array shows superblock stats"
stop_rawvec
[ "$(md5sum h*.img)" = "$sum" ] || die "$CASE: headerless members were written"
start_rawvec --create 16m 'raid0(raid1(a.img, b.img), raid1(c.img, d.img), chunk=64k)'
[ "$(stat_value target.members.0.super.level)" = raid1 ] || die "$CASE: inner array without superblock"
fill_model
stop_rawvec
[ "$(examine a.img 'Raid Level')" = raid1 ] || die "$CASE: a.img: $(examine a.img 'Raid Level')"
start_rawvec 'raid0(raid1(a.img, b.img), raid1(c.img, d.img), chunk=64k)'
[ "$(stat_value target.super.level)" = raid0 ] || die "$CASE: outer array lost"
same_as_model "nested, after a restart"
stop_rawvec
# A nested array as a replacement would be headerless, and the next start
# took the raid1's superblock in its first member for its own (exit 2):
# refused.  An image in its place gets the raid1's superblock.
start_rawvec --create 16m 'raid1(raid1(a2.img, b2.img), raid1(c2.img, d2.img))'
fill_model
ctl 'fail 1'
echo "replace 1 raid1(e.img, f.img)" >"$MNT/control" 2>/dev/null && die "$CASE: a nested raid1 as a replacement was accepted"
grep -qF "raid1(e.img, f.img): a raid1 in a replacement gets no md superblocks of its own" "$RAWVEC_LOG" ||
	die "$CASE: no log line says why the nested replacement was refused"
XX
stop_rawvec
log pass
