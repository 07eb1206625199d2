#!/bin/sh
# deps: install the Debian packages rawvec builds, tests and benchmarks with.
# Idempotent: only missing packages are fetched, and apt-get update runs only then.
set -e
PKGS="build-essential libfuse3-dev fuse3 liburing-dev check pkg-config fio e2fsprogs xfsprogs util-linux kmod python3 gnuplot-nox mdadm groff-base libnbd-dev nbdkit libnbd-bin"
[ "$1" = "--bench" ] && PKGS="$PKGS qemu-system-common"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "rawvec: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "rawvec: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
