#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Fail if a kernel log shows a bug, warning, oops, sanitizer report, lockdep
# splat or Rust panic.
#
# Usage: dmesg | check-dmesg.sh      or      check-dmesg.sh LOGFILE
#
# Exit 0: clean. Exit 1: offending lines printed (with line numbers) on
# stdout. Exit 2: usage error / unreadable file.
# BENTO_DMESG_IGNORE: optional extended regex (unanchored: lines carry an
# "N:" prefix when it is applied); matching lines are skipped
# (for known-benign messages; keep it narrow).
#
# Runs in the guest: POSIX sh and busybox grep only.
set -eu

[ $# -le 1 ] || { echo "usage: check-dmesg.sh [LOGFILE]" >&2; exit 2; }
log=${1:--}
if [ "$log" != - ] && [ ! -r "$log" ]; then
	echo "check-dmesg.sh: cannot read $log" >&2
	exit 2
fi

# One extended regex. "WARNING:" also covers lockdep headers (their "===="
# banner lines are followed by "WARNING: possible ..."); "kernel BUG at",
# hung-task and RCU-stall lines carry no "BUG:".
re='BUG:|WARNING:|Oops|Kernel panic|general protection fault|KASAN:|UBSAN:'
re="$re|possible circular locking dependency|INFO: possible recursive locking"
re="$re|rust_panic|panicked at|Call Trace:|kernel BUG at"
re="$re|INFO: task .* blocked for more than|rcu: INFO: .* stall"

ignore=${BENTO_DMESG_IGNORE:-}
if [ -n "$ignore" ]; then
	hits=$(grep -n -E -e "$re" -- "$log" | grep -v -E -e "$ignore" || true)
else
	hits=$(grep -n -E -e "$re" -- "$log" || true)
fi

[ -z "$hits" ] && exit 0
echo "check-dmesg.sh: kernel log contains errors:"
printf '%s\n' "$hits"
exit 1
