#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs pjdfstest (crate pjdfstest, POSIX semantics) in directory DIR of a mounted file
# system and prints its results as KTAP (one line per case), for check.sh's counters.
# Usage: pjdfstest.sh PJDFSTEST_BINARY DIR [SECONDARY_DIR]
# DIR's file system must let other users in (FUSE: -o allow_other); users `tests` and
# `nobody` and group `nogroup` must exist. SECONDARY_DIR, on another file system, enables
# the cross-device (EXDEV) cases. PJDFSTEST_TIMEOUT: seconds (default 900).
# Runs under busybox sh too (the guest has no bash: run it as `sh pjdfstest.sh`).
set -uo pipefail
bin=$1 dir=$2 second=${3:-}
conf=$(cd "$(dirname "$0")" && pwd)/pjdfstest.toml
log=$(mktemp)
trap 'rm -f "$log"' EXIT
mkdir -p "$dir" && chmod 0777 "$dir"
if [ -n "$second" ]; then
	mkdir -p "$second" && chmod 0777 "$second"
	set -- -s "$second"
else
	set --
fi
(cd "$dir" && timeout "${PJDFSTEST_TIMEOUT:-900}" "$bin" -c "$conf" -p "$dir" "$@") > "$log" 2>&1
rc=$?
echo "TAP version 13"
awk '
	/^[a-z_]+::[^ ]+ +(ok|skipped|FAILED|failed)$/ {
		n++
		if ($2 == "ok") printf "ok %d %s\n", n, $1
		else if ($2 == "skipped") printf "ok %d %s # SKIP\n", n, $1
		else printf "not ok %d %s\n", n, $1
	}
	/^Summary:/ { print "# " $0 }
	END { printf "1..%d\n", n }' "$log"
# A crash or a hang of pjdfstest itself is a failure too.
if [ "$rc" != 0 ] && ! grep -q '^Summary: 0 failed' "$log"; then
	echo "not ok 0 pjdfstest exited with status $rc"
	tail -20 "$log" | sed 's/^/# /'
fi
