#!/bin/bash
# variants: uring/2 dev/1
# Degraded arrays through MOUNTPOINT/control:
#   - raid1 (2 mirrors), raid5 (4 and 5 members), raid6 (6 members, one
#     then two failures; 5 members, two at once): the disk, full of random
#     data, reads back whole after `fail` (reads reconstructed); writes
#     while degraded (aligned direct ones: 4k, a chunk, a full stripe, 1M,
#     the last 4k; unaligned: odd offsets and sizes, across chunk and
#     stripe boundaries, ending at the very end) read back, and after
#     unmount the surviving members hold what md would (raid_ref.py mdcheck);
#   - one failure too many (raid1 both mirrors, raid5 two, raid6 three,
#     raid0 one, linear one): reads of the affected ranges fail with EIO
#     (and writes too), the daemon keeps running, stats stay readable,
#     and the unaffected ranges of raid0/linear still read back right;
#   - fsync of a degraded (but working) array succeeds;
#   - a raid6 member that starts failing with 32 reads in flight to it:
#     every one is retried degraded, none fails;
#   - punch-hole and zero-range on raid5 and raid6, healthy and degraded,
#     4k-aligned and not: reads return zeroes there, the rest is kept;
#   - bad control commands (fail 9, fail x, fail 1.0 on flat arrays,
#     fail 01, fail +1, fail -0, replace 0 /nonexistent/dir/x.img, replace
#     of a member that is not failed, unknown words, missing or extra
#     arguments, check on an array without redundancy or degraded past
#     it, a NUL, a carriage return or another control byte in the write)
#     fail the write with EINVAL, change nothing, and the daemon lives.
# Failures that leave the daemon usable (fsync, errno) are collected and
# reported at the end, so that every case runs; an I/O that never
# completes (15 s) is a failure too: that daemon is killed and the next
# case goes on.
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
FAILS=() # failures that do not stop the run; reported at the end
WEDGED=0
IO_PID=

# verify WHAT: the whole disk, read with O_DIRECT, equals the model.
verify()
{
	local out
	dd if="$D" iflag=direct bs=1M status=none >"$T/disk.now" 2>"$T/dd.err" ||
		die "$CASE: $1: reading the disk failed: $(cat "$T/dd.err")"
	out=$(cmp "$T/disk.now" "$MODEL" 2>&1) || die "$CASE: $1: disk differs from the model: $out"
	# Unaligned reads too (bounce-buffered): 1000-byte blocks around a
	# chunk boundary.
	dd if="$D" bs=1000 skip=60 count=200 status=none >"$T/part.disk" 2>"$T/dd.err" ||
		die "$CASE: $1: bs=1000 read failed: $(cat "$T/dd.err")"
	dd if="$MODEL" bs=1000 skip=60 count=200 status=none >"$T/part.model"
	cmp -s "$T/part.disk" "$T/part.model" || die "$CASE: $1: bs=1000 reads differ from the model"
	rm -f "$T/disk.now"
}

# fill: random data over the whole disk (model and disk alike).
fill()
{
	SIZE=$(stat -c %s "$D") || die "stat $D"
	head -c "$SIZE" /dev/urandom >"$MODEL"
	dd if="$MODEL" of="$D" bs=1M oflag=direct conv=notrunc status=none 2>"$T/dd.err" ||
		die "$CASE: filling the disk: $(cat "$T/dd.err")"
	verify "after filling"
}

# mixed_writes CHUNK STRIPE_DATA_BYTES WHAT: aligned and unaligned writes.
mixed_writes()
{
	local c=$1 sw=$2
	put 0 4096 direct
	put "$c" "$c" direct
	put $((sw * 3)) "$sw" direct                 # a full stripe
	put $((SIZE / 2)) $((1 << 20)) direct        # 1M, several stripes
	put $((SIZE - 4096)) 4096 direct             # the last 4k
	put $((c + 8192)) 12288 direct               # inside one chunk, 3 pages
	put 12345 1000                               # unaligned, inside a page
	put $((c - 500)) 70001                       # across a chunk boundary
	put $((sw * 5 - 777)) 1554                   # across a stripe boundary
	put $((SIZE / 3 + 1)) 300007                 # several chunks, odd
	put $((sw * 7 + 3)) $((sw - 6))              # nearly a full stripe
	put $((SIZE - 3)) 3                          # ends at the very end
	put $((SIZE - 70000)) 70000                  # ends at the end, unaligned start
	fsync_ok "after degraded writes"
}

# fsync_ok WHAT: fsync of the disk succeeds (flushes every member still
# in use).  A failure is recorded, and the run goes on.
fsync_ok()
{
	local e
	e=$(python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    os.fsync(fd); print("ok")
except OSError as e:
    print(e)' "$D")
	[ "$e" = ok ] || {
		FAILS+=("$CASE: fsync of the disk failed ($1): $e")
		log "FAIL (continuing): $CASE: fsync failed ($1): $e"
	}
}

# members_states: the states of the target's members, space-separated.
members_states()
{
	cat "$MNT/stats" >"$T/st.json" || die "$CASE: cannot read stats"
	python3 -c 'import json,sys; print(" ".join(m["state"] for m in json.load(open(sys.argv[1]))["target"]["members"]))' "$T/st.json"
}

alive()
{
	kill -0 "$RAWVEC_PID" 2>/dev/null || die "$CASE: rawvec died ($1)"
	cat "$MNT/stats" >/dev/null || die "$CASE: stats unreadable ($1)"
}

# io_try SECS CMD...: run CMD (an I/O on the mount) in the background,
# output in $T/io.err; status 0 done, 1 failed, 2 still blocked after SECS
# (a request rawvec never answers: the process sits in D state).
io_try()
{
	local secs=$1 pid i
	shift
	"$@" >/dev/null 2>"$T/io.err" &
	pid=$!
	for i in $(seq $((secs * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		IO_PID=$pid
		return 2
	fi
	wait "$pid" && return 0
	return 1
}

# abandon WHY: the daemon is wedged (a request it never answers): kill it
# (the blocked I/O then fails with ENOTCONN), unmount, record the failure.
abandon()
{
	FAILS+=("$CASE: $1")
	echo "FAIL (continuing with the next case): $CASE: $1" >&2
	echo "--- rawvec log ---" >&2
	tail -5 "$RAWVEC_LOG" >&2
	kill -KILL "$RAWVEC_PID" 2>/dev/null
	wait "$RAWVEC_PID" 2>/dev/null
	RAWVEC_PID=
	[ -n "${IO_PID:-}" ] && wait "$IO_PID" 2>/dev/null
	IO_PID=
	fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	WEDGED=1
}

# expect_eio OFF LEN WHAT: an O_DIRECT read of [OFF, OFF+LEN) fails with
# EIO.  Returns 1 when the daemon wedged (and was abandoned).
expect_eio()
{
	io_try 15 dd if="$D" of=/dev/null bs=64k iflag=direct,skip_bytes,count_bytes \
		skip="$1" count="$2" status=none
	case $? in
	0) die "$CASE: $3: read of $2 bytes at $1 succeeded, want EIO" ;;
	2) abandon "$3: read of $2 bytes at $1 never completed (want EIO); the daemon was wedged and had to be killed"
	   return 1 ;;
	esac
	grep -q 'Input/output error' "$T/io.err" ||
		die "$CASE: $3: read of $2 bytes at $1 failed, but not with EIO: $(cat "$T/io.err")"
	log "$CASE: EIO as expected: read of $2 bytes at $1"
}

# expect_write_eio OFF LEN WHAT: a write there fails with EIO (the model
# is not touched).  Returns 1 when the daemon wedged.
expect_write_eio()
{
	io_try 15 dd if="$POOL" of="$D" bs="$2" count=1 oflag=direct,seek_bytes seek="$1" \
		conv=notrunc status=none
	case $? in
	0) die "$CASE: $3: write of $2 bytes at $1 succeeded, want EIO" ;;
	2) abandon "$3: write of $2 bytes at $1 never completed (want EIO); the daemon was wedged and had to be killed"
	   return 1 ;;
	esac
	grep -q 'Input/output error' "$T/io.err" ||
		die "$CASE: $3: write of $2 bytes at $1 failed, but not with EIO: $(cat "$T/io.err")"
	log "$CASE: EIO as expected: write of $2 bytes at $1"
}

# same_range OFF LEN WHAT: an O_DIRECT read of the range equals the model.
same_range()
{
	dd if="$D" bs=64k iflag=direct,skip_bytes,count_bytes skip="$1" count="$2" \
		status=none >"$T/r.disk" 2>"$T/dd.err" ||
		die "$CASE: $3: read of $2 bytes at $1 failed: $(cat "$T/dd.err")"
	dd if="$MODEL" bs=64k iflag=skip_bytes,count_bytes skip="$1" count="$2" \
		status=none >"$T/r.model"
	cmp -s "$T/r.disk" "$T/r.model" || die "$CASE: $3: bytes at $1 (+$2) differ from the model"
}

# bad_ctl CMD: writing CMD to control must fail with EINVAL (exit status
# of the shell redirect non-zero, errno checked with python).
bad_ctl()
{
	local cmd=$1 e
	if printf '%s\n' "$cmd" >"$MNT/control" 2>/dev/null; then
		die "$CASE: control accepted the bad command '$cmd'"
	fi
	e=$(python3 - "$MNT/control" "$cmd" <<-'EOF'
		import errno, os, sys
		fd = os.open(sys.argv[1], os.O_WRONLY)
		try:
		    os.write(fd, (sys.argv[2] + "\n").encode())
		    print("accepted")
		except OSError as e:
		    print(errno.errorcode.get(e.errno, e.errno))
	EOF
	)
	case $e in
	accepted) die "$CASE: control accepted '$cmd' on the second try" ;;
	EINVAL) ;;
	*) FAILS+=("$CASE: control '$cmd' failed with $e; docs/control.md: a refused command fails the write with EINVAL")
	   log "NOTE: '$cmd' -> $e (want EINVAL)" ;;
	esac
	alive "after '$cmd'"
}

# bad_ctl_bytes PYBYTES WHY: a write of the bytes PYBYTES (a Python bytes
# literal) to control fails with EINVAL, and the log names WHY.
bad_ctl_bytes()
{
	local e
	e=$(python3 - "$MNT/control" "$1" <<-'EOF'
		import ast, errno, os, sys
		fd = os.open(sys.argv[1], os.O_WRONLY)
		try:
		    os.write(fd, ast.literal_eval(sys.argv[2]))
		    print("accepted")
		except OSError as e:
		    print(errno.errorcode.get(e.errno, e.errno))
	EOF
	)
	[ "$e" = EINVAL ] || die "$CASE: control took $1 with $e, want EINVAL"
	grep -qF "$2" "$RAWVEC_LOG" || die "$CASE: no log line says '$2' for $1"
	alive "after $1"
}

# surviving MEMBERS...: after unmount, the members not failed hold md's
# layout of the model.
surviving()
{
	local level=$1 chunk=$2 skip=$3
	shift 3
	(cd "$T/$CASE" && ref mdcheck "$level" "$chunk" "$MODEL" "$@" --skip "$skip") ||
		die "$CASE: surviving members after unmount"
}

K=1024
M=$((1024 * 1024))

# ---- raid1: 2 mirrors --------------------------------------------------
EXPR='raid1(a.img, b.img)'
newcase raid1 "$EXPR"
make_image a.img 8M; make_image b.img 8M
start_rawvec "$EXPR"
fill
ctl 'fail 0'
[ "$(members_states)" = "failed ok" ] || die "$CASE: states after fail 0: $(members_states)"
[ "$(stat_field target.degraded)" = 1 ] || die "$CASE: degraded is not 1"
verify "one mirror failed"
mixed_writes $((64 * K)) $((64 * K))
verify "after degraded writes"
ctl 'fail 1'
expect_eio 0 65536 "both mirrors failed" &&
expect_eio $((SIZE - 4096)) 4096 "both mirrors failed" &&
expect_write_eio 4096 4096 "both mirrors failed" &&
alive "raid1 with no mirror" && stop_rawvec
surviving raid1 0 0 a.img b.img

# ---- raid5: 4 members, chunk 16k; then a second failure ---------------
EXPR='raid5(a.img, b.img, c.img, d.img, chunk=16k)'
newcase raid5x4 "$EXPR"
for m in a b c d; do make_image $m.img 8M; done
start_rawvec "$EXPR"
fill
ctl 'fail 2'
[ "$(members_states)" = "ok ok failed ok" ] || die "$CASE: states after fail 2: $(members_states)"
ctl 'fail 2'
grep -qF "member 2 (" "$RAWVEC_LOG" && grep -q "member 2 (.*) is failed already" "$RAWVEC_LOG" ||
	die "$CASE: a second 'fail 2' did not say member 2 is failed already"
verify "member 2 failed"
d0=$(stat_field target.degraded_ops) || exit 1
[ "$d0" -gt 0 ] || die "$CASE: degraded reads counted no degraded_ops"
mixed_writes $((16 * K)) $((48 * K))
verify "after degraded writes"

# Bad control commands, on an array with one failed member.
bad_ctl 'fail 9'
bad_ctl 'fail 4'
bad_ctl 'fail x'
bad_ctl 'fail -1'
bad_ctl 'fail -0'
bad_ctl 'fail +1'
bad_ctl 'fail 01'
bad_ctl 'fail 00'
bad_ctl 'fail 1.0'
bad_ctl 'fail 1.'
bad_ctl 'fail'
bad_ctl 'fail 1 2'
bad_ctl 'replace 0 /nonexistent/dir/x.img'   # member 0 is not failed either
bad_ctl 'replace 2 /nonexistent/dir/x.img'   # failed member, bad path
bad_ctl "replace 1 $T/raid5x4/new1.img"      # not failed
# (Not a documented rule, so only noted: a rejected replace leaves no file.)
[ -e "$T/raid5x4/new1.img" ] &&
	log "NOTE: the rejected 'replace 1 PATH' (member not failed) still created PATH"
bad_ctl 'replace 2'
bad_ctl 'frobnicate'
bad_ctl 'FAIL 1'
bad_ctl 'check now'
# Degraded past its redundancy, the raid5 has nothing to check against.
bad_ctl 'check'
bad_ctl 'repair'
grep -qF "raid5 (the top) is degraded (1 of its 4 members failed): it has no redundancy left to check its data against" "$RAWVEC_LOG" ||
	die "$CASE: no log line says why a check of the degraded raid5 was refused"
# Only what is text: what follows a NUL used to go unread ("fail 1").
bad_ctl_bytes "b'fail 1\\x00garbage\\n'" "is 0x00 (a NUL)"
bad_ctl_bytes "b'fail 1\\r\\n'" "is 0x0d (a carriage return"
bad_ctl_bytes "b'fail 1\\x1b\\n'" "is 0x1b (a control character)"
grep -qF "a member number has no leading zero (1, not 01)" "$RAWVEC_LOG" ||
	die "$CASE: no log line says why 'fail 01' was refused"
[ "$(members_states)" = "ok ok failed ok" ] ||
	die "$CASE: bad commands changed the member states: $(members_states)"
verify "after the bad commands"

ctl 'fail 0'
expect_eio 0 16384 "two members of raid5 failed (data on a failed member)" &&
expect_eio $((16 * K)) 16384 "two members of raid5 failed" &&
expect_eio $((SIZE / 2)) $((1 << 20)) "two members of raid5 failed" &&
expect_write_eio $((48 * K)) $((48 * K)) "two members of raid5 failed" &&
alive "raid5 with two failed members" && stop_rawvec
surviving raid5 $((16 * K)) 0,2 a.img b.img c.img d.img

# ---- raid5: 5 members, chunk 64k, the last member failed -----------------
EXPR='raid5(a.img, b.img, c.img, d.img, e.img, chunk=64k)'
newcase raid5x5 "$EXPR"
for m in a b c d e; do make_image $m.img 8M; done
start_rawvec "$EXPR"
fill
ctl 'fail 4'
verify "member 4 failed"
mixed_writes $((64 * K)) $((256 * K))
verify "after degraded writes"
stop_rawvec
surviving raid5 $((64 * K)) 4 a.img b.img c.img d.img e.img

# ---- raid6: 6 members, chunk 32k: one failure, two, then three ----------
EXPR='raid6(a.img, b.img, c.img, d.img, e.img, f.img, chunk=32k)'
newcase raid6x6 "$EXPR"
for m in a b c d e f; do make_image $m.img 8M; done
start_rawvec "$EXPR"
fill
ctl 'fail 1'
verify "member 1 failed"
mixed_writes $((32 * K)) $((128 * K))
verify "after writes with one failed member"
ctl 'fail 4'
[ "$(members_states)" = "ok failed ok ok failed ok" ] ||
	die "$CASE: states after fail 1, fail 4: $(members_states)"
[ "$(stat_field target.degraded)" = 2 ] || die "$CASE: degraded is not 2"
verify "members 1 and 4 failed"
mixed_writes $((32 * K)) $((128 * K))
verify "after writes with two failed members"
ctl 'fail 5'
expect_eio 0 32768 "three members of raid6 failed" &&
expect_eio $((SIZE - 65536)) 65536 "three members of raid6 failed" &&
expect_write_eio 0 4096 "three members of raid6 failed" &&
alive "raid6 with three failed members" && stop_rawvec
surviving raid6 $((32 * K)) 1,4,5 a.img b.img c.img d.img e.img f.img

# ---- raid6: 5 members, chunk 16k, two neighbours failed at once ---------
# Over 5 stripes the pair (0, 1) is every combination: D+D, D+P, P+Q, Q+D.
EXPR='raid6(a.img, b.img, c.img, d.img, e.img, chunk=16k)'
newcase raid6x5 "$EXPR"
for m in a b c d e; do make_image $m.img 4M; done
start_rawvec "$EXPR"
fill
ctl 'fail 0'
ctl 'fail 1'
verify "members 0 and 1 failed"
mixed_writes $((16 * K)) $((48 * K))
verify "after writes with two failed members"
stop_rawvec
surviving raid6 $((16 * K)) 0,1 a.img b.img c.img d.img e.img

# ---- raid0: one member failed --------------------------------------------
EXPR='raid0(a.img, b.img, chunk=64k)'
newcase raid0 "$EXPR"
make_image a.img 4M; make_image b.img 4M
start_rawvec "$EXPR"
fill
ctl 'fail 1'
same_range 0 65536 "raid0, member 1 failed: chunk 0 (member 0)"
same_range $((128 * K)) 65536 "raid0, member 1 failed: chunk 2 (member 0)"
expect_eio $((64 * K)) 65536 "raid0, member 1 failed: chunk 1" &&
expect_eio 0 $((1 << 20)) "raid0, member 1 failed: 1M over both" &&
expect_write_eio $((192 * K)) 4096 "raid0, member 1 failed: chunk 3" && {
	bad_ctl 'check'    # nothing redundant to check
	bad_ctl 'repair'
	alive "raid0 with a failed member"
	same_range 0 65536 "raid0 after EIOs"
	stop_rawvec
}

# ---- linear: the second member failed --------------------------------------
EXPR='linear(a.img, b.img)'
newcase linear "$EXPR"
make_image a.img 4M; make_image b.img 4M
start_rawvec "$EXPR"
fill
ctl 'fail 1'
same_range 0 $((4 * M)) "linear, member 1 failed: member 0's range"
expect_eio $((4 * M)) 65536 "linear, member 1 failed: member 1's range" &&
expect_eio $((4 * M - 4096)) 8192 "linear, member 1 failed: across the boundary" &&
expect_write_eio $((5 * M)) 4096 "linear, member 1 failed" && {
	alive "linear with a failed member"
	same_range 0 $((4 * M)) "linear after EIOs"
	stop_rawvec
}

# ---- discard and zero-range, healthy and degraded ------------------------------
# zr MODE OFF LEN: fallocate --MODE on the disk, zeroes into the model.
# Returns 1 (failure recorded) when fallocate fails.
zr()
{
	fallocate "--$1" -o "$2" -l "$3" "$D" 2>"$T/fa.err" || {
		FAILS+=("$CASE: fallocate --$1 -o $2 -l $3 failed: $(cat "$T/fa.err"); log: $(tail -2 "$RAWVEC_LOG" | tr '\n' ' ')")
		log "FAIL (continuing): $CASE: fallocate --$1 -o $2 -l $3: $(cat "$T/fa.err")"
		return 1
	}
	python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(bytes(int(sys.argv[3])))' "$MODEL" "$2" "$3"
}

# discard_case NAME LEVEL NMEMBERS FAILED
discard_case()
{
	local name=$1 level=$2 n=$3 failed=$4 c=$((16 * K)) sw mem=() i expr
	sw=$(( (n - (level == 5 ? 1 : 2)) * c ))
	for ((i = 0; i < n; i++)); do mem+=("m$i.img"); done
	expr="raid$level($(echo "${mem[@]}" | sed 's/ /, /g'), chunk=16k)"
	newcase "$name" "$expr"
	for i in "${mem[@]}"; do make_image "$i" 4M; done
	start_rawvec "$expr"
	fill
	zr punch-hole 4096 8192 &&                          # inside a chunk
	zr zero-range "$sw" "$sw" &&                        # a full stripe
	zr punch-hole $((sw * 3 + c)) $((sw * 2)) &&        # across stripes
	zr zero-range $((sw * 6 - 4096)) 12288 &&
	zr punch-hole $((sw * 24)) $((sw * 3)) &&           # whole stripes: one batch
	zr zero-range $((sw * 28 + c)) $((sw * 3)) || { stop_rawvec; return; }
	verify "after aligned discards (healthy)"
	ctl "fail $failed"
	zr punch-hole $((sw * 10 + 4096)) 8192 &&
	zr zero-range $((sw * 12)) "$sw" &&
	zr punch-hole $((sw * 14 + c)) $((sw * 2)) &&
	zr zero-range $((sw * 32)) $((sw * 2 + 4096)) || { stop_rawvec; return; }
	verify "after aligned discards (degraded)"
	zr punch-hole $((sw * 18 + 512)) 1536 &&            # 512-aligned, not 4k
	zr zero-range $((sw * 18 + 8704)) 3584 &&
	zr punch-hole 100000 30000 &&                       # not even 512-aligned
	zr zero-range $((sw * 20 + 100)) 1000 &&
	zr punch-hole $((sw * 22 - 777)) $((sw + 1554)) || { stop_rawvec; return; }
	verify "after unaligned discards (degraded)"
	stop_rawvec
	surviving "raid$level" "$c" "$failed" "${mem[@]}"
}

discard_case discard-raid5 5 4 2
discard_case discard-raid6 6 5 0

# A member that dies under many reads at once: with member 0 of a raid6
# already failed, member 4 (behind sim's 3 ms, so 32 reads wait on it)
# starts failing every read.  The first stripe op whose read fails marks
# it failed; every other op with a read in flight to it must be retried
# degraded too, not fail (they found it failed by someone else and gave
# EIO: 30-31 of them per run before).
CASE=concurrent-fail
start_rawvec "raid6(mem(size=32m), mem(size=32m), mem(size=32m), mem(size=32m), sim(faulty(mem(size=32m)), lat=3ms), chunk=4k, super=none)"
ctl "fail 0"
fio --name=r --filename="$MNT/disk" --rw=randread --bs=4k --iodepth=32 \
	--ioengine=io_uring --direct=1 --time_based --runtime=1.5 \
	--continue_on_error=all --output-format=json >"$T/conc.json" 2>"$T/conc.err" &
fio_pid=$!
sleep 0.5
ctl "fault 4.0 read_eio=1"
wait $fio_pid || true
errs=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["jobs"][0]["total_err"])' "$T/conc.json") ||
	FAILS+=("$CASE: no fio result: $(cat "$T/conc.err")")
[ "$(stat_value target.members.4.state)" = failed ] ||
	FAILS+=("$CASE: member 4 is $(stat_value target.members.4.state), not failed")
[ "${errs:-x}" = 0 ] || FAILS+=("$CASE: $errs reads failed with 2 of 5 raid6 members down")
log "$CASE: reads failed: ${errs:-?}, member 4 $(stat_value target.members.4.state)"
stop_rawvec

if [ ${#FAILS[@]} -gt 0 ]; then
	for s in "${FAILS[@]}"; do echo "FAIL: $s" >&2; done
	die "${#FAILS[@]} failure(s) (above)"
fi
log "pass (${SECONDS}s)"
