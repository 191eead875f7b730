#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The guest part of the tests: boots the built kernel (guest.sh) and runs the kselftests
# of tools/testing/selftests/filesystems/bento on a fresh xv6fs disk, then checks the
# guest's kernel log (check-dmesg.sh: no oops, WARN, BUG, KASAN report, lockdep splat).
# One "# guest: NAME  N passed, ..." line per KTAP file, then "N passed, N failed,
# N skipped"; exit status 0 only if nothing failed.
# check.sh runs it as its last group (and counts its last line); `make check-debug` runs
# it alone on the debug kernel (BENTO_VARIANT=debug, lib.sh).
# Usage: check-guest.sh [--build] [LOGDIR]
#   --build   install what is missing and build the kernel first (deps.sh,
#             build-kernel.sh); a failed build counts as one failure
#   LOGDIR    guest-console.log and guest-results/ (KTAP, dmesg); default, emptied first:
#             $BENTO_CACHE/check-logs$BENTO_SUFFIX
# Environment: BENTO_TIMEOUT, the guest's time limit in seconds (default 600; 3600 for
# the debug kernel, several times slower under TCG).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$BENTO_ROOT" || exit 1

build=0
[ "${1:-}" = --build ] && { build=1; shift; }
logs=${1:-}
if [ -z "$logs" ]; then
	logs=$BENTO_CACHE/check-logs$BENTO_SUFFIX
	rm -rf "$logs"
fi
mkdir -p "$logs"

PASS=0 FAIL=0 SKIP=0
count() { # name pass fail skip
	PASS=$((PASS + $2)) FAIL=$((FAIL + $3)) SKIP=$((SKIP + $4))
	printf '# %-40s %3d passed, %d failed, %d skipped\n' "$1" "$2" "$3" "$4"
}
summary() {
	[ -n "${1:-}" ] || echo "# logs: $logs"
	echo "$PASS passed, $FAIL failed, $SKIP skipped"
	[ "$FAIL" = 0 ]
	exit
}
# KTAP file -> "pass fail skip" (top-level and nested result lines alike).
ktap_counts() {
	awk '/^[ \t]*ok [0-9]+/ { if ($0 ~ /# *SKIP/) s++; else p++ }
	     /^[ \t]*not ok [0-9]+/ { f++ }
	     END { printf "%d %d %d\n", p, f, s }' "$1"
}

if [ "$build" = 1 ]; then
	log "dependencies"; bash tools/testing/bento/deps.sh || { count "dependencies" 0 1 0; summary; }
	log "${BENTO_VARIANT:+$BENTO_VARIANT }kernel"
	bash tools/testing/bento/build-kernel.sh || { count "kernel build" 0 1 0; summary; }
fi

log "kernel selftests (QEMU guest, TCG${BENTO_VARIANT:+, $BENTO_VARIANT kernel})"
share=$(mktemp -d "${TMPDIR:-/tmp}/bento-check.XXXXXX")
# The upgrade test's cycles: 100; 20 on the debug kernel (each takes ~6 s there).
cycles=BENTO_UPGRADE_CYCLES=100
[ "$BENTO_VARIANT" = debug ] && cycles=BENTO_UPGRADE_CYCLES=20
# In the guest: each TEST_PROG writes KTAP to /host/results, then dmesg is checked.
# shellcheck disable=SC2016 # expanded in the guest
guest_cmd='cd /host/selftests/filesystems/bento
for t in $(sed -n "s/^TEST_PROGS *:= *//p" Makefile); do
	echo "# selftest $t"; '"$cycles"' sh ./$t 2>&1 | tee /host/results/$t.ktap
done
dmesg > /host/results/dmesg.txt
if check-dmesg.sh /host/results/dmesg.txt > /host/results/dmesg-check.txt; then
	echo "ok 1 dmesg clean" > /host/results/dmesg.ktap
else
	cat /host/results/dmesg-check.txt; echo "not ok 1 dmesg clean" > /host/results/dmesg.ktap
fi'
# A fresh xv6fs disk for the kselftests (not make run's image, one per variant); a time
# cap (TCG).
timeout_s=600
[ "$BENTO_VARIANT" = debug ] && timeout_s=3600
img=$BENTO_CACHE/xv6fs-check$BENTO_SUFFIX.img
rm -f "$img"
BENTO_NO_SETUP=1 BENTO_SHARE=$share BENTO_XV6FS_IMG=$img \
	BENTO_TIMEOUT=${BENTO_TIMEOUT:-$timeout_s} \
	bash tools/testing/bento/guest.sh "$guest_cmd" > "$logs/guest-console.log" 2>&1
rc=$?
rm -rf "$logs/guest-results"
cp -r "$share/results" "$logs/guest-results" 2>/dev/null
rm -rf "$share"
shopt -s nullglob
results=("$logs"/guest-results/*.ktap)
if [ ${#results[@]} -eq 0 ]; then
	count "guest (did not run: exit $rc)" 0 1 0
	tail -40 "$logs/guest-console.log"
elif [ "$rc" != 0 ]; then   # 124: timed out, 125: panic; the results are partial
	count "guest (exit $rc: see guest-console.log)" 0 1 0
	tail -20 "$logs/guest-console.log"
fi
for k in "${results[@]}"; do
	read -r p f s < <(ktap_counts "$k")
	[ $((p + f + s)) -gt 0 ] || f=1
	count "guest: $(basename "$k" .ktap)" "$p" "$f" "$s"
	grep -E '^[[:space:]]*not ok' "$k"
done
[ -s "$logs/guest-results/dmesg-check.txt" ] && cat "$logs/guest-results/dmesg-check.txt"

# Power cuts during a kernel xv6fs workload, and dirty journals crossing builds.
log "crash consistency (power cuts, QEMU guest)"
bash tools/testing/bento/crash-kernel.sh 3 > "$logs/crash-kernel.ktap" 2>"$logs/crash-kernel.err"
read -r p f s < <(ktap_counts "$logs/crash-kernel.ktap")
[ $((p + f + s)) -gt 0 ] || f=1
count "guest: crash-kernel" "$p" "$f" "$s"
grep -A12 '^not ok' "$logs/crash-kernel.ktap"
summary "${1:-}"
