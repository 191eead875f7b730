#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the busybox initramfs used by run-qemu.sh.
#
# Usage: mkinitramfs.sh OUT.cpio.gz [MODROOT]
#
# MODROOT is an INSTALL_MOD_PATH of `make modules_install`; its
# lib/modules/<version>/ trees are copied in so `modprobe NAME` works in the
# guest. It may be omitted, missing or hold no modules.
#
# Environment: BUSYBOX (static busybox binary, default: from PATH),
# SOURCE_DATE_EPOCH (mtime of every file in the archive, default 0).
#
# The archive is reproducible: same inputs give the same bytes (fixed mtimes,
# sorted file list, root ownership, gzip without name/time).
set -euo pipefail

die() { echo "mkinitramfs.sh: $*" >&2; exit 1; }

{ [ $# -ge 1 ] && [ $# -le 2 ]; } || die "usage: mkinitramfs.sh OUT.cpio.gz [MODROOT]"
out=$1
modroot=${2:-}
epoch=${SOURCE_DATE_EPOCH:-0}
busybox=${BUSYBOX:-$(command -v busybox || true)}

[ -x "${busybox:-/nonexistent}" ] || die "busybox not found (apt-get install busybox-static)"
# A dynamic busybox would fail in the guest, which has no libc.
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; install busybox-static or set BUSYBOX"
fi

umask 022
stage=$(mktemp -d "${TMPDIR:-/tmp}/bento-initramfs.XXXXXX")
trap 'rm -rf "$stage" "$out.tmp"' EXIT

mkdir -p "$stage"/{bin,dev,etc,home,host,lib/modules,proc,root,run,sys,tmp,usr}
# One bin directory; the other standard paths point at it.
ln -s bin "$stage/sbin"
ln -s ../bin "$stage/usr/bin"
ln -s ../bin "$stage/usr/sbin"

cp "$busybox" "$stage/bin/busybox"
chmod 755 "$stage/bin/busybox"
# Applet links made here rather than by `busybox --install` at boot: boot stays
# fast and the archive lists every command.
for applet in $("$busybox" --list); do
	case $applet in busybox|*/*) continue ;; esac
	ln -sf busybox "$stage/bin/$applet"
done

# The guest checks its own dmesg with this.
cp "$(dirname "$0")/check-dmesg.sh" "$stage/bin/check-dmesg.sh"
chmod 755 "$stage/bin/check-dmesg.sh"

# Users and groups later test suites rely on (uid/gid 1000 "tests", nogroup).
cat >"$stage/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
tests:x:1000:1000:tests:/home/tests:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$stage/etc/group" <<'EOF'
root:x:0:
tests:x:1000:
nogroup:x:65534:
EOF
cat >"$stage/etc/hosts" <<'EOF'
127.0.0.1	localhost bento
::1	localhost
EOF
ln -s /proc/mounts "$stage/etc/mtab"

# Modules: accept both lib/modules and usr/lib/modules layouts.
# A missing MODROOT (e.g. CONFIG_MODULES=n, nothing installed) is not an error.
if [ -n "$modroot" ] && [ ! -d "$modroot" ]; then
	echo "mkinitramfs.sh: note: $modroot does not exist, no modules added" >&2
elif [ -n "$modroot" ]; then
	for src in "$modroot/lib/modules" "$modroot/usr/lib/modules"; do
		[ -d "$src" ] || continue
		for vdir in "$src"/*/; do
			[ -d "$vdir" ] || continue
			ver=$(basename "$vdir")
			cp -R "$vdir" "$stage/lib/modules/$ver"
			# build/source point into the host's build tree: useless and dangling.
			rm -f "$stage/lib/modules/$ver/build" "$stage/lib/modules/$ver/source"
			if [ ! -e "$stage/lib/modules/$ver/modules.dep" ]; then
				command -v depmod >/dev/null || die "depmod needed (apt-get install kmod)"
				depmod -b "$stage" "$ver"
			fi
		done
	done
fi

cat >"$stage/init" <<'INIT'
#!/bin/sh
# PID 1 of the bento test guest. Runs /host/cmd.sh when the host provides one
# (run-qemu.sh --cmd), else an interactive shell; powers off afterwards.
# No `set -e`: if PID 1 dies the kernel panics and the log shows nothing useful.
# /host/bin: the host's static programs (mkfs.xv6fs, fsck.xv6fs, pjdfstest, fsx).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/host/bin
export HOME=/root TERM="${TERM:-linux}" PS1='bento:\w# '

mounted() { grep -q "^[^ ]* $1 " /proc/mounts 2>/dev/null; }
mnt() { # TYPE DIR [OPTIONS]
	mkdir -p "$2"
	mounted "$2" || mount -t "$1" -o "${3:-defaults}" "$1" "$2" ||
		echo "bento-init: cannot mount $1 on $2" >/dev/console
}

mount -t proc proc /proc
mnt sysfs /sys
mnt devtmpfs /dev
# The initial console may have been missing before devtmpfs: reopen it.
# (Guarded: a failed redirection on exec would kill PID 1.)
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
mnt devpts /dev/pts gid=5,mode=620,ptmxmode=666
mnt tmpfs /dev/shm mode=1777
mnt tmpfs /tmp mode=1777
mnt tmpfs /run mode=755
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
hostname bento
ip link set lo up 2>/dev/null
# cpio entries are all root-owned; give "tests" its home here.
mkdir -p /home/tests && chown 1000:1000 /home/tests

# Only matters if 9p was built as modules; quiet when built in or absent.
modprobe -q 9pnet_virtio 2>/dev/null
modprobe -q 9p 2>/dev/null

# Mount the host share if a virtio-9p device with tag "host" exists.
# mount_tag in sysfs ends with a NUL byte, hence tr.
for tag in /sys/bus/virtio/devices/*/mount_tag; do
	[ -r "$tag" ] || continue
	[ "$(tr -d '\000' <"$tag")" = host ] || continue
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none host /host ||
		echo "bento-init: cannot mount 9p share 'host' on /host"
	break
done

if [ -f /host/cmd.sh ]; then
	# stdin from /dev/null: nobody types on the console in batch runs.
	(cd /host && exec sh /host/cmd.sh) </dev/null
	rc=$?
	echo "bento-init: cmd.sh exited with status $rc"
	echo "$rc" >/host/status || echo "bento-init: cannot write /host/status"
else
	# setsid + cttyhack give the shell a controlling tty, so job control
	# and Ctrl-C work on the serial console.
	# ash reads $ENV at start: the host's setup (make run) mounts the file systems.
	[ -f /host/profile ] && export ENV=/host/profile
	setsid cttyhack sh
fi
# Unmount the disks' file systems (clean images for the next boot) and sync, but not
# forever: a file system stuck in the kernel must not keep the guest up.
bounded() {
	"$@" &
	i=0
	while [ "$i" -lt 100 ] && kill -0 $! 2>/dev/null &&
		! grep -qs "^State:.*Z" "/proc/$!/status"; do
		sleep 0.1
		i=$((i + 1))
	done
	[ "$i" -lt 100 ] || echo "bento-init: '$*' still running after 10 s; powering off anyway"
}
bounded sh -c 'grep "^/dev/" /proc/mounts | cut -d" " -f2 | sort -r |
	while read -r m; do umount "$m"; done'
bounded sync
poweroff -f
INIT
chmod 755 "$stage/init"

# Fixed mtimes and a sorted list: the archive depends only on content.
find "$stage" -exec touch -h -d "@$epoch" {} +
mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z |
	cpio --quiet --null -o -H newc --owner root:root --reproducible) |
	gzip -n -9 >"$out.tmp"
mv "$out.tmp" "$out"
