#!/bin/bash
# -o trace=FILE round-trips: every device's requests come back from
# `rawvec trace --csv` at the offsets and lengths raid0 maps them to, with
# the errors a faulty() member injected and the counts the stats file had;
# the summary names every device; io_errors counts the failed read and
# not a lookup of a missing name; a torn last record is ignored; bad trace
# paths and files are refused.
. "$(dirname "$0")/lib.sh"
requires python3

for i in 0 1; do make_image "$T/m$i.img" 8M zero; done
TR=$T/trace.bin
# Addresses: raid0 is "-", faulty "0" over file "0.0", file "1".  Member
# 0's bytes 4m..5m are bad: that is logical 8m.. (chunk 64k, 2 members).
start_rawvec -o trace="$TR" "raid0(faulty($T/m0.img, at=4m..5m), $T/m1.img, chunk=64k)"
dd if=/dev/urandom of="$MNT/disk" bs=128k count=20 oflag=direct conv=notrunc status=none ||
	die "writes failed"
for k in 3 17 40; do
	dd if="$MNT/disk" of=/dev/null bs=4k skip=$k count=1 iflag=direct status=none || die "read $k failed"
done
expect_fail "read of the bad range" dd if="$MNT/disk" of=/dev/null bs=4k skip=2048 count=1 iflag=direct status=none
ls "$MNT/nope" 2>/dev/null && die "a missing name was found"
cp "$MNT/stats" "$T/stats.json"
stop_rawvec

"$RAWVEC" trace --csv "$TR" >"$T/trace.csv" || die "rawvec trace --csv failed"
python3 - "$T/trace.csv" "$T/stats.json" <<'PY' || die "trace does not match what was done"
import csv, json, sys
from collections import Counter
rows = list(csv.DictReader(open(sys.argv[1])))
def ops(addr, op):
    return sorted((int(r["offset"]), int(r["length"]), int(r["result"]))
                  for r in rows if r["addr"] == addr and r["op"] == op)
K = 131072
want_top_w = [(i * K, K, 0) for i in range(20)]
assert ops("-", "write") == want_top_w, ops("-", "write")
# 128k at i*128k is chunk 2i on member 0 and 2i+1 on member 1: 64k at i*64k.
half = [(i * 65536, 65536, 0) for i in range(20)]
for a in ("0", "0.0", "1"):
    assert ops(a, "write") == half, (a, ops(a, "write"))
assert ops("-", "read") == [(k * 4096, 4096, 0) for k in (3, 17, 40)] + [(8 << 20, 4096, -5)], ops("-", "read")
# 4k at 12k, 68k, 160k: chunks 0, 1, 2 -> member 0 @12k, 1 @4k, 0 @96k.
assert ops("0", "read") == [(12288, 4096, 0), (98304, 4096, 0), (4 << 20, 4096, -5)], ops("0", "read")
assert ops("0.0", "read") == [(12288, 4096, 0), (98304, 4096, 0)], ops("0.0", "read")
assert ops("1", "read") == [(4096, 4096, 0)], ops("1", "read")
for r in rows:
    assert float(r["latency_us"]) >= 0 and float(r["start_us"]) >= 0, r
# Reads and writes per device equal the stats file's counts.
def walk(d, addr):
    yield addr, d
    for i, m in enumerate(d.get("members", [])):
        yield from walk(m, str(i) if addr == "-" else f"{addr}.{i}")
n = Counter((r["addr"], r["op"]) for r in rows)
for addr, d in walk(json.load(open(sys.argv[2]))["target"], "-"):
    for op, field in (("read", "reads"), ("write", "writes")):
        assert n[(addr, op)] == d[field], (addr, op, n[(addr, op)], d[field])
# The failed read is the one I/O error; the missing name is not one.
top = json.load(open(sys.argv[2]))
assert top["io_errors"] == 1 and top["errors"] >= 2, (top["io_errors"], top["errors"])
print(f"{len(rows)} records match")
PY
log "trace --csv: every record where raid0 puts it"

"$RAWVEC" trace "$TR" >"$T/summary.txt" || die "rawvec trace failed"
for a in '^-  ' '^  0  ' '^    0\.0 ' '^  1  '; do
	[ "$(grep -c -E "$a" "$T/summary.txt")" = 2 ] || die "summary: no table and heat rows for '$a': $(cat "$T/summary.txt")"
done
grep -q "$T/m1.img" "$T/summary.txt" || die "summary: member name missing"
log "summary: $(head -1 "$T/summary.txt")"

# A torn last record (a daemon that died mid-write) is left out.
full=$("$RAWVEC" trace --csv "$TR" | wc -l)
size=$(stat -c %s "$TR")
head -c $((size - 10)) "$TR" >"$T/torn.bin"
torn=$("$RAWVEC" trace --csv "$T/torn.bin" | wc -l) || die "torn trace refused"
[ "$torn" = $((full - 1)) ] || die "torn trace: $torn lines, want $((full - 1))"

expect_fail "trace of a non-trace" "$RAWVEC" trace /etc/hostname
expect_fail "trace of a missing file" "$RAWVEC" trace "$T/none"
out=$("$RAWVEC" trace 2>&1); rc=$?
[ $rc = 2 ] || die "rawvec trace without a file: exit $rc, want 2"
out=$("$RAWVEC" trace "$T/none" 2>&1); rc=$?
[ $rc = 2 ] || die "rawvec trace of a missing file: exit $rc, want 2 ($out)"
[ "$out" = "rawvec trace: $T/none: No such file or directory" ] || die "missing file: $out"
echo "not a trace" >"$T/text"
out=$("$RAWVEC" trace "$T/text" 2>&1); rc=$?
[ $rc = 2 ] || die "rawvec trace of a text file: exit $rc, want 2 ($out)"
[ "$out" = "rawvec trace: $T/text: not a rawvec trace" ] || die "text file: $out"
out=$("$RAWVEC" -f -o trace="$T/no/such/dir/t" "$MNT" "$T/m0.img" 2>&1); rc=$?
[ $rc = 2 ] || die "-o trace into a missing directory: exit $rc, want 2 ($out)"
echo "$out" | grep -q "$T/no/such/dir/t" || die "-o trace error does not name the file: $out"
mountpoint -q "$MNT" && die "mounted despite a bad trace file"
log "refused: $out"
log pass
