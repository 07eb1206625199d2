#!/bin/bash
# raid_lib: helpers the RAID e2e tests share, sourced after lib.sh.  The
# caller sets REF (raid_md_ref.py), POOL/POOL_SIZE/POFF (random bytes to
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

