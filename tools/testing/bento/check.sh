#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# 'make check': every test of the project, ending with one line "N passed, N failed,
# N skipped". Installs what is missing and builds what is stale first.
#   1. cargo: rustfmt, clippy (-D warnings), unit tests          (host)
#   2. FUSE: the samples as FUSE programs                         (host)
#   3. kselftests of tools/testing/selftests/filesystems/bento    (QEMU guest)
#   4. the guest's dmesg: no oops, WARN, BUG, lockdep splat       (QEMU guest)
#   5. make bench --quick: every benchmark runs and gives a figure  (QEMU guest)
# Each group counts its KTAP / cargo results; a group that cannot run counts as failed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$BENTO_ROOT" || exit 1

PASS=0 FAIL=0 SKIP=0
logs=$BENTO_CACHE/check-logs
rm -rf "$logs"; mkdir -p "$logs"
# Debian's 1.85, the kernel's compiler (toolchain.md). `cargo clippy`/`cargo fmt` would
# run rustup's cargo-clippy/cargo-fmt from ~/.cargo/bin first, so call Debian's directly.
CARGO=/usr/bin/cargo

count() { # name pass fail skip
	PASS=$((PASS + $2)) FAIL=$((FAIL + $3)) SKIP=$((SKIP + $4))
	printf '# %-40s %3d passed, %d failed, %d skipped\n' "$1" "$2" "$3" "$4"
}

# KTAP file -> "pass fail skip" (top-level and nested result lines alike).
ktap_counts() {
	awk '/^[ \t]*ok [0-9]+/ { if ($0 ~ /# *SKIP/) s++; else p++ }
	     /^[ \t]*not ok [0-9]+/ { f++ }
	     END { printf "%d %d %d\n", p, f, s }' "$1"
}

# One pass/fail check: name, command.
check_one() {
	local name=$1 log; shift
	log=$logs/$(echo "$name" | tr ' /' '__').log
	if "$@" >"$log" 2>&1; then count "$name" 1 0 0
	else count "$name" 0 1 0; sed 's/^/    /' "$log" | tail -30; fi
}

log "dependencies"; bash tools/testing/bento/deps.sh || exit 1
log "kernel";       bash tools/testing/bento/build-kernel.sh || { count "kernel build" 0 1 0; echo "$PASS passed, $FAIL failed, $SKIP skipped"; exit 1; }

log "cargo"
check_one "cargo fmt --check" /usr/bin/cargo-fmt --all --check
check_one "rustfmt --check fs/bento" /usr/bin/rustfmt --edition 2021 --check fs/bento/bentofs.rs
check_one "shellcheck" shellcheck -e SC1090,SC1091,SC2148 tools/testing/bento/*.sh tools/testing/bento/bench/*.sh \
	tools/testing/selftests/filesystems/bento/*.sh .ci/run
check_one "kernel clippy (CLIPPY=1)" bash tools/testing/bento/kernel-clippy.sh
check_one "cargo clippy" /usr/bin/cargo-clippy clippy --workspace --all-targets --quiet -- -D warnings
"$CARGO" build --workspace --quiet 2>&1 | tail -20
"$CARGO" test --workspace --no-fail-fast 2>&1 | tee "$logs/cargo-test.log" | grep -E '^test .* FAILED|^error' || true
read -r p f < <(awk '/^test result:/ { p += $4; f += $6 } END { print p+0, f+0 }' "$logs/cargo-test.log")
grep -q '^test result:' "$logs/cargo-test.log" || f=$((f + 1))
count "cargo test" "$p" "$f" 0

log "FUSE (host)"
KTAP_HELPERS=$KSRC/tools/testing/selftests/kselftest/ktap_helpers.sh \
	sh tools/testing/bento/fuse-hello.sh "$BENTO_ROOT/target/debug/hello" > "$logs/fuse-hello.ktap" 2>&1
read -r p f s < <(ktap_counts "$logs/fuse-hello.ktap")
[ $((p + f + s)) -gt 0 ] || f=1
count "fuse: hello" "$p" "$f" "$s"
grep '^not ok' "$logs/fuse-hello.ktap"
KTAP_HELPERS=$KSRC/tools/testing/selftests/kselftest/ktap_helpers.sh \
	sh tools/testing/bento/fuse-xv6fs.sh "$BENTO_ROOT/target/debug" > "$logs/fuse-xv6fs.ktap" 2>&1
read -r p f s < <(ktap_counts "$logs/fuse-xv6fs.ktap")
[ $((p + f + s)) -gt 0 ] || f=1
count "fuse: xv6fs" "$p" "$f" "$s"
grep '^not ok' "$logs/fuse-xv6fs.ktap"
# fsx (data integrity: reads, writes, truncates, mmap, hole punching) on a FUSE mount.
fsx_run() {
	local d rc
	d=$(mktemp -d) && mkdir "$d/mnt" &&
		"$BENTO_ROOT/target/debug/mkfs-xv6fs" -q -s 256M "$d/img" &&
		"$BENTO_ROOT/target/debug/xv6fs" "$d/img" "$d/mnt" || return 1
	(cd "$d" && timeout 600 "$BENTO_TOOLS/bin/fsx" -N 10000 -S 7 -P "$d" "$d/mnt/fsxfile")
	rc=$?
	fusermount3 -u "$d/mnt"
	rm -rf "$d"
	return "$rc"
}
check_one "fuse: xv6fs fsx (10000 ops)" fsx_run
# Live upgrade in FUSE mode: bento-fuse with the versions as shared objects.
fuse_upgrade() {
	local hostdir separate tools
	hostdir=$(bash tools/testing/bento/fuse-host-build.sh) &&
		separate=$(bash tools/testing/bento/fuse-host-build.sh --separate-bento) || return 1
	tools=$(mktemp -d) &&
		gcc -O2 -Wall -o "$tools/upgrade_load" tools/testing/selftests/filesystems/bento/upgrade_load.c &&
		gcc -O2 -Wall -o "$tools/bento_getxattr" tools/testing/selftests/filesystems/bento/bento_getxattr.c &&
		ln -s "$BENTO_ROOT/target/debug/mkfs-xv6fs" "$BENTO_ROOT/target/debug/fsck-xv6fs" \
			"$BENTO_TOOLS/bin/fsx" "$tools/" || return 1
	KTAP_HELPERS=$KSRC/tools/testing/selftests/kselftest/ktap_helpers.sh \
		sh tools/testing/bento/fuse-upgrade.sh "$hostdir" "$separate" "$tools"
	rm -rf "$tools"
}
fuse_upgrade > "$logs/fuse-upgrade.ktap" 2>&1
read -r p f s < <(ktap_counts "$logs/fuse-upgrade.ktap")
[ $((p + f + s)) -gt 0 ] || f=1
count "fuse: live upgrade (bento-fuse)" "$p" "$f" "$s"
grep -E '^not ok|^# (pause|  of which)' "$logs/fuse-upgrade.ktap"
# pjdfstest on a FUSE xv6fs mount (others must get in: allow_other).
# The test users must be able to reach the mount point.
pjd=$(mktemp -d) && chmod 755 "$pjd" && mkdir "$pjd/mnt"
"$BENTO_ROOT/target/debug/mkfs-xv6fs" -q -s 256M "$pjd/img" &&
	"$BENTO_ROOT/target/debug/xv6fs" -o allow_other "$pjd/img" "$pjd/mnt"
bash tools/testing/bento/pjdfstest.sh "$BENTO_TOOLS/bin/pjdfstest" "$pjd/mnt/pjd" > "$logs/fuse-xv6fs-pjdfstest.ktap" 2>&1
fusermount3 -u "$pjd/mnt"; rm -rf "$pjd"
read -r p f s < <(ktap_counts "$logs/fuse-xv6fs-pjdfstest.ktap")
[ $((p + f + s)) -gt 0 ] || f=1
count "fuse: xv6fs pjdfstest" "$p" "$f" "$s"
grep '^not ok' "$logs/fuse-xv6fs-pjdfstest.ktap"

# The kselftests in the QEMU guest and its dmesg: check-guest.sh (make check-debug runs
# it too, on the debug kernel). Its group lines are shown; its last line, "N passed, N
# failed, N skipped", goes into the totals.
bash tools/testing/bento/check-guest.sh "$logs" > "$logs/check-guest.txt"
summary_re='^([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$'
grep -vE "$summary_re" "$logs/check-guest.txt"
read -r p f s < <(sed -nE "s/$summary_re/\\1 \\2 \\3/p" "$logs/check-guest.txt" | tail -n 1)
if [ -n "${p:-}" ]; then PASS=$((PASS + p)) FAIL=$((FAIL + f)) SKIP=$((SKIP + s))
else count "guest (check-guest.sh gave no result)" 0 1 0; fi

# make bench in quick mode: one guest, every benchmark tiny, each figure must come out.
bash tools/testing/bento/bench/bench.sh --quick > "$logs/bench-quick.txt" 2>&1
read -r p f < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$logs/bench-quick.txt" |
	tail -n 1)
if [ -n "${p:-}" ]; then count "bench (quick: figures came out)" "$p" "$f" 0
else count "bench (quick) gave no result" 0 1 0; tail -20 "$logs/bench-quick.txt"; fi
grep -E '^(not ok|bench: FAILED)' "$logs/bench-quick.txt"

echo "# logs: $logs"
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" = 0 ]
