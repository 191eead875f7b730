#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest part of make bench (bench.sh boots the guest once and runs this):
#   sh /host/bench/guest.sh MODE REPS FSES
# For each file system of FSES (ext4-ordered ext4-journal xv6fs fuse-xv6fs tmpfs), on
# its own virtio disk (bench.sh made them all the same size and kind; serial
# bench-NAME):
# fio sequential write/read 1 MiB, random read 4 KiB cold and warm, random write 4 KiB,
# the metadata benchmark (bench_meta, 1 and 4 threads), untar of a source tree, an
# fsync loop (fio, 4 KiB writes each followed by fsync); for kernel xv6fs also the live
# upgrade pause under load. REPS repetitions each. Results go to /host/results:
# bench.jsonl (one JSON object a measurement), fio-*.json (fio's own JSON), and
# (fio runs with --thread: the guest kernel has no SysV IPC for its shared memory) and
# memory figures (kernel slab and page cache after each benchmark; the FUSE daemon's
# peak RSS). MODE quick makes everything tiny (make check's smoke test).
set -u
B=/host/bench
R=/host/results
M=/mnt/bench
PATH=$B:/host/bin:$PATH
mode=${1:-quick} reps=${2:-1} fses=${3:-ext4-ordered ext4-journal xv6fs fuse-xv6fs tmpfs}
if [ "$mode" = full ]; then
	SZ=256m RIO=32m FSZ=2m FILES=4000 SWITCHES=40
else
	SZ=8m RIO=2m FSZ=256k FILES=200 SWITCHES=6
fi
mkdir -p "$M" "$R"
: >"$R/bench.jsonl"
failures=0
fusepid=

say() { echo "bench: $*"; }
fail() { say "FAILED: $*"; failures=$((failures + 1)); }
# disk_by_serial, sb_sysfs_dir (and the kselftests' harness, unused here).
. /host/selftests/filesystems/bento/bento_lib.sh
disk() { disk_by_serial "bench-$1"; } # file system -> its disk (see bench.sh)
emit() { # fs bench rep value unit
	printf '{"fs": "%s", "bench": "%s", "rep": %s, "value": %s, "unit": "%s"}\n' \
		"$1" "$2" "$3" "$4" "$5" >>"$R/bench.jsonl"
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }
meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
# After each benchmark: the kernel's slab and page cache, the FUSE daemon's peak RSS.
memory() { # fs bench rep
	emit "$1" "mem-slab:$2" "$3" "$(meminfo Slab)" kB
	emit "$1" "mem-cached:$2" "$3" "$(meminfo Cached)" kB
	if [ -n "$fusepid" ]; then
		emit "$1" "mem-fuse-peak-rss:$2" "$3" \
			"$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$fusepid/status")" kB
	fi
}
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }

mount_fs() { # fs
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

fio_run() { # fs name rep fio-args...
	fs=$1 name=$2 rep=$3
	shift 3
	if ! fio --name="$name" --directory="$M" --ioengine=psync --thread --output-format=json \
		--output="$R/fio-$fs-$name-$rep.json" "$@" >/dev/null 2>"$R/fio.err"; then
		fail "$fs $name: fio: $(tail -n 3 "$R/fio.err")"
	fi
	memory "$fs" "$name" "$rep"
}

bench_fs() { # fs rep
	fs=$1 rep=$2
	f="--filename=bench.dat --size=$SZ"
	# shellcheck disable=SC2086 # $f: two fio options
	{
		fio_run "$fs" seqwrite "$rep" $f --rw=write --bs=1m --end_fsync=1
		cold
		fio_run "$fs" seqread-cold "$rep" $f --rw=read --bs=1m
		cold
		fio_run "$fs" randread-cold "$rep" $f --rw=randread --bs=4k --io_size="$RIO"
		fio_run "$fs" randread-warm "$rep" $f --rw=randread --bs=4k --io_size="$RIO"
		fio_run "$fs" randwrite "$rep" $f --rw=randwrite --bs=4k --io_size="$RIO" \
			--end_fsync=1
	}
	rm -f "$M/bench.dat"
	fio_run "$fs" fsync-loop "$rep" --filename=fsync.dat --size="$FSZ" --rw=write --bs=4k \
		--fsync=1
	rm -f "$M/fsync.dat"
	for t in 1 4; do
		mkdir -p "$M/meta"
		if out=$(bench_meta "$M/meta" "$FILES" "$t"); then
			for phase in create stat unlink; do
				emit "$fs" "meta-$phase-${t}t" "$rep" \
					"$(echo "$out" | sed "s/.*\"$phase\": \([0-9.]*\).*/\1/")" ops/s
			done
		else
			fail "$fs bench_meta $t threads"
		fi
		rm -rf "$M/meta"
		memory "$fs" "meta-${t}t" "$rep"
	done
	mkdir -p "$M/untar"
	t0=$(uptime_s)
	if tar xf "$B/tree.tar" -C "$M/untar" && sync; then
		emit "$fs" untar "$rep" "$(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { print b - a }')" s
	else
		fail "$fs untar"
	fi
	memory "$fs" untar "$rep"
	rm -rf "$M/untar"
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

for fs in $fses; do
	if [ "$fs" != tmpfs ] && [ -z "$(disk "$fs")" ]; then
		fail "$fs: no disk"
		continue
	fi
	if ! mount_fs "$fs"; then
		fail "$fs: mount"
		continue
	fi
	r=1
	while [ "$r" -le "$reps" ]; do
		say "$fs, repetition $r of $reps"
		bench_fs "$fs" "$r"
		r=$((r + 1))
	done
	[ "$fs" = xv6fs ] && upgrade_pause
	umount_fs || fail "$fs: umount"
done
dmesg >"$R/dmesg.txt"
check-dmesg.sh "$R/dmesg.txt" >"$R/dmesg-check.txt" || fail "kernel log: $(head -n 3 "$R/dmesg-check.txt")"
say "$failures failures"
[ "$failures" = 0 ]
