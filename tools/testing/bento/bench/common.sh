# SPDX-License-Identifier: GPL-2.0
# The benchmarks of make bench, the same in the guest (guest.sh, busybox sh) and on the
# host (host.sh, bash): POSIX sh, sourced. The sourcing script sets
#   B      a directory holding tree.tar (the source tree to untar); fio, bench_meta
#          and git are on PATH
#   GITREPO the repository to clone (git.sh repo: the tree of tree.tar, one commit, one
#          pack), on a tmpfs; empty: no git (the git-clone benchmark fails)
#   R      the results directory: bench.jsonl (one JSON object a measurement) and
#          fio-FS-BENCH-REP.json (fio's own JSON), read by report.py
#   M      the mount point
#   mode   full or quick (everything tiny: make check's smoke test)
#   KMEM   1: after each benchmark also the kernel's slab and page cache (the guest;
#          on the shared host they would measure everything else running there)
#   WHERE  "" or a prefix for the progress lines ("host: ")
# and defines mount_fs FS, umount_fs (fusepid: the FUSE daemon's pid while it runs; its
# peak RSS is recorded after each benchmark) and after_fs FS (after the last repetition
# on FS, before its unmount; it may run pressure FS). Then: bench_all "FSES" REPS;
# $failures counts what failed.
# shellcheck shell=sh
# shellcheck disable=SC2034,SC2154 # sizes for the sourcing scripts too; mode is theirs
if [ "$mode" = full ]; then
	SZ=256m RIO=32m FSZ=2m FILES=12000 PFILES=50000
else
	SZ=8m RIO=2m FSZ=256k FILES=200 PFILES=1000
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
	if ! fio --name="$name" --directory="$M" --ioengine=psync --thread --disk_util=0 \
		--output-format=json --output="$R/fio-$fs-$name-$rep.json" "$@" >/dev/null \
		2>"$R/fio.err"; then
		fail "$fs $name: fio: $(tail -n 3 "$R/fio.err")"
	fi
	memory "$fs" "$name" "$rep"
}

# fio sequential write 1 MiB (seqwrite-alloc: into a new file, allocating as it goes;
# seqwrite: fio's default, which first lays the file out with fallocate, so the timed
# part overwrites), sequential read 1 MiB, random read 4 KiB cold and warm, random
# write 4 KiB,
# an fsync loop (4 KiB writes each followed by fsync), bench_meta (1 and 4 threads),
# untar of a source tree. fio runs with --thread: the guest kernel has no SysV IPC for
# its shared memory. "cold": after drop_caches (a FUSE daemon's own block cache stays).
# --disk_util=0: no disk statistics (unused), whose sysfs walk left some 600 sysfs
# inodes and dentries behind for tens of seconds, in the memory-pressure figures.
bench_fs() { # fs rep
	fs=$1 rep=$2
	f="--filename=bench.dat --size=$SZ"
	# shellcheck disable=SC2086 # $f: two fio options
	{
		fio_run "$fs" seqwrite-alloc "$rep" $f --rw=write --bs=1m --end_fsync=1 \
			--fallocate=none
		rm -f "$M/bench.dat"
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
	git_clone "$fs" "$rep"
}

# git clone of a local repository: GITREPO, on a tmpfs (not the file system under
# test), into the file system, timed with the sync after it. A local clone asks
# git-upload-pack (sh -c) for the references, copies the pack and its index
# (--no-hardlinks: another file system anyway) and checks the tree out; then git status
# must find the checkout clean. No system or user configuration; an identity for the
# reflog.
git_clone() { # fs rep
	if [ -z "${GITREPO:-}" ]; then
		fail "$1 git-clone: no git"
		return
	fi
	t0=$(uptime_s)
	if GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_COMMITTER_NAME=bench \
		GIT_COMMITTER_EMAIL=bench@bento git clone -q --no-hardlinks --template= \
		"$GITREPO" "$M/clone" >"$R/git.err" 2>&1 && sync; then
		emit "$1" git-clone "$2" "$(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { print b - a }')" s
		# (Not timed.) The checkout must be what was committed.
		if ! st=$(GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
			git -C "$M/clone" status --porcelain 2>&1) || [ -n "$st" ]; then
			fail "$1 git-clone: git status: $(echo "$st" | head -n 3)"
		fi
	else
		fail "$1 git-clone: $(tail -n 3 "$R/git.err")"
	fi
	memory "$1" git-clone "$2"
	rm -rf "$M/clone"
}

# Memory under pressure (the sourcing script's after_fs runs it): PFILES files of a
# block each, in directories of 1000; then sync and drop_caches, as reclaim would
# shrink the caches: the VFS evicts the inodes (on FUSE, FORGETs to the daemon), the
# file system frees what it keeps with them, the page cache goes. drop_caches until the
# kernel's inode count stops falling (2-6 passes): a pass frees dentries, whose inodes
# only then go on the LRU, and only ages an inode used since it went there (reclaim
# frees it on a later pass). Then a stat of every file (lookups again) and another
# drop: what a daemon keeps must not grow from round to round. Figures at four points,
# each emitted as pressure:WHAT:POINT (rep 0): base (after a first drop), loaded (the
# files made and synced), dropped, again (after the stat and the drop). Checks,
# emitted as pressure-value:CHECK and pressure-limit:CHECK, limits from measurements
# with margin (50 000 files in the guest left at most 0.1 MiB of slab, 3 inodes and no
# page cache behind; the daemon's peak RSS was 131-234 MiB in the guest, 186-206 MiB
# on the host, its regrowth at most 0.6 MiB):
#   KMEM=1 (the guest's kernel): slab-left (Slab after the drop less the base) at most
#     the larger of PSLAB_KB and 10% of the growth; inodes-left (/proc/sys/fs/inode-nr)
#     at most PINODES + 1% of the files; cache-left (Cached) at most the larger of
#     PCACHE_KB and 10% of the growth;
#   a FUSE daemon: fuse-hwm (its peak RSS since it started: the whole benchmark run and
#     this) at most PHWM_KB, 6 times its 64 MiB block cache (the peak is 2-3.6 times
#     the cache: glibc's per-thread malloc arenas each keep what they freed);
#     fuse-regrowth (its RSS after the second drop less after the first) at most
#     PREGROW_KB + PREGROW_B a file. Its RSS does not come down after a drop (the
#     allocator keeps what was freed, for reuse): only growth from round to round
#     would be a leak.
PSLAB_KB=512 PINODES=64 PCACHE_KB=4096 PHWM_KB=393216 PREGROW_KB=2048 PREGROW_B=32
PPOINTS="base loaded dropped again"
pfigures() { # fs point: records and keeps (p_WHAT_POINT) the figures of a point
	if [ "$KMEM" = 1 ]; then
		for k in Slab SReclaimable SUnreclaim Cached; do
			pfig "$1" "$k" "$2" "$(meminfo "$k")" kB
		done
		pfig "$1" inodes "$2" "$(awk '{ print $1 }' /proc/sys/fs/inode-nr)" inodes
		pfig "$1" dentries "$2" "$(awk '{ print $1 }' /proc/sys/fs/dentry-state)" dentries
		if [ -r /proc/slabinfo ]; then
			grep -E '^(bento_inode_cache|fuse_inode|ext4_inode_cache|dentry) ' \
				/proc/slabinfo | sed "s/^/$2: /" >>"$R/pressure-slabinfo-$1.txt"
		fi
	fi
	if [ -n "$fusepid" ]; then
		for k in VmRSS VmHWM; do
			pfig "$1" "fuse-$k" "$2" \
				"$(awk -v k="$k:" '$1 == k { print $2 }' "/proc/$fusepid/status" 2>/dev/null)" kB
		done
	fi
}
pfig() { # fs what point value unit
	if [ -z "$4" ]; then
		fail "$1 pressure: no $2 figure at $3"
		return
	fi
	emit "$1" "pressure:$2:$3" 0 "$4" "$5"
	eval "p_$(echo "$2" | tr -c 'a-zA-Z0-9\n' _)_$3=\$4"
}
ptrio() { # what: "base -> loaded -> dropped -> again"
	eval "echo \"\${p_${1}_base:-?} -> \${p_${1}_loaded:-?} -> \${p_${1}_dropped:-?}" \
		"-> \${p_${1}_again:-?}\""
}
# Whether every point of the figures WHAT... is known.
pknown() { # what...
	for k in "$@"; do
		for pt in $PPOINTS; do
			eval "[ -n \"\${p_${k}_$pt:-}\" ]" || return 1
		done
	done
}
pcheck() { # fs check value limit unit
	emit "$1" "pressure-value:$2" 0 "$3" "$5"
	emit "$1" "pressure-limit:$2" 0 "$4" "$5"
	if [ "$3" -le "$4" ]; then
		say "$1 memory: $2 $3 $5 (limit $4): ok"
	else
		fail "$1 memory: $2 $3 $5 over the limit of $4"
	fi
}
pdrop() {
	sync
	pn=0 pinodes=
	while [ "$pn" -lt 6 ]; do
		echo 3 >/proc/sys/vm/drop_caches
		# Inodes are freed after an RCU grace period; FUSE FORGETs reach the daemon later.
		sleep 1
		pnow=$(awk '{ print $1 }' /proc/sys/fs/inode-nr)
		[ "$pn" -lt 1 ] || [ "$pnow" -lt "$pinodes" ] || break
		pinodes=$pnow pn=$((pn + 1))
	done
	sleep 1
}
pressure() { # fs
	fs=$1
	for pt in $PPOINTS; do
		for k in Slab SReclaimable SUnreclaim Cached inodes dentries fuse_VmRSS fuse_VmHWM; do
			unset "p_${k}_$pt"
		done
	done
	pdrop
	pfigures "$fs" base
	emit "$fs" pressure:files 0 "$PFILES" files
	mkdir -p "$M/pressure"
	i=0 d=
	while [ "$i" -lt "$PFILES" ]; do
		if [ $((i % 1000)) = 0 ]; then
			d=$M/pressure/d$((i / 1000))
			mkdir "$d" || break
		fi
		echo "$i" >"$d/f$i" || break
		i=$((i + 1))
	done
	[ "$i" = "$PFILES" ] || fail "$fs pressure: $i files of $PFILES made"
	sync
	pfigures "$fs" loaded
	pdrop
	pfigures "$fs" dropped
	# (ls -l: a stat of each; find may go by the directory entries' types alone.)
	# shellcheck disable=SC2010 # our names
	n=$(ls -lR "$M/pressure" | grep -c '^-')
	[ "$n" = "$PFILES" ] || fail "$fs pressure: $n files of $PFILES listed"
	pdrop
	pfigures "$fs" again
	say "$fs memory, $PFILES files (before -> made -> drop_caches -> stat all, drop_caches):"
	if [ "$KMEM" = 1 ]; then
		say "  slab $(ptrio Slab) kB, page cache $(ptrio Cached) kB"
		say "  inodes $(ptrio inodes), dentries $(ptrio dentries)"
	fi
	[ -z "$fusepid" ] ||
		say "  FUSE daemon RSS $(ptrio fuse_VmRSS) kB, peak $(ptrio fuse_VmHWM) kB"
	if [ "$KMEM" = 1 ] && pknown Slab Cached inodes; then
		grow=$(((p_Slab_loaded - p_Slab_base) / 10))
		pcheck "$fs" slab-left $((p_Slab_dropped - p_Slab_base)) \
			$((grow > PSLAB_KB ? grow : PSLAB_KB)) kB
		pcheck "$fs" inodes-left $((p_inodes_dropped - p_inodes_base)) \
			$((PINODES + PFILES / 100)) inodes
		grow=$(((p_Cached_loaded - p_Cached_base) / 10))
		pcheck "$fs" cache-left $((p_Cached_dropped - p_Cached_base)) \
			$((grow > PCACHE_KB ? grow : PCACHE_KB)) kB
	fi
	if [ -n "$fusepid" ] && pknown fuse_VmRSS fuse_VmHWM; then
		pcheck "$fs" fuse-hwm "$p_fuse_VmHWM_again" "$PHWM_KB" kB
		pcheck "$fs" fuse-regrowth $((p_fuse_VmRSS_again - p_fuse_VmRSS_dropped)) \
			$((PREGROW_KB + PFILES * PREGROW_B / 1024)) kB
	fi
}

# REPS rounds over the file systems of FSES: each round mounts each file system in
# turn and runs bench_fs on it, so that a drift of the (shared, emulated) machine
# during the run spreads over all of them instead of weighing on the last ones; the
# order changes from round to round.
# after_fs runs in the last round, before the unmount.
bench_all() { # fses reps
	all_fses=$1 all_reps=$2
	r=1
	while [ "$r" -le "$all_reps" ]; do
		# Each round starts one file system further on, and every second one runs
		# backwards, so that none always follows the same one (whose writes the host
		# may still be flushing) or goes first: a rotation alone keeps the neighbours.
		order=$(echo "$all_fses" | awk -v k="$((r - 1))" '{
			for (i = 0; i < NF; i++) {
				j = (i + k) % NF
				if (k % 2) j = (2 * NF - 1 - i - k % NF) % NF
				printf "%s ", $(j + 1)
			} }')
		for fs_i in $order; do
			if ! mount_fs "$fs_i"; then
				fail "$fs_i: mount"
				continue
			fi
			say "$fs_i, repetition $r of $all_reps"
			bench_fs "$fs_i" "$r"
			if [ "$r" = "$all_reps" ]; then
				after_fs "$fs_i"
			fi
			umount_fs || fail "$fs_i: umount"
		done
		r=$((r + 1))
	done
}
