#!/bin/bash
# transports: uring dev
# The disk's size never changes, and a truncate discards nothing:
#   - dd seek=N without conv=notrunc (which ftruncates to N blocks first)
#     succeeds without a complaint, writes its bytes, and every byte past
#     them stays;
#   - truncate -s 0 (or any size at or below the disk's) succeeds and
#     changes nothing, with a log line;
#   - a truncate past the end fails with EINVAL, with a log line.
. "$(dirname "$0")/lib.sh"
requires_transport
requires truncate

SIZE=$((16 << 20))
make_image "$T/img" 16M random
cp "$T/img" "$T/ref"
start_rawvec "$T/img"
D=$MNT/disk

head -c 12288 /dev/urandom >"$T/src"
dd if="$T/src" of="$D" bs=4096 seek=5 2>"$T/dd.err" || die "dd seek=5 without conv=notrunc: $(cat "$T/dd.err")"
grep -v -e 'records in$' -e 'records out$' -e ' copied, ' "$T/dd.err" | grep -q . &&
	die "dd seek=5 without conv=notrunc complained: $(cat "$T/dd.err")"
dd if="$T/src" of="$T/ref" bs=4096 seek=5 conv=notrunc status=none
[ "$(stat -c %s "$D")" = $SIZE ] || die "size after dd seek=5: $(stat -c %s "$D")"
grep -q "truncate to 20480 bytes ignored" "$RAWVEC_LOG" || die "no log line for dd's truncate"

truncate -s 0 "$D" || die "truncate -s 0"
truncate -s $((SIZE - 4096)) "$D" || die "truncate to one block less"
truncate -s $SIZE "$D" || die "truncate to the same size"
[ "$(stat -c %s "$D")" = $SIZE ] || die "size after truncate -s 0: $(stat -c %s "$D")"
expect_fail "truncate past the end" truncate -s $((SIZE + 4096)) "$D"
grep -q "Invalid argument" "$T/expect_fail.out" || die "truncate past the end: $(cat "$T/expect_fail.out"), want EINVAL"
grep -q "refusing to grow disk to $((SIZE + 4096)) bytes" "$RAWVEC_LOG" || die "no log line for the truncate past the end"
[ "$(stat -c %s "$D")" = $SIZE ] || die "size after a truncate past the end: $(stat -c %s "$D")"
same_bytes "$D" "$T/ref" "disk after the truncates"
stop_rawvec
same_bytes "$T/img" "$T/ref" "image after the truncates"
log "pass"
