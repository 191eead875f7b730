#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Live upgrade in FUSE mode (DESIGN.md §5.7), on the host: bento-fuse serves hello and
# xv6fs from versions loaded as shared objects and switches them on commands to its
# control socket. The same checks as the kernel's bento_upgrade.sh where they apply:
# state and open files survive, older versions and bad objects are refused, a failed
# import rolls back, the drain timeout, CYCLES v1 -> v2 -> v1 switches of xv6fs under a
# verifying load, fsx and a stat loop with the pause printed, upgrades racing the
# unmount, fsck clean. KTAP output.
# ls is the point in the listings: it exercises readdir of the version under test;
# TEST_NAME and LOG are the harness's (bento_lib.sh).
# shellcheck disable=SC2012,SC2015,SC2034
# Usage: fuse-upgrade.sh HOSTDIR STATICSO TOOLDIR
#   HOSTDIR   bento-fuse and lib*.so (fuse-host-build.sh)
#   STATICSO  a hello_v2 version built with its own copy of bento (must be refused)
#   TOOLDIR   mkfs-xv6fs, fsck-xv6fs, fsx, upgrade_load, bento_getxattr
H=$1 STATIC=$2 TOOLS=$3
CYCLES=${BENTO_UPGRADE_CYCLES:-100}
. "${KTAP_HELPERS:?set KTAP_HELPERS to kselftest/ktap_helpers.sh of the kernel tree}"
. "$(dirname "$0")/../selftests/filesystems/bento/bento_lib.sh"
TEST_NAME=fuse_upgrade
WORK=$(mktemp -d /tmp/bento-fuse-upgrade.XXXXXX)
LOG=$WORK/log
HLOG=$WORK/host.log # every host's stderr: its log lines
# The host's log since the check started, instead of the kernel's.
log_mark() { echo "== check $KTAP_TESTNO" >>"$HLOG"; }
log_since_mark() { sed -n "/^== check $KTAP_TESTNO\$/,\$p" "$HLOG"; }
logged() { log_since_mark | grep -q "$1" || { echo "no log line matching '$1'"; return 1; }; }
cleanup() {
	touch "$WORK/stop"
	for m in "$WORK"/m*; do fusermount3 -u "$m" 2>/dev/null; done
	sleep 0.2
	rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/m1" "$WORK/m2" "$WORK/m3"

# host MOUNTPOINT SOCKET OPTIONS SOURCE: starts bento-fuse in the foreground (its log
# to HLOG, its exit status to SOCKET.rc) and waits for the mount.
host() {
	rm -f "$2.rc"
	("$H/bento-fuse" -f -o "control=$2,$3" "$4" "$1" 2>>"$HLOG"; echo $? >"$2.rc") &
	i=0
	while ! grep -q " $1 " /proc/mounts; do
		[ "$i" -lt 100 ] || { echo "no mount at $1"; cat "$HLOG"; return 1; }
		[ ! -e "$2.rc" ] || { echo "host exited: $(cat "$2.rc")"; cat "$HLOG"; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
}
# unmount MOUNTPOINT SOCKET: unmounts; the host exits with status 0 within 10 s.
unmount() {
	fusermount3 -u "$1" || return 1
	i=0
	while [ ! -e "$2.rc" ]; do
		[ "$i" -lt 100 ] || { echo "host still running"; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
	is "host exit status" "$(cat "$2.rc")" 0
}
ctl() { "$H/bento-fuse" ctl "$@"; }
# status SOCKET KEY: one field of the host's status.
status() { ctl "$1" status | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# refused SOCKET ERRNO COMMAND...: the command fails with ERRNO.
refused() {
	s=$1 e=$2
	shift 2
	out=$(ctl "$s" "$@" 2>&1) && { echo "'$*' succeeded: $out"; return 1; }
	echo "$out" | grep -q "$e" || { echo "'$*': $out, expected $e"; return 1; }
}

S1=$WORK/s1 M1=$WORK/m1
hello_mount() { host "$M1" "$S1" "fs=$H/libhello.so" none && is version "$(status "$S1" version)" 1; }
hello_v1() {
	is listing "$(ls "$M1" | tr '\n' ' ')" "hello " && is content "$(cat "$M1/hello")" "Hello, world!" &&
		is "mount type" "$(awk -v m="$M1" '$2 == m { print $3 }' /proc/mounts)" fuse.hello
}
hello_upgrade() {
	t0=$(stat -c %Y "$M1/hello")
	exec 3<"$M1/hello"
	is upgrade "$(ctl "$S1" upgrade "$H/libhello_v2.so")" 2 && is version "$(status "$S1" version)" 2 &&
		is "new file" "$(cat "$M1/version")" 2 && is "open fd" "$(cat <&3)" "Hello, world!" &&
		is "mount time" "$(stat -c %Y "$M1/hello")" "$t0" && is upgrades "$(status "$S1" upgrades)" 1 &&
		logged "hello: upgraded from version 1 to 2"
	r=$?
	exec 3<&-
	return $r
}
hello_older() {
	refused "$S1" EPERM upgrade "$H/libhello_v2.so" && refused "$S1" EPERM upgrade "$H/libhello.so" &&
		refused "$S1" EPERM downgrade "$H/libhello_broken.so" && logged "an upgrade needs a higher version" &&
		is version "$(status "$S1" version)" 2
}
# v2's file, looked up before (the kernel caches its entry for 60 s), is gone at once:
# the host invalidates the kernel's entries after a switch.
hello_downgrade() {
	stat "$M1/version" >/dev/null && is downgrade "$(ctl "$S1" downgrade "$H/libhello.so")" 1 &&
		is version "$(status "$S1" version)" 1 && is listing "$(ls "$M1" | tr '\n' ' ')" "hello " &&
		{ [ ! -e "$M1/version" ] || { echo "version still there after the downgrade"; false; }; } && is upgrade "$(ctl "$S1" upgrade "$H/libhello_v2.so")" 2 &&
		is "new file again" "$(cat "$M1/version")" 2 && logged "hello: downgraded from version 2 to 1"
}
hello_bad() {
	python3 "$(dirname "$0")/bad-modules.py" "$H/libhello_v2.so" "$WORK/bad" >/dev/null || return 1
	cp "$H/libhello_v2.so" "$WORK/bad/libcopy.so" # same table: refused only as not newer
	refused "$S1" ENOEXEC upgrade /bin/true && logged "cannot load .*true" &&
		refused "$S1" ENOEXEC upgrade "$STATIC" && logged "another copy of bento than the host" &&
		refused "$S1" ENOEXEC upgrade "$WORK/bad/badabi.so" && logged "refused: ops ABI 104" &&
		refused "$S1" ENOEXEC upgrade "$WORK/bad/badbuild.so" && logged "built against bento build" &&
		refused "$S1" EPERM upgrade "$WORK/bad/badstate.so" &&
		refused "$S1" EINVAL upgrade "$H/libxv6fs_v2.so" && logged "it is file system xv6fs" &&
		refused "$S1" ENOENT upgrade "$WORK/none.so" && refused "$S1" EINVAL bogus &&
		is version "$(status "$S1" version)" 2 && is "still served" "$(cat "$M1/version")" 2
}
# The state format check needs a newer version: badstate is hello_v2 (version 2) with a
# state format nobody writes; go back to v1 first.
hello_badstate() {
	ctl "$S1" downgrade "$H/libhello.so" >/dev/null && refused "$S1" EPROTO upgrade "$WORK/bad/badstate.so" &&
		logged "it reads state formats 77..=77" && is upgrade "$(ctl "$S1" upgrade "$H/libhello_v2.so")" 2
}
# hello_broken (v3) imports once, then refuses: the second upgrade to it fails and the
# mount stays on v2, with its state.
hello_broken() {
	t0=$(stat -c %Y "$M1/hello")
	is "first import" "$(ctl "$S1" upgrade "$H/libhello_broken.so")" 3 &&
		is back "$(ctl "$S1" downgrade "$H/libhello_v2.so")" 2 &&
		refused "$S1" EIO upgrade "$H/libhello_broken.so" && logged "the mount stays on version 2" &&
		is version "$(status "$S1" version)" 2 && is "still v2" "$(cat "$M1/version")" 2 &&
		is "mount time" "$(stat -c %Y "$M1/hello")" "$t0" && is content "$(cat "$M1/hello")" "Hello, world!"
}
# A read held 4 s in the fs (delay_ms): the upgrade gives up after the 500 ms drain
# timeout with EBUSY, the read completes, a later upgrade works.
S2=$WORK/s2 M2=$WORK/m2
drain_timeout() {
	host "$M2" "$S2" "fs=$H/libhello.so,delay_ms=4000" none && ctl "$S2" drain_timeout_ms 500 >/dev/null || return 1
	cat "$M2/hello" >"$WORK/slow" &
	reader=$!
	sleep 1
	start=$(date +%s%N)
	refused "$S2" EBUSY upgrade "$H/libhello_v2.so"
	r=$?
	took=$((($(date +%s%N) - start) / 1000000))
	wait "$reader" && is "held read" "$(cat "$WORK/slow")" "Hello, world!" &&
		[ "$r" = 0 ] && logged "did not return within 500 ms" &&
		{ [ "$took" -ge 450 ] && [ "$took" -lt 3000 ] || { echo "refused after $took ms"; false; }; } &&
		is "then" "$(ctl "$S2" upgrade "$H/libhello_v2.so")" 2 && unmount "$M2" "$S2"
}
hello_umount() { unmount "$M1" "$S1" && [ ! -e "$S1" ] && ! ctl "$S1" status 2>/dev/null; }

S3=$WORK/s3 M3=$WORK/m3 IMG=$WORK/x.img
xv6_mount() {
	"$TOOLS/mkfs-xv6fs" -q -s 512M "$IMG" && host "$M3" "$S3" "fs=$H/libxv6fs.so" "$IMG" &&
		is version "$(status "$S3" version)" 1
}
version_is() {
	is version "$(status "$S3" version)" "$1" || return 1
	x=$("$TOOLS/bento_getxattr" "$M3" trusted.xv6fs.version 2>&1)
	if [ "$1" = 2 ]; then is "v2's version xattr" "$x" 2; else is "version xattr (v1 has none)" "$x" "No data available"; fi
}
pause_of() {
	p=$(status "$S3" last_pause_ns) n=$(status "$S3" last_drain_ns)
	echo "$p" >>"$WORK/pauses" && echo $((p - n)) >>"$WORK/pauses-handover"
}
xv6_cycles() {
	mkdir -p "$M3/load" "$WORK/fsx"
	"$TOOLS/upgrade_load" "$M3/load" "$WORK/stop" >"$WORK/load" 2>&1 &
	load=$!
	(cd "$WORK/fsx" && exec "$TOOLS/fsx" -N 100000000 -S 11 -P "$WORK/fsx" "$M3/fsxfile") >"$WORK/fsx.out" 2>&1 &
	fsxpid=$!
	(
		while [ ! -e "$WORK/stop" ]; do
			stat "$M3" "$M3/." "$M3/load" >/dev/null 2>>"$WORK/statfail.err" || echo x >>"$WORK/statfail"
		done
	) &
	statpid=$!
	sleep 2
	i=0 r=0
	while [ "$i" -lt "$CYCLES" ]; do
		v=$(ctl "$S3" upgrade "$H/libxv6fs_v2.so") && pause_of && version_is 2 &&
			v=$(ctl "$S3" downgrade "$H/libxv6fs.so") && pause_of && version_is 1 ||
			{ echo "cycle $i failed ($v)"; r=1; break; }
		i=$((i + 1))
	done
	touch "$WORK/stop"
	wait "$load" || { echo "upgrade_load failed:"; r=1; }
	cat "$WORK/load"
	stop_checkers "$fsxpid" "$statpid" || r=1
	is upgrades "$(status "$S3" upgrades)" $((2 * i)) || r=1
	med=$(awk '/^ops/ { print $6; exit }' "$WORK/load")
	for f in pauses pauses-handover; do
		[ -s "$WORK/$f" ] || continue
		what="pause"
		[ "$f" = pauses ] || what="  of which handover (not drain)"
		pause_line "$what" "$WORK/$f" "$med"
	done >"$WORK/pause-summary"
	return "$r"
}
# Switches back and forth while the mount goes away: each either completes or fails
# with ENODEV; the host exits cleanly.
xv6_umount_race() {
	rm -f "$M3/fsxfile"
	(
		while ctl "$S3" upgrade "$H/libxv6fs_v2.so" >/dev/null 2>&1 &&
			ctl "$S3" downgrade "$H/libxv6fs.so" >/dev/null 2>&1; do :; done
	) &
	racer=$!
	sleep 0.5
	unmount "$M3" "$S3" && wait "$racer"
	! grep -q panicked "$HLOG" || { grep panicked "$HLOG"; false; }
}
xv6_fsck() { "$TOOLS/fsck-xv6fs" -fn "$IMG"; }

ktap_print_header
ktap_set_plan 14
t "bento-fuse mounts hello v1 from libhello.so" hello_mount
t "hello v1 serves its tree as fuse.hello" hello_v1
t "upgrade to hello_v2: its new file appears, an open fd and the mount time survive" hello_upgrade
t "the same or an older version is refused (EPERM), with a log line" hello_older
t "explicit downgrade to v1 (v2's file gone at once) and upgrade back" hello_downgrade
t "bad versions refused: not a version, own bento copy, ABI, build id (ENOEXEC), other fs (EINVAL)" hello_bad
t "a state format the new version cannot read is refused (EPROTO)" hello_badstate
t "failed import (hello_broken): the mount stays on v2 with its state" hello_broken
t "a call held in the fs: EBUSY after the 500 ms drain timeout, the call completes" drain_timeout
t "unmount: the host exits and removes its socket" hello_umount
t "bento-fuse mounts xv6fs v1 from libxv6fs.so" xv6_mount
t -b 1800 "xv6fs: $CYCLES cycles v1 -> v2 -> v1 under upgrade_load, fsx and a stat loop" xv6_cycles
[ -s "$WORK/pause-summary" ] && sed 's/^/# /' "$WORK/pause-summary"
t "xv6fs: switches racing the unmount; the host exits cleanly" xv6_umount_race
t "fsck.xv6fs -fn: clean" xv6_fsck
ktap_finished
