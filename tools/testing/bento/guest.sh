#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boots the Bento guest: the built kernel, its modules, two disks, the project's tools
# on a 9p share at /host (static programs in /host/bin, on the guest's PATH). Prepares
# the guest (modules loaded, file systems mounted: see setup.sh) and then runs CMD, or a
# shell when CMD is empty.
# Usage: guest.sh [CMD]    (exit status: CMD's)
# Disks (virtio, found in the guest by their serial, /sys/block/vdX/serial):
#   vda "scratch": $BENTO_CACHE/scratch.img (scratch-debug.img for the debug kernel:
#                  QEMU locks it), 256 MiB, for tests to format at will;
#   vdb "xv6fs":   $BENTO_XV6FS_IMG (default $BENTO_CACHE/xv6fs.img), an xv6fs image made
#                  with mkfs.xv6fs when missing or not xv6fs; kept across boots. QEMU
#                  cache mode $BENTO_XV6FS_CACHE (default writeback: flushes reach the
#                  host file; directsync for power-cut tests).
#   more:          BENTO_EXTRA_DISKS (run-qemu.sh --disk specs, space-separated).
# Guest memory: BENTO_MEM (default 1G).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bzimage=$KBUILD/arch/x86/boot/bzImage
[ -f "$bzimage" ] || { echo "no kernel built: run 'make kernel'" >&2; exit 1; }

# The initramfs depends on the modules and the scripts that make it.
initrd=$BENTO_INITRD   # one per kernel variant (lib.sh)
key=$(hash_inputs "$MODROOT" "$BENTO_ROOT/tools/testing/bento/mkinitramfs.sh" \
	"$BENTO_ROOT/tools/testing/bento/check-dmesg.sh")
if [ "$(cat "$initrd.key" 2>/dev/null)" != "$key" ]; then
	log "making initramfs"
	"$BENTO_ROOT/tools/testing/bento/mkinitramfs.sh" "$initrd" "$MODROOT"
	echo "$key" > "$initrd.key"
fi

# The share: guest-side scripts, the selftests, and a results directory.
share=${BENTO_SHARE:-$(mktemp -d "${TMPDIR:-/tmp}/bento-share.XXXXXX")}
mkdir -p "$share/selftests/kselftest" "$share/results"
cp -r "$BENTO_ROOT/tools/testing/selftests/filesystems" "$share/selftests/"
cp "$KSRC/tools/testing/selftests/kselftest/ktap_helpers.sh" "$share/selftests/kselftest/"
cp "$BENTO_ROOT/tools/testing/bento/setup.sh" "$share/setup.sh"

# Static programs for the guest: mkfs/fsck.xv6fs, pjdfstest, fsx, xv6fs_test.
bash "$BENTO_ROOT/tools/testing/bento/guest-tools.sh" "$share" ||
	log "warning: guest tools incomplete (see above)"

# The disks.
scratch=$BENTO_CACHE/scratch$BENTO_SUFFIX.img
[ -f "$scratch" ] || truncate -s 256M "$scratch"
xv6img=${BENTO_XV6FS_IMG:-$BENTO_CACHE/xv6fs.img}
# The superblock (block 1) starts with the magic "xv6f".
if [ "$(od -An -c -j 4096 -N 4 "$xv6img" 2>/dev/null | tr -d ' ')" != xv6f ]; then
	mkfs=$BENTO_CACHE/guest-bin/mkfs.xv6fs
	[ -x "$mkfs" ] || mkfs=$BENTO_ROOT/target/debug/mkfs-xv6fs
	log "making an xv6fs image: $xv6img"
	rm -f "$xv6img"
	"$mkfs" -q -s "${BENTO_XV6FS_SIZE:-256M}" "$xv6img" ||
		{ log "warning: no mkfs.xv6fs: the xv6fs disk is blank"; truncate -s 256M "$xv6img"; }
fi
disks=(--disk "$scratch,serial=scratch"
	--disk "$xv6img,serial=xv6fs,cache=${BENTO_XV6FS_CACHE:-writeback}")
# More disks (make bench): BENTO_EXTRA_DISKS, space-separated run-qemu.sh --disk specs.
for d in ${BENTO_EXTRA_DISKS:-}; do
	disks+=(--disk "$d")
done

cmd=${1:-}
if [ -n "$cmd" ]; then
	status=0
	"$BENTO_ROOT/tools/testing/bento/run-qemu.sh" --kernel "$bzimage" --initrd "$initrd" \
		"${disks[@]}" --share-dir "$share" --timeout "${BENTO_TIMEOUT:-1200}" \
		--mem "${BENTO_MEM:-1G}" \
		--cmd "${BENTO_NO_SETUP:+: }. /host/setup.sh; $cmd" || status=$?
else
	log "booting; the guest shell powers off on exit (Ctrl-A x kills QEMU)"
	printf '%s\n' '. /host/setup.sh' > "$share/profile"
	status=0
	"$BENTO_ROOT/tools/testing/bento/run-qemu.sh" --kernel "$bzimage" --initrd "$initrd" \
		"${disks[@]}" --share-dir "$share" --append "bento.interactive=1" || status=$?
fi
[ -n "${BENTO_SHARE:-}" ] || rm -rf "$share"
exit "$status"
