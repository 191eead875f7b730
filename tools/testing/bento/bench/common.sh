# SPDX-License-Identifier: GPL-2.0
# The benchmarks of make bench, the same in the guest (guest.sh, busybox sh) and on the
# host (host.sh, bash): POSIX sh, sourced. The sourcing script sets
#   B      a directory holding tree.tar (the source tree to untar); fio and bench_meta
#          are on PATH
#   R      the results directory: bench.jsonl (one JSON object a measurement) and
#          fio-FS-BENCH-REP.json (fio's own JSON), read by report.py
#   M      the mount point
#   mode   full or quick (everything tiny: make check's smoke test)
#   KMEM   1: after each benchmark also the kernel's slab and page cache (the guest;
#          on the shared host they would measure everything else running there)
#   WHERE  "" or a prefix for the progress lines ("host: ")
# and defines mount_fs FS, umount_fs (fusepid: the FUSE daemon's pid while it runs; its
# peak RSS is recorded after each benchmark) and after_fs FS (after the repetitions of
# FS, before its unmount). Then: bench_all "FSES" REPS; $failures counts what failed.
# shellcheck shell=sh
# shellcheck disable=SC2034,SC2154 # sizes for the sourcing scripts too; mode is theirs
if [ "$mode" = full ]; then
	SZ=256m RIO=32m FSZ=2m FILES=4000
else
	SZ=8m RIO=2m FSZ=256k FILES=200
fi
failures=0
fusepid=

say() { echo "bench: $WHERE$*"; }
# "bench: FAILED" first: check.sh greps for it.
fail() { echo "bench: FAILED: $WHERE$*"; failures=$((failures + 1)); }
emit() { # fs bench rep value unit
	printf '{"fs": "%s", "bench": "%s", "rep": %s, "value": %s, "unit": "%s"}\n' \
		"$1" "$2" "$3" "$4" "$5" >>"$R/bench.jsonl"
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }
meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
# After each benchmark: the kernel's slab and page cache (KMEM=1), the FUSE daemon's
# peak RSS (VmHWM: the peak since it started).
memory() { # fs bench rep
	if [ "$KMEM" = 1 ]; then
		emit "$1" "mem-slab:$2" "$3" "$(meminfo Slab)" kB
		emit "$1" "mem-cached:$2" "$3" "$(meminfo Cached)" kB
	fi
	# (Nothing if the daemon is gone: its benchmarks fail.)
	if [ -n "$fusepid" ] &&
		rss=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$fusepid/status" 2>/dev/null) &&
		[ -n "$rss" ]; then
		emit "$1" "mem-fuse-peak-rss:$2" "$3" "$rss" kB
	fi
}
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }

fio_run() { # fs name rep fio-args...
	fs=$1 name=$2 rep=$3
	shift 3
	if ! fio --name="$name" --directory="$M" --ioengine=psync --thread --output-format=json \
		--output="$R/fio-$fs-$name-$rep.json" "$@" >/dev/null 2>"$R/fio.err"; then
		fail "$fs $name: fio: $(tail -n 3 "$R/fio.err")"
	fi
	memory "$fs" "$name" "$rep"
}

# fio sequential write/read 1 MiB, random read 4 KiB cold and warm, random write 4 KiB,
# an fsync loop (4 KiB writes each followed by fsync), bench_meta (1 and 4 threads),
# untar of a source tree. fio runs with --thread: the guest kernel has no SysV IPC for
# its shared memory. "cold": after drop_caches (a FUSE daemon's own block cache stays).
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
		# Warm: the blocks randread-cold read (fio repeats its random sequence), and
		# fio must not drop the file's cached pages first (its invalidate=1 default
		# does, through fadvise; the guest kernel has no fadvise, the host's does).
		fio_run "$fs" randread-warm "$rep" $f --rw=randread --bs=4k --io_size="$RIO" \
			--invalidate=0
		fio_run "$fs" randwrite "$rep" $f --rw=randwrite --bs=4k --io_size="$RIO" \
			--end_fsync=1
	}
	rm -f "$M/bench.dat"
	fio_run "$fs" fsync-loop "$rep" --filename=fsync.dat --size="$FSZ" --rw=write --bs=4k \
		--fsync=1
	rm -f "$M/fsync.dat"
	for t in 1 4; do
		mkdir -p "$M/meta"
		if meta=$(bench_meta "$M/meta" "$FILES" "$t"); then
			for phase in create stat unlink; do
				emit "$fs" "meta-$phase-${t}t" "$rep" \
					"$(echo "$meta" | sed "s/.*\"$phase\": \([0-9.]*\).*/\1/")" ops/s
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

# Every file system of FSES, mounted once, REPS repetitions of bench_fs.
bench_all() { # fses reps
	all_fses=$1 all_reps=$2
	for fs_i in $all_fses; do
		if ! mount_fs "$fs_i"; then
			fail "$fs_i: mount"
			continue
		fi
		r=1
		while [ "$r" -le "$all_reps" ]; do
			say "$fs_i, repetition $r of $all_reps"
			bench_fs "$fs_i" "$r"
			r=$((r + 1))
		done
		after_fs "$fs_i"
		umount_fs || fail "$fs_i: umount"
	done
}
