#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench: boots the guest once and runs the benchmarks (common.sh, through
# guest.sh) on ext4 (data=ordered and data=journal), kernel xv6fs, FUSE xv6fs (the
# static FUSE build, in the guest) and tmpfs, each on its own virtio disk of the same
# size and kind; then the same benchmarks on the host (host.sh, no emulation: needs
# root) on host ext4 (data=ordered, loop device), FUSE xv6fs and tmpfs; then reports
# (report.py): bench.json, bench.md (ratios to ext4 data=ordered of the same run, guest
# and host; the memory-pressure check), bench.png.
# Usage: bench.sh [--quick] [--reps N] [--fs "NAMES"] [--host-only | --no-host]
#   --quick      tiny sizes, one repetition, no plot: make check's smoke test (it checks
#                that every figure came out); prints "N passed, N failed" last
#   --reps       repetitions (default 3; the report gives median, min and max)
#   --fs         the file systems (the host runs those of them it can)
#   --host-only  only the host part (no kernel build, no guest), into bench-host/
#   --no-host    only the guest part
# Output: $BENTO_CACHE/bench/ (bench-quick/ for --quick, bench-host[-quick]/ for
# --host-only), also printed.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$BENTO_ROOT"

mode=full reps=3 fses="ext4-ordered ext4-journal xv6fs fuse-xv6fs tmpfs" guest=1 host=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) mode=quick reps=1 ;;
	--reps) reps=$2; shift ;;
	--fs) fses=$2; shift ;;
	--host-only) guest= ;;
	--no-host) host= ;;
	*) echo "usage: bench.sh [--quick] [--reps N] [--fs NAMES] [--host-only | --no-host]" >&2
		exit 2 ;;
	esac
	shift
done
for fs in $fses; do
	case $fs in
	ext4-ordered | ext4-journal | xv6fs | fuse-xv6fs | tmpfs) ;;
	*) echo "bench.sh: unknown file system $fs" >&2; exit 2 ;;
	esac
done
[ -n "$guest$host" ] || { echo "bench.sh: --host-only and --no-host: nothing to run" >&2; exit 2; }
# The host runs those of ext4 data=ordered (its base), FUSE xv6fs and tmpfs asked for.
hfses=
for fs in $fses; do
	case $fs in ext4-ordered | fuse-xv6fs | tmpfs) hfses="$hfses $fs" ;; esac
done
hfses=${hfses# }
if [ -n "$host" ] && [ "$(id -u)" != 0 ]; then
	log "no host benchmarks: they need root (loop devices, mounts, drop_caches)"
	host=
fi
[ -n "$hfses" ] || host=
[ -n "$guest$host" ] || { echo "bench.sh: nothing to run on the host" >&2; exit 2; }
out=$BENTO_CACHE/bench
[ -n "$guest" ] || out=$out-host
[ "$mode" = quick ] && out=$out-quick
mkdir -p "$out"
rm -rf "$out/results" "$out/host-results"
size=3G
[ "$mode" = quick ] && size=256M

bash tools/testing/bento/deps.sh
[ -n "$guest" ] && bash tools/testing/bento/build-kernel.sh
[ "$mode" = full ] && ! python3 -c 'import matplotlib' 2>/dev/null && {
	log "installing python3-matplotlib (the plot)"
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		python3-matplotlib >/dev/null
}

# The guest part: results in $out/results; status 1 unless every benchmark gave its
# figure. (Not a function's status: "run_guest || ..." would turn set -e off in it.)
run_guest() {
	local share fs img disks tree
	share=$(mktemp -d "${TMPDIR:-/tmp}/bento-bench.XXXXXX")
	# shellcheck disable=SC2064 # $share now: it is local
	trap "rm -rf '$share'" EXIT
	mkdir -p "$share/bench" "$share/results"
	cp tools/testing/bento/bench/guest.sh tools/testing/bento/bench/common.sh "$share/bench/"
	cp "$BENTO_TOOLS/bin/fio" "$share/bench/"
	gcc -static -O2 -Wall -pthread -o "$share/bench/bench_meta" tools/testing/bento/bench/meta.c
	gcc -static -O2 -Wall -o "$share/bench/upgrade_load" \
		tools/testing/selftests/filesystems/bento/upgrade_load.c
	# A real source tree to untar: the kernel's fs/ (2500 files, 52 MB); quick: fs/ext2.
	tree=fs
	[ "$mode" = quick ] && tree=fs/ext2
	tar cf "$share/bench/tree.tar" -C "$KSRC" "$tree"
	# The same tree as a git repository to clone (git.sh: one commit, one pack), and the
	# host's git with its libraries for the guest.
	bash tools/testing/bento/bench/git.sh repo "$share/bench/clone.git" "$KSRC" "$tree"
	bash tools/testing/bento/bench/git.sh guest "$share/bench/git"

	# One disk per file system, the same size and kind (raw, virtio, host page cache).
	# mkfs.xv6fs: the guest's static build (guest-tools.sh; guest.sh would build it only
	# after the disks are made, on a fresh machine).
	bash tools/testing/bento/guest-tools.sh
	disks=""
	for fs in $fses; do
		[ "$fs" = tmpfs ] && continue
		img=$out/$fs.img
		bench_image "$img" "$size" || { log "cannot make $img"; exit 1; }
		case $fs in
		ext4-*) mkfs.ext4 -q -F -E nodiscard "$img" ;;
		*xv6fs) "$BENTO_CACHE/guest-bin/mkfs.xv6fs" -q "$img" 2>/dev/null ||
			target/debug/mkfs-xv6fs -q "$img" ;;
		esac
		# The serial says which disk is which ("bench-" + name: guest.sh's own disks are
		# "scratch" and "xv6fs").
		disks="$disks $img,serial=bench-$fs,cache=writeback"
	done

	log "guest benchmarks ($mode, $reps repetition(s)): $fses"
	# Progress: the guest's "bench:" lines as they come (the whole console goes to a log).
	set +e
	BENTO_NO_SETUP=1 BENTO_SHARE=$share BENTO_EXTRA_DISKS=$disks BENTO_MEM=2G \
		BENTO_TIMEOUT=$([ "$mode" = quick ] && echo 900 || echo 7200) \
		bash tools/testing/bento/guest.sh "sh /host/bench/guest.sh $mode $reps '$fses'" 2>&1 |
		tee "$out/guest-console.log" | grep --line-buffered '^bench:'
	[ "${PIPESTATUS[0]}" = 0 ] || status=1
	set -e
	cp -r "$share/results" "$out/results"
	rm -rf "$share"
	trap - EXIT
	rm -f "$out"/*.img
}

status=0
if [ -n "$guest" ]; then
	run_guest
fi
if [ -n "$host" ]; then
	log "host benchmarks, no emulation ($mode, $reps repetition(s)): $hfses"
	bash tools/testing/bento/bench/host.sh "$mode" "$reps" "$hfses" "$out" "$size" || status=1
fi
args=(-)
[ -n "$guest" ] && args=("$out/results")
args+=("$out" --fs "$fses")
[ "$mode" = quick ] && args+=(--check)
[ -n "$host" ] && args+=(--host "$out/host-results" --host-fs "$hfses")
python3 tools/testing/bento/bench/report.py "${args[@]}" || status=1
exit "$status"
