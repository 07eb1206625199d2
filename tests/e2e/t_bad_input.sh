#!/bin/bash
# Every bad input exits 2 with a message on stderr that names the thing,
# mounts nothing, and creates or damages nothing: the work directory's
# listing (names, sizes, mtimes) and the image's bytes are the same after
# every case.  Target errors are tried in the foreground and daemon modes
# (the daemon's parent must pass the child's code on).
. "$(dirname "$0")/lib.sh"
requires setpriv md5sum

W=$T/w # everything a bad invocation could touch lives here
mkdir "$W" "$W/dir" "$W/rodir" "$W/busy"
chmod 755 "$T" "$MNT" "$W"
make_image "$W/img" 16M random
make_image "$W/rodir/img" 16M
: >"$W/empty"
head -c 1000 /dev/urandom >"$W/odd1000"
head -c 4097 /dev/urandom >"$W/odd4097"
echo file >"$W/afile"
cp "$W/img" "$W/noaccess"
chmod 000 "$W/noaccess"
sum0=$(md5sum "$W/img" | cut -d' ' -f1)

# Names, types, sizes and mtimes; a directory's own mtime is left out: a
# refused --create removes the file it made, which touches the directory.
snapshot()
{
	find "$W" -mindepth 1 \( -type d -printf '%p d\n' \) -o \
		-printf '%p %y %s %T@\n' | sort
}

# The read-only bind mount makes $W/rodir/img unwritable even for root.
mount --bind "$W/rodir" "$W/rodir" && track_mount "$W/rodir" &&
	mount -o remount,bind,ro "$W/rodir" || die "read-only bind mount"
# An immutable file cannot be opened for writing, even by root.
immutable=0
cp "$W/img" "$W/immutable"
if chattr +i "$W/immutable" 2>/dev/null; then
	immutable=1
	at_exit "chattr -i '$W/immutable'"
fi
snapshot >"$T/before"

ncase=0
failures=()
# bad_fail MSG: note a failed case and go on with the others.
bad_fail()
{
	echo "FAIL: $*"
	failures+=("$*")
}

# bad WORD [as_nobody] -- ARGS...: rawvec ARGS exits 2, says WORD on stderr.
bad()
{
	local word=$1 pre=() rc
	shift
	if [ "$1" = as_nobody ]; then
		pre=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		shift
	fi
	[ "$1" = -- ] && shift
	ncase=$((ncase + 1))
	timeout 20 "${pre[@]}" "$RAWVEC" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT"
		die "rawvec $*: mounted $MNT (exit $rc)"
	fi
	snapshot >"$T/after"
	diff "$T/before" "$T/after" >"$T/diff" ||
		die "rawvec $*: changed the work directory: $(cat "$T/diff")"
	if [ $rc != 2 ]; then
		bad_fail "rawvec $*: exit $rc, want 2; stderr: $(cat "$T/err")"
	elif ! [ -s "$T/err" ]; then
		bad_fail "rawvec $*: exit 2 but nothing on stderr"
	elif ! grep -qiF -- "$word" "$T/err"; then
		bad_fail "rawvec $*: stderr does not name '$word': $(head -1 "$T/err")"
	else
		log "ok: rawvec $* -> 2: $(head -1 "$T/err")"
	fi
}

# bad_target WORD ARGS...: both with -f and as a daemon.
bad_target()
{
	local word=$1
	shift
	bad "$word" -- -f "$@"
	bad "$word" -- "$@"
}

# Targets.
bad_target "$W/nope" "$MNT" "$W/nope"
[ -e "$W/nope" ] && die "a missing target was created"
bad_target "$W/dir" "$MNT" "$W/dir"
bad_target "$W/rodir/img" "$MNT" "$W/rodir/img"
[ $immutable = 1 ] && bad_target "$W/immutable" "$MNT" "$W/immutable"
bad "$W/noaccess" as_nobody -- -f "$MNT" "$W/noaccess"
bad_target "$W/empty" "$MNT" "$W/empty"
bad_target "$W/odd1000" "$MNT" "$W/odd1000"
bad_target "$W/odd4097" "$MNT" "$W/odd4097"
bad_target "/dev/null" "$MNT" /dev/null
# --create SIZE that cannot be a disk: created, refused, removed again.
bad_target "$W/new1000" --create 1000 "$MNT" "$W/new1000"

# Mountpoints.
bad "$W/nomnt" -- -f "$W/nomnt" "$W/img"
bad "$W/afile" -- -f "$W/afile" "$W/img"
bad "$W/nomnt" -- -f --create 16m "$W/nomnt" "$W/new"
# Members too small for the chunk: refused, and no "new array" said first.
bad "smaller than one chunk" -- -f --create 100k "$MNT" "raid5($W/c0.img, $W/c1.img, $W/c2.img, chunk=64k)"
grep -q "new array" "$T/err" && bad_fail "--create 100k of a raid5 said 'new array' before refusing it: $(head -1 "$T/err")"
mount -t tmpfs -o size=1m rawvec-e2e "$W/busy" && track_mount "$W/busy" || die "tmpfs on $W/busy"
bad "$W/busy" -- -f "$W/busy" "$W/img"
umount "$W/busy" && untrack_mount "$W/busy"

# Options.
bad bogus -- --bogus "$MNT" "$W/img"
bad "-x" -- -x "$MNT" "$W/img"
bad bogus -- -o bogus "$MNT" "$W/img"
bad pool -- -o pool=12x "$MNT" "$W/img"
bad pool -- -f -o pool=1m "$MNT" "$W/img"  # too small for anything
bad pool -- -f -o pool=2g "$MNT" "$W/img"  # over the 1 GiB a registered buffer may be
bad threads -- -o threads=0 "$MNT" "$W/img"
bad threads -- -o threads=many "$MNT" "$W/img"
bad threads -- -o threads=65 "$MNT" "$W/img"
bad pin -- -o pin=maybe "$MNT" "$W/img"
bad control_timeout -- -o control_timeout=500ms "$MNT" "$W/img"
bad control_timeout -- -o control_timeout=3601s "$MNT" "$W/img"
bad control_timeout -- -o control_timeout=2h "$MNT" "$W/img"
bad control_timeout -- -o control_timeout= "$MNT" "$W/img"
bad MOUNTPOINT -- -f "$MNT"
bad MOUNTPOINT -- -f "$MNT" "$W/img" extra
for size in 0 12x -5 99999999999t 18446744073709551616 ''; do
	bad create -- -f --create "$size" "$MNT" "$W/new"
	[ -e "$W/new" ] && die "--create '$size' created $W/new"
done
# A missing argument must name the long option the user typed.
bad --create -- --create
bad --transport -- --transport
bad bogus -- -f --transport=bogus "$MNT" "$W/img"

# --transport=uring while the kernel does not offer the ring.
if [ -w "$URING_PARAM" ]; then
	uring_set N
	bad uring -- -f --transport=uring "$MNT" "$W/img"
	# auto falls back to /dev/fuse meanwhile.
	start_rawvec --transport=auto "$W/img"
	[ "$(stat_value transport)" = dev ] || die "auto with enable_uring=N: transport $(stat_value transport)"
	stop_rawvec
	RAWVEC_LOG=
	echo "$_URING_RESTORE" >"$URING_PARAM"
	snapshot >"$T/before" # the mount itself updated nothing, but be exact
else
	log "no writable $URING_PARAM: --transport=uring with the ring off not tried"
fi

# --enable-uring needs root.
bad enable-uring as_nobody -- -f --enable-uring "$MNT" "$W/img"

[ "$(md5sum "$W/img" | cut -d' ' -f1)" = "$sum0" ] || die "the image's bytes changed"
if [ ${#failures[@]} != 0 ]; then
	printf 'FAIL: %s\n' "${failures[@]}"
	die "${#failures[@]} of $ncase cases failed"
fi
log "pass ($ncase cases)"
