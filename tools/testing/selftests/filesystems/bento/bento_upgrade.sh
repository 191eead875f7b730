#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# cat and ls are the point here: they exercise the file system under test.
# shellcheck disable=SC2002
#
# Live upgrade in the kernel. hello: modprobe hello_v2 switches every mount (its new
# file appears, state and open files survive), the old module can go, older versions
# are refused unless the administrator allows a downgrade through sysfs, modules with
# another build id / ABI / state format are refused, a failing upgrade (hello_broken)
# leaves every mount on its version, a call held in the fs makes the upgrade time out
# with EBUSY, upgrades race mounts and unmounts. xv6fs: BENTO_UPGRADE_CYCLES (default
# 100) upgrades v1 -> v2 and downgrades back on two file systems while a verifying
# workload (upgrade_load, fsx) and a stat loop run: no failed operation, data
# verified, fsck clean; the pause (p50, p99) is printed, absolute and as a multiple of
# the workload's median operation latency. Then upgrades during fsfreeze and racing
# remounts.
# Needs hello, hello_v2, hello_broken, xv6fs, xv6fs_v2 modules, the test disk
# (serial xv6fs, as bento_xv6fs.sh), mkfs.xv6fs, fsck.xv6fs, fsx, losetup.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/../../kselftest/ktap_helpers.sh"

# shellcheck disable=SC2034 # used by bento_lib.sh
TEST_NAME=bento_upgrade.sh
WORK=/tmp/bento-upgrade.work
# shellcheck disable=SC2034 # used by bento_lib.sh
LOG=$WORK/log
SYS=/sys/fs/bento
H1=/tmp/bento-up-h1 H2=/tmp/bento-up-h2 H3=/tmp/bento-up-h3
X1=/tmp/bento-up-x1 X2=/tmp/bento-up-x2
CYCLES=${BENTO_UPGRADE_CYCLES:-100}
BAD=$DIR/bad-modules
mkdir -p "$WORK" "$H1" "$H2" "$H3" "$X1" "$X2"
. "$DIR/bento_lib.sh"
dev=$(find_test_disk)

# ---- helpers -----------------------------------------------------------------------


# The kernel log since this check started must match a pattern.
logged() {
	log_since_mark | grep -q "$1" || { echo "no log line matching '$1'"; return 1; }
}
# fails_with "message ERE" command...: the command fails with a matching message.
fails_with() {
	want=$1
	shift
	if "$@" 2>"$WORK/err"; then
		echo "'$*' succeeded"
		return 1
	fi
	grep -qE "$want" "$WORK/err" || { echo "'$*':"; cat "$WORK/err"; return 1; }
}
hello_versions() { # expected version of every hello mount, by file and by sysfs
	for m in "$H1" "$H2"; do
		if [ "$1" = 1 ]; then
			[ ! -e "$m/version" ] || { echo "$m/version exists on version 1"; return 1; }
		else
			is "$m/version" "$(cat "$m/version")" "$1" || return 1
		fi
		is "$m/hello" "$(cat "$m/hello")" "Hello, world!" || return 1
		is "sysfs version of $m" "$(cat "$(sb_sysfs_dir hello "$m")/version")" "$1" || return 1
	done
	is "sysfs version of hello" "$(cat "$SYS/hello/version")" "$1"
}
# flip FS: 20 switches to version 1 and back to 2 (both loaded) through sysfs.
flip() {
	n=0
	while [ "$n" -lt 20 ]; do
		echo 1 >"$SYS/$1/downgrade" && echo 2 >"$SYS/$1/downgrade" || return 1
		n=$((n + 1))
	done
}
unload_all() {
	for m in "$H1" "$H2" "$H3" "$X1" "$X2"; do
		grep -q " $m " /proc/mounts && umount "$m"
	done
	for mod in hello_broken hello_v2 hello xv6fs_v2 xv6fs; do
		grep -q "^$mod " /proc/modules && rmmod "$mod"
	done
	[ -s "$WORK/loopdev" ] && losetup -d "$(cat "$WORK/loopdev")" 2>/dev/null
	return 0
}

# ---- hello -------------------------------------------------------------------------

hello_setup() {
	modprobe hello && mount -t hello none "$H1" && mount -t bento -o fs=hello none "$H2" &&
		hello_versions 1 && is module "$(cat "$SYS/hello/module")" hello &&
		is loaded "$(cat "$SYS/hello/loaded")" "1 hello" &&
		stat -c %y "$H1/hello" >"$WORK/mtime"
}
bad_modules() {
	[ -d "$BAD" ] || { skipping "no bad modules (bad-modules.py did not run)"; return; }
	# (busybox insmod says "invalid module format" for ENOEXEC)
	fails_with "Exec format error|invalid module format" insmod "$BAD/badbuild.ko" &&
		logged "rebuild the module" &&
		fails_with "Exec format error|invalid module format" insmod "$BAD/badabi.ko" &&
		logged "ops ABI" &&
		fails_with "Protocol error" insmod "$BAD/badstate.ko" && logged "state formats" &&
		hello_versions 1
}
hello_upgrade() {
	modprobe hello_v2 && hello_versions 2 &&
		is "mtime (state handed over)" "$(stat -c %y "$H1/hello")" "$(cat "$WORK/mtime")" &&
		is upgrades "$(cat "$(sb_sysfs_dir hello "$H1")/upgrades")" 1 &&
		[ "$(cat "$(sb_sysfs_dir hello "$H1")/last_pause_ns")" -gt 0 ] &&
		logged "switched from version 1 (hello) to 2 (hello_v2)"
}
open_fd_reads() { is "read through fd 3" "$(cat <&3)" "Hello, world!"; }
old_module_goes() {
	rmmod hello && is loaded "$(cat "$SYS/hello/loaded")" "2 hello_v2" &&
		! rmmod hello_v2 2>/dev/null && grep -q "^hello_v2 " /proc/modules
}
new_mount_current() {
	mount -t hello none "$H3" && is "$H3/version" "$(cat "$H3/version")" 2 && umount "$H3"
}
older_refused() {
	fails_with "Operation not permitted" modprobe hello && logged "refused version 1" &&
		hello_versions 2
}
downgrade_load() {
	echo 1 >"$SYS/hello/downgrade" && modprobe hello && hello_versions 1 &&
		is upgrades "$(cat "$(sb_sysfs_dir hello "$H2")/upgrades")" 2
}
switch_loaded() { echo 2 >"$SYS/hello/downgrade" && hello_versions 2; }
broken_upgrade() {
	fails_with "Input/output error" modprobe hello_broken &&
		logged "every superblock stays" && hello_versions 2 &&
		! grep -q "^hello_broken " /proc/modules &&
		is "mtime (old instances resumed)" "$(stat -c %y "$H1/hello")" "$(cat "$WORK/mtime")"
}
# A read that sleeps 4 s in the fs holds the gate: the drain times out after 500 ms,
# the upgrade fails with EBUSY, the read completes, nothing changed.
drain_timeout() {
	mount -t hello -o delay_ms=4000 none "$H3" || return 1
	echo 500 >"$SYS/hello/drain_timeout_ms" || return 1
	(cat "$H3/hello" >"$WORK/slow") &
	reader=$!
	sleep 1
	fails_with "busy" sh -c "echo 1 > $SYS/hello/downgrade"
	r=$?
	wait "$reader" || { echo "the held read failed"; r=1; }
	echo 1000 >"$SYS/hello/drain_timeout_ms"
	[ "$r" = 0 ] && is "held read" "$(cat "$WORK/slow")" "Hello, world!" &&
		logged "did not return within 500 ms" && hello_versions 2 &&
		is "$H3/version" "$(cat "$H3/version")" 2 && umount "$H3"
}
# Upgrades and downgrades while another task mounts and unmounts: every mount ends
# on the current version, nothing fails.
race_mounts() {
	rm -f "$WORK/stop" "$WORK/mfail"
	(
		while [ ! -e "$WORK/stop" ]; do
			mount -t hello none "$H3" || echo "mount failed" >>"$WORK/mfail"
			[ "$(cat "$H3/hello")" = "Hello, world!" ] || echo "read failed" >>"$WORK/mfail"
			umount "$H3" || echo "umount failed" >>"$WORK/mfail"
		done
	) &
	racer=$!
	flip hello
	r=$?
	touch "$WORK/stop"
	wait "$racer"
	[ ! -s "$WORK/mfail" ] || { cat "$WORK/mfail"; r=1; }
	[ "$r" = 0 ] && hello_versions 2
}
hello_done() {
	umount "$H1" && umount "$H2" && rmmod hello_v2 && rmmod hello &&
		! grep -qw hello /proc/filesystems
}

# ---- xv6fs -------------------------------------------------------------------------

xv6fs_setup() {
	[ -b "$dev" ] || { skipping "no xv6fs test disk"; return; }
	command -v losetup >/dev/null || { skipping "no losetup"; return; }
	timeout 120 mkfs.xv6fs -q "$dev" || return 1
	rm -f "$WORK/x2.img"
	timeout 120 mkfs.xv6fs -q -s 64M "$WORK/x2.img" || return 1
	# (busybox losetup has no --show)
	losetup -f >"$WORK/loopdev" && losetup "$(cat "$WORK/loopdev")" "$WORK/x2.img" || return 1
	modprobe xv6fs && mount -t xv6fs "$dev" "$X1" && mount -t xv6fs "$(cat "$WORK/loopdev")" "$X2"
}
# version_is V: both xv6fs mounts run V, by sysfs and by v2's xattr on the root.
version_is() {
	for m in "$X1" "$X2"; do
		is "sysfs version of $m" "$(cat "$(sb_sysfs_dir xv6fs "$m")/version")" "$1" || return 1
		x=$("$DIR/bento_getxattr" "$m" trusted.xv6fs.version)
		if [ "$1" = 2 ]; then
			is "v2's version xattr on $m" "$x" 2 || return 1
		else
			is "version xattr on $m (v1 has none)" "$x" "No data available" || return 1
		fi
	done
}
# The last switch's pause, and the part of it not spent draining (the handover).
pause_of() {
	d=$(sb_sysfs_dir xv6fs "$X1")
	read -r p <"$d/last_pause_ns" && read -r n <"$d/last_drain_ns" &&
		echo "$p" >>"$WORK/$1" && echo $((p - n)) >>"$WORK/$1-handover"
}
upgrade_cycles() {
	rm -f "$WORK/stop" "$WORK/statfail" "$WORK"/pauses*
	[ -x "$DIR/upgrade_load" ] || { echo "no upgrade_load"; return 1; }
	"$DIR/upgrade_load" "$X1" "$WORK/stop" >"$WORK/load1" 2>&1 &
	load1=$!
	"$DIR/upgrade_load" "$X2" "$WORK/stop" >"$WORK/load2" 2>&1 &
	load2=$!
	mkdir -p "$WORK/fsx"
	(cd "$WORK/fsx" && exec fsx -N 100000000 -S 11 -P "$WORK/fsx" "$X2/fsxfile") \
		>"$WORK/fsx.out" 2>&1 &
	fsxpid=$!
	(
		while [ ! -e "$WORK/stop" ]; do
			stat "$X1" "$X2" "$X1/." "$X2/." >/dev/null 2>>"$WORK/statfail.err" ||
				echo x >>"$WORK/statfail"
		done
	) &
	statpid=$!
	sleep 2
	i=0 r=0
	while [ "$i" -lt "$CYCLES" ]; do
		# A freshly loaded v2 (and its first export, going back): under TCG the pause
		# includes translating the module's code the first time it runs.
		modprobe xv6fs_v2 || { echo "cycle $i: modprobe xv6fs_v2 failed"; r=1; break; }
		pause_of pauses-fresh
		version_is 2 || { r=1; break; }
		echo 1 >"$SYS/xv6fs/downgrade" || { echo "cycle $i: downgrade failed"; r=1; break; }
		pause_of pauses-fresh
		version_is 1 || { r=1; break; }
		# Both versions loaded and run before: the steady-state pause.
		for v in 2 1; do
			echo "$v" >"$SYS/xv6fs/downgrade" || { echo "cycle $i: switch to $v failed"; r=1; }
			pause_of pauses
		done
		if [ "$r" != 0 ] || ! version_is 1; then
			r=1
			break
		fi
		rmmod xv6fs_v2 || { echo "cycle $i: rmmod xv6fs_v2 failed"; r=1; break; }
		i=$((i + 1))
	done
	touch "$WORK/stop"
	wait "$load1" || { echo "upgrade_load on $X1 failed:"; r=1; }
	wait "$load2" || { echo "upgrade_load on $X2 failed:"; r=1; }
	cat "$WORK/load1" "$WORK/load2"
	stop_checkers "$fsxpid" "$statpid" || r=1
	is "upgrades of $X1" "$(cat "$(sb_sysfs_dir xv6fs "$X1")/upgrades")" $((4 * i)) || r=1
	med=$(awk '/^ops/ { print $6; exit }' "$WORK/load1")
	for f in pauses pauses-handover pauses-fresh pauses-fresh-handover; do
		[ -s "$WORK/$f" ] || continue
		case $f in
		pauses) what="pause between loaded versions" ;;
		pauses-handover) what="  of which handover (not drain)" ;;
		pauses-fresh) what="pause to/from a freshly loaded module" ;;
		*) what="  of which handover (not drain)" ;;
		esac
		pause_line "$what" "$WORK/$f" "$med" " of 2 superblocks"
	done >"$WORK/pause-summary"
	return "$r"
}
xv6fs_fsck() {
	pkill -f "fsx .*$X2" 2>/dev/null
	rm -f "$X2/fsxfile"
	umount "$X1" && umount "$X2" || return 1
	timeout 300 fsck.xv6fs -fn "$dev" && timeout 300 fsck.xv6fs -fn "$WORK/x2.img"
}
# An upgrade of a frozen file system: it switches, writes wait for the thaw.
upgrade_frozen() {
	mount -t xv6fs "$dev" "$X1" && mount -t xv6fs "$(cat "$WORK/loopdev")" "$X2" || return 1
	timeout 60 fsfreeze --freeze "$X1" || return 1
	(echo during >"$X1/during") &
	writer=$!
	modprobe xv6fs_v2
	r=$?
	kill -0 "$writer" 2>/dev/null || { echo "a write went through on a frozen file system"; r=1; }
	timeout 60 fsfreeze --unfreeze "$X1" || r=1
	wait "$writer" || r=1
	[ "$r" = 0 ] && version_is 2 && is "$X1/during" "$(cat "$X1/during")" during
}
# Remounts ro/rw race downgrades and upgrades (v1 and v2 stay loaded).
race_remount() {
	rm -f "$WORK/stop" "$WORK/rfail"
	(
		while [ ! -e "$WORK/stop" ]; do
			mount -o remount,ro "$X1" || echo "remount,ro failed" >>"$WORK/rfail"
			mount -o remount,rw "$X1" || echo "remount,rw failed" >>"$WORK/rfail"
			echo x >"$X1/after" || echo "write failed" >>"$WORK/rfail"
		done
	) &
	racer=$!
	flip xv6fs
	r=$?
	touch "$WORK/stop"
	wait "$racer"
	[ ! -s "$WORK/rfail" ] || { cat "$WORK/rfail"; r=1; }
	[ "$r" = 0 ] && version_is 2 && umount "$X1" && umount "$X2" &&
		timeout 300 fsck.xv6fs -fn "$dev" && timeout 300 fsck.xv6fs -fn "$WORK/x2.img"
}
xv6fs_done() {
	rmmod xv6fs_v2 && rmmod xv6fs && losetup -d "$(cat "$WORK/loopdev")" && rm -f "$WORK/loopdev" &&
		timeout 120 mkfs.xv6fs -q "$dev" >/dev/null
}
log_clean() {
	command -v check-dmesg.sh >/dev/null || { skipping "no check-dmesg.sh"; return; }
	dmesg | check-dmesg.sh
}

# ---- the run -----------------------------------------------------------------------

ktap_print_header
ktap_set_plan 21

unload_all 2>/dev/null
if ! grep -qs '/hello_v2\.ko' "/lib/modules/$(uname -r)/modules.dep"; then
	NOT_RUN="no hello_v2 module in this kernel (CONFIG_SAMPLE_BENTO_HELLO_V2=m)"
fi
t "hello: two mounts on version 1, shown in /sys/fs/bento" hello_setup ||
	NOT_RUN=${NOT_RUN:-"hello does not mount"}
t "refused: another bento build id, ops ABI (ENOEXEC) or state format (EPROTO)" bad_modules
[ -z "$NOT_RUN" ] && exec 3<"$H1/hello"
t "modprobe hello_v2 upgrades both mounts; state kept" hello_upgrade
t "a file opened before the upgrade reads after it" open_fd_reads
t "the old module can go; the new one is in use" old_module_goes
t "new mounts get the current version" new_mount_current
t "loading an older version: EPERM and a log line" older_refused
t "sysfs downgrade allows loading version 1: every mount on it" downgrade_load
t "sysfs downgrade to a loaded version switches at once" switch_loaded
t "a failing upgrade (hello_broken) leaves every mount on its version" broken_upgrade
t "a call held in the fs: upgrade fails with EBUSY after the drain timeout" drain_timeout
t "upgrades race mount and umount" race_mounts
exec 3<&-
t "umount, unload" hello_done

NOT_RUN=
t "xv6fs: two file systems mounted (test disk, loop device)" xv6fs_setup ||
	NOT_RUN=${NOT_RUN:-"xv6fs did not mount"}
t -b 1800 "xv6fs: $CYCLES upgrades and downgrades under load: no failed op, data verified" \
	upgrade_cycles
[ -s "$WORK/pause-summary" ] && sed 's/^/# /' "$WORK/pause-summary"
t -b 600 "xv6fs: fsck clean after the upgrades" xv6fs_fsck
t "xv6fs: upgrade of a frozen file system; writes wait for the thaw" upgrade_frozen
t -b 600 "xv6fs: upgrades race remount ro/rw; fsck clean" race_remount
t "xv6fs: unload both versions" xv6fs_done
NOT_RUN=
unload_all 2>/dev/null
t "kernel log free of oopses, WARNs, BUGs" log_clean
t "every module unloaded" sh -c '! grep -qE "^(hello|xv6fs)" /proc/modules'

ktap_finished
