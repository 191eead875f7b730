# SPDX-License-Identifier: GPL-2.0
# Sourced in the guest before the command or shell of 'make run': loads the Bento
# sample modules and mounts them, so the guest starts with them in use:
#   hello on /mnt/hello, xv6fs (the disk with serial "xv6fs", see guest.sh) on /mnt/xv6fs.
mkdir -p /mnt/hello /mnt/xv6fs
if modprobe hello && mount -t hello none /mnt/hello; then
	echo "bento: hello mounted on /mnt/hello"
else
	echo "bento: could not mount hello (see dmesg)"
fi
bento_xv6fs_dev=
for bento_s in /sys/block/vd*/serial; do
	[ "$(cat "$bento_s" 2>/dev/null)" = xv6fs ] || continue
	bento_xv6fs_dev=/dev/${bento_s#/sys/block/}
	bento_xv6fs_dev=${bento_xv6fs_dev%/serial}
done
if [ -z "$bento_xv6fs_dev" ]; then
	echo "bento: no xv6fs disk (no virtio disk with serial xv6fs)"
elif ! modprobe xv6fs 2>/dev/null; then
	echo "bento: could not mount xv6fs: no xv6fs module (yet) in this kernel"
elif mount -t xv6fs "$bento_xv6fs_dev" /mnt/xv6fs; then
	echo "bento: xv6fs ($bento_xv6fs_dev) mounted on /mnt/xv6fs"
else
	echo "bento: could not mount xv6fs from $bento_xv6fs_dev (see dmesg;" \
		"rm ~/.cache/bento/xv6fs.img on the host for a fresh image)"
fi
unset bento_s bento_xv6fs_dev
