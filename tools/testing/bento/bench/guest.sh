#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest part of make bench (bench.sh boots the guest once and runs this):
#   sh /host/bench/guest.sh MODE REPS FSES
# For each file system of FSES (ext4-ordered ext4-journal xv6fs fuse-xv6fs tmpfs), on
# its own virtio disk (bench.sh made them all the same size and kind; serial
# bench-NAME): the benchmarks of common.sh (the same as host.sh runs on the host), REPS
# repetitions each, in rounds (common.sh's bench_all); for kernel xv6fs also the live upgrade pause under load; for ext4
# (data=ordered, the reference), kernel and FUSE xv6fs the memory-pressure check
# (common.sh's pressure). Results go to /host/results (see common.sh), with memory
# figures (kernel slab and page cache after each benchmark; the FUSE daemon's peak RSS).
# MODE quick makes everything tiny (make check's smoke test). git: the host's, with its
# shared libraries and loader (bench.sh, git.sh guest), in /opt/git; the repository to
# clone (git.sh repo) is copied to /tmp (tmpfs) first.
set -u
B=/host/bench
R=/host/results
M=/mnt/bench
PATH=$B:/host/bin:$PATH
mode=${1:-quick} reps=${2:-1} fses=${3:-ext4-ordered ext4-journal xv6fs fuse-xv6fs tmpfs}
SWITCHES=6
[ "$mode" = full ] && SWITCHES=40
mkdir -p "$M" "$R"
: >"$R/bench.jsonl"
# shellcheck disable=SC2034 # for common.sh
KMEM=1 WHERE=
# disk_by_serial, sb_sysfs_dir (and the kselftests' harness, unused here: its fail and
# pass are replaced by common.sh's, sourced after it).
. /host/selftests/filesystems/bento/bento_lib.sh
. "$B/common.sh"
disk() { disk_by_serial "bench-$1"; } # file system -> its disk (see bench.sh)

# The host's git (dynamically linked): its loader where its PT_INTERP says, its
# libraries in /opt/git/lib, and a wrapper on PATH that points the loader at them and
# git at its exec path (git itself and git-upload-pack, which a local clone runs).
git_setup() {
	g=$B/git
	[ -f "$g/git" ] && [ -f "$g/interp" ] && [ -d "$B/clone.git" ] || return 1
	interp=$(cat "$g/interp")
	mkdir -p "${interp%/*}" /opt/git/lib /opt/git/libexec /opt/git/bin || return 1
	cp "$g/lib/${interp##*/}" "$interp" && cp "$g"/lib/* /opt/git/lib/ &&
		cp "$g/git" /opt/git/libexec/git || return 1
	ln -sf git /opt/git/libexec/git-upload-pack
	printf '#!/bin/sh\n%s\n%s\n' 'export LD_LIBRARY_PATH=/opt/git/lib' \
		'GIT_EXEC_PATH=/opt/git/libexec exec /opt/git/libexec/git "$@"' >/opt/git/bin/git
	chmod 755 /opt/git/bin/git
	PATH=/opt/git/bin:$PATH
	v=$(git --version 2>&1) || { say "git: $v"; return 1; }
	say "$v"
	rm -rf /tmp/clone.git
	cp -r "$B/clone.git" /tmp/clone.git || return 1
	GITREPO=/tmp/clone.git
}
# shellcheck disable=SC2034 # for common.sh
GITREPO=
git_setup || fail "no git in the guest (bench.sh: git.sh guest)"

mount_fs() { # fs
	if [ "$1" != tmpfs ] && [ -z "$(disk "$1")" ]; then
		say "$1: no disk"
		return 1
	fi
	case $1 in
	ext4-ordered) mount -t ext4 -o data=ordered "$(disk "$1")" "$M" ;;
	ext4-journal) mount -t ext4 -o data=journal "$(disk "$1")" "$M" ;;
	xv6fs) modprobe xv6fs && mount -t xv6fs "$(disk "$1")" "$M" ;;
	fuse-xv6fs)
		xv6fs -f "$(disk "$1")" "$M" 2>"$R/fuse-xv6fs.log" &
		fusepid=$!
		n=0
		until grep -q " $M fuse" /proc/mounts; do
			n=$((n + 1))
			[ "$n" -lt 100 ] || return 1
			sleep 0.1
		done ;;
	tmpfs) mount -t tmpfs -o size=1g none "$M" ;;
	*) say "unknown file system $1"; return 1 ;;
	esac
}
umount_fs() {
	umount "$M" || return 1
	if [ -n "$fusepid" ]; then
		wait "$fusepid"
		fusepid=
	fi
}

# The pause of live upgrades (xv6fs v1 <-> v2, both loaded) under upgrade_load.
upgrade_pause() {
	if [ ! -x "$B/upgrade_load" ] || ! modprobe xv6fs_v2; then
		fail "no xv6fs_v2 or upgrade_load"
		return
	fi
	dir=/sys/fs/bento/xv6fs
	sb=$(sb_sysfs_dir xv6fs "$M")
	rm -f /tmp/bench-stop
	"$B/upgrade_load" "$M" /tmp/bench-stop >/tmp/bench-load 2>&1 &
	load=$!
	sleep 1
	n=0
	while [ "$n" -lt "$SWITCHES" ]; do
		for v in 1 2; do
			if ! echo "$v" >"$dir/downgrade"; then
				fail "upgrade switch to $v"
				break 2
			fi
			emit xv6fs upgrade-pause "$n" "$(cat "$sb/last_pause_ns")" ns
		done
		n=$((n + 1))
	done
	touch /tmp/bench-stop
	wait "$load" || fail "upgrade_load: $(cat /tmp/bench-load)"
	emit xv6fs upgrade-load-median-op 0 "$(awk '/^ops/ { print $6 }' /tmp/bench-load)" ns
	# Back to version 1 alone.
	echo 1 >"$dir/downgrade"
	rmmod xv6fs_v2 || fail "rmmod xv6fs_v2"
}

after_fs() {
	[ "$1" != xv6fs ] || upgrade_pause
	case $1 in ext4-ordered | xv6fs | fuse-xv6fs) pressure "$1" ;; esac
}

bench_all "$fses" "$reps"
dmesg >"$R/dmesg.txt"
check-dmesg.sh "$R/dmesg.txt" >"$R/dmesg-check.txt" || fail "kernel log: $(head -n 3 "$R/dmesg-check.txt")"
# shellcheck disable=SC2154 # failures: common.sh counts them
say "$failures failures"
[ "$failures" = 0 ]
