#!/bin/bash
# --create SIZE: a missing image is created sparse with SIZE bytes (mode
# 0600) and served; an existing image is served as it is, untouched, and
# the log says so (with its size), since the SIZE asked for is not used.
. "$(dirname "$0")/lib.sh"
requires_transport
requires du

start_rawvec --create 24m "$T/new.img"
[ "$(stat -c %s "$MNT/disk")" = $((24 << 20)) ] || die "--create 24m: disk size $(stat -c %s "$MNT/disk")"
[ "$(stat -c '%s %a' "$T/new.img")" = "$((24 << 20)) 600" ] ||
	die "--create 24m: image '$(stat -c '%s %a' "$T/new.img")', want '$((24 << 20)) 600'"
[ "$(du -k "$T/new.img" | cut -f1)" -lt 1024 ] || die "--create made a non-sparse image: $(du -k "$T/new.img")"
cmp -n $((24 << 20)) "$MNT/disk" /dev/zero >/dev/null || die "a new image does not read as zeros"
head -c 5000 /dev/urandom >"$T/src"
dd if="$T/src" of="$MNT/disk" bs=5000 seek=777 conv=notrunc status=none || die "write to a created image"
stop_rawvec
dd if="$T/new.img" bs=5000 skip=777 count=1 status=none | cmp - "$T/src" >/dev/null ||
	die "the write is not in the created image"

# Existing image: --create is ignored, size and bytes stay.
make_image "$T/old.img" 16M random
before="$(file_state "$T/old.img") $(md5sum <"$T/old.img")"
start_rawvec --create 64m "$T/old.img"
[ "$(stat -c %s "$MNT/disk")" = $((16 << 20)) ] || die "--create on an existing 16M image: disk size $(stat -c %s "$MNT/disk")"
grep -q -- "--create: $T/old.img exists (16 MiB), used as it is" "$RAWVEC_LOG" ||
	die "--create 64m on an existing 16M image: the log does not say it is used as it is"
stop_rawvec
after="$(file_state "$T/old.img") $(md5sum <"$T/old.img")"
[ "$before" = "$after" ] || die "--create changed an existing image: $before -> $after"

# A layout's existing member: used as it is, logged; the new one created.
start_rawvec --create 16m "raid1($T/old.img, $T/new2.img)"
grep -q -- "--create: $T/old.img exists (16777216 bytes), used as it is" "$RAWVEC_LOG" ||
	die "--create with a layout: the log does not say old.img is used as it is"
stop_rawvec
[ "$(stat -c %s "$T/new2.img")" = $((16 << 20)) ] || die "--create did not make new2.img"
log "pass"
