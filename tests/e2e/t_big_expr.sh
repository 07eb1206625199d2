#!/bin/bash
# Expressions at and past the limits: 320 member files to create (more
# than the 256 one expression may name) and 1000 members of one level are
# refused with exit 2 and the limit named, creating nothing; 200 levels
# of nesting over one image serve it, and write and read it back.
. "$(dirname "$0")/lib.sh"
requires_transport

cd "$T" || die "cd $T"
e320=$(for k in 0 1 2 3 4; do
	printf 'linear('
	for i in $(seq 0 63); do printf '%sf%d_%d.img' "$([ "$i" = 0 ] || echo ', ')" $k $i; done
	printf ')\n'
done | paste -sd, | sed 's/^/linear(/; s/$/)/')
e1000="linear($(for i in $(seq 0 999); do printf 'a%d.img,' $i; done | sed 's/,$//'))"
for c in "e320|more than 256 member files" "e1000|more than 64 members"; do
	var=${c%%|*} want=${c#*|}
	"$RAWVEC" -f "$(transport_opt)" --create 1m "$MNT" "${!var}" >"$T/out" 2>&1
	rc=$?
	[ $rc = 2 ] || die "$var: exit $rc, want 2: $(head -c 300 "$T/out")"
	grep -q "$want" "$T/out" || die "$var: message lacks '$want': $(head -c 300 "$T/out")"
	[ -z "$(ls "$T" | grep '\.img$')" ] || die "$var: created $(ls "$T" | grep -c '\.img$') images"
	log "$var refused: $want"
done

make_image n.img 4M
e200="$(printf 'linear(%.0s' $(seq 200))n.img$(printf ')%.0s' $(seq 200))"
start_rawvec "$e200"
head -c $((256 << 10)) /dev/urandom >"$T/data"
dd if="$T/data" of="$MNT/disk" bs=64k seek=3 oflag=direct conv=notrunc status=none || die "write through 200 levels"
cmp -n $((256 << 10)) <(dd if="$MNT/disk" bs=64k skip=3 count=4 iflag=direct status=none) "$T/data" ||
	die "read back through 200 levels differs"
stop_rawvec
cmp -n $((256 << 10)) <(dd if=n.img bs=64k skip=3 count=4 status=none) "$T/data" || die "not in the image"
log pass
