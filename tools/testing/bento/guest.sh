#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boots the Bento guest: the built kernel, its modules, a scratch disk, the project's
# tools on a 9p share at /host. Prepares the guest (modules loaded, file systems
# mounted: see setup.sh) and then runs CMD, or a shell when CMD is empty.
# Usage: guest.sh [CMD]    (exit status: CMD's)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bzimage=$KBUILD/arch/x86/boot/bzImage
[ -f "$bzimage" ] || { echo "no kernel built: run 'make kernel'" >&2; exit 1; }

# The initramfs depends on the modules and the scripts that make it.
initrd=$BENTO_CACHE/initramfs.cpio.gz
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

# A scratch disk for the guest (xv6fs and ext4 images come here as the tests grow).
disk=$BENTO_CACHE/scratch.img
[ -f "$disk" ] || truncate -s 256M "$disk"

cmd=${1:-}
if [ -n "$cmd" ]; then
	status=0
	"$BENTO_ROOT/tools/testing/bento/run-qemu.sh" --kernel "$bzimage" --initrd "$initrd" \
		--disk "$disk" --share-dir "$share" --timeout "${BENTO_TIMEOUT:-1200}" \
		--cmd "${BENTO_NO_SETUP:+: }. /host/setup.sh; $cmd" || status=$?
else
	log "booting; the guest shell powers off on exit (Ctrl-A x kills QEMU)"
	printf '%s\n' '. /host/setup.sh' > "$share/profile"
	status=0
	"$BENTO_ROOT/tools/testing/bento/run-qemu.sh" --kernel "$bzimage" --initrd "$initrd" \
		--disk "$disk" --share-dir "$share" --append "bento.interactive=1" || status=$?
fi
[ -n "${BENTO_SHARE:-}" ] || rm -rf "$share"
exit "$status"
