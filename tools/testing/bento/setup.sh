# SPDX-License-Identifier: GPL-2.0
# Sourced in the guest before the command or shell of 'make run': loads the Bento
# sample modules and mounts them, so the guest starts with them in use.
mkdir -p /mnt/hello
if modprobe hello && mount -t hello none /mnt/hello; then
	echo "bento: hello mounted on /mnt/hello"
else
	echo "bento: could not mount hello (see dmesg)"
fi
