#!/bin/bash
# Without -f and without -o log=FILE, the daemon logs to syslog (facility
# daemon, ident rawvec, with its pid) once it has detached: a refused
# control command's reason arrives there.  The syslog daemon is a small
# listener on /dev/log in a private mount namespace (a tmpfs /dev holding
# the devices rawvec needs), so the machine's own /dev/log, if any, sees
# nothing.
. "$(dirname "$0")/lib.sh"
requires unshare python3

mkdir "$T/olddev"
make_image "$T/img" 8M
cat >"$T/listen.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open(sys.argv[1] + ".ready", "w").close()
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\n") + b"\n")
PY
# The namespace lives as long as something runs in it: the inner script
# stops what it started; at exit we stop the daemon if it is still there.
at_exit '[ -s "$T/daemon.pid" ] && kill "$(cat "$T/daemon.pid")"'
cat >"$T/inner.sh" <<EOF
set -u
fail() { echo "FAIL: \$*"; exit 1; }
mount --make-rprivate / && mount --rbind /dev "$T/olddev" &&
	mount -t tmpfs -o mode=755 tmpfs /dev || fail "private /dev"
for n in null zero full random urandom fuse; do
	touch /dev/\$n && mount --bind "$T/olddev/\$n" /dev/\$n || fail "/dev/\$n"
done
ln -s /proc/self/fd /dev/fd
"$PYTHON" "$T/listen.py" "$T/syslog.txt" &
lpid=\$!
trap 'fusermount3 -uz "$MNT" 2>/dev/null; kill \$lpid' EXIT
for i in \$(seq 50); do [ -e "$T/syslog.txt.ready" ] && break; sleep 0.1; done
[ -S /dev/log ] || fail "no listener on /dev/log"
timeout 20 "$RAWVEC" --transport=dev "$MNT" "$T/img" >"$T/start.out" 2>&1 ||
	fail "daemon start: exit \$?: \$(cat "$T/start.out")"
pgrep -f -- "$MNT $T/img" >"$T/daemon.pid"
echo bogus >"$MNT/control" 2>/dev/null && fail "'bogus' was accepted"
for i in \$(seq 50); do grep -q "control: 'bogus'" "$T/syslog.txt" && break; sleep 0.1; done
fusermount3 -u "$MNT" || fail "fusermount3 -u"
for i in \$(seq 100); do kill -0 \$(cat "$T/daemon.pid") 2>/dev/null || break; sleep 0.1; done
sleep 0.2
exit 0
EOF
unshare -m bash "$T/inner.sh" || die "in the private namespace"
log "syslog got: $(tr '\n' '|' <"$T/syslog.txt")"
# <29>: facility daemon (3 << 3) and level notice (5).
grep -q "^<29>.* rawvec\[[0-9]*\]: control: 'bogus'" "$T/syslog.txt" ||
	die "syslog lacks why 'bogus' was refused: $(cat "$T/syslog.txt")"
grep -q "rawvec\[[0-9]*\]: $MNT unmounted, exit status 0" "$T/syslog.txt" ||
	die "syslog lacks the daemon's stop: $(cat "$T/syslog.txt")"
grep -q "control: 'bogus'" "$T/start.out" && die "the starter's stderr got a line from after the start"
log "pass"
