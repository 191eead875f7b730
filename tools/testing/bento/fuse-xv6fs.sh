#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ls and cat are the point here: they exercise readdir and open of the fs under test.
# shellcheck disable=SC2012,SC2002
#
# xv6fs as a FUSE program on the host: mkfs, mount, the namespace and data operations,
# persistence across a remount, a full disk. KTAP output.
# Usage: fuse-xv6fs.sh BINDIR   (holding xv6fs and mkfs-xv6fs)
BIN=$1
. "${KTAP_HELPERS:?set KTAP_HELPERS to kselftest/ktap_helpers.sh of the kernel tree}"

T=$(mktemp -d /tmp/bento-fuse-xv6fs.XXXXXX)
IMG=$T/img MNT=$T/mnt
mkdir -p "$MNT"
trap 'fusermount3 -u "$MNT" 2>/dev/null; rm -rf "$T"' EXIT

mount_fs() { "$BIN/xv6fs" "$IMG" "$MNT"; }
umount_fs() { fusermount3 -u "$MNT"; }
remount() { umount_fs && mount_fs; }

mkfs() { "$BIN/mkfs-xv6fs" -q -s 64M "$IMG"; }
empty_root() { [ "$(ls -a "$MNT" | tr '\n' ' ')" = '. .. ' ]; }
write_read() { echo hello > "$MNT/a" && [ "$(cat "$MNT/a")" = hello ]; }
big_file() {
	dd if=/dev/urandom of="$T/big" bs=1M count=9 2>/dev/null &&
		cp "$T/big" "$MNT/big" && cmp "$T/big" "$MNT/big"
}
sparse() {
	dd if=/dev/zero of="$MNT/sparse" bs=4096 count=1 seek=300000 2>/dev/null &&
		[ "$(stat -c %s "$MNT/sparse")" = $((300001 * 4096)) ] &&
		[ "$(stat -c %b "$MNT/sparse")" -lt 64 ]
}
dirs() { mkdir -p "$MNT/d1/d2/d3" && [ "$(stat -c %h "$MNT/d1")" = 3 ] && rmdir "$MNT/d1/d2/d3" && [ "$(stat -c %h "$MNT/d1/d2")" = 2 ]; }
many_files() {
	mkdir "$MNT/many" && i=0
	while [ "$i" -lt 3000 ]; do : > "$MNT/many/file-with-a-longer-name-$i"; i=$((i + 1)); done
	[ "$(ls "$MNT/many" | wc -l)" = 3000 ] && [ -e "$MNT/many/file-with-a-longer-name-2999" ]
}
renames() {
	echo x > "$MNT/r1" && mv "$MNT/r1" "$MNT/d1/r2" && [ "$(cat "$MNT/d1/r2")" = x ] && [ ! -e "$MNT/r1" ] &&
		mv "$MNT/d1/d2" "$MNT/d2moved" && [ "$(stat -c %h "$MNT/d1")" = 2 ] && [ -d "$MNT/d2moved/.." ]
}
links() {
	ln "$MNT/a" "$MNT/a2" && [ "$(stat -c %h "$MNT/a")" = 2 ] && ln -s a "$MNT/sym" &&
		[ "$(readlink "$MNT/sym")" = a ] && [ "$(cat "$MNT/sym")" = hello ] &&
		long=$(printf 'x%.0s' $(seq 1 200)) && ln -s "$long" "$MNT/longsym" && [ "$(readlink "$MNT/longsym")" = "$long" ]
}
special() { mkfifo "$MNT/fifo" && [ -p "$MNT/fifo" ] && mknod "$MNT/chr" c 1 3 && [ -c "$MNT/chr" ]; }
xattrs() {
	command -v setfattr >/dev/null || return 0
	setfattr -n user.k -v v1 "$MNT/a" && [ "$(getfattr --only-values -n user.k "$MNT/a")" = v1 ] &&
		setfattr -x user.k "$MNT/a" && ! getfattr -n user.k "$MNT/a" 2>/dev/null
}
truncates() { truncate -s 100000 "$MNT/big" && cmp -n 100000 "$T/big" "$MNT/big" && truncate -s 0 "$MNT/big" && [ ! -s "$MNT/big" ]; }
unlink_open() {
	echo keep > "$MNT/u" && exec 3< "$MNT/u" && rm "$MNT/u" && [ ! -e "$MNT/u" ] &&
		[ "$(cat <&3)" = keep ]; rc=$?; exec 3<&-; return $rc
}
persist() { remount && [ "$(cat "$MNT/a")" = hello ] && [ "$(readlink "$MNT/sym")" = a ] && [ "$(ls "$MNT/many" | wc -l)" = 3000 ]; }
full_disk() {
	! dd if=/dev/zero of="$MNT/fill" bs=1M count=200 2>/dev/null && rm "$MNT/fill" && echo ok > "$MNT/after" &&
		[ "$(cat "$MNT/after")" = ok ]
}
# kill -9 the daemon after an fsync: the next mount replays the journal and the data is
# there (sync(1) fsyncs through FUSE's syncfs; dd conv=fsync fsyncs the file).
killed() {
	dd if=/dev/urandom of="$T/k" bs=64K count=3 2>/dev/null &&
		dd if="$T/k" of="$MNT/killed" bs=64K conv=fsync 2>/dev/null &&
		pkill -9 -f -- "-f $IMG $MNT" && sleep 0.3 && ! ls "$MNT" >/dev/null 2>&1 &&
		fusermount3 -u "$MNT"
	mount_fs 2>"$T/err" && cmp "$T/k" "$MNT/killed"
}
# After all of the above, unmounted: fsck.xv6fs finds nothing to fix.
fsck_clean() { umount_fs && sleep 0.5 && "$BIN/fsck-xv6fs" -fn "$IMG"; }
statfs() { [ "$(stat -f -c %S "$MNT")" = 4096 ] && [ "$(stat -f -c %l "$MNT")" = 255 ]; }

ktap_print_header
ktap_set_plan 19
ktap_test_result "mkfs.xv6fs makes a 64 MiB image" mkfs
ktap_test_result "xv6fs mounts it" mount_fs
ktap_test_result "a fresh root is empty" empty_root
ktap_test_result "write and read a small file" write_read
ktap_test_result "9 MiB file (indirect blocks) round trip" big_file
ktap_test_result "sparse file at 1.1 GiB (double indirect)" sparse
ktap_test_result "mkdir -p, link counts, rmdir" dirs
ktap_test_result "3000 files in a directory (tree splits)" many_files
ktap_test_result "rename files and directories" renames
ktap_test_result "hard links and symlinks (inline and block)" links
ktap_test_result "fifo and device nodes" special
ktap_test_result "user xattrs" xattrs
ktap_test_result "truncate shrinks and keeps data" truncates
ktap_test_result "unlinked open file keeps its data" unlink_open
ktap_test_result "everything persists across a remount" persist
ktap_test_result "full disk: ENOSPC, then usable again" full_disk
ktap_test_result "statfs" statfs
ktap_test_result "killed daemon: fsynced data survives, journal replayed" killed
ktap_test_result "fsck.xv6fs -fn: clean after all of it" fsck_clean
ktap_finished
