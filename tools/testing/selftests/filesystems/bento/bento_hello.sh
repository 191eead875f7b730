#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The hello sample in the kernel: module load, both mount types, lookup, read, stat,
# statfs, errors for bad mounts (errno and a kernel log line), module refcount while
# mounted, autoload through the fs-hello alias, unload.

DIR=$(dirname "$0")
. "$DIR/../../kselftest/ktap_helpers.sh"

MNT=/tmp/bento-hello
ERR=/tmp/bento-hello.err

# The kernel log since the last mark, so each check only sees its own lines.
dmesg_mark() { dmesg -c >/dev/null 2>&1 || true; }
logged() { dmesg | grep -q "$1"; }

# mount_fails "EXPECTED strerror" "LOG PATTERN" mount-args...: the mount must fail with
# that error and leave that line in the kernel log.
mount_fails() {
	want=$1 pattern=$2
	shift 2
	dmesg_mark
	if mount "$@" 2>"$ERR"; then
		umount "$MNT"
		return 1
	fi
	grep -q "$want" "$ERR" || { cat "$ERR"; return 1; }
	logged "$pattern" || { echo "# no log line matching '$pattern'"; return 1; }
}

ktap_print_header
ktap_set_plan 17

mkdir -p "$MNT"
rmmod hello 2>/dev/null

ktap_test_result "framework registers the bento type" grep -qw bento /proc/filesystems
ktap_test_result "modprobe hello" modprobe hello
ktap_test_result "hello type registered" grep -qw hello /proc/filesystems
ktap_test_result "mount -t hello" mount -t hello none "$MNT"
ktap_test_result "readdir lists hello" sh -c "[ \"\$(ls -a $MNT | tr '\n' ' ')\" = '. .. hello ' ]"
ktap_test_result "read hello" sh -c "[ \"\$(cat $MNT/hello)\" = 'Hello, world!' ]"
ktap_test_result "read at an offset" sh -c "[ \"\$(dd if=$MNT/hello bs=1 skip=7 count=5 2>/dev/null)\" = 'world' ]"
ktap_test_result "stat: regular, 0444, 14 bytes, inode 2" \
	sh -c "[ \"\$(stat -c '%F %a %s %i' $MNT/hello)\" = 'regular file 444 14 2' ]"
ktap_test_result "statfs" sh -c "stat -f -c '%t %S' $MNT | grep -q '^42454e54 4096$'"
ktap_test_result "missing name is ENOENT" sh -c "cat $MNT/nope 2>&1 | grep -q 'No such file'"
ktap_test_result "rmmod refused while mounted" sh -c "! rmmod hello 2>/dev/null && grep -qw hello /proc/filesystems"
ktap_test_result "umount" umount "$MNT"
ktap_test_result "mount -t bento -o fs=hello" sh -c "mount -t bento -o fs=hello none $MNT && cat $MNT/hello >/dev/null && umount $MNT"
ktap_test_result "unknown fs name: ENODEV and a log line" \
	mount_fails "No such device" "no file system named 'nosuch'" -t bento -o fs=nosuch none "$MNT"
ktap_test_result "bad option: EINVAL and a log line" \
	mount_fails "Invalid argument" "unknown mount option 'bogus'" -t hello -o bogus none "$MNT"
ktap_test_result "rmmod hello unregisters the type" sh -c "rmmod hello && ! grep -qw hello /proc/filesystems"
ktap_test_result "mount -t hello autoloads the module" \
	sh -c "mount -t hello none $MNT && cat $MNT/hello >/dev/null && umount $MNT && rmmod hello"

ktap_finished
