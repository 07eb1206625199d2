#!/bin/bash
# Scrub (`check`, `repair`) of raid5 (4 members), raid6 (5 members), raid1
# (2 mirrors) and raid10 (raid0 over raid1 pairs):
#   - fill the disk with random data, unmount; the members equal md's
#     layout of it (raid_ref.py mdcheck);
#   - corrupt bytes of the member images where the reference says parity
#     lives (raid5: P of two stripes, in different pages; raid6: P of one
#     stripe, Q of another, and P and Q in the same page of a third; raid1
#     and raid10: one mirror, two pages);
#   - mount: the data reads back unchanged (raid1: a read may come from the
#     corrupted mirror, so only the poked bytes may differ);
#   - `check`: wait for sweep_running false; mismatch_sectors is 8 per
#     corrupted 4 KiB page (md's mismatch_cnt); check writes nothing;
#   - `repair`: the same count; then `check` again: 0;
#   - the data reads back unchanged throughout, and after unmount every
#     member equals md's layout of the data again.
# A raid1 mirror and a raid5 member with latent sector errors (faulty's
# unreadable=, set after the fill): `check` writes what they could not read
# back from the other mirror or from parity, and they stay in the array, as
# md keeps them; the mirrors then agree, the raid5 members equal md's
# layout.  A plain read that meets the bad sectors does the same (md's
# read-error correction: corrected_sectors), on raid1 and raid5.
. "$(dirname "$0")/lib.sh"
requires_transport
has_python || skip "requires python3"

REF=$E2E_DIR/raid_ref.py
. "$(dirname "$0")/raid_lib.sh"
D=$MNT/disk
MODEL=$T/model
CASE=
K=1024
M=$((1024 * 1024))

verify()
{
	local out
	dd if="$D" iflag=direct bs=1M status=none >"$T/disk.now" 2>"$T/dd.err" ||
		die "$CASE: $1: reading the disk failed: $(cat "$T/dd.err")"
	out=$(cmp "$T/disk.now" "$MODEL" 2>&1) || die "$CASE: $1: disk differs from the model: $out"
}

# verify_allowing WHAT OFF...: like verify, but the bytes at the logical
# offsets OFF may differ (a raid1 read served by the corrupted mirror).
verify_allowing()
{
	local what=$1 got
	shift
	dd if="$D" iflag=direct bs=1M status=none >"$T/disk.now" 2>"$T/dd.err" ||
		die "$CASE: $what: reading the disk failed: $(cat "$T/dd.err")"
	# cmp -l: 1-based offsets of differing bytes.
	got=$(cmp -l "$T/disk.now" "$MODEL" 2>/dev/null | awk '{print $1 - 1}' | tr '\n' ' ')
	for o in $got; do
		case " $* " in
		*" $o "*) ;;
		*) die "$CASE: $what: byte $o differs from the model (allowed: $*)" ;;
		esac
	done
}

# poke FILE OFF: flip the bits of one byte of a member image.
poke()
{
	python3 - "$1" "$2" <<-'EOF' || die "poke $1 $2"
		import sys
		with open(sys.argv[1], "r+b") as f:
		    f.seek(int(sys.argv[2]))
		    b = f.read(1)
		    f.seek(int(sys.argv[2]))
		    f.write(bytes([b[0] ^ 0xA5]))
	EOF
	log "$CASE: flipped byte $2 of $1"
}

# locate LEVEL N CHUNK STRIPE ROLE -> sets LM (member index), LO (offset)
locate()
{
	local out
	out=$(ref locate "$@") || die "locate $*"
	LM=${out% *}
	LO=${out#* }
}

sums() { (cd "$T/$CASE" && sha256sum "$@"); }

# scrub_case LEVEL CHUNK EXPECTED_SECTORS ALLOWED_OFFSETS EXPR MEMBERS...
# with POKES="member:offset ..." set by the caller.
scrub_case()
{
	local level=$1 chunk=$2 want=$3 allowed=$4 expr=$5 got p
	shift 5
	start_rawvec "$expr"
	SIZE=$(stat -c %s "$D") || die "stat"
	head -c "$SIZE" /dev/urandom >"$MODEL"
	dd if="$MODEL" of="$D" bs=1M oflag=direct conv=notrunc status=none || die "$CASE: fill"
	got=$(scrub check) || exit 1
	[ "$got" = 0 ] || die "$CASE: check right after filling counts $got mismatched sectors"
	stop_rawvec
	(cd "$T/$CASE" && ref mdcheck "$level" "$chunk" "$MODEL" "$@") ||
		die "$CASE: members after filling"

	for p in $POKES; do
		poke "$T/$CASE/${p%%:*}" "${p#*:}"
	done
	sums "$@" >"$T/sums.poked"

	start_rawvec "$expr"
	if [ -n "$allowed" ]; then
		verify_allowing "after the pokes" $allowed
	else
		verify "after the pokes (parity only was corrupted)"
	fi
	got=$(scrub check) || exit 1
	log "$CASE: check: $got mismatched sectors (want $want)"
	[ "$got" = "$want" ] || die "$CASE: check counts $got mismatched sectors, want $want (8 per corrupted 4k page)"
	(cd "$T/$CASE" && sha256sum --quiet -c "$T/sums.poked") ||
		die "$CASE: check changed member images"
	if [ -n "$allowed" ]; then
		verify_allowing "after check" $allowed
	else
		verify "after check"
	fi
	got=$(scrub repair) || exit 1
	log "$CASE: repair: $got mismatched sectors"
	[ "$got" = "$want" ] || die "$CASE: repair counts $got mismatched sectors, want $want"
	verify "after repair"
	got=$(scrub check) || exit 1
	[ "$got" = 0 ] || die "$CASE: check after repair counts $got mismatched sectors, want 0"
	verify "after repair and check"
	stop_rawvec
	(cd "$T/$CASE" && ref mdcheck "$level" "$chunk" "$MODEL" "$@") ||
		die "$CASE: members after repair"
}

# ---- raid5: P of stripes 3 and 10 (first and last page of the chunk) -----
newcase raid5
for m in a b c d; do make_image $m.img 8M; done
mem=(a.img b.img c.img d.img)
locate raid5 4 $((64 * K)) 3 P;  POKES="${mem[LM]}:$((LO + 1000))"
locate raid5 4 $((64 * K)) 10 P; POKES+=" ${mem[LM]}:$((LO + 64 * K - 1))"
scrub_case raid5 $((64 * K)) 16 "" 'raid5(a.img, b.img, c.img, d.img, chunk=64k)' "${mem[@]}"

# ---- raid6: P of stripe 2, Q of stripe 9, P and Q in one page of stripe 4 ----
newcase raid6
for m in a b c d e; do make_image $m.img 8M; done
mem=(a.img b.img c.img d.img e.img)
locate raid6 5 $((32 * K)) 2 P; POKES="${mem[LM]}:$((LO + 5000))"
locate raid6 5 $((32 * K)) 9 Q; POKES+=" ${mem[LM]}:$((LO + 100))"
locate raid6 5 $((32 * K)) 4 P; POKES+=" ${mem[LM]}:$((LO + 20000))"
locate raid6 5 $((32 * K)) 4 Q; POKES+=" ${mem[LM]}:$((LO + 20001))"
scrub_case raid6 $((32 * K)) 24 "" 'raid6(a.img, b.img, c.img, d.img, e.img, chunk=32k)' "${mem[@]}"

# ---- raid1: mirror 1, two pages ----------------------------------------------
newcase raid1
make_image a.img 8M; make_image b.img 8M
POKES="b.img:$((3 * M + 17)) b.img:$((5 * M + 4095))"
scrub_case raid1 0 16 "$((3 * M + 17)) $((5 * M + 4095))" 'raid1(a.img, b.img)' a.img b.img

# ---- raid10: the second mirror of the second pair --------------------------------
# Pair 1 holds array chunks 1, 3, 5, ...: member byte X of d.img is array
# byte (X / chunk * 2 + 1) * chunk + X % chunk.
newcase raid10
for m in a b c d; do make_image $m.img 4M; done
POKES="d.img:$((64 * K + 3)) d.img:$((1 * M + 8192))"
scrub_case raid10 $((64 * K)) 16 "$((3 * 64 * K + 3)) $((33 * 64 * K + 8192))" \
	'raid0(raid1(a.img, b.img), raid1(c.img, d.img), chunk=64k)' a.img b.img c.img d.img

# unreadable_case EXPR MEMBER REWRITTEN LOGLINE: start EXPR, fill it, make
# 8k of MEMBER (a faulty()) unreadable, check; REWRITTEN sectors written
# back and LOGLINE in the log, the member still ok, the data unchanged.
unreadable_case()
{
	local expr=$1 m=$2 want=$3 line=$4 f v got
	start_rawvec "$expr"
	fill_model
	ctl "fault $m unreadable=$((3 * M))..$((3 * M + 8 * K))"
	[ "$(stat_value target.members.$m.unreadable_sectors)" = 16 ] ||
		die "$CASE: unreadable_sectors after fault: $(cat "$T/stats.json")"
	got=$(scrub check) || exit 1
	[ "$got" = 0 ] || die "$CASE: check counts $got mismatched sectors, want 0"
	for f in members.$m.state:ok members.$m.unreadable_sectors:0 degraded:0 \
		rewritten_sectors:$want; do
		v=$(stat_value "target.${f%:*}") || exit 1
		[ "$v" = "${f##*:}" ] || die "$CASE: ${f%:*} is $v after the check, want ${f##*:}"
	done
	grep -q "$line" "$RAWVEC_LOG" || die "$CASE: no '$line' in the log: $(tail -5 "$RAWVEC_LOG")"
	grep -q "scrub done: 0 mismatched sectors; $want sectors rewritten that a member could not read" \
		"$RAWVEC_LOG" || die "$CASE: no scrub summary in the log: $(tail -5 "$RAWVEC_LOG")"
	verify "after the check"
	stop_rawvec
}

# ---- raid1: 8k of mirror 1 unreadable until rewritten ---------------------
newcase raid1-unreadable
make_image a.img 8M; make_image b.img 8M
unreadable_case 'raid1(a.img, faulty(b.img))' 1 $((M / 512)) \
	"raid1 member 1 could not read member bytes $((3 * M))..$((4 * M)): rewritten from member 0"
cmp a.img b.img || die "$CASE: the mirrors differ after the check"

# ---- raid5: 8k of member 3, one 64k column rebuilt from the others -----------
newcase raid5-unreadable
for m in a b c d; do make_image $m.img 8M; done
unreadable_case 'raid5(a.img, b.img, c.img, faulty(d.img), chunk=64k)' 3 $((64 * K / 512)) \
	"raid5 member 3 could not read member bytes $((3 * M))..$((3 * M + 64 * K)): rewritten from the others"
ref mdcheck raid5 $((64 * K)) "$MODEL" a.img b.img c.img d.img ||
	die "$CASE: members after the check"

# ---- raid1: the same 8k met by a read of the disk -----------------------------
# Reads alternate between the mirrors, on each loop: of 8 reads of the bad
# 8k, one loop makes two at least, and one of those meets mirror 1.
newcase raid1-read-unreadable
make_image a.img 8M; make_image b.img 8M
start_rawvec 'raid1(a.img, faulty(b.img))'
fill_model
ctl "fault 1 unreadable=$((3 * M))..$((3 * M + 8 * K))"
for i in 1 2 3 4 5 6 7 8; do
	dd if="$D" of=/dev/null bs=8k count=1 skip=$((3 * M / 8192)) iflag=direct status=none ||
		die "$CASE: read $i of the bad 8k failed"
done
verify "reading over the bad sectors"
for i in $(seq 50); do
	[ "$(stat_value target.corrected_sectors)" != 0 ] && break
	sleep 0.1
done
v=$(stat_value target.corrected_sectors) || exit 1
[ "$v" -ge 16 ] || die "$CASE: corrected_sectors is $v after the reads, want a read's range"
log "$CASE: $(grep 'could not read' "$RAWVEC_LOG")"
for f in members.1.state:ok members.1.unreadable_sectors:0 degraded:0; do
	v=$(stat_value "target.${f%:*}") || exit 1
	[ "$v" = "${f##*:}" ] || die "$CASE: ${f%:*} is $v after the reads, want ${f##*:}"
done
grep -q "raid1 member 1 could not read member bytes .*: rewritten from member 0" "$RAWVEC_LOG" ||
	die "$CASE: no rewrite in the log: $(tail -5 "$RAWVEC_LOG")"
stop_rawvec
cmp a.img b.img || die "$CASE: the mirrors differ after the reads"

# ---- raid5: 8k of a data chunk met by a read of the disk ------------------
# Member 3 holds parity in stripe 48 (member bytes 3M..) and data in 49.
newcase raid5-read-unreadable
for m in a b c d; do make_image $m.img 8M; done
start_rawvec 'raid5(a.img, b.img, c.img, faulty(d.img), chunk=64k)'
fill_model
ctl "fault 3 unreadable=$((3 * M + 64 * K))..$((3 * M + 72 * K))"
verify "reading over the bad sectors"
for f in members.3.state:ok members.3.unreadable_sectors:0 degraded:0 \
	corrected_sectors:$((64 * K / 512)); do
	v=$(stat_value "target.${f%:*}") || exit 1
	[ "$v" = "${f##*:}" ] || die "$CASE: ${f%:*} is $v after the read, want ${f##*:}"
done
grep -q "raid5 member 3 could not read member bytes $((3 * M + 64 * K))..$((3 * M + 128 * K)): rewritten from the others" \
	"$RAWVEC_LOG" || die "$CASE: no rewrite in the log: $(tail -5 "$RAWVEC_LOG")"
stop_rawvec
ref mdcheck raid5 $((64 * K)) "$MODEL" a.img b.img c.img d.img ||
	die "$CASE: members after the read"

# ---- the same with md superblocks: data 1M into each member ----------------
# The log names the member's own bytes, as unreadable= takes them: member
# bytes 3M+64k are data bytes 2M+64k, data chunk 0 of stripe 33 on member 3.
newcase raid5-md-read-unreadable
for m in a b c d; do make_image $m.img 8M; done
n0=$(wc -l <"$RAWVEC_LOG") # the log so far: the cases above
start_rawvec 'raid5(a.img, b.img, c.img, faulty(d.img), chunk=64k, super=1.2)'
for i in $(seq 100); do
	[ "$(stat_value target.sweep_running)" = false ] && break
	sleep 0.1
done
fill_model
ctl "fault 3 unreadable=$((3 * M + 64 * K))..$((3 * M + 72 * K))"
verify "reading over the bad sectors"
[ "$(stat_value target.members.3.state)" = ok ] || die "$CASE: member 3 failed"
tail -n +$((n0 + 1)) "$RAWVEC_LOG" >"$T/log.case"
grep -qF "raid5 member 3 could not read member bytes $((3 * M + 64 * K))..$((3 * M + 128 * K)): rewritten from the others" \
	"$T/log.case" || die "$CASE: no rewrite of member bytes 3M+64k in the log: $(grep 'could not read' "$T/log.case")"
stop_rawvec

log "pass (${SECONDS}s)"
