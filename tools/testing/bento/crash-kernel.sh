#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Crash consistency of kernel xv6fs: power cuts in the middle of a workload.
# Each round: mkfs a fresh image; boot the guest with the disk on cache=directsync (a
# write QEMU acknowledged is on the image) and run a workload that creates, renames and
# deletes files, logging each change to the host only after fsync made it durable;
# kill QEMU after a random time (the power cut); boot again, mount (jbd2 replays the
# journal) and check that every logged change is there, byte for byte; then fsck.xv6fs
# on the host must find the image clean. KTAP on stdout.
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
# "- PATH" reach the host log only after the change was fsynced (file, then directory).
cat >"$work/workload.sh" <<'EOF'
modprobe xv6fs && mkdir -p /mnt/x && mount -t xv6fs /dev/vda /mnt/x || exit 1
cd /mnt/x || exit 1
: >/host/log
i=0
while :; do
	i=$((i + 1)); d=d$((i % 8)); n=$(((i * 7919) % 200000 + 1))
	mkdir -p $d
	yes "f$i" | head -c $n >$d/f$i.tmp && sync $d/f$i.tmp &&
		mv $d/f$i.tmp $d/f$i && sync $d && echo "+ $d/f$i $n" >>/host/log
	if [ $((i % 3)) = 0 ] && [ -e d$(((i - 5) % 8))/f$((i - 5)) ]; then
		v=d$(((i - 5) % 8))/f$((i - 5))
		rm $v && sync d$(((i - 5) % 8)) && echo "- $v" >>/host/log
	fi
done
EOF
# The check: the last logged change of each path decides what must be there.
cat >"$work/verify.sh" <<'EOF'
modprobe xv6fs && mkdir -p /mnt/x && mount -t xv6fs /dev/vda /mnt/x || { echo "mount failed"; exit 1; }
bad=0 n=0
awk '{ last[$2] = $0 } END { for (p in last) print last[p] }' /host/log >/tmp/want
while read -r op path size; do
	n=$((n + 1))
	name=${path##*/}
	if [ "$op" = + ]; then
		yes "$name" | head -c "$size" | cmp -s - "/mnt/x/$path" ||
			{ echo "lost or wrong: $path ($size bytes)"; bad=$((bad + 1)); }
	elif [ -e "/mnt/x/$path" ]; then
		echo "deleted but present: $path"; bad=$((bad + 1))
	fi
done </tmp/want
echo "checked $n paths, $bad bad"
umount /mnt/x || { echo "umount failed"; exit 1; }
dmesg | grep -E 'BUG:|WARNING:|Oops|KASAN|UBSAN' && exit 1
[ "$bad" = 0 ]
EOF

echo "TAP version 13"
echo "1..$((rounds * 2))"
t=0
for r in $(seq 1 "$rounds"); do
	img=$work/xv6fs.img share=$work/share
	rm -rf "$share"; mkdir -p "$share"
	cp "$work/workload.sh" "$work/verify.sh" "$share/"
	"$mkfs" -q -s 256M "$img" || { echo "Bail out! mkfs failed"; exit 1; }
	# Boot takes ~2-3 s under TCG; cut the power 4-12 s into the workload.
	cut=$((6 + (RANDOM % 9)))
	"$BENTO_ROOT/tools/testing/bento/run-qemu.sh" --kernel "$bzimage" --initrd "$initrd" \
		--disk "$img,cache=directsync" --share-dir "$share" --timeout "$cut" \
		--cmd 'sh /host/workload.sh' >"$work/run$r.log" 2>&1
	rc=$?
	logged=$(grep -c . "$share/log" 2>/dev/null || echo 0)
	t=$((t + 1))
	if [ "$rc" = 124 ] && [ "$logged" -gt 0 ]; then
		echo "ok $t round $r: power cut after ${cut}s, $logged durable changes logged"
	else
		echo "not ok $t round $r: workload did not run until the power cut (exit $rc, $logged changes)"
		tail -20 "$work/run$r.log" | sed 's/^/# /'
	fi
	"$BENTO_ROOT/tools/testing/bento/run-qemu.sh" --kernel "$bzimage" --initrd "$initrd" \
		--disk "$img" --share-dir "$share" --timeout 300 \
		--cmd 'sh /host/verify.sh' >"$work/verify$r.log" 2>&1
	vrc=$?
	fsck_out=$("$fsck" -n "$img" 2>&1)
	frc=$?
	t=$((t + 1))
	if [ "$vrc" = 0 ] && [ "$frc" = 0 ]; then
		echo "ok $t round $r: after replay every fsynced change is there; fsck clean ($(grep -o 'checked [0-9]* paths' "$work/verify$r.log"))"
	else
		echo "not ok $t round $r: verify exit $vrc, fsck exit $frc"
		grep -E 'lost|deleted|checked|failed|BUG|WARNING' "$work/verify$r.log" | head -20 | sed 's/^/# /'
		echo "$fsck_out" | head -20 | sed 's/^/# /'
	fi
done
