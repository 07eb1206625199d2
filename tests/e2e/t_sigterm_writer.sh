#!/bin/bash
# variants: uring/1 uring/2 dev/1 dev/2
# SIGTERM while writers run: rawvec finishes what is in flight, unmounts
# and exits 0, and every write a writer saw complete is in the image.
# (Then SIGINT and SIGHUP on an idle mount: exit 0, unmounted.)
# Writer A: aligned 4k blocks with O_DIRECT; writer B: unaligned 1000-byte
# records (read-modify-write inside rawvec).  Each prints "SEQ INDEX" after
# its pwrite returns; the image must hold, for every index, that SEQ or a
# later one, intact.
. "$(dirname "$0")/lib.sh"
requires_transport
requires python3

make_image "$T/img" 32M zero

cat >"$T/writer.py" <<'PY'
import os, struct, sys

MAGIC = 0x52415756  # "RAWV"

def record(kind, idx, seq, n):
    head = struct.pack("<IIQQ", MAGIC, kind, idx, seq)
    body = (head * (n // len(head) + 1))[:n]
    return body

def layout(kind):
    # (offset of index i, record size, number of records)
    if kind == 0:
        return lambda i: i * 4096, 4096, (16 << 20) // 4096
    return lambda i: (16 << 20) + i * 1000, 1000, (16 << 20) // 1000

def write(path, kind):
    off, n, count = layout(kind)
    fd = os.open(path, os.O_WRONLY | (os.O_DIRECT if kind == 0 else 0))
    import mmap
    buf = mmap.mmap(-1, 4096)  # page-aligned for O_DIRECT
    seq = 0
    out = sys.stdout
    while True:
        for i in range(count):
            seq += 1
            i = (i * 7919) % count  # a stride, so passes are not sequential
            buf.seek(0)
            buf.write(record(kind, i, seq, n))
            try:
                r = os.pwritev(fd, [memoryview(buf)[:n]], off(i))
            except OSError as e:
                out.write("END %s\n" % e)
                out.flush()
                return
            if r != n:
                out.write("END short %d\n" % r)
                out.flush()
                return
            out.write("%d %d\n" % (seq, i))
            out.flush()

def check(img, kind, report):
    off, n, count = layout(kind)
    last = {}
    done = 0
    for line in open(report):
        if line.startswith("END"):
            continue
        seq, i = map(int, line.split())
        last[i] = seq
        done += 1
    bad = 0
    with open(img, "rb") as f:
        for i, seq in last.items():
            f.seek(off(i))
            got = f.read(n)
            magic, k, gi, gseq = struct.unpack("<IIQQ", got[:24])
            if (magic, k, gi) != (MAGIC, kind, i) or gseq < seq or \
                    got != record(kind, i, gseq, n):
                bad += 1
                if bad <= 5:
                    print("writer %d: record %d: reported seq %d done, image has "
                          "magic %#x kind %d index %d seq %d%s" %
                          (kind, i, seq, magic, k, gi, gseq,
                           "" if got == record(kind, gi, gseq, n) else " (torn)"))
    print("writer %d: %d writes reported, %d records checked, %d bad" %
          (kind, done, len(last), bad))
    sys.exit(1 if bad or not last else 0)

if sys.argv[1] == "write":
    write(sys.argv[2], int(sys.argv[3]))
else:
    check(sys.argv[2], int(sys.argv[3]), sys.argv[4])
PY

start_rawvec "$T/img"
python3 "$T/writer.py" write "$MNT/disk" 0 >"$T/rep0" 2>"$T/err0" &
w0=$!
track_pid $w0
python3 "$T/writer.py" write "$MNT/disk" 1 >"$T/rep1" 2>"$T/err1" &
w1=$!
track_pid $w1
# Let both get going (a few hundred writes each), then pull the plug.
for i in $(seq 100); do
	[ "$(wc -l <"$T/rep0")" -gt 300 ] && [ "$(wc -l <"$T/rep1")" -gt 300 ] && break
	sleep 0.05
done
sleep 0.3
log "SIGTERM to rawvec after $(wc -l <"$T/rep0") + $(wc -l <"$T/rep1") writes"
kill -TERM "$RAWVEC_PID"
wait_rawvec_exit 20
[ "$RAWVEC_STATUS" = 0 ] || die "rawvec exited $RAWVEC_STATUS after SIGTERM, want 0"
grep -q 'signal 15' "$RAWVEC_LOG" || die "rawvec did not log the signal"
mountpoint -q "$MNT" && die "$MNT still mounted after rawvec exited"
for w in $w0 $w1; do
	for i in $(seq 100); do
		kill -0 $w 2>/dev/null || break
		sleep 0.1
	done
	kill -0 $w 2>/dev/null && die "writer $w still running 10 s after rawvec exited"
	wait $w
done
log "writer A: $(tail -1 "$T/rep0"); writer B: $(tail -1 "$T/rep1")"
cat "$T/err0" "$T/err1"
python3 "$T/writer.py" check "$T/img" 0 "$T/rep0" || die "completed O_DIRECT 4k writes missing from the image"
python3 "$T/writer.py" check "$T/img" 1 "$T/rep1" || die "completed unaligned writes missing from the image"

# Idle: SIGINT and SIGHUP end it cleanly too, and unmount.
for sig in INT HUP; do
	start_rawvec "$T/img"
	kill -$sig "$RAWVEC_PID"
	wait_rawvec_exit 20
	[ "$RAWVEC_STATUS" = 0 ] || die "idle rawvec exited $RAWVEC_STATUS after SIG$sig, want 0"
	mountpoint -q "$MNT" && die "$MNT still mounted after SIG$sig"
done
log "pass"
