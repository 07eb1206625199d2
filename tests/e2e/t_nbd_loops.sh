#!/bin/bash
# variants: uring/2
# nbd() members under two event loops (-o threads=2):
#   - raid0 of two nbd(conns=2), md superblocks (read on loop 0 before the
#     members are split): each loop runs a part of each member with a
#     connection of its own, so fio verify from both CPUs sends (almost)
#     no request from loop 1 to loop 0;
#   - under a headerless raid0 that runs on both loops, a member split
#     over them is failed and replaced by another export while fio writes
#     from both CPUs: both of the old member's connections close (one of
#     them is loop 1's), the new member is split too and takes writes,
#     every in-flight count comes back to 0; nbd() of a server without
#     multi-conn beside them has one connection and stays loop 0's;
#   - conns=auto (the default) opens a connection per loop where the
#     server offers multi-conn, at start-up and in a replace; a server
#     that takes one client leaves the member with one connection.
. "$(dirname "$0")/lib.sh"
requires_transport
requires fio nbdkit
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs"

for n in a b c; do
	nbd_serve $n --filter=log memory 64M logfile="$T/$n.log"
done
nbd_serve nomc --filter=multi-conn memory 64M multi-conn-mode=disable
nbd_serve lim --filter=limit memory 64M limit=1
nbd2() { echo "nbd($(nbd_uri "$1"), conns=2)"; }

CASE=raid0-super
start_rawvec -o threads=2 "raid0($(nbd2 a), nbd($(nbd_uri b), conns=auto), chunk=16k)"
[ "$(stat_value threads)" = 2 ] || die "$CASE: threads $(stat_value threads), want 2"
for m in 0 1; do
	n=$(stat_value "target.members.$m.nbd_loops")
	[ "$n" = 2 ] || die "$CASE: member $m nbd_loops $n, want 2"
done
# conns=auto (also the default, as in the replace below): a connection
# per loop, the server offering multi-conn.
[ "$(stat_value target.members.1.nbd_conns)" = 2 ] ||
	die "$CASE: nbd() without conns= has $(stat_value target.members.1.nbd_conns) connections, want one per loop"
! grep -q "keep state run on loop 0" "$RAWVEC_LOG" ||
	die "$CASE: $(grep -m1 "keep state" "$RAWVEC_LOG")"
fio --name=v --filename="$MNT/disk" --rw=randwrite --bs=4k --iodepth=16 \
	--numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split \
	--size=16m --offset_increment=32m --ioengine=io_uring --direct=1 \
	--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 \
	--directory="$T" >"$T/fio.out" 2>&1 ||
	{ cat "$T/fio.out"; die "$CASE: fio verify"; }
r1=$(stat_value loops.1.requests)
m1=$(stat_value loops.1.msgs_sent)
# Owned by loop 0, each of loop 1's requests is two messages.
[ "$r1" -gt 1000 ] || die "$CASE: loop 1 served $r1 requests, fio ran on both CPUs"
[ "$m1" -lt $((r1 / 20)) ] ||
	die "$CASE: loop 1 sent $m1 messages for $r1 requests: they went to loop 0"
stop_rawvec
log "$CASE: loop 1 served $r1 requests and sent $m1 messages"

# conns=auto and a server that takes one client: the member goes on with
# the connection it has (loop 0's), and the log says so.
CASE=auto-limited
start_rawvec -o threads=2 "nbd($(nbd_uri lim))"
[ "$(stat_value target.nbd_conns)" = 1 ] ||
	die "$CASE: $(stat_value target.nbd_conns) connections to a server that takes one"
grep -q "conns=auto goes on with 1 connection" "$RAWVEC_LOG" ||
	die "$CASE: no log line for the refused connection"
dd if="$MNT/disk" of=/dev/null bs=1M count=4 iflag=direct status=none || die "$CASE: read"
stop_rawvec

CASE=raid0-replace
start_rawvec -o threads=2 "raid0($(nbd2 a), $(nbd2 b), nbd($(nbd_uri nomc)), chunk=16k, super=none)"
for m in 0:2 1:2 2:1; do
	n=$(stat_value "target.members.${m%:*}.nbd_loops")
	[ "$n" = "${m#*:}" ] || die "$CASE: member ${m%:*} nbd_loops $n, want ${m#*:}"
done
# conns=auto without multi-conn is one connection, loop 0's.
[ "$(stat_value target.members.2.nbd_conns)" = 1 ] ||
	die "$CASE: nbd() of a server without multi-conn has $(stat_value target.members.2.nbd_conns) connections"
grep -q "keep state run on loop 0" "$RAWVEC_LOG" ||
	die "$CASE: nbd() with one connection is not said to be loop 0's"
fio --name=w --filename="$MNT/disk" --rw=randrw --bs=4k --iodepth=16 \
	--numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split \
	--ioengine=io_uring --direct=1 --time_based --runtime=20 \
	--continue_on_error=all --output="$T/fio.out" >/dev/null 2>&1 &
FIO=$!
sleep 1
ctl "fail 1"
closed=$(grep -c Disconnect "$T/b.log")
replace_retry 1 "nbd($(nbd_uri c))"
# Both of b's connections close: the loops stay up, nothing waits on b.
for i in $(seq 50); do
	[ "$(grep -c Disconnect "$T/b.log")" = $((closed + 2)) ] && break
	sleep 0.1
done
[ "$(grep -c Disconnect "$T/b.log")" = $((closed + 2)) ] ||
	die "$CASE: b's connections closed by the replace: $(($(grep -c Disconnect "$T/b.log") - closed)), want 2"
sleep 1
kill "$FIO" 2>/dev/null
wait "$FIO" 2>/dev/null
kill -0 "$RAWVEC_PID" 2>/dev/null || die "rawvec died: $(tail -5 "$RAWVEC_LOG")"
[ "$(stat_value target.members.1.nbd_loops)" = 2 ] ||
	die "$CASE: the new member's nbd_loops is $(stat_value target.members.1.nbd_loops)"
w=$(stat_value target.members.1.writes)
[ "$w" -gt 0 ] || die "$CASE: the new member took no writes"
for m in 0 1 2; do
	n=$(stat_value "target.members.$m.inflight")
	[ "$n" = 0 ] || die "$CASE: member $m: inflight $n with no I/O running"
	n=$(stat_value "target.members.$m.nbd_inflight")
	[ "$n" = 0 ] || die "$CASE: member $m: nbd_inflight $n with no I/O running"
done
stop_rawvec
log "pass: nbd(conns=2) runs on both loops; replaced under raid0, the new member took $w writes"
