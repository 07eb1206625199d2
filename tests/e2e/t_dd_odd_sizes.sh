#!/bin/bash
# variants: uring/1 uring/2 dev/1 dev/2
# dd with odd block sizes (1000, 4095, 4096, 1M+1) at odd offsets, with and
# without conv=notrunc: the disk must behave like a block device (O_TRUNC
# neither truncates nor fails) and match a reference file byte for byte,
# through the mount and in the image after unmount.
. "$(dirname "$0")/lib.sh"
requires_transport
requires head stat

SIZE=$((16 << 20))
make_image "$T/img" 16M random
cp "$T/img" "$T/ref"
start_rawvec "$T/img"
D=$MNT/disk

# one_case BS SEEK COUNT notrunc|trunc [DD FLAGS...]
one_case()
{
	local bs=$1 seek=$2 count=$3 mode=$4 conv=
	shift 4
	[ "$mode" = notrunc ] && conv=conv=notrunc
	head -c $((bs * count)) /dev/urandom >"$T/src"
	if ! dd if="$T/src" of="$D" bs="$bs" seek="$seek" count="$count" \
		$conv "$@" status=none 2>"$T/dd.err"; then
		die "dd bs=$bs seek=$seek count=$count $mode $*: $(cat "$T/dd.err")"
	fi
	# Without notrunc, dd ftruncate()s to seek*bs first: a disk refuses
	# to shrink (t_semantics), dd 9.x warns and carries on.  Nothing
	# else may be said.
	if [ -s "$T/dd.err" ] && ! { [ "$mode" = trunc ] && [ "$seek" != 0 ] &&
		! grep -qv 'failed to truncate' "$T/dd.err"; }; then
		die "dd bs=$bs seek=$seek $mode $*: unexpected: $(cat "$T/dd.err")"
	fi
	dd if="$T/src" of="$T/ref" bs="$bs" seek="$seek" conv=notrunc status=none ||
		die "dd to the reference file"
	[ "$(stat -c %s "$D")" = $SIZE ] ||
		die "after dd bs=$bs seek=$seek $mode: size $(stat -c %s "$D"), want $SIZE"
	dd if="$D" bs="$bs" skip="$seek" count="$count" iflag=fullblock status=none \
		>"$T/back" || die "read back bs=$bs skip=$seek"
	same_bytes "$T/back" "$T/src" "read back bs=$bs skip=$seek count=$count $mode $*"
}

for bs in 1000 4095 4096 $((1048576 + 1)); do
	last=$((SIZE / bs - 3)) # three blocks ending just before the end
	for mode in notrunc trunc; do
		for seek in 0 7 $last; do
			count=3
			[ "$seek" = "$last" ] || count=2
			one_case "$bs" "$seek" "$count" "$mode"
		done
	done
	one_case "$bs" 3 2 notrunc oflag=direct
	log "bs=$bs ok"
done

# A write that ends exactly at the end of the disk, in 1000-byte blocks
# with seek_bytes so the last block is flush with the end.
head -c 5000 /dev/urandom >"$T/src"
dd if="$T/src" of="$D" bs=1000 seek=$((SIZE - 5000)) oflag=seek_bytes \
	conv=notrunc status=none || die "dd to the very end"
dd if="$T/src" of="$T/ref" bs=1000 seek=$((SIZE - 5000)) oflag=seek_bytes \
	conv=notrunc status=none

# O_TRUNC at offset 0 (plain dd): neither truncates nor fails.
head -c 4096 /dev/urandom >"$T/src"
dd if="$T/src" of="$D" status=none 2>"$T/dd.err" || die "dd with O_TRUNC: $(cat "$T/dd.err")"
dd if="$T/src" of="$T/ref" conv=notrunc status=none
[ "$(stat -c %s "$D")" = $SIZE ] || die "O_TRUNC changed the size to $(stat -c %s "$D")"
# The bytes past the write must still be there (read without a stat first).
dd if="$D" bs=4096 skip=$((SIZE / 4096 - 1)) count=1 status=none >"$T/back"
dd if="$T/ref" bs=4096 skip=$((SIZE / 4096 - 1)) count=1 status=none >"$T/want"
same_bytes "$T/back" "$T/want" "last block after an O_TRUNC open"

# Whole disk, through odd read sizes too.
same_bytes "$D" "$T/ref" "mount vs reference"
dd if="$D" bs=4095 status=none | cmp - "$T/ref" >/dev/null ||
	die "whole disk read with bs=4095 differs from the reference"
dd if="$D" bs=$((1048576 + 1)) status=none | cmp - "$T/ref" >/dev/null ||
	die "whole disk read with bs=1M+1 differs from the reference"
stop_rawvec
same_bytes "$T/img" "$T/ref" "image vs reference after unmount"
log "pass"
