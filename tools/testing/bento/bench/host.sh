#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The host part of make bench (bench.sh runs it after the guest run; bench.sh --host-only
# alone): the benchmarks of common.sh, the same as guest.sh runs, on the host, where no
# emulation distorts the cost of FUSE, on
#   ext4-ordered  ext4 (data=ordered; ext4-journal: data=journal) on a loop device over
#                 an image file (mkfs.ext4, as bench.sh makes the guest's)
#   fuse-xv6fs    the FUSE build of xv6fs on an image file: the static release build
#                 the guest runs (guest-tools.sh; cargo, Debian's toolchain)
#   tmpfs
# each image SIZE large, in OUT on the host's disk. No live-upgrade pause: that needs
# the Bento kernel modules, which the host kernel does not have (the guest measures it).
# Needs root (loop devices, mounts, drop_caches). The host may be shared: its kernel
# memory figures would measure everything else running, so only the FUSE daemon's peak
# RSS is recorded, and the memory-pressure check (common.sh's pressure) looks at the FUSE
# daemon alone. The repository git clone clones (git.sh repo) is on a tmpfs.
# Usage: host.sh MODE REPS FSES OUT SIZE
#   MODE full or quick (tiny), REPS repetitions; results in OUT/host-results (see
#   common.sh) with host.txt (the machine), for report.py --host.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$BENTO_ROOT"

[ $# = 5 ] || { echo "usage: host.sh MODE REPS FSES OUT SIZE" >&2; exit 2; }
mode=$1 reps=$2 fses=$3 out=$4 size=$5
for fs in $fses; do
	case $fs in
	ext4-ordered | ext4-journal | fuse-xv6fs | tmpfs) ;;
	*) echo "host.sh: $fs does not run on the host" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "host.sh: needs root (loop devices, mounts)" >&2; exit 2; }
[ -d "$KSRC/fs" ] || { echo "host.sh: no kernel tree in $KSRC (run 'make kernel')" >&2; exit 2; }

R=$out/host-results
bin=$BENTO_CACHE/guest-bin
work=$(mktemp -d "${TMPDIR:-/tmp}/bento-bench-host.XXXXXX")
B=$work/bench M=$work/mnt src=$work/src
loopdev='' fusepid=''
# Every mount, loop device and FUSE daemon goes, whatever happened.
cleanup() {
	set +e
	for m in "$M" "$src"; do
		if grep -q " $m " /proc/mounts; then
			umount "$m" 2>/dev/null || umount -l "$m"
		fi
	done
	[ -z "$loopdev" ] || losetup -d "$loopdev"
	if [ -n "$fusepid" ]; then
		kill "$fusepid" 2>/dev/null
		wait "$fusepid" 2>/dev/null
	fi
	rm -rf "$work"
	rm -f "$out"/host-*.img
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$B" "$M" "$src"
rm -rf "$R"
mkdir -p "$R"
: >"$R/bench.jsonl"

bash tools/testing/bento/guest-tools.sh
gcc -static -O2 -Wall -pthread -o "$B/bench_meta" tools/testing/bento/bench/meta.c
# The same tree as the guest untars: the kernel's fs/; quick: fs/ext2.
tree=fs
[ "$mode" = quick ] && tree=fs/ext2
tar cf "$B/tree.tar" -C "$KSRC" "$tree"
# The same tree as a git repository to clone, on a tmpfs (drop_caches leaves it there).
command -v git >/dev/null || { echo "host.sh: no git (run deps.sh)" >&2; exit 1; }
mount -t tmpfs -o size=256m none "$src"
bash tools/testing/bento/bench/git.sh repo "$src/clone.git" "$KSRC" "$tree"
GITREPO=$src/clone.git
PATH=$B:$BENTO_TOOLS/bin:$PATH
command -v fio >/dev/null || { echo "host.sh: no fio (run deps.sh)" >&2; exit 1; }

img() { echo "$out/host-$1.img"; }
for fs in $fses; do
	[ "$fs" = tmpfs ] && continue
	bench_image "$(img "$fs")" "$size" || { log "cannot make $(img "$fs")"; exit 1; }
	case $fs in
	ext4-*) mkfs.ext4 -q -F -E nodiscard "$(img "$fs")" ;;
	fuse-xv6fs) "$bin/mkfs.xv6fs" -q "$(img "$fs")" ;;
	esac
done

{
	echo "kernel: $(uname -r)"
	echo "cpus: $(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "memory: $(awk '$1 == "MemTotal:" { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "images on: $(findmnt -no FSTYPE,SOURCE -T "$out" | tr -s ' ')"
	echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$R/host.txt"

mount_fs() { # fs
	case $1 in
	ext4-*)
		loopdev=$(losetup -f --show "$(img "$1")") || return 1
		if ! mount -t ext4 -o "data=${1#ext4-}" "$loopdev" "$M"; then
			losetup -d "$loopdev"
			loopdev=
			return 1
		fi ;;
	fuse-xv6fs)
		"$bin/xv6fs" -f "$(img "$1")" "$M" 2>"$R/fuse-xv6fs.log" &
		fusepid=$!
		local n=0
		until grep -q " $M fuse" /proc/mounts; do
			n=$((n + 1))
			if [ "$n" -ge 100 ] || ! kill -0 "$fusepid" 2>/dev/null; then
				kill "$fusepid" 2>/dev/null
				wait "$fusepid"
				fusepid=
				return 1
			fi
			sleep 0.1
		done ;;
	tmpfs) mount -t tmpfs -o size=1g none "$M" ;;
	esac
}
umount_fs() {
	umount "$M" || return 1
	if [ -n "$loopdev" ]; then
		losetup -d "$loopdev"
		loopdev=
	fi
	if [ -n "$fusepid" ]; then
		wait "$fusepid"
		fusepid=
	fi
}
after_fs() { [ "$1" != fuse-xv6fs ] || pressure "$1"; }

# shellcheck disable=SC2034 # for common.sh
KMEM=0 WHERE="host: "
. tools/testing/bento/bench/common.sh
# The untar clock: nanoseconds (the guest's busybox date has no %N; /proc/uptime, 10 ms).
uptime_s() { date +%s.%N; }
say "no live-upgrade pause on the host (it needs the Bento kernel modules)"
# As in the guest, a failed benchmark is counted and the next one runs.
set +e
bench_all "$fses" "$reps"
set -e
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$R/host.txt"
say "$failures failures"
[ "$failures" = 0 ]
