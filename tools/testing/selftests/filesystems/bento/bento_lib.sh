# SPDX-License-Identifier: GPL-2.0
# The harness the bento kselftests share (sourced): KTAP result lines, checks with a
# deadline, nested KTAP programs, kernel log marks, finding disks and sysfs directories
# (make bench's guest part uses those two too). The sourcing script sets TEST_NAME
# (for the log marks), WORK (a scratch directory) and LOG (a file in it), and sources
# ktap_helpers.sh first.
# shellcheck shell=sh
NOT_RUN=   # set: the remaining checks are skipped with this reason

# KTAP lines. printf, not ktap_helpers' unquoted echo: reasons may hold glob characters.
pass() {
	printf 'ok %d %s\n' "$KTAP_TESTNO" "$1"
	KTAP_TESTNO=$((KTAP_TESTNO + 1)) KTAP_CNT_PASS=$((KTAP_CNT_PASS + 1))
}
fail() {
	printf 'not ok %d %s\n' "$KTAP_TESTNO" "$1"
	KTAP_TESTNO=$((KTAP_TESTNO + 1)) KTAP_CNT_FAIL=$((KTAP_CNT_FAIL + 1))
}
skip() { # description reason
	printf 'ok %d %s # SKIP %s\n' "$KTAP_TESTNO" "$1" "$2"
	KTAP_TESTNO=$((KTAP_TESTNO + 1)) KTAP_CNT_SKIP=$((KTAP_CNT_SKIP + 1))
}
# is DESCRIPTION ACTUAL EXPECTED: compares, saying what differed.
is() { [ "$2" = "$3" ] || { echo "$1: '$2', expected '$3'"; return 1; }; }
# nth FILE P: the P-th percentile of the numbers in FILE.
nth() {
	sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR * p + 99) / 100); if (i < 1) i = 1; print v[i] }'
}
# pause_line WHAT FILE MEDIAN [SUFFIX]: one line on the pauses (ns) in FILE: how many
# (SUFFIX after "switches"), p50, p99, max, and p50 and p99 as multiples of MEDIAN (the
# load's median operation, ns).
pause_line() {
	p50=$(nth "$2" 50) p99=$(nth "$2" 99) max=$(nth "$2" 100)
	echo "$1, $(wc -l <"$2") switches${4:-}:" \
		"p50 $p50 ns, p99 $p99 ns, max $max ns; median op $3 ns:" \
		"p50 $(awk -v a="$p50" -v b="$3" 'BEGIN { printf "%.1f", a / b }')x," \
		"p99 $(awk -v a="$p99" -v b="$3" 'BEGIN { printf "%.1f", a / b }')x"
}
# stop_checkers FSXPID STATPID: after a load, waits for the stat loop and stops fsx,
# which must still be running; says so if fsx stopped early ($WORK/fsx.out) or stat
# calls failed ($WORK/statfail, $WORK/statfail.err), and then fails.
stop_checkers() {
	_sc_ok=0
	wait "$2"
	if kill -0 "$1" 2>/dev/null; then
		kill "$1"
		wait "$1"
	else
		wait "$1"
		echo "fsx stopped early (status $?):"
		tail -n 20 "$WORK/fsx.out"
		_sc_ok=1
	fi
	if [ -s "$WORK/statfail" ]; then
		echo "$(wc -l <"$WORK/statfail") stat calls failed:"
		sort -u "$WORK/statfail.err" | head
		_sc_ok=1
	fi
	return $_sc_ok
}
# A check that cannot run says why: skipping REASON (then returns its status).
skipping() { echo "$*" >"$WORK/skip"; return "$KSFT_SKIP"; }

# bounded SECONDS COMMAND...: runs COMMAND, output to $LOG, with a deadline. A command
# still running after it is stuck (in the kernel, where no signal reaches it): it is
# left behind, the status is 255, and the checks that follow are skipped (they would
# get stuck behind it).
bounded() {
	limit=$(($1 * 10))
	shift
	rm -f "$WORK/rc" "$WORK/skip"
	("$@"; echo $? >"$WORK/rc") >"$LOG" 2>&1 &
	pid=$!
	waited=0
	while [ ! -e "$WORK/rc" ]; do
		if [ "$waited" -ge "$limit" ]; then
			kill -9 "$pid" 2>/dev/null
			echo "stuck after $((limit / 10)) s; tasks in D state:" >>"$LOG"
			ps -o pid,stat,args 2>/dev/null | awk '$2 ~ /D/' >>"$LOG"
			NOT_RUN="an earlier check got stuck in the kernel"
			return 255
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	wait "$pid"
	return "$(cat "$WORK/rc")"
}

# t [-b SECONDS] DESCRIPTION COMMAND...: one KTAP line (deadline: 120 s). A failing
# command's output becomes the line's diagnostics.
t() {
	limit=120
	[ "$1" = -b ] && { limit=$2; shift 2; }
	desc=$1
	shift
	if [ -n "$NOT_RUN" ]; then
		skip "$desc" "$NOT_RUN"
		return 1
	fi
	log_mark "$desc"
	bounded "$limit" "$@"
	rc=$?
	if [ "$rc" = 0 ]; then
		pass "$desc"
	elif [ "$rc" = "$KSFT_SKIP" ] && [ -s "$WORK/skip" ]; then
		skip "$desc" "$(cat "$WORK/skip")"
	else
		tail -n 40 "$LOG" | sed 's/^/# /'
		fail "$desc"
	fi
	return "$rc"
}

# nested SECONDS DESCRIPTION COMMAND...: runs a program that prints KTAP, nested
# (indented) under one result line: every case counts, the line sums them up.
nested() {
	limit=$1 desc=$2
	shift 2
	if [ -n "$NOT_RUN" ]; then
		skip "$desc" "$NOT_RUN"
		return
	fi
	log_mark "$desc"
	bounded "$limit" "$@"
	rc=$?
	sed 's/^/  /' "$LOG"
	if [ "$rc" = 0 ] && ! grep -q '^ *not ok' "$LOG"; then
		pass "$desc"
	else
		echo "# $desc: $(grep -c '^ *not ok' "$LOG") cases failed, exit status $rc"
		fail "$desc"
	fi
}

# The kernel log since the start of the current check (t writes a mark there; the log
# is not cleared, the harness checks all of it at the end).
log_mark() { echo "$TEST_NAME: check $KTAP_TESTNO: $1" >/dev/kmsg 2>/dev/null; }
log_since_mark() { dmesg | sed -n "/$TEST_NAME: check $KTAP_TESTNO: /,\$p"; }


# The virtio disk whose serial is $1 (guest.sh and make bench name their disks so).
disk_by_serial() {
	for s in /sys/block/*/serial; do
		[ "$(cat "$s" 2>/dev/null)" = "$1" ] || continue
		d=${s#/sys/block/}
		echo "/dev/${d%/serial}"
		return
	done
}
# The xv6fs test disk: XV6FS_DEV, or the virtio disk with serial "xv6fs" (guest.sh).
find_test_disk() {
	if [ -n "${XV6FS_DEV:-}" ]; then
		echo "$XV6FS_DEV"
		return
	fi
	disk_by_serial xv6fs
}
# The sysfs directory of the superblock of file system $1 mounted on $2:
# /sys/fs/bento/$1/MAJ:MIN, decoded from stat's st_dev (busybox has no mountpoint -d).
sb_sysfs_dir() {
	d=$(stat -c %d "$2")
	echo "/sys/fs/bento/$1/$(((d >> 8) & 0xfff)):$(((d & 0xff) | ((d >> 12) & 0xfff00)))"
}
