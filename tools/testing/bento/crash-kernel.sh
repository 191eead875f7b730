#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Crash consistency of kernel xv6fs, and journals moving between the builds.
# Each round: mkfs a fresh image; run a workload that creates, renames and deletes
# files, logging each change only after fsync made it durable; cut it off at a random
# time; mount again (replaying the journal) and check that every logged change is
# there, byte for byte; then fsck.xv6fs on the host must find the image clean.
# Rounds rotate through three cases:
#   kernel -> kernel  power cut of the guest (disk on cache=directsync: what QEMU
#                     acknowledged is on the image), replay by jbd2
#   kernel -> FUSE    the same power cut, replay by the userspace journal on the host
#   FUSE -> kernel    kill -9 of the FUSE daemon on the host, replay by jbd2
# KTAP on stdout.
# Usage: crash-kernel.sh [ROUNDS]      (needs make kernel and make fuse)
set -uo pipefail
. "$(dirname "$0")/lib.sh"

rounds=${1:-3}
bzimage=$KBUILD/arch/x86/boot/bzImage
mkfs=$BENTO_ROOT/target/debug/mkfs-xv6fs
fsck=$BENTO_ROOT/target/debug/fsck-xv6fs
work=$(mktemp -d "${TMPDIR:-/tmp}/bento-crash.XXXXXX")
trap 'rm -rf "$work"' EXIT
initrd=$work/initrd.gz
"$BENTO_ROOT/tools/testing/bento/mkinitramfs.sh" "$initrd" "$MODROOT" >/dev/null 2>&1 || {
	echo "1..0 # SKIP cannot make an initramfs"; exit 0; }

# The workload: file i has "f<i>" repeated over size(i) bytes; lines "+ PATH SIZE" and
# "- PATH" reach the host log only after the change was fsynced (file, then directory);
# "? PATH" announces a removal (either outcome is right until its "-" is logged).
cat >"$work/workload.sh" <<'EOF'
if [ -z "${MNT:-}" ]; then
	modprobe xv6fs && mkdir -p /mnt/x && mount -t xv6fs /dev/vda /mnt/x || exit 1
	MNT=/mnt/x LOG=/host/log
fi
cd "$MNT" || exit 1
: >"$LOG"
i=0
while :; do
	i=$((i + 1)); d=d$((i % 8)); n=$(((i * 7919) % 200000 + 1))
	mkdir -p $d
	yes "f$i" | head -c $n >$d/f$i.tmp && sync $d/f$i.tmp &&
		mv $d/f$i.tmp $d/f$i && sync $d && echo "+ $d/f$i $n" >>"$LOG"
	if [ $((i % 3)) = 0 ] && [ -e d$(((i - 5) % 8))/f$((i - 5)) ]; then
		v=d$(((i - 5) % 8))/f$((i - 5))
		# Until "-" is logged the removal may or may not have reached the disk.
		echo "? $v" >>"$LOG" && rm $v && sync d$(((i - 5) % 8)) && echo "- $v" >>"$LOG"
	fi
done
EOF
# The check: the last logged change of each path decides what must be there.
cat >"$work/verify.sh" <<'EOF'
guest=
if [ -z "${MNT:-}" ]; then
	modprobe xv6fs && mkdir -p /mnt/x && mount -t xv6fs /dev/vda /mnt/x ||
		{ echo "mount failed"; exit 1; }
	MNT=/mnt/x LOG=/host/log guest=1
fi
bad=0 n=0
want=$(mktemp)
awk '$1 == "+" { size[$2] = $3 } { last[$2] = $1 }
	END { for (p in last) print last[p], p, size[p] }' "$LOG" >"$want"
while read -r op path size; do
	n=$((n + 1))
	name=${path##*/}
	if [ "$op" = "?" ] && [ ! -e "$MNT/$path" ]; then
		continue   # a removal in flight at the cut, which made it
	elif [ "$op" = + ] || [ "$op" = "?" ]; then
		if [ ! -e "$MNT/$path" ]; then
			echo "lost: $path ($size bytes)"; bad=$((bad + 1))
		elif ! yes "$name" | head -c "$size" | cmp -s - "$MNT/$path"; then
			echo "wrong: $path: $(wc -c <"$MNT/$path") bytes, want $size; $(yes "$name" | head -c "$size" | cmp - "$MNT/$path" 2>&1 | head -1)"
			bad=$((bad + 1))
		fi
	elif [ -e "$MNT/$path" ]; then
		echo "deleted but present: $path"; bad=$((bad + 1))
	fi
done <"$want"
echo "checked $n paths, $bad bad"
if [ -n "$guest" ]; then
	umount /mnt/x || { echo "umount failed"; exit 1; }
	dmesg | grep -E 'BUG:|WARNING:|Oops|KASAN|UBSAN' && exit 1
fi
[ "$bad" = 0 ]
EOF

fuse=$BENTO_ROOT/target/debug/xv6fs
# The FUSE daemon runs in the foreground (-f) as our child, so that we can kill it and
# wait until it let go of the image.
fuse_mount() {
	local n=0
	"$fuse" -f "$img" "$mnt" 2>>"$work/fuse.log" &
	fpid=$!
	until mountpoint -q "$mnt"; do
		kill -0 "$fpid" 2>/dev/null && [ "$n" -lt 100 ] || return 1
		sleep 0.1; n=$((n + 1))
	done
}
fuse_umount() {
	fusermount3 -u -z "$mnt" 2>/dev/null
	wait "$fpid" 2>/dev/null
}
qemu() { # disk-options log-file timeout command
	"$BENTO_ROOT/tools/testing/bento/run-qemu.sh" --kernel "$bzimage" --initrd "$initrd" \
		--disk "$1" --share-dir "$share" --timeout "$3" --cmd "$4" >"$2" 2>&1
}

# How long the guest takes to boot to its command (a debug kernel takes far longer), so
# that the cut lands inside the workload.
share=$work/share
mkdir -p "$share"
b0=$(date +%s)
truncate -s 1M "$work/boot.img"
qemu "$work/boot.img" "$work/boot.log" 600 true
boot=$(($(date +%s) - b0))

echo "TAP version 13"
echo "1..$((rounds * 2))"
t=0
for r in $(seq 1 "$rounds"); do
	img=$work/xv6fs.img share=$work/share mnt=$work/mnt
	rm -rf "$share"; mkdir -p "$share" "$mnt"
	cp "$work/workload.sh" "$work/verify.sh" "$share/"
	"$mkfs" -q -s 256M "$img" || { echo "Bail out! mkfs failed"; exit 1; }
	case $((r % 3)) in
	1) how="kernel -> kernel" ;;
	2) how="kernel -> FUSE" ;;
	0) how="FUSE -> kernel" ;;
	esac
	# Cut 4-12 s into the workload.
	cut=$((boot + 4 + (RANDOM % 9)))
	t=$((t + 1))
	if [ "${how%% *}" = kernel ]; then
		qemu "$img,cache=directsync" "$work/run$r.log" "$cut" 'sh /host/workload.sh'
		rc=$?
		ran=$([ "$rc" = 124 ] && echo yes)
	else
		fuse_mount || { echo "Bail out! FUSE mount failed"; exit 1; }
		fcut=$((cut - boot))
		MNT=$mnt LOG=$share/log timeout -s KILL "$fcut" sh "$work/workload.sh" \
			>"$work/run$r.log" 2>&1 &
		wl=$!
		sleep "$fcut"
		kill -KILL "$fpid"
		wait "$wl" 2>/dev/null
		fuse_umount
		ran=yes
	fi
	logged=$(grep -c . "$share/log" 2>/dev/null || echo 0)
	if [ "$ran" = yes ] && [ "$logged" -gt 0 ]; then
		echo "ok $t round $r ($how): cut after ${cut}s, $logged durable changes logged"
	else
		echo "not ok $t round $r ($how): the workload did not run until the cut ($logged changes)"
		tail -20 "$work/run$r.log" | sed 's/^/# /'
	fi
	if [ "${how##* }" = kernel ]; then
		qemu "$img" "$work/verify$r.log" 300 'sh /host/verify.sh'
		vrc=$?
	else
		vrc=1
		if fuse_mount; then
			MNT=$mnt LOG=$share/log sh "$work/verify.sh" >"$work/verify$r.log" 2>&1
			vrc=$?
			fuse_umount
		fi
	fi
	fsck_out=$("$fsck" -n "$img" 2>&1)
	frc=$?
	t=$((t + 1))
	if [ "$vrc" = 0 ] && [ "$frc" = 0 ]; then
		echo "ok $t round $r ($how): after replay every fsynced change is there, fsck clean ($(grep -o 'checked [0-9]* paths' "$work/verify$r.log"))"
	else
		echo "not ok $t round $r ($how): verify exit $vrc, fsck exit $frc"
		# Keep the evidence: the image (replayed) and the log.
		cp "$img" "$BENTO_CACHE/crash-failed.img" && cp "$share/log" "$BENTO_CACHE/crash-failed.log" &&
			echo "# kept: $BENTO_CACHE/crash-failed.{img,log}"
		grep -E 'lost|wrong|deleted|checked|failed|BUG|WARNING|bento' "$work/verify$r.log" | head -20 | sed 's/^/# /'
		echo "$fsck_out" | head -20 | sed 's/^/# /'
	fi
done
