#!/bin/bash
# The docs match what rawvec emits and lists: every field of MOUNTPOINT/stats
# (from a layout that emits every optional object: md superblocks, raid5's
# stripe counters, sweeps, faulty(), sim(), an image file, a block device,
# mem(), null() and nbd() over an nbdkit memory export) is in docs/stats.md, and docs/stats.md lists no field
# that is not emitted; every level --help lists has a section in
# docs/layouts.md and every command MOUNTPOINT/control lists one in
# docs/control.md; every relative link in README.md and docs/*.md leads to
# a file (and heading); the man page's SEE ALSO names every docs/*.md.
. "$(dirname "$0")/lib.sh"
requires_transport
requires python3 losetup nbdkit

check=$E2E_DIR/docs_check.py
docs=$ROOT/docs

shopt -s nullglob
mds=("$docs"/*.md)
shopt -u nullglob
[ ${#mds[@]} -gt 0 ] || die "no docs/*.md"
python3 "$check" links "$ROOT/README.md" "${mds[@]}" >"$T/links.out" ||
	die "broken links: $(cat "$T/links.out")"
for f in "${mds[@]}"; do
	grep -q "](docs/$(basename "$f"))" "$ROOT/README.md" || die "README does not link to docs/$(basename "$f")"
done

# From the source: rendered, a long name may be hyphenated across lines.
seealso=$(sed -n '/^\.SH SEE ALSO/,/^\.SH [^S]/p' "$docs/rawvec.1" | tr -s ' \n' ' ')
for f in "${mds[@]}"; do
	echo "$seealso" | grep -q "docs/$(basename "$f")" || die "the man page's SEE ALSO lacks docs/$(basename "$f"): $seealso"
done

levels=$("$RAWVEC" --help | grep -oE '^  [a-z0-9]+\(' | tr -d ' (' | sort -u)
[ -n "$levels" ] || die "--help lists no levels"
python3 "$check" headings "$docs/layouts.md" $levels >"$T/levels.out" ||
	die "docs/layouts.md: $(cat "$T/levels.out")"

make_image "$T/lo.img" 32M
LOOP=$(losetup -f --show "$T/lo.img") || skip "no loop device"
track_loop "$LOOP"
nbd_serve n memory 32M
start_rawvec --create 32m "raid5($T/f0.img, faulty($T/f1.img), sim($LOOP, lat=10us), raid1(mem(size=32m), null(size=32m), nbd($(nbd_uri n))), chunk=64k, super=1.2)"

cmds=$(grep -o '^  [a-z]\+ ' "$MNT/control" | tr -d ' ' | sort -u)
[ -n "$cmds" ] || die "no commands in MOUNTPOINT/control"
python3 "$check" headings "$docs/control.md" $cmds >"$T/cmds.out" ||
	die "docs/control.md: $(cat "$T/cmds.out")"

# Reads and writes, so the size and latency histograms have buckets.
dd if=/dev/urandom of="$MNT/disk" bs=64k count=32 oflag=direct status=none || die "dd write"
dd if="$MNT/disk" of=/dev/null bs=4k count=64 iflag=direct status=none || die "dd read"
cat "$MNT/stats" >"$T/stats.json" || die "cannot read $MNT/stats"
stop_rawvec

for obj in super full_stripe_writes injected_spikes sweep_running st_rdev st_ino; do
	grep -q "\"$obj\"" "$T/stats.json" || die "the layout did not make stats emit $obj"
done
python3 "$check" stats "$T/stats.json" "$docs/stats.md" >"$T/stats.out" 2>"$T/stats.err" ||
	die "docs/stats.md and the stats file disagree:
$(cat "$T/stats.out")"
log "pass: $(cat "$T/stats.err"); levels $(echo $levels); commands $(echo $cmds); links and SEE ALSO"
