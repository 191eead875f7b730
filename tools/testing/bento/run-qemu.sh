#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a kernel with the mkinitramfs.sh initramfs under QEMU (TCG) and
# optionally run one shell command in the guest.
#
# Usage: run-qemu.sh --kernel BZIMAGE --initrd INITRD [--disk IMG[,OPTS]]...
#                    [--disk-cache MODE] [--share-dir DIR] [--cmd 'SHELL CMD']
#                    [--timeout SECONDS] [--mem SIZE] [--append 'CMDLINE']
#
# --disk: a raw image, as a virtio disk (vda, vdb, ... in order). OPTS, comma-separated:
#   serial=NAME (the guest reads it in /sys/block/vdX/serial), cache=MODE (overrides
#   --disk-cache, default unsafe, for this disk), or any other -drive option.
#
# --cmd: the command runs as root in /host (the 9p share), console on stdout;
#   exits with the command's status, 124 on timeout, 125 if the guest wrote no
#   status (kernel panic, crash of init, ...).
# Without --cmd: interactive shell on the serial console (Ctrl-A x quits QEMU).
# The share is DIR if --share-dir is given (kept), else a temp dir (removed).
# Environment: QEMU (binary, default qemu-system-x86_64).
set -euo pipefail

die() { echo "run-qemu.sh: $*" >&2; exit 2; }

kernel='' initrd='' share_dir='' cmd='' have_cmd=0
timeout_s=600 mem=1G append='' disk_cache=unsafe
disks=()
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || die "$1 needs an argument"
	case $1 in
	--kernel) kernel=$2 ;;
	--initrd) initrd=$2 ;;
	--disk) disks+=("$2") ;;
	--disk-cache) disk_cache=$2 ;;
	--share-dir) share_dir=$2 ;;
	--cmd) cmd=$2; have_cmd=1 ;;
	--timeout) timeout_s=$2 ;;
	--mem) mem=$2 ;;
	--append) append=$2 ;;
	*) die "unknown option $1" ;;
	esac
	shift 2
done
[ -f "$kernel" ] || die "--kernel FILE required (got '$kernel')"
[ -f "$initrd" ] || die "--initrd FILE required (got '$initrd')"
[[ $timeout_s =~ ^[0-9]+$ ]] || die "--timeout takes whole seconds"
# -virtfs and -drive split their option strings on commas: a disk's path ends at the
# first one, and no path may hold one.
for d in ${disks[@]+"${disks[@]}"}; do
	[ -f "${d%%,*}" ] || die "disk image ${d%%,*} not found"
done
case $share_dir in *,*) die "paths with commas are not supported: $share_dir" ;; esac

if [ -n "$share_dir" ]; then
	[ -d "$share_dir" ] || die "--share-dir $share_dir is not a directory"
	rundir=$share_dir
	# A leftover cmd.sh would make an interactive guest run it and power off.
	if [ "$have_cmd" = 0 ] && [ -e "$rundir/cmd.sh" ]; then
		die "$rundir/cmd.sh exists; remove it for an interactive boot"
	fi
	trap 'rm -f "$rundir/cmd.sh"' EXIT
else
	rundir=$(mktemp -d "${TMPDIR:-/tmp}/bento-run.XXXXXX")
	trap 'rm -rf "$rundir"' EXIT
fi
rm -f "$rundir/status"
if [ "$have_cmd" = 1 ]; then
	printf '%s\n' "$cmd" >"$rundir/cmd.sh"
fi

qemu_args=(
	-accel tcg -m "$mem" -smp 2 -nographic -no-reboot
	# qemu64 plus SSE4.2's CRC32 instruction, which every x86-64 server has: the
	# crc32c of metadata checksums (ext4's, jbd2's, xv6fs's) runs on crc32c-intel.
	-cpu "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt"
	# No NIC: tests need no network, and it saves the iPXE option ROM delay.
	-nic none
	-kernel "$kernel" -initrd "$initrd"
	# panic=-1 turns a panic into a reboot, which -no-reboot turns into exit.
	-append "console=ttyS0 panic=-1${append:+ $append}"
	-virtfs "local,path=$rundir,mount_tag=host,security_model=none,id=host"
	# Entropy for the guest; needs no host setup, harmless without the driver.
	-device virtio-rng-pci
)
# Each disk: a -drive (the image) and a virtio-blk device (serial=, which -drive no
# longer takes); the other options go to the -drive.
n=0
for d in ${disks[@]+"${disks[@]}"}; do
	drive="file=${d%%,*},format=raw,if=none,id=disk$n" dev="virtio-blk-pci,drive=disk$n"
	optstr=${d#"${d%%,*}"}   # from the first comma on, or empty
	IFS=, read -r -a opts <<<"$optstr"
	case $optstr in *,cache=*) ;; *) drive+=",cache=$disk_cache" ;; esac
	for o in ${opts[@]+"${opts[@]}"}; do
		case $o in
		'') ;;
		serial=*) dev+=",$o" ;;
		*) drive+=",$o" ;;
		esac
	done
	qemu_args+=(-drive "$drive" -device "$dev")
	n=$((n + 1))
done
qemu=${QEMU:-qemu-system-x86_64}

if [ "$have_cmd" = 0 ]; then
	# -nographic puts serial and monitor on stdio (mon:stdio).
	"$qemu" "${qemu_args[@]}"
	exit
fi

# Batch: stdin from /dev/null (works without a tty, leaves the terminal alone).
# --foreground keeps QEMU in our process group so Ctrl-C still reaches it.
rc=0
timeout --foreground -k 10 "$timeout_s" "$qemu" "${qemu_args[@]}" </dev/null || rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "run-qemu.sh: TIMEOUT: guest still running after ${timeout_s}s, QEMU killed" >&2
	exit 124
fi
if [ "$rc" != 0 ]; then
	echo "run-qemu.sh: QEMU failed with status $rc" >&2
	exit 125
fi
status=$(cat "$rundir/status" 2>/dev/null || true)
if ! [[ $status =~ ^[0-9]+$ ]] || [ "$status" -gt 255 ]; then
	echo "run-qemu.sh: guest wrote no exit status (kernel panic or init failure?)" >&2
	exit 125
fi
exit "$status"
