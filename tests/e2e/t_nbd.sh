#!/bin/bash
# nbd() members against nbdkit memory exports (Unix sockets, and TCP on
# 127.0.0.1 only), each nbdkit started here and killed at exit:
#   - nbd() alone: fio verify, then dd writes of odd sizes at odd offsets;
#     after unmount the export, read back with nbdcopy, equals the model;
#   - over TCP with conns=2 (two handles, multi-conn): fio verify;
#   - raid1 of an export with conns=2 and a file: no connection stalls;
#   - raid5 of 3 NBD members: fio verify, then `check` finds 0 mismatches;
#     a failed member cannot be replaced by a live member's export, and
#     is rebuilt onto its own export (a new connection to it);
#   - raid1 of a file and an NBD member, nbdkit killed (-9) in the middle
#     of a fio verify run: the member fails, fio passes, nothing is lost;
#     `replace` onto a fresh export rebuilds it, `check` finds 0
#     mismatches and the new export equals the file member byte for byte;
#   - nbdkit's error filter under raid1 (injected EIO fails the member,
#     reads go on) and its delay filter against timeout= (a read fails
#     with EIO at the timeout, not at the server's delay);
#   - a server restarted (file plugin): rawvec connects again by itself,
#     I/O fails with EIO while it is down and works once it is back;
#   - bad input, each exit 2 naming the URI and the reason, within
#     seconds: no socket, a refused port, an unanswered address
#     (connect_timeout=), a read-only export under a writable layout,
#     conns=2 without multi-conn, a URI named twice, bad options; and a
#     replace onto an export too small or already a member: EINVAL/ENOSPC;
#   - TLS with a pre-shared key named in the URI (nbds+unix://): fio
#     verify, nbd_tls 1; `replace` onto a TLS export rebuilds it (the
#     export equals the file mirror); a wrong key, an unknown user, a
#     missing key file,
#     and a plain URI to a server requiring TLS are refused (exit 2).
. "$(dirname "$0")/lib.sh"
requires fio python3 nbdkit nbdcopy

REF=$E2E_DIR/raid_ref.py
. "$(dirname "$0")/raid_lib.sh"
D=$MNT/disk
MODEL=$T/model
POOL=$T/pool
POOL_SIZE=$((4 << 20))
head -c $POOL_SIZE /dev/urandom >"$POOL" || die "pool"
POFF=0
CASE=


# fio_verify SIZE [EXTRA...]: random 4k writes at QD16 over SIZE, verified.
fio_verify()
{
	local size=$1
	shift
	fio --name=v --filename="$D" --rw=randwrite --bs=4k --iodepth=16 \
		--ioengine=io_uring --direct=1 --size="$size" --verify=crc32c \
		--do_verify=1 --verify_fatal=1 --verify_state_save=0 \
		--directory="$T" "$@" >"$T/fio.out" 2>&1 ||
		{ cat "$T/fio.out"; die "$CASE: fio verify"; }
}

# no_conn_lost: no connection timed out or went away in this mount.
no_conn_lost()
{
	! grep -q "connection [0-9]* lost" "$RAWVEC_LOG" ||
		die "$CASE: $(grep -m1 "connection [0-9]* lost" "$RAWVEC_LOG")"
}

# member_field I FIELD: that field of target member I.
member_field() { stat_value "target.members.$1.$2"; }

CASE=alone
nbd_serve a memory 64M
start_rawvec "nbd($(nbd_uri a))"
[ "$(stat -c %s "$D")" = $((64 << 20)) ] || die "$CASE: size $(stat -c %s "$D")"
[ "$(stat_value target.kind)" = nbd ] || die "$CASE: kind is not nbd"
fio_verify 32M
# What the export holds from here on is the model's.
dd if="$D" bs=1M iflag=direct status=none >"$MODEL" || die "$CASE: read back"
for w in "0 512" "1000 3" "4095 2" "70001 131071" "$((1 << 20)) 1048576" \
	"$(((9 << 20) - 7)) 300007" "$(((64 << 20) - 5)) 5"; do
	put $w
done
put $((3 << 20)) 65536 direct
n=$(stat_value target.nbd_commands) || exit 1
[ "$n" -gt 8192 ] || die "$CASE: nbd_commands $n after a 32M fio run"
no_conn_lost
stop_rawvec
nbdcopy "$(nbd_uri a)" "$T/a.back" || die "$CASE: nbdcopy"
same_bytes "$T/a.back" "$MODEL" "$CASE: the export after odd-sized writes"
log "$CASE: export equals the model"

CASE=tcp
port=
for p in $(shuf -i 20000-60000 -n 20); do
	nbdkit -f --exit-with-parent -i 127.0.0.1 -p "$p" memory 32M \
		>"$T/nbdkit-tcp.log" 2>&1 &
	pid=$!
	sleep 0.3
	if kill -0 $pid 2>/dev/null; then
		track_pid $pid
		port=$p
		break
	fi
done
[ -n "$port" ] || die "$CASE: no free port for nbdkit: $(cat "$T/nbdkit-tcp.log")"
start_rawvec "nbd(nbd://127.0.0.1:$port, conns=2, timeout=3s)"
fio_verify 16M --iodepth=32
[ "$(stat_value target.nbd_conns_live)" = 2 ] || die "$CASE: conns_live is not 2"
no_conn_lost
stop_rawvec

# Under raid1 beside a file, with two connections: before polls were
# checked against the socket (see sock_readable() in nbd.c), a connection
# here stalled until timeout= failed it (1 run of this case in 8; more
# often under longer random reads).
CASE=raid1-conns
nbd_serve c memory 32M
make_image "$T/t.img" 32M zero
start_rawvec "raid1(nbd($(nbd_uri c), conns=2, timeout=3s), $T/t.img, super=none)"
fio_verify 32M --iodepth=32
no_conn_lost
stop_rawvec

CASE=raid5
nbd_serve r0 memory 16M
nbd_serve r1 memory 16M
nbd_serve r2 memory 16M
# Two connections each, and a short timeout: a connection that stalls
# (libnbd told "readable" when it was not) fails its member in seconds.
nbd2() { echo "nbd($(nbd_uri $1), conns=2, timeout=3s)"; }
start_rawvec "raid5($(nbd2 r0), $(nbd2 r1), $(nbd2 r2), chunk=16k, super=none)"
fio_verify 24M --iodepth=32 --rw=randrw
m=$(scrub check)
[ "$m" = 0 ] || die "$CASE: check found $m mismatched sectors"
no_conn_lost
ctl "fail 2"
expect_fail "replace onto a live member's export" sh -c "echo 'replace 2 $(nbd2 r0)' >'$MNT/control'"
# The same export again: a new connection, and a rebuild onto it.
replace_retry 2 "$(nbd2 r2)"
wait_rebuilt "replace onto the same export"
m=$(scrub check)
[ "$m" = 0 ] || die "$CASE: check found $m mismatched sectors after the rebuild"
stop_rawvec

CASE=kill
nbd_serve k memory 32M
make_image "$T/b.img" 32M zero
start_rawvec "raid1($T/b.img, nbd($(nbd_uri k), timeout=5s), super=none)"
fio_verify 24M --iodepth=8 --rate_iops=4000 &
fpid=$!
sleep 0.7
kill -9 "$NBDKIT_k"
wait $fpid || die "$CASE: fio verify failed after the NBD server died"
[ "$(member_field 1 state)" = failed ] || die "$CASE: member 1 is $(member_field 1 state), not failed"
grep -q "connection 0 lost" "$RAWVEC_LOG" || die "$CASE: no 'connection lost' in the log"
dd if="$D" bs=1M iflag=direct status=none >"$MODEL" || die "$CASE: read degraded"
nbd_serve k2 memory 32M
nbd_serve tiny memory 16M
expect_fail "replace onto a smaller export" sh -c "echo 'replace 1 nbd($(nbd_uri tiny))' >'$MNT/control'"
expect_fail "replace onto the live member's twin" sh -c "echo 'replace 1 $T/b.img' >'$MNT/control'"
expect_fail "replace with a word too many" sh -c "echo 'replace 1 $T/new.img junk' >'$MNT/control'"
[ ! -e "$T/new.img junk" ] && [ ! -e "$T/new.img" ] || die "$CASE: a refused replace created a file"
replace_retry 1 "nbd($(nbd_uri k2))"
wait_rebuilt "replace onto a fresh export"
m=$(scrub check)
[ "$m" = 0 ] || die "$CASE: check found $m mismatched sectors after the rebuild"
same_bytes "$D" "$MODEL" "$CASE: disk after the rebuild"
stop_rawvec
nbdcopy "$(nbd_uri k2)" "$T/k2.back" || die "$CASE: nbdcopy"
same_bytes "$T/k2.back" "$T/b.img" "$CASE: the rebuilt export and the file member"

CASE=error-filter
make_image "$T/c.img" 16M zero
head -c 16M /dev/zero >"$MODEL"
nbd_serve e --filter=error memory 16M error=EIO error-rate=100% error-file="$T/errors.on"
start_rawvec "raid1($T/c.img, nbd($(nbd_uri e), timeout=0), super=none)"
put 0 1048576 direct
touch "$T/errors.on"
put 4096 65536 direct
[ "$(member_field 1 state)" = failed ] || die "$CASE: member 1 is $(member_field 1 state), not failed"
e=$(stat_value target.members.1.errors) || exit 1
[ "$e" -gt 0 ] || die "$CASE: no errors counted on the NBD member"
dd if="$D" bs=1M count=2 iflag=direct status=none >"$T/c.back" || die "$CASE: read degraded"
cmp -s "$T/c.back" <(head -c 2M "$MODEL") || die "$CASE: degraded read differs"
stop_rawvec

CASE=delay-filter
nbd_serve slow --filter=delay memory 16M delay-read=4
start_rawvec "nbd($(nbd_uri slow), timeout=500ms)"
t0=$(date +%s%N)
expect_fail "read past timeout=" dd if="$D" of=/dev/null bs=4k count=1 iflag=direct status=none
ms=$((($(date +%s%N) - t0) / 1000000))
[ $ms -lt 3000 ] || die "$CASE: the read failed after $ms ms, not at timeout=500ms"
[ "$(stat_value target.nbd_timeouts)" = 1 ] || die "$CASE: nbd_timeouts is not 1"
log "$CASE: the read failed after $ms ms"
stop_rawvec

# A server that comes back: the file plugin keeps the bytes over a
# restart, rawvec connects again by itself (backoff from 1 s) and reads
# what it wrote before; meanwhile I/O fails with EIO instead of hanging.
CASE=reconnect
make_image "$T/f.img" 16M zero
nbd_serve f file "$T/f.img"
# One connection (conns=auto would make one per loop, and a loop whose
# connections are down hands its reads to another's).
start_rawvec "nbd($(nbd_uri f), conns=1, timeout=2s)"
head -c 1M /dev/urandom >"$T/f.data"
dd if="$T/f.data" of="$D" bs=1M oflag=direct conv=notrunc status=none || die "$CASE: write"
cmp -s "$T/f.data" <(head -c 1M "$T/f.img") || die "$CASE: the write did not reach the file"
kill -9 "$NBDKIT_f"
wait "$NBDKIT_f" 2>/dev/null
expect_fail "read while the server is down" dd if="$D" of=/dev/null bs=4k count=1 iflag=direct status=none
rm -f "$T/f.sock"
nbd_serve f file "$T/f.img"
for i in $(seq 100); do
	dd if="$D" bs=1M count=1 iflag=direct status=none >"$T/f.back" 2>/dev/null && break
	sleep 0.1
done
cmp -s "$T/f.back" "$T/f.data" || die "$CASE: no read back within 10 s of the server's return"
[ "$(stat_value target.nbd_reconnects)" = 1 ] || die "$CASE: nbd_reconnects is not 1"
grep -q "connection 0 is back" "$RAWVEC_LOG" || die "$CASE: no 'is back' in the log"
log "$CASE: read back after the server returned (${i}00 ms of polling)"
stop_rawvec

# TLS with a pre-shared key, the URI naming the key file (libnbd refuses
# a URI's local files unless told to take them): fio verify through an
# encrypted connection, nbd_tls 1; a wrong key, an unknown user, a
# missing key file and a plain URI to a server that requires TLS are each
# refused with exit 2 and the reason.
CASE=tls
psk() { echo "alice:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
psk >"$T/keys.psk"
psk >"$T/wrong.psk"
chmod 600 "$T/keys.psk" "$T/wrong.psk"
nbd_serve tls --tls=require --tls-psk="$T/keys.psk" memory 16M
# tls_uri USER KEYS [SERVER]: the URI of nbd_serve SERVER (default tls).
tls_uri() { echo "nbds+unix://$1@/?socket=$T/${3:-tls}.sock&tls-psk-file=$2"; }
start_rawvec "nbd($(tls_uri alice "$T/keys.psk"))"
fio_verify 8M
[ "$(stat_value target.nbd_tls)" = 1 ] || die "$CASE: nbd_tls is not 1"
[ "$(stat_value target.nbd_conns_lost)" = 0 ] || die "$CASE: a connection was lost"
stop_rawvec
start_rawvec "nbd($(nbd_uri a))"
[ "$(stat_value target.nbd_tls)" = 0 ] || die "$CASE: nbd_tls is not 0 without TLS"
stop_rawvec
# Through the control path's opening thread: raid1 of a file and a TLS
# export, the export failed and replaced by another TLS export, rebuilt.
nbd_serve tls2 --tls=require --tls-psk="$T/keys.psk" memory 16M
make_image "$T/t.img" 16M zero
start_rawvec "raid1($T/t.img, nbd($(tls_uri alice "$T/keys.psk")), super=none)"
fio_verify 8M
ctl "fail 1"
replace_retry 1 "nbd($(tls_uri alice "$T/keys.psk" tls2))"
wait_rebuilt "replace onto a TLS export"
[ "$(stat_value target.members.1.nbd_tls)" = 1 ] || die "$CASE: the new member's nbd_tls is not 1"
stop_rawvec
nbdcopy "$(tls_uri alice "$T/keys.psk" tls2)" "$T/tls2.back" ||
	die "$CASE: nbdcopy of the rebuilt TLS export"
same_bytes "$T/tls2.back" "$T/t.img" "$CASE: the rebuilt TLS export and the file member"
log "$CASE: fio verify over TLS with a pre-shared key; replace onto a TLS export rebuilt"
TLS_BAD=("nbd($(tls_uri alice "$T/wrong.psk"))|TLS"
	"nbd($(tls_uri bob "$T/keys.psk"))|username bob was not found"
	"nbd($(tls_uri alice "$T/none.psk"))|none.psk: No such file"
	"nbd($(nbd_uri tls))|requires TLS")

CASE=bad-input
nbd_serve ro -r memory 16M
nbd_serve nomc --filter=multi-conn memory 16M multi-conn-mode=disable
for e in "nbd($(nbd_uri missing))|No such file" \
	"nbd(nbd://127.0.0.1:1/x)|refused" \
	"nbd(nbd://10.255.255.1/x, connect_timeout=1s)|" \
	"nbd($(nbd_uri ro))|read-only" \
	"nbd($(nbd_uri nomc), conns=2)|multi-conn" \
	"raid1(nbd($(nbd_uri a)), nbd($(nbd_uri a)))|already a member" \
	"nbd($(nbd_uri a), conns=99)|conns" \
	"nbd($(nbd_uri a), timeout=soon)|timeout" \
	"nbd()|needs a URI" \
	"nbd(http://example.com/x)|scheme" "${TLS_BAD[@]}"; do
	expr=${e%|*} want=${e##*|}
	t0=$(date +%s%N)
	out=$(timeout 20 "$RAWVEC" -f "$MNT" "$expr" 2>&1)
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ $rc = 2 ] || die "'$expr': exit $rc, want 2 ($out)"
	[ $ms -lt 5000 ] || die "'$expr': took $ms ms"
	echo "$out" | head -1 | grep -q -- "$want" || die "'$expr': no '$want' in: $out"
	log "refused in $ms ms: $(echo "$out" | head -1)"
done
start_rawvec -o ro "nbd($(nbd_uri ro))"
dd if="$D" of=/dev/null bs=1M count=1 iflag=direct status=none || die "read of a read-only export"
stop_rawvec
log pass
