#!/bin/bash
# rawvec on a block device: a loop device with direct I/O over an image.
# Aligned and unaligned writes, reads, discard and zero-out; the stats say
# "blockdev": true with the device's size and logical block size; the
# data lands on the device and in the image behind it.  Then again on a
# loop device with 4096-byte sectors.
. "$(dirname "$0")/lib.sh"
requires_transport
requires losetup blockdev fallocate python3

SIZE=$((32 << 20))

# run_on SECTOR_SIZE
run_on()
{
	local ssz=$1 dev got
	make_image "$T/img" 32M random
	dev=$(losetup --direct-io=on --sector-size "$ssz" --find --show "$T/img") ||
		die "losetup --direct-io=on --sector-size $ssz"
	track_loop "$dev"
	cp "$T/img" "$T/ref"
	log "$dev: logical block size $(blockdev --getss "$dev")"

	start_rawvec "$dev"
	[ "$(stat_value target.blockdev)" = true ] || die "stats: target.blockdev is not true: $(cat "$MNT/stats")"
	got=$(stat_value target.size) || exit 1
	[ "$got" = $SIZE ] || die "stats: target.size $got, want $SIZE"
	got=$(stat_value target.align) || exit 1
	[ "$got" = "$ssz" ] || die "stats: target.align $got, want the sector size $ssz"
	[ "$(stat -c %s "$MNT/disk")" = $SIZE ] || die "disk size $(stat -c %s "$MNT/disk")"

	# Aligned 1 MiB direct writes, an unaligned one across a sector and
	# a 4k boundary, a write ending at the very end.
	head -c $((4 << 20)) /dev/urandom >"$T/a"
	dd if="$T/a" of="$MNT/disk" bs=1M seek=5 oflag=direct conv=notrunc status=none || die "aligned dd"
	dd if="$T/a" of="$T/ref" bs=1M seek=5 conv=notrunc status=none
	head -c 10000 /dev/urandom >"$T/b"
	dd if="$T/b" of="$MNT/disk" bs=10000 seek=$((12345678)) oflag=seek_bytes conv=notrunc status=none ||
		die "unaligned dd"
	dd if="$T/b" of="$T/ref" bs=10000 seek=$((12345678)) oflag=seek_bytes conv=notrunc status=none
	dd if="$T/b" of="$MNT/disk" bs=1000 seek=$((SIZE - 10000)) oflag=seek_bytes conv=notrunc status=none ||
		die "dd to the end"
	dd if="$T/b" of="$T/ref" bs=1000 seek=$((SIZE - 10000)) oflag=seek_bytes conv=notrunc status=none

	# Discard and zero-out on whole blocks read back as zeros.
	fallocate --punch-hole --keep-size -o $((20 << 20)) -l $((1 << 20)) "$MNT/disk" ||
		die "punch-hole (a zeroing discard) on a block device"
	fallocate --zero-range --keep-size -o $((30 << 20)) -l 65536 "$MNT/disk" ||
		die "zero-range (a zero-out) on a block device"
	python3 - "$T/ref" <<-'EOF'
		import sys
		with open(sys.argv[1], 'r+b') as f:
		    f.seek(20 << 20); f.write(bytes(1 << 20))
		    f.seek(30 << 20); f.write(bytes(65536))
	EOF
	# Unaligned: rawvec may refuse (block devices discard whole blocks)
	# but then must leave the data; if it succeeds the bytes are zero.
	for mode in --punch-hole --zero-range; do
		if fallocate $mode --keep-size -o $((25 << 20 | 100)) -l 5000 "$MNT/disk" 2>/dev/null; then
			head -c 5000 /dev/zero | dd of="$T/ref" bs=5000 seek=$((25 << 20 | 100)) \
				oflag=seek_bytes conv=notrunc status=none
		fi
		dd if="$MNT/disk" bs=1M skip=25 count=1 status=none >"$T/back"
		dd if="$T/ref" bs=1M skip=25 count=1 status=none >"$T/want"
		same_bytes "$T/back" "$T/want" "$dev after an unaligned fallocate $mode"
	done
	same_bytes "$MNT/disk" "$T/ref" "$dev through the mount vs reference"
	# Odd-sized reads over the unaligned write and the discarded range.
	dd if="$MNT/disk" bs=4095 skip=$((12345678 / 4095 - 1)) count=6 status=none >"$T/back"
	dd if="$T/ref" bs=4095 skip=$((12345678 / 4095 - 1)) count=6 status=none >"$T/want"
	same_bytes "$T/back" "$T/want" "$dev: bs=4095 reads around the unaligned write"
	dd if="$MNT/disk" bs=4095 skip=$(((20 << 20) / 4095 - 1)) count=260 status=none >"$T/back"
	dd if="$T/ref" bs=4095 skip=$(((20 << 20) / 4095 - 1)) count=260 status=none >"$T/want"
	same_bytes "$T/back" "$T/want" "$dev: bs=4095 reads around the discarded range"
	got=$(stat_field rmw_writes) || exit 1
	[ "$got" -gt 0 ] || die "unaligned writes on $dev did no read-modify-write"
	stop_rawvec
	same_bytes "$dev" "$T/ref" "$dev itself vs reference"
	losetup -d "$dev" || die "losetup -d $dev"
	same_bytes "$T/img" "$T/ref" "image behind $dev vs reference"
}

run_on 512
run_on 4096
log "pass"
