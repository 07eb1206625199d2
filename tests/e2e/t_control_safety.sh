#!/bin/bash
# transports: uring dev
# Operator commands that would destroy data or hang the daemon are refused
# with a reason (the write fails with EINVAL, the log says why), and after
# every refusal the daemon still answers (stats), the disk reads back as
# its model and the live members' images are unchanged byte for byte:
#   members  `replace` onto a member that is still active, raid5 of 4 with
#            member 1 failed: a live member's image by name, by absolute
#            path, through a symlink and a hard link, and as the leaf of a
#            layout expression; the failed member's own image is taken
#            back (and rebuilt, md-exact);
#   nested   the same for raid0(raid1, raid1) with nested addresses (the
#            message names 0.1, 1.1), and a layout replacement with a new
#            image beside a live one creates nothing;
#   addr     the rebuild's log line names the nested address (1.0);
#   busy     a second `replace` while a rebuild runs (raid10, a slow sim()
#            source mirror), in the same raid1 and in the other one, is
#            refused; the rebuild log names the nested address (0.1);
#   hopeless a rebuild that cannot succeed is refused up front, twice:
#            raid5 with 2 failed members, raid6 with 3, raid1 with both;
#   mount    paths that lead into the mount itself: MNT/disk, MNT/stats,
#            MNT/control, a new image under MNT, MNT/../mnt/disk, symlinks
#            to and under MNT, a layout over MNT/disk, the disk of a second
#            rawvec mount over MNT/disk, and a loop device over MNT/disk;
#            while a replace waits on a hung (SIGSTOPped) second mount the
#            disk and stats are served, and the replace gives up with
#            EINVAL at -o control_timeout=2s instead of hanging (on
#            uring; on dev the hung mount comes back after 0.5 s and the
#            replace is refused); then a good replace in a two-line
#            write with a bad second line rebuilds and fails the write;
#   stop     SIGTERM while a replace waits on an NBD server that never
#            answers (control_timeout=60s): rawvec gives the replace up
#            (EINVAL, the log says it is stopping) and exits 0 within 5 s
#            (it waited out the control timeout), the surviving image
#            holds the model;
#   startup  members inside the mountpoint at start-up (--create MP
#            MP/disk, raid1(a.img, MP/x.img), through a symlinked directory
#            and a dangling symlink) exit 2 and create nothing.
# CTL_CASES="members mount" runs only those cases.
. "$(dirname "$0")/lib.sh"
requires_transport
has_python || skip "requires python3"
requires losetup

REF=$E2E_DIR/raid_ref.py
. "$(dirname "$0")/raid_lib.sh"
D=$MNT/disk
MODEL=$T/model
CASE=
CASES=${CTL_CASES:-members nested addr busy hopeless mount stop startup}
K=1024

want() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }

# alive WHAT: the daemon runs and serves stats.
alive()
{
	kill -0 "$RAWVEC_PID" 2>/dev/null || die "$CASE: $1: rawvec died"
	timeout 10 cat "$MNT/stats" >/dev/null 2>&1 || die "$CASE: $1: stats unreadable (daemon hung?)"
}

verify()
{
	local out
	timeout 60 dd if="$D" iflag=direct bs=1M status=none >"$T/disk.now" 2>"$T/dd.err" ||
		die "$CASE: $1: reading the disk failed: $(cat "$T/dd.err")"
	out=$(cmp "$T/disk.now" "$MODEL" 2>&1) || die "$CASE: $1: disk differs from the model: $out"
	rm -f "$T/disk.now"
}

fill()
{
	fill_model
	verify "after filling"
}

# keep IMG...: copies to compare with later (nothing may write them).
keep() { local i; for i in "$@"; do cp "$i" "$T/keep.$(basename "$i")" || die "cp $i"; done; }
unchanged()
{
	local i
	for i in "$@"; do
		cmp -s "$i" "$T/keep.$(basename "$i")" || die "$CASE: $i was written to by a refused command"
	done
}

# refused CMD PATTERN: the control write fails (not hangs), the log names
# the command and PATTERN, and the daemon still answers.
refused()
{
	local cmd=$1 pat=$2 before rc wpid i
	before=$(wc -l <"$RAWVEC_LOG")
	# A writer waiting on a hung daemon ignores signals (timeout(1) would
	# wait for it too): poll, and let the exit trap abort the connection.
	(echo "$cmd" >"$MNT/control") 2>"$T/ctl.err" &
	wpid=$!
	for i in $(seq 300); do
		kill -0 $wpid 2>/dev/null || break
		sleep 0.1
	done
	kill -0 $wpid 2>/dev/null && die "$CASE: '$cmd': no answer in 30 s (the daemon hangs)"
	wait $wpid
	rc=$?
	[ $rc = 0 ] && die "$CASE: '$cmd' was accepted; log: $(tail -n +$((before + 1)) "$RAWVEC_LOG")"
	grep -q 'Invalid argument' "$T/ctl.err" || die "$CASE: '$cmd': the write failed with $(cat "$T/ctl.err"), not EINVAL"
	tail -n +$((before + 1)) "$RAWVEC_LOG" | grep -F -- "'$cmd'" | grep -qF -- "$pat" ||
		die "$CASE: '$cmd': no log line saying '$pat': $(tail -n +$((before + 1)) "$RAWVEC_LOG")"
	alive "after '$cmd'"
	log "$CASE: refused: $cmd"
}

# state PYPATH: a value of the stats' target, e.g. members.0.members.1.state
state()
{
	timeout 10 cat "$MNT/stats" >"$T/st.json" || die "$CASE: stats"
	python3 - "$T/st.json" "$1" <<-'EOF'
		import json, sys
		n = json.load(open(sys.argv[1]))["target"]
		for k in sys.argv[2].split("."):
		    n = n[int(k)] if isinstance(n, list) else n[k]
		print(n)
	EOF
}

# wait_idle WHAT: until no layer sweeps (60 s).
wait_idle()
{
	local i
	for i in $(seq 600); do
		timeout 10 cat "$MNT/stats" >"$T/st.json" || die "$CASE: stats"
		grep -q '"sweep_running": true' "$T/st.json" || return 0
		sleep 0.1
	done
	die "$CASE: $1: still sweeping after 60 s"
}

# ---- members: replace onto a live member -------------------------------------
if want members; then
	newcase members 'raid5(a.img, b.img, c.img, d.img, chunk=16k)'
	for m in a b c d; do make_image $m.img 8M; done
	start_rawvec 'raid5(a.img, b.img, c.img, d.img, chunk=16k)'
	fill
	ctl 'fail 1'
	keep a.img c.img d.img
	ln -s a.img to-a
	ln c.img hard-c
	refused 'replace 1 a.img' 'a.img is already member 0 (a.img)'
	refused "replace 1 $T/members/d.img" "$T/members/d.img is already member 3 (d.img)"
	refused 'replace 1 to-a' 'to-a is already member 0 (a.img)'
	refused 'replace 1 hard-c' 'hard-c is already member 2 (c.img)'
	refused 'replace 1 linear(d.img)' 'd.img is already member 3 (d.img)'
	unchanged a.img c.img d.img
	verify "after the refused replaces"
	# The failed member's own image comes back and is rebuilt.
	ctl 'replace 1 b.img'
	wait_idle "rebuild of b.img"
	verify "after taking b.img back"
	stop_rawvec
	ref mdcheck raid5 $((16 * K)) "$MODEL" a.img b.img c.img d.img ||
		die "$CASE: member images after the rebuild of b.img"
fi

# ---- nested: the same with nested addresses ------------------------------------
if want nested; then
	EXPR='raid0(raid1(a.img, b.img), raid1(c.img, d.img), chunk=64k)'
	newcase nested "$EXPR"
	for m in a b c d; do make_image $m.img 4M; done
	start_rawvec "$EXPR"
	fill
	ctl 'fail 1.0'
	keep a.img b.img d.img
	ln b.img hard-b
	refused 'replace 1.0 b.img' 'b.img is already member 0.1 (b.img)'
	refused 'replace 1.0 hard-b' 'hard-b is already member 0.1 (b.img)'
	refused 'replace 1.0 raid1(new.img,d.img)' 'd.img is already member 1.1 (d.img)'
	[ -e new.img ] && die "$CASE: a refused replace created new.img"
	unchanged a.img b.img d.img
	verify "after the refused replaces"
	ctl 'replace 1.0 c.img'
	wait_idle "rebuild of c.img"
	verify "after taking c.img back"
	stop_rawvec
	cmp -s c.img d.img || die "$CASE: c.img differs from its mirror d.img after the rebuild"
fi

# ---- addr: rebuild log lines name the nested address -------------------------------
if want addr; then
	EXPR='raid0(raid1(a.img, b.img), raid1(c.img, d.img), chunk=64k)'
	newcase addr "$EXPR"
	for m in a b c d; do make_image $m.img 4M; done
	start_rawvec "$EXPR"
	fill
	ctl 'fail 1.0'
	ctl "replace 1.0 $T/addr/n.img"
	wait_idle "rebuild of 1.0"
	grep -q 'member 1\.0 (.*n\.img of raid1): rebuild complete' "$RAWVEC_LOG" ||
		die "$CASE: the rebuild log does not name member 1.0: $(grep rebuild "$RAWVEC_LOG")"
	verify "after the rebuild"
	stop_rawvec
	cmp -s n.img d.img || die "$CASE: n.img differs from its mirror d.img"
fi

# ---- busy: one rebuild at a time -------------------------------------------------
if want busy; then
	# The rebuild of 0.1 reads its source mirror through sim(bw=1m): 2 MiB
	# take 2 s, time enough for the commands below.
	EXPR='raid0(raid1(sim(a.img, bw=1m), b.img), raid1(c.img, d.img), chunk=64k)'
	newcase busy "$EXPR"
	for m in a b c d; do make_image $m.img 2M; done
	start_rawvec "$EXPR"
	fill
	ctl 'fail 0.1'
	ctl 'fail 1.0'
	ctl "replace 0.1 $T/busy/n01.img"
	[ "$(state members.0.members.1.state)" = rebuilding ] || die "$CASE: 0.1 is not rebuilding"
	refused "replace 1.0 $T/busy/n10.img" 'a rebuild of member 0.1 is running'
	refused "replace 0.1 $T/busy/n01b.img" 'a rebuild of member 0.1 is running'
	[ "$(state members.0.members.1.state)" = rebuilding ] ||
		die "$CASE: the rebuild of 0.1 ended before the second replace was tried (a slower sim() needed)"
	[ -e n10.img ] || [ -e n01b.img ] && die "$CASE: a refused replace created an image"
	wait_idle "rebuild of 0.1"
	grep -q 'member 0\.1 (.*n01\.img of raid1): rebuild complete' "$RAWVEC_LOG" ||
		die "$CASE: the rebuild log does not name member 0.1: $(grep rebuild "$RAWVEC_LOG")"
	ctl "replace 1.0 $T/busy/n10.img"
	wait_idle "rebuild of 1.0"
	grep -q 'member 1\.0 (.*n10\.img of raid1): rebuild complete' "$RAWVEC_LOG" ||
		die "$CASE: the rebuild log does not name member 1.0: $(grep rebuild "$RAWVEC_LOG")"
	verify "after both rebuilds"
	stop_rawvec
	cmp -s n01.img a.img || die "$CASE: n01.img differs from its mirror a.img"
	cmp -s n10.img d.img || die "$CASE: n10.img differs from its mirror d.img"
fi

# ---- hopeless: rebuilds that cannot succeed ---------------------------------------
if want hopeless; then
	newcase hopeless 'raid5 with 2 failed, raid6 with 3, raid1 with 2'
	for m in a b c d e; do make_image $m.img 4M; done
	start_rawvec 'raid5(a.img, b.img, c.img, d.img, chunk=16k)'
	ctl 'fail 1'
	ctl 'fail 2'
	refused "replace 1 $T/hopeless/n.img" 'raid5 has 2 failed members'
	refused "replace 1 $T/hopeless/n.img" 'raid5 has 2 failed members'
	refused "replace 2 $T/hopeless/n.img" 'raid5 has 2 failed members'
	[ -e n.img ] && die "$CASE: a refused replace created n.img"
	stop_rawvec
	start_rawvec 'raid6(a.img, b.img, c.img, d.img, e.img, chunk=16k)'
	ctl 'fail 0'
	ctl 'fail 3'
	ctl 'fail 4'
	refused "replace 3 $T/hopeless/n.img" 'raid6 has 3 failed members'
	stop_rawvec
	start_rawvec 'raid1(a.img, b.img)'
	ctl 'fail 0'
	ctl 'fail 1'
	refused "replace 0 $T/hopeless/n.img" 'raid1 has 2 failed members'
	[ -e n.img ] && die "$CASE: a refused replace created n.img"
	stop_rawvec
fi

# ---- mount: paths into the mount itself --------------------------------------------
if want mount; then
	newcase mount 'raid5(a.img, b.img, c.img, d.img, chunk=16k)'
	for m in a b c d; do make_image $m.img 8M; done
	start_rawvec -o control_timeout=2s 'raid5(a.img, b.img, c.img, d.img, chunk=16k)'
	fill
	ctl 'fail 1'
	keep a.img c.img d.img
	ln -s "$MNT/disk" to-disk
	ln -s "$MNT/nothing.img" dangling
	refused "replace 1 $MNT/disk" 'inside this rawvec mount'
	refused "replace 1 $MNT/stats" 'inside this rawvec mount'
	refused "replace 1 $MNT/control" 'inside this rawvec mount'
	refused "replace 1 $MNT/new.img" 'would be created inside this rawvec mount'
	refused "replace 1 $MNT/../mnt/disk" 'inside this rawvec mount'
	refused 'replace 1 to-disk' 'inside this rawvec mount'
	refused 'replace 1 dangling' 'would be created inside this rawvec mount'
	refused "replace 1 linear($MNT/disk)" 'inside this rawvec mount'
	# A second rawvec mount over this one's disk, and a loop device.
	MNT2=$T/mnt2
	mkdir "$MNT2"
	at_exit "fusermount3 -uz '$MNT2'; umount -l '$MNT2'"
	"$RAWVEC" -f "$(transport_opt)" "$MNT2" "$MNT/disk" >"$T/rawvec2.log" 2>&1 &
	PID2=$!
	at_exit "kill -CONT $PID2; kill -9 $PID2"
	for i in $(seq 100); do
		timeout 5 stat "$MNT2/disk" >/dev/null 2>&1 && mountpoint -q "$MNT2" && break
		sleep 0.1
	done
	mountpoint -q "$MNT2" || die "$CASE: the second rawvec did not mount: $(cat "$T/rawvec2.log")"
	refused "replace 1 $MNT2/disk" "the rawvec mount at $MNT2"
	LOOP=$(losetup -f --show "$MNT/disk") || die "$CASE: losetup over $MNT/disk"
	track_loop "$LOOP"
	refused "replace 1 $LOOP" 'loop device'
	losetup -d "$LOOP"
	# A replace stuck on a hung mount: the daemon serves meanwhile, and
	# the replace gives up with EINVAL.
	kill -STOP "$PID2"
	timeout 60 bash -c 'echo "$1" >"$2"' _ "replace 1 $MNT2/disk" "$MNT/control" 2>"$T/stuck.err" &
	STUCK=$!
	sleep 0.5
	alive "while a replace waits on a hung mount"
	timeout 10 dd if="$D" iflag=direct bs=1M count=4 status=none | cmp -s - <(head -c 4M "$MODEL") ||
		die "$CASE: reading the disk while a replace waits on a hung mount"
	# Giving up after control_timeout=2s is the control path's own timer,
	# the same whatever the transport: waited for on uring; on dev the
	# hung mount comes back instead, and the replace, which then opens it,
	# is refused.
	[ "$TRANSPORT" = dev ] && kill -CONT "$PID2"
	wait "$STUCK"
	rc=$?
	[ $rc = 124 ] && die "$CASE: a replace stuck on a hung mount never returned"
	[ $rc = 0 ] && die "$CASE: a replace onto a hung mount was accepted"
	[ "$TRANSPORT" = dev ] || grep -q "given up after 2000 ms" "$RAWVEC_LOG" ||
		die "$CASE: no log line for the replace given up after 2000 ms: $(grep -m1 "given up" "$RAWVEC_LOG")"
	kill -CONT "$PID2"
	alive "after the given-up replace"
	[ "$(state members.1.state)" = failed ] || die "$CASE: member 1 is $(state members.1.state) after the given-up replace"
	fusermount3 -u "$MNT2" || die "$CASE: unmounting the second rawvec"
	wait "$PID2"
	unchanged a.img c.img d.img
	verify "after the refused replaces"
	# A good replace followed by a bad line: the first is carried out, the
	# write fails.
	printf 'replace 1 %s\nfail 7\n' "$T/mount/n.img" >"$T/two"
	timeout 30 dd if="$T/two" of="$MNT/control" bs=4k status=none 2>"$T/ctl.err" &&
		die "$CASE: a write with a bad second line succeeded"
	grep -q "member 1 of raid5 replaced by $T/mount/n.img" "$RAWVEC_LOG" ||
		die "$CASE: the replace before the bad line was not carried out"
	grep -q "'fail 7': " "$RAWVEC_LOG" || die "$CASE: the bad line was not logged"
	wait_idle "rebuild of n.img"
	verify "after the rebuild"
	stop_rawvec
	ref mdcheck raid5 $((16 * K)) "$MODEL" a.img n.img c.img d.img || die "$CASE: member images"
fi

# ---- stop: SIGTERM while a replace waits on a silent server ------------------------
if want stop; then
	newcase stop 'raid1(a.img, b.img)'
	make_image a.img 8M
	make_image b.img 8M
	# Accepts connections and never says a word: the NBD handshake waits.
	"$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
held = []
while True:
    held.append(s.accept()[0])
' "$T/stop/silent.sock" &
	track_pid $!
	for i in $(seq 100); do [ -S "$T/stop/silent.sock" ] && break; sleep 0.05; done
	start_rawvec -o control_timeout=60s 'raid1(a.img, b.img)'
	fill
	ctl 'fail 1'
	timeout 90 bash -c 'echo "$1" >"$2"' _ \
		"replace 1 nbd(nbd+unix:///?socket=$T/stop/silent.sock)" "$MNT/control" \
		2>"$T/stuck.err" &
	STUCK=$!
	sleep 0.5
	alive "while a replace waits on a silent server"
	kill -TERM "$RAWVEC_PID"
	wait_rawvec_exit 5
	[ "$RAWVEC_STATUS" = 0 ] || die "$CASE: rawvec exited $RAWVEC_STATUS after SIGTERM"
	wait "$STUCK"
	rc=$?
	[ $rc = 124 ] && die "$CASE: the replace write never returned"
	[ $rc = 0 ] && die "$CASE: the replace onto a silent server was accepted"
	grep -q "given up while checking and opening the path: rawvec is stopping" "$RAWVEC_LOG" ||
		die "$CASE: no log line for the replace given up at the stop: $(grep -m1 "given up" "$RAWVEC_LOG")"
	cmp -s a.img "$MODEL" || die "$CASE: a.img does not hold the model after the stop"
	log "$CASE: stopped within 5 s with a replace waiting on a silent server"
fi

# ---- startup: members inside the mountpoint -----------------------------------------
if want startup; then
	newcase startup 'members inside the mountpoint at start-up'
	make_image a.img 8M
	mkdir mp
	ln -s mp mp-link
	ln -s mp/y.img dangling
	at_exit "fusermount3 -uz '$T/startup/mp'"
	for target in "$T/startup/mp/disk" 'raid1(a.img, mp/x.img)' 'raid1(a.img, mp-link/x.img)' \
		'raid1(a.img, dangling)'; do
		timeout 30 "$RAWVEC" "$(transport_opt)" --create 8m "$T/startup/mp" "$target" >"$T/start.out" 2>&1
		rc=$?
		mountpoint -q mp && fusermount3 -u mp
		[ $rc = 2 ] || die "$CASE: $target: exit $rc, expected 2: $(cat "$T/start.out")"
		grep -q 'inside the mountpoint' "$T/start.out" || die "$CASE: $target: $(cat "$T/start.out")"
		[ -z "$(ls -A mp)" ] || die "$CASE: $target: created $(ls -A mp) in the mountpoint"
		log "$CASE: exit 2: $target"
	done
fi

log "pass (${SECONDS}s)"
