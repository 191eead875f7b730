#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ls and cat are the point here: they exercise readdir and open of the fs under test.
# shellcheck disable=SC2012,SC2002
#
# The hello sample in the kernel: module load, both mount types, lookup, read, stat,
# statfs, errors for bad mounts (errno and a kernel log line), module refcount while
# mounted, autoload through the fs-hello alias, unload.

DIR=$(dirname "$0")
. "$DIR/../../kselftest/ktap_helpers.sh"

MNT=/tmp/bento-hello
ERR=/tmp/bento-hello.err

# Checks (ktap_test_result runs its command unquoted, so each check is a function).
listing() { [ "$(ls -a "$MNT" | tr '\n' ' ')" = '. .. hello ' ]; }
content() { [ "$(cat "$MNT/hello")" = 'Hello, world!' ]; }
offset_read() { [ "$(dd if="$MNT/hello" bs=1 skip=7 count=5 2>/dev/null)" = world ]; }
stat_hello() { [ "$(stat -c '%F %a %s %i' "$MNT/hello")" = 'regular file 444 14 2' ]; }
statfs() { [ "$(stat -f -c '%t %S' "$MNT")" = '42454e54 4096' ]; }
enoent() { cat "$MNT/nope" 2>&1 | grep -q 'No such file'; }
registered() { grep -qw "$1" /proc/filesystems; }
rmmod_refused() { ! rmmod hello 2>/dev/null && registered hello; }
generic_type() { mount -t bento -o fs=hello none "$MNT" && content && umount "$MNT"; }
unloaded() { rmmod hello && ! registered hello; }
autoload() { mount -t hello none "$MNT" && content && umount "$MNT" && rmmod hello; }

# mount_fails "strerror text" "log pattern" mount-args...: the mount must fail with that
# error and leave that line in the kernel log.
mount_fails() {
	want=$1 pattern=$2
	shift 2
	# A mark in the kernel log rather than dmesg -c: the harness checks the whole log.
	mark="bento_hello.sh: mount_fails at $(cut -d" " -f1 /proc/uptime)"
	echo "$mark" >/dev/kmsg
	if mount "$@" 2>"$ERR"; then
		umount "$MNT"
		return 1
	fi
	grep -q "$want" "$ERR" || { sed 's/^/# /' "$ERR"; return 1; }
	dmesg | sed -n "\|$mark|,\$p" | grep -q "$pattern" ||
		{ echo "# no log line matching '$pattern'"; return 1; }
}
unknown_fs() { mount_fails "No such device" "no file system named 'nosuch'" -t bento -o fs=nosuch none "$MNT"; }
bad_option() { mount_fails "Invalid argument" "unknown mount option 'bogus'" -t hello -o bogus none "$MNT"; }
no_fs_option() { mount_fails "Invalid argument" "needs -o fs=NAME" -t bento none "$MNT"; }

ktap_print_header
ktap_set_plan 18

# Start from nothing: no hello mount, module not loaded.
grep ' hello ' /proc/mounts | while read -r _ m _; do umount "$m"; done
rmmod hello 2>/dev/null
mkdir -p "$MNT"

ktap_test_result "framework registers the bento type" registered bento
ktap_test_result "modprobe hello" modprobe hello
ktap_test_result "hello type registered" registered hello
ktap_test_result "mount -t hello" mount -t hello none "$MNT"
ktap_test_result "readdir lists . .. hello" listing
ktap_test_result "read hello" content
ktap_test_result "read at an offset" offset_read
ktap_test_result "stat: regular, 0444, 14 bytes, inode 2" stat_hello
ktap_test_result "statfs: bento magic, 4 KiB blocks" statfs
ktap_test_result "missing name is ENOENT" enoent
ktap_test_result "rmmod refused while mounted" rmmod_refused
ktap_test_result "umount" umount "$MNT"
ktap_test_result "mount -t bento -o fs=hello" generic_type
ktap_test_result "unknown fs name: ENODEV and a log line" unknown_fs
ktap_test_result "bad option: EINVAL and a log line" bad_option
ktap_test_result "generic type without fs=: EINVAL and a log line" no_fs_option
ktap_test_result "rmmod hello unregisters the type" unloaded
ktap_test_result "mount -t hello autoloads the module" autoload

ktap_finished
