#!/bin/sh
# run: mount rawvec on a default 1 GiB image (./demo.img) at ./mnt so a
# newcomer sees it work; `make stop` (or scripts/run.sh --stop) unmounts.
cd "$(dirname "$0")/.." || exit 1
MNT=${MNT:-mnt}
IMG=${IMG:-demo.img}
SIZE=${SIZE:-1g}

if [ "$1" = "--stop" ]; then
	fusermount3 -u "$MNT" && echo "rawvec: unmounted $MNT"
	exit
fi
mkdir -p "$MNT"
if mountpoint -q "$MNT"; then
	echo "rawvec: $MNT is already mounted; 'make stop' unmounts it" >&2
	exit 1
fi
extra=""
# The ring transport needs the fuse module's enable_uring (kernel 6.14+).
[ "$(id -u)" = 0 ] && [ -e /sys/module/fuse/parameters/enable_uring ] && extra="--enable-uring"
./build/rawvec --create "$SIZE" $extra "$MNT" "$IMG" || exit
echo
ls -l "$MNT"
echo
echo "== $MNT/stats"
cat "$MNT/stats"
cat <<EOT

rawvec is serving $IMG as $MNT/disk. Try:
  dd if=/dev/urandom of=$MNT/disk bs=1M count=64 oflag=direct conv=notrunc
  fio --name=t --filename=$MNT/disk --rw=randread --bs=4k --iodepth=32 \\
      --ioengine=io_uring --direct=1 --runtime=10 --time_based
  mkfs.ext4 -F $MNT/disk && mkdir -p /tmp/x && mount -o loop $MNT/disk /tmp/x
  cat $MNT/stats
  build/rawvec stat $MNT          # live per-device table, Ctrl-C to quit
Unmount with 'make stop' (unmount /tmp/x first if you mounted it).
EOT
