#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ls and cat are the point here: they exercise readdir and open of the fs under test.
# shellcheck disable=SC2012,SC2002
#
# xv6fs in the kernel (module xv6fs.ko): mkfs.xv6fs, module load, both mount types, mount
# errors and options (bad option, ro, remount), the module refcount, POSIX behaviour
# (xv6fs_test), data integrity (fsx), POSIX semantics (pjdfstest), persistence across a
# remount, a clean fsck.xv6fs after all of it, corrupted images refused, unload.
#
# Needs a disk it may format: the virtio disk with serial "xv6fs" (guest.sh attaches
# one), or XV6FS_DEV=/dev/... . Programs: mkfs.xv6fs, fsck.xv6fs, fsx, pjdfstest (and
# pjdfstest.sh, pjdfstest.toml next to it) on PATH; xv6fs_test next to this script.
# Without the xv6fs module every xv6fs check is skipped.
# XV6FS_FSX_OPS: fsx operations (default 5000).

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/../../kselftest/ktap_helpers.sh"

MNT=/tmp/bento-xv6fs
WORK=/tmp/bento-xv6fs.work
# shellcheck disable=SC2034 # used by bento_lib.sh
LOG=$WORK/log
# shellcheck disable=SC2034 # used by bento_lib.sh
TEST_NAME=bento_xv6fs.sh
XV6FS_TEST=${XV6FS_TEST:-$DIR/xv6fs_test}

mkdir -p "$MNT" "$WORK"

. "$DIR/bento_lib.sh"
# The device: by the serial guest.sh gives it, unless given.
dev=$(find_test_disk)

registered() { grep -qw xv6fs /proc/filesystems; }
mounted() { grep -q " $MNT " /proc/mounts; }
umount_all() { # every mount of the device or on $MNT
	while grep -q -e "^$dev " -e " $MNT " /proc/mounts; do
		um "$(grep -e "^$dev " -e " $MNT " /proc/mounts | head -n 1 | cut -d' ' -f2)" ||
			return 1
	done
}
mount_xv6fs() { timeout 60 mount -t xv6fs "$@" "$dev" "$MNT"; }
# umount, waiting up to 10 s for the last users to go (processes of the previous check
# may still be exiting); on failure, shows who holds the mount.
um() {
	n=0
	until timeout 60 umount "$@" 2>"$WORK/um-err"; do
		if [ "$n" -ge 20 ] || ! grep -q busy "$WORK/um-err"; then
			cat "$WORK/um-err"
			echo "held by:"
			for l in /proc/[0-9]*/cwd /proc/[0-9]*/fd/*; do
				p=${l#/proc/}
				case $(readlink "$l" 2>/dev/null) in
				"$MNT"*) echo "$l: $(tr '\0' ' ' <"/proc/${p%%/*}/cmdline" 2>/dev/null)" ;;
				esac
			done | head
			return 1
		fi
		sleep 0.5; n=$((n + 1))
	done
}

# The command must fail with the errno whose strerror text is TEXT (mount and the
# coreutils print it): fails_with TEXT COMMAND...
fails_with() {
	want=$1
	shift
	if "$@" 2>"$WORK/err"; then
		echo "'$*' succeeded, expected '$want'"
		return 1
	fi
	grep -q "$want" "$WORK/err" || { echo "'$*': expected '$want', got:"; cat "$WORK/err"; return 1; }
}

# ---- the checks ---------------------------------------------------------------------

reference_tmpfs() {
	mkdir -p "$WORK/tmpfs"
	timeout 120 "$XV6FS_TEST" "$WORK/tmpfs"
}

load() { modprobe xv6fs && registered; }
mkfs() { timeout 120 mkfs.xv6fs "$dev"; }
mount_it() { mount_xv6fs && mounted && grep -q "^$dev $MNT xv6fs " /proc/mounts; }
statfs() {
	[ "$(stat -f -c '%S %l' "$MNT")" = '4096 255' ] || { stat -f "$MNT"; return 1; }
	[ "$(stat -f -c %b "$MNT")" -gt 0 ] && [ "$(stat -f -c %f "$MNT")" -gt 0 ]
}
rmmod_refused() { ! rmmod xv6fs 2>/dev/null && registered; }
smoke() {
	[ "$(ls -a "$MNT" | tr '\n' ' ')" = '. .. ' ] || { ls -la "$MNT"; return 1; }
	echo hello >"$MNT/hello" && [ "$(cat "$MNT/hello")" = hello ] &&
		mkdir "$MNT/d" && [ "$(stat -c '%F %h' "$MNT/d")" = 'directory 2' ] &&
		rmdir "$MNT/d" && rm "$MNT/hello" && [ "$(ls -a "$MNT" | wc -l)" = 2 ]
}
posix() { timeout 240 "$XV6FS_TEST" "$MNT"; }
fsx_run() {
	mkdir -p "$WORK/fsx"
	(cd "$WORK/fsx" && timeout 180 fsx -N "${XV6FS_FSX_OPS:-5000}" -S 7 -P "$WORK/fsx" \
		"$MNT/fsxfile") || return 1
	rm -f "$MNT/fsxfile"
}
pjdfstest_run() {
	pjd=$(command -v pjdfstest.sh) || { echo "not ok 1 pjdfstest.sh not on PATH"; return 1; }
	PJDFSTEST_TIMEOUT=240 sh "$pjd" "$(command -v pjdfstest)" "$MNT/pjd" "$WORK/pjd-exdev"
}

# Files to find again after a remount: a tree, 600 entries, data, links, a fifo.
populate() {
	rm -rf "$MNT/persist" && mkdir -p "$MNT/persist/a/b" &&
		dd if=/dev/urandom of="$WORK/data" bs=64k count=40 2>/dev/null &&
		cp "$WORK/data" "$MNT/persist/a/b/data" &&
		ln -s a/b/data "$MNT/persist/link" && ln "$MNT/persist/a/b/data" "$MNT/persist/hard" &&
		mkfifo "$MNT/persist/fifo" &&
		i=0 && while [ "$i" -lt 600 ]; do : >"$MNT/persist/entry-$i"; i=$((i + 1)); done &&
		sync
}
persisted() {
	cmp "$WORK/data" "$MNT/persist/a/b/data" && cmp "$WORK/data" "$MNT/persist/link" &&
		[ "$(stat -c %h "$MNT/persist/hard")" = 2 ] && [ -p "$MNT/persist/fifo" ] &&
		[ "$(ls "$MNT/persist" | sed -n '/^entry-/p' | wc -l)" = 600 ]
}
remount_cycle() { populate && um "$MNT" && mount_xv6fs && persisted; }
generic_type() {
	um "$MNT" && timeout 60 mount -t bento -o fs=xv6fs "$dev" "$MNT" &&
		grep -q "^$dev $MNT " /proc/mounts && persisted && um "$MNT"
}
bad_option() {
	fails_with "Invalid argument" mount_xv6fs -o bogus || { umount_all; return 1; }
	log_since_mark | grep -q bogus ||
		{ echo "no kernel log line naming 'bogus'"; log_since_mark; return 1; }
}
read_only() {
	mount_xv6fs -o ro || return 1
	grep -q "^$dev $MNT xv6fs ro[ ,]" /proc/mounts || { grep " $MNT " /proc/mounts; return 1; }
	persisted &&
		fails_with "Read-only file system" touch "$MNT/new" &&
		fails_with "Read-only file system" mkdir "$MNT/newdir" &&
		fails_with "Read-only file system" sh -c "echo x >> '$MNT/persist/a/b/data'" &&
		fails_with "Read-only file system" rm "$MNT/persist/entry-1"
}
# remount_to ro|rw: from a fresh mount the other way round; skipped when the kernel
# refuses to remount at all.
remount_to() {
	from=rw
	[ "$1" = rw ] && from=ro
	umount_all && mount_xv6fs -o "$from" || return 1
	grep -q "^$dev $MNT xv6fs ${from}[ ,]" /proc/mounts || { grep " $MNT " /proc/mounts; return 1; }
	if ! timeout 60 mount -o "remount,$1" "$MNT" 2>"$WORK/err"; then
		skipping "remount,$1 not supported: $(cat "$WORK/err")"
		return
	fi
	grep " $MNT " /proc/mounts
	log_since_mark
	grep -q "^$dev $MNT xv6fs $1[ ,]" /proc/mounts || return 1
	if [ "$1" = rw ]; then
		echo x >"$MNT/after-remount" && [ "$(cat "$MNT/after-remount")" = x ] &&
			rm "$MNT/after-remount" && persisted
	else
		fails_with "Read-only file system" touch "$MNT/new" && persisted
	fi
}
fsck_clean() { timeout 300 fsck.xv6fs -fn "$dev"; }
# corrupt OFFSET COUNT: random bytes over COUNT bytes at byte OFFSET of the device.
corrupt() {
	dd if=/dev/urandom of="$dev" bs=1 seek="$1" count="$2" conv=notrunc 2>/dev/null && sync
}
u32_at() { # byte offset of the device -> little-endian u32 there
	od -An -tu4 -j "$1" -N 4 "$dev" | tr -d ' '
}
refused() { # mount must fail with an errno, and nothing may be left mounted
	if mount_xv6fs 2>"$WORK/err"; then
		echo "mount of a corrupted image succeeded"
		ls -la "$MNT" 2>&1 | head -5
		um "$MNT"
		return 1
	fi
	echo "mount failed: $(cat "$WORK/err")"
	! mounted
}
bad_superblock() { timeout 120 mkfs.xv6fs -q "$dev" && corrupt 4096 256 && refused; }
bad_root_inode() {
	timeout 120 mkfs.xv6fs -q "$dev" || return 1
	itable=$(u32_at $((4096 + 56)))
	if [ -z "$itable" ] || [ "$itable" -le 1 ]; then
		echo "bad inode table start '$itable'"
		return 1
	fi
	# The root is inode 1, at byte 256 of the table.
	corrupt $((itable * 4096 + 256)) 256 && refused
}
# freeze: writers wait until thaw; the frozen device holds a clean journal.
freeze_thaw() {
	umount_all && timeout 120 mkfs.xv6fs -q "$dev" && mount_xv6fs || return 1
	echo before >"$MNT/before" && timeout 60 fsfreeze --freeze "$MNT" || return 1
	(echo during >"$MNT/during") &
	writer=$!
	sleep 2
	if ! kill -0 "$writer" 2>/dev/null; then
		echo "a write went through on a frozen file system"
		timeout 60 fsfreeze --unfreeze "$MNT"
		return 1
	fi
	timeout 60 fsfreeze --unfreeze "$MNT" || return 1
	wait "$writer" && [ "$(cat "$MNT/during")" = during ] && um "$MNT"
}
# errors=remount-ro: a corrupt inode found in use turns the mount read-only (and logs
# it); errors=continue only logs.
corrupt_inode_of() { # name: make a file NAME, then damage its inode on disk
	timeout 120 mkfs.xv6fs -q "$dev" && mount_xv6fs && echo x >"$MNT/$1" || return 1
	ino=$(stat -c %i "$MNT/$1") && um "$MNT" || return 1
	itable=$(u32_at $((4096 + 56)))
	corrupt $((itable * 4096 + ino * 256)) 256
}
errors_remount_ro() {
	corrupt_inode_of victim && mount_xv6fs -o errors=remount-ro || return 1
	grep -q "^$dev $MNT xv6fs rw,.*errors=remount-ro" /proc/mounts ||
		{ echo "options not shown:"; grep " $MNT " /proc/mounts; um "$MNT"; return 1; }
	fails_with "Structure needs cleaning" stat "$MNT/victim" || { um "$MNT"; return 1; }
	grep -q "^$dev $MNT xv6fs ro[ ,]" /proc/mounts ||
		{ echo "still read-write:"; grep " $MNT " /proc/mounts; um "$MNT"; return 1; }
	log_since_mark | grep -q "remounting read-only" ||
		{ echo "no log line"; log_since_mark; um "$MNT"; return 1; }
	fails_with "Read-only file system" touch "$MNT/new"
	um "$MNT"
}
errors_continue() {
	corrupt_inode_of victim && mount_xv6fs -o errors=continue || return 1
	fails_with "Structure needs cleaning" stat "$MNT/victim" || { um "$MNT"; return 1; }
	grep -q "^$dev $MNT xv6fs rw[ ,]" /proc/mounts && echo y >"$MNT/still-rw" &&
		log_since_mark | grep -q "corruption detected (errors=continue)"
	rc=$?
	um "$MNT"
	return "$rc"
}
unload() { umount_all && rmmod xv6fs && ! registered; }
autoload() {
	timeout 120 mkfs.xv6fs -q "$dev" && mount_xv6fs && registered && um "$MNT" &&
		rmmod xv6fs
}
log_clean() {
	command -v check-dmesg.sh >/dev/null || { skipping "no check-dmesg.sh"; return; }
	dmesg | check-dmesg.sh
}

# ---- the run ----------------------------------------------------------------------

ktap_print_header
ktap_set_plan 26

# Start from nothing: no mount of the disk (make run mounts it), module not loaded.
[ -n "$dev" ] && umount_all 2>/dev/null
rmmod xv6fs 2>/dev/null

# The test program itself, on a file system known to be right.
if [ -x "$XV6FS_TEST" ]; then
	t -b 150 "xv6fs_test passes on tmpfs (reference run)" reference_tmpfs
else
	fail "xv6fs_test passes on tmpfs (reference run): no $XV6FS_TEST"
fi

if [ -z "$dev" ] || [ ! -b "$dev" ]; then
	NOT_RUN="no xv6fs test disk (a virtio disk with serial xv6fs, or XV6FS_DEV)"
elif ! registered && ! grep -qs '/xv6fs\.ko' "/lib/modules/$(uname -r)/modules.dep" \
	"/lib/modules/$(uname -r)/modules.builtin"; then
	NOT_RUN="no xv6fs module in this kernel (CONFIG_SAMPLE_BENTO_XV6FS=m)"
fi
[ -n "$NOT_RUN" ] || ktap_print_msg "xv6fs test disk: $dev"

t "modprobe xv6fs registers the xv6fs type" load || NOT_RUN=${NOT_RUN:-"modprobe xv6fs failed"}
t "mkfs.xv6fs on the test disk" mkfs || NOT_RUN=${NOT_RUN:-"no file system (mkfs.xv6fs failed)"}
t "mount -t xv6fs" mount_it || NOT_RUN=${NOT_RUN:-"mount -t xv6fs failed"}
t "statfs: 4 KiB blocks, 255-byte names" statfs
t "rmmod refused while mounted" rmmod_refused
t "empty root; create, read, mkdir, rmdir, unlink" smoke
nested 300 "xv6fs_test: POSIX behaviour" posix
t -b 300 "fsx (${XV6FS_FSX_OPS:-5000} operations)" fsx_run
nested 300 "pjdfstest" pjdfstest_run
t "data persists across umount and mount" remount_cycle
t "mount -t bento -o fs=xv6fs" generic_type
t "bad option: EINVAL and a kernel log line" bad_option
t "mount -o ro: reads work, writes fail with EROFS" read_only
t "mount -o remount,ro: writes fail with EROFS" remount_to ro
t "mount -o remount,rw: writes work again" remount_to rw
t "umount" umount_all
t -b 300 "fsck.xv6fs -n finds the file system clean" fsck_clean
t "corrupted superblock: mount refused with an errno" bad_superblock
t "corrupted root inode: mount refused with an errno" bad_root_inode
t "fsfreeze: writes wait until thaw" freeze_thaw
t "errors=remount-ro: corruption found in use makes the mount read-only" errors_remount_ro
t "errors=continue: corruption is logged, the mount stays read-write" errors_continue
t "rmmod xv6fs after umount unregisters the type" unload
t "mount -t xv6fs autoloads the module" autoload
# Leave a fresh file system behind (make run mounts this disk).
[ -z "$NOT_RUN" ] && mkfs.xv6fs -q "$dev" >/dev/null 2>&1
NOT_RUN=
t "kernel log free of oopses, WARNs, BUGs" log_clean

ktap_finished
