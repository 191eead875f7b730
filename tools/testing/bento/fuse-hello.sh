#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ls and cat are the point here: they exercise readdir and open of the fs under test.
# shellcheck disable=SC2012,SC2002
#
# The hello sample as a FUSE program on the host (same source as hello.ko): the same
# tree, contents and errors as the kernel selftest checks. KTAP output.
# Usage: fuse-hello.sh PATH/TO/hello
HELLO=$1
# The kernel tree's tools/testing/selftests/kselftest/ktap_helpers.sh (check.sh sets it).
. "${KTAP_HELPERS:?set KTAP_HELPERS to kselftest/ktap_helpers.sh of the kernel tree}"

MNT=$(mktemp -d /tmp/bento-fuse-hello.XXXXXX)
trap 'fusermount3 -u "$MNT" 2>/dev/null; rmdir "$MNT"' EXIT

listing() { [ "$(ls -a "$MNT" | tr '\n' ' ')" = '. .. hello ' ]; }
content() { [ "$(cat "$MNT/hello")" = 'Hello, world!' ]; }
offset_read() { [ "$(dd if="$MNT/hello" bs=1 skip=7 count=5 2>/dev/null)" = world ]; }
stat_hello() { [ "$(stat -c '%F %a %s %i' "$MNT/hello")" = 'regular file 444 14 2' ]; }
enoent() { cat "$MNT/nope" 2>&1 | grep -q 'No such file'; }
mount_type() { grep -q " $MNT fuse.hello " /proc/mounts; }
# A bad fs option fails the mount with status 1 and says why.
bad_option() {
	out=$("$HELLO" -o bogus none "$MNT" 2>&1)
	[ $? = 1 ] && echo "$out" | grep -q "unknown mount option 'bogus'"
}
usage_error() { "$HELLO" none 2>/dev/null; [ $? = 2 ]; }

ktap_print_header
ktap_set_plan 10
ktap_test_result "FUSE hello mounts (daemon mode)" "$HELLO" none "$MNT"
ktap_test_result "readdir lists . .. hello" listing
ktap_test_result "read hello" content
ktap_test_result "read at an offset" offset_read
ktap_test_result "stat: regular, 0444, 14 bytes, inode 2" stat_hello
ktap_test_result "missing name is ENOENT" enoent
ktap_test_result "mount type is fuse.hello" mount_type
ktap_test_result "unmount" fusermount3 -u "$MNT"
ktap_test_result "bad option: exit 1 and a message" bad_option
ktap_test_result "usage error: exit 2" usage_error
ktap_finished
